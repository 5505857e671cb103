"""`r1 pipeline`: stage order, the manifest, resume after a kill, --from/--only, failures, checks.

Most tests replace the stage runners with fakes that write a stage's completion marker (the
orchestration is what is tested, in milliseconds); one test runs real SFT and GRPO stages on the
tiny model. The held-out evaluation is scripted throughout (`evaluate_fn`).
"""

from __future__ import annotations

import json

import pytest

from r1.config import ConfigError, load_config
from r1.pipeline import pipeline as pl
from r1.pipeline import stages as st
from r1.train import checkpoint as ckpt

FOUR = [
    {"name": "coldstart", "kind": "sft", "data": ["coldstart:arithmetic:8"]},
    {"name": "reasoning", "kind": "grpo", "model": "coldstart"},
    {"name": "rs", "kind": "sample", "model": "reasoning", "data": ["arithmetic:4"]},
    {"name": "sft2", "kind": "sft", "data": ["stage:rs", "PAIRS"]},
    {"name": "allrl", "kind": "grpo", "model": "sft2", "data": ["arithmetic:4", "GENERAL:2"]},
]


@pytest.fixture
def pairs(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [
        {"prompt": "Say hello.", "chosen": "Hello!", "rejected": "No."},
        {"prompt": "Name a colour.", "chosen": "Blue.", "rejected": "?"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    general = [{"id": f"g{i}", "prompt": f"Write a line about the number {i}.", "kind": "general"} for i in range(3)]
    (tmp_path / "general.jsonl").write_text("".join(json.dumps(r) + "\n" for r in general))
    return path


def config(tmp_path, pairs, stages=FOUR, *extra):
    stages = json.loads(
        json.dumps(stages).replace("PAIRS", str(pairs)).replace("GENERAL", str(pairs.with_name("general.jsonl")))
    )
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        json.dumps({"model": {"name": "tiny"}, "pipeline": {"stages": stages}, "eval": {"limit": 4, "k": 1}})
    )
    return load_config(path, [f"run.output_dir={tmp_path / 'run'}", *extra])


class FakeRunners:
    """Stage runners that record their calls and write the completion marker; `fail` maps a stage
    name to the exception its next run raises."""

    def __init__(self, monkeypatch, fail=None):
        self.calls, self.fail = [], dict(fail or {})
        for kind in st.RUNNERS:
            monkeypatch.setitem(st.RUNNERS, kind, self.runner(kind))
        monkeypatch.setattr(pl, "RUNNERS", st.RUNNERS)

    def runner(self, kind):
        def run(cfg):
            name = cfg.run.output_dir.rsplit("/", 1)[-1]
            self.calls.append((name, cfg.model.name))
            if name in self.fail:
                raise self.fail.pop(name)
            out = pl.Path(cfg.run.output_dir)
            if kind == "sample":
                (out / "sft.jsonl").write_text(
                    json.dumps({"prompt": "What is 1 + 1?", "completion": "<think>1+1=2</think><answer>2</answer>"})
                    + "\n"
                )
                (out / "report.json").write_text(
                    json.dumps({"prompts": 4, "samples": 8, "kept": 1, "rejected": {"incorrect": 7}})
                )
            else:
                (out / "checkpoints" / "final").mkdir(parents=True)
                (out / "checkpoints" / "final" / ckpt.STEP_FILE).write_text(json.dumps({"step": 1}))

        return run


def scripted_eval(model_path, cfg):
    return {
        "accuracy": 0.5,
        "accuracy_ci": [0.1, 0.9],
        "format": 1.0,
        "language": 1.0,
        "mean_length": 10.0,
        "seconds": 0.0,
    }


def test_stages_run_in_order_each_from_its_input(tmp_path, pairs, monkeypatch):
    fake = FakeRunners(monkeypatch)
    manifest = pl.run_pipeline(config(tmp_path, pairs), evaluate_fn=scripted_eval)
    run = tmp_path / "run"
    assert [name for name, _ in fake.calls] == ["coldstart", "reasoning", "rs", "sft2", "allrl"]
    models = dict(fake.calls)
    # stage-3 SFT starts from the base model, as the paper does
    assert models["coldstart"] == "tiny" and models["sft2"] == "tiny"
    assert models["reasoning"] == str(run / "coldstart" / "checkpoints" / "final")
    assert models["allrl"] == str(run / "sft2" / "checkpoints" / "final")
    assert manifest["status"] == "finished" and all(s["status"] == "finished" for s in manifest["stages"].values())
    # stage-3 SFT data: the sampled reasoning plus the non-reasoning pairs' chosen answers
    rows = [json.loads(line) for line in (run / "sft2" / "data.jsonl").read_text().splitlines()]
    assert (
        len(rows) == 3
        and rows[0]["completion"].endswith("<answer>2</answer>")
        and "<answer>Hello!</answer>" in rows[1]["completion"]
    )
    prompts = [json.loads(line) for line in (run / "allrl" / "prompts.jsonl").read_text().splitlines()]
    assert [p["kind"] for p in prompts] == ["reasoning"] * 4 + ["general"] * 2 and "answer" not in prompts[-1]
    assert len({p["id"] for p in prompts}) == len(prompts)
    saved = json.loads((run / "manifest.json").read_text())
    assert saved["stages"]["rs"]["metrics"]["kept"] == 1 and saved["heldout"]["base"]["accuracy"] == 0.5
    assert [r["stage"] for r in saved["report"]] == ["base", "coldstart", "reasoning", "rs", "sft2", "allrl"]
    assert "| rs | sample |" in (run / "report.md").read_text()


def test_a_kill_after_stage_2_resumes_at_stage_3(tmp_path, pairs, monkeypatch):
    fake = FakeRunners(monkeypatch, fail={"rs": KeyboardInterrupt()})
    with pytest.raises(KeyboardInterrupt):
        pl.run_pipeline(config(tmp_path, pairs), evaluate_fn=scripted_eval)
    saved = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert [saved["stages"][n]["status"] for n in ("coldstart", "reasoning", "rs", "sft2")] == [
        "finished",
        "finished",
        "interrupted",
        "pending",
    ]
    fake.calls.clear()
    pl.run_pipeline(config(tmp_path, pairs), evaluate_fn=scripted_eval)
    assert [name for name, _ in fake.calls] == ["rs", "sft2", "allrl"]


def test_a_failing_stage_is_named_and_earlier_outputs_stay(tmp_path, pairs, monkeypatch):
    FakeRunners(monkeypatch, fail={"sft2": ValueError("disk full")})
    with pytest.raises(pl.StageFailed, match="stage 'sft2' \\(sft\\) failed: ValueError: disk full"):
        pl.run_pipeline(config(tmp_path, pairs), evaluate_fn=scripted_eval)
    run = tmp_path / "run"
    assert (run / "reasoning" / "checkpoints" / "final" / ckpt.STEP_FILE).is_file() and (
        run / "rs" / "sft.jsonl"
    ).is_file()
    saved = json.loads((run / "manifest.json").read_text())
    assert saved["status"] == "failed" and saved["stages"]["sft2"]["error"] == "ValueError: disk full"


def test_from_redoes_a_stage_and_all_later_ones_only_runs_one(tmp_path, pairs, monkeypatch):
    fake = FakeRunners(monkeypatch)
    pl.run_pipeline(config(tmp_path, pairs), evaluate_fn=scripted_eval)
    fake.calls.clear()
    pl.run_pipeline(config(tmp_path, pairs), start_from="rs", evaluate_fn=scripted_eval)
    assert [name for name, _ in fake.calls] == ["rs", "sft2", "allrl"]
    assert (tmp_path / "run" / "rs.prev" / "report.json").is_file()
    fake.calls.clear()
    pl.run_pipeline(config(tmp_path, pairs), only="reasoning", evaluate_fn=scripted_eval)
    assert [name for name, _ in fake.calls] == ["reasoning"]
    # the later stages were built from the old 'reasoning': a plain rerun refuses to reuse them
    with pytest.raises(ConfigError, match="stage 'rs' finished with other settings or inputs.*--from rs"):
        pl.run_pipeline(config(tmp_path, pairs), evaluate_fn=scripted_eval)


def test_changed_settings_of_a_finished_stage_are_not_silently_reused(tmp_path, pairs, monkeypatch):
    FakeRunners(monkeypatch)
    pl.run_pipeline(config(tmp_path, pairs), evaluate_fn=scripted_eval)
    changed = json.loads(json.dumps(FOUR))
    changed[1]["set"] = {"optim.lr": 1e-3}
    with pytest.raises(ConfigError, match="stage 'reasoning' finished with other settings"):
        pl.run_pipeline(config(tmp_path, pairs, changed), evaluate_fn=scripted_eval)
    pl.run_pipeline(config(tmp_path, pairs, FOUR, "run.threads=1"), evaluate_fn=scripted_eval)  # threads may change


@pytest.mark.parametrize(
    "stages, message",
    [
        ([], "pipeline.stages is empty"),
        ([{"name": "a", "kind": "sft", "data": ["x.jsonl"]}, {"name": "a", "kind": "grpo"}], "used twice"),
        ([{"name": "a", "kind": "grpo", "model": "b"}], "model 'b' is not an earlier sft/grpo stage"),
        (
            [{"name": "s", "kind": "sample"}, {"name": "g", "kind": "grpo", "model": "s"}],
            "model 's' is not an earlier sft/grpo stage",
        ),
        ([{"name": "a", "kind": "sft", "data": ["stage:later"]}], "'stage:later' does not name an earlier stage"),
        ([{"name": "a", "kind": "sft"}], "a sft stage needs data"),
        ([{"name": "a b", "kind": "sft", "data": ["x"]}], "name must be"),
        (
            [{"name": "a", "kind": "grpo", "set": {"grpo.betta": 0.1}}],
            "pipeline stage 'a', set: unknown config key 'grpo.betta'. Did you mean 'beta'",
        ),
        ([{"name": "a", "kind": "grpo", "set": {"grpo.beta": -1}}], "pipeline stage 'a': grpo.beta must be ≥ 0"),
    ],
)
def test_bad_pipelines_fail_before_any_stage_runs(tmp_path, pairs, monkeypatch, stages, message):
    fake = FakeRunners(monkeypatch)
    with pytest.raises(ConfigError, match=message.replace("(", "\\(").replace(")", "\\)")):
        pl.run_pipeline(config(tmp_path, pairs, stages), evaluate_fn=scripted_eval)
    assert fake.calls == []


def test_unknown_stage_for_from_and_bad_data_items(tmp_path, pairs, monkeypatch):
    FakeRunners(monkeypatch)
    with pytest.raises(ConfigError, match="--from nope: no such stage"):
        pl.run_pipeline(config(tmp_path, pairs), start_from="nope", evaluate_fn=scripted_eval)
    bad = [{"name": "a", "kind": "sft", "data": ["coldstart:chess:4"]}]
    with pytest.raises(pl.StageFailed, match="no worked-example generator for 'chess'"):
        pl.run_pipeline(config(tmp_path, pairs, bad), evaluate_fn=scripted_eval)
    missing = [{"name": "a", "kind": "sft", "data": ["no/such.jsonl"]}]
    with pytest.raises(pl.StageFailed, match="data file not found: no/such.jsonl"):
        pl.run_pipeline(config(tmp_path, pairs, missing), evaluate_fn=scripted_eval)


def test_real_sft_then_grpo_stages_on_the_tiny_model(tmp_path, pairs, tiny_model_dir):
    stages = [
        {"name": "coldstart", "kind": "sft", "data": ["coldstart:arithmetic:8", str(pairs)], "set": {"sft.epochs": 1}},
        {"name": "rl", "kind": "grpo", "model": "coldstart", "data": ["arithmetic:4"], "set": {"train.steps": 2}},
    ]
    settings = [
        f"model.name={tiny_model_dir}",
        "run.threads=1",
        "sft.batch_size=4",
        "rollout.prompts_per_step=2",
        "rollout.samples_per_prompt=2",
        "rollout.max_new_tokens=8",
        "train.micro_batch_size=4",
        "eval.max_new_tokens=8",
        "data.template=r1-brief",
    ]
    manifest = pl.run_pipeline(config(tmp_path, pairs, stages, *settings))
    run = tmp_path / "run"
    assert ckpt.checkpoint_step(run / "rl" / "checkpoints" / "final") == 2
    assert [r["stage"] for r in manifest["report"]] == ["base", "coldstart", "rl"]
    assert all(0 <= r["accuracy"] <= 1 and 0 <= r["language"] <= 1 for r in manifest["report"])
    assert manifest["stages"]["rl"]["metrics"]["step"] == 2
