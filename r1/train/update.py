"""The update half of a GRPO step: π_old / π_ref log-probs and advantages, then μ optimizer steps.

`prepare_update` computes a scored batch's `UpdateInputs` — loss mask, π_old and π_ref log-probs
and advantages (with the overlong penalty and KL-in-the-reward shaping); `policy_update` makes `grpo.ppo_epochs` passes
over it, each accumulated over micro-batches and applied as one optimizer step, with loss
normalizers counting the global batch and gradients summed over data-parallel ranks. The equations
are in r1/rl (losses.py, advantages.py). Deliberately left out: sampling and scoring (grpo.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from r1.config import Config, GRPOConfig
from r1.rl import (
    combine_metrics,
    group_advantages,
    grpo_loss,
    kl_reward_penalty,
    mismatch_stats,
    mismatch_weights,
    overlong_penalty,
    top_entropy_mask,
)
from r1.train import distributed as dist
from r1.train.batch import Batch
from r1.train.forward import batched_logprobs, completion_logprobs
from r1.train.optim import optimizer_step


@dataclass(frozen=True)
class UpdateSettings:
    """The settings the update reads, from four config sections (`UpdateSettings.of(cfg)`)."""

    grpo: GRPOConfig  # the loss, its trust region, KL, advantages, μ
    temperature: float  # rollout.temperature: log-probs are of the distribution the engine sampled
    max_new_tokens: int  # rollout.max_new_tokens: Dr. GRPO's normalizer, DAPO's overlong window
    samples_per_prompt: int  # rollout.samples_per_prompt: the group size G
    micro_batch_size: int  # train.micro_batch_size: rows per forward/backward pass
    bf16: bool  # train.bf16, resolved from auto where the run starts: autocast of the training forward
    fsdp: bool  # train.fsdp: every rank runs the same passes
    grad_clip: float  # optim.grad_clip

    @classmethod
    def of(cls, cfg: Config) -> UpdateSettings:
        r, t = cfg.rollout, cfg.train
        return cls(
            grpo=cfg.grpo,
            temperature=r.temperature,
            max_new_tokens=r.max_new_tokens,
            samples_per_prompt=r.samples_per_prompt,
            micro_batch_size=t.micro_batch_size,
            bf16=t.bf16,
            fsdp=t.fsdp,
            grad_clip=cfg.optim.grad_clip,
        )


@dataclass
class UpdateInputs:
    """What the update needs beyond the scored batch, built by `prepare_update` (rows as in the batch)."""

    loss_mask: torch.Tensor  # (B, T) 1 on the completion tokens the loss counts
    advantages: torch.Tensor  # (B,) one per completion, shared by its tokens
    old_logp: torch.Tensor | None = None  # (B, T) log π_old, when μ > 1, the KL sits in the reward, or corrected
    ref_logp: torch.Tensor | None = None  # (B, T) log π_ref, when β > 0
    token_weights: torch.Tensor | None = None  # (B, T) the mismatch correction's weights (r1/rl/correction.py)
    metrics: dict = field(default_factory=dict)  # what the correction did, over every rank's tokens


def prepare_update(batch: Batch, policy, reference, s: UpdateSettings, pad_id: int) -> UpdateInputs:
    """The loss mask, π_old / π_ref log-probs and the advantages of a scored batch (the batch is not changed)."""
    g = s.grpo
    T = batch.completion_ids.shape[1]
    loss_mask = (torch.arange(T)[None, :] < batch.lengths[:, None]).float()  # (B, T)
    if g.overlong == "mask":
        loss_mask[batch.truncated] = 0.0
    total = batch.total.clone()
    if g.overlong == "penalty":
        total += overlong_penalty(batch.lengths, max_len=s.max_new_tokens, cache_len=g.overlong_buffer)
    args = (batch.prompt_ids, batch.completion_ids, batch.lengths)
    options = dict(pad_id=pad_id, temperature=s.temperature, micro_batch_size=s.micro_batch_size, bf16=s.bf16)
    old_logp = ref_logp = None
    corrected = g.rollout_correction != "none"
    if g.ppo_epochs > 1 or (g.beta > 0 and g.kl_placement == "in_reward") or corrected:
        old_logp = batched_logprobs(policy, *args, **options)
    if reference is not None:
        ref_logp = batched_logprobs(reference, *args, **options)
        if g.kl_placement == "in_reward":
            total -= kl_reward_penalty(old_logp, ref_logp, loss_mask, beta=g.beta, estimator=g.kl_estimator)
    totals, mine = dist.gather_rows(total)  # every rank's rewards: a batch-wide scale sees them all
    valid, _ = dist.gather_rows(batch.valid)
    G = s.samples_per_prompt
    advantages = group_advantages(
        totals.view(-1, G), scale=g.advantage_scale, baseline=g.advantage_baseline, valid=valid.view(-1, G)
    )
    inputs = UpdateInputs(
        loss_mask=loss_mask, advantages=advantages.flatten()[mine], old_logp=old_logp, ref_logp=ref_logp
    )
    if corrected:
        inputs.token_weights, inputs.metrics = correction_weights(batch, old_logp, loss_mask, g)
    return inputs


def correction_weights(batch: Batch, old_logp: torch.Tensor, mask: torch.Tensor, g: GRPOConfig) -> tuple:
    """The rollout-mismatch weights of every token (B, T), and what they did over every rank's tokens:
    the mean weight, the share of tokens dropped (MIS) and the share capped (TIS)."""
    if batch.engine_logp is None:
        raise ValueError(
            f"grpo.rollout_correction={g.rollout_correction} needs the engine's log-probs of the sampled tokens, "
            "and this rollout returned none"
        )
    weights, dropped = mismatch_weights(
        old_logp,
        batch.engine_logp,
        mask,
        correction=g.rollout_correction,
        cap=g.correction_cap,
        low=g.correction_low,
        high=g.correction_high,
    )
    m = mask.bool()
    capped = m & (weights == g.correction_cap) if g.rollout_correction.startswith("tis") else m & False
    tokens, total = dist.sum_all(float(m.sum())), dist.sum_all(float(weights[m].sum()))
    metrics = {
        "rollout/is_weight_mean": total / max(tokens, 1.0),
        "rollout/is_dropped_frac": dist.sum_all(float((dropped & m).sum())) / max(tokens, 1.0),
        "rollout/is_capped_frac": dist.sum_all(float(capped.sum())) / max(tokens, 1.0),
    }
    return weights, metrics


def trainable_rows(inputs: UpdateInputs, s: UpdateSettings) -> torch.Tensor:
    """Row indices (n,) whose loss can have a gradient: all rows, or — when β = 0 in the loss and
    there is no entropy bonus — only rows with a nonzero advantage. Every term of such a row's
    loss is A·(clipped ratio), so its gradient is exactly 0 and its forward/backward is skipped;
    normalizers (total_seqs, total_tokens) still count every row, so the update is unchanged.
    With FSDP nothing is skipped: every rank must run the same number of forward/backward passes."""
    g = s.grpo
    if (g.beta > 0 and g.kl_placement == "in_loss") or g.entropy_coef != 0 or s.fsdp:
        return torch.arange(len(inputs.advantages))
    return (inputs.advantages != 0).nonzero()[:, 0]


def _chunk_loss(
    policy,
    batch: Batch,
    inputs: UpdateInputs,
    rows: torch.Tensor,
    s: UpdateSettings,
    pad_id: int,
    totals: tuple[int, float],
    measure_gap: bool,
) -> tuple[torch.Tensor, dict, dict | None]:
    """The GRPO loss of one micro-batch `rows` (normalized by the global `totals` = (sequences,
    tokens)), its metrics, and — when `measure_gap` and the batch has engine log-probs — how far the
    engine's log-probs are from the trainer's on its tokens (`r1.rl.mismatch_stats`; else None)."""
    g = s.grpo
    width = max(1, int(batch.lengths[rows].max()))
    prompts = [batch.prompt_ids[i] for i in rows.tolist()]
    logp, entropy = completion_logprobs(
        policy,
        prompts,
        batch.completion_ids[rows, :width],
        pad_id=pad_id,
        temperature=s.temperature,
        entropy=True,
        entropy_grad=g.entropy_coef != 0,
        bf16=s.bf16,
    )

    def here(t):  # the batch tensors live on the CPU
        return None if t is None else t[rows, :width].to(logp.device)

    mask = here(inputs.loss_mask)
    old = here(inputs.old_logp) if inputs.old_logp is not None else logp.detach()
    gap = None
    if measure_gap and batch.engine_logp is not None:
        gap = {k: v.cpu() for k, v in mismatch_stats(logp.detach(), here(batch.engine_logp), mask).items()}
    quantile = 1 - g.top_entropy_quantile  # the threshold is this micro-batch's, as in TRL
    keep = top_entropy_mask(entropy.detach(), mask, quantile) if quantile > 0 else None
    loss, metrics = grpo_loss(
        logp,
        old,
        inputs.advantages[rows].to(logp.device),
        mask,
        ref_logp=here(inputs.ref_logp),
        beta=g.beta if g.kl_placement == "in_loss" else 0.0,
        kl_estimator=g.kl_estimator,
        policy_loss=g.policy_loss,
        clip_low=g.clip_low,
        clip_high=g.clip_high,
        dual_clip=g.dual_clip,
        sapo_tau_pos=g.sapo_tau_pos,
        sapo_tau_neg=g.sapo_tau_neg,
        token_weights=here(inputs.token_weights),
        keep=keep,
        aggregation=g.loss_aggregation,
        total_seqs=totals[0],
        total_tokens=totals[1],
        max_len=s.max_new_tokens,
        entropy=entropy,
        entropy_coef=g.entropy_coef,
    )
    return loss, metrics, gap


def policy_update(
    policy, optimizer, scheduler, batch: Batch, inputs: UpdateInputs, s: UpdateSettings, pad_id: int
) -> dict:
    """μ optimizer steps over the batch, each accumulated over micro-batches. Returns metrics.

    Normalizers count the global batch; gradients and metrics are summed over ranks."""
    g, mb = s.grpo, s.micro_batch_size
    totals = (dist.sum_all(len(batch)), dist.sum_all(float(inputs.loss_mask.sum())))
    train_rows = trainable_rows(inputs, s)
    metrics, applied, gaps = {}, 0, []
    policy.train()
    for epoch in range(g.ppo_epochs):
        parts, loss_sum = [], 0.0
        for start in range(0, len(train_rows), mb):
            # the gap is measured in the first epoch only: the policy the engine sampled from, before any update
            chunk = train_rows[start : start + mb]
            loss, m, gap = _chunk_loss(policy, batch, inputs, chunk, s, pad_id, totals, measure_gap=epoch == 0)
            gaps += [gap] if gap is not None else []
            loss.backward()
            parts.append({k: v.cpu() for k, v in m.items()})  # CPU: gathered, a CUDA tensor lands on its rank's GPU
            loss_sum += float(loss.detach())
        if not parts:  # a zero gradient, not none: AdamW still applies its momentum and weight decay
            for p in policy.parameters():
                if p.requires_grad:
                    p.grad = torch.zeros_like(p)
        dist.all_reduce_grads(policy)  # every rank, even one without a trainable row
        grad_norm, ok = optimizer_step(policy, optimizer, scheduler, grad_clip=s.grad_clip)
        applied += ok
        parts = [m for rank_parts in dist.gather_objects(parts) for m in rank_parts]
        metrics = {k: float(v) for k, v in combine_metrics(parts).items() if not k.endswith("_sum")} if parts else {}
        metrics.update(loss=dist.sum_all(loss_sum), grad_norm=grad_norm)
    metrics["optimizer_steps_skipped"] = g.ppo_epochs - applied
    metrics["trained_rows"] = dist.sum_all(len(train_rows))
    metrics.update(inputs.metrics)
    if batch.engine_logp is not None:  # engine vs trainer log-probs over the trained tokens, before any update
        metrics.update(_mismatch_metrics([gap for rank in dist.gather_objects(gaps) for gap in rank]))
    return metrics


def _mismatch_metrics(parts: list[dict]) -> dict:
    """rollout/mismatch_* over every rank's micro-batches, and rollout/logprob_max_diff (= the max)."""
    if not parts:
        return {"rollout/logprob_max_diff": 0.0}
    merged = {k: float(v) for k, v in combine_metrics(parts).items() if k != "tokens" and not k.endswith("_sum")}
    return {
        "rollout/logprob_max_diff": merged["mismatch_abs_diff_max"],
        **{f"rollout/{k}": v for k, v in merged.items()},
    }
