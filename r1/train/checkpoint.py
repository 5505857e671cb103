"""Checkpoints that survive a kill, and exact resume.

A checkpoint is a folder `checkpoints/step-000040/` holding what plain transformers loads
(`save_pretrained` safetensors + tokenizer) and `trainer_state.pt` with everything else needed
to continue as if never stopped: optimizer and scheduler state, the step, the data sampler's
position, every RNG (torch, Python, numpy) and the run's counters — plus, when the reference
policy has been reset to the policy, the reference weights.

It is written under a temporary name, checksummed and flushed (durable.py), then renamed into
place, so a kill mid-save leaves the previous checkpoint valid (a rename is atomic on POSIX file
systems), and a kill between the two renames that replace a folder leaves a complete copy that
`resumable` finds. A damaged checkpoint (checksums) is skipped for the previous good one. Only
the newest `keep` step checkpoints are kept; `final/` is never pruned.

Under data parallelism (r1/train/distributed.py) every rank calls `save_training`; rank 0 alone
writes, with every rank's RNG state (each rank samples its own completions) and the number of
processes, since the data split and those RNG streams are only meaningful for that number: a
resume with another number of processes is refused. The run directory must be on a file system
all ranks see. With a LoRA adapter the model part is the adapter (r1/train/lora.py).
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from r1.config import ConfigError, save_config
from r1.train import distributed as dist
from r1.train import durable, fsdp, lora, model_card
from r1.train.errors import RunError

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


def save_checkpoint(
    directory: Path,
    model,
    tokenizer,
    state: dict,
    *,
    reference=None,
    final: bool = False,
    finished: bool = False,
    config=None,
    recipe: str | None = None,
) -> Path:
    """Write model + tokenizer + trainer state to `directory` atomically. Returns the directory.

    `final`: a LoRA model is also written merged, as a plain transformers model (lora.save).
    `finished`: the run did all its steps (a time budget or a preemption stops short of that).
    `config`: the run's resolved Config, kept as `config.yaml` so a resume can compare (resume.py).
    A final checkpoint also gets a model card, README.md, naming `recipe` (the command: grpo, sft, …).
    Every file gets a checksum and is flushed to disk before the folder is renamed into place;
    a full disk is a RunError that says where and how much (durable.py)."""
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        lora.save(model, tmp, merged=final)
        tokenizer.save_pretrained(tmp)
        if reference is not None:
            from safetensors.torch import save_model

            save_model(reference, str(tmp / "reference.safetensors"))
        torch.save({"rng": rng_state(), **state}, tmp / STATE_FILE)
        if config is not None:
            save_config(config, tmp / "config.yaml")
        if final or base_name(directory) == "final":  # the folder users publish: a Hub model card (model_card.py)
            _write_card(tmp, directory, step=state["step"], finished=finished, recipe=recipe)
        durable.write_checksums(tmp)
        marker = {"step": state["step"], "finished": finished}
        (tmp / STEP_FILE).write_text(json.dumps(marker))  # written last: marks the folder complete
        durable.fsync_tree(tmp)
    except (OSError, RuntimeError) as err:
        weights = sum(p.numel() * p.element_size() for p in model.parameters())  # + Adam's two moments, below
        needed = max(3 * weights, *(durable.folder_bytes(p) for p in [tmp, *_complete(directory.parent)]))
        shutil.rmtree(tmp, ignore_errors=True)
        # torch words a full disk in several ways ("file write failed", "unexpected pos", iostream errors):
        # the free space decides when the message does not
        if not (durable.disk_full(err) or durable.free_bytes(directory.parent) < needed):
            raise
        raise RunError(durable.space_message(directory, needed)) from None
    _replace(tmp, directory)
    return directory


def _write_card(tmp: Path, directory: Path, **facts) -> None:
    config = tmp / "config.yaml"
    config_yaml = config.read_text(encoding="utf-8") if config.is_file() else None
    card = model_card.card_for_checkpoint(directory, config_yaml, **facts)
    (tmp / model_card.CARD).write_text(card, encoding="utf-8")


def _replace(tmp: Path, directory: Path) -> None:
    """Put the complete folder `tmp` in place of `directory` so that a complete copy exists at every
    moment: a kill between the two renames leaves `directory.old` (and `tmp`), both complete, and
    `resumable` finds them."""
    old = directory.with_name(directory.name + ".old")
    if directory.exists():  # complete (it got there by this rename): the older copy is not needed any more
        shutil.rmtree(old, ignore_errors=True)
        os.replace(directory, old)
    os.replace(tmp, directory)  # without `directory`, an `old` may be the only copy: it goes only after this
    durable.fsync_dir(directory.parent)
    shutil.rmtree(old, ignore_errors=True)


def step_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step-{step:06d}"


def _complete(root: Path) -> list[Path]:
    """Every complete checkpoint folder under `root`: step-N and final, and the `.tmp`/`.old` copies a kill
    during a save can leave (complete once their STEP_FILE, written last, is there). An `.old` is the
    copy being replaced: it counts only when neither its successor nor that one's `.tmp` is complete."""
    complete = [p for p in root.glob("*") if (p / STEP_FILE).is_file()] if root.is_dir() else []
    newer = {base_name(p) for p in complete if not p.name.endswith(".old")}
    return [p for p in complete if not (p.name.endswith(".old") and base_name(p) in newer)]  # .old: the older copy


def _newest_first(paths: list[Path]) -> list[Path]:
    """By step, final before step-N at the same step, the placed copy before its `.tmp`, then `.old`."""
    rank = {"": 2, ".tmp": 1, ".old": 0}
    return sorted(
        paths,
        key=lambda p: (checkpoint_step(p), base_name(p) == "final", rank[p.name[len(base_name(p)) :]]),
        reverse=True,
    )


def base_name(path: Path) -> str:
    """`final` for final, final.tmp and final.old; `step-000040` likewise."""
    return Path(path).name.removesuffix(".tmp").removesuffix(".old")


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The complete checkpoint (step-N or final, or a copy a kill left mid-replace) with the highest step.

    Under data parallelism every rank calls it (it compares what the ranks found): a node that does not
    see rank 0's run directory would otherwise start afresh while the others resume."""
    candidates = _newest_first(_complete(Path(run_dir) / "checkpoints"))
    return _agreed(candidates[0] if candidates else None, run_dir)


def resumable(run_dir: Path) -> tuple[Path | None, list[str]]:
    """The newest checkpoint whose files match their checksums, and a warning for each newer one that
    did not (a damaged latest checkpoint falls back to the previous good one). Every rank calls it."""
    skipped, chosen = [], None
    if dist.is_main():
        for path in _newest_first(_complete(Path(run_dir) / "checkpoints")):
            problem = durable.damaged(path)
            if problem is None:
                chosen = _promote(path)
                break
            skipped.append(f"checkpoint {path} is damaged ({problem}): falling back to an earlier one")
    chosen, skipped = dist.broadcast_object((chosen, skipped))
    return _agreed(chosen, run_dir), skipped


def _promote(path: Path) -> Path:
    """A complete `.tmp`/`.old` copy left by a kill mid-replace, renamed to its place when that is empty."""
    placed = path.with_name(base_name(path))
    if placed != path and not placed.exists():
        os.replace(path, placed)
        durable.fsync_dir(placed.parent)
        return placed
    return path


def _agreed(found: Path | None, run_dir: Path) -> Path | None:
    seen = dist.gather_objects(str(found) if found else None)
    if len(set(seen)) > 1:
        raise ConfigError(
            f"the ranks found different checkpoints to resume from in {run_dir} (by rank: {seen}): "
            "run.output_dir must be on a file system every node shares"
        )
    return found


def checkpoint_step(path: Path) -> int:
    return json.loads((Path(path) / STEP_FILE).read_text())["step"]


def is_finished(path: Path) -> bool:
    """Whether the checkpoint marks a run that did all its steps (a final written before the flag existed counts)."""
    info = json.loads((Path(path) / STEP_FILE).read_text())
    return bool(info.get("finished", base_name(path) == "final"))


def prune(run_dir: Path, keep: int) -> None:
    if not dist.is_main():
        return
    root = Path(run_dir) / "checkpoints"
    done = sorted(p for p in root.glob("step-*") if p.name[5:].isdigit() and (p / STEP_FILE).is_file())
    for path in done[:-keep]:
        shutil.rmtree(path, ignore_errors=True)


def load_state(checkpoint: Path) -> dict:
    """The trainer state of a checkpoint; a file that cannot be read is a RunError naming it."""
    path = Path(checkpoint) / STATE_FILE
    try:  # on the CPU: a GPU-written state then loads anywhere, and load_state_dict moves it to the parameters' device
        return torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as err:
        raise RunError(
            f"{path} cannot be read ({type(err).__name__}: {str(err)[:200]}); remove {checkpoint} "
            "to resume from the checkpoint before it"
        ) from None


def load_reference(checkpoint: Path, reference) -> bool:
    """Load saved reference weights into `reference` if the checkpoint has them."""
    path = Path(checkpoint) / "reference.safetensors"
    if not path.is_file():
        return False
    from safetensors.torch import load_model

    load_model(reference, str(path))
    return True


def save_training(
    path: Path,
    model,
    tokenizer,
    *,
    optimizer,
    scheduler,
    sampler,
    counters: dict,
    step: int,
    reference=None,
    final: bool = False,
    finished: bool = False,
    config=None,
    recipe: str | None = None,
) -> Path:
    """Checkpoint a training loop (GRPO or SFT) at `step`. Every rank calls it; rank 0 writes.

    An FSDP-sharded model is gathered first (weights and optimizer state; r1/train/fsdp.py)."""
    rngs = dist.gather_objects(rng_state())
    sharded = fsdp.is_sharded(model)
    optimizer_state = fsdp.full_optimizer_state(model, optimizer) if sharded else optimizer.state_dict()
    model = fsdp.gathered(model) if sharded else model
    if dist.is_main():
        state = {
            "step": step,
            "optimizer": optimizer_state,
            "optimizer_by_name": sharded,
            "scheduler": scheduler.state_dict(),
            "sampler": sampler.state_dict(),
            "counters": counters,
            "world_size": dist.world(),
            "rng_per_rank": rngs,
        }
        failure = None
        try:
            flags = dict(final=final, finished=finished, config=config, recipe=recipe)
            save_checkpoint(path, model, tokenizer, state, reference=reference, **flags)
        except RunError as err:
            failure = str(err)
    else:
        failure = None
    failure = dist.broadcast_object(failure)
    if failure:  # every rank stops with rank 0's message
        raise RunError(failure)
    dist.barrier()  # nobody reads or prunes the folder before it is complete
    return Path(path)


def restore_training(path: Path, *, model, optimizer, scheduler, sampler) -> tuple[int, dict]:
    """Load a `save_training` checkpoint into fresh objects and restore the RNGs → (step, counters)."""
    state = load_state(path)
    saved_world = state.get("world_size", 1)
    if saved_world != dist.world():
        raise ConfigError(
            f"{path} was written by a run of {saved_world} process(es) and this run has {dist.world()}: resume it with "
            f"the same number (torchrun --nproc_per_node {saved_world}), since the data split and the per-rank RNG "
            "states depend on it"
        )
    if state.get("optimizer_by_name"):  # written from FSDP shards: parameter-named, loads sharded or not
        fsdp.load_full_optimizer_state(model, optimizer, state["optimizer"])
    else:
        optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    sampler.load_state_dict(state["sampler"])
    set_rng_state(state.get("rng_per_rank", [state["rng"]])[dist.rank()])
    return state["step"], state["counters"]
