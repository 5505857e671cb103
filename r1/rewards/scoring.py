"""Batch scoring for the trainer: every named reward on every completion, failures contained.

``score_completions`` never raises because of one sample: a reward that raises or returns
None gives None for that sample (the trainer excludes it), counted as
``rewards/<name>_errors`` with the first message kept in ``first_error[name]`` (a
≤200-character excerpt of the completion, never more). Rewards registered with
``concurrent=True`` (accuracy) are called from a thread pool as wide as the verifier pool,
so a batch's verifications run in parallel; other rewards are cheap and run in order.
Events a reward reports with ``registry.note`` (accuracy's ``timeouts``/``crashes``) are
counted as ``rewards/<name>_<event>``. Rewards registered with ``batched=True`` (the reward
models) get the whole batch in one call; a raise fails every sample of it.

Routing (all-scenario RL, R1 stage 4): with ``routes`` (example kind → reward names; an
example's kind is ``example["kind"]``, ``"reasoning"`` when absent) a reward is called only on
the examples of the kinds routed to it — an unrouted reward model never runs on a math prompt —
and every other sample gets ``NOT_APPLICABLE`` (NaN). None keeps meaning "failed": a reward that
returns NaN itself is counted as an error, so NaN can only mean "not routed here".
"""

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .pool import configured_workers
from .registry import REWARDS, EventLog, excerpt, run_logged

NOT_APPLICABLE = float("nan")  # the reward is not routed to this sample's kind
DEFAULT_KIND = "reasoning"  # the kind of an example without a `kind` field


def applies(value: float | None) -> bool:
    """False for NOT_APPLICABLE; True for a score and for None (applied, but failed)."""
    return value is None or not math.isnan(value)


@dataclass
class Scores:
    """Per-reward values (None = failed, excluded; NaN = not applicable) and counted events for one batch."""

    values: dict[str, list[float | None]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    first_error: dict[str, str] = field(default_factory=dict)


def _as_score(value) -> float:
    if value is None:
        raise ValueError("returned None")
    value = float(value)
    if math.isnan(value):
        raise ValueError("returned NaN")
    return value


def _failed(log: EventLog, name: str, exc: Exception, completion: str) -> None:
    log.add("errors", f"{name}: {type(exc).__name__}: {excerpt(str(exc), 120)} on completion {excerpt(completion)!r}")


def _safe_call(name: str, fn, completion: str, example: dict, log: EventLog) -> float | None:
    """One reward call; any failure → None and an ``errors`` event with a short excerpt."""
    try:
        return _as_score(run_logged(log, fn, completion, example))
    except Exception as exc:  # one bad sample must not stop the batch
        _failed(log, name, exc, completion)
        return None


def _safe_batch(name: str, fn, completions: list[str], examples: list[dict], log: EventLog) -> list:
    """One call of a batched reward; a raise fails every sample, a None/NaN value fails its sample."""
    try:
        values = list(run_logged(log, fn, completions, examples))
        if len(values) != len(completions):
            raise ValueError(f"returned {len(values)} values for {len(completions)} completions")
    except Exception as exc:
        for completion in completions:
            _failed(log, name, exc, completion)
        return [None] * len(completions)
    scores = []
    for value, completion in zip(values, completions):
        try:
            scores.append(_as_score(value))
        except Exception as exc:
            _failed(log, name, exc, completion)
            scores.append(None)
    return scores


def _score_one_reward(name: str, completions: list[str], examples: list[dict], log: EventLog) -> list:
    fn = REWARDS[name]
    if getattr(fn, "batched", False):
        return _safe_batch(name, fn, completions, examples, log) if completions else []
    calls = [(name, fn, c, e, log) for c, e in zip(completions, examples)]
    if getattr(fn, "concurrent", False) and len(calls) > 1:
        with ThreadPoolExecutor(max_workers=configured_workers()) as executor:
            return list(executor.map(lambda args: _safe_call(*args), calls))
    return [_safe_call(*args) for args in calls]


def check_kinds(examples: list[dict], routes: dict[str, list[str]] | None) -> None:
    """Raise ValueError when an example's kind has no entry in non-empty ``routes``."""
    missing = sorted({e.get("kind", DEFAULT_KIND) for e in examples} - set(routes)) if routes else []
    if missing:
        raise ValueError(f"examples of kind {missing} have no entry in rewards.routes (routed kinds: {sorted(routes)}); "
                         "add a route for them or set their `kind` field")


def score_completions(completions: list[str], examples: list[dict], names: list[str], routes: dict[str, list[str]] | None = None) -> Scores:
    """Score ``completions[i]`` against ``examples[i]`` with each reward in ``names``.

    ``routes`` (kind → reward names), when given and non-empty, limits each reward to the
    examples of the kinds routed to it; the other samples get NOT_APPLICABLE (module doc).
    """
    if len(completions) != len(examples):
        raise ValueError(f"{len(completions)} completions but {len(examples)} examples")
    unknown = [n for n in names if n not in REWARDS]
    if unknown:
        raise KeyError(f"unknown rewards {unknown}; registered: {sorted(REWARDS)}")
    check_kinds(examples, routes)
    kinds = [e.get("kind", DEFAULT_KIND) for e in examples]
    scores = Scores()
    for name in names:
        log = EventLog()
        rows = [i for i, kind in enumerate(kinds) if not routes or name in routes[kind]]
        values = [NOT_APPLICABLE] * len(completions)
        for i, value in zip(rows, _score_one_reward(name, [completions[i] for i in rows], [examples[i] for i in rows], log)):
            values[i] = value
        scores.values[name] = values
        for event, count in log.counts.items():
            scores.counts[f"rewards/{name}_{event}"] = count
        if "errors" in log.first_message:
            scores.first_error[name] = log.first_message["errors"]
        elif log.first_message:
            scores.first_error[name] = next(iter(log.first_message.values()))
    return scores
