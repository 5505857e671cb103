"""`r1 distill` on the tiny model: teacher samples (scripted) → rejection sampling → SFT of the
student, one run directory; the manifest; resume between and within the parts; the errors.

Teacher and student are the same fixture folder: the distillation only reads it (the student's
result is a new checkpoint under sft/), which the first test checks by hashing the folder.
"""

import hashlib
import json
import re
import shutil
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoModelForCausalLM

import r1.pipeline.distill as distill
from r1.cli import main
from r1.config import ConfigError, load_config
from r1.data import DataError
from r1.models import ModelLoadError
from r1.pipeline.distill import run_distill
from r1.rollout import ENGINES
from r1.train.run import RunLogger

QUESTIONS = {"What is 2 + 3?": 5, "What is 10 - 4?": 6, "What is 3 * 3?": 9, "What is 7 + 1?": 8}
SETTINGS = [
    "data.template=r1-brief",
    "run.threads=1",
    "sample.k=2",
    "sample.chunk_prompts=2",
    "rollout.max_new_tokens=32",
    "sft.batch_size=2",
    "sft.epochs=2",
    "sft.max_length=256",
    "train.micro_batch_size=2",
    "train.save_every=2",
    "optim.lr=1e-3",
]


class Teacher:
    """A generate_fn: each question's 1st sample is right and its 2nd wrong (`right=False`: all wrong).
    `fail_on_call` raises KeyboardInterrupt (a kill) on that call; `calls` counts the calls made."""

    def __init__(self, right: bool = True, fail_on_call: int | None = None):
        self.right, self.fail_on_call, self.calls, self.taken = right, fail_on_call, 0, {q: 0 for q in QUESTIONS}

    def __call__(self, model, tokenizer, prompt_ids, s):  # s: r1.rollout.Sampling
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise KeyboardInterrupt
        texts = []
        for ids in prompt_ids:
            question = next(q for q in QUESTIONS if q in tokenizer.decode(ids))
            answer = QUESTIONS[question] + (0 if self.right and self.taken[question] == 0 else 1)
            texts.append(f"<think>{question[8:-1]} = {answer}</think><answer>{answer}</answer>")
            self.taken[question] += 1
        return SimpleNamespace(
            texts=texts,
            lengths=torch.tensor([len(t) for t in texts]),
            truncated=torch.zeros(len(texts), dtype=torch.bool),
        )


def no_generation(*args, **kwargs):
    raise AssertionError("the teacher sampled again")


@pytest.fixture
def prompts(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "question": q, "answer": str(a)}) + "\n"
            for i, (q, a) in enumerate(QUESTIONS.items())
        )
    )
    return path


def config(prompts, out, *extra):
    return load_config(None, [f"data.source={prompts}", f"run.output_dir={out}", *SETTINGS, *extra])


def folder_hash(path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.name.encode() + file.read_bytes())
    return digest.hexdigest()


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def weights(path) -> dict[str, torch.Tensor]:
    return AutoModelForCausalLM.from_pretrained(str(path)).state_dict()


def test_distill_end_to_end_writes_the_manifest(tiny_model_dir, prompts, tmp_path):
    before, out, tiny = folder_hash(tiny_model_dir), tmp_path / "run", str(tiny_model_dir)
    manifest = run_distill(config(prompts, out), teacher=tiny, student=tiny, generate_fn=Teacher(), progress=False)

    assert manifest == json.loads((out / "distill.json").read_text())
    assert manifest["status"] == "finished"
    assert manifest["inputs"] == {"teacher": tiny, "student": tiny, "prompts": str(prompts), "template": "r1-brief"}
    sample, trained = manifest["parts"]["sample"], manifest["parts"]["sft"]
    # 4 prompts × 2 samples: the first of each is right, the second wrong
    assert {
        k: sample[k] for k in ("status", "prompts", "samples", "kept", "prompts_with_kept", "rejected", "judged")
    } == {
        "status": "finished",
        "prompts": 4,
        "samples": 8,
        "kept": 4,
        "prompts_with_kept": 4,
        "rejected": {"incorrect": 4},
        "judged": 0,
    }
    assert sample["inputs"] == {"model": tiny, "prompts": str(prompts)}
    assert sample["outputs"] == {
        "data": str(out / "sample" / "sft.jsonl"),
        "report": str(out / "sample" / "report.json"),
    }
    # 4 rows, batch 2, 2 epochs = 4 steps, on the sample part's output with its template
    assert {k: trained[k] for k in ("status", "data_rows", "steps", "inputs", "outputs")} == {
        "status": "finished",
        "data_rows": 4,
        "steps": 4,
        "inputs": {"model": tiny, "data": str(out / "sample" / "sft.jsonl"), "template": "r1-brief"},
        "outputs": {"checkpoint": str(out / "sft" / "checkpoints" / "final")},
    }
    assert sample["seconds"] > 0 and trained["seconds"] > 0 and "error" not in sample and "error" not in trained

    rows = read_jsonl(out / "sample" / "sft.jsonl")
    assert [(r["id"], r["completion"]) for r in rows] == [
        ("q0", "<think>2 + 3 = 5</think><answer>5</answer>"),
        ("q1", "<think>10 - 4 = 6</think><answer>6</answer>"),
        ("q2", "<think>3 * 3 = 9</think><answer>9</answer>"),
        ("q3", "<think>7 + 1 = 8</think><answer>8</answer>"),
    ]
    parts = {name: load_config(out / name / "config.yaml") for name in ("sample", "sft")}
    assert parts["sample"].model.name == tiny and parts["sft"].model.name == tiny
    assert parts["sft"].sft.data == str(out / "sample" / "sft.jsonl")
    assert parts["sample"].data.template == parts["sft"].data.template == "r1-brief"
    assert [m["step"] for m in read_jsonl(out / "sft" / "metrics.jsonl")] == [1, 2, 3, 4]

    # the student was trained into a new checkpoint; the shared fixture folder is untouched
    assert folder_hash(tiny_model_dir) == before
    start, final = weights(tiny_model_dir), weights(out / "sft" / "checkpoints" / "final")
    assert any(not torch.equal(start[k], final[k]) for k in start)


def test_resume_within_and_between_parts(tiny_model_dir, prompts, tmp_path, monkeypatch):
    tiny, teacher_dir = str(tiny_model_dir), tmp_path / "teacher"
    run_distill(
        config(prompts, tmp_path / "straight"), teacher=tiny, student=tiny, generate_fn=Teacher(), progress=False
    )
    shutil.copytree(tiny_model_dir, teacher_dir)  # a teacher on scratch space, deleted once sampled
    scratch_teacher = str(teacher_dir)

    # 1. killed while sampling the second chunk of prompts
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_distill(
            config(prompts, out),
            teacher=scratch_teacher,
            student=tiny,
            generate_fn=Teacher(fail_on_call=2),
            progress=False,
        )
    manifest = json.loads((out / "distill.json").read_text())
    assert manifest["parts"]["sample"]["status"] == "interrupted" and manifest["parts"]["sft"]["status"] == "pending"
    assert not (out / "sft").exists()

    # 2. the rerun samples only the second chunk, then is killed in SFT step 3 (after the step-2 checkpoint)
    real_log = RunLogger.log

    def log_then_die(self, step, metrics, **kw):
        real_log(self, step, metrics, **kw)
        if step == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunLogger, "log", log_then_die)
    teacher = Teacher()
    with pytest.raises(KeyboardInterrupt):
        run_distill(config(prompts, out), teacher=scratch_teacher, student=tiny, generate_fn=teacher, progress=False)
    monkeypatch.undo()
    assert teacher.calls == 1
    manifest = json.loads((out / "distill.json").read_text())
    assert manifest["parts"]["sample"]["status"] == "finished" and manifest["parts"]["sft"]["status"] == "interrupted"
    assert manifest["status"] == "interrupted" and manifest["parts"]["sft"]["error"].startswith("KeyboardInterrupt")
    sample_seconds, sft_seconds = manifest["parts"]["sample"]["seconds"], manifest["parts"]["sft"]["seconds"]

    # 3. the rerun does not sample again (nor need the teacher) and resumes SFT from its step-2 checkpoint
    shutil.rmtree(teacher_dir)
    manifest = run_distill(
        config(prompts, out), teacher=scratch_teacher, student=tiny, generate_fn=no_generation, progress=False
    )
    assert (
        manifest["status"] == "finished"
        and manifest["parts"]["sft"]["steps"] == 4
        and "error" not in manifest["parts"]["sft"]
    )
    assert (
        manifest["parts"]["sample"]["seconds"] == sample_seconds and manifest["parts"]["sft"]["seconds"] > sft_seconds
    )
    assert read_jsonl(out / "sample" / "sft.jsonl") == read_jsonl(tmp_path / "straight" / "sample" / "sft.jsonl")
    straight, resumed = (
        read_jsonl(tmp_path / "straight" / "sft" / "metrics.jsonl"),
        read_jsonl(out / "sft" / "metrics.jsonl"),
    )
    assert [m["step"] for m in resumed] == [1, 2, 3, 4]
    for a, b in zip(straight, resumed):
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-6), a["step"]
    final_a, final_b = (
        weights(tmp_path / "straight" / "sft" / "checkpoints" / "final"),
        weights(out / "sft" / "checkpoints" / "final"),
    )
    for k in final_a:
        torch.testing.assert_close(final_b[k], final_a[k], rtol=0, atol=1e-6)

    # 4. a finished distillation runs neither part again
    monkeypatch.setattr(distill, "train_sft", no_generation)
    again = run_distill(
        config(prompts, out), teacher=scratch_teacher, student=tiny, generate_fn=no_generation, progress=False
    )
    assert again["status"] == "finished" and again["parts"] == manifest["parts"]


def test_a_failed_sft_can_be_fixed_without_sampling_again(tiny_model_dir, prompts, tmp_path):
    out, tiny = tmp_path / "run", str(tiny_model_dir)
    with pytest.raises(DataError, match="over sft.max_length=16"):
        run_distill(
            config(prompts, out, "sft.max_length=16"), teacher=tiny, student=tiny, generate_fn=Teacher(), progress=False
        )
    manifest = json.loads((out / "distill.json").read_text())
    assert (
        manifest["status"] == manifest["parts"]["sft"]["status"] == "failed"
        and "DataError" in manifest["parts"]["sft"]["error"]
    )
    # the sampling settings are fixed now; the SFT's may change until the student is trained
    with pytest.raises(ConfigError, match=r"other settings \(sample.k\)"):
        run_distill(
            config(prompts, out, "sample.k=3", "sft.max_length=256"),
            teacher=tiny,
            student=tiny,
            generate_fn=no_generation,
        )
    manifest = run_distill(
        config(prompts, out, "sft.max_length=256"), teacher=tiny, student=tiny, generate_fn=no_generation
    )
    assert manifest["status"] == "finished" and manifest["parts"]["sft"]["steps"] == 4
    assert (
        load_config(out / "sft" / "config.yaml").sft.max_length
        == 256
        == load_config(out / "config.yaml").sft.max_length
    )
    with pytest.raises(ConfigError, match=r"other settings \(sft.epochs\)"):
        run_distill(
            config(prompts, out, "sft.max_length=256", "sft.epochs=3"),
            teacher=tiny,
            student=tiny,
            generate_fn=no_generation,
        )


def test_zero_kept_stops_before_sft(tiny_model_dir, prompts, tmp_path):
    out, tiny = tmp_path / "run", str(tiny_model_dir)
    with pytest.raises(
        DataError, match=r"rejection sampling kept 0 of 8 samples: 8 incorrect \(first examples in .*report.md\)"
    ):
        run_distill(config(prompts, out), teacher=tiny, student=tiny, generate_fn=Teacher(right=False), progress=False)
    assert not (out / "sft").exists()
    manifest = json.loads((out / "distill.json").read_text())
    assert manifest["status"] == "failed" and manifest["parts"]["sample"]["status"] == "finished"
    assert manifest["parts"]["sample"]["kept"] == 0 and manifest["parts"]["sample"]["rejected"] == {"incorrect": 8}
    assert manifest["parts"]["sft"]["status"] == "not started" and "kept 0 of 8" in manifest["parts"]["sft"]["error"]
    # the same command again: the same error, without sampling again
    with pytest.raises(DataError, match="kept 0 of 8 samples"):
        run_distill(config(prompts, out), teacher=tiny, student=tiny, generate_fn=no_generation, progress=False)
    # other settings or another teacher cannot reuse the directory
    with pytest.raises(ConfigError, match=r"other settings \(sample.k\)"):
        run_distill(
            config(prompts, out, "sample.k=3"), teacher=tiny, student=tiny, generate_fn=no_generation, progress=False
        )
    with pytest.raises(ConfigError, match=r"other settings \(--teacher, --student\)"):
        run_distill(
            config(prompts, out),
            teacher="/no/teacher",
            student="/no/student",
            generate_fn=no_generation,
            progress=False,
        )


def test_missing_prompts_teacher_or_student_fail_before_any_work(tiny_model_dir, prompts, tmp_path):
    tiny = str(tiny_model_dir)
    with pytest.raises(DataError, match="prompt file not found"):
        run_distill(
            config(tmp_path / "none.jsonl", tmp_path / "a"), teacher=tiny, student=tiny, generate_fn=no_generation
        )
    with pytest.raises(ModelLoadError, match="the teacher cannot be loaded: model path not found: /no/teacher"):
        run_distill(config(prompts, tmp_path / "b"), teacher="/no/teacher", student=tiny, generate_fn=no_generation)
    with pytest.raises(ModelLoadError, match="the judge cannot be loaded: model path not found: /no/judge"):
        run_distill(
            config(prompts, tmp_path / "b", "sample.judge=/no/judge"),
            teacher=tiny,
            student=tiny,
            generate_fn=no_generation,
        )
    with pytest.raises(
        ModelLoadError,
        match=f"the student cannot be loaded: {re.escape(str(tmp_path))} is a folder but not a Hugging Face model",
    ):
        run_distill(config(prompts, tmp_path / "c"), teacher=tiny, student=str(tmp_path), generate_fn=no_generation)
    assert not any((tmp_path / name).exists() for name in "abc")  # nothing was started


def test_cli_distill(tiny_model_dir, prompts, tmp_path, monkeypatch, capsys):
    tiny = str(tiny_model_dir)
    args = ["distill", "--teacher", tiny, "--student", tiny, "--prompts", str(prompts)]
    # the real engine on the random tiny teacher: nothing is kept, a one-line error and exit 2
    assert main([*args, "--output-dir", str(tmp_path / "random"), *SETTINGS, "rollout.max_new_tokens=4"]) == 2
    assert "r1: error: rejection sampling kept 0 of 8 samples: " in capsys.readouterr().err
    # a scripted teacher behind the fast engine's name: distilled, and a rerun has nothing to do
    monkeypatch.setitem(ENGINES, "fast", Teacher())
    out = tmp_path / "run"
    assert main([*args, "--output-dir", str(out), "--limit", "2", *SETTINGS]) == 0
    manifest = json.loads((out / "distill.json").read_text())
    assert (
        manifest["status"] == "finished"
        and manifest["parts"]["sample"]["kept"] == 2
        and manifest["parts"]["sft"]["steps"] == 2
    )
    monkeypatch.setitem(ENGINES, "fast", no_generation)
    assert main([*args, "--output-dir", str(out), "--limit", "2", *SETTINGS]) == 0
    assert "skipped" in capsys.readouterr().out
    assert main([*args, "--output-dir", str(out), "--limit", "3", *SETTINGS]) == 2
    assert "other settings (data.limit)" in capsys.readouterr().err


def test_mixed_runs_sft_then_on_policy_from_the_sft_student(tiny_model_dir, prompts, tmp_path):
    out, tiny = tmp_path / "mixed", str(tiny_model_dir)
    extra = ["distill.method=mixed", "train.steps=1", "rollout.prompts_per_step=2", "rollout.samples_per_prompt=2"]
    manifest = run_distill(
        config(prompts, out, *extra), teacher=tiny, student=tiny, generate_fn=Teacher(), progress=False
    )
    assert manifest["method"] == "mixed" and list(manifest["parts"]) == ["sample", "sft", "on-policy"]
    sft_final = out / "sft" / "checkpoints" / "final"
    online = manifest["parts"]["on-policy"]
    assert online["inputs"]["student"] == str(sft_final)  # the second part starts where the first ended
    assert (
        manifest["status"] == online["status"] == "finished" and online["steps"] == 1 and online["teacher_tokens"] > 0
    )
    # the teacher is the base model: a divergence above 0 shows the part trained the SFT student, not the base
    # (teacher = student gives exactly 0, tests/test_distill_on_policy.py)
    assert read_jsonl(out / "on-policy" / "metrics.jsonl")[0]["distill/divergence"] > 1e-4
