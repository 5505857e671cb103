"""Rejection sampling (`r1 sample`): every accept/reject path with scripted completions on the tiny
model, the judge for prompts without a reference, the SFT output `r1 sft` reads, and resume."""

import json
from types import SimpleNamespace

import pytest
import torch

from r1.cli import main
from r1.config import ConfigError, load_config
from r1.data import DataError
from r1.pipeline.sample import load_prompts, read_progress, run_sample, select
from r1.train.sft import load_sft_data

GOOD = "<think>{} = {}</think><answer>{}</answer>"
SCRIPT = {  # question → (reference, its k=4 completions in sample order)
    "What is 2 + 3?": (
        "5",
        [
            GOOD.format("2 + 3", 5, 5),
            GOOD.format("2 + 3", 5, 5),  # kept; the copy is a duplicate
            GOOD.format("2 + 3", 6, 6),  # incorrect
            "<think>2 + 3</think>5",  # format
        ],
    ),
    "What is 10 - 4?": (
        "6",
        [
            GOOD.format("10 - 4", 6, 6),
            "<think>10 - 4 = 6, yes.</think><answer>6</answer>",  # kept (max_per_prompt 2)
            "<think>Four from ten is 6.</think><answer>6</answer>",  # over_max_per_prompt
            "<think>ten minus four 先算一下 然后 再算</think><answer>6</answer>",  # language
        ],
    ),
    "What is 3 * 3?": (
        "9",
        [
            "<think>cut",  # truncated
            "<think>```\n3*3\n```</think><answer>9</answer>",  # code
            "<think>" + "check it again now " * 20 + "</think><answer>9</answer>",  # repetition
            GOOD.format("3 * 3", 9, 9),  # kept
        ],
    ),
    "Name a prime number.": (
        None,
        [  # no reference: the judge decides
            "<think>2 is prime.</think><answer>2</answer>",  # judge: CORRECT → kept
            "<think>4 is prime.</think><answer>4</answer>",  # judge: INCORRECT
            "<think>x is prime.</think><answer>x</answer>",  # judge: unreadable verdict
            "<think>```\nprint(7)\n```</think><answer>7</answer>",  # code: filtered before the judge
        ],
    ),
    "What is 7 + 1?": ("8", [GOOD.format("7 + 1", 8, 8)] + [GOOD.format("7 + 1", v, v) for v in (7, 9, 10)]),
}
EXPECTED_WITH_JUDGE = {
    "incorrect": 4,
    "code": 2,
    "duplicate": 1,
    "format": 1,
    "over_max_per_prompt": 1,
    "language": 1,
    "truncated": 1,
    "repetition": 1,
    "judge_incorrect": 1,
    "judge_unparseable": 1,
}


class Scripted:
    """A generate_fn serving SCRIPT's completions; `fail_on_call` raises KeyboardInterrupt (a kill)."""

    def __init__(self, fail_on_call: int | None = None):
        self.calls, self.fail_on_call = [], fail_on_call
        self.taken = {q: 0 for q in SCRIPT}

    def __call__(self, model, tokenizer, prompt_ids, s):  # s: r1.rollout.Sampling
        seed = s.seed
        if self.fail_on_call == len(self.calls) + 1:
            raise KeyboardInterrupt
        texts = []
        for ids in prompt_ids:
            question = next(q for q in SCRIPT if q in tokenizer.decode(ids))
            texts.append(SCRIPT[question][1][self.taken[question]])
            self.taken[question] += 1
        self.calls.append({"rows": len(prompt_ids), "seed": seed})
        return SimpleNamespace(
            texts=texts,
            lengths=torch.tensor([len(t) for t in texts]),
            truncated=torch.tensor([t == "<think>cut" for t in texts]),
        )


class FakeJudge:
    """Judges by the response's answer: 2 is correct, 4 is not, anything else is unreadable."""

    def __init__(self):
        self.items = []

    def scores(self, items):
        self.items += items
        return [
            {"<answer>2</answer>": 1.0, "<answer>4</answer>": 0.0}.get(response.strip()) for _, response, _ in items
        ]


@pytest.fixture
def prompts(tmp_path):
    path = tmp_path / "prompts.jsonl"
    rows = [
        {"id": f"q{i}", "question": q, **({"answer": ref} if ref else {})}
        for i, (q, (ref, _)) in enumerate(SCRIPT.items())
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def config(tiny_model_dir, prompts, out, *extra):
    return load_config(
        None,
        [
            f"model.name={tiny_model_dir}",
            f"data.source={prompts}",
            "data.template=r1-brief",
            f"run.output_dir={out}",
            "sample.k=4",
            "sample.chunk_prompts=2",
            "sample.max_per_prompt=2",
            *extra,
        ],
    )


def read_rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_load_prompts_keeps_rows_without_a_reference(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"question": "Q1", "answer": "1"}\n{"prompt": "Q2"}\n{"other": 1}\n\n{"id": "x", "question": "Q3", '
        '"answer": ""}\n'
    )
    examples = load_prompts(load_config(None, [f"data.source={path}"]).data)
    assert [(e["id"], e["prompt"], e["answer"]) for e in examples] == [
        ("p-1", "Q1", "1"),
        ("p-2", "Q2", None),
        ("x", "Q3", None),
    ]
    path.write_text('{"question": "Q1"}\n[1, 2]\n')
    with pytest.raises(DataError, match="p.jsonl:2: expected a JSON object"):
        load_prompts(load_config(None, [f"data.source={path}"]).data)
    with pytest.raises(DataError, match="not found"):
        load_prompts(load_config(None, [f"data.source={tmp_path / 'none.jsonl'}"]).data)


def test_select_without_a_judge_rejects_the_uncheckable():
    example = {"id": "q", "prompt": "Name a prime number.", "answer": None}
    samples = [
        {
            "completion": c,
            "truncated": False,
            "length": 9,
            "answer": None,
            "rewards": {"accuracy": 0.0, "format": 1.0, "language": 1.0},
        }
        for c in ("<think>2 is prime.</think><answer>2</answer>", "<think>3.</think><answer>3</answer>")
    ]
    chosen = select([{"samples": samples}], [example], [], None)
    assert chosen["rows"] == [] and chosen["rejected"] == {"uncheckable": 2} and chosen["judged"] == 0
    # with a reference but a failed accuracy reward (None), the sample is uncheckable too
    samples[0]["rewards"]["accuracy"] = None
    assert select([{"samples": samples[:1]}], [{**example, "answer": "2"}], [], None)["rejected"] == {"uncheckable": 1}


def test_rejection_sampling_end_to_end(tiny_model_dir, prompts, tmp_path):
    judge = FakeJudge()
    report = run_sample(
        config(tiny_model_dir, prompts, tmp_path / "run"), generate_fn=Scripted(), judge=judge, progress=False
    )
    assert report["rejected"] == EXPECTED_WITH_JUDGE
    assert report["samples"] == 20 == report["kept"] + sum(report["rejected"].values())
    rows = read_rows(tmp_path / "run" / "sft.jsonl")
    assert [(r["id"], r["completion"]) for r in rows] == [
        ("q0", GOOD.format("2 + 3", 5, 5)),
        ("q1", GOOD.format("10 - 4", 6, 6)),
        ("q1", "<think>10 - 4 = 6, yes.</think><answer>6</answer>"),
        ("q2", GOOD.format("3 * 3", 9, 9)),
        ("q3", "<think>2 is prime.</think><answer>2</answer>"),
        ("q4", GOOD.format("7 + 1", 8, 8)),
    ]
    assert rows[0] == {"id": "q0", "prompt": "What is 2 + 3?", "completion": GOOD.format("2 + 3", 5, 5), "answer": "5"}
    assert rows[4]["judge"] == 1.0 and rows[4]["answer"] is None
    # the judge saw the three readable answers of the reference-less prompt, after the reasoning
    assert [(q, r, ref) for q, r, ref in judge.items] == [
        ("Name a prime number.", f"<answer>{a}</answer>", None) for a in (2, 4, "x")
    ]
    assert report["judged"] == 3 and report["prompts_with_kept"] == 5
    md = (tmp_path / "run" / "report.md").read_text()
    assert "| incorrect | 4 |" in md and "kept 6" in md
    # the output is SFT data `r1 sft` accepts, with the template the prompts were sampled with
    from r1.models import load_model

    _, tokenizer = load_model(str(tiny_model_dir))
    sft_cfg = load_config(None, ["data.template=r1-brief"])
    assert len(load_sft_data(str(tmp_path / "run" / "sft.jsonl"), tokenizer, sft_cfg)) == 6


def test_without_a_judge_reference_less_prompts_are_rejected(tiny_model_dir, prompts, tmp_path):
    report = run_sample(config(tiny_model_dir, prompts, tmp_path / "run"), generate_fn=Scripted(), progress=False)
    expected = {k: v for k, v in EXPECTED_WITH_JUDGE.items() if not k.startswith("judge")} | {"uncheckable": 3}
    assert report["rejected"] == expected and report["kept"] == 5 and report["judged"] == 0


def test_an_interrupted_run_resumes_where_it_stopped_and_a_finished_one_does_nothing(tiny_model_dir, prompts, tmp_path):
    whole = Scripted()
    reference = run_sample(
        config(tiny_model_dir, prompts, tmp_path / "whole"), generate_fn=whole, judge=FakeJudge(), progress=False
    )
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_sample(
            config(tiny_model_dir, prompts, out),
            generate_fn=Scripted(fail_on_call=2),
            judge=FakeJudge(),
            progress=False,
        )
    assert [c["chunk"] for c in read_progress(out / "progress.jsonl")] == [0] and not (out / "report.json").exists()
    with open(out / "progress.jsonl", "a") as handle:  # a kill in the middle of writing chunk 1's line
        handle.write('{"chunk": 1, "ids": ["q2", "q')
    # other settings cannot resume it
    with pytest.raises(ConfigError, match="sample.k"):
        run_sample(config(tiny_model_dir, prompts, out, "sample.k=3"), generate_fn=Scripted(), progress=False)
    resumed = Scripted()
    for question in list(SCRIPT)[:2]:  # chunk 0's prompts were sampled before the interruption
        resumed.taken[question] = 4
    report = run_sample(config(tiny_model_dir, prompts, out), generate_fn=resumed, judge=FakeJudge(), progress=False)
    assert resumed.calls == whole.calls[1:]  # chunks 1 and 2 only, with the seeds the whole run used
    assert read_rows(out / "sft.jsonl") == read_rows(tmp_path / "whole" / "sft.jsonl")
    assert report["rejected"] == reference["rejected"] and report["kept"] == reference["kept"]
    again = Scripted(fail_on_call=1)  # any generation would raise
    assert run_sample(config(tiny_model_dir, prompts, out), generate_fn=again, progress=False)["kept"] == report["kept"]


def test_a_changed_prompt_set_is_refused(tiny_model_dir, prompts, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_sample(config(tiny_model_dir, prompts, out), generate_fn=Scripted(fail_on_call=2), progress=False)
    lines = prompts.read_text().splitlines()
    prompts.write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n")  # same prompts, other order
    with pytest.raises(DataError, match="chunk 0 was made from other prompts"):
        run_sample(config(tiny_model_dir, prompts, out), generate_fn=Scripted(), progress=False)


def test_tiny_model_as_its_own_judge(tiny_model_dir, prompts, tmp_path):
    """The real judge path: the policy model (random, so its verdicts are garbage) judges the
    reference-less prompt; unreadable verdicts are counted, nothing raises."""
    cfg = config(
        tiny_model_dir, prompts, tmp_path / "run", f"sample.judge={tiny_model_dir}", "sample.judge_max_new_tokens=4"
    )
    report = run_sample(cfg, generate_fn=Scripted(), progress=False)
    judged = {k: v for k, v in report["rejected"].items() if k.startswith("judge")}
    assert report["judged"] == 3 and sum(judged.values()) + (report["kept"] - 5) == 3


def test_cli_sample_with_the_real_engine(tiny_model_dir, prompts, tmp_path, capsys):
    out = tmp_path / "cli"
    args = [
        "sample",
        "--model",
        str(tiny_model_dir),
        "--prompts",
        str(prompts),
        "--k",
        "2",
        "--limit",
        "3",
        "--output-dir",
        str(out),
        "rollout.max_new_tokens=6",
        "sample.chunk_prompts=2",
        "data.template=r1-brief",
    ]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["samples"] == 6 == report["kept"] + sum(report["rejected"].values())
    assert (out / "sft.jsonl").is_file() and (out / "config.yaml").is_file()
    assert main(args) == 0 and "nothing to do" in capsys.readouterr().out
    assert main([*args[:-3], "--output-dir", str(tmp_path / "bad"), "sample.k=0"]) == 2
    assert "sample.k must be ≥ 1" in capsys.readouterr().err
