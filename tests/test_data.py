"""Datasets (bundled, JSONL, hub) with their skip and error paths, and the `arithmetic` generator."""

import json
import re
import sys

import pytest

from r1.data import DataError, gsm8k_final_answer, load_configured, load_examples, make_problems, unseen_heldout
from r1.data.arithmetic import split_of, unseen


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# Bundled benchmarks


def test_bundled_gsm8k():
    examples = load_examples("gsm8k")
    assert len(examples) == 1319
    first = examples[0]
    assert first["answer"] == "18"
    assert first["id"] == "gsm8k-1"
    assert first["prompt"].startswith("Janet’s ducks lay 16 eggs per day.")
    assert first["solution"].endswith("#### 18")  # the worked solution is kept
    assert all(re.fullmatch(r"-?[\d.]+", e["answer"]) for e in examples)  # every GSM8K answer is a bare number


def test_bundled_gsm8k_train():
    examples = load_examples("gsm8k-train")
    assert len(examples) == 7473
    assert examples[0]["answer"] == "72"


def test_bundled_math500_passes_extra_fields():
    examples = load_examples("math500")
    assert len(examples) == 500
    first = examples[0]
    assert first["prompt"].startswith("Convert the point $(0,3)$ in rectangular coordinates to polar coordinates.")
    assert first["answer"] == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert (first["subject"], first["level"]) == ("Precalculus", 2)


def test_bundled_aime24():
    examples = load_examples("aime24")
    assert len(examples) == 30
    assert examples[0]["answer"] == "204"
    assert len({e["id"] for e in examples}) == 30


def test_limit():
    assert [e["id"] for e in load_examples("gsm8k", limit=3)] == ["gsm8k-1", "gsm8k-2", "gsm8k-3"]
    assert len(load_examples("arithmetic", size=50, limit=7)) == 7


def test_arithmetic_source_uses_settings():
    examples = load_examples("arithmetic", split="test", size=20, seed=3, arithmetic={"ops": "+", "max_steps": 1})
    assert examples == make_problems(20, seed=3, split="test", ops="+", max_steps=1)


# ---------------------------------------------------------------------------------------------
# JSONL files


def test_jsonl_with_custom_fields(tmp_path):
    path = write_jsonl(
        tmp_path / "mine.jsonl",
        [
            {"q": "What is 2 + 2?", "final": 4, "language": "en"},
            {"q": "Half of 3?", "final": 1.5},
            {"q": "Big?", "final": "#### 1,234", "id": "big"},
        ],
    )
    examples = load_examples(str(path), question_field="q", answer_field="final")
    assert [e["prompt"] for e in examples] == ["What is 2 + 2?", "Half of 3?", "Big?"]
    assert [e["answer"] for e in examples] == ["4", "1.5", "1234"]  # numbers become strings; GSM8K style reduced
    assert [e["id"] for e in examples] == ["mine-1", "mine-2", "big"]
    assert examples[0]["language"] == "en"  # other fields pass through
    assert examples[2]["solution"] == "#### 1,234"


def test_default_question_fields_are_tried_in_order(tmp_path):
    path = write_jsonl(
        tmp_path / "d.jsonl", [{"problem": "P?", "answer": "1"}, {"prompt": "Q?", "question": "", "answer": "2"}]
    )
    assert [e["prompt"] for e in load_examples(str(path))] == ["P?", "Q?"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("She makes $18.\n#### 18", "18"),
        ("#### 1,234", "1234"),
        ("a #### 1 then\n#### -7 ", "-7"),
        ("#### 1,000,000", "1000000"),
    ],
)
def test_gsm8k_final_answer(text, expected):
    assert gsm8k_final_answer(text) == expected


def test_rows_missing_question_or_answer_are_skipped_and_counted(tmp_path, capsys):
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {"question": "ok?", "answer": "1"},
            {"question": "no answer"},
            {"answer": "2"},
            {"question": "   ", "answer": "3"},
            {"question": "empty answer", "answer": " "},
            {"question": "bool answer", "answer": True},
            {"question": "fine", "answer": 0},
        ],
    )
    examples = load_examples(str(path))
    assert [(e["prompt"], e["answer"]) for e in examples] == [("ok?", "1"), ("fine", "0")]
    assert "skipped 5 row(s) without a question or answer" in capsys.readouterr().out
    load_examples(str(path), quiet=True)
    assert capsys.readouterr().out == ""


def test_blank_lines_are_ignored(tmp_path, capsys):
    path = write_jsonl(tmp_path / "d.jsonl", ["", json.dumps({"question": "a", "answer": "1"}), "   "])
    assert len(load_examples(str(path))) == 1
    assert "skipped" not in capsys.readouterr().out


def test_corrupt_json_line_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "a", "answer": "1"}, '{"question": "b", "answer": '])
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}:2: not valid JSON"):
        load_examples(str(path))


def test_non_utf8_line_names_file_and_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(
        b'{"question": "a", "answer": "1"}\n{"question": "b", "answer": "1"}\n{"question": "\xff\xfe", "answer": "2"}\n'
    )
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}:3: not valid UTF-8$"):
        load_examples(str(path))


@pytest.mark.parametrize("line, kind", [('["a", "b"]', "list"), ("42", "int"), ('"text"', "str")])
def test_non_object_line(tmp_path, line, kind):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "a", "answer": "1"}, line])
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}:2: expected a JSON object, got {kind}$"):
        load_examples(str(path))


def test_every_row_bad_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"q": "a", "a": "1"}, {"q": "b", "a": "2"}])
    with pytest.raises(DataError) as err:
        load_examples(str(path))
    message = str(err.value)
    assert "none of its 2 rows has both a question and an answer" in message
    assert "question field 'question/problem/prompt', answer field 'answer'" in message
    assert "data.question_field" in message


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="contains no rows"):
        load_examples(str(path))


def test_missing_jsonl_file(tmp_path):
    with pytest.raises(DataError, match="dataset file not found: .*missing.jsonl"):
        load_examples(str(tmp_path / "missing.jsonl"))


def test_hub_id_without_datasets_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` now raises ImportError, offline
    with pytest.raises(DataError) as err:
        load_examples("openai/gsm8k")
    message = str(err.value)
    assert (
        "'openai/gsm8k' is not a bundled dataset (gsm8k, gsm8k-train, math500, aime24" in message
        and "arithmetic)" in message
    )
    assert "pip install datasets" in message


# ---------------------------------------------------------------------------------------------
# arithmetic


def evaluate_steps(problem) -> int:
    """Check each worked step independently and that the steps chain; return the final value."""
    value = None
    for step in problem["steps"]:
        a, op, b, eq, result = step.split()
        a, b, result = int(a), int(b), int(result)
        assert eq == "=" and op in "+-*"
        assert value is None or a == value
        assert result == {"+": a + b, "-": a - b, "*": a * b}[op]
        assert result >= 0
        value = result
    return value


def test_deterministic_per_seed():
    assert make_problems(300, seed=5) == make_problems(300, seed=5)
    assert make_problems(300, seed=5, split="test") == make_problems(300, seed=5, split="test")


def test_different_seeds_differ():
    a = {p["prompt"] for p in make_problems(300, seed=1)}
    b = {p["prompt"] for p in make_problems(300, seed=2)}
    assert len(a & b) < 150  # the space is large enough that two seeds share well under half


def test_train_and_test_never_overlap():
    train = {p["prompt"] for seed in (0, 1) for p in make_problems(3000, seed=seed, split="train")}
    test = {p["prompt"] for seed in (0, 1) for p in make_problems(1000, seed=seed, split="test")}
    assert len(train) > 3000 and len(test) > 1000
    assert not train & test
    assert all(split_of(t) == "test" for t in test)


def test_problems_are_distinct_and_ids_unique():
    problems = make_problems(2000, seed=0)
    assert len({p["prompt"] for p in problems}) == 2000
    assert len({p["id"] for p in problems}) == 2000
    assert problems[0]["id"] == "arithmetic-train-0-0"


def test_answers_are_correct():
    problems = make_problems(2000, seed=0, max_digits=3, max_steps=4)
    kinds = {p["style"] for p in problems}
    assert kinds == {"word", "symbols"}
    for p in problems:
        value = evaluate_steps(p)
        assert p["answer"] == str(value)
        if p["style"] == "symbols":
            expression = re.fullmatch(r"What is (.+)\?", p["prompt"]).group(1)
            assert re.fullmatch(r"[\d +\-*()]+", expression)
            assert str(eval(expression)) == p["answer"]  # the usual precedence agrees with the steps
        else:
            numbers = [int(x) for x in re.findall(r"\d+", p["prompt"])]
            start = int(p["steps"][0].split()[0])
            assert numbers[0] == start
            assert numbers[1:] == [int(s.split()[2]) for s in p["steps"]]


@pytest.mark.parametrize(
    "settings",
    [
        dict(min_digits=2, max_digits=2, min_steps=3, max_steps=3, ops="+"),
        dict(min_digits=1, max_digits=1, min_steps=1, max_steps=2, ops="*"),
        dict(min_digits=3, max_digits=4, min_steps=2, max_steps=4, ops="+-"),
        dict(min_digits=1, max_digits=2, min_steps=1, max_steps=3, ops="-"),  # used to fall back to '*'
        dict(min_digits=2, max_digits=3, min_steps=1, max_steps=2, ops="-*"),
    ],
)
def test_difficulty_settings_respected(settings):
    problems = make_problems(300, seed=0, **settings)
    steps_seen = set()
    for p in problems:
        evaluate_steps(p)
        steps_seen.add(len(p["steps"]))
        for k, step in enumerate(p["steps"]):
            a, op, b, _, _ = step.split()
            assert op in settings["ops"]
            operands = [b] if k else [a, b]
            for number in operands:
                if op == "*" and number is b:
                    assert int(b) <= 12  # products are capped at 12 by design
                    continue
                assert settings["min_digits"] <= len(number) <= settings["max_digits"]
    assert steps_seen == set(range(settings["min_steps"], settings["max_steps"] + 1))


def test_all_word_or_all_symbols():
    assert {p["style"] for p in make_problems(100, word_fraction=0.0)} == {"symbols"}
    assert {p["style"] for p in make_problems(100, word_fraction=1.0)} == {"word"}


def test_impossible_request_is_a_clear_error_not_a_hang():
    # 1-digit '+' with one step has 100 symbol problems, ~90 of them in train.
    with pytest.raises(
        ValueError,
        match=r"only \d+ distinct 'train' arithmetic problems found .*digits 1-1, steps 1-1, ops '\+'.*ask for fewer",
    ):
        make_problems(5000, seed=0, min_digits=1, max_digits=1, min_steps=1, max_steps=1, ops="+", word_fraction=0.0)


def test_exhausting_the_space_exactly_works():
    # Asking for every train problem there is must succeed, not stop early.
    every = [f"What is {a} + {b}?" for a in range(10) for b in range(10)]
    n_train = sum(split_of(t) == "train" for t in every)
    problems = make_problems(
        n_train, seed=0, min_digits=1, max_digits=1, min_steps=1, max_steps=1, ops="+", word_fraction=0.0
    )
    assert sorted(p["prompt"] for p in problems) == sorted(t for t in every if split_of(t) == "train")


def test_unknown_split():
    with pytest.raises(ValueError, match="arithmetic split must be one of"):
        make_problems(5, split="validation")


# the alternate phrasing family and held-out problems unseen by training

ALT_WORD = re.compile(r"A (\w+) holds (\d+) (\w+)\.(.*) How many \3 are in the \1 at the end\?")
ALT_STEPS = re.compile(r"Start from (\d+), (.+)\. Which number do you end with\?")
ALT_STEP_NUMBER = re.compile(r"(?:add|increase it by|subtract|take away|multiply by|make it) (\d+)")


def test_alternate_phrasing_says_the_same_problems_another_way():
    problems = make_problems(2000, seed=0, split="test", phrasing="alternate")
    assert {p["style"] for p in problems} == {"word", "symbols"}
    standard = make_problems(2000, seed=0, split="test")
    training_starts = ("What is", *(f"{name} has" for name in ("Ava", "Ben", "Chloe", "Dev")))
    for p in problems:
        value = evaluate_steps(p)
        assert p["answer"] == str(value)
        assert not p["prompt"].startswith(training_starts) and "How many" not in p["prompt"][:30]
        word, steps = ALT_WORD.fullmatch(p["prompt"]), ALT_STEPS.fullmatch(p["prompt"])
        assert (word if p["style"] == "word" else steps) is not None, p["prompt"]
        operands = [int(s.split()[2]) for s in p["steps"]]
        if steps:  # the numbers the steps name, in order
            assert int(steps.group(1)) == int(p["steps"][0].split()[0])
            assert [int(n) for n in ALT_STEP_NUMBER.findall(steps.group(2))] == operands
        else:
            assert int(word.group(2)) == int(p["steps"][0].split()[0])
            assert [int(n) for n in re.findall(r"\d+", word.group(4))] == operands
    assert not {p["prompt"] for p in problems} & {p["prompt"] for p in standard}
    assert make_problems(50, seed=3, phrasing="alternate") == make_problems(50, seed=3, phrasing="alternate")


def test_unknown_phrasing():
    with pytest.raises(ValueError, match="arithmetic phrasing must be one of"):
        make_problems(5, phrasing="poetic")


def test_unseen_drops_problems_whose_calculation_training_shows():
    training = [{"steps": ["2 + 3 = 5"]}, {"steps": ["5 * 2 = 10", "10 - 1 = 9"]}]
    problems = [
        {"id": "a", "steps": ["2 + 3 = 5"]},  # the same calculation, whatever its wording
        {"id": "b", "steps": ["5 * 2 = 10"]},  # a prefix of a training calculation is a new problem
        {"id": "c", "steps": ["5 * 2 = 10", "10 - 1 = 9"]},
        {"id": "d", "steps": ["3 + 2 = 5"]},
    ]
    assert [p["id"] for p in unseen(problems, training)] == ["b", "d"]


@pytest.mark.parametrize("phrasing", ["standard", "alternate"])
def test_unseen_heldout_shares_no_calculation_with_the_training_data(phrasing):
    from r1.config import load_config

    d = load_config(None, []).data
    heldout = unseen_heldout(d, 256, seed=20250122, phrasing=phrasing)
    assert len(heldout) == 256 and len({p["prompt"] for p in heldout}) == 256
    training = {tuple(p["steps"]) for p in load_configured(d, quiet=True)}
    assert not {tuple(p["steps"]) for p in heldout} & training
    every = make_problems(512, seed=20250122, split="test", phrasing=phrasing)
    assert sum(tuple(p["steps"]) in training for p in every) > 0  # the filter has something to remove
    assert heldout == unseen_heldout(d, 256, seed=20250122, phrasing=phrasing)


def test_unseen_heldout_says_when_too_few_problems_are_left():
    from r1.config import load_config

    d = load_config(None, ["data.arithmetic.max_digits=1", "data.arithmetic.max_steps=1"]).data  # ~250 calculations
    with pytest.raises(DataError, match="unseen by training; ask for fewer"):
        unseen_heldout(d, 60, seed=0)
