"""`r1 distill --method on-policy` on the tiny model: the student samples, the teacher grades every token.

A teacher equal to the student gives a zero divergence; a different teacher is approached (the
divergence on the student's own samples falls over the steps); teacher tokens are counted; a teacher
with another tokenizer is refused before any sampling; the command's manifest and its resume.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch

from r1.config import ConfigError, load_config
from r1.models import load_model, load_tokenizer
from r1.pipeline.distill import run_distill
from r1.train.on_policy import check_same_tokenizer, train_on_policy


def cfg_for(student, out, *overrides):
    return load_config(
        None,
        [
            f"model.name={student}",
            f"run.output_dir={out}",
            "run.threads=1",
            "data.source=arithmetic",
            "data.size=16",
            "rollout.prompts_per_step=2",
            "rollout.samples_per_prompt=4",
            "rollout.max_new_tokens=12",
            "rewards.weights={format: 1.0}",
            "train.micro_batch_size=3",  # 8 rows: chunks of 3, 3, 2
            "train.steps=2",
            "optim.lr=1e-3",
            *overrides,
        ],
    )


@pytest.fixture(scope="module")
def other_teacher(tiny_model_dir, tmp_path_factory):
    """The tiny model with perturbed weights, saved with the same tokenizer."""
    model, tokenizer = load_model(str(tiny_model_dir))
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.5 * p.std())
    path = tmp_path_factory.mktemp("teacher") / "model"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_teacher_equal_to_the_student_gives_zero_divergence(tiny_model_dir, tmp_path):
    rows = metrics(train_on_policy(cfg_for(tiny_model_dir, tmp_path, "train.steps=1"), str(tiny_model_dir)))
    assert rows[0]["distill/divergence"] == pytest.approx(0.0, abs=1e-6)
    tokens = rows[0]["distill/teacher_tokens"]
    assert tokens > 8 * 1  # every row's prompt and completion went through the teacher


@pytest.mark.parametrize("loss", ["reverse-kl", "forward-kl", "jsd"])
def test_the_student_moves_towards_the_teacher(tiny_model_dir, other_teacher, tmp_path, loss):
    cfg = cfg_for(tiny_model_dir, tmp_path, "train.steps=8", "optim.lr=3e-3", f"distill.loss={loss}", "data.size=2")
    rows = metrics(train_on_policy(cfg, str(other_teacher)))
    first, last = [r["distill/divergence"] for r in rows[:2]], [r["distill/divergence"] for r in rows[-2:]]
    assert min(first) > 0 and sum(last) < 0.8 * sum(first), (first, last)
    counts = [r["distill/teacher_tokens"] for r in rows]
    assert all(b > a for a, b in zip(counts, counts[1:]))  # a running total


def test_a_teacher_with_another_tokenizer_is_refused(tiny_model_dir):
    student = load_tokenizer(str(tiny_model_dir))
    teacher = copy.deepcopy(student)
    teacher.add_tokens(["<an-extra-token>"])
    with pytest.raises(ConfigError, match="another tokenizer"):
        check_same_tokenizer(student, teacher, "T")
    check_same_tokenizer(student, copy.deepcopy(student), "T")  # the same vocabulary passes


def test_the_command_writes_its_manifest_and_resumes(tiny_model_dir, other_teacher, tmp_path):
    cfg = cfg_for(tiny_model_dir, tmp_path / "run", "distill.method=on-policy")
    manifest = run_distill(cfg, teacher=str(other_teacher), student=str(tiny_model_dir))
    assert manifest["method"] == "on-policy" and list(manifest["parts"]) == ["on-policy"]
    part = manifest["parts"]["on-policy"]
    assert manifest["status"] == part["status"] == "finished" and part["steps"] == 2 and part["teacher_tokens"] > 0
    assert (tmp_path / "run" / "on-policy" / "checkpoints" / "final" / "config.json").is_file()
    again = run_distill(cfg, teacher=str(other_teacher), student=str(tiny_model_dir))  # finished: skipped
    assert again["parts"]["on-policy"]["steps"] == 2
    with pytest.raises(ConfigError, match="other settings"):  # another method in the same directory
        run_distill(
            cfg_for(tiny_model_dir, tmp_path / "run", "distill.method=sft"),
            teacher=str(other_teacher),
            student=str(tiny_model_dir),
        )
