"""Readability filters for curated SFT data (R1 stages 1 and 3): each says why a text is rejected.

The paper keeps only correct responses that are also readable: no mixed languages, no very long
paragraphs, no code blocks where none belong (docs/method.md §5). Every filter here is a small pure
function `(text, example, **thresholds) -> reason | None` — a short reason string when the text
is rejected, None when it passes — and `FILTERS` holds them by name. `build_filters` binds the
thresholds once, so a caller applies a list of `(name, text, example) -> reason | None` checks
and never special-cases one. The name is what reports count; the reason is the detail.

- `language`: the language-consistency reward (r1/rewards/language.py) below `min_language`.
- `paragraphs`: a paragraph longer than `max_paragraph_chars`. A paragraph is a *line*: model
  output is rarely hard-wrapped, so a wall of text is one long line, while reasoning written one
  step per line (this project's worked examples) is many short paragraphs, not one long one.
- `repetition`: the share of repeated word n-grams (`1 - distinct / total` over n-grams of
  `repetition_ngram` words) above `max_repetition`: the loop a long-CoT model falls into.
- `code`: a fenced code block (```) although the task has none (`task_has_code`).
- `length`: fewer than `min_length` or more than `max_length` units; `count` measures a text
  (characters by default; the sampling pipeline passes a token counter).

Beside the filters, two cuts on the rows that passed, in this order (`curate`): `dedup` (exact
duplicates of (prompt, text) after whitespace/case normalization) and `keep_per_prompt` (the
first m rows of each prompt).

Deliberately left out: model-based quality scores, fuzzy (MinHash) near-duplicate detection and
language identification finer than Unicode scripts (English vs French is not a mix here).
"""

from __future__ import annotations

import functools
import inspect
from collections import Counter
from typing import Callable

from r1.rewards.language import language as language_share

Filter = Callable[[str, dict], "str | None"]  # bound filter: (text, example) -> reason or None
CODE_FENCE = "```"
CODE_FIELDS = ("test", "tests", "test_cases", "entry_point")  # rows of code tasks (HumanEval, MBPP) carry these


def language_mixing(text: str, example: dict, *, min_language: float = 0.95) -> str | None:
    """Reject when less than `min_language` of the reasoning's words are in the prompt's language.

    >>> language_mixing("<think>先算 the sum</think><answer>3</answer>", {"language": "zh"})
    'language consistency 0.50 < 0.95'
    """
    share = language_share(text, example)
    return f"language consistency {share:.2f} < {min_language:.2f}" if share < min_language else None


def long_paragraphs(text: str, example: dict, *, max_paragraph_chars: int = 2000) -> str | None:
    """Reject when one paragraph (line, see module doc) is longer than `max_paragraph_chars`."""
    longest = max((len(line.strip()) for line in text.splitlines()), default=0)
    return f"paragraph of {longest} chars > {max_paragraph_chars}" if longest > max_paragraph_chars else None


def repeated_ngram_share(text: str, n: int) -> float:
    """`1 - distinct / total` over the word n-grams of `text`; 0.0 when it has fewer than n words.

    >>> repeated_ngram_share("a b a b a b", 2)  # ab ba ab ba ab: 2 distinct of 5
    0.6
    """
    words = text.split()
    total = len(words) - n + 1
    if total <= 0:
        return 0.0
    distinct = len({tuple(words[i : i + n]) for i in range(total)})
    return 1 - distinct / total


def repetition(text: str, example: dict, *, repetition_ngram: int = 4, max_repetition: float = 0.3) -> str | None:
    """Reject when more than `max_repetition` of the word `repetition_ngram`-grams are repeats."""
    share = repeated_ngram_share(text, repetition_ngram)
    return (
        f"{share:.2f} of {repetition_ngram}-grams repeated > {max_repetition:.2f}" if share > max_repetition else None
    )


def task_has_code(example: dict) -> bool:
    """Whether code belongs in an answer: the question or reference shows a code block, or the
    row is a code task (it carries tests or an entry point)."""
    shown = any(CODE_FENCE in str(example.get(key) or "") for key in ("prompt", "answer"))
    return shown or any(example.get(key) for key in CODE_FIELDS)


def code_blocks(text: str, example: dict) -> str | None:
    """Reject a fenced code block when the task has none (see `task_has_code`)."""
    return "code block in a task without code" if CODE_FENCE in text and not task_has_code(example) else None


def length_bounds(
    text: str, example: dict, *, min_length: int = 0, max_length: int | None = None, count: Callable[[str], int] = len
) -> str | None:
    """Reject when `count(text)` is below `min_length` or above `max_length` (None = no bound)."""
    size = count(text)
    if size < min_length:
        return f"length {size} < {min_length}"
    if max_length is not None and size > max_length:
        return f"length {size} > {max_length}"
    return None


FILTERS: dict[str, Callable[..., str | None]] = {
    "language": language_mixing,
    "paragraphs": long_paragraphs,
    "repetition": repetition,
    "code": code_blocks,
    "length": length_bounds,
}


def build_filters(names: list[str], **thresholds) -> list[tuple[str, Filter]]:
    """The filters `names`, each with the thresholds among `thresholds` that it takes.

    Every threshold name belongs to exactly one filter (`min_language`, `max_paragraph_chars`,
    `repetition_ngram`, `max_repetition`, `min_length`, `max_length`, `count`), so one flat set
    of settings configures them all; a name no filter takes is an error, not silently ignored.
    """
    unknown = [name for name in names if name not in FILTERS]
    if unknown:
        raise ValueError(f"unknown filters {unknown}; known: {', '.join(FILTERS)}")
    taken = {p for fn in FILTERS.values() for p in inspect.signature(fn).parameters} - {"text", "example"}
    stray = sorted(set(thresholds) - taken)
    if stray:
        raise ValueError(f"no filter takes {stray}; thresholds: {', '.join(sorted(taken))}")
    bound = []
    for name in names:
        fn = FILTERS[name]
        own = {k: v for k, v in thresholds.items() if k in inspect.signature(fn).parameters}
        bound.append((name, functools.partial(fn, **own)))
    return bound


def first_rejection(text: str, example: dict, filters: list[tuple[str, Filter]]) -> tuple[str, str] | None:
    """`(filter name, reason)` of the first filter rejecting `text`, or None when all pass."""
    for name, check in filters:
        reason = check(text, example)
        if reason is not None:
            return name, reason
    return None


def normalized(text: str) -> str:
    """Case-folded text with runs of whitespace collapsed: what two "same" texts share."""
    return " ".join(text.split()).casefold()


def dedup(rows: list[dict], *, prompt_key: str = "prompt", text_key: str = "completion") -> tuple[list[dict], int]:
    """Drop rows whose normalized (prompt, text) was seen before. Returns (kept rows, dropped count).

    The first occurrence is kept, so the order of `rows` decides which copy survives.
    """
    seen, kept = set(), []
    for row in rows:
        key = (normalized(str(row[prompt_key])), normalized(str(row[text_key])))
        if key not in seen:
            seen.add(key)
            kept.append(row)
    return kept, len(rows) - len(kept)


def keep_per_prompt(rows: list[dict], m: int, *, prompt_key: str = "prompt") -> tuple[list[dict], int]:
    """The first `m` rows of each prompt, in the order given. Returns (kept rows, dropped count)."""
    if m < 1:
        raise ValueError(f"m must be ≥ 1, got {m}")
    taken: Counter[str] = Counter()
    kept = []
    for row in rows:
        key = normalized(str(row[prompt_key]))
        if taken[key] < m:
            taken[key] += 1
            kept.append(row)
    return kept, len(rows) - len(kept)


def curate(rows: list[dict], max_per_prompt: int) -> tuple[list[dict], Counter]:
    """`dedup`, then `keep_per_prompt`: the last two cuts of every curated set, with their counts."""
    rows, duplicates = dedup(rows)
    rows, over = keep_per_prompt(rows, max_per_prompt)
    return rows, Counter({"duplicate": duplicates, "over_max_per_prompt": over})


def filters_from_settings(settings, count: Callable[[str], int] = len) -> list[tuple[str, Filter]]:
    """The filters a `SampleConfig` (r1/config.py) names, with its thresholds; `count` measures length."""
    s = settings
    return build_filters(
        list(s.filters),
        min_language=s.min_language,
        max_paragraph_chars=s.max_paragraph_chars,
        repetition_ngram=s.repetition_ngram,
        max_repetition=s.max_repetition,
        min_length=s.min_length,
        max_length=s.max_length,
        count=count,
    )
