"""Optimizer, learning-rate schedule and the guarded optimizer step shared by GRPO and SFT.

AdamW with linear warmup followed by a constant or cosine schedule. AdamW runs fused (one kernel
over all parameters) where it can: on SmolLM2-135M, CPU, 0.07 s a step against 0.35 s for the
default multi-tensor version, which also allocates a temporary copy of the parameters (~0.5 GB
more peak memory). Under FSDP (sharded DTensor parameters) the default one runs. `optimizer_step` clips the
gradient norm and refuses to apply a non-finite gradient: the step is skipped (gradients zeroed,
parameters untouched) and reported, never hidden — a NaN that reaches the weights ruins a run
silently.
"""

from __future__ import annotations

import math

import torch

from r1.config import OptimConfig


def build_optimizer(model, optim: OptimConfig, total_steps: int):
    """AdamW over the trainable parameters and its LambdaLR schedule (see lr_factor)."""
    from torch.distributed.tensor import DTensor

    params = [p for p in model.parameters() if p.requires_grad]
    fused = bool(params) and not any(isinstance(p, DTensor) for p in params)
    optimizer = torch.optim.AdamW(
        params, lr=optim.lr, betas=tuple(optim.betas), weight_decay=optim.weight_decay, fused=fused or None
    )

    def factor(step: int) -> float:
        return lr_factor(
            step,
            warmup_steps=optim.warmup_steps,
            total_steps=total_steps,
            schedule=optim.schedule,
            min_ratio=optim.min_lr_ratio,
        )

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def lr_factor(step: int, *, warmup_steps: int, total_steps: int, schedule: str, min_ratio: float = 0.0) -> float:
    """Multiplier of the base learning rate for optimizer step `step` (0-based).

    Warmup: (step + 1) / warmup_steps for the first warmup_steps steps. Then `constant` → 1, or
    `cosine` → min_ratio + (1 - min_ratio) · ½(1 + cos(π · progress)), progress ∈ [0, 1].
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule '{schedule}'; choose constant or cosine")


def optimizer_step(model, optimizer, scheduler, *, grad_clip: float) -> tuple[float, bool]:
    """Clip, check and apply the accumulated gradient. Returns (grad norm, applied)."""
    params = [p for p in model.parameters() if p.grad is not None]
    max_norm = grad_clip if grad_clip > 0 else float("inf")
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm) if params else torch.tensor(0.0)
    norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)  # FSDP: a DTensor
    applied = math.isfinite(norm)
    if applied:
        optimizer.step()
        scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return norm, applied
