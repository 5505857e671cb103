"""SFT on the tiny random model: loss on completion tokens only, row encoding, data errors, resume.

The tiny tokenizer has a ChatML chat template and pad == EOS (`<|im_end|>`), so prompts are
rendered as chat and every completion must end with that EOS token.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch

from r1.config import load_config
from r1.data import DataError, make_problems, render_prompt
from r1.models import load_model
from r1.train.sft import encode_row, load_sft_data, sft_step, train_sft
from r1.train.run import RunLogger


class Killed(Exception):
    """Stands in for a kill of the training process."""


def make_cfg(model_dir, out_dir, *overrides):
    return load_config(
        None,
        [
            f"model.name={model_dir}",
            f"run.output_dir={out_dir}",
            "run.threads=1",
            "train.micro_batch_size=4",
            "optim.lr=1e-3",
            *overrides,
        ],
    )


def write_rows(path, n: int, seed: int = 1):
    with open(path, "w", encoding="utf-8") as f:
        for p in make_problems(n, seed=seed):
            f.write(
                json.dumps(
                    {
                        "prompt": p["prompt"],
                        "completion": f"<think> {' , '.join(p['steps'])} </think> <answer> {p['answer']} </answer>",
                    }
                )
                + "\n"
            )
    return path


def read_metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def random_rows(tokenizer, prompt_lens, completion_lens, seed=0):
    gen = torch.Generator().manual_seed(seed)
    draw = lambda n: torch.randint(3, len(tokenizer), (n,), generator=gen).tolist()  # noqa: E731  (ids 0-2 are special)
    return [(draw(p), draw(c - 1) + [tokenizer.eos_token_id]) for p, c in zip(prompt_lens, completion_lens)]


# --- the loss ----------------------------------------------------------------------------------


def test_sft_loss_reaches_only_completion_tokens(tiny):
    """The gradient w.r.t. the final hidden states is exactly 0 at positions that predict prompt
    tokens or padding, and non-zero at every position that predicts a completion token."""
    model, tokenizer = tiny
    model = copy.deepcopy(model)
    prompt_lens, completion_lens = [5, 8, 3], [4, 2, 6]
    rows = random_rows(tokenizer, prompt_lens, completion_lens)
    hidden = []

    def keep(module, args, out):
        out.retain_grad()
        hidden.append(out)

    model.model.norm.register_forward_hook(keep)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    sft_step(model, optimizer, scheduler, rows, pad_id=tokenizer.pad_token_id, micro_batch_size=3, grad_clip=0.0)
    (h,) = hidden
    P, T = max(prompt_lens), max(completion_lens)
    assert h.shape[:2] == (3, P + T)  # prompts left-padded to 8, completions right-padded to 6
    per_position = h.grad.abs().sum(-1)  # (B, P+T)
    for i, n in enumerate(completion_lens):
        counted = torch.zeros(P + T, dtype=torch.bool)
        counted[P - 1 : P - 1 + n] = True  # column P-1+t predicts completion token t
        assert (per_position[i][counted] > 0).all(), i
        assert (per_position[i][~counted] == 0).all(), i


def test_sft_loss_is_the_completion_nll_for_any_micro_batch_size(tiny):
    model, tokenizer = tiny
    rows = random_rows(tokenizer, [5, 8, 3, 6], [4, 2, 6, 1], seed=1)
    nll, tokens = 0.0, 0
    with torch.no_grad():
        for prompt, completion in rows:  # plain HF forward on the unpadded sequence
            logits = model(torch.tensor([prompt + completion])).logits[0]
            logp = torch.log_softmax(logits[len(prompt) - 1 : -1].float(), -1).gather(
                -1, torch.tensor(completion)[:, None]
            )
            nll, tokens = nll - float(logp.sum()), tokens + len(completion)
    deltas, results = {}, {}
    for mb in (4, 3, 1):
        policy = copy.deepcopy(model)
        before = params(policy)
        optimizer = torch.optim.SGD(policy.parameters(), lr=1.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        results[mb] = sft_step(
            policy, optimizer, scheduler, rows, pad_id=tokenizer.pad_token_id, micro_batch_size=mb, grad_clip=0.0
        )
        deltas[mb] = {k: v - before[k] for k, v in params(policy).items()}
    for mb in (4, 3, 1):
        assert results[mb]["loss"] == pytest.approx(nll / tokens, abs=1e-5)
        assert results[mb]["tokens"] == tokens == 13
        for k in deltas[4]:
            torch.testing.assert_close(deltas[mb][k], deltas[4][k], rtol=0, atol=1e-6)


def test_sft_reduces_the_loss_on_a_small_fixed_dataset(tiny_model_dir, tmp_path):
    data = write_rows(tmp_path / "data.jsonl", 4)
    run = train_sft(
        make_cfg(
            tiny_model_dir, tmp_path / "run", f"sft.data={data}", "sft.batch_size=4", "sft.epochs=8", "optim.lr=1e-2"
        )
    )
    losses = [m["loss"] for m in read_metrics(run)]
    assert len(losses) == 8
    assert all(b < a for a, b in zip(losses, losses[1:]))
    assert losses[-1] < 0.7 * losses[0]


# --- rows ----------------------------------------------------------------------------------------


def test_encode_prompt_completion_row_renders_the_grpo_prompt_and_ends_with_eos(tiny):
    _, tokenizer = tiny
    prompt_ids, completion_ids = encode_row(
        {"prompt": "What is 2+3?", "completion": "<think> 2+3=5 </think> <answer> 5 </answer>"},
        tokenizer,
        template="r1-zero",
        form="auto",
        prefill_think=False,
    )
    assert prompt_ids == render_prompt(tokenizer, "What is 2+3?", template="r1-zero", form="auto").token_ids(tokenizer)
    assert tokenizer.decode(prompt_ids).endswith("<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n")
    assert completion_ids[-1] == tokenizer.eos_token_id and completion_ids.count(tokenizer.eos_token_id) == 1
    assert tokenizer.decode(completion_ids) == "<think> 2+3=5 </think> <answer> 5 </answer><|im_end|>"


def test_encode_row_strips_think_already_opened_by_the_prompt(tiny):
    _, tokenizer = tiny
    row = {"prompt": "What is 2+3?", "completion": "  <think> 2+3=5 </think> <answer> 5 </answer>"}
    prompt_ids, completion_ids = encode_row(row, tokenizer, template="r1-zero", form="auto", prefill_think=True)
    assert tokenizer.decode(prompt_ids).endswith("<|im_start|>assistant\n<think>")
    assert tokenizer.decode(completion_ids) == " 2+3=5 </think> <answer> 5 </answer><|im_end|>"


def test_encode_messages_row_trains_on_the_last_assistant_message(tiny):
    _, tokenizer = tiny
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+3?"},
        {"role": "assistant", "content": "5"},
    ]
    prompt_ids, completion_ids = encode_row(
        {"messages": messages}, tokenizer, template="r1-zero", form="auto", prefill_think=False
    )
    assert (
        tokenizer.decode(prompt_ids)
        == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+3?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert tokenizer.decode(completion_ids) == "5<|im_end|>"


@pytest.mark.parametrize(
    "row",
    [
        {"prompt": "q"},
        {"completion": "a"},
        {"prompt": "q", "completion": "   "},
        {"prompt": 3, "completion": "a"},
        {"messages": []},
        {"messages": [{"role": "user", "content": "q"}]},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}]},
    ],
)
def test_rows_without_a_usable_shape_are_not_encoded(tiny, row):
    assert encode_row(row, tiny[1], template="r1-zero", form="auto", prefill_think=False) is None


# --- data files ----------------------------------------------------------------------------------


def test_load_sft_data_skips_and_counts_bad_rows(tiny, tiny_model_dir, tmp_path, capsys):
    _, tokenizer = tiny
    path = tmp_path / "data.jsonl"
    lines = [
        {"prompt": "What is 1+1?", "completion": "<answer> 2 </answer>"},
        {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]},
        "",
        [1, 2],
        {"prompt": "no completion"},
        {"prompt": "q", "completion": ""},
        {"prompt": "long", "completion": "1 + 1 = 2 , " * 40},
    ]
    path.write_text("\n".join(json.dumps(x) if x != "" else "" for x in lines) + "\n")
    # fits all but the last
    limit = len(encode_row(lines[0], tokenizer, template="r1-zero", form="auto", prefill_think=False)[0]) + 20
    cfg = make_cfg(tiny_model_dir, tmp_path, f"sft.max_length={limit}", "data.on_overlong_prompt=filter")
    rows = load_sft_data(str(path), tokenizer, cfg)
    assert [tokenizer.decode(c) for _, c in rows] == ["<answer> 2 </answer><|im_end|>", "4<|im_end|>"]
    assert "skipped 3 row(s) without prompt/completion or messages, 1 over sft.max_length" in " ".join(
        capsys.readouterr().out.split()
    )

    cfg = make_cfg(tiny_model_dir, tmp_path, f"sft.max_length={limit}", "data.on_overlong_prompt=error")
    with pytest.raises(DataError, match=rf"{path}:7: \d+ tokens, over sft.max_length={limit}"):
        load_sft_data(str(path), tokenizer, cfg)


@pytest.mark.parametrize("bad", [b'{"prompt": "q", "completion":', b'\xff\xfe{"prompt": "q"}'])
def test_a_corrupt_line_is_an_error_naming_file_and_line(tiny, tiny_model_dir, tmp_path, bad):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"prompt": "q", "completion": "a"}\n' + bad + b"\n")
    with pytest.raises(DataError, match=rf"{path}:2: not valid UTF-8 JSON"):
        load_sft_data(str(path), tiny[1], make_cfg(tiny_model_dir, tmp_path))


def test_missing_or_empty_data_is_an_error(tiny, tiny_model_dir, tmp_path):
    cfg = make_cfg(tiny_model_dir, tmp_path)
    with pytest.raises(DataError, match="sft.data is not set"):
        load_sft_data(None, tiny[1], cfg)
    with pytest.raises(DataError, match="not found"):
        load_sft_data(str(tmp_path / "nope.jsonl"), tiny[1], cfg)
    (tmp_path / "empty.jsonl").write_text('{"prompt": "q"}\n')
    with pytest.raises(DataError, match="no usable SFT rows"):
        load_sft_data(str(tmp_path / "empty.jsonl"), tiny[1], cfg)


# --- resume --------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["extend", "crash"])
def test_resumed_sft_run_equals_uninterrupted_run(tiny_model_dir, tmp_path, monkeypatch, how):
    """6 rows, batch 2: 3 steps per epoch. 'extend': 1 epoch, then resume with 2 epochs. 'crash': a
    2-epoch run dies in step 5 after logging it (after the step-4 checkpoint), then resumes."""
    data = write_rows(tmp_path / "data.jsonl", 6)
    common = [f"sft.data={data}", "sft.batch_size=2", "train.save_every=2", "train.micro_batch_size=1"]
    straight = train_sft(make_cfg(tiny_model_dir, tmp_path / "straight", "sft.epochs=2", *common))

    out = tmp_path / "resumed"
    if how == "extend":
        train_sft(make_cfg(tiny_model_dir, out, "sft.epochs=1", *common))
    else:
        real_log = RunLogger.log

        def log_then_die(self, step, metrics, **kw):
            real_log(self, step, metrics, **kw)
            if step == 5:
                raise Killed

        monkeypatch.setattr(RunLogger, "log", log_then_die)
        with pytest.raises(Killed):
            train_sft(make_cfg(tiny_model_dir, out, "sft.epochs=2", *common))
        monkeypatch.undo()
    extend = ["run.allow_config_change=true"] if how == "extend" else []  # another epoch: a change of the run
    train_sft(make_cfg(tiny_model_dir, out, "sft.epochs=2", "run.resume=true", *extend, *common))

    a, b = read_metrics(straight), read_metrics(out)
    assert [m["step"] for m in b] == [1, 2, 3, 4, 5, 6]
    for ma, mb in zip(a, b):
        for key in ("loss", "grad_norm", "tokens", "epoch"):
            assert mb[key] == pytest.approx(ma[key], abs=1e-6), (ma["step"], key)
    final_a = params(load_model(str(straight / "checkpoints" / "final"))[0])
    final_b = params(load_model(str(out / "checkpoints" / "final"))[0])
    for k in final_a:
        torch.testing.assert_close(final_b[k], final_a[k], rtol=0, atol=1e-6)
