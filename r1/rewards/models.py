"""Reward models for general prompts (R1 stage 4): a trained scalar head, or a causal LM as judge.

All-scenario RL (docs/method.md §5; DeepSeek-R1 §2.3.4) scores prompts that have no checkable answer with
reward models of human preference, each reading its own span of the completion:
* `helpfulness` sees only the final summary (`final_summary`: the text after `</think>`, without
  the `<answer>` tags), so the score is about what the user reads and does not reach into the
  reasoning;
* `harmlessness` sees the whole completion, reasoning included, because harm can surface there.

Both go through one interface, a scorer `(questions, responses) -> list[float | None]`, of one of
two kinds — `load_scorer` picks it from the checkpoint's architecture:
* a scalar RM (`ScalarRM`; a `*ForSequenceClassification` checkpoint, as `r1 rm` writes): a
  one-logit head on a causal LM, applied to the hidden state of the last token of the exchange
  rendered as a chat (`rm_text`). Its scores are unbounded logits; only differences mean anything
  (Bradley–Terry), and GRPO's group-normalized advantages use nothing else.
* a generative judge (any other causal LM): `r1.rewards.judge.Judge` with a 1–10 rubric per
  reward and `SCORE:` pre-filled; `parse_score` maps the score to (s − 1)/9 ∈ [0, 1]. Unreadable
  output is None: the sample is excluded and counted (`rewards/<name>_unparseable` and `_errors`).

The rewards are registered `batched=True`: one call per rollout batch, `BATCH_SIZE` sequences per
forward pass under `torch.no_grad`. A run loads its models once, at start (`load_reward_models`
with `rewards.helpfulness_model` / `rewards.harmlessness_model`, inside `RewardRuntime.build`), one
load per path, so both rewards can share one; the scorers live in the run's `RewardRuntime`
(runtime.py), which the rewards receive as `runtime`. torch and transformers are imported only when a model is loaded:
the accuracy reward's worker processes import this package too.

Deliberately left out: pairwise judging, reward-model ensembles, and running the reward model on
another device or in another process.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from typing import Callable, Iterable

from .judge import MAX_PARSE_CHARS, _agree, _clip
from .registry import note, register

BATCH_SIZE = 16  # sequences per reward-model forward pass
MAX_TOKENS = 1024  # a longer exchange keeps its last tokens: the score is read at the end
SCORE_PREFILL = "SCORE:"
JUDGE_MAX_NEW_TOKENS = 8  # the score only

RUBRICS = {
    "helpfulness": (
        "You are rating how helpful an assistant's answer is.\n\nQuestion:\n{question}\n\nAnswer:\n{response}\n\n"
        "Rate the answer from 1 (useless, wrong, rude or off-topic) to 10 (correct, complete, clear and polite). "
        "Reply with one line: SCORE: <a number from 1 to 10>."
    ),
    "harmlessness": (
        "You are checking an assistant's response, including its reasoning, for harm.\n\nRequest:\n{question}\n\n"
        "Response:\n{response}\n\nRate the response from 1 (harmful: helps deceive, harass, endanger or break the law, "
        "or is abusive) to 10 (entirely safe and respectful). Reply with one line: SCORE: <a number from 1 to 10>."
    ),
}
Scorer = Callable[[list[str], list[str]], list]  # (questions, responses) → scores (None = unreadable)


# ---------------------------------------------------------------------------------------------
# What each reward reads, and how a judge's score is read


def final_summary(completion: str, *, think_open: bool = False) -> str:
    """The span the helpfulness reward scores: the text after the last `</think>`, `<answer>` tags removed.

    A completion whose reasoning never closes (it opened `<think>`, or the prompt did:
    `think_open`) has no summary and gives "". Without any think tags it is all summary.

    >>> final_summary("<think>Paris, surely.</think>\\n<answer>The capital is Paris.</answer>")
    'The capital is Paris.'
    """
    if "</think>" in completion:
        completion = completion.rsplit("</think>", 1)[1]
    elif think_open or "<think>" in completion:
        return ""
    return re.sub(r"</?answer>", "", completion).strip()


_SCORE = re.compile(r"score[\s:=*]{0,6}(\d+(?:\.\d+)?)(?:\s*(?:/|out\s+of)\s*(\d+(?:\.\d+)?))?", re.IGNORECASE)


def parse_score(text: str | None) -> float | None:
    """A judge's `SCORE: s` with s in [1, 10] (optionally `s/10`) → (s − 1)/9 ∈ [0, 1]; else None.

    Every `score` marker must give the same readable value; out of range, another scale
    (`4/5`), no marker, contradictions and non-text are None. Never raises.

    >>> parse_score("SCORE: 10"), parse_score("score: 4/10"), parse_score("SCORE: 12"), parse_score("great!")
    (1.0, 0.3333333333333333, None, None)
    """
    if not isinstance(text, str):
        return None
    values = []
    for number, scale in _SCORE.findall(text[:MAX_PARSE_CHARS]):
        score = float(number)
        readable = (not scale or float(scale) == 10) and 1 <= score <= 10
        values.append((score - 1) / 9 if readable else None)
    return _agree(values)


def rubric_prompt(rubric: str, question: str, response: str, reference: str | None = None) -> str:
    """`rubric` with its fields filled in (the `Judge.prompt_fn` signature; `reference` unused)."""
    return rubric.format(question=_clip(question), response=_clip(response, keep_end=True))


# ---------------------------------------------------------------------------------------------
# The scalar reward model


def rm_text(tokenizer, question: str, response: str) -> str:
    """The exchange a scalar RM scores (training and scoring alike): the chat template's user and
    assistant turns, or `User: …\\nAssistant: …` for a tokenizer without one."""
    if getattr(tokenizer, "chat_template", None):
        turns = [{"role": "user", "content": question}, {"role": "assistant", "content": response}]
        return tokenizer.apply_chat_template(turns, tokenize=False)
    return f"User: {question}\nAssistant: {response}"


def encode(tokenizer, question: str, response: str, max_tokens: int | None = None) -> list[int]:
    """Token ids of `rm_text`, keeping the last `max_tokens` (None = all)."""
    chat = bool(getattr(tokenizer, "chat_template", None))  # a rendered chat carries its own special tokens
    ids = tokenizer(rm_text(tokenizer, question, response), add_special_tokens=not chat)["input_ids"]
    return ids[-max_tokens:] if max_tokens else ids


def sequence_scores(model, sequences: list[list[int]], pad_id: int):
    """The score head on each sequence's last-token hidden state → (B,) float32 scores.

    Sequences are right-padded; the last position comes from their lengths, never from comparing
    ids with `pad_id` (which is often the EOS token). Gradients flow when the caller allows them.
    """
    import torch
    from torch.nn.utils.rnn import pad_sequence

    device = next(model.parameters()).device
    lengths = torch.tensor([len(s) for s in sequences], device=device)  # (B,)
    # (B, T)
    ids = pad_sequence([torch.tensor(s, device=device) for s in sequences], batch_first=True, padding_value=pad_id)
    mask = (torch.arange(ids.shape[1], device=device)[None, :] < lengths[:, None]).long()  # (B, T)
    hidden = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, T, H)
    last = hidden[torch.arange(len(sequences), device=device), lengths - 1]  # (B, H)
    return model.score(last).squeeze(-1).float()  # (B,)


@dataclass
class ScalarRM:
    model: object
    tokenizer: object
    batch_size: int = BATCH_SIZE
    max_tokens: int = MAX_TOKENS

    def scores(self, questions: list[str], responses: list[str]) -> list[float]:
        """One score per (question, response), batched by similar length under no_grad."""
        import torch

        seqs = [encode(self.tokenizer, q, r, self.max_tokens) for q, r in zip(questions, responses)]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))  # similar lengths together: less padding
        out = [0.0] * len(seqs)
        with torch.no_grad():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                values = sequence_scores(self.model, [seqs[i] for i in chunk], self.tokenizer.pad_token_id).tolist()
                for i, value in zip(chunk, values):
                    out[i] = value
        return out


def load_scalar_rm(name: str, *, dtype: str = "float32"):
    """(model, tokenizer) of a scalar RM: an `r1 rm` checkpoint, or a causal LM given a new,
    randomly initialized one-logit head (the starting point of `r1 rm`)."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    from r1.models import DTYPES, ModelLoadError, load_tokenizer, resolve

    hf_logging.disable_progress_bar()
    source = resolve(name)
    try:
        tokenizer = load_tokenizer(source)
        model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1, dtype=DTYPES[dtype])
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"could not load '{name}' as a scalar reward model: {err}") from None
    if not hasattr(model, "score"):
        raise ModelLoadError(
            f"'{name}': {type(model).__name__} has no `score` head; r1's reward models support Llama/Qwen2-style models"
        )
    # HF's own forward needs it for batches; saved with the checkpoint
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), tokenizer


def is_scalar_rm(source: str) -> bool:
    """True when the model folder/hub id holds a sequence-classification (reward model) checkpoint."""
    from transformers import AutoConfig

    return any(a.endswith("ForSequenceClassification") for a in AutoConfig.from_pretrained(source).architectures or [])


# ---------------------------------------------------------------------------------------------
# Loading: which model each reward uses, loaded once per run


def load_scorer(model: str, reward: str, cache: dict | None = None) -> Scorer:
    """The scorer for `reward` on `model`: a scalar RM when the checkpoint is one, else a judge
    with the reward's rubric (greedy, so a Llama/Qwen2 model: the fast engine's). `cache`
    ((resolved path, kind) → (model, tokenizer)) lets several rewards share one loaded model."""
    from r1.models import load_model, resolve

    from .judge import load_judge

    cache = {} if cache is None else cache
    source = resolve(model)
    kind = "scalar" if is_scalar_rm(source) else "causal"
    if (source, kind) not in cache:
        cache[(source, kind)] = (load_scalar_rm if kind == "scalar" else load_model)(source)
    if kind == "scalar":
        return ScalarRM(*cache[(source, kind)]).scores
    lm, tokenizer = cache[(source, kind)]
    judge = load_judge(
        model,
        model=lm,
        tokenizer=tokenizer,
        max_new_tokens=JUDGE_MAX_NEW_TOKENS,
        temperature=0.0,
        batch_size=BATCH_SIZE,
    )
    judge = dataclasses.replace(
        judge, prompt_fn=functools.partial(rubric_prompt, RUBRICS[reward]), prefill=SCORE_PREFILL, parse=parse_score
    )
    return lambda questions, responses: judge.scores([(q, r, None) for q, r in zip(questions, responses)])


def load_reward_models(paths: dict[str, str | None], *, used: Iterable[str] = ()) -> dict[str, Scorer]:
    """The scorer of each model-backed reward in `used` that `paths` (reward → model name or path)
    points at, loaded now so a wrong path fails before training starts; one load per path."""
    used, cache, scorers = set(used), {}, {}
    for reward, model in paths.items():
        if reward not in RUBRICS:
            raise KeyError(f"'{reward}' is not a model-backed reward (those are: {', '.join(RUBRICS)})")
        if model and reward in used:
            scorers[reward] = load_scorer(model, reward, cache)
    return scorers


def _score(reward: str, examples: list[dict], responses: list[str], runtime) -> list:
    models = runtime.models if runtime is not None else {}
    if reward not in models:
        raise RuntimeError(
            f"reward '{reward}' has no model: set rewards.{reward}_model (an `r1 rm` checkpoint, or a causal LM to "
            "use as a judge)"
        )
    values = models[reward]([e["prompt"] for e in examples], responses)
    for value in values:
        if value is None:
            note("unparseable")
    return values


@register("helpfulness", batched=True, uses_runtime=True)
def helpfulness(completions: list[str], examples: list[dict], runtime=None) -> list:
    """The reward model's score of each completion's final summary only (`final_summary`)."""
    return _score(
        "helpfulness",
        examples,
        [final_summary(c, think_open=bool(e.get("think_prefilled"))) for c, e in zip(completions, examples)],
        runtime,
    )


@register("harmlessness", batched=True, uses_runtime=True)
def harmlessness(completions: list[str], examples: list[dict], runtime=None) -> list:
    """The reward model's score of each whole completion, reasoning included."""
    return _score("harmlessness", examples, list(completions), runtime)
