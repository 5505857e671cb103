"""Group-relative advantages and sequence-level reward shaping for GRPO.

GRPO has no value model: each prompt gets a group of G sampled completions and the
advantage of completion i is its reward compared with the rest of its group,

    A_i = (r_i - mean(r_1..r_G)) / scale,

the same value for every token of completion i (DeepSeekMath, arXiv 2402.03300, §4.1.2;
DeepSeek-R1, arXiv 2501.12948, §2.2.1). The `scale` variants live in `ADVANTAGE_SCALES`.

Also here: which groups carry no signal (for DAPO's dynamic sampling and the
zero-variance metric) and DAPO's soft overlong penalty. All functions are pure tensor
functions; rewards arrive as a (P, G) grid = (prompts, samples_per_prompt).

Deliberately left out: critics/GAE, per-token (process) rewards, sampling itself.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def _valid_mask(rewards: Tensor, valid: Tensor | None) -> Tensor:
    """`valid` as a bool (P, G) tensor; everything is valid when it is None."""
    if valid is None:
        return torch.ones_like(rewards, dtype=torch.bool)
    if valid.shape != rewards.shape:
        raise ValueError(f"valid {tuple(valid.shape)} must match rewards {tuple(rewards.shape)}")
    return valid.bool()


def _masked_sample_std(x: Tensor, valid: Tensor, dim: int | None) -> Tensor:
    """Bessel-corrected std (like `torch.std`) of the valid entries, over `dim` (None = all).

    Returns 0 where fewer than 2 entries are valid (never NaN). Invalid entries may hold
    anything, NaN included. Reduced dims are kept so the result broadcasts against `x`.
    """
    dims = tuple(range(x.dim())) if dim is None else (dim,)
    w = valid.to(x.dtype)
    n = w.sum(dims, keepdim=True)
    x = torch.where(valid, x, torch.zeros_like(x))
    mean = x.sum(dims, keepdim=True) / n.clamp(min=1)
    sq = torch.where(valid, (x - mean) ** 2, torch.zeros_like(x))
    return (sq.sum(dims, keepdim=True) / (n - 1).clamp(min=1)).sqrt()


# --- Scales: what the centered reward r_i - mean_group is divided by. -------------------
# One signature: (rewards (P, G), valid (P, G) bool, eps) -> divisor broadcastable to (P, G).


def group_scale(rewards: Tensor, valid: Tensor, eps: float) -> Tensor:
    """std of the prompt's own group, + eps: the original GRPO (DeepSeekMath eq. in §4.1.2).

    Worked example: rewards [1, 0, 0, 1] → mean 0.5, sample std sqrt(1/3) = 0.5774,
    so with eps = 0 the advantages are [0.866, -0.866, -0.866, 0.866].
    """
    return _masked_sample_std(rewards, valid, dim=-1) + eps  # (P, 1)


def batch_scale(rewards: Tensor, valid: Tensor, eps: float) -> Tensor:
    """std of all valid rewards in the batch, + eps (the group mean is still subtracted).

    One divisor for every group, so a group whose rewards barely differ does not get its
    tiny differences blown up to unit scale (discussed in Dr. GRPO, arXiv 2503.20783 §3.1,
    and used by later "batch-std" GRPO variants).
    Example: rewards [[1, 0], [1, 1]] → batch std of {1, 0, 1, 1} = 0.5; group 1 centered
    is [0.5, -0.5] → A = [1, -1] (eps = 0); group 2 has no variance → A = [0, 0].
    """
    return _masked_sample_std(rewards, valid, dim=None) + eps  # (1, 1)


def no_scale(rewards: Tensor, valid: Tensor, eps: float) -> Tensor:
    """No division: A_i = r_i - mean_group (Dr. GRPO, arXiv 2503.20783 §3.1).

    Dividing by the group std up-weights prompts that are nearly always (or nearly never)
    solved; Dr. GRPO removes it. Example: [1, 0, 0, 1] → [0.5, -0.5, -0.5, 0.5].
    """
    return torch.ones((), dtype=rewards.dtype, device=rewards.device)  # ()


ADVANTAGE_SCALES: dict[str, Callable[[Tensor, Tensor, float], Tensor]] = {
    "group": group_scale,
    "batch": batch_scale,
    "none": no_scale,
}


def zero_variance_groups(rewards: Tensor, valid: Tensor | None = None) -> Tensor:
    """Groups that carry no learning signal: all valid rewards equal, or < 2 valid samples.

    Their advantages are 0 for every sample, so they only dilute the batch; DAPO's dynamic
    sampling (arXiv 2503.14476, §3.2) drops them and samples more prompts.
    Equality is exact (max == min over the valid rewards), not "std < tolerance".

    Args:
        rewards: (P, G) float, one row per prompt.
        valid: (P, G) bool, False where the reward could not be computed; None = all valid.
    Returns:
        (P,) bool, True for groups without signal.
    Example: [[1, 1, 1], [0, 1, 0], [2, nan, nan]] with the nans invalid → [True, False, True].
    """
    valid = _valid_mask(rewards, valid)
    inf = torch.full_like(rewards, float("inf"))
    hi = torch.where(valid, rewards, -inf).amax(dim=-1)  # (P,)
    lo = torch.where(valid, rewards, inf).amin(dim=-1)  # (P,)
    return (valid.sum(dim=-1) < 2) | (hi == lo)


def group_advantages(
    rewards: Tensor,
    *,
    scale: str = "group",
    eps: float = 1e-4,
    valid: Tensor | None = None,
) -> Tensor:
    """Group-relative advantages  A_{p,i} = (r_{p,i} - mean_j r_{p,j}) / scale.

    The mean (and, for scale="group", the std) is over the valid samples of prompt p's
    group only. Stds are sample stds (Bessel-corrected, divide by n - 1, like `torch.std`).

    Exact zeros, never NaN or eps-noise:
      * invalid samples (a reward function failed; their reward may be NaN) get A = 0 and
        do not enter any mean or std;
      * groups whose valid rewards are all equal, or that have < 2 valid samples, get
        A = 0 everywhere (see `zero_variance_groups`).

    Args:
        rewards: (P, G) float rewards, P prompts × G samples per prompt.
        scale: a key of ADVANTAGE_SCALES — "group" (GRPO, DeepSeekMath arXiv 2402.03300
            §4.1.2), "batch" (one std over the whole batch), "none" (Dr. GRPO, arXiv
            2503.20783).
        eps: added to the std (ignored by "none").
        valid: (P, G) bool or None (= all valid).
    Returns:
        (P, G) advantages, same dtype as rewards; the valid ones of each group sum to 0.

    Example (scale="group", eps=0):
        rewards [[1, 0, 0, 1], [1, 1, 1, 1]] → [[0.866, -0.866, -0.866, 0.866], [0, 0, 0, 0]]
    """
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be (prompts, samples_per_prompt), got {tuple(rewards.shape)}")
    if scale not in ADVANTAGE_SCALES:
        raise ValueError(f"unknown advantage scale {scale!r}; choose from {sorted(ADVANTAGE_SCALES)}")
    valid = _valid_mask(rewards, valid)  # (P, G)
    r = torch.where(valid, rewards, torch.zeros_like(rewards))  # (P, G), NaNs of invalid gone
    n = valid.sum(dim=-1, keepdim=True).clamp(min=1)  # (P, 1)
    mean = r.sum(dim=-1, keepdim=True) / n  # (P, 1)
    adv = (r - mean) / ADVANTAGE_SCALES[scale](r, valid, eps)  # (P, G)
    keep = valid & ~zero_variance_groups(r, valid)[:, None]  # (P, G)
    return torch.where(keep, adv, torch.zeros_like(adv))


def overlong_penalty(lengths: Tensor, *, max_len: int, cache_len: int) -> Tensor:
    """DAPO soft overlong punishment (arXiv 2503.14476, §3.4, eq. 13), added to the reward.

        R(L) =  0                                   if L <= max_len - cache_len
                ((max_len - cache_len) - L) / cache_len  if max_len - cache_len < L <= max_len
                -1                                  if L > max_len

    i.e. no penalty up to the expected length, then a linear ramp over the last
    `cache_len` tokens down to -1 at `max_len`, and -1 beyond.

    Args:
        lengths: (B,) int, completion lengths in tokens.
        max_len: L_max, the generation budget.
        cache_len: L_cache, the width of the ramp (0 <= cache_len <= max_len; 0 = hard step).
    Returns:
        (B,) float32 penalties in [-1, 0].
    Example: max_len=10, cache_len=4, lengths [5, 6, 7, 8, 10, 12] →
        [0, 0, -0.25, -0.5, -1, -1].
    """
    if not 0 <= cache_len <= max_len:
        raise ValueError(f"need 0 <= cache_len <= max_len, got cache_len={cache_len}, max_len={max_len}")
    over = (lengths - (max_len - cache_len)).to(torch.float32)  # (B,) tokens into the ramp
    ramp = -over / max(cache_len, 1)  # (B,)
    penalty = torch.where(over > 0, ramp, torch.zeros_like(ramp))
    return torch.where(lengths > max_len, torch.full_like(ramp, -1.0), penalty)
