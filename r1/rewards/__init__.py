"""Verifiable rewards (SPEC §3): rule-based, no neural reward model.

Rewards are pure functions ``(completion, example) -> float`` in ``REWARDS``:

* ``accuracy`` — 1 if the final answer is mathematically equal to ``example["answer"]``
  (math-verify in sandboxed worker processes with a wall-clock limit);
* ``format`` — 1 if the completion is ``<think>…</think><answer>…</answer>`` (R1-Zero);
* ``format_soft`` — partial-credit shaping variant of ``format`` (off by default);
* ``language`` — share of the reasoning's words in the prompt's language (R1 stage 2).

The trainer calls ``score_completions``; evaluation and majority voting reuse
``extract_answer`` and ``answers_equivalent``. ``configure`` sizes the worker pool.
See docs/rewards.md for the exact rules and measured numbers.
"""

from . import accuracy as _accuracy  # noqa: F401  (registers "accuracy")
from . import format as _format  # noqa: F401  (registers "format", "format_soft")
from . import language as _language  # noqa: F401  (registers "language")
from .accuracy import answers_equivalent
from .extract import extract_answer
from .pool import configure, shutdown
from .registry import REWARDS, RewardFn, register
from .scoring import Scores, score_completions

__all__ = [
    "REWARDS",
    "RewardFn",
    "Scores",
    "answers_equivalent",
    "configure",
    "extract_answer",
    "register",
    "score_completions",
    "shutdown",
]
