"""Programmatic GSM8K-style word problems: every written equation is true, the answer is the last
step's result, the rewards accept the solutions, and train/test never overlap."""

import re
from collections import Counter

import pytest

from r1.cli import main
from r1.data import read_jsonl
from r1.data.coldstart import GENERATORS
from r1.data.coldstart_words import TEMPLATES, make_word_problems, word_problem_completion, word_problem_worked_examples
from r1.rewards import REWARDS

EQUATION = re.compile(r"(\d+) ([-+*/]) (\d+) = (\d+)")


def test_every_equation_is_true_and_the_answer_is_the_last_result():
    rows = make_word_problems(2000, seed=4)
    for p in rows:
        solution = word_problem_completion(p)
        equations = EQUATION.findall(solution)
        assert len(equations) == len(p["steps"]) and 2 <= len(equations) <= 4, solution
        for a, op, b, c in equations:
            a, b, c = int(a), int(b), int(c)
            assert {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[op] == c, solution  # true division: exact or wrong
            assert c >= 0
        assert equations[-1][3] == p["answer"]
        assert solution.endswith(f"So the answer is {p['answer']}.\n</think>\n<answer>{p['answer']}</answer>")


def test_each_step_uses_numbers_of_the_question_or_earlier_steps():
    """The solution works the problem it is attached to: no number appears from nowhere."""
    for p in make_word_problems(500, seed=5):
        known = set(re.findall(r"\d+", p["prompt"]))
        for a, _, b, c in EQUATION.findall(word_problem_completion(p)):
            assert a in known and b in known, (p["prompt"], p["steps"])
            known.add(c)


def test_every_template_is_used_with_two_to_four_steps():
    rows = make_word_problems(1000, seed=0)
    assert set(Counter(p["template"] for p in rows)) == set(TEMPLATES)
    assert set(Counter(len(p["steps"]) for p in rows)) == {2, 3, 4}
    assert {len(p["steps"]) for p in make_word_problems(200, seed=0, min_steps=4)} == {4}


def test_solutions_earn_full_accuracy_and_format_reward():
    for row in word_problem_worked_examples(60, seed=2):
        example = {"prompt": row["prompt"], "answer": row["answer"]}
        assert REWARDS["accuracy"](row["completion"], example) == 1.0
        assert REWARDS["format"](row["completion"], example) == 1.0


def test_deterministic_distinct_and_splits_never_overlap():
    train = make_word_problems(1500, seed=1)
    assert train == make_word_problems(1500, seed=1)
    assert len({p["prompt"] for p in train}) == 1500
    test = make_word_problems(300, seed=1, split="test")
    assert not {p["prompt"] for p in train} & {p["prompt"] for p in test}
    with pytest.raises(ValueError, match="split"):
        make_word_problems(1, split="dev")
    with pytest.raises(ValueError, match="only 0 distinct"):
        make_word_problems(1, min_steps=5, max_steps=6)


def test_cli_generate_writes_sft_rows(tmp_path, capsys):
    assert set(GENERATORS) == {"arithmetic", "word-problems"}
    out = tmp_path / "cold.jsonl"
    assert (
        main(["coldstart", "generate", "--task", "word-problems", "--n", "12", "--seed", "3", "--output", str(out)])
        == 0
    )
    examples, skipped = read_jsonl(out, None, None)  # readable as a prompt set too (prompt + answer)
    assert len(examples) == 12 and skipped == 0
    assert all(e["completion"].startswith("<think>\n") for e in examples)
    assert (
        main(["coldstart", "generate", "--task", "arithmetic", "--n", "5", "--output", str(tmp_path / "a.jsonl")]) == 0
    )
    assert "wrote 5 worked arithmetic examples" in capsys.readouterr().out
