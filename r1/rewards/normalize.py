"""Cheap string clean-up and hack filters applied before the math-verify equivalence check.

math-verify already knows LaTeX forms (``\\dfrac``, ``^\\circ``, ``\\%``, sets, intervals,
matrices, ``x = 5``). What it does not handle is the GSM8K style of writing an answer:
``$1,000``, ``18 dollars``, ``18 eggs`` — it reads the words as a product of symbols
(``18*d*o*l*l*a*r*s``). ``normalize`` strips those, identically for reference and
prediction, so the rule is symmetric.

``hedge`` rejects answers that try to cover several values at once ("2 or 3", "between 3
and 7", "any number from 0 to 100", "x ≥ 4"): math-verify would otherwise pick one number
out of them. A hedge word only counts when the reference itself does not use it (so a
reference ``1 \\pm \\sqrt{19}`` or ``(0,9) \\cup (9,36)`` is still matched).

All functions are pure, linear-time regexes on short strings; the caller has already
rejected absurdly long answers (``MAX_ANSWER_CHARS``).
"""

import re

# An answer is one value; a model-written answer this long is junk or an attack (the
# longest MATH-500 reference is 80 chars). Gold answers are never subject to it.
MAX_ANSWER_CHARS = 1000

_NEGSPACE = re.compile(r"(?<!\\)\\!")  # 10,\!080: removing it (not spacing it) keeps the number whole
_SPACING = re.compile(r"(?<!\\)\\[,;: ]|\\q?quad\b|~")
_DELIMS = re.compile(r"\\left\b|\\right\b|\\displaystyle\b")
_WRAPPERS = (("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_THOUSANDS = re.compile(r"^(-?)(\d{1,3}(?:, ?\d{3})+)(\.\d+)?$")
_TEXT_UNIT = re.compile(r"\s*\\(?:text|mbox|textrm|mathrm)\s*\{\s*[A-Za-z][A-Za-z .]*\}(?:\^\{?[23]\}?)?\s*$")
_WORD_UNIT = re.compile(r"^(.*?[\d}])\s+(?:[A-Za-z]+\.?)(?:\s+[A-Za-z]+\.?)*(?:\^[23])?\s*$")
_CURRENCY = re.compile(r"\\\$|\$|(?<![A-Za-z])USD\b|€|£")

_HEDGE_WORDS = re.compile(
    r"\b(or|either|between|any|from|to|and|maybe|perhaps|possibly|probably|approximately|"
    r"about|around|roughly|nearly|least|most|more|less|than|all|every|some|range)\b|"
    r"\\(?:approx|pm|mp|le|leq|ge|geq|lt|gt|neq|ne|lor|vee|cup|cap|sim)\b|"
    r"[<>≤≥≈±∪]",
    re.IGNORECASE,
)


def normalize(answer: str) -> str:
    """Canonical text for an answer: no math delimiters, spacing, currency, units or commas.

    >>> normalize("\\\\$1,000.50 dollars")
    '1000.50'
    >>> normalize("5\\\\text{ cm}^2")
    '5'
    """
    if len(answer) > MAX_ANSWER_CHARS:
        return answer  # the regexes below are only meant for short strings; callers reject it
    s = answer.strip().replace("°", "^\\circ")
    s = _strip_wrappers(s)
    s = _SPACING.sub(" ", _NEGSPACE.sub("", s))
    s = _DELIMS.sub("", s)
    s = _CURRENCY.sub("", s).strip()
    s = _strip_units(s)
    s = s.rstrip(".").strip()
    match = _THOUSANDS.match(s)
    if match:
        s = match.group(1) + match.group(2).replace(",", "").replace(" ", "") + (match.group(3) or "")
    return s


def _strip_wrappers(s: str) -> str:
    for left, right in _WRAPPERS:
        if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
            return s[len(left):len(s) - len(right)].strip()
    return s


def _strip_units(s: str) -> str:
    """``5\\text{ cm}`` → ``5``; ``18 eggs`` → ``18``; a lone ``\\text{east}`` is kept."""
    stripped = _TEXT_UNIT.sub("", s)
    if stripped.strip():
        s = stripped.strip()
    match = _WORD_UNIT.match(s)
    if match and not _HEDGE_WORDS.search(s[match.end(1):]):
        s = match.group(1).strip()
    return s


def hedge(prediction: str, reference: str) -> bool:
    """True if ``prediction`` uses a hedge word or relation that ``reference`` does not."""
    allowed = {m.group(0).lower() for m in _HEDGE_WORDS.finditer(reference)}
    return any(m.group(0).lower() not in allowed for m in _HEDGE_WORDS.finditer(prediction))


def plausible(prediction: str) -> bool:
    """Cheap pre-filter: could this string be a single final answer at all?"""
    return 0 < len(prediction) <= MAX_ANSWER_CHARS and "\x00" not in prediction
