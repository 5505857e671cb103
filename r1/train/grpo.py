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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from r1.config import Config, RolloutConfig
from r1.models import load_model
from r1.rewards import RewardRuntime, check_kinds, score_completions
from r1.rewards.control import control_routes, control_weights
from r1.rewards.registry import check_reward_names
from r1.rl import zero_variance_groups
from r1.rollout import RolloutEngine, Sampling
from r1.train import checkpoint as ckpt
from r1.train import distributed as dist
from r1.train import fsdp, lora
from r1.train.batch import Batch, batch_metrics, concat, sample_rows, select_groups, weighted_total  # noqa: F401
from r1.train.optim import build_optimizer
from r1.train.prefetch import Prefetch
from r1.train.update import UpdateSettings, policy_update, prepare_update, trainable_rows  # noqa: F401 (API)
from r1.train.loop import Trainer, run_training
from r1.train.run import IndexSampler, for_rollout, load_prompt_dataset, load_trainable, peak_memory_mib
from r1.train.stats import RunStats, StepCounts
from r1.data import load_examples, unseen_heldout
from r1.eval.harness import evaluate_with_config


@dataclass
class StepResult:
    """What one GRPO step hands back: its metrics, and every rank's scored rows with their advantages."""

    metrics: dict
    batch: Batch  # (B,) rows of all ranks, in the global order
    advantages: torch.Tensor  # (B,) of those rows (zeros for a step without an update)


@dataclass
class GRPORun:
    """Everything a GRPO step works with, built once where the run starts (`build_run`)."""

    cfg: Config
    policy: torch.nn.Module
    reference: torch.nn.Module | None  # frozen π_ref, only when β > 0
    tokenizer: Any
    examples: list[dict]  # the prompt dataset, tokenized (`prompt_ids`)
    optimizer: torch.optim.Optimizer
    scheduler: Any
    sampler: IndexSampler  # the resumable prompt order
    stats: RunStats  # run-long counts, saved in checkpoints
    engine: RolloutEngine = field(default_factory=RolloutEngine)  # `rollout.engine`, with its per-run state
    rewards: RewardRuntime = field(default_factory=RewardRuntime)  # the verifier pool and reward models
    prefetch: Prefetch = field(default_factory=Prefetch)  # the next batch, with rollout.async_steps=1
    step: int = 0  # the step being trained (1-based; set by the loop's step function)

    def close(self) -> None:
        """Release what the run holds: a batch in flight, the verifier pool."""
        self.prefetch.close()
        self.rewards.close()

    @property
    def update_settings(self) -> UpdateSettings:
        return UpdateSettings.of(self.cfg)


class TrainingError(RuntimeError):
    """The run cannot continue; the message says why (e.g. a reward failing too often)."""


def grpo_step(run: GRPORun) -> StepResult:
    """One GRPO step (docs/architecture.md): sample → score → advantages → update → metrics."""
    t0 = time.perf_counter()
    batch, zero_var_frac, counts = collect(run)  # sample and score, with dynamic sampling's refills
    times = {"generate": time.perf_counter() - t0 - counts.score_seconds, "score": counts.score_seconds}
    rows = account(run.stats, counts, len(batch), run.cfg.rewards.max_error_rate)
    t1 = time.perf_counter()
    update, advantages = {}, torch.zeros(len(batch))
    if rows:
        settings, pad_id = run.update_settings, run.tokenizer.pad_token_id
        inputs = prepare_update(batch, run.policy, run.reference, settings, pad_id)  # advantages, π_old, π_ref
        update = policy_update(run.policy, run.optimizer, run.scheduler, batch, inputs, settings, pad_id)
        advantages = inputs.advantages
    times["train"] = time.perf_counter() - t1
    everyone = concat(dist.gather_objects(replace(batch, engine_logp=None)))  # what metrics and samples need
    everyone_advantages = torch.cat(dist.gather_objects(advantages))
    metrics = step_metrics(run, everyone, zero_var_frac, update, times, time.perf_counter() - t0)
    return StepResult(metrics, everyone, everyone_advantages)


def sampling_of(r: RolloutConfig, logprobs: bool = True) -> Sampling:
    """The sampling settings of `rollout:`, with the engine's own log-probs when `logprobs` (the mismatch
    is then logged every step, and corrected by `grpo.rollout_correction`); seed None: torch's RNG."""
    return Sampling(
        n=r.samples_per_prompt,
        temperature=r.temperature,
        top_p=r.top_p,
        max_new_tokens=r.max_new_tokens,
        dtype=r.dtype,
        ignore_eos=r.ignore_eos,
        logprobs=logprobs,
    )


def rollout_and_score(run: GRPORun, sampler_model, examples: list[dict], counts: StepCounts) -> Batch:
    """Sample and score with `sampler_model`, the plain-weights view of the policy (run.for_rollout);
    the scoring time and the rewards' events are added to `counts`."""
    r = run.cfg.rollout
    weights, names = control_weights(run.cfg.rewards.weights, run.cfg.rewards.control)  # names: also logged ones
    if not examples:  # a data-parallel rank's share of a small dynamic-sampling refill
        return Batch.empty(names)
    prompts = [e["prompt_ids"] for e in examples]
    # the engine's log-probs: always when a correction uses them; else only where they come free (fast and
    # vllm read them off the sampling step; hf would need one more forward pass over the batch)
    logprobs = run.cfg.grpo.rollout_correction != "none" or run.engine.picks(sampler_model) != "hf"
    rollout = run.engine.generate(sampler_model, run.tokenizer, prompts, sampling_of(r, logprobs))
    rows = [e for e in examples for _ in range(r.samples_per_prompt)]
    t0 = time.perf_counter()
    routes = control_routes(run.cfg.rewards.routes, run.cfg.rewards.control)
    scores = score_completions(rollout.texts, rows, names, routes=routes, runtime=run.rewards)
    events = {key.removeprefix("rewards/"): n for key, n in scores.counts.items()}
    counts.add(events, scores.first_error, seconds=time.perf_counter() - t0)
    total, valid = weighted_total(scores.values, weights)
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


def collect(run: GRPORun) -> tuple[Batch, float, StepCounts]:
    """Draw prompts, sample and score; with dynamic sampling drop (and refill) zero-variance groups.
    Returns (this rank's batch, the global share of zero-variance groups, this rank's counts).

    Every rank draws the same global prompts and samples its share; the group counts are global."""
    if run.cfg.rollout.async_steps:
        return collect_ahead(run)
    counts, g, sampler_model = StepCounts(), run.cfg.grpo, for_rollout(run.policy)
    G, want = run.cfg.rollout.samples_per_prompt, run.cfg.rollout.prompts_per_step
    parts, have, zero_var_seen, groups_seen = [], 0, 0, 0
    for round_ in range(1 + (g.dynamic_sampling_rounds if g.dynamic_sampling else 0)):
        drawn = run.sampler.take(want - have)
        batch = rollout_and_score(run, sampler_model, [run.examples[i] for i in dist.shard(drawn)], counts)
        zero = zero_variance_groups(batch.total.view(-1, G), batch.valid.view(-1, G))  # (P,)
        zero_var_seen, groups_seen = zero_var_seen + dist.sum_all(int(zero.sum())), groups_seen + len(drawn)
        if g.dynamic_sampling:
            batch = select_groups(batch, ~zero, G)
        parts.append(batch)
        have += dist.sum_all(len(batch) // G)
        if have >= want:
            break
    return concat(parts), zero_var_seen / max(1, groups_seen), counts


def collect_ahead(run: GRPORun) -> tuple[Batch, float, StepCounts]:
    """`collect` with one-step off-policy rollouts (prefetch.py): take the batch sampled during the
    last step, and start sampling the next step's from a copy of the weights as they are now."""
    want, G = run.cfg.rollout.prompts_per_step, run.cfg.rollout.samples_per_prompt
    drawn = run.sampler.take(want)
    ahead = run.prefetch.take(drawn)
    if ahead is None:  # the first step of a run (or of a resumed one): on-policy
        counts = StepCounts()
        batch = rollout_and_score(run, for_rollout(run.policy), [run.examples[i] for i in drawn], counts)
    else:
        batch, counts = ahead
        counts.score_seconds = 0.0  # scored in the background: time/generate is the time this step waited
    if run.step < run.cfg.train.steps:
        upcoming = copy.deepcopy(run.sampler).take(want)  # the real order advances when the batch is used
        snapshot = copy.deepcopy(for_rollout(run.policy)).eval()  # the update below must not reach it
        run.prefetch.start(upcoming, lambda: _sample_detached(run, snapshot, upcoming))
    zero = zero_variance_groups(batch.total.view(-1, G), batch.valid.view(-1, G))  # (P,)
    if run.cfg.grpo.dynamic_sampling:
        batch = select_groups(batch, ~zero, G)
    return batch, float(zero.float().mean()) if len(zero) else 0.0, counts


def _sample_detached(run: GRPORun, model, indices: list[int]) -> tuple[Batch, StepCounts]:
    counts = StepCounts()
    with torch.no_grad():
        return rollout_and_score(run, model, [run.examples[i] for i in indices], counts), counts


def account(stats: RunStats, counts: StepCounts, rows: int, max_error_rate: float) -> int:
    """Add this step's counts (every rank's) to the run's; stop the run on a reward failing too often.
    Returns the step's global number of rows."""
    stats.add_step(StepCounts.merged(dist.gather_objects(counts)))
    rows = dist.sum_all(rows)
    stats.samples_seen += rows
    check_error_rate(stats, max_error_rate)
    return rows


def step_metrics(run: GRPORun, everyone: Batch, zero_var_frac: float, update: dict, times: dict, total_s: float):
    """The metrics.jsonl row of a step: the batch's, the update's, times, throughput, memory, reward events."""
    metrics = {**batch_metrics(everyone, zero_var_frac), **update}
    run.stats.nonfinite_steps += metrics.get("optimizer_steps_skipped", 0)
    metrics.update(
        {
            "lr": run.scheduler.get_last_lr()[0],
            **{f"time/{phase}": seconds for phase, seconds in times.items()},  # this rank's
            "time/step": total_s,
            "tokens_per_s": float(everyone.lengths.sum()) / max(times["generate"], 1e-9),
            "nonfinite_steps": run.stats.nonfinite_steps,
            "memory/peak_mib": peak_memory_mib(next(run.policy.parameters()).device),
            **run.stats.reward_metrics(),
        }
    )
    return metrics


def check_error_rate(stats: RunStats, limit: float) -> None:
    """Stop the run when a reward failed on more than `limit` of the samples seen so far."""
    for name, count in stats.reward_errors().items():
        if count > limit * stats.samples_seen:
            raise TrainingError(
                f"reward '{name}' failed on {count} of {stats.samples_seen} samples "
                f"(over rewards.max_error_rate={limit}); example: {stats.first_error.get(name, 'n/a')}"
            )


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
    if cfg.rollout.async_steps and (dist.launched() or cfg.train.fsdp):
        raise TrainingError("rollout.async_steps=1 runs in one process for now (docs/algorithms.md)")
    return run_training(cfg, "grpo", lambda resume_from: grpo_trainer(cfg, resume_from)).run_dir


def build_run(cfg: Config, resume_from: Path | None = None) -> GRPORun:
    """Load the policy (and π_ref), the prompts, the optimizer, the rollout engine and the rewards'
    runtime of a GRPO run (a checkpoint's weights when resuming; the loop restores the rest)."""
    rewards = RewardRuntime.build(cfg.rewards)  # reward models load first: a wrong path fails before the policy
    policy, reference, tokenizer = load_policy(cfg, resume_from)
    examples = load_prompt_dataset(cfg.data, tokenizer)
    try:
        check_kinds(examples, cfg.rewards.routes)  # every example kind has its rewards, checked before any sampling
    except ValueError as err:
        rewards.close()
        raise TrainingError(f"{cfg.data.source}: {err}") from None
    optimizer, scheduler = build_optimizer(policy, cfg.optim, total_steps=cfg.train.steps * cfg.grpo.ppo_epochs)
    return GRPORun(
        cfg=cfg,
        policy=policy,
        reference=reference,
        tokenizer=tokenizer,
        examples=examples,
        optimizer=optimizer,
        scheduler=scheduler,
        sampler=IndexSampler(len(examples), cfg.run.seed),
        stats=RunStats(),
        engine=RolloutEngine(cfg.rollout.engine, cfg.rollout.vllm),
        rewards=rewards,
    )


def grpo_trainer(cfg: Config, resume_from: Path | None) -> Trainer:
    """Everything one GRPO run trains with, and its step (sample, score, update, optional π_ref reset
    and periodic eval)."""
    run = build_run(cfg, resume_from)
    reset_ref = run.reference if cfg.grpo.ref_reset_steps else None  # only a reset reference differs from the base
    eval_examples = load_eval_subset(cfg, run.tokenizer) if cfg.eval.every_steps else None

    def step_fn(step: int):
        run.step = step
        result = grpo_step(run)
        metrics = result.metrics
        if reset_ref is not None and step % cfg.grpo.ref_reset_steps == 0:
            reset_ref.load_state_dict(run.policy.state_dict())
            run.stats.reference_resets += 1
        if eval_examples and step % cfg.eval.every_steps == 0:
            view = for_rollout(run.policy)  # every rank (a collective under FSDP); rank 0 alone evaluates and logs
            if dist.is_main():
                metrics.update(periodic_eval(view, run.tokenizer, eval_examples, cfg))
        return metrics, lambda: sample_rows(result.batch, result.advantages)

    def restore(checkpoint: Path) -> None:
        if run.reference is not None:
            ckpt.load_reference(checkpoint, run.reference)

    return Trainer(
        label="grpo",
        total_steps=cfg.train.steps,
        model=run.policy,
        tokenizer=run.tokenizer,
        optimizer=run.optimizer,
        scheduler=run.scheduler,
        sampler=run.sampler,
        step=step_fn,
        stats=run.stats,
        reference=reset_ref,
        restore=restore,
        close=run.close,
    )


def load_eval_subset(cfg: Config, tokenizer) -> list[dict]:
    """The fixed evaluation subset used during training: `eval.benchmark`'s first `eval.periodic_limit`
    problems (else `eval.limit`, else 32). For `arithmetic`, the problems of the held-out set the
    demo evaluates on (seed `pipeline.heldout_seed`, unseen by training: r1.data.unseen_heldout)."""
    limit = cfg.eval.periodic_limit or cfg.eval.limit or 32
    if cfg.eval.benchmark == "arithmetic":
        return unseen_heldout(cfg.data, limit, seed=cfg.pipeline.heldout_seed)
    return load_examples(cfg.eval.benchmark, split="test", limit=limit, size=limit, seed=cfg.data.seed, quiet=True)


def periodic_eval(policy, tokenizer, examples: list[dict], cfg: Config) -> dict:
    """pass@1 and format compliance on the fixed subset, with the paper's sampling settings."""
    m = evaluate_with_config(policy, tokenizer, examples, cfg, progress=False).metrics
    return {
        "eval/pass@1": m["pass@1"]["mean"],
        "eval/format": m["format"]["mean"],
        "eval/mean_length": m["mean_length"],
    }
