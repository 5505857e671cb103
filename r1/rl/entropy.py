"""Entropy-aware updates: train the policy term on the high-entropy "forking" tokens only.

Wang et al. 2025 ("Beyond the 80/20 Rule", arXiv 2506.01939) find that in reasoning traces a
minority of tokens, about 20%, have high entropy and decide where the reasoning goes, and
that restricting the policy gradient to them matches or beats training on every token. TRL
exposes it as `top_entropy_quantile`. Here: the threshold, and the mask to pass to
grpo_loss(keep=...), which zeroes the policy term of the other tokens (they still count in
the aggregation denominators and still carry KL and entropy terms, as in TRL).

The quantile is over the unmasked tokens of the tensor given. Computed per micro-batch the
selection depends on how the batch is split; for a split-independent selection compute the
threshold once over the whole batch (all micro-batches and ranks) and compare
`entropy >= threshold` in each. Entropies come from logprobs.token_entropy.

Deliberately left out: entropy bonuses (grpo_loss's entropy_coef) and entropy metrics (grpo_loss
already reports the masked mean entropy).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def entropy_threshold(entropy: Tensor, mask: Tensor, quantile: float) -> Tensor:
    """The `quantile` quantile of the unmasked tokens' entropies, linearly interpolated.

        sorted values h_(0) ≤ … ≤ h_(n-1),  p = quantile · (n - 1)
        threshold = h_(⌊p⌋) + (p - ⌊p⌋) (h_(⌊p⌋+1) - h_(⌊p⌋))      (torch.quantile's "linear")

    Args:
        entropy: (B, T) float per-token entropies; masked positions may hold garbage (NaN).
        mask: (B, T) float or bool, 1 on completion tokens.
        quantile: in [0, 1].
    Returns:
        () detached, entropy's dtype; +inf when no token is unmasked (nothing passes it).
    Example: entropies [0.1, 0.5, 0.2, 0.9, 0.3] (all unmasked), quantile 0.8 → p = 3.2,
        threshold 0.5 + 0.2 · (0.9 - 0.5) = 0.58.
    """
    if not 0 <= quantile <= 1:
        raise ValueError(f"quantile must be in [0, 1], got {quantile}")
    values = entropy.detach()[mask.bool()].sort().values  # (n,) sorted, garbage excluded
    n = values.numel()
    if n == 0:
        return torch.tensor(math.inf, dtype=entropy.dtype, device=entropy.device)
    pos = quantile * (n - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    if frac == 0:  # exactly a sample: no interpolation, so that sample itself passes `>=`
        return values[lo]
    # rounding could put the interpolated value a hair above h_(hi); cap it so h_(hi) still passes
    return torch.minimum(torch.lerp(values[lo], values[hi], frac), values[hi])


def top_entropy_mask(entropy: Tensor, mask: Tensor, quantile: float) -> Tensor:
    """Tokens whose entropy is at or above the `quantile` quantile of the unmasked tokens'.

        keep_{i,t} = mask_{i,t} ∧ (H_{i,t} ≥ entropy_threshold(H, mask, quantile))

    quantile 0 keeps every unmasked token; 0.8 keeps the top ~20% (the paper's choice; TRL's
    top_entropy_quantile=0.2 means the same kept fraction). Ties at the threshold are all
    kept, so the kept fraction can exceed 1 - quantile (all-equal entropies keep everything);
    quantile 1 keeps the maximum and its ties. An all-masked input keeps nothing.

    Args:
        entropy: (B, T) float; mask: (B, T) float or bool; quantile: in [0, 1].
    Returns:
        (B, T) bool, False on every masked position.
    Example: entropies [[0.1, 0.5, 0.2], [0.9, 0.3, nan]], mask [[1, 1, 1], [1, 1, 0]],
        quantile 0.8 → threshold 0.58 → [[F, F, F], [T, F, F]].
    """
    m = mask.bool()
    threshold = entropy_threshold(entropy, m, quantile)
    return m & (entropy.detach() >= threshold)
