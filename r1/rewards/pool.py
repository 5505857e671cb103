"""A pool of verification worker processes with a hard wall-clock limit per call.

Why: sympy can take forever (``9^9^9^9``), eat all memory (``100000!``) or crash on
adversarial model output, and an RL run produces millions of those strings. Each check
runs in a worker process (``worker.py``); the calling thread waits on the worker's pipe
with ``select`` and, past the limit, SIGKILLs the worker and starts a fresh one. That
works from any thread (no ``signal.alarm``), and dispatch is thread-safe: idle workers
sit in a ``queue.Queue`` and each call owns one worker while it runs.

Outcomes of one call: ``"equal"``, ``"different"``, ``"timeout"`` (killed at the limit),
``"crash"`` (the worker died — e.g. segfault, memory cap — or the checker raised inside it).
The caller decides what they score; ``accuracy`` scores all but ``"equal"`` as 0.

What it does not protect against: a runaway *parent* (the extraction rules in the parent
are linear-time and the prediction length is capped before dispatch), and a machine with
too little RAM for ``workers × memory_mb``. A run owns its pool through its ``RewardRuntime``
(runtime.py), which starts it on first use and shuts it down at the end (direct library calls
use the default runtime's, shut down at exit); workers also exit by themselves when their
parent dies.
"""

import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

_WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")
STARTUP_TIMEOUT_S = 120.0  # importing sympy on a loaded machine can be slow; not the call limit


@dataclass(frozen=True)
class PoolConfig:
    workers: int
    timeout_s: float
    memory_mb: int


class _WorkerDied(Exception):
    pass


class _Worker:
    """One worker process and its line-oriented JSON pipe."""

    def __init__(self, memory_mb: int):
        self.proc = subprocess.Popen(
            [sys.executable, _WORKER_SCRIPT, str(memory_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        self._buffer = b""
        self.ready = False

    def read_line(self, timeout_s: float) -> dict | None:
        """The next reply, or None at the deadline. Raises ``_WorkerDied`` on EOF."""
        deadline = time.monotonic() + timeout_s
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise _WorkerDied()
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def wait_ready(self) -> None:
        if not self.ready:
            if self.read_line(STARTUP_TIMEOUT_S) is None:
                raise RuntimeError("reward worker did not start (is math-verify installed?)")
            self.ready = True

    def send(self, gold: str, pred: str) -> None:
        try:
            self.proc.stdin.write((json.dumps({"gold": gold, "pred": pred}) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise _WorkerDied() from exc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # SIGKILL: a worker stuck inside sympy ignores anything softer
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


class VerifierPool:
    """``workers`` verification processes; ``check(gold, pred)`` is safe from any thread."""

    def __init__(self, config: PoolConfig):
        self.config = config
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(config.workers):
            self._add_worker()

    def _add_worker(self) -> None:
        with self._lock:
            if self._closed:
                return
            worker = _Worker(self.config.memory_mb)
            self._all.add(worker)
        self._idle.put(worker)

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._all.discard(worker)
        self._add_worker()

    def _take_worker(self) -> _Worker:
        """An idle, live worker (one that died while idle is replaced, not blamed on a call)."""
        while True:
            try:
                worker = self._idle.get(timeout=1.0)
            except queue.Empty:
                if self._closed:
                    raise RuntimeError("verifier pool is shut down") from None
                continue
            if worker.proc.poll() is None:
                return worker
            self._retire(worker)

    def check(self, gold: str, pred: str) -> str:
        """Compare one prediction to one reference: ``equal|different|timeout|crash``.

        A worker that dies is retried once on a fresh worker: it may have been killed while
        idle (OOM killer, a signal) and the sample should not pay for that. An input that
        kills two workers in a row is a crash.
        """
        outcome = self._check_once(gold, pred)
        if outcome == "died":
            outcome = self._check_once(gold, pred)
        return "crash" if outcome == "died" else outcome

    def _check_once(self, gold: str, pred: str) -> str:
        if self._closed:
            raise RuntimeError("verifier pool is shut down")
        worker = self._take_worker()
        try:
            worker.wait_ready()
            worker.send(gold, pred)
            reply = worker.read_line(self.config.timeout_s)
        except _WorkerDied:
            self._retire(worker)
            return "died"
        except BaseException:
            self._retire(worker)  # unknown state (e.g. KeyboardInterrupt mid-call)
            raise
        if reply is None:
            self._retire(worker)
            return "timeout"
        self._idle.put(worker)
        if "error" in reply:  # the checker raised (MemoryError, RecursionError, …)
            return "crash"
        return "equal" if reply["ok"] else "different"

    def check_many(self, pairs: list[tuple[str, str]]) -> list[str]:
        """``check`` over many pairs, spread over all workers concurrently."""
        if len(pairs) <= 1:
            return [self.check(g, p) for g, p in pairs]
        with ThreadPoolExecutor(max_workers=self.config.workers) as executor:
            return list(executor.map(lambda pair: self.check(*pair), pairs))

    def pids(self) -> list[int]:
        with self._lock:
            return [w.proc.pid for w in self._all]

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._all = list(self._all), set()
        for worker in workers:
            worker.kill()
