"""GRPO training (SPEC §2, §4): sample → reward → advantage → update → log → checkpoint.

One optimizer step per PPO epoch: each step draws `rollout.prompts_per_step` prompts, samples
`rollout.samples_per_prompt` completions for each (a group), scores them with the configured
rewards, turns rewards into group-relative advantages, then makes `grpo.ppo_epochs` (μ) passes
over the batch; each pass accumulates gradients over `train.micro_batch_size`-row chunks and
applies one optimizer step. The loss of every chunk is normalized by whole-batch totals
(r1.rl.aggregate), so the update does not depend on the micro-batch size.

π_old log-probs are computed once per batch when μ > 1 (with μ = 1, π_old = π_θ detached: equal
in value, different in gradient — SPEC §2). π_ref is a frozen copy of the initial policy, built
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

Deliberately left out here: evaluation (r1/eval) and the rollout engines (r1/rollout: fast, hf,
vllm — one `generate` contract).
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
from r1.rl import (
    combine_metrics,
    group_advantages,
    grpo_loss,
    kl_reward_penalty,
    overlong_penalty,
    zero_variance_groups,
)
from r1.rollout import Sampling, engine, vllm_engine
from r1.train import checkpoint as ckpt
from r1.train import distributed as dist
from r1.train import fsdp, lora
from r1.train.forward import batched_logprobs, completion_logprobs
from r1.train.optim import build_optimizer, optimizer_step
from r1.train.loop import Trainer, run_training
from r1.train.run import IndexSampler, for_rollout, load_prompt_dataset, load_trainable, peak_memory_mib


class TrainingError(RuntimeError):
    """The run cannot continue; the message says why (e.g. a reward failing too often)."""


@dataclass
class Batch:
    """A scored rollout batch; rows are grouped by prompt, G consecutive rows per group."""

    examples: list[dict]  # (B,) the dataset row of each completion
    prompt_ids: list[list[int]]
    completion_ids: torch.Tensor  # (B, T)
    lengths: torch.Tensor  # (B,)
    truncated: torch.Tensor  # (B,) bool
    texts: list[str]
    rewards: dict[
        str, list[float | None]
    ]  # per reward name, (B,); None = failed, NaN = not routed to the sample's kind
    total: torch.Tensor  # (B,) weighted reward (NaN where invalid)
    valid: torch.Tensor  # (B,) bool: every weighted reward that applies produced a value
    loss_mask: torch.Tensor | None = None  # (B, T)
    advantages: torch.Tensor | None = None  # (B,)
    old_logp: torch.Tensor | None = None  # (B, T)
    ref_logp: torch.Tensor | None = None  # (B, T)
    engine_logp: torch.Tensor | None = None  # (B, T) the rollout engine's own log-probs of the sampled tokens (vllm)

    def __len__(self) -> int:
        return len(self.texts)


def weighted_total(
    values: dict[str, list[float | None]], weights: dict[str, float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ_name weight · reward per sample → (total (B,), valid (B,)).

    None (the reward failed) makes the sample invalid (total NaN); NaN (NOT_APPLICABLE: the reward
    is not routed to the sample's kind) adds nothing and leaves the sample valid.
    """
    failed = torch.tensor([[v is None for v in values[name]] for name in weights], dtype=torch.bool)  # (R, B)
    stacked = torch.tensor(
        [[0.0 if v is None else v for v in values[name]] for name in weights], dtype=torch.float32
    )  # (R, B)
    w = torch.tensor(list(weights.values()), dtype=torch.float32)[:, None]
    valid = ~failed.any(dim=0)
    return (w * stacked).nansum(dim=0).masked_fill(~valid, float("nan")), valid


def rollout_and_score(sampler_model, tokenizer, examples: list[dict], cfg: Config, counters: dict) -> Batch:
    """Sample and score with `sampler_model`, the plain-weights view of the policy (run.for_rollout)."""
    r = cfg.rollout
    if not examples:  # a data-parallel rank's share of a small dynamic-sampling refill
        none = torch.zeros(0, dtype=torch.bool)
        return Batch(
            [],
            [],
            torch.zeros((0, 1), dtype=torch.long),
            torch.zeros(0, dtype=torch.long),
            none,
            [],
            {k: [] for k in cfg.rewards.weights},
            torch.zeros(0),
            none,
        )
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
    counters["time/score"] = counters.get("time/score", 0.0) + time.perf_counter() - t0
    for key, count in scores.counts.items():
        counters[key] = counters.get(key, 0) + count
    for name, message in scores.first_error.items():
        counters.setdefault(f"first_error/{name}", message)
    total, valid = weighted_total(scores.values, cfg.rewards.weights)
    return Batch(
        rows,
        rollout.prompt_ids,
        rollout.completion_ids,
        rollout.lengths,
        rollout.truncated,
        rollout.texts,
        scores.values,
        total,
        valid,
        engine_logp=rollout.logprobs,
    )


def concat(batches: list[Batch]) -> Batch:
    """Join batches (e.g. dynamic-sampling refills), padding completions to a common width."""
    if len(batches) == 1:
        return batches[0]
    T = max(b.completion_ids.shape[1] for b in batches)
    pad = lambda x: torch.nn.functional.pad(x, (0, T - x.shape[1]))  # noqa: E731
    return Batch(
        examples=[e for b in batches for e in b.examples],
        prompt_ids=[p for b in batches for p in b.prompt_ids],
        completion_ids=torch.cat([pad(b.completion_ids) for b in batches]),
        lengths=torch.cat([b.lengths for b in batches]),
        truncated=torch.cat([b.truncated for b in batches]),
        texts=[t for b in batches for t in b.texts],
        rewards={k: [v for b in batches for v in b.rewards[k]] for k in batches[0].rewards},
        total=torch.cat([b.total for b in batches]),
        valid=torch.cat([b.valid for b in batches]),
        advantages=torch.cat([b.advantages for b in batches]) if batches[0].advantages is not None else None,
        engine_logp=torch.cat([pad(b.engine_logp) for b in batches])
        if all(b.engine_logp is not None for b in batches)
        else None,
    )


def select_groups(batch: Batch, keep: torch.Tensor, G: int) -> Batch:
    rows = [i for i, k in enumerate(keep.repeat_interleave(G).tolist()) if k]
    return Batch(
        [batch.examples[i] for i in rows],
        [batch.prompt_ids[i] for i in rows],
        batch.completion_ids[rows],
        batch.lengths[rows],
        batch.truncated[rows],
        [batch.texts[i] for i in rows],
        {k: [v[i] for i in rows] for k, v in batch.rewards.items()},
        batch.total[rows],
        batch.valid[rows],
        engine_logp=batch.engine_logp[rows] if batch.engine_logp is not None else None,
    )


def collect(
    sampler_model, tokenizer, examples: list[dict], sampler: IndexSampler, cfg: Config, counters: dict
) -> tuple[Batch, float]:
    """Draw prompts, sample and score; with dynamic sampling drop (and refill) zero-variance groups.

    Every rank draws the same global prompts and samples its share; the counts are global."""
    G, want = cfg.rollout.samples_per_prompt, cfg.rollout.prompts_per_step
    parts, have, zero_var_seen, groups_seen = [], 0, 0, 0
    for round_ in range(1 + (cfg.grpo.dynamic_sampling_rounds if cfg.grpo.dynamic_sampling else 0)):
        drawn = sampler.take(want - have)
        batch = rollout_and_score(sampler_model, tokenizer, [examples[i] for i in dist.shard(drawn)], cfg, counters)
        zero = zero_variance_groups(batch.total.view(-1, G), batch.valid.view(-1, G))  # (P,)
        zero_var_seen, groups_seen = zero_var_seen + dist.sum_all(int(zero.sum())), groups_seen + len(drawn)
        if cfg.grpo.dynamic_sampling:
            batch = select_groups(batch, ~zero, G)
        parts.append(batch)
        have += dist.sum_all(len(batch) // G)
        if have >= want:
            break
    return concat(parts), zero_var_seen / max(1, groups_seen)


def prepare_update(batch: Batch, policy, reference, cfg: Config, pad_id: int) -> None:
    """Fill in the loss mask, π_old / π_ref log-probs and the advantages of a batch."""
    g, r, mb = cfg.grpo, cfg.rollout, cfg.train.micro_batch_size
    T = batch.completion_ids.shape[1]
    batch.loss_mask = (torch.arange(T)[None, :] < batch.lengths[:, None]).float()  # (B, T)
    if g.overlong == "mask":
        batch.loss_mask[batch.truncated] = 0.0
    total = batch.total.clone()
    if g.overlong == "penalty":
        total += overlong_penalty(batch.lengths, max_len=r.max_new_tokens, cache_len=g.overlong_buffer)
    args = (batch.prompt_ids, batch.completion_ids, batch.lengths)
    if g.ppo_epochs > 1 or (g.beta > 0 and g.kl_placement == "in_reward"):
        batch.old_logp = batched_logprobs(
            policy, *args, pad_id=pad_id, temperature=r.temperature, micro_batch_size=mb, bf16=cfg.train.bf16
        )
    if reference is not None:
        batch.ref_logp = batched_logprobs(
            reference, *args, pad_id=pad_id, temperature=r.temperature, micro_batch_size=mb, bf16=cfg.train.bf16
        )
        if g.kl_placement == "in_reward":
            total -= kl_reward_penalty(
                batch.old_logp, batch.ref_logp, batch.loss_mask, beta=g.beta, estimator=g.kl_estimator
            )
    totals, mine = dist.gather_rows(total)  # every rank's rewards: a batch-wide scale sees them all
    valid, _ = dist.gather_rows(batch.valid)
    G = r.samples_per_prompt
    batch.advantages = group_advantages(totals.view(-1, G), scale=g.advantage_scale, valid=valid.view(-1, G)).flatten()[
        mine
    ]


def trainable_rows(batch: Batch, cfg: Config) -> torch.Tensor:
    """Row indices (n,) whose loss can have a gradient: all rows, or — when β = 0 in the loss and
    there is no entropy bonus — only rows with a nonzero advantage. Every term of such a row's
    loss is A·(clipped ratio), so its gradient is exactly 0 and its forward/backward is skipped;
    normalizers (total_seqs, total_tokens) still count every row, so the update is unchanged.
    With FSDP nothing is skipped: every rank must run the same number of forward/backward passes."""
    g = cfg.grpo
    if (g.beta > 0 and g.kl_placement == "in_loss") or g.entropy_coef != 0 or cfg.train.fsdp:
        return torch.arange(len(batch))
    return (batch.advantages != 0).nonzero()[:, 0]


def policy_update(policy, optimizer, scheduler, batch: Batch, cfg: Config, pad_id: int) -> dict:
    """μ optimizer steps over the batch, each accumulated over micro-batches. Returns metrics.

    Normalizers count the global batch; gradients and metrics are summed over ranks."""
    g, mb = cfg.grpo, cfg.train.micro_batch_size
    B, total_tokens = dist.sum_all(len(batch)), dist.sum_all(float(batch.loss_mask.sum()))
    in_loss = g.kl_placement == "in_loss"
    train_rows = trainable_rows(batch, cfg)
    metrics, applied, engine_gap = {}, 0, 0.0
    policy.train()
    for epoch in range(g.ppo_epochs):
        parts, loss_sum = [], 0.0
        for start in range(0, len(train_rows), mb):
            rows = train_rows[start : start + mb]
            width = max(1, int(batch.lengths[rows].max()))
            prompts = [batch.prompt_ids[i] for i in rows.tolist()]
            logp, entropy = completion_logprobs(
                policy,
                prompts,
                batch.completion_ids[rows, :width],
                pad_id=pad_id,
                temperature=cfg.rollout.temperature,
                entropy=True,
                entropy_grad=g.entropy_coef != 0,
                bf16=cfg.train.bf16,
            )
            here = lambda t: None if t is None else t[rows, :width].to(logp.device)  # noqa: E731 (batch tensors live on the CPU)
            mask, ref, old = (
                here(batch.loss_mask),
                here(batch.ref_logp),
                here(batch.old_logp) if batch.old_logp is not None else logp.detach(),
            )
            if epoch == 0 and batch.engine_logp is not None:  # the policy the engine sampled from, before any update
                engine_gap = max(engine_gap, float(((logp.detach() - here(batch.engine_logp)).abs() * mask).max()))
            loss, m = grpo_loss(
                logp,
                old,
                batch.advantages[rows].to(logp.device),
                mask,
                ref_logp=ref,
                beta=g.beta if in_loss else 0.0,
                kl_estimator=g.kl_estimator,
                clip_low=g.clip_low,
                clip_high=g.clip_high,
                dual_clip=g.dual_clip,
                aggregation=g.loss_aggregation,
                total_seqs=B,
                total_tokens=total_tokens,
                max_len=cfg.rollout.max_new_tokens,
                entropy=entropy,
                entropy_coef=g.entropy_coef,
            )
            loss.backward()
            parts.append({k: v.cpu() for k, v in m.items()})  # CPU: gathered, a CUDA tensor lands on its rank's GPU
            loss_sum += float(loss.detach())
        if not parts:  # a zero gradient, not none: AdamW still applies its momentum and weight decay
            for p in policy.parameters():
                if p.requires_grad:
                    p.grad = torch.zeros_like(p)
        dist.all_reduce_grads(policy)  # every rank, even one without a trainable row
        grad_norm, ok = optimizer_step(policy, optimizer, scheduler, grad_clip=cfg.optim.grad_clip)
        applied += ok
        parts = [m for rank_parts in dist.gather_objects(parts) for m in rank_parts]
        metrics = {k: float(v) for k, v in combine_metrics(parts).items() if not k.endswith("_sum")} if parts else {}
        metrics.update(loss=dist.sum_all(loss_sum), grad_norm=grad_norm)
    metrics["optimizer_steps_skipped"] = g.ppo_epochs - applied
    metrics["trained_rows"] = dist.sum_all(len(train_rows))
    if batch.engine_logp is not None:
        metrics["rollout/logprob_max_diff"] = max(
            dist.gather_objects(engine_gap)
        )  # |engine − trainer| log-prob over the trained tokens
    return metrics


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


def check_error_rate(counters: dict, samples_seen: int, limit: float) -> None:
    for key, count in counters.items():
        if key.startswith("rewards/") and key.endswith("_errors") and count > limit * samples_seen:
            name = key[len("rewards/") : -len("_errors")]
            raise TrainingError(
                f"reward '{name}' failed on {count} of {samples_seen} samples (over rewards.max_error_rate={limit}); "
                f"example: {counters.get(f'first_error/{name}', 'n/a')}"
            )


def add_counts(counters: dict, parts: list[dict]) -> None:
    """Add every rank's reward counts of a step to the run's counters (the first error message stays)."""
    for part in parts:
        for key, value in part.items():
            if key.startswith("first_error/"):
                counters.setdefault(key, value)
            else:
                counters[key] = counters.get(key, 0) + value


def grpo_step(
    policy,
    reference,
    tokenizer,
    examples: list[dict],
    optimizer,
    scheduler,
    sampler: IndexSampler,
    cfg: Config,
    counters: dict,
) -> tuple[dict, Batch]:
    """One GRPO step: sample → reward → advantage → update. Returns (metrics, the scored batch of all ranks)."""
    t0 = time.perf_counter()
    counts = {"time/score": 0.0}
    batch, zero_var_frac = collect(for_rollout(policy), tokenizer, examples, sampler, cfg, counts)
    t_collect, score_time = time.perf_counter() - t0, counts.pop("time/score")
    add_counts(counters, dist.gather_objects(counts))
    rows = dist.sum_all(len(batch))
    counters["samples_seen"] = counters.get("samples_seen", 0) + rows
    check_error_rate(counters, counters["samples_seen"], cfg.rewards.max_error_rate)
    t1 = time.perf_counter()
    update = {}
    if rows:
        prepare_update(batch, policy, reference, cfg, tokenizer.pad_token_id)
        update = policy_update(policy, optimizer, scheduler, batch, cfg, tokenizer.pad_token_id)
    light = replace(
        batch, loss_mask=None, old_logp=None, ref_logp=None, engine_logp=None
    )  # what metrics and samples need
    everyone = concat(dist.gather_objects(light))
    metrics = {**batch_metrics(everyone, zero_var_frac), **update}
    counters["nonfinite_steps"] = counters.get("nonfinite_steps", 0) + metrics.get("optimizer_steps_skipped", 0)
    gen_time = t_collect - score_time
    metrics.update(
        {
            "lr": scheduler.get_last_lr()[0],
            "time/generate": gen_time,
            "time/score": score_time,
            "time/train": time.perf_counter() - t1,
            "time/step": time.perf_counter() - t0,
            "tokens_per_s": float(everyone.lengths.sum()) / max(gen_time, 1e-9),
            "nonfinite_steps": counters["nonfinite_steps"],
            "memory/peak_mib": peak_memory_mib(next(policy.parameters()).device),
            **{k: v for k, v in counters.items() if k.startswith("rewards/")},
        }
    )
    return metrics, everyone


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
    try:
        check_reward_names(cfg.rewards.weights, "rewards.weights")  # before any model loads
        for kind, names in (cfg.rewards.routes or {}).items():
            check_reward_names(names, f"rewards.routes.{kind}")
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
    sampler, counters = IndexSampler(len(examples), cfg.run.seed), {}
    eval_examples = load_eval_subset(cfg, tokenizer) if cfg.eval.every_steps else None

    def step_fn(step: int):
        metrics, batch = grpo_step(policy, reference, tokenizer, examples, optimizer, scheduler, sampler, cfg, counters)
        if reset_ref is not None and step % cfg.grpo.ref_reset_steps == 0:
            reference.load_state_dict(policy.state_dict())
            counters["reference_resets"] = counters.get("reference_resets", 0) + 1
        if eval_examples and step % cfg.eval.every_steps == 0:
            view = for_rollout(policy)  # every rank (a collective under FSDP); rank 0 alone evaluates and logs
            if dist.is_main():
                metrics.update(periodic_eval(view, tokenizer, eval_examples, cfg))
        return metrics, lambda: sample_rows(batch)

    def restore(checkpoint: Path) -> None:
        if reference is not None:
            ckpt.load_reference(checkpoint, reference)

    return Trainer(
        "grpo",
        cfg.train.steps,
        policy,
        tokenizer,
        optimizer,
        scheduler,
        sampler,
        step_fn,
        counters,
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


def sample_rows(batch: Batch) -> list[dict]:
    return [
        {
            "id": e["id"],
            "answer": e.get("answer"),
            "completion": text,
            "length": int(n),
            "truncated": bool(t),
            "advantage": float(a),
            **{f"reward/{k}": v[i] for k, v in batch.rewards.items() if applies(v[i])},
        }
        for i, (e, text, n, t, a) in enumerate(
            zip(
                batch.examples,
                batch.texts,
                batch.lengths,
                batch.truncated,
                batch.advantages if batch.advantages is not None else torch.zeros(len(batch)),
            )
        )
    ]
