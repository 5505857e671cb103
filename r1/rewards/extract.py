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
  Inside the block only its *last statement* counts (final.py): a final-answer phrase
  (``Final Answer: The final answer is 5``) or the boxes (``<answer>x = \\boxed{5}</answer>`` →
  ``5``; a tail naming another value, ``\\boxed{5} or 6``, makes the block ambiguous), else the
  one value its sentence names ("She makes $18 every day." → ``18``; several, a hedge or a
  negation → no answer), else a derivation's last sentence. A chat turn marker ends the block.
* A completion with no ``<answer>`` tag at all (plain CoT, or R1-distill style
  ``<think>…</think> … \\boxed{5}``) is answered by its ``\\boxed{…}`` values outside the
  think block. Several boxes with different text are all returned as candidates: the
  accuracy reward then requires *every* candidate to be equivalent to the reference, so
  boxing two different values scores 0, while ``15\\frac{39}{40}`` then
  ``\\boxed{\\frac{639}{40}}`` (MATH solution style) still counts.

Everything is a linear scan (no backtracking regex), so 100,000-character completions or
20,000 repeated tags cost microseconds to milliseconds. Deliberately left out: "The answer
is 42" sentences outside an answer block, GSM8K's ``#### 42`` and last-number heuristics — a model
trained with these rewards must use the tags or a box, and lenient extraction is a reward hack surface.
"""

from .final import block_answer, boxes, distinct

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"


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
    return [content for content, _ in boxes(text)]


def answer_candidates(completion: str, example: dict | None = None) -> list[str]:
    """All distinct final-answer strings per the module rules ([] = no answer)."""
    region = after_think(apply_prefill(completion, example))
    if region is None:
        return []
    n_open, n_close = region.count(ANSWER_OPEN), region.count(ANSWER_CLOSE)
    if n_open == 0 and n_close == 0:
        return distinct(find_boxed(region))
    if n_open != 1 or n_close != 1:
        return []
    start, end = region.find(ANSWER_OPEN) + len(ANSWER_OPEN), region.find(ANSWER_CLOSE)
    if end < start:
        return []
    return block_answer(region[start:end])  # its last statement (final.py)


def extract_answer(completion: str, example: dict | None = None) -> str | None:
    """The single final answer text, or None (no answer, or several different ones).

    >>> extract_answer("<think>2+2</think> <answer>4</answer>")
    '4'
    >>> extract_answer("so the answer is \\\\boxed{\\\\frac{1}{2}}.")
    '\\\\frac{1}{2}'
    """
    candidates = answer_candidates(completion, example)
    return candidates[0] if len(candidates) == 1 else None
