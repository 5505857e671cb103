"""The GRPO loss: policy loss, KL to the reference policy, entropy bonus, aggregation.

Objective (DeepSeekMath arXiv 2402.03300 eq. 3; DeepSeek-R1 arXiv 2501.12948 eq. 1),
maximized; we minimize its negative, per completion token:

    loss_{i,t} = -min(ρ_{i,t} A_i, clip(ρ_{i,t}, 1 - ε_low, 1 + ε_high) A_i)
                 + β KL_{i,t} - c_H H_{i,t},          ρ_{i,t} = π_θ / π_old

then reduced over tokens and sequences by one of LOSS_AGGREGATIONS. The first term is one of
surrogates.POLICY_LOSSES (this clipped surrogate is "grpo"; GSPO, CISPO, SAPO, GMPO are the
others), optionally scaled per token by rollout-mismatch weights (correction.py) and restricted
to a token subset (entropy.py).

Conventions the trainer relies on:
  * Every (B, T) input is aligned with `mask` (B, T), float or bool, built from completion
    lengths (never from token ids: the pad token may equal EOS). Masked positions may hold
    garbage (±inf, NaN): they are replaced with torch.where *before* any arithmetic, so
    they get exactly zero value and exactly zero gradient.
  * `old_logp` and `ref_logp` are constants (detached here).
  * Aggregations return this micro-batch's share of the *full-batch* loss, normalized by
    global quantities, so summing the micro-batch losses (or their gradients) over a
    gradient-accumulation split gives exactly the full-batch loss (gradient).

Deliberately left out: value losses, reward computation, the policy-loss variants themselves
(surrogates.py) and how the mismatch weights or the kept tokens are chosen.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

# clipped_surrogate and LOG_RATIO_CLAMP live with the other policy losses; re-exported here.
from r1.rl.surrogates import LOG_RATIO_CLAMP, POLICY_LOSSES, _masked, clipped_surrogate  # noqa: F401


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
    policy_loss: str = "grpo",
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = None,
    sapo_tau_pos: float = 1.0,
    sapo_tau_neg: float = 1.05,
    token_weights: Tensor | None = None,
    keep: Tensor | None = None,
    aggregation: str = "seq-mean-token-mean",
    total_seqs: int | None = None,
    total_tokens: float | None = None,
    max_len: int | None = None,
    entropy: Tensor | None = None,
    entropy_coef: float = 0.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """GRPO loss of one micro-batch (DeepSeekMath arXiv 2402.03300 eq. 3, as a loss):

        x_{i,t} = keep_{i,t} · w_{i,t} · policy_{i,t} + β KL_{i,t} - entropy_coef · H_{i,t}
        loss    = aggregate(x, mask)      (this micro-batch's share of the batch loss)

    policy = POLICY_LOSSES[policy_loss] ("grpo": the clipped surrogate). w = token_weights
    (rollout-mismatch IS weights, correction.py; detached) and keep (entropy.top_entropy_mask)
    act on the policy term only, as TRL applies its IS ratio and top_entropy_quantile: a token
    with w = 0 or not kept gets exactly zero policy gradient but still counts in the
    aggregation denominators and still carries its KL and entropy terms. The KL term is added
    when β > 0 (ref_logp required) and only measured when ref_logp is given with β = 0; for
    "KL in the reward" use kl_reward_penalty with β = 0 here.

    Shapes: logp (differentiable), old_logp (μ = 1: logp.detach()), mask (float or bool), and the
    optional ref_logp, entropy, token_weights, keep (bool) are (B, T); advantages (B,). Masked
    positions of every (B, T) input may hold garbage and get exactly zero gradient. Other
    arguments: see POLICY_LOSSES, KL_ESTIMATORS, LOSS_AGGREGATIONS.
    Returns (loss, metrics): summed over micro-batches (with the global total_seqs /
    total_tokens) loss is the full-batch loss; metrics are described in _token_metrics.
    """
    m = mask.bool()  # (B, T)
    logp, old_logp = _masked(logp, m), _masked(old_logp, m)  # (B, T) garbage → 0 before any math
    bounds = dict(clip_low=clip_low, clip_high=clip_high, dual_clip=dual_clip)
    taus = dict(sapo_tau_pos=sapo_tau_pos, sapo_tau_neg=sapo_tau_neg)
    surrogate, flags = _policy_loss(policy_loss)(logp, old_logp, advantages, m, **bounds, **taus)  # (B, T)
    ratio = torch.exp((logp - old_logp).detach().clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP))  # (B, T)
    stats = {"ratio": ratio, **flags}
    per_token = _weighted_policy(surrogate, m, token_weights, keep, stats)  # (B, T)
    per_token = _add_kl(per_token, logp, m, stats, ref_logp=ref_logp, beta=beta, estimator=kl_estimator)
    per_token = _add_entropy(per_token, m, stats, entropy=entropy, coef=entropy_coef)
    loss = aggregate(
        per_token, m, total_seqs=total_seqs, total_tokens=total_tokens, max_len=max_len, aggregation=aggregation
    )
    return loss, _token_metrics(stats, m)


def _policy_loss(name: str) -> Callable[..., tuple[Tensor, dict[str, Tensor]]]:
    if name not in POLICY_LOSSES:
        raise ValueError(f"unknown policy loss {name!r}; choose from {sorted(POLICY_LOSSES)}")
    return POLICY_LOSSES[name]


def _weighted_policy(
    surrogate: Tensor, mask: Tensor, token_weights: Tensor | None, keep: Tensor | None, stats: dict[str, Tensor]
) -> Tensor:
    """keep · w · surrogate (B, T); records policy_loss (as it enters the loss), is_weight, kept."""
    policy = surrogate
    if token_weights is not None:
        weights = _masked(token_weights.detach().to(surrogate.dtype), mask)  # (B, T) 0 on padding
        policy = policy * weights
        stats["is_weight"] = weights
    if keep is not None:
        kept = keep.bool() & mask  # (B, T)
        policy = torch.where(kept, policy, torch.zeros_like(policy))  # exact 0 value and gradient
        stats["kept"] = kept
    stats["policy_loss"] = policy
    return policy


def _add_kl(per_token, logp, mask, stats, *, ref_logp, beta, estimator):
    """per_token + β KL (if β > 0); records kl whenever ref_logp is given."""
    if beta > 0 and ref_logp is None:
        raise ValueError("beta > 0 (KL in the loss) needs ref_logp")
    if ref_logp is None:
        return per_token
    kl = kl_divergence(logp, _masked(ref_logp, mask), estimator)  # (B, T)
    stats["kl"] = kl
    return per_token + beta * kl if beta > 0 else per_token


def _add_entropy(per_token, mask, stats, *, entropy, coef):
    """per_token - coef · H (if coef ≠ 0); records entropy whenever it is given."""
    if coef != 0 and entropy is None:
        raise ValueError("entropy_coef != 0 needs the per-token entropy")
    if entropy is None:
        return per_token
    entropy = _masked(entropy, mask)  # (B, T)
    stats["entropy"] = entropy
    return per_token - coef * entropy if coef != 0 else per_token


def _token_metrics(stats: dict[str, Tensor], mask: Tensor) -> dict[str, Tensor]:
    """Masked means, masked sums and the token count of (B, T) statistics (detached, float32).

    Keys: "tokens" (unmasked tokens in this micro-batch); for name in policy_loss (the policy
    term as it enters the loss: weighted and kept), ratio (π_θ/π_old per token), clip_low,
    clip_high, clip_dual (fractions of tokens; meaning per POLICY_LOSSES variant), kl (if
    ref_logp), entropy (if entropy), is_weight (if token_weights), kept (if keep; fraction):
    name = masked mean, name + "_sum" = masked sum; "ratio_max": max ratio (0 if no token).
    combine_metrics merges micro-batches exactly.
    """
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
