"""Batch scoring for the trainer: every named reward on every completion, failures contained.

``score_completions`` never raises because of one sample: a reward that raises or returns
None gives None for that sample (the trainer excludes it), counted as
``rewards/<name>_errors`` with the first message kept in ``first_error[name]`` (a
≤200-character excerpt of the completion, never more). Rewards registered with
``concurrent=True`` (accuracy) are called from a thread pool as wide as the verifier pool,
so a batch's verifications run in parallel; other rewards are cheap and run in order.
Events a reward reports with ``registry.note`` (accuracy's ``timeouts``/``crashes``) are
counted as ``rewards/<name>_<event>``.
"""

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .pool import get_pool
from .registry import REWARDS, EventLog, excerpt, run_logged


@dataclass
class Scores:
    """Per-reward values (None = failed, excluded) and counted events for one batch."""

    values: dict[str, list[float | None]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    first_error: dict[str, str] = field(default_factory=dict)


def _safe_call(name: str, fn, completion: str, example: dict, log: EventLog) -> float | None:
    """One reward call; any failure → None and an ``errors`` event with a short excerpt."""
    try:
        value = run_logged(log, fn, completion, example)
        if value is None:
            raise ValueError("returned None")
        value = float(value)
        if math.isnan(value):
            raise ValueError("returned NaN")
        return value
    except Exception as exc:  # one bad sample must not stop the batch
        log.add("errors", f"{name}: {type(exc).__name__}: {excerpt(str(exc), 120)} on completion {excerpt(completion)!r}")
        return None


def _score_one_reward(name: str, completions: list[str], examples: list[dict], log: EventLog) -> list:
    fn = REWARDS[name]
    calls = [(name, fn, c, e, log) for c, e in zip(completions, examples)]
    if getattr(fn, "concurrent", False) and len(calls) > 1:
        with ThreadPoolExecutor(max_workers=get_pool().config.workers) as executor:
            return list(executor.map(lambda args: _safe_call(*args), calls))
    return [_safe_call(*args) for args in calls]


def score_completions(completions: list[str], examples: list[dict], names: list[str]) -> Scores:
    """Score ``completions[i]`` against ``examples[i]`` with each reward in ``names``."""
    if len(completions) != len(examples):
        raise ValueError(f"{len(completions)} completions but {len(examples)} examples")
    unknown = [n for n in names if n not in REWARDS]
    if unknown:
        raise KeyError(f"unknown rewards {unknown}; registered: {sorted(REWARDS)}")
    scores = Scores()
    for name in names:
        log = EventLog()
        scores.values[name] = _score_one_reward(name, completions, examples, log)
        for event, count in log.counts.items():
            scores.counts[f"rewards/{name}_{event}"] = count
        if "errors" in log.first_message:
            scores.first_error[name] = log.first_message["errors"]
        elif log.first_message:
            scores.first_error[name] = next(iter(log.first_message.values()))
    return scores
