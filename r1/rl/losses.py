"""The GRPO loss: clipped surrogate, KL to the reference policy, entropy bonus, aggregation.

Objective (DeepSeekMath arXiv 2402.03300 eq. 3; DeepSeek-R1 arXiv 2501.12948 eq. 1),
maximized; we minimize its negative, per completion token:

    loss_{i,t} = -min(ρ_{i,t} A_i, clip(ρ_{i,t}, 1 - ε_low, 1 + ε_high) A_i)
                 + β KL_{i,t} - c_H H_{i,t},          ρ_{i,t} = π_θ / π_old

then reduced over tokens and sequences by one of LOSS_AGGREGATIONS.

Conventions the trainer relies on:
  * Every (B, T) input is aligned with `mask` (B, T), float or bool, built from completion
    lengths (never from token ids: the pad token may equal EOS). Masked positions may hold
    garbage (±inf, NaN): they are replaced with torch.where *before* any arithmetic, so
    they get exactly zero value and exactly zero gradient.
  * `old_logp` and `ref_logp` are constants (detached here).
  * Aggregations return this micro-batch's share of the *full-batch* loss, normalized by
    global quantities, so summing the micro-batch losses (or their gradients) over a
    gradient-accumulation split gives exactly the full-batch loss (gradient).

Deliberately left out: value losses, sequence-level ratios (GSPO), reward computation.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

# |log π_θ/π_old| and |log π_ref/π_θ| are clamped to this: e^20 ≈ 4.9e8, never inf.
LOG_RATIO_CLAMP = 20.0


# --- KL estimators (Schulman 2020, "Approximating KL Divergence", http://joschu.net/blog/kl-approx.html)
# One signature: (logp (...), ref_logp (...)) -> (...), per-token estimates of KL[π_θ || π_ref]
# from tokens sampled from π_θ.


def kl_k1(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """k1 = log π_θ - log π_ref. Unbiased, high variance, negative for some tokens.

    Example: logp = log 0.5, ref_logp = log 0.25 → k1 = log 2 = 0.6931.
    """
    return logp - ref_logp


def kl_k2(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """k2 = ½ (log π_θ - log π_ref)². Biased, low variance, ≥ 0.

    Example: logp = log 0.5, ref_logp = log 0.25 → k2 = ½ (log 2)² = 0.2402.
    """
    return 0.5 * (logp - ref_logp) ** 2


def kl_k3(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """k3 = π_ref/π_θ - log(π_ref/π_θ) - 1 = e^d - d - 1,  d = log π_ref - log π_θ.

    Unbiased and ≥ 0 (e^d ≥ 1 + d); the estimator of DeepSeekMath eq. 4 and docs/method.md §2.
    d is clamped to [-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP] = [-20, 20] so e^d never
    overflows; outside that range the value saturates and its gradient is 0.
    Example: logp = log 0.5, ref_logp = log 0.25 → d = -log 2, k3 = 0.5 + 0.6931 - 1 = 0.1931.
    """
    d = (ref_logp - logp).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    return torch.exp(d) - d - 1


KL_ESTIMATORS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"k1": kl_k1, "k2": kl_k2, "k3": kl_k3}


def kl_divergence(logp: Tensor, ref_logp: Tensor, estimator: str) -> Tensor:
    """Per-token KL[π_θ || π_ref] estimate; `estimator` is a key of KL_ESTIMATORS.

    Args:
        logp: (...) log π_θ of the sampled tokens (differentiable).
        ref_logp: (...) log π_ref of the same tokens (treated as a constant).
    Returns:
        (...) same shape as logp.
    """
    if estimator not in KL_ESTIMATORS:
        raise ValueError(f"unknown KL estimator {estimator!r}; choose from {sorted(KL_ESTIMATORS)}")
    return KL_ESTIMATORS[estimator](logp, ref_logp.detach())


def _masked(x: Tensor, mask: Tensor) -> Tensor:
    """x where mask, exact 0 elsewhere (garbage at masked positions can't leak, not even NaN)."""
    return torch.where(mask.bool(), x, torch.zeros_like(x))


def kl_reward_penalty(logp_old: Tensor, ref_logp: Tensor, mask: Tensor, *, beta: float, estimator: str) -> Tensor:
    """β Σ_t KL_t per sequence, for KL placed in the reward (no gradient).

    Subtract it from the sequence reward *before* computing advantages:
    r_i ← r_i - β Σ_{t ∈ o_i} KL_{i,t}, estimated from the sampling policy's log-probs
    (the InstructGPT/PPO-RLHF placement; docs/method.md §2 "KL as a reward penalty").

    Args:
        logp_old: (B, T) log π_old of the completion tokens.
        ref_logp: (B, T) log π_ref of the same tokens.
        mask: (B, T) float or bool, 1 on completion tokens.
    Returns:
        (B,) float, detached.
    Example (k1, β = 0.1): logp_old [[-1, -2, x]], ref [[-2, -2, x]], mask [[1, 1, 0]]
        → 0.1 · ((-1 + 2) + 0) = [0.1].
    """
    with torch.no_grad():
        kl = kl_divergence(_masked(logp_old, mask), _masked(ref_logp, mask), estimator)  # (B, T)
        return beta * _masked(kl, mask).sum(-1)  # (B,)


def clipped_surrogate(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    *,
    clip_low: float,
    clip_high: float,
    dual_clip: float | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO/GRPO clipped surrogate, per token, as a loss to minimize.

        ρ = exp(logp - old_logp)
        loss = -min(ρ A, clip(ρ, 1 - ε_low, 1 + ε_high) A)          (PPO; GRPO eq. 3)
        if dual_clip = c (> 1) and A < 0:  loss = min(loss, -c A)    (dual clip)

    ε_low ≠ ε_high is DAPO's clip-higher (arXiv 2503.14476 §3.1; ε_low=0.2, ε_high=0.28).
    Dual clip (Ye et al. 2020, arXiv 1912.09729 §3.3) caps the loss of a negative-advantage
    token whose ratio has exploded at c|A| (gradient 0 there).
    log ρ is clamped to [-20, 20] (e^20 ≈ 4.9e8) so ρ never overflows.

    Args:
        logp: (B, T) log π_θ, differentiable.
        old_logp: (B, T) log π_old (detached here).
        advantages: (B,) one advantage per sequence, broadcast over its tokens.
        clip_low, clip_high: ε_low, ε_high.
        dual_clip: c > 1, or None to disable.
    Returns:
        loss (B, T), and bool (B, T) flags of the tokens whose gradient a bound cut off:
        "clip_low" (A < 0, ρ < 1 - ε_low), "clip_high" (A > 0, ρ > 1 + ε_high),
        "clip_dual" (A < 0, ρ > c). Values at padded positions are meaningless (mask them).
    Example (ε = 0.2): A = 1, ρ = 1.5 → loss -1.2, clip_high;  A = -1, ρ = 0.5 → loss 0.8,
        clip_low;  A = -1, ρ = 5, c = 3 → loss min(5, 3) = 3, clip_dual.
    """
    if dual_clip is not None and dual_clip <= 1:
        raise ValueError(f"dual_clip must be > 1, got {dual_clip}")
    log_ratio = (logp - old_logp.detach()).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # (B, T)
    ratio = torch.exp(log_ratio)  # (B, T)
    adv = advantages.detach()[:, None].to(ratio.dtype)  # (B, 1)
    unclipped = -adv * ratio  # (B, T)
    clipped = -adv * ratio.clamp(1 - clip_low, 1 + clip_high)  # (B, T)
    loss = torch.maximum(unclipped, clipped)  # (B, T)  = -min(ρA, clip(ρ)A)
    flags = {
        "clip_low": (adv < 0) & (ratio < 1 - clip_low),
        "clip_high": (adv > 0) & (ratio > 1 + clip_high),
        "clip_dual": torch.zeros_like(ratio, dtype=torch.bool),
    }
    if dual_clip is not None:
        cap = -dual_clip * adv  # (B, 1), > 0 where A < 0
        loss = torch.where(adv < 0, torch.minimum(loss, cap), loss)
        flags["clip_dual"] = (adv < 0) & (ratio > dual_clip)
    return loss, flags


# --- Aggregations: (B, T) per-token values → scalar, this micro-batch's share of the batch loss.
# One signature: (per_token (B, T), mask (B, T), *, total_seqs, total_tokens, max_len) -> ().
# total_seqs / total_tokens are counts over the FULL batch (all micro-batches, and all
# data-parallel ranks if the gradients are summed across them); None = this micro-batch
# is the whole batch.


def seq_mean_token_mean(per_token, mask, *, total_seqs=None, total_tokens=None, max_len=None):
    """(1/N_seq) Σ_i (1/|o_i|) Σ_t x_{i,t} — GRPO as written (DeepSeekMath eq. 3).

    Each sequence has equal weight; a token of a long completion weighs less than one of
    a short one. Sequences with no unmasked token contribute 0.
    Example: x [[1, 3], [5, 0]], mask [[1, 1], [1, 0]] → (2 + 5) / 2 = 3.5.
    """
    m = mask.to(per_token.dtype)  # (B, T)
    per_seq = _masked(per_token, mask).sum(-1) / m.sum(-1).clamp(min=1)  # (B,)
    return per_seq.sum() / (per_token.shape[0] if total_seqs is None else total_seqs)


def token_mean(per_token, mask, *, total_seqs=None, total_tokens=None, max_len=None):
    """(1/N_tok) Σ_{i,t} x_{i,t} — DAPO's token-level loss (arXiv 2503.14476 §3.3).

    Every token has equal weight, so long completions are not under-weighted.
    Example: x [[1, 3], [5, 0]], mask [[1, 1], [1, 0]] → (1 + 3 + 5) / 3 = 3.
    """
    n = mask.to(per_token.dtype).sum() if total_tokens is None else total_tokens
    return _masked(per_token, mask).sum() / (n if n > 0 else 1)


def seq_mean_token_sum_norm(per_token, mask, *, total_seqs=None, total_tokens=None, max_len=None):
    """(1/(N_seq · L_max)) Σ_{i,t} x_{i,t} — Dr. GRPO's constant normalizer (arXiv 2503.20783 §3.1).

    Dividing by a constant (the generation budget L_max) instead of |o_i| removes the
    length bias of GRPO. Requires max_len.
    Example: x [[1, 3], [5, 0]], mask [[1, 1], [1, 0]], max_len 4 → 9 / (2 · 4) = 1.125.
    """
    if max_len is None:
        raise ValueError("aggregation 'seq-mean-token-sum-norm' needs max_len (the generation budget)")
    n_seq = per_token.shape[0] if total_seqs is None else total_seqs
    return _masked(per_token, mask).sum() / (n_seq * max_len)


LOSS_AGGREGATIONS: dict[str, Callable[..., Tensor]] = {
    "seq-mean-token-mean": seq_mean_token_mean,
    "token-mean": token_mean,
    "seq-mean-token-sum-norm": seq_mean_token_sum_norm,
}


def aggregate(
    per_token: Tensor,
    mask: Tensor,
    *,
    total_seqs: int | None = None,
    total_tokens: float | None = None,
    max_len: int | None = None,
    aggregation: str = "seq-mean-token-mean",
) -> Tensor:
    """Reduce (B, T) per-token values to this micro-batch's share of the batch mean.

    `aggregation` is a key of LOSS_AGGREGATIONS; see those functions for the equations.
    Summed over the micro-batches of a split (with the same global total_seqs /
    total_tokens), the result equals the value on the whole batch.
    """
    if aggregation not in LOSS_AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; choose from {sorted(LOSS_AGGREGATIONS)}")
    return LOSS_AGGREGATIONS[aggregation](
        per_token, mask, total_seqs=total_seqs, total_tokens=total_tokens, max_len=max_len
    )


def grpo_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    ref_logp: Tensor | None = None,
    beta: float = 0.0,
    kl_estimator: str = "k3",
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = None,
    aggregation: str = "seq-mean-token-mean",
    total_seqs: int | None = None,
    total_tokens: float | None = None,
    max_len: int | None = None,
    entropy: Tensor | None = None,
    entropy_coef: float = 0.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """GRPO loss of one micro-batch (DeepSeekMath arXiv 2402.03300 eq. 3, as a loss):

        x_{i,t} = clipped_surrogate_{i,t} + β KL_{i,t} - entropy_coef · H_{i,t}
        loss    = aggregate(x, mask)      (this micro-batch's share of the batch loss)

    The KL term ("KL in the loss") is added when β > 0 (ref_logp required); if ref_logp
    is given with β = 0 the KL is still measured. For "KL in the reward" use
    kl_reward_penalty instead and leave β = 0 here.

    Args:
        logp: (B, T) float log π_θ of the completion tokens, differentiable.
        old_logp: (B, T) log π_old (for μ = 1 pass logp.detach()).
        advantages: (B,) per-sequence advantages (group_advantages, flattened).
        mask: (B, T) float or bool, 1 on completion tokens; masked positions of every
            (B, T) input may hold garbage and get exactly zero gradient.
        ref_logp: (B, T) log π_ref, or None.
        entropy: (B, T) per-token entropy (token_entropy), or None; needed if entropy_coef ≠ 0.
        Other arguments: see clipped_surrogate, KL_ESTIMATORS and LOSS_AGGREGATIONS.
    Returns:
        (loss, metrics). loss is a scalar; summed over micro-batches (with the global
        total_seqs / total_tokens) it is the full-batch loss. metrics (detached float32
        scalars) — see combine_metrics for merging micro-batches exactly:
          "tokens": unmasked tokens in this micro-batch;
          for name in policy_loss (surrogate only), ratio, clip_low, clip_high, clip_dual
          (fractions of tokens), kl (if ref_logp), entropy (if entropy):
            name = masked mean over this micro-batch, name + "_sum" = masked sum;
          "ratio_max": max ratio over unmasked tokens (0 if none).
    """
    m = mask.bool()  # (B, T)
    logp, old_logp = _masked(logp, m), _masked(old_logp, m)  # (B, T) garbage → 0 before any math
    surrogate, flags = clipped_surrogate(
        logp, old_logp, advantages, clip_low=clip_low, clip_high=clip_high, dual_clip=dual_clip
    )  # (B, T)
    per_token = surrogate
    ratio = torch.exp((logp - old_logp).detach().clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP))  # (B, T)
    stats = {"policy_loss": surrogate, "ratio": ratio, **flags}
    if beta > 0 and ref_logp is None:
        raise ValueError("beta > 0 (KL in the loss) needs ref_logp")
    if ref_logp is not None:
        kl = kl_divergence(logp, _masked(ref_logp, m), kl_estimator)  # (B, T)
        stats["kl"] = kl
        if beta > 0:
            per_token = per_token + beta * kl
    if entropy_coef != 0 and entropy is None:
        raise ValueError("entropy_coef != 0 needs the per-token entropy")
    if entropy is not None:
        entropy = _masked(entropy, m)  # (B, T)
        stats["entropy"] = entropy
        if entropy_coef != 0:
            per_token = per_token - entropy_coef * entropy
    loss = aggregate(
        per_token,
        m,
        total_seqs=total_seqs,
        total_tokens=total_tokens,
        max_len=max_len,
        aggregation=aggregation,
    )
    return loss, _token_metrics(stats, m)


def _token_metrics(stats: dict[str, Tensor], mask: Tensor) -> dict[str, Tensor]:
    """Masked means, masked sums and the token count of (B, T) statistics (detached, float32)."""
    tokens = mask.sum().float()
    out = {"tokens": tokens}
    for name, value in stats.items():
        out[name + "_sum"] = _masked(value.detach().float(), mask).sum()
        out[name] = out[name + "_sum"] / tokens.clamp(min=1)
    out["ratio_max"] = _masked(stats["ratio"].float(), mask).max() if mask.numel() else tokens * 0
    return out


def combine_metrics(parts: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Merge grpo_loss metrics of several micro-batches into exact whole-batch values.

    Rule: "tokens" and "*_sum" add up; "*_max" takes the max; every mean is recomputed
    as name = name_sum / tokens. (Across data-parallel ranks apply the same rule with
    all-reduce SUM / MAX before dividing.)
    Example: parts (kl_sum 2, tokens 4) and (kl_sum 1, tokens 1) → kl = 3 / 5 = 0.6,
        not the mean of the per-part means (0.5 and 1 → 0.75).
    """
    out: dict[str, Tensor] = {"tokens": sum(p["tokens"] for p in parts)}
    for key in parts[0]:
        if key.endswith("_sum"):
            out[key] = sum(p[key] for p in parts)
            out[key[: -len("_sum")]] = out[key] / out["tokens"].clamp(min=1)
        elif key.endswith("_max"):
            out[key] = torch.stack([p[key] for p in parts]).max()
    return out
