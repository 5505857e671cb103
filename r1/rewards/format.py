"""The format reward (R1-Zero): ``<think>reasoning</think><answer>answer</answer>``, nothing else.

Strict rule (``format``, 0 or 1), on the completion after ``think_prefilled`` handling:

* exactly one ``<think>``, ``</think>``, ``<answer>``, ``</answer>``, in that order;
* the think block and the answer block are non-empty (not just whitespace);
* no tag inside the think block (that includes a nested ``<think>`` or an ``<answer>``);
* only whitespace before ``<think>``, between ``</think>`` and ``<answer>``, and after
  ``</answer>`` — except end-of-sequence token text at the very end
  (``<|im_end|>``, ``<|endoftext|>``, ``</s>``, ``<|eot_id|>``, ``<｜end▁of▁sentence｜>``),
  which a generation engine may leave in the decoded text and which is not the model
  writing outside the format.

``format_soft`` is a shaping reward for small models, **off by default**: a tiny base
model almost never produces the full structure by chance, so the strict 0/1 reward gives
every sample in a group the same 0 and GRPO's group-normalized advantage is zero — no
learning signal. The soft version gives 0.25 for each satisfied sub-condition: (1) one
think block opened and closed, non-empty, with no tag inside; (2) exactly one non-empty
answer block; (3) both of those, think before answer; (4) all of that, and nothing but
whitespace/EOS outside the blocks.
It equals 1.0 exactly when ``format`` does. Being partial credit, it is gameable (e.g. a
well-formed empty-reasoning shell) — use it to bootstrap, then switch to ``format``.
"""

from .extract import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN, apply_prefill
from .registry import register

_TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
_EOS_TEXTS = ("<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>", "<｜end▁of▁sentence｜>")


def _strip_eos(text: str) -> str:
    """Drop trailing whitespace and EOS token texts (a loop, not a regex: linear on any input)."""
    text = text.rstrip()
    while text.endswith(_EOS_TEXTS):
        text = text[: -len(next(eos for eos in _EOS_TEXTS if text.endswith(eos)))].rstrip()
    return text


def _parts(completion: str, example: dict) -> dict[str, bool]:
    """The four sub-conditions of the format rule, each True/False."""
    text = _strip_eos(apply_prefill(completion, example))
    counts = {tag: text.count(tag) for tag in _TAGS}
    pos = {tag: text.find(tag) for tag in _TAGS}
    think_ok = counts[THINK_OPEN] == 1 and counts[THINK_CLOSE] == 1 and pos[THINK_OPEN] < pos[THINK_CLOSE]
    if think_ok:
        inside = text[pos[THINK_OPEN] + len(THINK_OPEN) : pos[THINK_CLOSE]]
        think_ok = bool(inside.strip()) and not any(tag in inside for tag in _TAGS)
    answer_ok = counts[ANSWER_OPEN] == 1 and counts[ANSWER_CLOSE] == 1 and pos[ANSWER_OPEN] < pos[ANSWER_CLOSE]
    if answer_ok:
        answer_ok = bool(text[pos[ANSWER_OPEN] + len(ANSWER_OPEN) : pos[ANSWER_CLOSE]].strip())
    order_ok = think_ok and answer_ok and pos[THINK_CLOSE] < pos[ANSWER_OPEN]
    outside_ok = order_ok and not (
        text[: pos[THINK_OPEN]].strip()
        or text[pos[THINK_CLOSE] + len(THINK_CLOSE) : pos[ANSWER_OPEN]].strip()
        or text[pos[ANSWER_CLOSE] + len(ANSWER_CLOSE) :].strip()
    )
    return {"think": think_ok, "answer": answer_ok, "order": order_ok, "outside": outside_ok}


@register("format")
def format_reward(completion: str, example: dict) -> float:
    """1.0 if the completion is exactly ``<think>…</think><answer>…</answer>`` (see module)."""
    return 1.0 if all(_parts(completion, example).values()) else 0.0


@register("format_soft")
def format_soft(completion: str, example: dict) -> float:
    """0.25 per satisfied format sub-condition (think, answer, order, nothing outside)."""
    return 0.25 * sum(_parts(completion, example).values())
