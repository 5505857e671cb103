"""Checkpoints that survive a kill, and exact resume.

A checkpoint is a folder `checkpoints/step-000040/` holding what plain transformers loads
(`save_pretrained` safetensors + tokenizer) and `trainer_state.pt` with everything else needed
to continue as if never stopped: optimizer and scheduler state, the step, the data sampler's
position, every RNG (torch, Python, numpy) and the run's counters — plus, when the reference
policy has been reset to the policy, the reference weights.

It is written under a temporary name and renamed into place, so a kill mid-save leaves the
previous checkpoint valid (a rename is atomic on POSIX file systems). Only the newest
`keep` step checkpoints are kept; `final/` is never pruned.

Under data parallelism (r1/train/distributed.py) every rank calls `save_training`; rank 0 alone
writes, with every rank's RNG state (each rank samples its own completions) and the number of
processes, since the data split and those RNG streams are only meaningful for that number: a
resume with another number of processes is refused. The run directory must be on a file system
all ranks see. With a LoRA adapter the model part is the adapter (r1/train/lora.py).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from r1.config import ConfigError
from r1.train import distributed as dist
from r1.train import fsdp, lora

STATE_FILE = "trainer_state.pt"
STEP_FILE = "checkpoint.json"  # small, so finding the latest checkpoint never loads optimizer state


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save_checkpoint(directory: Path, model, tokenizer, state: dict, *, reference=None, final: bool = False) -> Path:
    """Write model + tokenizer + trainer state to `directory` atomically. Returns the directory.

    `final`: a LoRA model is also written merged, as a plain transformers model (lora.save).
    """
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    lora.save(model, tmp, merged=final)
    tokenizer.save_pretrained(tmp)
    if reference is not None:
        from safetensors.torch import save_model

        save_model(reference, str(tmp / "reference.safetensors"))
    torch.save({"rng": rng_state(), **state}, tmp / STATE_FILE)
    (tmp / STEP_FILE).write_text(json.dumps({"step": state["step"]}))  # written last: marks the folder complete
    old = directory.with_name(directory.name + ".old")
    shutil.rmtree(old, ignore_errors=True)  # left by a kill during an earlier replace; os.replace cannot overwrite it
    if directory.exists():  # replace an existing folder of the same name without a gap
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)
    return directory


def step_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step-{step:06d}"


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The complete checkpoint (step-N or final) with the highest step; temporary folders are ignored.

    Under data parallelism every rank calls it (it compares what the ranks found): a node that does not
    see rank 0's run directory would otherwise start afresh while the others resume."""
    root = Path(run_dir) / "checkpoints"
    candidates = [p for p in root.glob("*") if (p / STEP_FILE).is_file() and not p.name.endswith((".tmp", ".old"))] if root.is_dir() else []
    latest = max(candidates, key=lambda p: (checkpoint_step(p), p.name == "final"), default=None)
    found = dist.gather_objects(str(latest) if latest else None)
    if len(set(found)) > 1:
        raise ConfigError(f"the ranks found different checkpoints to resume from in {run_dir} (by rank: {found}): "
                          "run.output_dir must be on a file system every node shares")
    return latest


def checkpoint_step(path: Path) -> int:
    return json.loads((Path(path) / STEP_FILE).read_text())["step"]


def prune(run_dir: Path, keep: int) -> None:
    if not dist.is_main():
        return
    root = Path(run_dir) / "checkpoints"
    done = sorted(p for p in root.glob("step-*") if p.name[5:].isdigit() and (p / STEP_FILE).is_file())
    for path in done[:-keep]:
        shutil.rmtree(path, ignore_errors=True)


def load_state(checkpoint: Path) -> dict:
    # on the CPU: a GPU-written state then loads anywhere, and load_state_dict moves it to the parameters' device
    return torch.load(Path(checkpoint) / STATE_FILE, map_location="cpu", weights_only=False)


def load_reference(checkpoint: Path, reference) -> bool:
    """Load saved reference weights into `reference` if the checkpoint has them."""
    path = Path(checkpoint) / "reference.safetensors"
    if not path.is_file():
        return False
    from safetensors.torch import load_model

    load_model(reference, str(path))
    return True


def save_training(path: Path, model, tokenizer, *, optimizer, scheduler, sampler, counters: dict, step: int, reference=None, final: bool = False) -> Path:
    """Checkpoint a training loop (GRPO or SFT) at `step`. Every rank calls it; rank 0 writes.

    An FSDP-sharded model is gathered first (weights and optimizer state; r1/train/fsdp.py)."""
    rngs = dist.gather_objects(rng_state())
    sharded = fsdp.is_sharded(model)
    optimizer_state = fsdp.full_optimizer_state(model, optimizer) if sharded else optimizer.state_dict()
    model = fsdp.gathered(model) if sharded else model
    if dist.is_main():
        state = {"step": step, "optimizer": optimizer_state, "optimizer_by_name": sharded, "scheduler": scheduler.state_dict(), "sampler": sampler.state_dict(),
                 "counters": counters, "world_size": dist.world(), "rng_per_rank": rngs}
        save_checkpoint(path, model, tokenizer, state, reference=reference, final=final)
    dist.barrier()  # nobody reads or prunes the folder before it is complete
    return Path(path)


def restore_training(path: Path, *, model, optimizer, scheduler, sampler) -> tuple[int, dict]:
    """Load a `save_training` checkpoint into fresh objects and restore the RNGs → (step, counters)."""
    state = load_state(path)
    saved_world = state.get("world_size", 1)
    if saved_world != dist.world():
        raise ConfigError(
            f"{path} was written by a run of {saved_world} process(es) and this run has {dist.world()}: resume it with "
            f"the same number (torchrun --nproc_per_node {saved_world}), since the data split and the per-rank RNG states depend on it"
        )
    if state.get("optimizer_by_name"):  # written from FSDP shards: parameter-named, loads sharded or not
        fsdp.load_full_optimizer_state(model, optimizer, state["optimizer"])
    else:
        optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    sampler.load_state_dict(state["sampler"])
    set_rng_state(state.get("rng_per_rank", [state["rng"]])[dist.rank()])
    return state["step"], state["counters"]
