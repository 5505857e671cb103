"""Reward-model training: the Bradley–Terry loss (hand-derived values, a loop reference, large
margins, its gradient), pair accuracy, the prompt-level held-out split, micro-batch invariance,
exact resume, and `r1 rm` end to end on a tiny random-init model (loss goes down on a separable toy set,
held-out accuracy reported, the checkpoint reloads as a reward model)."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch

from r1.cli import main
from r1.config import load_config
from r1.data import DataError
from r1.rewards.models import is_scalar_rm, load_scalar_rm, load_scorer
from r1.rl import bradley_terry_loss, pair_accuracy
from r1.train.rm import encode_pairs, evaluate_pairs, pairs_file, read_pairs, rm_step, split_by_prompt

# --- the loss ------------------------------------------------------------------------------------


def test_bradley_terry_hand_values():
    # ℓ = −log σ(r_c − r_r) = log(1 + e^{−(r_c − r_r)}):
    # margin 0 → log 2 = 0.693147; margin 2 → log(1 + e⁻²) = 0.126928; margin −2 → log(1 + e²) = 2.126928
    # (and log(1 + e²) − log(1 + e⁻²) = 2 exactly, since 1 + e² = e²(1 + e⁻²)).
    chosen, rejected = torch.tensor([0.0, 2.0, -1.0]), torch.tensor([0.0, 0.0, 1.0])
    assert bradley_terry_loss(chosen, rejected).tolist() == pytest.approx([0.693147, 0.126928, 2.126928], abs=1e-6)
    # Only differences matter: shifting both scores changes nothing.
    assert torch.allclose(bradley_terry_loss(chosen + 5, rejected + 5), bradley_terry_loss(chosen, rejected))


def test_bradley_terry_matches_a_loop_reference_on_random_scores():
    g = torch.Generator().manual_seed(0)
    chosen, rejected = (
        torch.randn(64, generator=g, dtype=torch.float64) * 3,
        torch.randn(64, generator=g, dtype=torch.float64) * 3,
    )
    reference = [-math.log(1 / (1 + math.exp(-(c - r)))) for c, r in zip(chosen.tolist(), rejected.tolist())]
    assert torch.allclose(
        bradley_terry_loss(chosen, rejected), torch.tensor(reference, dtype=torch.float64), rtol=0, atol=1e-12
    )


def test_bradley_terry_is_finite_for_huge_margins_and_has_the_textbook_gradient():
    loss = bradley_terry_loss(torch.tensor([100.0, -100.0]), torch.tensor([-100.0, 100.0]))
    assert loss[0] == pytest.approx(0.0, abs=1e-30) and loss[1] == pytest.approx(200.0)  # no inf, no nan
    # dℓ/dr_c = −σ(r_r − r_c) = −(1 − P(chosen ≻ rejected)); at margin 0 that is −0.5, at margin 2 −σ(−2) = −0.119203.
    chosen = torch.tensor([0.0, 2.0], requires_grad=True)
    bradley_terry_loss(chosen, torch.zeros(2)).sum().backward()
    assert chosen.grad.tolist() == pytest.approx([-0.5, -0.119203], abs=1e-6)


def test_bradley_terry_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(P,\) score vectors"):
        bradley_terry_loss(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError):
        bradley_terry_loss(torch.zeros(2, 2), torch.zeros(2, 2))


def test_pair_accuracy_counts_ties_as_wrong():
    assert pair_accuracy(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 2.0, 4.0])) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        pair_accuracy(torch.zeros(0), torch.zeros(0))


# --- data ----------------------------------------------------------------------------------------


def test_held_out_prompts_never_appear_in_training():
    prompts = [f"p{i % 10}" for i in range(40)]  # 10 prompts, 4 pairs each
    train, held = split_by_prompt(list(range(40)), prompts, 0.2, seed=3)
    held_prompts, train_prompts = {prompts[i] for i in held}, {prompts[i] for i in train}
    assert len(held_prompts) == 2 and not held_prompts & train_prompts and len(train) + len(held) == 40
    assert split_by_prompt(list(range(40)), prompts, 0.2, seed=3) == (train, held)  # seeded
    assert split_by_prompt([0, 1], ["a", "a"], 0.5, seed=0) == ([0, 1], [])  # one prompt: nothing to hold out
    assert split_by_prompt([0, 1], ["a", "b"], 0.0, seed=0) == ([0, 1], [])


def test_bad_preference_data_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="rm.data is not set"):
        pairs_file(None)
    with pytest.raises(DataError, match="preference data not found"):
        pairs_file(str(tmp_path / "nope.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "chosen": "b", "rejected": "b"}\n{"prompt": "a", "chosen": "b"}\n')
    with pytest.raises(DataError, match="no usable preference pairs"):
        read_pairs(bad)
    bad.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\nnot json\n')
    with pytest.raises(DataError, match="bad.jsonl:2"):
        read_pairs(bad)


# --- the update --------------------------------------------------------------------------------------


def _toy_rows(n_prompts: int, seed: int = 0) -> list[dict]:
    """A separable toy set: the chosen response is polite, the rejected one is 'no no no'."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_prompts):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        prompt = f"What is {a} + {b}?"
        rows.append(
            {
                "prompt": prompt,
                "chosen": f"The answer is {a + b}. Happy to help!",
                "rejected": "no no no no",
                "style": "rude",
            }
        )
        rows.append(
            {
                "prompt": prompt,
                "chosen": f"{a} + {b} = {a + b}.",
                "rejected": "I can't help with that.",
                "style": "refusal",
            }
        )
    return rows


@pytest.fixture(scope="module")
def toy_pairs(tiny_model_dir):
    _, tokenizer = load_scalar_rm(str(tiny_model_dir))
    return encode_pairs(_toy_rows(4), tokenizer, max_length=512, on_overlong="error", where="toy")


def test_the_update_is_the_same_for_every_micro_batch_size(tiny_model_dir, toy_pairs):
    # SGD with lr 1: the parameter change is exactly the gradient of the step's mean loss.
    changes = []
    for micro in (1, 3, 8):
        torch.manual_seed(0)
        model, tokenizer = load_scalar_rm(str(tiny_model_dir))
        before = {k: v.detach().clone() for k, v in model.named_parameters()}
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        m = rm_step(
            model, optimizer, scheduler, toy_pairs, pad_id=tokenizer.pad_token_id, micro_batch_size=micro, grad_clip=0
        )
        changes.append(({k: v.detach() - before[k] for k, v in model.named_parameters()}, m))
    for delta, m in changes[1:]:
        assert m["loss"] == pytest.approx(changes[0][1]["loss"], abs=1e-6)
        for name, d in delta.items():
            assert torch.allclose(d, changes[0][0][name], atol=1e-6), name


# --- `r1 rm` end to end ---------------------------------------------------------------------------------


def test_r1_rm_trains_reports_held_out_accuracy_and_reloads(tiny_model_dir, tmp_path):
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _toy_rows(20)))
    out = tmp_path / "run"
    code = main(
        [
            "rm",
            f"model.name={tiny_model_dir}",
            f"rm.data={data}",
            f"run.output_dir={out}",
            "run.threads=1",
            "rm.epochs=3",
            "rm.batch_size=8",
            "rm.eval_fraction=0.2",
            "optim.lr=3e-3",
            "train.micro_batch_size=8",
            "train.save_every=1000",
        ]
    )
    assert code == 0
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [m for m in metrics if m["step"] > 0]
    assert len(steps) == 3 * math.ceil(32 / 8)  # 16 train prompts × 2 pairs, 3 epochs
    first, last = sum(m["loss"] for m in steps[:3]) / 3, sum(m["loss"] for m in steps[-3:]) / 3
    assert last < first * 0.5, (first, last)  # separable toy set: the loss falls
    summary = json.loads((out / "rm_eval.json").read_text())
    assert summary["heldout_pairs"] == 8 and summary["train_pairs"] == 32 and metrics[0]["step"] == 0
    assert summary["accuracy"] == 1.0 and summary["loss"] < summary["before"]["loss"]
    assert steps[-1]["rm/eval_accuracy"] == summary["accuracy"] and set(summary) >= {
        "accuracy/rude",
        "accuracy/refusal",
        "margin",
    }

    final = out / "checkpoints" / "final"
    assert is_scalar_rm(str(final))
    model, tokenizer = load_scalar_rm(str(final))
    pairs = encode_pairs(_toy_rows(20), tokenizer, max_length=512, on_overlong="error", where="toy")
    _, heldout = split_by_prompt(pairs, [p.prompt for p in pairs], 0.2, seed=0)
    again = evaluate_pairs(model, heldout, pad_id=tokenizer.pad_token_id, batch_size=4)
    assert again["rm/eval_loss"] == pytest.approx(summary["loss"], abs=1e-5)  # the checkpoint is the trained model
    scorer = load_scorer(str(final), "helpfulness")
    good, bad = scorer(["What is 2 + 3?"] * 2, ["The answer is 5. Happy to help!", "no no no no"])
    assert good > bad


def test_r1_rm_reports_a_missing_data_file_without_a_traceback(tiny_model_dir, tmp_path, capsys):
    assert (
        main(
            [
                "rm",
                f"model.name={tiny_model_dir}",
                f"rm.data={tmp_path / 'missing.jsonl'}",
                f"run.output_dir={tmp_path / 'run'}",
            ]
        )
        == 2
    )
    assert "preference data not found" in capsys.readouterr().err


def test_a_resumed_rm_run_equals_an_uninterrupted_one(tiny_model_dir, tmp_path, monkeypatch):
    from r1.train import rm as rm_module

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _toy_rows(6)))

    def cfg(out):
        return load_config(
            None,
            [
                f"model.name={tiny_model_dir}",
                f"rm.data={data}",
                f"run.output_dir={out}",
                "run.threads=1",
                "rm.batch_size=4",
                "rm.epochs=2",
                "optim.lr=3e-3",
                "train.micro_batch_size=4",
                "train.save_every=2",
                "run.resume=auto",
            ],
        )

    rm_module.train_rm(cfg(tmp_path / "straight"))
    real_step, calls = rm_module.rm_step, []

    def dies_at_step_3(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed after the step-2 checkpoint
        return real_step(*args, **kwargs)

    monkeypatch.setattr(rm_module, "rm_step", dies_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        rm_module.train_rm(cfg(tmp_path / "resumed"))
    monkeypatch.setattr(rm_module, "rm_step", real_step)
    rm_module.train_rm(cfg(tmp_path / "resumed"))
    read = lambda run: [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    straight, resumed = read(tmp_path / "straight"), read(tmp_path / "resumed")
    # 10 train pairs → 3 steps × 2 epochs
    assert [m["step"] for m in resumed] == [m["step"] for m in straight] == list(range(0, 7))
    assert [m["loss"] for m in resumed[1:]] == pytest.approx([m["loss"] for m in straight[1:]], abs=1e-6)
    assert json.loads((tmp_path / "resumed" / "rm_eval.json").read_text())["loss"] == pytest.approx(
        json.loads((tmp_path / "straight" / "rm_eval.json").read_text())["loss"], abs=1e-6
    )
