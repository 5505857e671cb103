"""Batch scoring for the trainer: every named reward on every completion, failures contained.

``score_completions`` never raises because of one sample: a reward that raises or returns
None gives None for that sample (the trainer excludes it), counted as
``rewards/<name>_errors`` with the first message kept in ``first_error[name]`` (a
≤200-character excerpt of the completion, never more). Rewards registered with
``concurrent=True`` (accuracy) are called from as many threads as the verifier pool has workers,
so a batch's verifications run in parallel; other rewards run in order.
Events a reward reports with ``registry.note`` (accuracy's ``timeouts``/``crashes``) are
counted as ``rewards/<name>_<event>``. Rewards registered with ``batched=True`` (the reward
models) get the whole batch in one call; a raise fails every sample of it.

Every reward has a deadline (``deadline.py``): calls run on daemon threads, and one with no
result in time gives None for its sample(s), an ``errors`` event ("no result within …") and a
``timeouts`` event, while scoring goes on with the next samples. The limits:
* a per-sample reward: ``rewards.timeout_s`` (``RewardRuntime.timeout_s``) per call;
* a batched reward: ``timeout_s`` × the batch size for its one call (the per-sample allowance
  summed: a reward model's forward passes take more than one sample's limit); a timeout fails
  every sample of it, each counted;
* a concurrent reward: its calls have their own limits in worker processes (the verifier pool,
  the sandbox), so the thread only gets a backstop, ``RewardRuntime.max_check_s()`` (``2 × (startup +
  timeout_s)``, about 4 min by default) — long, but a plain-Python hang there no longer waits
  forever.
So a batch takes its normal work plus at most one limit per hung call. For fast rewards the cost
is a thread start per reward and batch and ~1 µs per call (measured in docs/reliability.md).
Deliberately left out: killing a hung call — its thread runs on in the background (holding memory
and, for a pure-Python loop, a core and a share of the GIL) until it returns or the process exits,
so after a timeout a reward not marked ``concurrent`` may run in two threads at once.

Routing (all-scenario RL, R1 stage 4): with ``routes`` (example kind → reward names; an
example's kind is ``example["kind"]``, ``"reasoning"`` when absent) a reward is called only on
the examples of the kinds routed to it — an unrouted reward model never runs on a math prompt —
and every other sample gets ``NOT_APPLICABLE`` (NaN). None keeps meaning "failed": a reward that
returns NaN itself is counted as an error, so NaN can only mean "not routed here".
"""

import functools
import math
from dataclasses import dataclass, field

from .deadline import TIMED_OUT, run_with_deadline
from .registry import REWARDS, EventLog, check_reward_names, excerpt, run_logged
from .runtime import RewardRuntime, default_runtime

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


def _timed_out(log: EventLog, name: str, limit_s: float, completion: str) -> None:
    message = f"{name}: no result within {limit_s:g} s on completion {excerpt(completion)!r}"
    log.add("errors", message)
    log.add("timeouts", message)


def _score_one_reward(
    name: str, completions: list[str], examples: list[dict], log: EventLog, runtime: RewardRuntime
) -> list:
    """One reward on every sample, each call under its deadline (module doc); a timeout scores None."""
    fn = REWARDS[name]
    if not completions:
        return []
    batched, concurrent = getattr(fn, "batched", False), getattr(fn, "concurrent", False)
    if getattr(fn, "uses_runtime", False):
        fn = functools.partial(fn, runtime=runtime)
    if batched:
        limit_s = runtime.timeout_s * len(completions)
        [values] = run_with_deadline(lambda _: _safe_batch(name, fn, completions, examples, log), [None], limit_s)
        values = [TIMED_OUT] * len(completions) if values is TIMED_OUT else values
    else:
        limit_s = runtime.max_check_s() if concurrent else runtime.timeout_s
        samples = list(zip(completions, examples))
        values = run_with_deadline(
            lambda sample: _safe_call(name, fn, *sample, log),
            samples,
            limit_s,
            lanes=runtime.workers if concurrent else 1,
        )
    for value, completion in zip(values, completions):
        if value is TIMED_OUT:
            _timed_out(log, name, limit_s, completion)
    return [None if value is TIMED_OUT else value for value in values]


def check_kinds(examples: list[dict], routes: dict[str, list[str]] | None) -> None:
    """Raise ValueError when an example's kind has no entry in non-empty ``routes``."""
    missing = sorted({e.get("kind", DEFAULT_KIND) for e in examples} - set(routes)) if routes else []
    if missing:
        raise ValueError(
            f"examples of kind {missing} have no entry in rewards.routes "
            f"(routed kinds: {sorted(routes)}); "
            "add a route for them or set their `kind` field"
        )


def score_completions(
    completions: list[str],
    examples: list[dict],
    names: list[str],
    routes: dict[str, list[str]] | None = None,
    runtime: RewardRuntime | None = None,
) -> Scores:
    """Score ``completions[i]`` against ``examples[i]`` with each reward in ``names``.

    ``routes`` (kind → reward names), when given and non-empty, limits each reward to the
    examples of the kinds routed to it; the other samples get NOT_APPLICABLE (module doc).
    ``runtime`` is the run's pool, reward models and limits (runtime.py); None = the default one.
    """
    runtime = runtime if runtime is not None else default_runtime()
    if len(completions) != len(examples):
        raise ValueError(f"{len(completions)} completions but {len(examples)} examples")
    check_reward_names(names, where="score_completions(names=...)")
    check_kinds(examples, routes)
    kinds = [e.get("kind", DEFAULT_KIND) for e in examples]
    scores = Scores()
    for name in names:
        log = EventLog()
        rows = [i for i, kind in enumerate(kinds) if not routes or name in routes[kind]]
        values = [NOT_APPLICABLE] * len(completions)
        routed = _score_one_reward(name, [completions[i] for i in rows], [examples[i] for i in rows], log, runtime)
        for i, value in zip(rows, routed):
            values[i] = value
        scores.values[name] = values
        counts, first_message = log.snapshot()  # an abandoned call may still write to the log
        for event, count in counts.items():
            scores.counts[f"rewards/{name}_{event}"] = count
        if "errors" in first_message:
            scores.first_error[name] = first_message["errors"]
        elif first_message:
            scores.first_error[name] = next(iter(first_message.values()))
    return scores
