"""FSDP2 sharding for GRPO and SFT (`train.fsdp=true` under torchrun): the policy's parameters,
gradients and optimizer state are split over the processes instead of replicated.

Each decoder layer, then the whole model, goes through torch's `fully_shard` (FSDP2): a layer's
parameters are all-gathered just before its forward and backward and freed after, and gradients
are reduce-scattered so each rank keeps (and AdamW updates) only its shard. π_ref is sharded the
same way. What the rest of r1 sees does not change:

* **Gradients are sums.** FSDP averages gradients over ranks; r1's losses are each rank's share of
  the global loss (r1/train/distributed.py), so `distributed.all_reduce_grads` multiplies the
  averaged shards by the number of ranks. (FSDP's own divide factor would need a PREMUL_SUM
  reduction, which gloo lacks.)
* **Every rank runs the same passes.** Each forward and backward is a collective, so ranks must
  run the same number of them: the config refuses dynamic sampling with FSDP (refills split
  unevenly), and zero-advantage rows are not skipped. With the global batch split evenly, every
  loop then has the same number of micro-batches on every rank.
* **The rollout reads full weights.** `gathered` all-gathers the policy into a plain copy kept on
  each rank, before every rollout — the engines, periodic evaluation and checkpoints read that.
  So each rank holds one full copy of the weights for sampling (as a colocated vLLM engine
  would); what sharding saves is the training copy, the gradients, the optimizer state and π_ref.
* **Checkpoints look the same.** The model folder is written from the gathered copy, and the
  optimizer state is gathered into one full, parameter-named state dict (rank 0 writes it), so a
  checkpoint loads in plain transformers; resume re-shards it.

Tested on a CPU with gloo, 2 processes: the FSDP update equals the 1-process update
(tests/test_distributed.py). Deliberately left out: LoRA and reference resets with FSDP
(refused), hybrid sharding over nodes, CPU offload, mixed-precision policies (bf16 autocast still
applies), and sharded (per-rank) checkpoint files, which a model that does not fit one host would need.
"""

from __future__ import annotations

import copy

import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)

_full_copies: dict[int, torch.nn.Module] = {}  # id(sharded model) → its plain copy on this rank


def is_sharded(model) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def shard(model, *, keep_full_copy: bool = True):
    """Shard `model` in place (each decoder layer, then the root) and return it.

    `keep_full_copy`: keep a plain copy of the weights for `gathered` (the policy; not π_ref)."""
    from torch.distributed.fsdp import fully_shard

    if keep_full_copy:
        full = copy.deepcopy(model)
        full.requires_grad_(False).eval()
    for layer in model.model.layers:
        fully_shard(layer)
    fully_shard(model)
    if keep_full_copy:
        _full_copies[id(model)] = full
    return model


def gathered(model) -> torch.nn.Module:
    """The plain copy of a sharded model, refreshed with its current weights. A collective: every
    rank must call it at the same point."""
    weights = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))
    full = _full_copies[id(model)]
    full.load_state_dict(weights)
    return full


def full_optimizer_state(model, optimizer) -> dict:
    """The optimizer state gathered into one parameter-named dict (complete on rank 0). A collective."""
    return get_optimizer_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_full_optimizer_state(model, optimizer, state: dict) -> None:
    """Load a `full_optimizer_state` dict (every rank read it from disk) into this rank's shards."""
    set_optimizer_state_dict(model, optimizer, optim_state_dict=state, options=StateDictOptions(full_state_dict=True))
