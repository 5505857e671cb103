"""Programmatic cold-start data: worked completions in the R1 format, terse and digit by digit."""

import re

import pytest

from r1.data.coldstart import arithmetic_worked_examples, digit_by_digit, worked_completion
from r1.rewards import REWARDS


@pytest.mark.parametrize(
    "step, expected",
    [
        ("43 + 85 = 128", "43 + 85: 40 + 80 = 120, 3 + 5 = 8, 120 + 8 = 128"),
        ("3 + 48 = 51", "3 + 48: 3 + 8 = 11, 40 + 11 = 51"),
        ("117 - 38 = 79", "117 - 38: 117 - 30 = 87, 87 - 8 = 79"),
        ("57 * 4 = 228", "57 * 4: 50 * 4 = 200, 7 * 4 = 28, 200 + 28 = 228"),
        # nothing to split: one-digit work, round tens, a one-digit subtrahend, × 1
        ("7 + 8 = 15", "7 + 8 = 15"),
        ("40 + 3 = 43", "40 + 3 = 43"),
        ("50 - 20 = 30", "50 - 20 = 30"),
        ("60 - 6 = 54", "60 - 6 = 54"),
        ("57 * 1 = 57", "57 * 1 = 57"),
    ],
)
def test_digit_by_digit_by_hand(step, expected):
    assert digit_by_digit(step) == expected


def test_every_digit_by_digit_equation_is_true():
    """Each `x op y = z` inside a detailed line holds, and the line ends at the step's result."""
    rows = arithmetic_worked_examples(400, seed=3, detailed=1.0, max_digits=3, max_steps=3)
    checked = 0
    for row in rows:
        for x, op, y, z in re.findall(r"(\d+) ([-+*]) (\d+) = (\d+)", row["completion"]):
            assert {"+": int(x) + int(y), "-": int(x) - int(y), "*": int(x) * int(y)}[op] == int(z), row["completion"]
            checked += 1
        assert row["completion"].endswith(f"<answer>{row['answer']}</answer>")
    assert checked > 1000


def test_worked_completions_earn_full_reward():
    rows = arithmetic_worked_examples(50, seed=1, detailed=0.5)
    for row in rows:
        example = {"answer": row["answer"]}
        assert REWARDS["accuracy"](row["completion"], example) == 1.0
        assert REWARDS["format"](row["completion"], example) == 1.0


def test_detailed_fraction_and_determinism():
    rows = arithmetic_worked_examples(400, seed=2, detailed=0.3)
    assert rows == arithmetic_worked_examples(400, seed=2, detailed=0.3)
    detailed = sum(":" in row["completion"] for row in rows)
    assert 0.2 * 400 < detailed < 0.35 * 400  # 30% chosen, minus steps with nothing to split
    assert not any(":" in row["completion"] for row in arithmetic_worked_examples(100, seed=2))


def test_terse_completion_layout():
    problem = {"steps": ["23 + 7 = 30", "30 * 4 = 120"], "answer": "120"}
    assert (
        worked_completion(problem) == "<think>\nWe start from 23.\n23 + 7 = 30\n30 * 4 = 120\nSo the result is "
        "120.\n</think>\n<answer>120</answer>"
    )
