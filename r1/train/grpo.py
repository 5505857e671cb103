"""GRPO training (docs/method.md §2, §4): sample → reward → advantage → update → log → checkpoint.

One optimizer step per PPO epoch: each step draws `rollout.prompts_per_step` prompts, samples
`rollout.samples_per_prompt` completions for each (a group), scores them with the configured
rewards, turns rewards into group-relative advantages, then makes `grpo.ppo_epochs` (μ) passes
over the batch; each pass accumulates gradients over `train.micro_batch_size`-row chunks and
applies one optimizer step. The loss of every chunk is normalized by whole-batch totals
(r1.rl.aggregate), so the update does not depend on the micro-batch size.

π_old log-probs are computed once per batch when μ > 1 (with μ = 1, π_old = π_θ detached: equal
in value, different in gradient — docs/method.md §2). π_ref is a frozen copy of the initial policy, built
only when β > 0, optionally replaced by the policy every `grpo.ref_reset_steps` steps.

The LR schedule counts optimizer steps: a step whose groups dynamic sampling dropped entirely has
no data and makes none; a step whose advantages are all zero still makes its μ steps (AdamW's
momentum and weight decay act), so the schedule moves on (tests/test_grpo_wiring.py).

A reward that raises or returns None for a sample excludes that sample from its group's
statistics (advantage 0) and is counted; past `rewards.max_error_rate` the run stops with the
reward's name and an example. A non-finite gradient skips the optimizer step and is counted.
With `rewards.routes` (all-scenario RL), a reward scores only the examples of the kinds routed to
it and adds nothing to the others' totals; reward models are loaded once, at start.

Data parallel (torchrun/accelerate, r1/train/distributed.py): `rollout.prompts_per_step` is the
global count; each rank samples its contiguous share of the same global prompt draw, so groups
stay whole. Batch-wide quantities — advantages (gathered rewards, so `advantage_scale=batch` is
exact), loss normalizers, dynamic-sampling counts, reward-error counts and metrics — are global,
and gradients are summed over ranks before the step: the update is the one-process update.
With LoRA (r1/train/lora.py) π_ref is the policy with its adapter off; with FSDP (r1/train/fsdp.py)
policy and π_ref are sharded and the rollout samples from the gathered weights.

The batch record is r1/train/batch.py, the update half of a step r1/train/update.py. Deliberately
left out here: evaluation (r1/eval) and the rollout engines (r1/rollout: fast, hf, vllm — one
`generate` contract).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from r1.config import Config
from r1.models import load_model
from r1.rewards import applies, check_kinds, configure_reward_models, score_completions
from r1.rewards import configure as configure_rewards
from r1.rewards.registry import check_reward_names
from r1.rl import zero_variance_groups
from r1.rollout import Sampling, engine, vllm_engine
from r1.train import checkpoint as ckpt
from r1.train import distributed as dist
from r1.train import fsdp, lora
from r1.train.batch import Batch, concat, select_groups, weighted_total  # noqa: F401 (weighted_total: API)
from r1.train.optim import build_optimizer
from r1.train.update import policy_update, prepare_update, trainable_rows  # noqa: F401 (trainable_rows: API)
from r1.train.loop import Trainer, run_training
from r1.train.run import IndexSampler, for_rollout, load_prompt_dataset, load_trainable, peak_memory_mib
from r1.train.stats import RunStats, StepCounts


@dataclass
class StepResult:
    """What one GRPO step hands back: its metrics, and every rank's scored rows with their advantages."""

    metrics: dict
    batch: Batch  # (B,) rows of all ranks, in the global order
    advantages: torch.Tensor  # (B,) of those rows (zeros for a step without an update)


class TrainingError(RuntimeError):
    """The run cannot continue; the message says why (e.g. a reward failing too often)."""


def rollout_and_score(sampler_model, tokenizer, examples: list[dict], cfg: Config, counts: StepCounts) -> Batch:
    """Sample and score with `sampler_model`, the plain-weights view of the policy (run.for_rollout);
    the scoring time and the rewards' events are added to `counts`."""
    r = cfg.rollout
    if not examples:  # a data-parallel rank's share of a small dynamic-sampling refill
        return Batch.empty(list(cfg.rewards.weights))
    sampling = Sampling(
        n=r.samples_per_prompt,
        temperature=r.temperature,
        top_p=r.top_p,
        max_new_tokens=r.max_new_tokens,
        dtype=r.dtype,
        ignore_eos=r.ignore_eos,
    )  # seed None: torch's RNG, seeded per run and rank
    rollout = engine(r.engine, sampler_model)(sampler_model, tokenizer, [e["prompt_ids"] for e in examples], sampling)
    rows = [e for e in examples for _ in range(r.samples_per_prompt)]
    t0 = time.perf_counter()
    scores = score_completions(rollout.texts, rows, list(cfg.rewards.weights), routes=cfg.rewards.routes)
    events = {key.removeprefix("rewards/"): n for key, n in scores.counts.items()}
    counts.add(events, scores.first_error, seconds=time.perf_counter() - t0)
    total, valid = weighted_total(scores.values, cfg.rewards.weights)
    return Batch(
        examples=rows,
        prompt_ids=rollout.prompt_ids,
        completion_ids=rollout.completion_ids,
        lengths=rollout.lengths,
        truncated=rollout.truncated,
        texts=rollout.texts,
        rewards=scores.values,
        total=total,
        valid=valid,
        engine_logp=rollout.logprobs,
    )


def collect(
    sampler_model, tokenizer, examples: list[dict], sampler: IndexSampler, cfg: Config
) -> tuple[Batch, float, StepCounts]:
    """Draw prompts, sample and score; with dynamic sampling drop (and refill) zero-variance groups.
    Returns (this rank's batch, the global share of zero-variance groups, this rank's counts).

    Every rank draws the same global prompts and samples its share; the group counts are global."""
    counts = StepCounts()
    G, want = cfg.rollout.samples_per_prompt, cfg.rollout.prompts_per_step
    parts, have, zero_var_seen, groups_seen = [], 0, 0, 0
    for round_ in range(1 + (cfg.grpo.dynamic_sampling_rounds if cfg.grpo.dynamic_sampling else 0)):
        drawn = sampler.take(want - have)
        batch = rollout_and_score(sampler_model, tokenizer, [examples[i] for i in dist.shard(drawn)], cfg, counts)
        zero = zero_variance_groups(batch.total.view(-1, G), batch.valid.view(-1, G))  # (P,)
        zero_var_seen, groups_seen = zero_var_seen + dist.sum_all(int(zero.sum())), groups_seen + len(drawn)
        if cfg.grpo.dynamic_sampling:
            batch = select_groups(batch, ~zero, G)
        parts.append(batch)
        have += dist.sum_all(len(batch) // G)
        if have >= want:
            break
    return concat(parts), zero_var_seen / max(1, groups_seen), counts


def batch_metrics(batch: Batch, zero_var_frac: float) -> dict:
    valid_total = batch.total[batch.valid]
    m = {
        "reward/mean": float(valid_total.mean()) if len(valid_total) else float("nan"),
        "reward/std": float(valid_total.std()) if len(valid_total) > 1 else 0.0,
        "groups/zero_variance_frac": zero_var_frac,
        "completion_len/mean": float(batch.lengths.float().mean()),
        "completion_len/max": int(batch.lengths.max()) if len(batch) else 0,
        "truncated_frac": float(batch.truncated.float().mean()),
        "samples": len(batch),
    }
    for name, values in batch.rewards.items():
        present = [v for v in values if v is not None and applies(v)]  # the samples it scored
        m[f"reward/{name}"] = sum(present) / len(present) if present else float("nan")
    return m


def check_error_rate(stats: RunStats, limit: float) -> None:
    """Stop the run when a reward failed on more than `limit` of the samples seen so far."""
    for name, count in stats.reward_errors().items():
        if count > limit * stats.samples_seen:
            raise TrainingError(
                f"reward '{name}' failed on {count} of {stats.samples_seen} samples "
                f"(over rewards.max_error_rate={limit}); example: {stats.first_error.get(name, 'n/a')}"
            )


def grpo_step(
    policy,
    reference,
    tokenizer,
    examples: list[dict],
    optimizer,
    scheduler,
    sampler: IndexSampler,
    cfg: Config,
    stats: RunStats,
) -> StepResult:
    """One GRPO step: sample → reward → advantage → update; the metrics and every rank's scored rows."""
    t0 = time.perf_counter()
    batch, zero_var_frac, counts = collect(for_rollout(policy), tokenizer, examples, sampler, cfg)
    t_collect, score_time = time.perf_counter() - t0, counts.score_seconds  # this rank's times
    stats.add_step(StepCounts.merged(dist.gather_objects(counts)))
    rows = dist.sum_all(len(batch))
    stats.samples_seen += rows
    check_error_rate(stats, cfg.rewards.max_error_rate)
    t1 = time.perf_counter()
    update = {}
    if rows:
        inputs = prepare_update(batch, policy, reference, cfg, tokenizer.pad_token_id)
        update = policy_update(policy, optimizer, scheduler, batch, inputs, cfg, tokenizer.pad_token_id)
        advantages = inputs.advantages
    else:
        advantages = torch.zeros(len(batch))
    # what metrics and samples need
    light = replace(batch, engine_logp=None)
    everyone = concat(dist.gather_objects(light))
    everyone_advantages = torch.cat(dist.gather_objects(advantages))
    metrics = {**batch_metrics(everyone, zero_var_frac), **update}
    stats.nonfinite_steps += metrics.get("optimizer_steps_skipped", 0)
    gen_time = t_collect - score_time
    metrics.update(
        {
            "lr": scheduler.get_last_lr()[0],
            "time/generate": gen_time,
            "time/score": score_time,
            "time/train": time.perf_counter() - t1,
            "time/step": time.perf_counter() - t0,
            "tokens_per_s": float(everyone.lengths.sum()) / max(gen_time, 1e-9),
            "nonfinite_steps": stats.nonfinite_steps,
            "memory/peak_mib": peak_memory_mib(next(policy.parameters()).device),
            **stats.reward_metrics(),
        }
    )
    return StepResult(metrics, everyone, everyone_advantages)


def load_policy(cfg: Config, resume_from: Path | None = None) -> tuple:
    """(policy, reference or None, tokenizer); the frozen π_ref exists only when β > 0."""
    policy, tokenizer = load_trainable(cfg, resume_from)
    reference = None
    if cfg.grpo.beta > 0 and lora.is_lora(policy):
        reference = lora.AdapterOff(policy)
    elif cfg.grpo.beta > 0 and fsdp.is_sharded(policy):  # the base model, sharded like the policy
        reference = fsdp.shard(
            load_model(cfg.model.name, dtype=cfg.model.dtype, device=dist.device(cfg.run.device))[0]
            .requires_grad_(False)
            .eval(),
            keep_full_copy=False,
        )
    elif cfg.grpo.beta > 0:  # the initial policy (reloaded from the base model on resume)
        reference = (
            load_model(cfg.model.name, dtype=cfg.model.dtype, device=policy.device)[0]
            if resume_from
            else copy.deepcopy(policy)
        )
        reference.requires_grad_(False).eval()
    return policy, reference, tokenizer


def train_grpo(cfg: Config) -> Path:
    """Run GRPO as configured (through the shared run loop, loop.py); returns the run directory
    (checkpoints/final holds the result)."""
    try:  # before any model loads; routes may name only weighted rewards (config_check.py), so this covers them
        check_reward_names(cfg.rewards.weights, "rewards.weights")
    except ValueError as err:
        raise TrainingError(str(err)) from None
    dist.require_divisible("rollout.prompts_per_step", cfg.rollout.prompts_per_step)
    return run_training(cfg, "grpo", lambda resume_from: grpo_trainer(cfg, resume_from)).run_dir


def grpo_trainer(cfg: Config, resume_from: Path | None) -> Trainer:
    """Everything one GRPO run trains with, and its step (sample, score, update, optional π_ref reset
    and periodic eval)."""
    configure_rewards(workers=cfg.rewards.workers, timeout_s=cfg.rewards.timeout_s)
    vllm_engine.configure(cfg.rollout.vllm)
    r = cfg.rewards
    configure_reward_models({"helpfulness": r.helpfulness_model, "harmlessness": r.harmlessness_model}, used=r.weights)
    policy, reference, tokenizer = load_policy(cfg, resume_from)
    examples = load_prompt_dataset(cfg.data, tokenizer)
    try:
        check_kinds(examples, cfg.rewards.routes)  # every example kind has its rewards, checked before any sampling
    except ValueError as err:
        raise TrainingError(f"{cfg.data.source}: {err}") from None
    reset_ref = reference if cfg.grpo.ref_reset_steps else None  # only a reset reference differs from the base model
    optimizer, scheduler = build_optimizer(policy, cfg.optim, total_steps=cfg.train.steps * cfg.grpo.ppo_epochs)
    sampler, stats = IndexSampler(len(examples), cfg.run.seed), RunStats()
    eval_examples = load_eval_subset(cfg, tokenizer) if cfg.eval.every_steps else None

    def step_fn(step: int):
        result = grpo_step(policy, reference, tokenizer, examples, optimizer, scheduler, sampler, cfg, stats)
        metrics = result.metrics
        if reset_ref is not None and step % cfg.grpo.ref_reset_steps == 0:
            reference.load_state_dict(policy.state_dict())
            stats.reference_resets += 1
        if eval_examples and step % cfg.eval.every_steps == 0:
            view = for_rollout(policy)  # every rank (a collective under FSDP); rank 0 alone evaluates and logs
            if dist.is_main():
                metrics.update(periodic_eval(view, tokenizer, eval_examples, cfg))
        return metrics, lambda: sample_rows(result.batch, result.advantages)

    def restore(checkpoint: Path) -> None:
        if reference is not None:
            ckpt.load_reference(checkpoint, reference)

    return Trainer(
        label="grpo",
        total_steps=cfg.train.steps,
        model=policy,
        tokenizer=tokenizer,
        optimizer=optimizer,
        scheduler=scheduler,
        sampler=sampler,
        step=step_fn,
        stats=stats,
        reference=reset_ref,
        restore=restore,
    )


def load_eval_subset(cfg: Config, tokenizer) -> list[dict]:
    """The fixed evaluation subset used during training: `eval.benchmark`'s first `eval.limit` (default 32) problems."""
    from r1.data import load_examples

    limit = cfg.eval.limit or 32
    return load_examples(cfg.eval.benchmark, split="test", limit=limit, size=limit, seed=cfg.data.seed, quiet=True)


def periodic_eval(policy, tokenizer, examples: list[dict], cfg: Config) -> dict:
    """pass@1 and format compliance on the fixed subset, with the paper's sampling settings."""
    from r1.eval.harness import evaluate_with_config

    m = evaluate_with_config(policy, tokenizer, examples, cfg, progress=False).metrics
    return {
        "eval/pass@1": m["pass@1"]["mean"],
        "eval/format": m["format"]["mean"],
        "eval/mean_length": m["mean_length"],
    }


def sample_rows(batch: Batch, advantages: torch.Tensor) -> list[dict]:
    """One samples.jsonl row per completion: its text, length, rewards and advantage."""
    rows = []
    for i, (example, text, n, cut, a) in enumerate(
        zip(batch.examples, batch.texts, batch.lengths, batch.truncated, advantages)
    ):
        rewards = {f"reward/{k}": v[i] for k, v in batch.rewards.items() if applies(v[i])}
        rows.append(
            {
                "id": example["id"],
                "answer": example.get("answer"),
                "completion": text,
                "length": int(n),
                "truncated": bool(cut),
                "advantage": float(a),
                **rewards,
            }
        )
    return rows
