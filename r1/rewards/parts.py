"""Answers of several values, and an answer written as a sentence (docs/rewards.md, "Multi-part answers").

A reference can be a collection: the roots ``-2, 1``, the pairs ``(5, 8), (8, 5)``, the set
``\\{1, 2, 3\\}``. A model may write the same collection in another way — each value boxed
(``\\boxed{1}, \\boxed{2}, \\boxed{3}``), joined by "and" (``(5, 8) \\quad\\text{and}\\quad (8, 5)``),
each part named (``k = 45`` and ``n = 2``), in another order. ``parts`` splits an answer into its
top-level values (commas, semicolons and "and" outside brackets; ``values`` drops names like
``x =`` or ``(x, y) =``, and keeps them where every part has its own, so ``k = 45, n = 2`` is
never matched by ``k = 2, n = 45``), and ``as_set`` writes them as one set for math-verify, which then compares
the two collections by value and without order. The anti-hedge rule stays a count: a prediction
that names *more* values than the reference never passes (``2, 5`` for ``5``; three roots for two).

``sentence_value`` reads an ``<answer>`` block written as a sentence ("She makes $18 every day."):
the one value it names — its only math span (``$…$``, ``\\(…\\)``) or, without one, its only
number (``2/3``, ``20%``, ``1,000.99``, a decimal comma ``2,74``). A negated value is not named ("not
10, it is 12" names 12). A sentence that names several values, or that hedges or negates what it
names ("It is not 5", "at least 5", "about 18"), has no value: it is left for the hedge rules to
reject, never read generously. Spans that name rather than give a value (``$n$``, ``$f(x)$``,
``$(x, y)$``, ``$ABCD$``) are not values.

Deliberately left out: picking a number out of a sentence with several (the "last number"
heuristic is a reward-hack surface), and a decimal comma that could be a list (``2,1``: normalize.py).
"""

import re

from .normalize import normalize

_OPEN, _CLOSE = "([{", ")]}"
_NAME = re.compile(r"^\s*(?:[A-Za-z](?:_\{?[\w]+\}?)?|\(\s*[A-Za-z](?:\s*,\s*[A-Za-z])*\s*\))\s*=\s*(?=\S)")
_SET = re.compile(r"^\\\{(.*)\\\}$|^\{(.*)\}$", re.DOTALL)
_MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)
# a number in prose: 1,000.99 · 2/3 · 20% · a decimal comma (2,74 — two digits, so never thousands) · .5
_NUMBER = re.compile(
    r"(?<![\w.])-?(?:\d+(?:,\d{3})+(?:\.\d+)?(?![\d,])|\d+,\d{2}(?![\d,])|\d+(?:\.\d+)?(?:/\d+)?)(?:\\?%)?(?!\w)"
    r"|(?<![\w.])-?\.\d+"
)
_NEGATED = re.compile(r"\bnot\s+(?:it'?s\s+)?-?\d[\d,]*(?:\.\d+)?(?:\s+(?:but|which is))?\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z]{2,}")
# spans that name instead of giving a value: $n$, $a_1$, $f(x)$, $(x, y)$, $ABCD$ (points of a figure)
_LETTER = re.compile(
    r"^(?:[A-Za-z](?:_\{?\w+\}?)?(?:\(\s*[A-Za-z]\s*\))?|\(\s*[A-Za-z](?:\s*,\s*[A-Za-z])+\s*\)|[A-Z]{2,})$"
)
_COMMAND = re.compile(r"\\(?:begin|end)\s*\{[^{}]*\}|\\[A-Za-z]+")
_MATH_WORDS = {
    "sin",
    "cos",
    "tan",
    "cot",
    "sec",
    "csc",
    "log",
    "exp",
    "lim",
    "max",
    "min",
    "gcd",
    "lcm",
    "det",
    "mod",
    "arcsin",
    "arccos",
    "arctan",
    "sinh",
    "cosh",
    "tanh",
    "inf",
    "sup",
    "deg",
}
_SENTENCE_HEDGE = re.compile(
    r"\b(or|either|between|any|from|maybe|perhaps|possibly|probably|approximately|about|around|roughly|"
    r"nearly|least|most|more|less|than|range|not|no|except|neither|nor|isn't|wrong)\b|"
    r"[<>≈±≤≥]|\\(?:approx|pm|le|ge|neq|ne)\b",
    re.IGNORECASE,
)


def parts(answer: str, joins: tuple[str, ...] = (" and ",)) -> list[str]:
    """Top-level values of a normalized answer; a set's braces are dropped first. `joins` are the
    words that separate values besides commas and semicolons (a reference also uses " or ").

    >>> parts("\\\\{1, 2, 3\\\\}")
    ['1', '2', '3']
    >>> parts("(x, y) = (5, 8) and (8, 5)")
    ['(x, y) = (5, 8)', '(8, 5)']
    >>> parts("[0, 1)")
    ['[0, 1)']
    """
    whole = _SET.match(answer.strip())
    text = next(g for g in whole.groups() if g is not None) if whole else answer
    pieces, depth, start, i = [], 0, 0, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "{}":  # \{ \} open and close a set
            depth += 1 if text[i + 1] == "{" else -1
            i += 2
            continue
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif depth == 0:
            join = 1 if ch in ",;" else next((len(j) for j in joins if text.startswith(j, i)), 0)
            if join:  # the length of the separator
                pieces.append(text[start:i])
                start = i + join
        i += 1
    pieces.append(text[start:])
    return [p.strip() for p in pieces if p.strip()]


def named(part: str) -> tuple[str | None, str]:
    """(name, value) of one part: ``k = 45`` → ("k", "45"); ``(x, y) = (5, 8)`` → ("(x,y)", "(5, 8)")."""
    match = _NAME.match(part)
    if not match:
        return None, part
    return "".join(part[: match.end()].rstrip().rstrip("=").split()), part[match.end() :].strip()


def values(answer: str, reference: bool = False) -> tuple[list[str], dict[str, str] | None]:
    """The values of an answer's parts, and name → value when every part has its own name (else
    None). A trusted `reference` may join its values with "or" ("21, 16 or 11": the answer is all three)."""
    pairs = [named(p) for p in parts(answer, (" and ", " or ") if reference else (" and ",))]
    names = [n for n, _ in pairs]
    distinct = None not in names and len(set(names)) == len(names) > 1
    return [v for _, v in pairs], dict(pairs) if distinct else None


def as_set(values: list[str]) -> str:
    """One LaTeX set of the values: math-verify compares two of them without order."""
    return "\\{" + ", ".join(values) + "\\}"


def sentence_value(content: str) -> str | None:
    """The one value an answer sentence names; "" for a sentence that names no single value
    (several, a hedge, a negation); None when ``content`` is not a sentence at all.

    >>> sentence_value("She makes $18 every day.")
    '18'
    >>> sentence_value("Therefore $x \\\\geq 5$ is the solution.")
    'x \\\\geq 5'
    >>> sentence_value("It is not 5.")
    ''
    """
    if not _WORD.search(_COMMAND.sub(" ", normalize(content))):
        return None  # its words are a unit normalize drops: "17\\text{ any text}" is 17
    spans = [next(g for g in m.groups() if g is not None).strip() for m in _MATH_SPAN.finditer(content)]
    if content.count("$") % 2:  # an odd dollar sign is money, not a math delimiter
        spans = []
    spans = [s for s in spans if not _LETTER.match(s)]  # "the largest $n$ is 34": $n$ names, 34 is the value
    prose = _MATH_SPAN.sub(" ", content) if spans else content
    words = [w for w in _WORD.findall(_COMMAND.sub(" ", prose)) if w.lower() not in _MATH_WORDS]
    if len(words) < 2 or max(map(len, words)) < 3:  # "xy + yz" is algebra, "It is 5" a sentence
        return None  # not a sentence: "5 cm", "x = 5", "\text{Evelyn}" are left as they are
    prose = _NEGATED.sub(" ", prose)  # "not 10, it is 12" names 12; "It is not 5." names nothing
    if _SENTENCE_HEDGE.search(prose):
        return ""
    if spans:
        return spans[0] if len(spans) == 1 and not _NUMBER.search(prose) else ""
    numbers = _NUMBER.findall(prose)
    return normalize(numbers[0]) if len(numbers) == 1 else ""
