"""Reward-model math: the Bradley–Terry preference loss and pair accuracy (depends on torch only).

A scalar reward model r(x, y) is trained on pairs (x, y_chosen, y_rejected) so that the chosen
response scores higher. Under the Bradley–Terry model P(y_c ≻ y_r | x) = σ(r(x, y_c) − r(x, y_r)),
so maximum likelihood is the loss below. Only score *differences* are learned: adding a constant
to every score changes nothing, so a reward model's scores have no absolute meaning (GRPO's
group-normalized advantages do not need one).

Deliberately left out: margins, ties and multi-response rankings (our pairs are strict pairs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """Per-pair negative log-likelihood of preferring `chosen`: ℓ_i = −log σ(r_c,i − r_r,i).

    Shapes: chosen (P,), rejected (P,) scores of the P pairs → (P,) losses; the caller averages
    (over the whole batch, so micro-batching does not change the update).
    Computed as softplus(r_r − r_c), which equals −log σ(r_c − r_r) without overflow for large
    margins. Reference: Bradley & Terry (1952); Ouyang et al. 2022 (InstructGPT) eq. 1;
    DeepSeek-R1 §2.3.4 trains its helpfulness/harmlessness reward models on preference pairs.

    >>> bradley_terry_loss(torch.tensor([0.0, 2.0]), torch.tensor([0.0, 0.0]))  # log 2, log(1 + e⁻²)
    tensor([0.6931, 0.1269])
    """
    if chosen.shape != rejected.shape or chosen.dim() != 1:
        raise ValueError(
            f"chosen and rejected must both be (P,) score vectors, got {tuple(chosen.shape)} and "
            f"{tuple(rejected.shape)}"
        )
    return F.softplus(rejected - chosen)  # (P,)


def pair_accuracy(chosen: torch.Tensor, rejected: torch.Tensor) -> float:
    """Share of pairs whose chosen response scores strictly higher: mean(r_c > r_r) over (P,) scores.

    A tie counts as wrong (an untrained model that gives every response the same score is at 0).
    """
    if chosen.shape != rejected.shape or chosen.numel() == 0:
        raise ValueError(
            f"need two equal-shaped, non-empty score vectors, got {tuple(chosen.shape)} and {tuple(rejected.shape)}"
        )
    return int((chosen > rejected).sum()) / chosen.numel()
