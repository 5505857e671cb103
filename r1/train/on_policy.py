"""On-policy distillation (`r1 distill --method on-policy`): the student samples, the teacher grades every token.

Each step draws `rollout.prompts_per_step` prompts and samples `rollout.samples_per_prompt`
completions of each from the student, with the GRPO rollout machinery (any engine). The teacher then
runs one forward pass (no gradient) over the same prompts and completions. The student minimizes the
per-token divergence from its own next-token distribution to the teacher's on the tokens it sampled
itself (`distill.loss`, r1/rl/distill.py: reverse KL by default, the mode-seeking direction; forward
KL or the generalized JSD with `distill.beta`), averaged over every completion token of the batch,
in micro-batches of `train.micro_batch_size` rows with one optimizer step per batch. The student
learns where its own samples go wrong, and no verifier is needed: the teacher's distribution is the
signal (Agarwal et al. 2024, arXiv 2306.13649, "on-policy" GKD; docs/distill.md).

The teacher and the student must share the tokenizer (their distributions are compared token id by
token id); a mismatch stops the run before any sampling. Logged per step: `distill/divergence` (the
batch's mean per-token divergence), `distill/teacher_tokens` (prompt + completion tokens through the
teacher, summed over the run and kept across resumes), the configured rewards of the student's own
samples (for reading only: they do not enter the loss), and with `eval.every_steps` the periodic
evaluation. The run loop (loop.py) gives it checkpoints, resume and signals like every command.

Deliberately left out: data parallelism (one process), the sampled-token estimator and mixing the
teacher's divergence into a GRPO reward, a teacher on another device than the student.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from r1.config import Config, ConfigError
from r1.models import load_model
from r1.rewards import RewardRuntime, score_completions
from r1.rl import DISTILL_LOSSES, aggregate
from r1.rollout import RolloutEngine
from r1.train import distributed as dist
from r1.train.batch import weighted_total
from r1.train.forward import completion_logits
from r1.train.grpo import TrainingError, load_eval_subset, periodic_eval, sampling_of
from r1.train.loop import Trainer, run_training
from r1.train.optim import build_optimizer, optimizer_step
from r1.train.run import IndexSampler, for_rollout, load_prompt_dataset, load_trainable, peak_memory_mib
from r1.train.stats import RunStats


@dataclass
class DistillRun:
    """What every on-policy distillation step works with, built once where the run starts."""

    cfg: Config
    student: torch.nn.Module
    teacher: torch.nn.Module  # frozen, eval mode
    tokenizer: Any  # the student's (and, checked, the teacher's)
    examples: list[dict]  # the prompts, tokenized
    optimizer: torch.optim.Optimizer
    scheduler: Any
    sampler: IndexSampler
    stats: RunStats
    engine: RolloutEngine = field(default_factory=RolloutEngine)
    rewards: RewardRuntime = field(default_factory=RewardRuntime)  # the student's samples, scored for reading


def check_same_tokenizer(student_tokenizer, teacher_tokenizer, teacher: str) -> None:
    """Distributions are compared token id by token id: the vocabularies must be the same."""
    if student_tokenizer.get_vocab() != teacher_tokenizer.get_vocab():
        raise ConfigError(
            f"the teacher {teacher} has another tokenizer than the student ({len(teacher_tokenizer)} vs "
            f"{len(student_tokenizer)} tokens, or the same size with other ids): on-policy distillation compares "
            "next-token distributions and needs one vocabulary; use --method sft, which only needs the teacher's text"
        )


def distill_step(run: DistillRun) -> dict:
    """One step: the student samples → the teacher scores its tokens → one optimizer step on the divergence."""
    cfg, t0 = run.cfg, time.perf_counter()
    drawn = run.sampler.take(cfg.rollout.prompts_per_step)
    prompts = [run.examples[i] for i in drawn]
    sampling = sampling_of(cfg.rollout, logprobs=False)
    rollout = run.engine.generate(for_rollout(run.student), run.tokenizer, [e["prompt_ids"] for e in prompts], sampling)
    rows = [e for e in prompts for _ in range(cfg.rollout.samples_per_prompt)]
    t1 = time.perf_counter()
    update = distill_update(run, rollout)
    run.stats.samples_seen += len(rows)
    run.stats.teacher_tokens += sum(len(p) for p in rollout.prompt_ids) + int(rollout.lengths.sum())
    scores = score_completions(rollout.texts, rows, list(cfg.rewards.weights), runtime=run.rewards)
    total, valid = weighted_total(scores.values, cfg.rewards.weights)
    present = {name: [v for v in values if v is not None] for name, values in scores.values.items()}
    return {
        **update,
        **{f"reward/{name}": sum(v) / len(v) for name, v in present.items() if v},
        "reward/mean": float(total[valid].mean()) if bool(valid.any()) else float("nan"),
        "completion_len/mean": float(rollout.lengths.float().mean()),
        "truncated_frac": float(rollout.truncated.float().mean()),
        "distill/teacher_tokens": run.stats.teacher_tokens,
        "lr": run.scheduler.get_last_lr()[0],
        "time/generate": t1 - t0,
        "time/step": time.perf_counter() - t0,
        "memory/peak_mib": peak_memory_mib(next(run.student.parameters()).device),
    }


def distill_update(run: DistillRun, rollout) -> dict:
    """The divergence over every completion token of the batch, accumulated over micro-batches; one step."""
    cfg, pad_id = run.cfg, run.tokenizer.pad_token_id
    B, mb = len(rollout.texts), cfg.train.micro_batch_size
    mask = rollout.mask.float()  # (B, T)
    total_tokens, divergence = float(mask.sum()), 0.0
    run.student.train()
    for start in range(0, B, mb):
        rows = slice(start, start + mb)
        width = max(1, int(rollout.lengths[rows].max()))
        ids, chunk_mask = rollout.completion_ids[rows, :width], mask[rows, :width]
        student = completion_logits(run.student, rollout.prompt_ids[rows], ids, pad_id=pad_id, bf16=cfg.train.bf16)
        with torch.no_grad():
            teacher = completion_logits(run.teacher, rollout.prompt_ids[rows], ids, pad_id=pad_id, bf16=cfg.train.bf16)
        per_token = DISTILL_LOSSES[cfg.distill.loss](
            student.float(),
            teacher.float(),
            chunk_mask.to(student.device),
            temperature=cfg.rollout.temperature,
            beta=cfg.distill.beta,
        )  # (mb, width)
        loss = aggregate(per_token, chunk_mask.to(student.device), total_tokens=total_tokens, aggregation="token-mean")
        loss.backward()
        divergence += float(loss.detach())
    grad_norm, ok = optimizer_step(run.student, run.optimizer, run.scheduler, grad_clip=cfg.optim.grad_clip)
    run.stats.nonfinite_steps += 0 if ok else 1
    return {"distill/divergence": divergence, "loss": divergence, "grad_norm": grad_norm}


def build_distill_run(cfg: Config, teacher: str, resume_from: Path | None = None) -> DistillRun:
    student, tokenizer = load_trainable(cfg, resume_from)
    teacher_model, teacher_tokenizer = load_model(teacher, dtype=cfg.model.dtype, device=dist.device(cfg.run.device))
    check_same_tokenizer(tokenizer, teacher_tokenizer, teacher)
    teacher_model.requires_grad_(False).eval()
    examples = load_prompt_dataset(cfg.data, tokenizer)
    optimizer, scheduler = build_optimizer(student, cfg.optim, total_steps=cfg.train.steps)
    return DistillRun(
        cfg=cfg,
        student=student,
        teacher=teacher_model,
        tokenizer=tokenizer,
        examples=examples,
        optimizer=optimizer,
        scheduler=scheduler,
        sampler=IndexSampler(len(examples), cfg.run.seed),
        stats=RunStats(),
        engine=RolloutEngine(cfg.rollout.engine, cfg.rollout.vllm),
        rewards=RewardRuntime.build(cfg.rewards),
    )


def train_on_policy(cfg: Config, teacher: str) -> Path:
    """On-policy distillation of `model.name` (the student) towards `teacher`, through the shared run
    loop; returns the run directory (checkpoints/final holds the student)."""
    if dist.launched():
        raise TrainingError("on-policy distillation runs in one process for now (docs/distill.md)")

    def setup(resume_from: Path | None) -> Trainer:
        run = build_distill_run(cfg, teacher, resume_from)
        eval_examples = load_eval_subset(cfg, run.tokenizer) if cfg.eval.every_steps else None

        def step_fn(step: int):
            metrics = distill_step(run)
            if eval_examples and step % cfg.eval.every_steps == 0:
                metrics.update(periodic_eval(for_rollout(run.student), run.tokenizer, eval_examples, cfg))
            return metrics, None

        return Trainer(
            label="distill",
            total_steps=cfg.train.steps,
            model=run.student,
            tokenizer=run.tokenizer,
            optimizer=run.optimizer,
            scheduler=run.scheduler,
            sampler=run.sampler,
            step=step_fn,
            stats=run.stats,
            close=run.rewards.close,
        )

    return run_training(cfg, "distill", setup).run_dir
