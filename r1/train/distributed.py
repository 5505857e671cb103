"""Data parallelism for GRPO and SFT: one process per device, launched by torchrun or accelerate.

`torchrun --nproc_per_node N -m r1 grpo …` (or `accelerate launch -m r1 grpo …`) starts N copies
of the command with RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT in the
environment. `init()` turns those into a process group — gloo for CPU tensors, plus NCCL for CUDA
tensors when CUDA is available; without them, or with WORLD_SIZE=1, every helper here is a
no-op on one process, so the training loops read the same either way. `device()` places each
rank's model on its own GPU (cuda:LOCAL_RANK) when there is one.

How the loops use it (the invariant: N processes make the update one process would make on the
same global batch):
- every rank draws the same global indices from the same seeded sampler and keeps its
  contiguous share (`shard`), so whole GRPO groups stay on one rank;
- anything normalized over the batch (loss token/row counts, batch-scaled advantages, metrics,
  reward-error counts) is summed or gathered over ranks first (`sum_all`, `gather_objects`);
- each rank's loss is its share of the *global* loss, so the gradients are summed over ranks
  (`all_reduce_grads`) before clipping and the optimizer step — every rank then applies the
  same step and the replicas stay equal without DDP's hooks (which would fight gradient
  accumulation and the skipping of zero-advantage rows, where a rank may run no backward at all).

Deliberately left out: DDP's overlap of communication with the backward pass, gradient
bucketing, multi-node launch helpers and vLLM-style rollout workers (see docs/scale.md).
"""

from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as tdist

from r1.config import ConfigError
from r1.train import fsdp


def launched() -> bool:
    """Started by torchrun/accelerate (they set RANK and MASTER_ADDR), even as a single process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 or ("RANK" in os.environ and "MASTER_ADDR" in os.environ)


def init() -> None:
    """Join the process group the launcher described (idempotent; a no-op without a launcher).

    A launch of one process joins too, so `torchrun --nproc_per_node 1` sets the device and starts
    NCCL exactly as N processes do (the helpers below still skip their collectives at world size 1)."""
    if tdist.is_initialized() or not launched():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    tdist.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
    atexit.register(tdist.destroy_process_group)


def device(setting: str = "auto") -> torch.device:
    """Where this process trains: `run.device`, with auto = its own GPU (cuda:LOCAL_RANK) if any, else the CPU."""
    if setting == "auto":
        setting = f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else "cpu"
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"run.device={setting} but CUDA is not available here (torch {torch.__version__}); use run.device=cpu"
        )
    return torch.device(setting)


DATA_PARALLEL = ("grpo", "sft")  # the commands that run as N cooperating processes


def require_single_process(command: str) -> None:
    """Refuse to start any other command under a multi-process launcher."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and command not in DATA_PARALLEL:
        raise ConfigError(
            f"r1 {command} runs as one process (this launch started {launched}); only grpo and sft run "
            "data-parallel under torchrun/accelerate"
        )


def rank() -> int:
    return tdist.get_rank() if tdist.is_initialized() else 0


def world() -> int:
    return tdist.get_world_size() if tdist.is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if world() > 1:
        tdist.barrier()


def require_divisible(key: str, value: int) -> None:
    """A global batch size must split evenly over the processes."""
    if value % world():
        raise ConfigError(
            f"{key}={value} is the global count and must be divisible by the number of processes ({world()})"
        )


def shard(items: list) -> list:
    """This rank's contiguous share of a list every rank holds (sizes differ by at most one)."""
    n, r, w = len(items), rank(), world()
    return items[r * n // w : (r + 1) * n // w]


def sum_all(value: float | int) -> float | int:
    """Σ over ranks of a Python number (exact for integer counts)."""
    if world() == 1:
        return value
    t = torch.tensor(float(value), dtype=torch.float64)  # a CPU tensor: reduced by gloo
    tdist.all_reduce(t)
    return type(value)(t.item())


def any_rank(flag: bool) -> bool:
    """True on every rank if it is True on any (e.g. a time budget one rank's clock crossed first)."""
    return sum_all(int(flag)) > 0


def gather_objects(obj) -> list:
    """Every rank's `obj` (picklable), in rank order, on every rank."""
    if world() == 1:
        return [obj]
    out = [None] * world()
    tdist.all_gather_object(out, obj)
    return out


def broadcast_object(obj):
    """Rank 0's `obj` on every rank."""
    if world() == 1:
        return obj
    box = [obj]
    tdist.broadcast_object_list(box, src=0)
    return box[0]


def gather_rows(x: torch.Tensor) -> tuple[torch.Tensor, slice]:
    """Concatenate every rank's rows (dim 0) in rank order → (all rows, this rank's slice of them)."""
    parts = gather_objects(x)
    start = sum(len(p) for p in parts[: rank()])
    return torch.cat(parts), slice(start, start + len(x))


def all_reduce_grads(model) -> None:
    """Sum the gradients of the trainable parameters over ranks (a missing gradient counts as 0).

    An FSDP-sharded model's backward already reduced them, as a mean (r1/train/fsdp.py): scaled to the sum."""
    if world() == 1:
        return

    if fsdp.is_sharded(model):
        for p in model.parameters():
            if p.grad is not None:
                p.grad.mul_(world())
        return
    for p in model.parameters():
        if p.requires_grad:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            tdist.all_reduce(p.grad)


def broadcast_params(model) -> None:
    """Copy rank 0's trainable parameters to every rank (e.g. a LoRA adapter's random init)."""
    if world() == 1:
        return
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                tdist.broadcast(p.data, src=0)
