"""Evaluation metrics as pure functions: pass@k, pass@1, majority voting (cons@k), intervals.

The paper's protocol (docs/method.md §7) samples k completions per problem at temperature 0.6 and
reports pass@1 — the mean correctness over the k samples, averaged over problems — and
cons@k — the correctness of the majority-voted answer. The unbiased pass@k estimator
generalizes pass@1 to "at least one of k attempts is right".

Intervals: a benchmark score is a mean over problems of per-problem scores (a problem's
pass@1 is itself a mean over its samples). We report the normal-approximation 95% interval
mean ± z·SE, with SE the standard error of the mean over problems — the "clustered" view in
which problems, not samples, are the independent units (Miller 2024, "Adding Error Bars to
Evals", arXiv 2411.00640). When every per-problem score is 0 or 1 (k = 1, cons@k) the mean
is a pure proportion and we use the Wilson score interval instead, which stays inside [0, 1]
and does not collapse to zero width at 0% or 100%.

Depends on nothing but the standard library; no I/O.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

Z95 = 1.959963984540054  # two-sided 95% quantile of the standard normal


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of pass@k from n samples of which c are correct.

        pass@k = 1 − C(n−c, k) / C(n, k)                  (Chen et al. 2021, arXiv 2107.03374)
               = 1 − ∏_{i=n−c+1}^{n} (1 − k / i)          (product form, no huge binomials)

    It is the probability that a random k-subset of the n samples contains a correct one.
    Example: n=4, c=1, k=2 → 1 − C(3,2)/C(4,2) = 1 − 3/6 = 0.5; k=1 gives c/n.
    """
    if not (n >= 1 and 0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"pass_at_k needs n ≥ 1, 0 ≤ c ≤ n and 1 ≤ k ≤ n; got n={n}, c={c}, k={k}")
    if n - c < k:  # every k-subset holds a correct sample
        return 1.0
    failure = 1.0
    for i in range(n - c + 1, n + 1):
        failure *= 1.0 - k / i
    return 1.0 - failure


def pass_at_1_mean(correct: Sequence[Sequence[bool]]) -> float:
    """The paper's pass@1: mean over problems of the mean correctness of that problem's samples.

        pass@1 = (1/P) Σ_p (1/k_p) Σ_j correct[p][j]

    Example: [[True, False], [True, True, True, False]] → (0.5 + 0.75) / 2 = 0.625.
    """
    if not correct or any(len(samples) == 0 for samples in correct):
        raise ValueError("pass_at_1_mean needs at least one problem and one sample per problem")
    return sum(sum(map(bool, samples)) / len(samples) for samples in correct) / len(correct)


def pass_k_values(k: int) -> list[int]:
    """The k' ≤ k at which pass@k' is reported: powers of two, and k itself. 6 → [1, 2, 4, 6]."""
    values, power = [], 1
    while power < k:
        values.append(power)
        power *= 2
    return values + [k]


def majority_vote(
    answers: Sequence[str | None], correct: Sequence[bool], equivalent: Callable[[str, str], bool]
) -> tuple[str | None, bool]:
    """The majority answer among one problem's samples, and whether it is correct (cons@k).

    Answers are grouped by mathematical equivalence, not string equality ("0.5", "1/2" and
    "\\frac{1}{2}" are one vote for one value): going through the answers in order, each joins
    the first existing group whose first member it is `equivalent(first_member, answer)` to,
    or opens a new group (identical strings join without calling `equivalent`). Equivalence
    checks can be non-transitive; this greedy rule is the deterministic reading.

    None answers (nothing extracted) never vote. The largest group wins; a tie goes to the
    group whose first member came earliest. The group's correctness is its first member's
    (members agree by construction). No answer at all → (None, False).

    Example: answers ["1/2", "3", None, "0.5", "3"] → groups {1/2, 0.5} and {3, 3} tie at
    two votes; "1/2" appeared first, so the result is ("1/2", correct[0]).
    """
    if len(answers) != len(correct):
        raise ValueError(f"{len(answers)} answers but {len(correct)} correctness values")
    groups: list[list[int]] = []  # sample indices; groups[g][0] is the representative
    group_of_text: dict[str, int] = {}
    for index, answer in enumerate(answers):
        if answer is None:
            continue
        g = group_of_text.get(answer)
        if g is None:
            g = next((g for g, members in enumerate(groups) if equivalent(answers[members[0]], answer)), None)
        if g is None:
            g = len(groups)
            groups.append([])
        groups[g].append(index)
        group_of_text.setdefault(answer, g)
    if not groups:
        return None, False
    best = max(groups, key=len)  # max returns the first of equally large groups: earliest wins
    return answers[best[0]], bool(correct[best[0]])


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion p̂ = successes / n (Wilson 1927).

        centre = (p̂ + z²/2n) / (1 + z²/n)
        half   = z / (1 + z²/n) · sqrt(p̂(1 − p̂)/n + z²/4n²)

    Example: 0 of 10 → (0.0, 0.278); 10 of 10 → (0.722, 1.0); 5 of 10 → (0.237, 0.763).
    """
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"wilson_interval needs n ≥ 1 and 0 ≤ successes ≤ n; got {successes} of {n}")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends: rounding would give 1 − 1e-16
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def mean_ci(
    values: Sequence[float], z: float = Z95, bounds: tuple[float, float] | None = (0.0, 1.0)
) -> tuple[float, float, float]:
    """(mean, low, high): the mean of per-problem scores with a 95% interval (module doc).

    All values 0 or 1 → Wilson interval. Otherwise mean ± z · s / sqrt(n), with s the sample
    standard deviation (n − 1), clipped to `bounds` (scores live in [0, 1]; pass None for
    unbounded values). With a single non-binary value the interval is `bounds` (no
    information), or NaN when unbounded.

    Example: [0.5, 1.0, 0.75, 0.25] → mean 0.625, s = 0.3227, SE = 0.1614,
    interval 0.625 ± 0.3163 = (0.309, 0.941).
    """
    n = len(values)
    if n == 0:
        raise ValueError("mean_ci needs at least one value")
    mean = math.fsum(values) / n
    if all(v in (0, 1) for v in values):
        return (mean, *wilson_interval(sum(values), n, z))
    if n == 1:
        low, high = bounds if bounds is not None else (math.nan, math.nan)
        return mean, low, high
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    half = z * math.sqrt(variance / n)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(bounds[0], low), min(bounds[1], high)
    return mean, low, high
