"""The answer of an ``<answer>`` block written as working: its last statement (docs/rewards.md, "Final statements").

A model does not always put a bare value in its answer block. It writes ``x = \\boxed{5}``, a
sentence ("She makes $18 every day."), or the whole derivation, ending the way MATH solutions and
Minerva-style prompts end: a box, then ``Final Answer: The final answer is 5. I hope it is correct.``
``block_answer`` reads such a block by the one rule that cannot be gamed by covering several values:
**only the last statement counts**, so naming other values earlier never adds a way to be right.

* A chat template's turn marker (``<|im_start|>``, ``<|im_end|>``, ``</s>``…) ends the block: what
  follows is a new turn the model should not have written, not part of its answer.
* The statements are the boxes (``\\boxed{…}``, ``\\fbox{…}``) and the final-answer phrases
  (``final answer is …``, ``Final Answer: …``, to the end of their sentence). If the last one is a
  phrase, its value is the answer (a phrase that is itself a sentence gives the one value it names,
  or no answer). Otherwise the boxes are the candidates, all of which must be right (extract.py);
  a tail after the last box that starts with another number or hedges (``\\boxed{5} or 6``, ``\\boxed{5},
  6``) makes the block ambiguous, while a tail that merely goes on (``\\boxed{9} \\pmod{11}``, ``… after 5
  years``) does not.
* With no statement, a block that is a sentence gives the one value it names (``parts.sentence_value``);
  a block of several sentences whose whole names several values (a derivation) gives the value of its
  last sentence that names one — again the last word, never a pick among values.

Deliberately left out: the last number of a block whose last sentence names several values or hedges
(that block has no answer), and reading statements inside the think block (extract.py).
"""

import re

from .parts import sentence_value

_BOX_COMMANDS = ("\\boxed", "\\fbox")
MAX_CANDIDATES = 4  # more distinct boxed values than this is spraying answers → none
_TURN = re.compile(r"<\|[A-Za-z_]+\|>|</s>|<eos>")  # turn markers of common chat templates
_FINAL = re.compile(r"final answer\s*(?:is\b|:)\s*", re.IGNORECASE)
_HOPE = re.compile(r"\s*I hope it is correct\.?\s*$", re.IGNORECASE)
# a sentence ends at . ! ? followed by a space and a capital, a math span or a box, at a blank line,
# or where a conclusion starts ("… = 2/3 Therefore, the probability is 2/3.")
_SENTENCE_END = re.compile(
    r"(?<=[.!?])\s+(?=[A-Z$\\(])|\n\s*\n|\s+(?=(?:Therefore|Thus|Hence|So|Finally|In conclusion)\b)"
)
_NAMES_SOMETHING = re.compile(r"\d|\$|\\\(|\\\[")
# notation that continues a boxed value without naming another one: \pmod{11}, (mod 7)
_MODULUS = re.compile(r"\\pmod\s*\{[^{}]*\}|\(\s*\\?(?:bmod|mod)\s*\d+\s*\)")
_TAIL_HEDGE = re.compile(r"\b(?:or|and|not|maybe|perhaps|possibly)\b|\\pm\b|±", re.IGNORECASE)


def boxes(text: str) -> list[tuple[str, int]]:
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


def distinct(values: list[str]) -> list[str]:
    """Distinct non-empty values (ignoring spaces), last occurrence last; too many → []."""
    seen: dict[str, str] = {}
    for value in values:
        value = value.strip()
        if value:
            key = "".join(value.split())
            seen.pop(key, None)
            seen[key] = value
    return list(seen.values()) if len(seen) <= MAX_CANDIDATES else []


def end_of_turn(content: str) -> str:
    """``content`` up to the first chat-template turn marker."""
    marker = _TURN.search(content)
    return content[: marker.start()] if marker else content


def final_phrase(content: str) -> tuple[int, str] | None:
    """(start, text) of the last final-answer phrase's value, to the end of its sentence; None without one.

    >>> final_phrase("so 7. Final Answer: The final answer is $7$. I hope it is correct.")
    (36, '$7$')
    """
    last = None
    for last in _FINAL.finditer(content):
        pass
    if last is None:
        return None
    text = _HOPE.sub("", content[last.end() :])
    end = _SENTENCE_END.search(text)
    text = (text[: end.start()] if end else text).strip().rstrip(".").strip()
    for quote in ('\\"', '"'):  # Final Answer: The final answer is "12 and 13".
        if len(text) > 2 * len(quote) and text.startswith(quote) and text.endswith(quote):
            text = text[len(quote) : -len(quote)].strip()
    return last.end(), text


def statement_value(text: str) -> list[str]:
    """The candidates of one final-answer phrase: its value, or the one value its sentence names."""
    value = sentence_value(text)
    if value is None:
        return [text] if text else []
    return [value] if value else []


def ambiguous_tail(tail: str) -> bool:
    """Whether text after the last box names another value (``or 6``, ``, 6``) instead of going on."""
    tail = _MODULUS.sub(" ", tail)
    if not any(ch.isdigit() for ch in tail):
        return False
    return bool(re.match(r"^[\s$.,;:)\\\]]*-?\d", tail)) or bool(_TAIL_HEDGE.search(tail))


def last_sentence_value(content: str) -> list[str]:
    """The value of the last sentence of a multi-sentence block that names anything, or []."""
    sentences = [s.strip() for s in _SENTENCE_END.split(content) if s and s.strip()]
    if len(sentences) < 2:
        return []
    for sentence in reversed(sentences):
        if not _NAMES_SOMETHING.search(sentence):
            continue  # "I hope it is correct.": says nothing; look one sentence back
        value = sentence_value(sentence)
        if value is None:
            return [sentence.rstrip(".").strip()]  # a bare expression ends the working: "x = 5"
        return [value] if value else []
    return []


def block_answer(content: str) -> list[str]:
    """The candidate answers of an ``<answer>`` block's content by the module's rules ([] = none)."""
    content = end_of_turn(content)
    found = boxes(content)
    phrase = final_phrase(content)
    if phrase is not None and (not found or phrase[0] >= found[-1][1]):
        return statement_value(phrase[1])
    if found:
        return [] if ambiguous_tail(content[found[-1][1] :]) else distinct([value for value, _ in found])
    value = sentence_value(content)
    if value is None:
        return [content.strip()] if content.strip() else []
    return [value] if value else last_sentence_value(content)
