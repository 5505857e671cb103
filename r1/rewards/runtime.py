"""What the rewards of one run use — the verifier pool and the reward models — as one object.

A run builds its ``RewardRuntime`` from its ``rewards:`` section where it starts
(``RewardRuntime.build``), hands it to ``score_completions``, and closes it when it ends: two runs
in one process (the pipeline's stages, the tests) never share or reconfigure each other's pool,
and nothing has to be configured before a reward can be called. Rewards that need a resource are
registered with ``uses_runtime=True`` and receive the runtime as the keyword ``runtime``.

A direct library call without a runtime (``REWARDS["accuracy"](completion, example)``,
``answers_equivalent``, evaluation) uses the process's default runtime, ``default_runtime()``:
default limits (``configure`` changes them), no reward models, its pool started on first use and
shut down at exit. Deliberately left out: sharing one pool between concurrent runs.
"""

from __future__ import annotations

import atexit
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from . import pool as pool_module
from .pool import PoolConfig, VerifierPool

if TYPE_CHECKING:
    from r1.config import RewardsConfig

ModelScorer = Callable[[list[str], list[str]], list]  # (questions, responses) → scores (models.py)


def pool_limits(workers: int | None = None, timeout_s: float = 3.0, memory_mb: int = 1024) -> PoolConfig:
    """The pool's size and limits; ``workers=None`` → ``min(2, cpu_count)``. Bad values raise ValueError."""
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    n = workers if workers is not None else max(1, min(2, os.cpu_count() or 1))
    return PoolConfig(workers=n, timeout_s=float(timeout_s), memory_mb=int(memory_mb))


@dataclass
class RewardRuntime:
    """The verifier pool (started on first use) and the loaded reward models of one run."""

    limits: PoolConfig = field(default_factory=pool_limits)
    models: dict[str, ModelScorer] = field(default_factory=dict)  # model-backed reward → its scorer
    _pool: VerifierPool | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def build(cls, rewards: RewardsConfig) -> RewardRuntime:
        """The runtime ``rewards`` asks for; the reward models of the weighted rewards load now."""
        from .models import load_reward_models

        paths = {"helpfulness": rewards.helpfulness_model, "harmlessness": rewards.harmlessness_model}
        limits = pool_limits(rewards.workers, rewards.timeout_s)
        return cls(limits=limits, models=load_reward_models(paths, used=rewards.weights))

    @property
    def pool(self) -> VerifierPool:
        """The verification workers, started on first use (a run without ``accuracy`` starts none)."""
        with self._lock:
            if self._pool is None:
                self._pool = VerifierPool(self.limits)
            return self._pool

    @property
    def timeout_s(self) -> float:
        """The per-call wall-clock limit (``rewards.timeout_s``); every reward call gets it."""
        return self.limits.timeout_s

    @property
    def workers(self) -> int:
        """The pool's width: how many threads a ``concurrent`` reward is called from."""
        return self.limits.workers

    def max_check_s(self) -> float:
        """The longest one ``check`` takes with healthy workers: two attempts (a dead worker is retried
        once), each of which may wait for a fresh worker to start before its call limit runs.

        A backstop for threads waiting on calls that have their own limits (``concurrent`` rewards):
        waiting any shorter would give up verifications that the pool would still have answered.
        """
        return 2 * (pool_module.STARTUP_TIMEOUT_S + self.limits.timeout_s)

    def close(self) -> None:
        """Kill the pool's workers now; a later use starts a fresh pool."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()

    def __enter__(self) -> RewardRuntime:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_default = RewardRuntime()


def default_runtime() -> RewardRuntime:
    """The runtime of direct library calls (module doc)."""
    return _default


def configure(workers: int | None = None, timeout_s: float = 3.0, memory_mb: int = 1024) -> None:
    """Set the default runtime's pool size, per-call limit and per-worker memory cap (its pool restarts).

    Runs do not read this: they build their own runtime from ``rewards:``.
    """
    global _default
    limits = pool_limits(workers, timeout_s, memory_mb)
    _default.close()
    _default = RewardRuntime(limits=limits)


def get_pool() -> VerifierPool:
    """The default runtime's pool."""
    return _default.pool


def shutdown() -> None:
    """Kill the default runtime's workers (also at exit); the next use restarts them."""
    _default.close()


atexit.register(shutdown)
