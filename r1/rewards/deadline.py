"""Wall-clock deadlines for reward calls: run them on daemon threads and give up the ones that hang.

Why: a reward is arbitrary Python (users add their own with ``@register``), and one that hangs —
``time.sleep(10**6)``, ``while True: pass``, a deadlock — must cost a sample, not the run. Python
cannot interrupt or kill a thread, so the caller never waits on a call past its limit instead:
``run_with_deadline`` starts *lanes* (daemon threads) that take the next item of a shared list and
call ``call(item)``; the caller sleeps until the earliest deadline of the calls in flight, and a
call still running at its deadline is given up — its item gets ``TIMED_OUT``, its lane is
abandoned and a fresh lane takes over the items left. A batch so costs its normal work plus at
most one limit per hung call (spread over the lanes when there are several).

Cost for fast calls: one thread start per batch and two uncontended lock acquisitions per item;
the caller wakes only at a deadline or at the end (docs in ``scoring.py`` give the measurement).
Each lane runs in a copy of the caller's ``contextvars`` context, as an inline call would.

Deliberately left out: stopping a hung call. An abandoned thread keeps running — and holding what
it holds: memory, locks, a CPU core and a share of the GIL for a pure-Python loop — until it
returns or the process exits (daemon threads do not keep the interpreter from exiting; its result
is dropped). Work that must really be stopped belongs in a process (``pool.py``, ``sandbox.py``).
"""

import contextvars
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence


class _TimedOut:
    def __repr__(self) -> str:
        return "TIMED_OUT"


TIMED_OUT = _TimedOut()  # the result of an item whose call was still running at its deadline


@dataclass(frozen=True)
class _Raised:
    """A BaseException (SystemExit, …) that escaped ``call`` in a lane; re-raised in the caller."""

    exc: BaseException


@dataclass
class _Lane:
    current: tuple[int, float] | None = None  # (item index, monotonic start) of the call in flight
    abandoned: bool = False


class _Batch:
    """Items, their results and the lanes working on them; every shared field is guarded by ``lock``."""

    def __init__(self, call: Callable, items: Sequence, limit_s: float):
        self.call, self.items, self.limit_s = call, items, limit_s
        self.results: list = [None] * len(items)
        self.next = self.finished = 0
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.lanes: list[_Lane] = []  # the live ones; only the caller's thread changes this list

    def start_lane(self) -> None:
        lane = _Lane()
        self.lanes.append(lane)
        work = contextvars.copy_context().run  # one context per thread: a context cannot be entered twice
        threading.Thread(target=work, args=(self._work, lane), name="reward-call", daemon=True).start()

    def _work(self, lane: _Lane) -> None:
        while (index := self._take(lane)) is not None:
            try:
                result = self.call(self.items[index])
            except BaseException as exc:  # not lost with the thread: the caller re-raises it
                result = _Raised(exc)
            with self.lock:
                if lane.abandoned:  # too late: the caller has scored this item TIMED_OUT
                    return
                lane.current = None
                self._record(index, result)

    def _take(self, lane: _Lane) -> int | None:
        with self.lock:
            if lane.abandoned or self.next >= len(self.items):
                return None
            index, self.next = self.next, self.next + 1
            lane.current = (index, time.monotonic())
            return index

    def _record(self, index: int, result) -> None:
        self.results[index] = result
        self.finished += 1
        if self.finished == len(self.items):
            self.done.set()

    def expire(self, now: float) -> float:
        """Give up the calls past their deadline (fresh lanes replace theirs); seconds to the next deadline."""
        wait, overdue = self.limit_s, []  # a call not started yet ends no sooner than now + limit
        with self.lock:
            for lane in self.lanes:
                if lane.current is None:
                    continue
                index, start = lane.current
                if now - start < self.limit_s:
                    wait = min(wait, start + self.limit_s - now)
                    continue
                lane.abandoned = True
                overdue.append(lane)
                self._record(index, TIMED_OUT)
        for lane in overdue:
            self.lanes.remove(lane)
            if self.next < len(self.items):
                self.start_lane()
        return wait


def run_with_deadline(call: Callable, items: Sequence, limit_s: float, lanes: int = 1) -> list:
    """``[call(item) for item in items]`` on ``lanes`` daemon threads, each call given ``limit_s`` seconds.

    A call still running at its deadline gives ``TIMED_OUT`` for its item and is abandoned (module
    doc); the others are unaffected. Returns once every item has a result or timed out: at most
    the calls' own time plus ``limit_s`` per hung call. An exception must be handled in ``call``;
    a BaseException (SystemExit) escaping it is re-raised here once every item is done.

    >>> run_with_deadline(lambda s: time.sleep(s) or s, [0.0, 60.0, 0.0], limit_s=0.1)
    [0.0, TIMED_OUT, 0.0]
    """
    if limit_s <= 0:
        raise ValueError(f"limit_s must be > 0, got {limit_s}")
    batch = _Batch(call, list(items), limit_s)
    if not batch.items:
        return []
    for _ in range(min(lanes, len(batch.items))):
        batch.start_lane()
    wait = limit_s
    while not batch.done.wait(wait):
        wait = batch.expire(time.monotonic())
    raised = [r.exc for r in batch.results if isinstance(r, _Raised)]
    if raised:
        raise raised[0]
    return batch.results
