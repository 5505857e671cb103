"""Find the final answer in a completion: the tag rules shared by every reward.

R1-Zero asks for ``<think>reasoning</think><answer>answer</answer>``. The accuracy reward,
the eval harness and majority voting all need the same answer out of a completion, so
the rules live here, once:

* If the prompt pre-filled ``<think>`` (``example["think_prefilled"]``), the completion
  starts inside the think block; we prepend ``<think>`` unless it is already there.
* Only text after the *last* ``</think>`` can hold the answer. A ``<think>`` that never
  closes means there is no answer: an answer written only while thinking does not count.
* After the think block, exactly one ``<answer>…</answer>`` block: its content is the
  answer. Two blocks, an unclosed block or a stray ``</answer>`` → no answer.
  If the block contains ``\\boxed{…}`` (or ``\\fbox{…}``), the boxed content is the
  answer and the working before it is ignored (``<answer>x = \\boxed{5}</answer>`` → ``5``);
  a digit after the last box makes the block ambiguous (``\\boxed{5} or 6`` → no answer).
  A block written as a sentence gives the one value it names ("She makes $18 every day." →
  ``18``) and no answer when it names several, hedges or negates (``parts.sentence_value``).
* A completion with no ``<answer>`` tag at all (plain CoT, or R1-distill style
  ``<think>…</think> … \\boxed{5}``) is answered by its ``\\boxed{…}`` values outside the
  think block. Several boxes with different text are all returned as candidates: the
  accuracy reward then requires *every* candidate to be equivalent to the reference, so
  boxing two different values scores 0, while ``15\\frac{39}{40}`` then
  ``\\boxed{\\frac{639}{40}}`` (MATH solution style) still counts.

Everything is a linear scan (no backtracking regex), so 100,000-character completions or
20,000 repeated tags cost microseconds to milliseconds. Deliberately left out: "The answer
is 42" sentences outside an answer block, GSM8K's ``#### 42`` and last-number heuristics — a model trained with
these rewards must use the tags or a box, and lenient extraction is a reward hack surface.
"""

from .parts import sentence_value

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
_BOX_COMMANDS = ("\\boxed", "\\fbox")
MAX_CANDIDATES = 4  # more distinct boxed values than this is spraying answers → none


def apply_prefill(completion: str, example: dict | None) -> str:
    """Prepend ``<think>`` when the chat template already opened it in the prompt."""
    if example and example.get("think_prefilled") and not completion.lstrip().startswith(THINK_OPEN):
        return THINK_OPEN + completion
    return completion


def after_think(text: str) -> str | None:
    """The part of ``text`` outside (after) the chain of thought; None if a think never closes."""
    close = text.rfind(THINK_CLOSE)
    if close < 0:
        return None if THINK_OPEN in text else text
    rest = text[close + len(THINK_CLOSE) :]
    return None if THINK_OPEN in rest else rest


def find_boxed(text: str) -> list[str]:
    """Contents of every complete ``\\boxed{…}`` / ``\\fbox{…}`` in order (balanced braces)."""
    return [content for content, _ in _boxes(text)]


def _boxes(text: str) -> list[tuple[str, int]]:
    """(content, index just past the closing brace) of every complete box, in order."""
    found, i = [], 0
    while True:
        starts = [(text.find(cmd, i), cmd) for cmd in _BOX_COMMANDS]
        starts = [(pos, cmd) for pos, cmd in starts if pos >= 0]
        if not starts:
            return found
        pos, cmd = min(starts)
        j = pos + len(cmd)
        while j < len(text) and text[j] == " ":
            j += 1
        i = j
        if j < len(text) and text[j] == "{":
            end = _matching_brace(text, j)
            if end < 0:  # truncated box: nothing after it can close it either
                return found
            found.append((text[j + 1 : end], end + 1))
            i = end + 1


def _matching_brace(text: str, open_pos: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``open_pos``, or -1. Escaped braces ``\\{`` skip."""
    depth, k = 0, open_pos
    while k < len(text):
        ch = text[k]
        if ch == "\\":
            k += 2  # \{ and \} are literal braces in LaTeX, not grouping
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return k
        k += 1
    return -1


def answer_candidates(completion: str, example: dict | None = None) -> list[str]:
    """All distinct final-answer strings per the module rules ([] = no answer)."""
    region = after_think(apply_prefill(completion, example))
    if region is None:
        return []
    n_open, n_close = region.count(ANSWER_OPEN), region.count(ANSWER_CLOSE)
    if n_open == 0 and n_close == 0:
        return _distinct(find_boxed(region))
    if n_open != 1 or n_close != 1:
        return []
    start, end = region.find(ANSWER_OPEN) + len(ANSWER_OPEN), region.find(ANSWER_CLOSE)
    if end < start:
        return []
    content = region[start:end]
    boxes = _boxes(content)
    if boxes:
        # words before the box are working ("so x = \boxed{5}"); a number after the last box is a
        # second value ("\boxed{5} or 6") and makes the block ambiguous
        tail = content[boxes[-1][1] :]
        return [] if any(ch.isdigit() for ch in tail) else _distinct([value for value, _ in boxes])
    value = sentence_value(content)
    if value is not None:  # "She makes $18 every day." → 18; "It is not 5." → no answer
        return [value] if value else []
    return [content.strip()] if content.strip() else []


def _distinct(values: list[str]) -> list[str]:
    """Distinct non-empty values (ignoring spaces), last occurrence last; too many → []."""
    seen: dict[str, str] = {}
    for value in values:
        value = value.strip()
        if value:
            key = "".join(value.split())
            seen.pop(key, None)
            seen[key] = value
    return list(seen.values()) if len(seen) <= MAX_CANDIDATES else []


def extract_answer(completion: str, example: dict | None = None) -> str | None:
    """The single final answer text, or None (no answer, or several different ones).

    >>> extract_answer("<think>2+2</think> <answer>4</answer>")
    '4'
    >>> extract_answer("so the answer is \\\\boxed{\\\\frac{1}{2}}.")
    '\\\\frac{1}{2}'
    """
    candidates = answer_candidates(completion, example)
    return candidates[0] if len(candidates) == 1 else None
