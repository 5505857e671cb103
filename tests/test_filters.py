"""Readability filters, deduplication and the per-prompt cap (r1/data/filters.py)."""

import typing

import pytest

from r1.config import FilterName, SampleConfig
from r1.data.filters import (
    FILTERS,
    build_filters,
    code_blocks,
    curate,
    dedup,
    filters_from_settings,
    first_rejection,
    keep_per_prompt,
    language_mixing,
    length_bounds,
    long_paragraphs,
    repeated_ngram_share,
    repetition,
)

EN = {"prompt": "How many apples does Ava have now?", "answer": "5"}


def test_language_mixing_accepts_one_language_and_rejects_a_mix():
    assert language_mixing("<think>Ava has two apples and gets three more</think><answer>5</answer>", EN) is None
    # 4 Latin words + 4 Han characters: consistency 0.5
    mixed = "<think>Ava has two apples 先算一下</think><answer>5</answer>"
    assert language_mixing(mixed, EN) == "language consistency 0.50 < 0.95"
    assert language_mixing(mixed, EN, min_language=0.5) is None  # the threshold is inclusive
    # the target comes from the example's language field when present
    assert language_mixing("<think>先算一下</think><answer>5</answer>", {**EN, "language": "zh"}) is None


def test_long_paragraphs_measures_lines():
    steps = "\n".join(f"step {i}: " + "x" * 50 for i in range(100))  # 100 short lines, 6 KB in all
    assert long_paragraphs(steps, EN, max_paragraph_chars=100) is None
    wall = "word " * 100  # one 499-char line after stripping
    assert long_paragraphs(wall, EN, max_paragraph_chars=499) is None
    assert long_paragraphs(wall, EN, max_paragraph_chars=498) == "paragraph of 499 chars > 498"
    assert long_paragraphs("", EN, max_paragraph_chars=1) is None


def test_repeated_ngram_share_by_hand():
    # "a b a b a b": bigrams ab ba ab ba ab → 2 distinct of 5 → 1 - 2/5
    assert repeated_ngram_share("a b a b a b", 2) == pytest.approx(0.6)
    assert repeated_ngram_share("one two three four", 2) == 0.0
    assert repeated_ngram_share("too short", 4) == 0.0


def test_repetition_rejects_a_loop_and_accepts_varied_reasoning():
    varied = "We start from 57. 57 + 60 = 117 and then 117 - 38 = 79, so the result is 79."
    assert repetition(varied, EN) is None
    loop = "Wait, let me check that again. " * 20  # 6 words repeated: 4-grams 115, distinct 6
    assert repetition(loop, EN) == f"{1 - 6 / 117:.2f} of 4-grams repeated > 0.30"
    assert repetition(loop, EN, max_repetition=0.99) is None


def test_code_blocks_only_where_the_task_has_none():
    fenced = "<think>```python\nprint(2 + 3)\n```</think><answer>5</answer>"
    assert code_blocks(fenced, EN) == "code block in a task without code"
    assert code_blocks("<think>2 + 3 = 5</think><answer>5</answer>", EN) is None
    assert code_blocks(fenced, {"prompt": "Fix this:\n```python\nprint(x)\n```", "answer": "x"}) is None
    assert code_blocks(fenced, {"prompt": "Write add(a, b).", "answer": "", "test": "assert add(1, 2) == 3"}) is None


def test_length_bounds_in_chars_or_any_unit():
    assert length_bounds("abcde", EN) is None  # no bounds by default
    assert length_bounds("abcde", EN, min_length=6) == "length 5 < 6"
    assert length_bounds("abcde", EN, max_length=4) == "length 5 > 4"
    assert length_bounds("abcde", EN, min_length=5, max_length=5) is None
    words = lambda text: len(text.split())  # noqa: E731  a stand-in for a token counter
    assert length_bounds("one two three", EN, max_length=2, count=words) == "length 3 > 2"


def test_build_filters_binds_each_threshold_to_its_filter():
    bound = build_filters(["paragraphs", "length"], max_paragraph_chars=10, max_length=100)
    assert [name for name, _ in bound] == ["paragraphs", "length"]
    assert first_rejection("x" * 11, EN, bound) == ("paragraphs", "paragraph of 11 chars > 10")
    assert first_rejection("short\n" * 30, EN, bound) == ("length", "length 180 > 100")
    assert first_rejection("short", EN, bound) is None
    with pytest.raises(ValueError, match="unknown filters"):
        build_filters(["spelling"])
    with pytest.raises(ValueError, match="no filter takes"):
        build_filters(["length"], max_lenght=3)


def test_config_names_exactly_the_registered_filters():
    assert set(typing.get_args(FilterName)) == set(FILTERS)
    assert [name for name, _ in filters_from_settings(SampleConfig())] == SampleConfig().filters


def test_dedup_normalizes_whitespace_and_case_per_prompt():
    rows = [
        {"prompt": "Q1", "completion": "<think>a  b</think>"},
        {"prompt": "Q1", "completion": "<THINK>a b</think>\n"},  # same after normalization
        {"prompt": "Q2", "completion": "<think>a b</think>"},  # same text, other prompt: kept
        {"prompt": "Q1", "completion": "<think>a c</think>"},
    ]
    kept, dropped = dedup(rows)
    assert kept == [rows[0], rows[2], rows[3]] and dropped == 1


def test_keep_per_prompt_keeps_the_first_m_in_order():
    rows = [{"prompt": p, "completion": str(i)} for i, p in enumerate("AABABBCA")]
    kept, dropped = keep_per_prompt(rows, 2)
    assert [(r["prompt"], r["completion"]) for r in kept] == [
        ("A", "0"),
        ("A", "1"),
        ("B", "2"),
        ("B", "4"),
        ("C", "6"),
    ]
    assert dropped == 3
    with pytest.raises(ValueError):
        keep_per_prompt(rows, 0)


def test_curate_dedups_before_capping():
    rows = [{"prompt": "A", "completion": c} for c in ("x", "x", "y", "z")]
    kept, cut = curate(rows, 2)
    # the duplicate goes first, so the cap keeps two different texts
    assert [r["completion"] for r in kept] == ["x", "y"]
    assert cut == {"duplicate": 1, "over_max_per_prompt": 1}
