"""`r1 demo` end to end on the tiny model: every stage runs and summary.json has the promised shape."""

import json

import pytest

from transformers import AutoModelForCausalLM

from r1.cli import main
from r1.progress import format_duration

TINY = [
    "sft.batch_size=4",
    "sft.max_length=256",
    "train.steps=1",
    "rollout.prompts_per_step=2",
    "rollout.samples_per_prompt=2",
    "rollout.max_new_tokens=8",
    "eval.limit=3",
    "eval.k=1",
    "eval.max_new_tokens=8",
    "train.micro_batch_size=4",
    "run.threads=1",
]


def test_demo_runs_every_stage_and_writes_summary(tiny_model_dir, tmp_path, monkeypatch, capsys):
    import r1.eval.harness as harness

    templates, real = [], harness.evaluate
    monkeypatch.setattr(harness, "evaluate", lambda *a, **k: templates.append(k["template"]) or real(*a, **k))
    out = tmp_path / "demo"
    assert (
        main(["demo", "--output-dir", str(out), "--coldstart-examples", "8", f"model.name={tiny_model_dir}", *TINY])
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["heldout"]) == {"base", "coldstart", "final"}
    assert all(0.0 <= v <= 1.0 for v in summary["heldout"].values())
    assert all(0.0 <= v <= 1.0 for v in summary["format"].values())
    # None for a stage with no sample in the format
    assert set(summary["accuracy_formatted"]) == set(summary["heldout"])
    assert all(v is None or 0.0 <= v <= 1.0 for v in summary["accuracy_formatted"].values())
    assert summary["heldout_problems"] == 3 and summary["samples_per_problem"] == 1
    for stage in ("coldstart", "final"):
        AutoModelForCausalLM.from_pretrained(summary["checkpoints"][stage])  # plain transformers loads them
    assert summary["timings_s"]["total"] >= summary["timings_s"]["grpo"] > 0
    # the held-out evaluation used the template the model was trained with (the demo's r1-brief)
    assert templates == ["r1-brief"] * 3  # prompts rendered as in training, for every stage
    for stage in ("base", "coldstart", "final"):
        assert json.loads((out / "eval" / stage / "results.json").read_text())["settings"]["template"] == "r1-brief"
    assert len((out / "coldstart.jsonl").read_text().splitlines()) == 8
    stages = [line for line in capsys.readouterr().out.splitlines() if line.startswith("demo stage ")]
    assert [line.split("  ")[0] for line in stages] == [f"demo stage {i}/5" for i in range(1, 6)]  # each stage's time
    assert stages[-1].endswith(f"done eval_final in {format_duration(summary['timings_s']['eval_final'])}")


def test_demo_refuses_a_cold_start_of_no_examples(capsys):
    for bad in ("0", "-3", "many"):
        with pytest.raises(SystemExit) as stop:
            main(["demo", "--coldstart-examples", bad])
        assert stop.value.code == 2 and "expected a whole number ≥ 1" in capsys.readouterr().err
