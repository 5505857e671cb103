"""The accuracy reward: 1.0 if the completion's final answer equals the reference, else 0.0.

Pipeline for one sample (docs/method.md §3):

1. ``extract.answer_candidates`` finds the answer per the tag rules (one ``<answer>`` block
   after ``</think>``, or ``\\boxed{}`` values when no answer tag is used). None → 0.
2. In the parent, cheap and linear: ``normalize`` both strings (currency, thousands
   separators, trailing units); reject implausible predictions (empty, > 1,000 chars,
   NUL bytes) and hedges ("2 or 3", "between 3 and 7") → 0; identical normalized strings
   → 1 without leaving the process.
3. Otherwise math-verify decides in a worker process (``pool.py``) under a wall-clock
   limit: fractions/decimals/percentages, radicals, ``\\pi``, degrees, sets, intervals,
   tuples, matrices, ``x = 5`` vs ``5``. A timeout or a crashed worker scores 0 and is
   counted (``rewards/accuracy_timeouts`` / ``rewards/accuracy_crashes``).

With several candidates (several different boxed values) every one must be equivalent to
the reference, so boxing two different values never pays. The reference (``example
["answer"]``) is trusted; its parse is cached in each worker (see ``worker.py``).
Code answers (docs/method.md §3's sandboxed tests) are not handled here.
"""

from typing import Callable

from .extract import answer_candidates, find_boxed
from .normalize import hedge, normalize, plausible, same_decimal
from .parts import as_set, values
from .registry import excerpt, note, register
from .runtime import default_runtime

Check = Callable[[str, str], str]  # (reference, prediction) → "equal" | "different" | "timeout" | "crash"


def _decide_locally(reference: str, prediction: str, parts: int = 1) -> bool | None:
    """True/False if the answer is settled without math-verify, None if it must go to it."""
    if not plausible(prediction):
        return False
    if prediction == reference or same_decimal(reference, prediction):
        return True
    if hedge(prediction, reference, parts):
        return False
    return None


def _outcome_score(outcome: str, prediction: str) -> float:
    events = {"timeout": "timeouts", "crash": "crashes"}
    if outcome in events:
        note(events[outcome], f"verification {outcome} on answer {excerpt(prediction)!r}")
    return 1.0 if outcome == "equal" else 0.0


def _equal(check: Check, reference: str, prediction: str, parts: int = 1) -> bool:
    local = _decide_locally(reference, prediction, parts)
    if local is not None:
        return local
    return _outcome_score(check(reference, prediction), prediction) == 1.0


def reference_answer(answer: str) -> str:
    """The normalized reference; of a reference written as a solution, its box (its boxes, as one
    collection, when it boxes several values: ``\\boxed{1} and \\boxed{-2}`` → ``1, -2``)."""
    reference = normalize(answer)
    boxed = list(dict.fromkeys(normalize(b) for b in find_boxed(reference)))
    return ", ".join(boxed) if boxed else reference


def _same_collection(
    check: Check, reference: str, ref_values: list[str], ref_names: dict[str, str] | None, candidates: list[str]
) -> bool | None:
    """For a reference of several values (`parts.values` of it): True/False when the prediction's
    values settle it, None when it names fewer values than the reference (then it is compared whole:
    ``1 \\pm \\sqrt{2}``)."""
    found: list[str] = []
    pred_names: dict[str, str] = {}
    for candidate in candidates:
        vals, names = values(candidate)
        found += [normalize(v) for v in vals]  # "35 cm" in a collection is 35, as it is alone
        pred_names.update(names or {})
    found = list(dict.fromkeys("".join(v.split()) for v in found))  # the same value twice is one
    if len(found) > len(ref_values):
        return False  # names more values than the reference: a hedge however it is spelt
    if len(found) < len(ref_values):
        return None
    if any(hedge(v, reference, len(ref_values)) for v in found):
        return False
    if ref_names and len(pred_names) == len(ref_names):  # every part named on both sides: match by name
        if set(pred_names) != set(ref_names):
            return False
        return all(_equal(check, normalize(ref_names[k]), normalize(pred_names[k])) for k in ref_names)
    return _equal(check, as_set(ref_values), as_set(found), len(ref_values))


def matches(reference: str, candidates: list[str], check: Check | None = None) -> bool:
    """Whether normalized candidates answer a normalized reference (the module's rules); ``check``
    is the math-verify call (a ``VerifierPool.check``; None = the default runtime's pool)."""
    check = check if check is not None else _check_of(None)
    if not candidates or not all(plausible(c) for c in candidates):
        return False
    if "".join(reference.split()) in {"".join(c.split()) for c in candidates} and len(candidates) == 1:
        return True
    ref_values, ref_names = values(reference, reference=True)
    several = len(ref_values) > 1
    collection = _same_collection(check, reference, ref_values, ref_names, candidates) if several else None
    if collection is not None:
        return collection
    return all(_equal(check, reference, c) for c in candidates)


def answers_equivalent(a: str, b: str, runtime=None) -> bool:
    """Whether two extracted answers are the same mathematical value (``a`` as reference).

    Used to group samples for majority voting; a timeout counts as "not equivalent".
    ``runtime``: whose verifier pool decides (None = the default runtime).
    """
    reference = normalize(a)
    return plausible(reference) and matches(reference, [normalize(b)], _check_of(runtime))


def _check_of(runtime) -> Check:
    """The runtime's math-verify call; its pool starts only if a sample gets that far."""
    return lambda reference, prediction: (runtime or default_runtime()).pool.check(reference, prediction)


@register("accuracy", concurrent=True, uses_runtime=True)
def accuracy(completion: str, example: dict, runtime=None) -> float:
    """1.0 if the final answer is mathematically equal to ``example["answer"]``, else 0.0.
    ``runtime``: the run's RewardRuntime, whose verifier pool decides (None = the default one).

    >>> accuracy("<think>6*3</think><answer>$18.00</answer>", {"answer": "18"})
    1.0
    """
    raw = answer_candidates(completion, example)
    if not raw or not all(plausible(c) for c in raw):
        return 0.0
    reference = reference_answer(str(example["answer"]))
    return 1.0 if matches(reference, [normalize(c) for c in raw], _check_of(runtime)) else 0.0
