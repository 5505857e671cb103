"""Checkpoints that survive a kill, and exact resume.

A checkpoint is a folder `checkpoints/step-000040/` holding what plain transformers loads
(`save_pretrained` safetensors + tokenizer) and `trainer_state.pt` with everything else needed
to continue as if never stopped: optimizer and scheduler state, the step, the data sampler's
position, every RNG (torch, Python, numpy) and the run's counters — plus, when the reference
policy has been reset to the policy, the reference weights.

It is written under a temporary name and renamed into place, so a kill mid-save leaves the
previous checkpoint valid (a rename is atomic on POSIX file systems). Only the newest
`keep` step checkpoints are kept; `final/` is never pruned.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

STATE_FILE = "trainer_state.pt"
STEP_FILE = "checkpoint.json"  # small, so finding the latest checkpoint never loads optimizer state


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])


def save_checkpoint(directory: Path, model, tokenizer, state: dict, *, reference=None) -> Path:
    """Write model + tokenizer + trainer state to `directory` atomically. Returns the directory."""
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if reference is not None:
        from safetensors.torch import save_model

        save_model(reference, str(tmp / "reference.safetensors"))
    torch.save({**state, "rng": rng_state()}, tmp / STATE_FILE)
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
    """The complete checkpoint (step-N or final) with the highest step; temporary folders are ignored."""
    root = Path(run_dir) / "checkpoints"
    candidates = [p for p in root.glob("*") if (p / STEP_FILE).is_file() and not p.name.endswith((".tmp", ".old"))] if root.is_dir() else []
    return max(candidates, key=lambda p: (checkpoint_step(p), p.name == "final"), default=None)


def checkpoint_step(path: Path) -> int:
    return json.loads((Path(path) / STEP_FILE).read_text())["step"]


def prune(run_dir: Path, keep: int) -> None:
    root = Path(run_dir) / "checkpoints"
    done = sorted(p for p in root.glob("step-*") if p.name[5:].isdigit() and (p / STEP_FILE).is_file())
    for path in done[:-keep]:
        shutil.rmtree(path, ignore_errors=True)


def load_state(checkpoint: Path) -> dict:
    return torch.load(Path(checkpoint) / STATE_FILE, weights_only=False)


def load_reference(checkpoint: Path, reference) -> bool:
    """Load saved reference weights into `reference` if the checkpoint has them."""
    path = Path(checkpoint) / "reference.safetensors"
    if not path.is_file():
        return False
    from safetensors.torch import load_model

    load_model(reference, str(path))
    return True


def save_training(path: Path, model, tokenizer, *, optimizer, scheduler, sampler, counters: dict, step: int, reference=None) -> Path:
    """Checkpoint a training loop (GRPO or SFT) at `step`."""
    state = {"step": step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "sampler": sampler.state_dict(), "counters": counters}
    return save_checkpoint(path, model, tokenizer, state, reference=reference)


def restore_training(path: Path, *, optimizer, scheduler, sampler) -> tuple[int, dict]:
    """Load a `save_training` checkpoint into fresh objects and restore the RNGs → (step, counters)."""
    state = load_state(path)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    sampler.load_state_dict(state["sampler"])
    set_rng_state(state["rng"])
    return state["step"], state["counters"]
