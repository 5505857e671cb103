"""Evaluation metrics: pass@k against brute force, hand values, majority voting, intervals."""

import itertools
import math
import random

import pytest

from r1.eval.metrics import majority_vote, mean_ci, pass_at_1_mean, pass_at_k, pass_k_values, wilson_interval


def brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """Fraction of all k-subsets of n samples (the first c correct) holding a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in subset) for subset in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_equals_enumeration_over_all_subsets(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_k_hand_values():
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)  # k = 1 is c / n
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)  # 1 - C(3,2)/C(5,2) = 1 - 3/10
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 3, 3) == 1.0  # n - c = 2 < k: every 3-subset holds a correct one
    assert pass_at_k(64, 64, 64) == 1.0


def test_pass_at_k_stays_finite_for_large_n():
    value = pass_at_k(10_000, 37, 100)  # C(10000, 100) has ~240 digits
    assert 0 < value < 1 and math.isfinite(value)
    assert value == pytest.approx(1 - math.comb(10_000 - 37, 100) / math.comb(10_000, 100), rel=1e-9)


@pytest.mark.parametrize("n, c, k", [(4, 5, 1), (4, -1, 1), (4, 2, 5), (4, 2, 0), (0, 0, 1)])
def test_pass_at_k_rejects_impossible_arguments(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_pass_at_1_mean():
    assert pass_at_1_mean([[True, False], [True, True, True, False]]) == pytest.approx(0.625)
    assert pass_at_1_mean([[False] * 4, [True] * 4]) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        pass_at_1_mean([])
    with pytest.raises(ValueError):
        pass_at_1_mean([[True], []])


def test_pass_at_1_mean_equals_mean_of_pass_at_k_with_k_1():
    rng = random.Random(0)
    correct = [[rng.random() < 0.4 for _ in range(rng.randint(1, 8))] for _ in range(30)]
    expected = sum(pass_at_k(len(c), sum(c), 1) for c in correct) / len(correct)
    assert pass_at_1_mean(correct) == pytest.approx(expected, abs=1e-12)


def test_pass_k_values():
    assert pass_k_values(1) == [1]
    assert pass_k_values(4) == [1, 2, 4]
    assert pass_k_values(6) == [1, 2, 4, 6]
    assert pass_k_values(64) == [1, 2, 4, 8, 16, 32, 64]


# --- majority voting -----------------------------------------------------------------------------


def exact(a: str, b: str) -> bool:
    return a == b


def test_majority_vote_groups_by_mathematical_equivalence():
    from r1.rewards import answers_equivalent

    answers = ["3", "0.5", "\\frac{1}{2}", "3", "1/2"]
    correct = [False, True, True, False, True]
    assert majority_vote(answers, correct, answers_equivalent) == ("0.5", True)  # 3 votes for ½ vs 2 for 3
    assert majority_vote(answers, correct, exact) == ("3", False)  # by string equality "3" would win


def test_majority_vote_tie_goes_to_earliest_group():
    assert majority_vote(["7", "8", "8", "7"], [True, False, False, True], exact) == ("7", True)
    assert majority_vote(["8", "7", "7", "8"], [False, True, True, False], exact) == ("8", False)
    # ["1/2", "3", None, "0.5", "3"]: {1/2, 0.5} and {3, 3} tie; 1/2 appeared first (docstring example)
    half = lambda a, b: {a, b} <= {"1/2", "0.5"} or a == b  # noqa: E731
    assert majority_vote(["1/2", "3", None, "0.5", "3"], [True, False, False, True, False], half) == ("1/2", True)


def test_majority_vote_none_never_wins():
    assert majority_vote([None, None, "4", None], [False, False, True, False], exact) == ("4", True)
    assert majority_vote([None, None], [False, False], exact) == (None, False)
    assert majority_vote([], [], exact) == (None, False)


def test_majority_vote_joins_identical_strings_without_calling_equivalent():
    calls = []

    def spy(a, b):
        calls.append((a, b))
        return a == b

    majority_vote(["5", "5", "5", "6", "6"], [True, True, True, False, False], spy)
    assert calls == [("5", "6")]  # only the first "6" is compared against the "5" group


def test_majority_vote_length_mismatch():
    with pytest.raises(ValueError):
        majority_vote(["1"], [True, False], exact)


# --- intervals -----------------------------------------------------------------------------------


def test_wilson_hand_values():
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.27753, abs=1e-5))
    assert wilson_interval(10, 10) == (pytest.approx(0.72247, abs=1e-5), 1.0)
    low, high = wilson_interval(5, 10)
    assert (low, high) == (pytest.approx(0.23659, abs=1e-5), pytest.approx(0.76341, abs=1e-5))


def test_mean_ci_hand_value():
    # mean 0.625; s² = (0.015625 + 0.140625 + 0.015625 + 0.140625) / 3 = 0.104167; SE = sqrt(s²/4) = 0.16137
    mean, low, high = mean_ci([0.5, 1.0, 0.75, 0.25])
    assert mean == pytest.approx(0.625)
    assert (low, high) == (
        pytest.approx(0.625 - 1.959964 * 0.161374, abs=1e-5),
        pytest.approx(0.625 + 1.959964 * 0.161374, abs=1e-5),
    )


def test_mean_ci_uses_wilson_for_binary_scores():
    values = [1.0] * 7 + [0.0] * 3
    assert mean_ci(values) == (pytest.approx(0.7), *map(pytest.approx, wilson_interval(7, 10)))
    assert mean_ci([True, False]) == (0.5, *map(pytest.approx, wilson_interval(1, 2)))


def test_mean_ci_properties():
    rng = random.Random(1)
    for _ in range(200):
        values = [rng.choice([0, 0.25, 0.5, 0.75, 1]) for _ in range(rng.randint(1, 40))]
        mean, low, high = mean_ci(values)
        assert 0.0 <= low <= mean <= high <= 1.0
    # the interval narrows as the number of problems grows (same distribution of scores)
    widths = [mean_ci([0.25, 0.75] * n)[2] - mean_ci([0.25, 0.75] * n)[1] for n in (2, 8, 32, 128)]
    assert widths == sorted(widths, reverse=True) and widths[-1] < widths[0] / 7
    assert mean_ci([0.5]) == (0.5, 0.0, 1.0)  # one non-binary value: no information
    assert mean_ci([3.0, 5.0], bounds=None)[1] < 3.0  # unbounded values are not clipped
    with pytest.raises(ValueError):
        mean_ci([])


def test_mean_ci_coverage_is_close_to_95_percent():
    """Simulated benchmarks of 200 problems (k=4, per-problem difficulty ~ U(0,1)): ~95% coverage."""
    rng = random.Random(2)
    hits, trials = 0, 400
    for _ in range(trials):
        values = [sum(rng.random() < p for _ in range(4)) / 4 for p in (rng.random() for _ in range(200))]
        _, low, high = mean_ci(values)
        hits += low <= 0.5 <= high
    assert 0.92 <= hits / trials <= 0.98
