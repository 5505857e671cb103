"""Policy losses ("surrogates"): how a token's advantage becomes a loss, given π_θ / π_old.

One signature for every variant, chosen by name from POLICY_LOSSES:

    fn(logp (B, T), old_logp (B, T), advantages (B,), mask (B, T), *,
       clip_low, clip_high, dual_clip=None, sapo_tau_pos=1.0, sapo_tau_neg=1.05)
      -> (per_token_loss (B, T), flags {"clip_low", "clip_high", "clip_dual"}: bool (B, T))

The per-token loss is reduced by losses.LOSS_AGGREGATIONS like any other per-token term. The
mask is in the signature because GSPO and GMPO need per-sequence means; they still return a
(B, T) loss, written so that every token of sequence i carries the sequence's loss value and
its *own* share of the sequence gradient (the "GSPO-token" form of GSPO, arXiv 2507.18071).
Under seq-mean-token-mean that gives exactly the sequence-level gradient (1/N) Σ_i ∇loss_i;
token-mean and seq-mean-token-sum-norm weigh sequence i by |o_i| instead, as they do for any
per-token loss. Per-token weights (rollout-mismatch correction) scale each token's share.

A flag marks a token whose gradient a bound removed or changed; each function defines its
flags precisely. Values at masked positions are meaningless (the caller masks them), but
masked garbage (±inf, NaN) never reaches the arithmetic: it is replaced by torch.where first.
`old_logp` and `advantages` are constants (detached here).

Variants: "grpo" (PPO clip, DeepSeekMath), "gspo" (sequence ratio, Qwen), "cispo" (clipped IS
weight, MiniMax-M1), "sapo" (soft gate, Qwen), "gmpo" (geometric mean, Microsoft).
Deliberately left out: value/critic losses, per-token advantages, KL and entropy terms
(losses.py adds them), the rollout-engine mismatch weights (correction.py).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

# |log π_θ/π_old| and |log π_ref/π_θ| are clamped to this: e^20 ≈ 4.9e8, never inf.
LOG_RATIO_CLAMP = 20.0


def _masked(x: Tensor, mask: Tensor) -> Tensor:
    """x where mask, exact 0 elsewhere (garbage at masked positions can't leak, not even NaN)."""
    return torch.where(mask.bool(), x, torch.zeros_like(x))


def _log_ratio(logp: Tensor, old_logp: Tensor, mask: Tensor) -> Tensor:
    """log π_θ - log π_old per token, exact 0 at masked positions (old_logp detached). (B, T)"""
    return _masked(logp, mask) - _masked(old_logp.detach(), mask)


def _ppo_clip(ratio: Tensor, adv: Tensor, clip_low: float, clip_high: float, dual_clip: float | None):
    """-min(ρA, clip(ρ)A), optionally dual-clipped, and its flags; ratio (B, T), adv (B, 1)."""
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


def _no_flags(like: Tensor) -> dict[str, Tensor]:
    zeros = torch.zeros_like(like, dtype=torch.bool)
    return {"clip_low": zeros, "clip_high": zeros, "clip_dual": zeros}


def _no_dual_clip(name: str, dual_clip: float | None) -> None:
    if dual_clip is not None:
        raise ValueError(f"dual_clip is not defined for policy loss {name!r} (use 'grpo' or 'gspo')")


def _sequence_exp_per_token(token_log: Tensor, mask: Tensor) -> Tensor:
    """exp of the per-sequence mean of `token_log`, written per token (the GSPO-token trick).

        L_i = clamp((1/|o_i|) Σ_t x_{i,t}, ±20)
        out_{i,t} = exp(sg[L_i] + (x_{i,t} - sg[x_{i,t}]))      value e^{L_i} on every token

    so ∂out_{i,t}/∂x_{i,t} = e^{L_i} and ∂out_{i,t}/∂x_{i,u≠t} = 0: the token carries its own
    share; averaged over the sequence's tokens that is ∂e^{L_i}/∂x_{i,t} = e^{L_i}/|o_i|, the
    sequence-level gradient. Where the ±20 clamp is active the gradient is 0, as it would be
    through clamp. token_log (B, T) is 0 at masked positions; returns (B, T).
    Example: x = [[0.1, -0.3]] → [[e^{-0.1}, e^{-0.1}]] = 0.904837 each, each token's own
        derivative 0.904837 (a sequence-level exp(mean x) would give 0.452419 to each).
    """
    n = mask.to(token_log.dtype).sum(-1).clamp(min=1)  # (B,)
    seq_log = token_log.sum(-1) / n  # (B,)
    live = (seq_log.abs() <= LOG_RATIO_CLAMP)[:, None]  # (B, 1) the clamp passes the gradient
    seq_log = seq_log.detach().clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)[:, None]  # (B, 1)
    own = token_log - token_log.detach()  # (B, T) value 0, gradient 1
    return torch.exp(seq_log + torch.where(live, own, torch.zeros_like(own)))


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
    return _ppo_clip(ratio, adv, clip_low, clip_high, dual_clip)


def grpo_surrogate(
    logp, old_logp, advantages, mask, *, clip_low, clip_high, dual_clip=None, sapo_tau_pos=1.0, sapo_tau_neg=1.05
):
    """GRPO's token-level clipped surrogate (`clipped_surrogate`) in the shared signature.

    Masked positions are zeroed first; the SAPO temperatures are ignored.
    """
    m = mask.bool()
    return clipped_surrogate(
        _masked(logp, m), _masked(old_logp, m), advantages, clip_low=clip_low, clip_high=clip_high, dual_clip=dual_clip
    )


def gspo_surrogate(
    logp, old_logp, advantages, mask, *, clip_low, clip_high, dual_clip=None, sapo_tau_pos=1.0, sapo_tau_neg=1.05
):
    """GSPO: one importance ratio per sequence (Zheng et al. 2025, arXiv 2507.18071).

        s_i = exp((1/|o_i|) Σ_t log ρ_{i,t})            geometric mean of the token ratios
        loss_i = -min(s_i A_i, clip(s_i, 1 - ε_low, 1 + ε_high) A_i)   (+ dual clip as in GRPO)

    delivered in the GSPO-token form s_{i,t} = sg[s_i] · π_θ(o_t)/sg[π_θ(o_t)]: every token of
    sequence i has the value loss_i and one shared clip decision, and ∂loss_{i,t}/∂log π_θ(o_t)
    = -s_i A_i (0 if clipped), so averaging over the sequence's tokens (seq-mean-token-mean)
    gives exactly ∇loss_i. With one token per sequence it is the GRPO surrogate. The paper's
    ranges are tiny (ε_low = 3e-4, ε_high = 4e-4): the clip acts on a per-token average.
    The mean log-ratio is clamped to ±20 (gradient 0 beyond); SAPO temperatures are ignored.

    Shapes: logp, old_logp, mask (B, T); advantages (B,). Returns loss (B, T) and flags, each
    constant over a sequence: "clip_low" (A < 0, s < 1 - ε_low), "clip_high" (A > 0, s > 1 + ε_high),
    "clip_dual" (A < 0, s > c).
    Example (ε = 0.05): log ρ = [0.1, -0.3] → s = e^{-0.1} = 0.904837.
        A = -1: s < 0.95 → loss 0.95 on both tokens, gradient 0, clip_low.
        A = +1: loss -0.904837 on both tokens, ∂loss_{i,t}/∂logp_t = -0.904837 each.
    """
    if dual_clip is not None and dual_clip <= 1:
        raise ValueError(f"dual_clip must be > 1, got {dual_clip}")
    ratio = _sequence_exp_per_token(_log_ratio(logp, old_logp, mask), mask)  # (B, T)
    adv = advantages.detach()[:, None].to(ratio.dtype)  # (B, 1)
    return _ppo_clip(ratio, adv, clip_low, clip_high, dual_clip)


def cispo_surrogate(
    logp, old_logp, advantages, mask, *, clip_low, clip_high, dual_clip=None, sapo_tau_pos=1.0, sapo_tau_neg=1.05
):
    """CISPO: clip the importance weight, never the gradient (MiniMax-M1, arXiv 2506.13585).

        w = sg[clip(ρ, 1 - ε_low, 1 + ε_high)]
        loss = -w · A · π_θ/sg[π_θ]          ∂loss/∂log π_θ = -w A   for every token

    The paper writes the objective as w · A · log π_θ; the gradient is the same, and this form's
    value, -w A, is comparable with the other surrogates' (it is GRPO's -ρA inside the clip
    range) instead of drifting with log π_θ. Unlike GRPO, a token outside the range still
    gets a gradient, scaled by the bound. MiniMax-M1 clips only from above (ε_low large).
    No dual clip; SAPO temperatures are ignored. log ρ is clamped to ±20.

    Shapes: logp, old_logp, mask (B, T); advantages (B,). Flags mark tokens whose weight was cut
    to a bound (gradient rescaled, not removed), any sign of A ≠ 0: "clip_low" (ρ < 1 - ε_low),
    "clip_high" (ρ > 1 + ε_high); "clip_dual" is all False.
    Example (ε_low = 0.2, ε_high = 0.28): A = 1, ρ = 1.5 → w = 1.28, loss -1.28, gradient -1.28
        (GRPO: 0), clip_high;  A = -1, ρ = 0.5 → w = 0.8, loss 0.8, gradient 0.8, clip_low.
    """
    _no_dual_clip("cispo", dual_clip)
    log_ratio = _log_ratio(logp, old_logp, mask)  # (B, T)
    ratio = torch.exp(log_ratio.detach().clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP))  # (B, T) constant
    weight = ratio.clamp(1 - clip_low, 1 + clip_high)  # (B, T)
    own = _masked(logp, mask)
    adv = advantages.detach()[:, None].to(ratio.dtype)  # (B, 1)
    loss = -adv * weight * torch.exp(own - own.detach())  # (B, T)
    flags = {
        "clip_low": (adv != 0) & (ratio < 1 - clip_low),
        "clip_high": (adv != 0) & (ratio > 1 + clip_high),
        "clip_dual": torch.zeros_like(ratio, dtype=torch.bool),
    }
    return loss, flags


def sapo_surrogate(
    logp, old_logp, advantages, mask, *, clip_low, clip_high, dual_clip=None, sapo_tau_pos=1.0, sapo_tau_neg=1.05
):
    """SAPO: a smooth gate instead of the hard clip (Gao et al. 2025, arXiv 2511.20347).

        f(ρ) = σ(τ (ρ - 1)) · 4/τ,    τ = τ_pos if A > 0 else τ_neg
        loss = -f(ρ) · A              ∂loss/∂log π_θ = -A · ρ · 4 σ(1 - σ)

    The gradient is the unclipped surrogate's, -ρA, times the gate weight w = 4σ(1-σ): w = 1 at
    ρ = 1 and decays smoothly, never to exactly 0, as ρ leaves 1, faster for larger τ (the raw
    gradient -ρAw need not shrink: for τ = 1, ρw is 1.57 at ρ = 2). The 4/τ
    normalization makes f'(1) = 1 for every τ. The paper takes τ_neg > τ_pos (1.05 and 1.0):
    negative-advantage updates raise many unsampled logits and destabilize more. (Formula
    cross-checked with the ms-swift and AReaL documentation of SAPO.) No hard bounds: clip_low and
    clip_high are ignored, every flag is False, no dual clip. log ρ is clamped to ±20.

    Shapes: logp, old_logp, mask (B, T); advantages (B,); returns loss (B, T).
    Example (τ = 1): A = 1, ρ = 1 → loss -2, gradient -1;  A = 1, ρ = 2 → f = 4σ(1) = 2.924234,
        loss -2.924234, gradient -2 · 4σ(1)σ(-1) = -1.572895 (the unclipped -ρA would be -2).
    """
    _no_dual_clip("sapo", dual_clip)
    if sapo_tau_pos <= 0 or sapo_tau_neg <= 0:
        raise ValueError(f"SAPO temperatures must be > 0, got {sapo_tau_pos}, {sapo_tau_neg}")
    log_ratio = _log_ratio(logp, old_logp, mask).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # (B, T)
    ratio = torch.exp(log_ratio)  # (B, T)
    adv = advantages.detach()[:, None].to(ratio.dtype)  # (B, 1)
    tau = torch.where(adv > 0, adv.new_tensor(sapo_tau_pos), adv.new_tensor(sapo_tau_neg))  # (B, 1)
    gate = torch.sigmoid(tau * (ratio - 1)) * (4 / tau)  # (B, T)
    return -adv * gate, _no_flags(ratio)


def gmpo_surrogate(
    logp, old_logp, advantages, mask, *, clip_low, clip_high, dual_clip=None, sapo_tau_pos=1.0, sapo_tau_neg=1.05
):
    """GMPO: the geometric mean of the token ratios, clipped per token in log space.

    Zhao et al. 2025, arXiv 2507.20673, and the authors' code (github.com/callsys/GMPO):

        c_{i,t} = min(log ρ_{i,t}, ε_high)    if A_i > 0     (the pessimistic side, as in PPO)
                  max(log ρ_{i,t}, -ε_low)    if A_i ≤ 0
        loss_i  = -A_i · exp((1/|o_i|) Σ_t c_{i,t})

    clip_low / clip_high are *log-space* bounds here: (0.4, 0.4) keeps ratios in (e^-0.4, e^0.4),
    the paper's range. Delivered per token like GSPO: every token of sequence i has the value
    loss_i, and ∂loss_{i,t}/∂log π_θ(o_t) = -A_i e^{mean c} (0 for a clipped token), so
    seq-mean-token-mean gives exactly ∇loss_i. The mean is clamped to ±20. No dual clip; SAPO
    temperatures are ignored.

    Shapes: logp, old_logp, mask (B, T); advantages (B,). Flags are per token, the tokens whose
    own gradient the bound removed: "clip_high" (A > 0, log ρ > ε_high), "clip_low" (A < 0,
    log ρ < -ε_low); "clip_dual" is all False.
    Example (ε = 0.4): A = 1, log ρ = [0.5, -0.1] → c = [0.4, -0.1], loss -e^{0.15} = -1.161834
        on both tokens, token 0 clip_high (gradient 0), token 1 gradient -1.161834.
        A = -1, log ρ = [0.5, -0.6] → c = [0.5, -0.4], loss e^{0.05} = 1.051271, token 1 clip_low.
    """
    _no_dual_clip("gmpo", dual_clip)
    log_ratio = _log_ratio(logp, old_logp, mask)  # (B, T)
    adv = advantages.detach()[:, None].to(log_ratio.dtype)  # (B, 1)
    clipped = torch.where(adv > 0, log_ratio.clamp(max=clip_high), log_ratio.clamp(min=-clip_low))  # (B, T)
    loss = -adv * _sequence_exp_per_token(_masked(clipped, mask), mask)  # (B, T)
    flags = {
        "clip_low": (adv < 0) & (log_ratio < -clip_low),
        "clip_high": (adv > 0) & (log_ratio > clip_high),
        "clip_dual": torch.zeros_like(log_ratio, dtype=torch.bool),
    }
    return loss, flags


POLICY_LOSSES: dict[str, Callable[..., tuple[Tensor, dict[str, Tensor]]]] = {
    "grpo": grpo_surrogate,
    "gspo": gspo_surrogate,
    "cispo": cispo_surrogate,
    "sapo": sapo_surrogate,
    "gmpo": gmpo_surrogate,
}
