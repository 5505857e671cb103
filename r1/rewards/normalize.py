"""Cheap string clean-up and hack filters applied before the math-verify equivalence check.

math-verify already knows LaTeX forms (``\\dfrac``, ``^\\circ``, ``\\%``, sets, intervals,
matrices, ``x = 5``). What it does not handle is the GSM8K style of writing an answer:
``$1,000``, ``18 dollars``, ``18 eggs`` — it reads the words as a product of symbols
(``18*d*o*l*l*a*r*s``). ``normalize`` strips those, identically for reference and
prediction, so the rule is symmetric.

``normalize`` also spells every relation one way (``\\le``, ``<=``, ``≤`` → ``\\leq``), so two
answers differing only in spelling compare equal. ``hedge`` rejects answers that try to cover
several values at once ("2 or 3", "between 3 and 7", "any number from 0 to 100", "x ≥ 4"):
math-verify would otherwise pick one number out of them. What counts as a hedge depends on what
the reference is: one that uses a word itself (``1 \\pm \\sqrt{19}``), is a relation (then every
relation is allowed and compared by meaning), an interval or union (∪/∩ allowed), or several
values ("and" allowed) — docs/rewards.md.

All functions are pure, linear-time regexes on short strings; the caller has already
rejected absurdly long answers (``MAX_ANSWER_CHARS``).
"""

import re

# An answer is one value; a model-written answer this long is junk or an attack (the
# longest MATH-500 reference is 80 chars). Gold answers are never subject to it.
MAX_ANSWER_CHARS = 1000

_NEGSPACE = re.compile(r"(?<!\\)\\!\s*")  # 10,\!080: removing it (not spacing it) keeps the number whole
_SPACING = re.compile(r"(?<!\\)\\[,;: ]|\\q?quad\b|~")
_DELIMS = re.compile(r"\\left\b|\\right\b|\\displaystyle\b")
_LABEL = re.compile(r"^(?:the\s+)?(?:final\s+)?answer\b\s*(?:is\b|:)?\s*(?=\S)", re.IGNORECASE)  # "Answer: 5"
_WRAPPERS = (("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
# 1,000 and 1 000 are one number; "32, 349" (a comma and a space) is a list of two
_THOUSANDS = re.compile(r"^(-?)([1-9]\d{0,2}(?:,\d{3})+|[1-9]\d{0,2}(?: \d{3})+)(\.\d+)?$")
# a decimal comma that cannot be a list or thousands: 1,22 · 1000,99 · 0,111 (2,1 and -2,1 are lists)
_DECIMAL_COMMA = re.compile(r"^-?(?:\d+,\d{2}|0,\d{2,}|\d{4,},\d+)$")
# every spelling of a relation → one symbol, so `\le`, `\leq`, `<=`, `≤` compare equal
_RELATIONS = (
    (re.compile(r"\\(?:leqslant|leq|le)(?![A-Za-z])|<=|≤|⩽"), "\\leq "),
    (re.compile(r"\\(?:geqslant|geq|ge)(?![A-Za-z])|>=|≥|⩾"), "\\geq "),
    (re.compile(r"\\(?:neq|ne)(?![A-Za-z])|!=|≠"), "\\neq "),
    (re.compile(r"\\lt(?![A-Za-z])"), "<"),
    (re.compile(r"\\gt(?![A-Za-z])"), ">"),
)
_TEXT_WORD = re.compile(r"\\text\s*\{\s*(and|or)\s*\}")  # \text{ and } between parts is the word
_TEXT_UNIT = re.compile(r"\s*\\(?:text|mbox|textrm|mathrm)\s*\{\s*[A-Za-z][A-Za-z .]*\}(?:\^\{?[23]\}?)?\s*$")
_WORD_UNIT = re.compile(r"^(.*?[\d}])\s+(?:[A-Za-z]+\.?)(?:\s+[A-Za-z]+\.?)*(?:\^[23])?\s*$")
_CURRENCY = re.compile(r"\\\$|\$|(?<![A-Za-z])USD\b|€|£")

_HEDGE_WORDS = re.compile(
    r"\b(or|either|between|any|from|to|and|maybe|perhaps|possibly|probably|approximately|"
    r"about|around|roughly|nearly|least|most|more|less|than|all|every|some|range)\b|"
    r"\\(?:approx|pm|mp|neq|leq|geq|lor|vee|cup|cap|sim)\b|"
    r"[<>≈±∪]",
    re.IGNORECASE,
)
RELATIONS = {"<", ">", "\\leq", "\\geq", "\\neq"}  # canonical spellings (normalize)
SET_JOINS = {"\\cup", "\\cap"}
_INTERVAL = re.compile(r"[\[(][^\[\]()]*,[^\[\]()]*[\])]")


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
    s = _strip_wrappers(_LABEL.sub("", s, count=1))
    s = _SPACING.sub(" ", _NEGSPACE.sub("", s))
    s = _DELIMS.sub("", s)
    s = _TEXT_WORD.sub(r" \1 ", s)
    for pattern, symbol in _RELATIONS:
        s = pattern.sub(lambda _, symbol=symbol: symbol, s)
    s = " ".join(s.split())
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
            return s[len(left) : len(s) - len(right)].strip()
    return s


def _strip_units(s: str) -> str:
    """``5\\text{ cm}`` → ``5``; ``18 eggs`` → ``18``; a lone ``\\text{east}`` is kept."""
    stripped = _TEXT_UNIT.sub("", s)
    if stripped.strip():
        s = stripped.strip()
    match = _WORD_UNIT.match(s)
    if match and not _HEDGE_WORDS.search(s[match.end(1) :]):
        s = match.group(1).strip()
    return s


def hedge(prediction: str, reference: str, parts: int = 1) -> bool:
    """True if ``prediction`` uses a hedge word or relation that ``reference`` does not allow.

    Both are normalized. A reference that is itself a relation (``x \\leq 5``) allows every
    relation, so ``5 \\geq x`` reaches math-verify and is compared by meaning; one that is a
    relation, an interval or a union allows ∪/∩ (``1 \\leq |z| \\leq 2`` as a union of two
    intervals); a reference of several ``parts`` allows "and" between them. Anything else — "or",
    "between", "at least", a relation for a plain value — is a hedge.
    """
    allowed = {m.group(0).lower() for m in _HEDGE_WORDS.finditer(reference)}
    if allowed & RELATIONS:
        allowed |= RELATIONS
    if allowed & (RELATIONS | SET_JOINS) or _INTERVAL.search(reference):
        allowed |= SET_JOINS
    if parts > 1:
        allowed.add("and")
    return any(m.group(0).lower() not in allowed for m in _HEDGE_WORDS.finditer(prediction))


def same_decimal(reference: str, prediction: str) -> bool:
    """Whether one side writes with a decimal comma the number the other writes with a point.

    >>> same_decimal("1.22", "1,22"), same_decimal("0,111", "0.111"), same_decimal("-2,1", "-2.1")
    (True, True, False)
    """
    for comma, point in ((reference, prediction), (prediction, reference)):
        if _DECIMAL_COMMA.match(comma) and comma.replace(",", ".") == point:
            return True
    return False


def plausible(prediction: str) -> bool:
    """Cheap pre-filter: could this string be a single final answer at all?"""
    return 0 < len(prediction) <= MAX_ANSWER_CHARS and "\x00" not in prediction
