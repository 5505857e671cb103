"""Rewards: verifiable rule-based ones (docs/method.md §3), and reward models for general prompts (§5).

Rewards are pure functions ``(completion, example) -> float`` in ``REWARDS``:

* ``accuracy`` — 1 if the final answer is mathematically equal to ``example["answer"]``
  (math-verify in sandboxed worker processes with a wall-clock limit);
* ``code`` — the fraction of a code task's tests (HumanEval ``check``) that the completion's
  last Python block passes, run in the sandbox of ``sandbox.py`` (docs/sandbox.md);
* ``format`` — 1 if the completion is ``<think>…</think><answer>…</answer>`` (R1-Zero);
* ``format_soft`` — partial-credit shaping variant of ``format`` (off by default);
* ``language`` — share of the reasoning's words in the prompt's language (R1 stage 2);
* ``helpfulness`` / ``harmlessness`` — a reward model's score of the final summary / of the
  whole response (R1 stage 4, general prompts; ``models.py``, loaded by ``load_reward_models``).

The trainer calls ``score_completions`` (optionally routing rewards by example kind; every reward
call has a wall-clock deadline, ``deadline.py``) after checking its reward names with
``check_reward_names``; evaluation and majority voting reuse ``extract_answer`` and
``answers_equivalent``. A run's verifier pool and reward models are one object, its
``RewardRuntime`` (``runtime.py``), built from ``rewards:`` and passed to ``score_completions``;
direct calls use the default runtime, which ``configure`` sizes.
See docs/rewards.md for the exact rules and measured numbers.
"""

from . import accuracy as _accuracy  # noqa: F401  (registers "accuracy")
from . import code as _code  # noqa: F401  (registers "code")
from . import format as _format  # noqa: F401  (registers "format", "format_soft")
from . import language as _language  # noqa: F401  (registers "language")
from . import control as _control  # noqa: F401  (registers "random")
from . import models as _models  # noqa: F401  (registers "helpfulness", "harmlessness")
from .accuracy import answers_equivalent
from .extract import extract_answer
from .models import load_reward_models
from .registry import REWARDS, RewardFn, check_reward_names, register
from .runtime import RewardRuntime, configure, default_runtime, shutdown
from .scoring import NOT_APPLICABLE, Scores, applies, check_kinds, score_completions

__all__ = [
    "NOT_APPLICABLE",
    "REWARDS",
    "RewardFn",
    "RewardRuntime",
    "Scores",
    "answers_equivalent",
    "applies",
    "check_kinds",
    "check_reward_names",
    "configure",
    "default_runtime",
    "load_reward_models",
    "extract_answer",
    "register",
    "score_completions",
    "shutdown",
]
