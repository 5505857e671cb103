"""LoRA fine-tuning through peft: what changes when only low-rank adapters are trained.

With `model.lora.enabled=true` the policy is a peft model: the base weights are frozen and each
targeted linear layer W gains a trainable update (alpha / r) · B A, with A (r × in) random and
B (out × r) zero at the start, so training starts exactly at the base model (Hu et al. 2021,
arXiv 2106.09685). Optimizer state and gradients then exist for the adapter only.

Three places differ from full fine-tuning:
- π_ref (β > 0) is the policy with its adapter switched off (`AdapterOff`): the base model,
  exactly, without a second copy of the weights. Resetting the reference to the policy
  (`grpo.ref_reset_steps`) would need that copy, so the config refuses the combination.
- Rollout engines read plain weights (the fast engine fuses them into its own matrices), so
  sampling uses a temporary merged copy (`for_rollout`): W + (alpha / r) · B A, one extra copy
  of the model while generating. Merging in place and unmerging after would avoid the copy but
  leave rounding drift in the frozen base weights.
- Checkpoints hold the adapter in `adapter/` (peft's `save_pretrained`: small, and what resume
  loads on top of `model.name`). The final checkpoint also holds the merged model as a plain
  transformers folder next to it, so evaluation, SFT and `r1 sample` load it like any other.
  The adapter sits in a subfolder because transformers, finding `adapter_config.json` beside a
  model's `config.json`, would load the adapter's base model instead of the merged weights.

Deliberately left out: QLoRA (quantized base weights), DoRA and other peft methods, and
several adapters at once.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from r1.config import ConfigError, LoraConfig

ADAPTER_DIR = "adapter"


def is_lora(model) -> bool:
    return hasattr(model, "peft_config")


def apply(model, cfg: LoraConfig):
    """Wrap `model` with fresh adapters on `cfg.target_modules` (the base weights are frozen)."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    config = PeftLoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=list(cfg.target_modules),
        task_type="CAUSAL_LM",
    )
    try:
        return get_peft_model(model, config)
    except ValueError as err:  # e.g. a target module the model does not have
        raise ConfigError(f"model.lora.target_modules={cfg.target_modules}: {err}") from None


def load(model, checkpoint: Path):
    """The base `model` with the trainable adapter saved in `checkpoint` (a save of this module)."""
    from peft import PeftModel

    folder = Path(checkpoint) / ADAPTER_DIR
    if not folder.is_dir():
        raise ConfigError(
            f"{checkpoint} holds no LoRA adapter ({ADAPTER_DIR}/); it was trained without model.lora.enabled"
        )
    return PeftModel.from_pretrained(model, str(folder), is_trainable=True)


def save(model, folder: Path, *, merged: bool) -> None:
    """Write a plain model as transformers does; a LoRA model as its adapter (+ the merged model)."""
    if not is_lora(model):
        model.save_pretrained(folder)
        return
    model.save_pretrained(Path(folder) / ADAPTER_DIR)
    if merged:
        for_rollout(model).save_pretrained(folder)


def for_rollout(model):
    """A plain transformers model with the current weights: the model itself, or a merged copy."""
    return copy.deepcopy(model).merge_and_unload() if is_lora(model) else model


class AdapterOff(torch.nn.Module):
    """The LoRA policy with its adapter disabled, used as π_ref: the base model, no second copy."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, **inputs):
        with self.model.disable_adapter():
            return self.model(**inputs)
