"""The run loop, written once for every trainer (GRPO, SFT, reward model).

A trainer supplies its setup — a function from the checkpoint to resume (or None) to a `Trainer`:
model, optimizer, scheduler, data sampler, step count and its `step` function — and
`run_training` owns everything around it, in this order:

1. the process (torchrun ranks, seeds, threads) and the run directory, with `auto` precisions
   resolved (run.py); an exclusive lock on the directory (resume.py);
2. the start decision — fresh, resume, finished, or a refusal that names the ways forward — and,
   on resume, the config comparison (resume.py), all before any model loads;
3. restore (optimizer, scheduler, sampler, RNGs, the run's `RunStats`; changed settings applied for real);
4. the steps: log (to the trackers of `run.report_to`, r1/train/trackers.py), samples, periodic
   checkpoints with pruning, the time budget (`train.max_time_s`);
5. SIGTERM/SIGINT (a scheduler's preemption notice, Ctrl-C): the current step is finished, a
   checkpoint is written and `Preempted` is raised (the CLI exits with code 75); every rank agrees
   at the step boundary under torchrun; the same signal sent again stops at once;
6. the final checkpoint (`finished` only when every step ran).

Deliberately left out: what a step does (grpo.py, sft.py, rm.py) and evaluation.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from r1.config import Config, save_config, to_dict
from r1.train import checkpoint as ckpt
from r1.train import distributed as dist
from r1.train.errors import Preempted
from r1.train.resume import RunLock, Start, apply_changes, plan_start, record_changes
from r1.train.run import RunLogger, begin_process, console, resolve_run_dir, truncate_log_on_resume
from r1.train.stats import RunStats
from r1.train.trackers import require as require_trackers

StepFn = Callable[[int], tuple[dict, Callable[[], list[dict]] | None]]  # step -> (metrics, rows for samples.jsonl)


@dataclass
class Trainer:
    """What one training command hands the loop."""

    label: str  # names the loop in progress lines: "grpo", "sft", "rm"
    total_steps: int
    model: Any
    tokenizer: Any
    optimizer: Any
    scheduler: Any
    sampler: Any  # run.IndexSampler: its position is part of every checkpoint
    step: StepFn  # trains step `step` (1-based)
    stats: RunStats = field(default_factory=RunStats)  # saved with checkpoints; the step function updates it
    reference: Any = None  # GRPO's reset reference policy, saved with checkpoints
    restore: Callable[[Path], None] | None = None  # more state to read from a checkpoint (the reference)
    begin: Callable[[RunLogger, bool], None] | None = None  # once before the first step; the flag: resumed
    merge_final: bool = True  # a LoRA final checkpoint is also written merged
    close: Callable[[], None] | None = None  # releases what the run holds (GRPO: its verifier pool), however it ends


@dataclass
class Outcome:
    """How `run_training` ended."""

    run_dir: Path
    step: int = 0
    final: Path | None = None
    finished_before: bool = False  # the directory held a finished run: nothing was done
    resumed: bool = False


def run_training(cfg: Config, command: str, setup: Callable[[Path | None], Trainer]) -> Outcome:
    """Run one training command as configured (module doc); `setup` builds the trainer."""
    begin_process(cfg, command)
    require_trackers(cfg.run.report_to)  # a tracker's missing package is found before any model loads
    run_dir, notes = resolve_run_dir(cfg, command)
    with RunLock(run_dir):
        start = plan_start(run_dir, cfg)
        for warning in start.warnings:
            console.print(f"\\[r1] {warning}")
        if start.finished is not None:
            step = ckpt.checkpoint_step(start.finished)
            console.print(f"{run_dir} holds a finished run ({step} steps; {start.finished}): nothing to do")
            return Outcome(run_dir, step, start.finished, finished_before=True)
        if dist.is_main():
            save_config(cfg, run_dir / "config.yaml", notes=["precision " + note for note in notes])
        trainer = setup(start.resume_from)
        try:
            step = _restore(run_dir, cfg, trainer, start) if start.resume_from else 0
            return _loop(run_dir, cfg, trainer, step, resumed=start.resume_from is not None)
        finally:
            if trainer.close is not None:
                trainer.close()


def _restore(run_dir: Path, cfg: Config, trainer: Trainer, start: Start) -> int:
    step, saved_stats = ckpt.restore_training(
        start.resume_from,
        model=trainer.model,
        optimizer=trainer.optimizer,
        scheduler=trainer.scheduler,
        sampler=trainer.sampler,
    )
    trainer.stats.load_state_dict(saved_stats)
    if trainer.restore is not None:
        trainer.restore(start.resume_from)
    apply_changes(start.changes, cfg, trainer.optimizer, trainer.scheduler)
    record_changes(run_dir, step, start.changes)
    truncate_log_on_resume(run_dir, step)
    applied = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in sorted(start.changes.items()))
    console.print(f"resumed from {start.resume_from} at step {step}" + (f"; applied {applied}" if applied else ""))
    return step


class StopSignals:
    """SIGTERM/SIGINT while the loop runs: remember the first, let a second one act as usual."""

    def __init__(self):
        self.received: str | None = None
        self._previous = {}
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread only
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self.received = signal.Signals(signum).name
        signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))  # the same signal again: as before
        console.print(
            f"\\[r1] {self.received}: finishing this step, then saving a checkpoint (send it again to stop now)"
        )

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _save(run_dir: Path, cfg: Config, trainer: Trainer, step: int, path: Path, **flags) -> Path:
    return ckpt.save_training(
        path,
        trainer.model,
        trainer.tokenizer,
        optimizer=trainer.optimizer,
        scheduler=trainer.scheduler,
        sampler=trainer.sampler,
        counters=trainer.stats.state_dict(),
        step=step,
        reference=trainer.reference,
        config=cfg,
        recipe=trainer.label,
        **flags,
    )


def _loop(run_dir: Path, cfg: Config, trainer: Trainer, step: int, *, resumed: bool) -> Outcome:
    t = cfg.train
    logger = RunLogger(
        run_dir,
        trainer.total_steps,
        label=trainer.label,
        begin=step,
        report_to=cfg.run.report_to,
        project=cfg.run.tracker_project,
        config=to_dict(cfg),
        budget_s=cfg.train.max_time_s,
    )
    signals, started = StopSignals(), time.perf_counter()
    try:
        if trainer.begin is not None:
            trainer.begin(logger, resumed)
        while step < trainer.total_steps:
            step += 1
            metrics, rows = trainer.step(step)
            logger.log(step, metrics, show=step % t.log_every == 0 or step == trainer.total_steps)
            if rows is not None and t.sample_every and step % t.sample_every == 0:
                logger.samples(step, rows())
            if dist.any_rank(signals.received is not None):
                path = _save(run_dir, cfg, trainer, step, ckpt.step_dir(run_dir, step))
                ckpt.prune(run_dir, t.keep_checkpoints)
                received = [name for name in dist.gather_objects(signals.received) if name]  # which rank got what
                raise Preempted(received[0], step, path)
            if step % t.save_every == 0 and step < trainer.total_steps:
                _save(run_dir, cfg, trainer, step, ckpt.step_dir(run_dir, step))
                ckpt.prune(run_dir, t.keep_checkpoints)
            if t.max_time_s and dist.any_rank(time.perf_counter() - started >= t.max_time_s):
                console.print(f"time budget train.max_time_s={t.max_time_s:g} reached after step {step}")
                break
        final = _save(
            run_dir,
            cfg,
            trainer,
            step,
            run_dir / "checkpoints" / "final",
            final=trainer.merge_final,
            finished=step >= trainer.total_steps,
        )
        logger.finish()
    finally:
        signals.restore()
        logger.close()
    console.print(f"done: {step} steps; final checkpoint {final}")
    return Outcome(run_dir, step, final, resumed=resumed)
