"""Progress lines with an ETA for every long stage, the same in a terminal, a file or a pipe.

`Progress(label, total, unit="step")` is told `update(done, **extra)` after each step or chunk of
work and prints one plain, flushed line such as

    grpo step 3/30  12.4 s/step  elapsed 37s  ETA 5m 35s  reward 0.310  acc 0.25

- the rate and ETA come from this process's mean so far: rate = elapsed / (done - begin),
  ETA = rate × (total - done), where `begin` is where the work started (a resumed run's step),
  or the time left of `budget_s` (`train.max_time_s`) when that runs out first;
- at most one line per `min_interval_s` (0.5 s: a few lines per second at most), except the last
  (`done == total`), which always prints;
- `update(done, quiet=True)` (a training step between two `train.log_every` lines) prints only
  when `heartbeat_s` (30 s) passed since the last line, so a log is never silent for longer than
  that or one step, whichever is longer (a single step or chunk is not split into parts);
- only rank 0 prints under data parallelism (r1/train/distributed.py).

A sequence of unlike stages (the demo's, the pipeline's) uses `eta=False`: a mean over an eval and
a GRPO stage predicts nothing, so those lines give each stage's time and the overall elapsed
time, and the ETA comes from the lines of the stage that is running.

Deliberately left out: rich's live bar. It draws nothing when stdout is not a terminal (CI logs,
`make demo > log`), and lines read the same in both places and stay in the scrollback.
"""

from __future__ import annotations

import sys
import time
from typing import Callable


def format_duration(seconds: float) -> str:
    """`42s`, `5m 12s`, `1h 05m`."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def format_rate(seconds_per_unit: float, unit: str) -> str:
    """`12.4 s/step` for slow work, `3.2 samples/s` for fast."""
    if seconds_per_unit >= 1:
        return f"{seconds_per_unit:.1f} s/{unit}"
    return f"{1 / max(seconds_per_unit, 1e-9):.1f} {unit}s/s"


class Progress:
    """One stage's progress lines (module doc). `clock` is injectable for tests."""

    def __init__(
        self,
        label: str,
        total: int,
        *,
        unit: str = "step",
        begin: int = 0,
        eta: bool = True,
        enabled: bool = True,
        min_interval_s: float = 0.5,
        heartbeat_s: float = 30.0,
        budget_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.label, self.total, self.unit, self.begin, self.eta = label, total, unit, begin, eta
        self.budget_s = budget_s  # a time budget (train.max_time_s) ends the work first when it is shorter
        self.enabled = enabled and _is_main_process()
        self.min_interval_s, self.heartbeat_s, self.clock = min_interval_s, heartbeat_s, clock
        self.started = self.last_line = clock()

    def line(self, done: int, now: float, extra: dict) -> str:
        elapsed = now - self.started
        timing = [f"elapsed {format_duration(elapsed)}"]
        if self.eta and done > self.begin:
            per_unit = elapsed / (done - self.begin)
            left = per_unit * (self.total - done)
            if self.budget_s and self.budget_s - elapsed < left:
                left = self.budget_s - elapsed  # the budget, not the step count, ends this run
            eta = format_duration(left)
            timing = [format_rate(per_unit, self.unit), *timing, f"ETA {eta}"]
        elif self.eta:  # no unit of this run finished yet
            timing = [f"? s/{self.unit}", *timing, "ETA ?"]
        shown = [f"{key} {v:.4g}" if isinstance(v, float) else f"{key} {v}" for key, v in extra.items()]
        return "  ".join([f"{self.label} {done}/{self.total}", *timing, *shown])

    def update(self, done: int, /, *, quiet: bool = False, **extra) -> str | None:
        """Print the line for `done` of `total` units unless rate-limited; returns it (None if not printed)."""
        now = self.clock()
        since = now - self.last_line
        due = done >= self.total or since >= self.heartbeat_s or (not quiet and since >= self.min_interval_s)
        if not (self.enabled and due):
            return None
        self.last_line = now
        text = self.line(done, now, extra)
        print(text, file=sys.stdout, flush=True)
        return text


def _is_main_process() -> bool:
    """Rank 0 of a torchrun/accelerate launch, or the only process (only it prints progress)."""
    import torch.distributed as tdist

    return not (tdist.is_available() and tdist.is_initialized()) or tdist.get_rank() == 0
