"""How a training run starts in its directory: one run per directory, and a resume that cannot lie.

`RunLock` holds the directory for one process (an exclusive `flock` on `.lock`, which the kernel
releases when the holder dies, so a lock is never stale; where the file system has no `flock`, the
pid written in the file is checked instead). A second `r1` on the same directory is refused.

`plan_start` decides, from what the directory holds and `run.resume`, before any model loads:

| the directory holds | resume=false | resume=true | resume=auto |
|---|---|---|---|
| nothing (or only a config.yaml) | fresh start | error: nothing to resume | fresh start |
| a finished run, same config | "finished", exit 0, nothing rewritten | same | same |
| a usable checkpoint | error: say resume=true, or another directory | resume | resume |
| logs but no usable checkpoint | error, as above | error: nothing to resume | old logs moved aside, fresh start |

A damaged newest checkpoint (checksums, durable.py) falls back to the previous good one with a
warning. On resume, the checkpoint's `config.yaml` is compared with the new config (`compare`):
settings that do not change what the run computes (`SAFE`: time budget, logging, checkpoint and
eval cadence, worker counts, the resolved precisions) are applied and recorded; any other change
is refused with the diff, unless `run.allow_config_change=true`, which applies it for real from the
next step (`apply_changes`: the optimizer's hyperparameters are set again after its state is
restored) and records it in `config_changes.jsonl`. `NEVER` lists what cannot be applied to a
resumed run at all (the model, its adapter shape, the seed whose RNG states the checkpoint holds).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from r1.config import Config, to_dict
from r1.config_tree import flatten
from r1.train import checkpoint as ckpt
from r1.train import distributed as dist
from r1.train.errors import RunError

SAFE = (
    "train.max_time_s",
    "train.log_every",
    "train.save_every",
    "train.keep_checkpoints",
    "train.sample_every",
    "eval.",
    "run.threads",
    "run.resume",
    "run.output_dir",
    "run.allow_config_change",
    "run.device",
    "run.report_to",
    "run.tracker_project",
    "rewards.workers",
    "rewards.timeout_s",
    "rollout.dtype",
    "train.bf16",
    "pipeline.",
)
NEVER = ("model.name", "model.lora.", "run.seed")
INVOCATION = ("run.resume", "run.output_dir", "run.allow_config_change")  # how this run was started, not what it is
LOGS = ("metrics.jsonl", "samples.jsonl", "tensorboard", "checkpoints", "config_changes.jsonl")


class RunLock:
    """An exclusive hold on a run directory for this process (rank 0 under data parallelism)."""

    def __init__(self, run_dir: Path):
        self.path, self.fd = Path(run_dir) / ".lock", None

    def __enter__(self) -> RunLock:
        problem = self._take() if dist.is_main() else None
        problem = dist.broadcast_object(problem)
        if problem:
            raise RunError(problem)
        return self

    def _take(self) -> str | None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(self.fd)
            self.fd = None
            return (
                f"{self.path.parent} is in use by another r1 process (pid {holder}): two runs in one "
                "directory would interleave their metrics and checkpoints. Wait for it, stop it, or give "
                "this run another run.output_dir"
            )
        except OSError:  # no flock on this file system: the recorded pid decides
            holder = os.pread(self.fd, 64, 0).decode(errors="replace").strip()
            if holder.isdigit() and int(holder) != os.getpid() and _alive(int(holder)):
                os.close(self.fd)
                self.fd = None
                return f"{self.path.parent} is in use by another r1 process (pid {holder})"
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
        return None

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the flock; the file stays (unlinking it would race the next taker)
            self.fd = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Start:
    """How the run starts (plan_start)."""

    resume_from: Path | None = None  # the checkpoint to continue
    finished: Path | None = None  # the final checkpoint of a run that did all its steps: nothing to do
    changes: dict[str, tuple] = field(default_factory=dict)  # setting -> (checkpoint's value, new value)
    warnings: list[str] = field(default_factory=list)


def plan_start(run_dir: Path, cfg: Config) -> Start:
    """The decision of the module doc's table; raises RunError with the ways forward. Every rank calls it.

    A finished run counts as finished for the same config: with changes that alter the run (more
    steps, say) and `run.allow_config_change`, it is resumed from its final checkpoint instead."""
    resume = cfg.run.resume
    found, skipped = ckpt.resumable(run_dir)
    if found is not None:
        changes = differences(found, cfg)
        done = ckpt.base_name(found) == "final" and ckpt.is_finished(found)
        if done and all(_matches(k, SAFE) for k in changes):
            return Start(finished=found, warnings=skipped)
        if resume is False:
            raise RunError(
                f"{run_dir} already holds a run (a checkpoint at step {ckpt.checkpoint_step(found)}). Rerun "
                "with run.resume=true to continue it, or give another run.output_dir (or delete this one) "
                "to start afresh"
            )
        check_changes(changes, cfg, found)
        return Start(resume_from=found, changes=changes, warnings=skipped)
    progress = _progress(Path(run_dir))
    if resume is True:
        damaged = "; ".join(skipped) or "no checkpoint was saved yet"
        raise RunError(
            f"run.resume=true, but {run_dir} has no checkpoint to resume ({damaged}). "
            "run.resume=auto starts afresh there (moving its old logs aside), or drop run.resume"
        )
    if progress and resume is False:
        raise RunError(
            f"{run_dir} already holds a run ({progress}). Rerun with run.resume=auto to start afresh there "
            "(its old logs are moved aside), or give another run.output_dir"
        )
    if progress:  # auto, nothing usable to resume
        moved = _move_aside(Path(run_dir))
        skipped.append(f"no usable checkpoint in {run_dir}: starting afresh; its old logs are in {moved}")
    return Start(warnings=skipped)


def _progress(run_dir: Path) -> str:
    """What of an earlier run without a usable checkpoint the directory holds ("" when nothing but
    perhaps a config.yaml)."""
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file() and metrics.stat().st_size:
        return "a metrics.jsonl, but no usable checkpoint"
    if any((run_dir / "checkpoints").glob("*")):
        return "checkpoints, all incomplete or damaged"
    return ""


def _move_aside(run_dir: Path) -> Path:
    """Move the old logs and checkpoints into `stale-<time>/` (rank 0); returns that folder."""
    target = run_dir / time.strftime("stale-%Y%m%d-%H%M%S")
    if dist.is_main():
        target.mkdir(exist_ok=True)
        for name in LOGS:
            if (run_dir / name).exists():
                os.replace(run_dir / name, target / name)
    dist.barrier()
    return target


def _matches(key: str, patterns: tuple[str, ...]) -> bool:
    return any(key == p or (p.endswith(".") and key.startswith(p)) for p in patterns)


def differences(checkpoint: Path, cfg: Config) -> dict[str, tuple]:
    """The settings that differ between the checkpoint's config.yaml and `cfg`: key -> (old, new)."""
    saved_file = Path(checkpoint) / "config.yaml"
    if not saved_file.is_file():  # written before checkpoints kept their config: nothing to compare with
        return {}
    saved, new = flatten(yaml.safe_load(saved_file.read_text(encoding="utf-8")) or {}), flatten(to_dict(cfg))
    return {k: (saved[k], new[k]) for k in saved.keys() & new.keys() if saved[k] != new[k] and k not in INVOCATION}


def check_changes(changes: dict[str, tuple], cfg: Config, checkpoint: Path) -> None:
    """Refuse (RunError with the diff) the changes a resume may not apply (module doc)."""
    never = {k: v for k, v in changes.items() if _matches(k, NEVER)}
    unsafe = {k: v for k, v in changes.items() if not _matches(k, SAFE) and k not in never}
    blocked = never if cfg.run.allow_config_change else {**never, **unsafe}
    if blocked:
        diff = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in sorted(blocked.items()))
        how = (
            ""
            if never and cfg.run.allow_config_change
            else ", or set run.allow_config_change=true to apply "
            "them from the next step (recorded in config_changes.jsonl)"
        )
        cannot = f" ({', '.join(sorted(never))} cannot change within a run)" if never else ""
        raise RunError(
            f"the config differs from the one {checkpoint} was trained with: {diff}{cannot}. "
            f"Rerun with the checkpoint's values{how}, or give another run.output_dir to start afresh"
        )


def apply_changes(changes: dict[str, tuple], cfg: Config, optimizer, scheduler) -> None:
    """Make the optimizer follow the new optim.* settings after its state was restored (which would
    otherwise bring the old ones back): the learning rate through the scheduler's base rates."""
    o = cfg.optim
    for group in optimizer.param_groups:
        if "optim.weight_decay" in changes:
            group["weight_decay"] = o.weight_decay
        if "optim.betas" in changes:
            group["betas"] = tuple(o.betas)
    if "optim.lr" in changes:
        scheduler.base_lrs = [o.lr for _ in scheduler.base_lrs]
        for group, lr_lambda in zip(optimizer.param_groups, scheduler.lr_lambdas):
            group["lr"] = o.lr * lr_lambda(scheduler.last_epoch)
        scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def record_changes(run_dir: Path, step: int, changes: dict[str, tuple]) -> None:
    """Append what changed at this resume to `config_changes.jsonl` (rank 0)."""
    if changes and dist.is_main():
        line = {
            "step": step,
            "time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "changes": {k: list(v) for k, v in sorted(changes.items())},
        }
        with open(Path(run_dir) / "config_changes.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")
