"""One-step off-policy rollouts (`rollout.async_steps=1`): step t+1's batch is sampled while step t trains.

At step t the trainer takes the batch sampled during step t-1 (from a copy of the weights as they
were before step t-1's update), then hands a copy of the current weights to a background thread that
samples and scores step t+1's prompts while step t computes its update. Each batch is therefore one
update stale: its tokens come from π_{t-1} while the loss's π_old is π_t. That gap is what
`grpo.rollout_correction` corrects, from the engine's own log-probs (decoupled PPO: π_old is the
trainer's proximal policy, the engine's log-probs the behaviour policy's), so async runs require it.

The prompts of the batch in flight are drawn from a copy of the data order, and taken from the real
one only when the batch is used: a checkpoint never counts prompts that were not trained on, and a
resumed run samples its first batch on-policy. The first step of a run, too, samples on-policy.

What it buys depends on the machine: on a GPU (or a CPU with cores to spare) sampling and training
overlap; on 2 CPU cores both halves share the same cores (docs/algorithms.md has the measurement).
Deliberately left out: staleness above one step, more than one process (data parallel, FSDP), and
dynamic sampling's refill rounds (the filter alone works).
"""

from __future__ import annotations

import threading
from typing import Callable


class Prefetch:
    """At most one batch being made in a background thread, for known prompt indices."""

    def __init__(self):
        self._thread: threading.Thread | None = None
        self._indices: list[int] | None = None
        self._result = None
        self._error: BaseException | None = None

    def start(self, indices: list[int], make: Callable[[], object]) -> None:
        """Run `make()` (sample and score `indices`) in the background."""
        self.close()

        def run() -> None:
            try:
                self._result = make()
            except BaseException as error:  # re-raised where the batch is taken, in the training thread
                self._error = error

        self._indices, self._result, self._error = list(indices), None, None
        self._thread = threading.Thread(target=run, name="r1-prefetch", daemon=True)
        self._thread.start()

    def take(self, indices: list[int]):
        """The batch made for exactly these prompt indices (waiting for it), or None when there is none."""
        if self._thread is None or self._indices != list(indices):
            self.close()
            return None
        self._thread.join()
        result, error = self._result, self._error
        self._thread, self._indices, self._result, self._error = None, None, None, None
        if error is not None:
            raise error
        return result

    def close(self) -> None:
        """Wait for a batch in flight and drop it (the end of a run, or prompts that changed)."""
        if self._thread is not None:
            self._thread.join()
        self._thread, self._indices, self._result, self._error = None, None, None, None
