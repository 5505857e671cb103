"""The reward registry: reward functions by name, plus a side channel for counted events.

A reward is a plain function ``(completion: str, example: dict) -> float`` (``RewardFn``);
the trainer picks rewards by name from ``REWARDS`` and never special-cases one. Users add
their own with ``@register("name")``.

Two optional properties ride on the function, set by ``register``:
``concurrent=True`` tells ``score_completions`` it may call the function from several
threads at once (the accuracy reward: its calls wait on worker processes, so a batch is
spread over the pool); ``batched=True`` says the function takes lists
``(completions, examples) -> list[float | None]`` and is called once per batch (the
model-backed rewards: one batched forward pass instead of one per sample); everything else
is called one sample at a time in-process. ``uses_runtime=True`` says the function takes the
run's ``RewardRuntime`` (runtime.py: the verifier pool, the reward models) as the keyword
``runtime``; it must also work with ``runtime=None`` (a direct call: the default runtime).

``note(event)`` lets a reward report something that is not its score — e.g. accuracy
saying "this sample timed out" (it still scores 0). ``score_completions`` collects these
into ``counts`` as ``rewards/<name>_<event>``; outside a scoring call they are dropped.

``check_reward_names`` lets a caller reject a misspelt reward name from a config before any
model loads, with a suggestion.
"""

import contextvars
import difflib
import threading
from collections import Counter
from typing import Callable, Iterable

RewardFn = Callable[[str, dict], float]

REWARDS: dict[str, RewardFn] = {}


def register(
    name: str, *, replace: bool = False, concurrent: bool = False, batched: bool = False, uses_runtime: bool = False
):
    """Decorator adding a reward to ``REWARDS`` under ``name``.

    >>> @register("short", replace=True)
    ... def short(completion, example):
    ...     return float(len(completion) < 1000)
    """

    def add(fn: RewardFn) -> RewardFn:
        if name in REWARDS and not replace:
            raise ValueError(f"reward {name!r} is already registered (pass replace=True)")
        fn.concurrent, fn.batched, fn.uses_runtime = concurrent, batched, uses_runtime
        REWARDS[name] = fn
        return fn

    return add


def check_reward_names(names: Iterable[str], where: str = "rewards.weights") -> None:
    """Raise ValueError when a name in ``names`` is not in ``REWARDS``; ``where`` is the config key they come from.

    One line naming each unknown reward with the closest registered name, then every registered
    name. ``names`` is any iterable of names: the keys of ``rewards.weights`` (a dict iterates its
    keys), or the names routed by ``rewards.routes`` (``[n for ns in routes.values() for n in ns]``,
    ``where="rewards.routes"``).

    >>> check_reward_names({"acuracy": 1.0})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: unknown reward 'acuracy' (did you mean 'accuracy'?) in rewards.weights; registered rewards: ...
    """
    unknown = list(dict.fromkeys(name for name in names if name not in REWARDS))  # in order, once each
    if not unknown:
        return
    described = []
    for name in unknown:
        close = difflib.get_close_matches(str(name), list(REWARDS), n=1)
        described.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    noun = "reward" if len(unknown) == 1 else "rewards"
    known = ", ".join(sorted(REWARDS))
    raise ValueError(f"unknown {noun} {', '.join(described)} in {where}; registered rewards: {known}")


class EventLog:
    """Thread-safe event counts plus the first message per event."""

    def __init__(self):
        self.counts: Counter[str] = Counter()
        self.first_message: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, event: str, message: str = "") -> None:
        with self._lock:
            self.counts[event] += 1
            if message:
                self.first_message.setdefault(event, message)

    def snapshot(self) -> tuple[dict[str, int], dict[str, str]]:
        """Copies of ``counts`` and ``first_message``, safe while an abandoned call may still ``add``."""
        with self._lock:
            return dict(self.counts), dict(self.first_message)


_current_log: contextvars.ContextVar[EventLog | None] = contextvars.ContextVar("reward_log", default=None)


def note(event: str, message: str = "") -> None:
    """Count ``event`` (e.g. ``"timeouts"``) for the reward being scored, if any."""
    log = _current_log.get()
    if log is not None:
        log.add(event, message)


def run_logged(log: EventLog, fn: Callable, *args):
    """Call ``fn(*args)`` with ``note`` writing to ``log`` (works in any thread)."""
    token = _current_log.set(log)
    try:
        return fn(*args)
    finally:
        _current_log.reset(token)


def excerpt(text: object, limit: int = 200) -> str:
    """At most ``limit`` characters of ``text`` for logs and error messages (never more)."""
    text = repr(text) if not isinstance(text, str) else text
    text = text.replace("\x00", "\\0")
    return text if len(text) <= limit else text[: limit - 24] + f"…[{len(text)} chars]"
