"""The accuracy reward: 1.0 if the completion's final answer equals the reference, else 0.0.

Pipeline for one sample (SPEC §3):

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
Code answers (SPEC §3's sandboxed tests) are not handled here.
"""

from .extract import answer_candidates
from .normalize import hedge, normalize, plausible
from .pool import get_pool
from .registry import excerpt, note, register


def _decide_locally(reference: str, prediction: str) -> bool | None:
    """True/False if the answer is settled without math-verify, None if it must go to it."""
    if not plausible(prediction):
        return False
    if prediction == reference:
        return True
    if hedge(prediction, reference):
        return False
    return None


def _outcome_score(outcome: str, prediction: str) -> float:
    events = {"timeout": "timeouts", "crash": "crashes"}
    if outcome in events:
        note(events[outcome], f"verification {outcome} on answer {excerpt(prediction)!r}")
    return 1.0 if outcome == "equal" else 0.0


def answers_equivalent(a: str, b: str) -> bool:
    """Whether two extracted answers are the same mathematical value (``a`` as reference).

    Used to group samples for majority voting; a timeout counts as "not equivalent".
    """
    ref, pred = normalize(a), normalize(b)
    local = _decide_locally(ref, pred) if plausible(ref) else False
    if local is not None:
        return local
    return get_pool().check(ref, pred) == "equal"


@register("accuracy", concurrent=True)
def accuracy(completion: str, example: dict) -> float:
    """1.0 if the final answer is mathematically equal to ``example["answer"]``, else 0.0.

    >>> accuracy("<think>6*3</think><answer>$18.00</answer>", {"answer": "18"})
    1.0
    """
    reference = normalize(str(example["answer"]))
    raw = answer_candidates(completion, example)
    if not raw or not all(plausible(c) for c in raw):
        return 0.0
    candidates = [normalize(c) for c in raw]
    pending = []
    for prediction in candidates:
        local = _decide_locally(reference, prediction)
        if local is False:
            return 0.0
        if local is None:
            pending.append(prediction)
    for prediction in pending:
        if _outcome_score(get_pool().check(reference, prediction), prediction) == 0.0:
            return 0.0
    return 1.0
