"""Rollout-engine / trainer mismatch: importance weights for tokens sampled by another engine.

The completions are sampled by a fast inference engine (vLLM, SGLang) whose log-probs differ
from the trainer's for the same weights (other kernels, precision, MoE routing), so the data
is slightly off-policy even at μ = 1 (Yao et al. 2025, "Your Efficient RL Framework Secretly
Brings You Off-Policy RL Training"). With r_t = π_trainer(o_t) / π_engine(o_t), the usual fix
reweights (truncated IS, "TIS") or drops (masked IS, "MIS"; IcePop, Ling Team 2025) the tokens
or sequences whose ratio is far from 1. The weights multiply the policy term of grpo_loss
(token_weights=); a dropped token has weight exactly 0, hence exactly zero policy gradient.

One signature, chosen by name from MISMATCH_CORRECTIONS:

    fn(old_logp (B, T), engine_logp (B, T), mask (B, T), *, cap, low, high)
      -> (weights (B, T) detached float, exactly 0 on padding; dropped (B, T) bool)

old_logp are the trainer's log-probs of the sampled tokens (the π_old pass), engine_logp the
engine's. log r is clamped to ±20 (per token, or the per-sequence sum / mean) so no weight
overflows. Masked positions may hold garbage. Also: mismatch_stats, to watch the gap.

Deliberately left out: obtaining the engine's log-probs, and choosing cap / low / high (the
caller's; TRL calls the cap vllm_importance_sampling_cap, IcePop's band is [0.5, 5]).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from r1.rl.surrogates import LOG_RATIO_CLAMP, _masked


def _log_ratio(old_logp: Tensor, engine_logp: Tensor, mask: Tensor) -> Tensor:
    """log π_trainer - log π_engine per token, detached, exact 0 at masked positions. (B, T)"""
    m = mask.bool()
    return _masked(old_logp.detach(), m) - _masked(engine_logp.detach(), m)


def _clamp(x: Tensor) -> Tensor:
    return x.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)


def _none_dropped(mask: Tensor) -> Tensor:
    return torch.zeros_like(mask, dtype=torch.bool)


def no_correction(old_logp, engine_logp, mask, *, cap, low, high):
    """w = 1 on every completion token (0 on padding): trust the engine's samples as on-policy."""
    weights = _masked(torch.ones_like(old_logp, dtype=old_logp.dtype), mask)
    return weights.detach(), _none_dropped(mask)


def tis_token(old_logp, engine_logp, mask, *, cap, low, high):
    """Token-level truncated IS: w_t = min(r_t, cap)  (Yao et al. 2025; TRL "token_truncate").

    Never drops a token; low / high are ignored.
    Example (cap 2): log r = [log 3, log 0.5] → w = [2, 0.5].
    """
    weights = torch.exp(_clamp(_log_ratio(old_logp, engine_logp, mask))).clamp(max=cap)  # (B, T)
    return _masked(weights, mask), _none_dropped(mask)


def tis_seq(old_logp, engine_logp, mask, *, cap, low, high):
    """Sequence-level truncated IS: w_i = min(Π_t r_t, cap) = min(exp(Σ_t log r_t), cap) on all of o_i.

    The unbiased sequence weight (the tokens of o_i were sampled jointly), truncated; the
    product of long sequences is far from 1, so the cap binds often. Σ_t log r_t is clamped
    to ±20. Never drops a token; low / high are ignored.
    Example (cap 2): log r = [log 3, log 0.5] → Π r = 1.5 → w = [1.5, 1.5].
    """
    seq = torch.exp(_clamp(_log_ratio(old_logp, engine_logp, mask).sum(-1))).clamp(max=cap)  # (B,)
    return _masked(seq[:, None].expand_as(old_logp), mask), _none_dropped(mask)


def mis_token(old_logp, engine_logp, mask, *, cap, low, high):
    """Token-level masked IS (IcePop): w_t = r_t if low ≤ r_t ≤ high, else 0 (the token is dropped).

    Kept tokens carry their ratio r_t, not 1, as in IcePop (1[α ≤ r ≤ β] · r) and TRL's
    one-sided "token_mask": inside the band the correction is plain IS. cap is ignored.
    Example (low 0.5, high 2): log r = [log 3, log 0.8] → w = [0, 0.8], dropped [True, False].
    """
    ratio = torch.exp(_clamp(_log_ratio(old_logp, engine_logp, mask)))  # (B, T)
    in_band = (ratio >= low) & (ratio <= high) & mask.bool()  # (B, T)
    return torch.where(in_band, ratio, torch.zeros_like(ratio)), mask.bool() & ~in_band


def mis_seq(old_logp, engine_logp, mask, *, cap, low, high):
    """Sequence-level masked IS on the geometric-mean ratio: drop o_i unless low ≤ g_i ≤ high,

        g_i = exp((1/|o_i|) Σ_t log r_t)        (the per-token ratio, length-normalized)
        w_{i,t} = g_i if low ≤ g_i ≤ high, else 0 for every token of o_i.

    The geometric mean rather than the product Π_t r_t, so that the band means the same thing
    for a 100- and a 10,000-token completion (the product's spread grows with length; TRL's
    "sequence_geometric_mean_mask"). Kept sequences carry g_i, the IS weight on that scale.
    cap is ignored.
    Example (low 0.5, high 2): log r = [log 4, log 0.25] → g = 1, w = [1, 1];
        log r = [log 9, log 1] → g = 3 → w = [0, 0], both dropped.
    """
    log_ratio = _log_ratio(old_logp, engine_logp, mask)  # (B, T)
    n = mask.to(log_ratio.dtype).sum(-1).clamp(min=1)  # (B,)
    geo = torch.exp(_clamp(log_ratio.sum(-1) / n))  # (B,)
    in_band = ((geo >= low) & (geo <= high))[:, None] & mask.bool()  # (B, T)
    weights = torch.where(in_band, geo[:, None].expand_as(log_ratio), torch.zeros_like(log_ratio))
    return weights, mask.bool() & ~in_band


MISMATCH_CORRECTIONS: dict[str, Callable[..., tuple[Tensor, Tensor]]] = {
    "none": no_correction,
    "tis-token": tis_token,
    "tis-seq": tis_seq,
    "mis-token": mis_token,
    "mis-seq": mis_seq,
}


def mismatch_weights(
    old_logp: Tensor, engine_logp: Tensor, mask: Tensor, *, correction: str, cap: float, low: float, high: float
) -> tuple[Tensor, Tensor]:
    """MISMATCH_CORRECTIONS[correction](...), with its arguments checked.

    Args:
        old_logp, engine_logp: (B, T) trainer / engine log-probs of the sampled tokens.
        mask: (B, T) float or bool, 1 on completion tokens.
        cap: the truncation of "tis-*" (> 0); low, high: the band of "mis-*" (0 ≤ low ≤ high).
    Returns:
        weights (B, T) detached, for grpo_loss(token_weights=...), and dropped (B, T) bool.
    """
    if correction not in MISMATCH_CORRECTIONS:
        raise ValueError(f"unknown mismatch correction {correction!r}; choose from {sorted(MISMATCH_CORRECTIONS)}")
    if cap <= 0 or not 0 <= low <= high:
        raise ValueError(f"need cap > 0 and 0 <= low <= high, got cap={cap}, low={low}, high={high}")
    return MISMATCH_CORRECTIONS[correction](old_logp, engine_logp, mask, cap=cap, low=low, high=high)


def mismatch_stats(old_logp: Tensor, engine_logp: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """How far the engine is from the trainer on the sampled tokens (detached float32 scalars).

    With d_t = log π_trainer(o_t) - log π_engine(o_t), clamped to ±20, over unmasked tokens:
      "mismatch_abs_diff"  mean |d|;   "mismatch_abs_diff_max"  max |d| (0 if no token);
      "mismatch_kl"        mean of e^d - d - 1, the k3 estimate of KL[π_engine || π_trainer]
                           (the tokens were sampled from the engine), ≥ 0;
      "mismatch_ratio"     mean of r = e^d (its expectation under the engine is 1).
    Each mean comes with its "_sum" and a "tokens" count, so losses.combine_metrics merges
    micro-batches (or ranks) exactly.
    Example: d = [log 2, 0] → abs_diff 0.346574, max 0.693147, kl (2 - log 2 - 1)/2 = 0.153426,
        ratio 1.5.
    """
    with torch.no_grad():
        m = mask.bool()
        d = _clamp(_log_ratio(old_logp, engine_logp, m)).float()  # (B, T)
        values = {"mismatch_abs_diff": d.abs(), "mismatch_kl": torch.exp(d) - d - 1, "mismatch_ratio": torch.exp(d)}
        tokens = m.sum().float()
        out = {"tokens": tokens}
        for name, value in values.items():
            out[name + "_sum"] = _masked(value, m).sum()
            out[name] = out[name + "_sum"] / tokens.clamp(min=1)
        out["mismatch_abs_diff_max"] = _masked(d.abs(), m).max() if m.numel() else tokens * 0
        return out
