"""r1's rewards as TRL reward functions: ``GRPOTrainer(reward_funcs=[accuracy_reward, format_reward])``.

TRL (``trl.GRPOTrainer``) calls each reward function once per batch, all by keyword:
``prompts`` and ``completions`` (one per sample), ``completion_ids``, every dataset column as a
list with one value per sample, and a few trainer objects (``trainer_state``, ``log_metric``, …).
It expects ``list[float | None]`` back, None meaning "no score" (TRL treats it as NaN and leaves it
out of the group statistics), and it logs each function as ``rewards/<__name__>/mean``.
A completion is a string for a standard dataset and a list of message dicts
(``[{"role": "assistant", "content": "…"}]``) for a conversational one; so is a prompt.

Each function here turns the batch into r1's ``(completion, example)`` pairs and scores them with
``score_completions`` on the default runtime, so a TRL run keeps what an r1 run has: every call
under a deadline, math-verify and the code sandbox in killable worker processes, and one bad
sample scoring None instead of failing the batch. r1's counted events (``rewards/accuracy_timeouts``,
``…_errors``) go to TRL's ``log_metric`` when TRL passes it.

How a batch becomes r1 examples:
* the completion is the text of its last message (a conversational one), else the string itself;
* every dataset column becomes a field of the example (``think_prefilled``, ``language``,
  ``binary``… keep their r1 meaning); ``prompt`` is the prompt's text (its last user message);
* ``accuracy`` reads the reference from the ``answer`` column, else ``solution`` (a worked
  solution is fine: its ``\\boxed{}`` value is the reference); ``code`` reads ``test`` (or
  ``tests``: HumanEval ``check(candidate)`` code) and ``entry_point``, and ``code_prompt`` if present.
  A missing column is a ValueError naming it, raised before any scoring — never a batch of silent Nones.

Importing this module does not import TRL: r1 works without it. Deliberately left out: async
reward functions, r1's reward routing by example kind (give TRL one function per reward instead),
and the reward models (``helpfulness``/``harmlessness`` need a run's loaded models; TRL takes a
reward model directly).
"""

from __future__ import annotations

import logging
from typing import Callable

from r1.rewards import REWARDS, default_runtime, score_completions

logger = logging.getLogger(__name__)

TRL_KWARGS = frozenset({"completion_ids", "trainer_state", "log_extra", "log_metric", "environments"})
# reward -> the columns it needs, each a tuple of accepted names (the first present is used) and r1's field
NEEDS: dict[str, list[tuple[tuple[str, ...], str]]] = {
    "accuracy": [(("answer", "solution"), "answer")],
    "code": [(("test", "tests"), "test"), (("entry_point",), "entry_point")],
}
TRLReward = Callable[..., list]


def message_text(content) -> str:
    """A message's ``content`` as text: a string, or the text parts of a multimodal list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def completion_text(completion) -> str:
    """The text r1 scores: the string itself, or a conversational completion's last message."""
    if isinstance(completion, str):
        return completion
    messages = list(completion)
    return message_text(messages[-1].get("content")) if messages else ""


def prompt_text(prompt) -> str:
    """A prompt as text (for the language reward's detection): the string, or the last user message."""
    if prompt is None or isinstance(prompt, str):
        return prompt or ""
    messages = list(prompt)
    users = [m for m in messages if m.get("role") == "user"] or messages
    return message_text(users[-1].get("content")) if users else ""


def to_examples(reward: str, prompts, n: int, columns: dict) -> list[dict]:
    """One r1 example per sample from TRL's dataset columns (module doc); a missing column raises ValueError."""
    data = {k: v for k, v in columns.items() if k not in TRL_KWARGS and isinstance(v, (list, tuple))}
    for key, values in data.items():
        if len(values) != n:
            raise ValueError(f"column {key!r} has {len(values)} values for {n} completions")
    examples = [{key: values[i] for key, values in data.items()} for i in range(n)]
    for accepted, field in NEEDS.get(reward, []):
        found = next((name for name in accepted if name in data), None)
        if found is None:
            wanted = " or ".join(repr(name) for name in accepted)
            raise ValueError(
                f"the r1 {reward} reward needs a dataset column {wanted}; the batch has columns {sorted(data)}"
            )
        for example in examples:
            example[field] = example[found]
    if prompts is not None and "prompt" not in data:
        for example, prompt in zip(examples, prompts):
            example["prompt"] = prompt_text(prompt)
    return examples


def score_batch(reward: str, prompts, completions, columns: dict) -> list[float | None]:
    """Score TRL's batch with the r1 reward named ``reward``: one float or None per completion."""
    completions = list(completions)
    examples = to_examples(reward, prompts, len(completions), columns)
    texts = [completion_text(c) for c in completions]
    scores = score_completions(texts, examples, [reward], runtime=default_runtime())
    log_metric = columns.get("log_metric")
    if callable(log_metric):
        for key, count in scores.counts.items():
            log_metric(key, float(count))
    if reward in scores.first_error:
        failed = sum(v is None for v in scores.values[reward])
        logger.warning(
            "r1 reward %s: %d of %d samples failed; first: %s", reward, failed, len(texts), scores.first_error[reward]
        )
    return scores.values[reward]


def accuracy_reward(completions, prompts=None, **columns) -> list[float | None]:
    """1.0 when the final answer equals the ``answer`` (else ``solution``) column, else 0.0 (r1's ``accuracy``)."""
    return score_batch("accuracy", prompts, completions, columns)


def format_reward(completions, prompts=None, **columns) -> list[float | None]:
    """1.0 when the completion is exactly ``<think>…</think><answer>…</answer>`` (r1's ``format``)."""
    return score_batch("format", prompts, completions, columns)


def language_reward(completions, prompts=None, **columns) -> list[float | None]:
    """Share of the reasoning's words in the ``language`` column's language, else the prompt's (r1's ``language``)."""
    return score_batch("language", prompts, completions, columns)


def code_reward(completions, prompts=None, **columns) -> list[float | None]:
    """Share of the ``test`` column's asserts that the last Python block passes, sandboxed (r1's ``code``)."""
    return score_batch("code", prompts, completions, columns)


def trl_reward(name: str) -> TRLReward:
    """Any registered r1 reward (``REWARDS``; e.g. ``format_soft`` or your own) as a TRL reward function,
    logged as ``name``. Unlike the four above it is not a module attribute, so it does not pickle."""
    if name not in REWARDS:
        raise ValueError(f"unknown r1 reward {name!r}; registered: {', '.join(sorted(REWARDS))}")
    if getattr(REWARDS[name], "batched", False):
        raise ValueError(f"r1 reward {name!r} needs a run's reward models; give TRL the reward model itself")

    def reward(completions, prompts=None, **columns) -> list[float | None]:
        return score_batch(name, prompts, completions, columns)

    reward.__name__ = reward.__qualname__ = name
    reward.__doc__ = f"r1's {name!r} reward with TRL's signature (r1.integrations.trl)."
    return reward
