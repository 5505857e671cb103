"""Group-relative advantages and sequence-level reward shaping for GRPO.

GRPO has no value model: each prompt gets a group of G sampled completions and the
advantage of completion i is its reward compared with the rest of its group,

    A_i = (r_i - baseline_i) / scale,      baseline_i = mean(r_1..r_G) in GRPO,

the same value for every token of completion i (DeepSeekMath, arXiv 2402.03300, §4.1.2;
DeepSeek-R1, arXiv 2501.12948, §2.2.1). The `baseline` variants live in `ADVANTAGE_BASELINES`
(group mean, leave-one-out mean as in RLOO, batch mean as in REINFORCE++), the `scale`
variants in `ADVANTAGE_SCALES`.

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


# --- Baselines: what is subtracted from r_i. -----------------------------------------------
# One signature: (rewards (P, G) with exact 0 at invalid entries, valid (P, G) bool)
#   -> (baseline broadcastable to (P, G), dead: bool broadcastable to (P, G)).
# `dead` marks samples whose comparison carries no signal (all the valid rewards it is compared
# with are equal, or fewer than 2 are valid); group_advantages gives them exactly A = 0.


def _no_signal(rewards: Tensor, valid: Tensor) -> Tensor:
    """(P, 1) bool: the group has < 2 valid samples or all its valid rewards are equal."""
    return zero_variance_groups(rewards, valid)[:, None]


def group_mean_baseline(rewards: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """b_i = mean of the valid rewards of i's group (GRPO, DeepSeekMath §4.1.2).

    Example: [1, 0, 0, 1] → b = 0.5 for every sample → centered [0.5, -0.5, -0.5, 0.5].
    """
    n = valid.sum(dim=-1, keepdim=True).clamp(min=1)  # (P, 1)
    return rewards.sum(dim=-1, keepdim=True) / n, _no_signal(rewards, valid)  # (P, 1)


def leave_one_out_baseline(rewards: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """b_i = mean of the *other* valid rewards of i's group (RLOO; Ahmadian et al. 2024, arXiv 2402.14740).

        b_i = (Σ_{j valid} r_j - r_i) / (n - 1),   so  r_i - b_i = n/(n-1) · (r_i - mean)

    The baseline of a sample does not depend on its own reward, which keeps the policy-gradient
    estimate unbiased; for a group it is GRPO's centered reward scaled by n/(n-1).
    Example: [1, 0, 0, 1] → b = [1/3, 2/3, 2/3, 1/3] → centered [2/3, -2/3, -2/3, 2/3].
    """
    n = valid.sum(dim=-1, keepdim=True)  # (P, 1)
    others = rewards.sum(dim=-1, keepdim=True) - rewards  # (P, G)
    return others / (n - 1).clamp(min=1), _no_signal(rewards, valid)  # (P, G)


def batch_mean_baseline(rewards: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """b = mean of all valid rewards of the batch (REINFORCE++; Hu 2025, arXiv 2501.03262).

    No group structure: a prompt whose samples all succeed still gets a positive advantage if
    the batch does worse, so only a batch whose valid rewards are all equal (or with < 2 valid)
    is dead. It works with one sample per prompt.
    Example: [[1, 0], [1, 1]] → b = 0.75 → centered [[0.25, -0.75], [0.25, 0.25]].
    """
    flat_r, flat_v = rewards.reshape(1, -1), valid.reshape(1, -1)  # (1, P·G)
    mean = flat_r.sum(dim=-1, keepdim=True) / flat_v.sum().clamp(min=1)  # (1, 1)
    return mean, _no_signal(flat_r, flat_v)  # (1, 1), (1, 1)


ADVANTAGE_BASELINES: dict[str, Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]] = {
    "group": group_mean_baseline,
    "leave-one-out": leave_one_out_baseline,
    "batch": batch_mean_baseline,
}


# --- Scales: what the centered reward r_i - baseline_i is divided by. --------------------
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
    baseline: str = "group",
) -> Tensor:
    """Advantages  A_{p,i} = (r_{p,i} - baseline_{p,i}) / scale  from a (P, G) reward grid.

    Means and stds are over valid samples only (of prompt p's group, or of the batch). Stds
    are sample stds (Bessel-corrected, divide by n - 1, like `torch.std`).

    Named combinations:
      GRPO                 baseline="group", scale="group"  (the default)
      Dr. GRPO             baseline="group", scale="none"
      RLOO                 baseline="leave-one-out", scale="none"
      REINFORCE++          baseline="batch", scale="batch"  (Hu 2025, arXiv 2501.03262; the
                           paper also puts the KL in the reward: kl_reward_penalty)
      REINFORCE++-baseline baseline="group", scale="batch": close to, not exactly, the paper's
                           variant, which divides the group-centered rewards by *their* batch
                           std; scale="batch" is the std of the raw rewards, which also holds
                           the spread between prompts' mean rewards.
    baseline="batch" with scale="group" is refused: a group whose rewards are all equal has
    no std to divide by.

    Exact zeros, never NaN or eps-noise:
      * invalid samples (a reward function failed; their reward may be NaN) get A = 0 and
        do not enter any mean or std;
      * samples whose baseline comparison carries no signal get A = 0: with the group
        baselines, groups whose valid rewards are all equal or that have < 2 valid samples
        (see `zero_variance_groups`); with the batch baseline, only such a whole batch.

    Args:
        rewards: (P, G) float rewards, P prompts × G samples per prompt.
        scale: a key of ADVANTAGE_SCALES — "group" (GRPO, DeepSeekMath arXiv 2402.03300
            §4.1.2), "batch" (one std over the whole batch), "none" (Dr. GRPO, arXiv
            2503.20783).
        eps: added to the std (ignored by "none").
        valid: (P, G) bool or None (= all valid).
        baseline: a key of ADVANTAGE_BASELINES — "group", "leave-one-out", "batch".
    Returns:
        (P, G) advantages, same dtype as rewards. The valid ones sum to 0 per group (group
        baselines) or over the batch (batch baseline).

    Example (scale="group", eps=0):
        rewards [[1, 0, 0, 1], [1, 1, 1, 1]] → [[0.866, -0.866, -0.866, 0.866], [0, 0, 0, 0]]
    """
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be (prompts, samples_per_prompt), got {tuple(rewards.shape)}")
    if scale not in ADVANTAGE_SCALES:
        raise ValueError(f"unknown advantage scale {scale!r}; choose from {sorted(ADVANTAGE_SCALES)}")
    if baseline not in ADVANTAGE_BASELINES:
        raise ValueError(f"unknown advantage baseline {baseline!r}; choose from {sorted(ADVANTAGE_BASELINES)}")
    if baseline == "batch" and scale == "group":
        raise ValueError("baseline 'batch' needs a batch-wide scale ('batch' or 'none'), not 'group'")
    valid = _valid_mask(rewards, valid)  # (P, G)
    r = torch.where(valid, rewards, torch.zeros_like(rewards))  # (P, G), NaNs of invalid gone
    base, dead = ADVANTAGE_BASELINES[baseline](r, valid)  # broadcastable to (P, G)
    adv = (r - base) / ADVANTAGE_SCALES[scale](r, valid, eps)  # (P, G)
    keep = valid & ~dead  # (P, G)
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
