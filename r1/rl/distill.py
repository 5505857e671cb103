"""On-policy distillation: per-token divergences between a student and a teacher, and their sampled form.

On-policy distillation (GKD, Agarwal et al. 2024, arXiv 2306.13649; Thinking Machines, "On-Policy
Distillation", 2025) samples completions from the student π_s and trains it to match the teacher π_t
at every position of those completions, so the student learns on the prefixes it actually visits.
Two forms, by what the teacher hands back:

  * Teacher logits over the whole vocabulary at the student's positions: a divergence between the two
    next-token distributions, summed exactly over the vocabulary (no sampling noise at a position).
    One signature, chosen by name from DISTILL_LOSSES:

        fn(student_logits (B, T, V), teacher_logits (B, T, V), mask (B, T), *, temperature, beta, chunk_rows)
          -> (B, T) per-token divergence, exactly 0 at masked positions

        "reverse-kl"  KL(π_s ‖ π_t)  mode-seeking: the student may drop teacher modes, never invents mass
        "forward-kl"  KL(π_t ‖ π_s)  mode-covering: supervised KD's objective, evaluated on student samples
        "jsd"         GKD's generalized Jensen–Shannon divergence JSD_β, between the two (beta)

    Both distributions are softmax(logits / τ) with the same τ; log-softmax runs in float32 (float64 when
    an input is float64) one chunk of the flattened B·T rows at a time, checkpointed as in logprobs.py,
    so a few (chunk_rows, V) float blocks are the largest temporaries, in forward and in backward. The
    gradient flows into student_logits only (teacher_logits are detached here).
  * Only the teacher's log-prob of each sampled token (a log-prob server, no (B, T, V) tensor): the
    single-sample reverse-KL estimate log π_s(x_t) - log π_t(x_t) as a per-token negative advantage
    in a policy-gradient loss (sampled_reverse_kl, distill_policy_loss).

Conventions (those of losses.py): every (B, T) input is aligned with `mask`, float or bool, built from
completion lengths; masked positions (rows of the logits included) may hold garbage (±inf, NaN) and are
replaced with torch.where before any arithmetic, so they get exactly zero value and gradient. Unmasked
rows need finite student logits; a teacher logit may be -inf (a token the teacher rules out: 0 log 0 = 0
in "forward-kl" and "jsd"; "reverse-kl" is then +inf wherever the student puts mass on it). Reduce the
(B, T) result with losses.aggregate (global normalizers, so micro-batch losses sum to the full-batch
loss) and log it with distill_metrics, which losses.combine_metrics merges exactly.

Deliberately left out: running the teacher; different tokenizers or vocabulary sizes (the two models
share the vocabulary and the positions); top-k truncation of the teacher; Hinton's τ² factor (scale the
loss in the caller); mixing in a task reward (add the terms in the caller); reward-to-go credit in the
sampled form (see distill_policy_loss); and no gradient ever reaches the teacher.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from r1.rl.surrogates import LOG_RATIO_CLAMP, _masked

RowDivergence = Callable[[Tensor, Tensor, float], Tensor]  # (logp_s (n, V), logp_t (n, V), beta) -> (n,)


def _sum_plogp(logp: Tensor) -> Tensor:
    """Σ_v p_v log p_v over the last dim with 0 log 0 = 0 (p = e^logp; logp may be -inf; no gradient needed)."""
    return torch.where(logp > -math.inf, logp.exp() * logp, torch.zeros_like(logp)).sum(-1)


def _reverse_kl_rows(logp_s: Tensor, logp_t: Tensor, beta: float) -> Tensor:
    return (logp_s.exp() * (logp_s - logp_t)).sum(-1)  # (n,)


def _forward_kl_rows(logp_s: Tensor, logp_t: Tensor, beta: float) -> Tensor:
    return _sum_plogp(logp_t) - (logp_t.exp() * logp_s).sum(-1)  # (n,)


def _jsd_rows(logp_s: Tensor, logp_t: Tensor, beta: float) -> Tensor:
    log_m = torch.logaddexp(logp_t + math.log(beta), logp_s + math.log1p(-beta))  # (n, V) log(β π_t + (1-β) π_s)
    kl_t = _sum_plogp(logp_t) - (logp_t.exp() * log_m).sum(-1)  # (n,) KL(π_t ‖ m)
    kl_s = (logp_s.exp() * (logp_s - log_m)).sum(-1)  # (n,) KL(π_s ‖ m)
    return beta * kl_t + (1 - beta) * kl_s


def _per_row_pair(
    rows_fn: RowDivergence,
    student_logits: Tensor,
    teacher_logits: Tensor,
    mask: Tensor,
    *,
    temperature: float,
    beta: float,
    chunk_rows: int,
) -> Tensor:
    """rows_fn(log_softmax(s / τ), log_softmax(t / τ), beta) over chunks of the B·T rows → (B, T), 0 where masked.

    Masked rows are zeroed (both models) before the upcast, so their garbage never meets arithmetic.
    Each chunk is checkpointed when a graph is being built: backward recomputes its float work.
    """
    if student_logits.dim() != 3 or teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"student_logits {tuple(student_logits.shape)} and teacher_logits {tuple(teacher_logits.shape)} "
            "must both be (B, T, V)"
        )
    if mask.shape != student_logits.shape[:2]:
        raise ValueError(f"mask {tuple(mask.shape)} must match logits {tuple(student_logits.shape)}[:2]")
    if chunk_rows < 1 or temperature <= 0:
        raise ValueError(f"need chunk_rows >= 1 and temperature > 0, got {chunk_rows}, {temperature}")
    B, T, V = student_logits.shape
    dtype = torch.promote_types(torch.promote_types(student_logits.dtype, teacher_logits.dtype), torch.float32)
    student_rows = student_logits.reshape(B * T, V)  # (N, V)
    teacher_rows = teacher_logits.detach().reshape(B * T, V)  # (N, V)
    keep = mask.bool().reshape(B * T)  # (N,)

    def log_probs(rows: Tensor, k: Tensor) -> Tensor:
        rows = _masked(rows, k[:, None]).to(dtype)  # (n, V) garbage rows → 0 (uniform), then upcast
        return F.log_softmax(rows if temperature == 1.0 else rows / temperature, dim=-1)  # (n, V)

    def chunk(s: Tensor, t: Tensor, k: Tensor) -> Tensor:
        return _masked(rows_fn(log_probs(s, k), log_probs(t, k), beta), k)  # (n,)

    grad = torch.is_grad_enabled() and student_logits.requires_grad
    out = [student_rows.new_zeros(0, dtype=dtype)]
    for i in range(0, B * T, chunk_rows):
        args = (student_rows[i : i + chunk_rows], teacher_rows[i : i + chunk_rows], keep[i : i + chunk_rows])
        out.append(checkpoint(chunk, *args, use_reentrant=False) if grad else chunk(*args))
    return torch.cat(out).view(B, T)


def reverse_kl(student_logits, teacher_logits, mask, *, temperature=1.0, beta=0.5, chunk_rows=1024):
    """KL(π_s ‖ π_t) = Σ_v π_s(v) (log π_s(v) - log π_t(v)) per position — on-policy distillation's loss.

    Mode-seeking: it is large where the student puts mass the teacher does not, and indifferent to teacher
    modes the student leaves out. Its gradient at a position is the exact (zero-variance) version of what
    distill_policy_loss estimates from one sampled token. beta is ignored.
    Shapes: logits (B, T, V), any float dtype; mask (B, T). Returns (B, T), float32 (float64 for float64 inputs).
    Example: student logits [[[0, 0]]] (π_s = [1/2, 1/2]), teacher [[[0, log 3]]] (π_t = [1/4, 3/4])
        → ½ log(0.5/0.25) + ½ log(0.5/0.75) = ½ log(4/3) = [[0.143841]].
    """
    kw = dict(temperature=temperature, beta=beta, chunk_rows=chunk_rows)
    return _per_row_pair(_reverse_kl_rows, student_logits, teacher_logits, mask, **kw)


def forward_kl(student_logits, teacher_logits, mask, *, temperature=1.0, beta=0.5, chunk_rows=1024):
    """KL(π_t ‖ π_s) = Σ_v π_t(v) (log π_t(v) - log π_s(v)) per position — supervised KD's divergence.

    Mode-covering: the student is pushed to put mass wherever the teacher does. Its gradient w.r.t. the
    student's logits z/τ is π_s - π_t. beta is ignored. Shapes and dtypes as reverse_kl.
    Example: student [[[0, 0]]] (π_s = [1/2, 1/2]), teacher [[[0, log 3]]] (π_t = [1/4, 3/4])
        → ¼ log(0.25/0.5) + ¾ log(0.75/0.5) = [[0.130812]].
    """
    kw = dict(temperature=temperature, beta=beta, chunk_rows=chunk_rows)
    return _per_row_pair(_forward_kl_rows, student_logits, teacher_logits, mask, **kw)


def generalized_jsd(student_logits, teacher_logits, mask, *, temperature=1.0, beta=0.5, chunk_rows=1024):
    """GKD's generalized JSD (Agarwal et al. 2024, arXiv 2306.13649; the convention of TRL's GKDTrainer):

        JSD_β(π_t, π_s) = β KL(π_t ‖ m) + (1 - β) KL(π_s ‖ m),     m = β π_t + (1 - β) π_s,   0 < β < 1

    log m = logaddexp(log β + log π_t, log(1 - β) + log π_s), in log space. β = ½ is the symmetric JSD.
    0 ≤ JSD_β ≤ h(β) = -β log β - (1-β) log(1-β) (the mutual information of a β-coin choosing the model
    and the token it emits; = h(β) for disjoint supports). Swapping the models: JSD_β(π_t, π_s) =
    JSD_{1-β}(π_s, π_t). Limits: JSD_β / β → KL(π_t ‖ π_s) as β → 0 ("forward-kl") and
    JSD_β / (1 - β) → KL(π_s ‖ π_t) as β → 1 ("reverse-kl"); at β = 0 or 1 exactly the formula is
    identically 0, so those are refused: use the KLs. Shapes and dtypes as reverse_kl.
    Example (β = ½): student [[[0, 0]]] (π_s = [1/2, 1/2]), teacher [[[0, log 3]]] (π_t = [1/4, 3/4]),
        m = [3/8, 5/8] → ½ (¼ log(2/3) + ¾ log(6/5)) + ½ (½ log(4/3) + ½ log(4/5))
        = 0.017687 + 0.016135 = [[0.033822]].
    """
    if not 0.0 < beta < 1.0:
        raise ValueError(f"jsd needs 0 < beta < 1, got {beta}; use 'forward-kl' (beta → 0) or 'reverse-kl' (beta → 1)")
    kw = dict(temperature=temperature, beta=beta, chunk_rows=chunk_rows)
    return _per_row_pair(_jsd_rows, student_logits, teacher_logits, mask, **kw)


DISTILL_LOSSES: dict[str, Callable[..., Tensor]] = {
    "reverse-kl": reverse_kl,
    "forward-kl": forward_kl,
    "jsd": generalized_jsd,
}


def distill_divergence(
    student_logits: Tensor,
    teacher_logits: Tensor,
    mask: Tensor,
    *,
    divergence: str = "reverse-kl",
    temperature: float = 1.0,
    beta: float = 0.5,
    chunk_rows: int = 1024,
) -> Tensor:
    """DISTILL_LOSSES[divergence](...): the (B, T) per-token divergence, 0 at masked positions.

    Args:
        student_logits: (B, T, V) the student's logits at the completion positions, already shifted as in
            logprobs.py (differentiable).
        teacher_logits: (B, T, V) the teacher's logits at the same positions, same vocabulary (a constant).
        mask: (B, T) float or bool, 1 on completion tokens.
        temperature: τ > 0, applied to both models (use the sampling temperature).
        beta: the β of "jsd" (0 < β < 1); ignored by the KLs.
        chunk_rows: rows of the flattened (B·T, V) logits upcast at once.
    Returns:
        (B, T) float32 (float64 for float64 inputs), differentiable w.r.t. student_logits only.
    """
    if divergence not in DISTILL_LOSSES:
        raise ValueError(f"unknown distillation divergence {divergence!r}; choose from {sorted(DISTILL_LOSSES)}")
    kw = dict(temperature=temperature, beta=beta, chunk_rows=chunk_rows)
    return DISTILL_LOSSES[divergence](student_logits, teacher_logits, mask, **kw)


def sampled_reverse_kl(student_logp: Tensor, teacher_logp: Tensor, mask: Tensor) -> Tensor:
    """k_t = log π_s(x_t) - log π_t(x_t) for the sampled tokens, detached; exactly 0 at masked positions.

    With x_t ∼ π_s(· | x_<t) this is Schulman's k1: E_{x_t}[k_t] = KL(π_s ‖ π_t) at position t, one
    sample, unbiased, negative for some tokens. As a reward, -k_t rewards tokens the teacher finds
    likelier than the student does. Pass the sampling policy's log-probs (π_old) for student_logp.
    Shapes: all (B, T). Returns (B, T), detached.
    Example: student_logp [[log 0.5, x]], teacher_logp [[log 0.25, x]], mask [[1, 0]] → [[log 2, 0]] = [[0.6931, 0]].
    """
    m = mask.bool()
    return _masked(student_logp.detach(), m) - _masked(teacher_logp.detach(), m)


def distill_policy_loss(student_logp: Tensor, old_logp: Tensor, teacher_logp: Tensor, mask: Tensor) -> Tensor:
    """Per-token policy-gradient loss with the negative sampled reverse KL as the token's advantage:

        A_t = -(log π_old(x_t) - log π_t(x_t))          (detached; sampled_reverse_kl of π_old)
        loss_t = -ρ_t A_t,   ρ_t = exp(log π_s(x_t) - log π_old(x_t))   (no clip; log ρ clamped to ±20)

    ∇ loss_t = -ρ_t A_t ∇ log π_s(x_t). At π_s = π_old (old_logp = student_logp.detach()) this is
    (log π_s(x_t) - log π_t(x_t)) ∇ log π_s(x_t), whose expectation over x_t ∼ π_s(· | x_<t) is exactly
    ∇ KL(π_s ‖ π_t)(· | x_<t) (the score-function identity, E[∇ log π_s] = 0): the gradient of
    reverse_kl at that position, estimated from one token. Summed over a sampled completion it is
    an unbiased estimate of Σ_t E_{x_<t ∼ π_s}[∇ KL_t] with the prefix distribution held fixed — the
    per-token (discount-0) credit of on-policy distillation, NOT the full gradient of the sequence
    objective E_{x ∼ π_s}[Σ_t k_t], which would also credit x_t with the later k_{t'>t} (reward-to-go).
    With π_s ≠ π_old, ρ importance-weights the tokens drawn from π_old, so the expectation is
    E_{x_t ∼ π_s}[(log π_old - log π_t) ∇ log π_s]: the advantage stays that of π_old.
    Shapes: all (B, T); student_logp differentiable. Returns (B, T), 0 at masked positions; reduce it
    with losses.aggregate.
    Example: student_logp = old_logp = [[log 0.5]], teacher_logp [[log 0.25]] → A = -log 2,
        loss [[log 2]] = [[0.6931]], ∂loss/∂student_logp = [[log 2]].
    """
    m = mask.bool()
    advantage = -sampled_reverse_kl(old_logp, teacher_logp, m)  # (B, T)
    log_ratio = _masked(student_logp, m) - _masked(old_logp.detach(), m)  # (B, T) 0 at masked positions
    return -advantage * torch.exp(log_ratio.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP))  # (B, T)


def distill_metrics(per_token: Tensor, mask: Tensor, *, name: str = "distill") -> dict[str, Tensor]:
    """Masked mean, masked sum and token count of a (B, T) per-token value (detached, float32 scalars).

    Keys: name (mean over unmasked tokens; 0 if none), name + "_sum", "tokens" — the convention of
    losses._token_metrics, so losses.combine_metrics merges micro-batches (or ranks) exactly.
    Example: per_token [[0.2, 0.4, nan]], mask [[1, 1, 0]] → distill 0.3, distill_sum 0.6, tokens 2.
    """
    with torch.no_grad():
        m = mask.bool()
        tokens = m.sum().float()
        total = _masked(per_token.detach().float(), m).sum()
        return {"tokens": tokens, name + "_sum": total, name: total / tokens.clamp(min=1)}
