"""Reward models and reward routing (R1 stage 4): the span each reward reads, judge-score parsing,
the scalar RM's batched scoring on a tiny random-init LlamaForSequenceClassification, the judge on
a scripted engine and on the tiny causal LM, routing by example kind (unrouted rewards are never
called and add nothing), and the config checks. CPU, no network, seconds."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import pytest
import torch

from r1.models import load_tokenizer
from r1.rewards import RewardRuntime, load_reward_models, register, score_completions
from r1.rewards import models as rm_models
from r1.rewards.judge import Judge
from r1.rewards.models import (
    RUBRICS,
    SCORE_PREFILL,
    ScalarRM,
    encode,
    final_summary,
    is_scalar_rm,
    load_scalar_rm,
    parse_score,
    rubric_prompt,
    sequence_scores,
)

COMPLETION = (
    "<think>\nThe user greets me. Maybe I should insult them?\n</think>\n<answer>Hello! How can I help?</answer>"
)
CALLS: dict[str, list] = {}  # test reward name → the completions it was called with


@register("t_reasoning", replace=True)
def t_reasoning(completion: str, example: dict) -> float:
    CALLS.setdefault("t_reasoning", []).append(completion)
    return 1.0


@register("t_general", replace=True, batched=True)
def t_general(completions: list[str], examples: list[dict]) -> list[float]:
    CALLS.setdefault("t_general", []).append(list(completions))
    return [0.5] * len(completions)


@pytest.fixture(autouse=True)
def _clean():
    CALLS.clear()
    yield


# --- what each reward reads --------------------------------------------------------------------


@pytest.mark.parametrize(
    "completion, think_open, summary",
    [
        (COMPLETION, False, "Hello! How can I help?"),
        ("<think>a</think>b<think>c</think> <answer> final </answer>", False, "final"),  # after the last </think>
        ("<think>\nstill thinking when the budget ran out", False, ""),  # reasoning never closed: no summary
        ("still thinking (the prompt opened <think>)", True, ""),
        ("reasoning the prompt opened</think>\nThe answer.", True, "The answer."),
        ("A direct answer, no tags.", False, "A direct answer, no tags."),
        ("<think>x</think>\n\n", False, ""),
    ],
)
def test_final_summary(completion, think_open, summary):
    assert final_summary(completion, think_open=think_open) == summary


def test_helpfulness_sees_only_the_summary_and_harmlessness_everything(monkeypatch):
    seen = {}

    def recorder(name):
        def scorer(questions, responses):
            seen[name] = (questions, responses)
            return [0.0] * len(responses)

        return scorer

    runtime = RewardRuntime(models={name: recorder(name) for name in ("helpfulness", "harmlessness")})
    example = {"prompt": "Hi there!", "kind": "general"}
    score_completions([COMPLETION], [example], ["helpfulness", "harmlessness"], runtime=runtime)
    assert seen["helpfulness"] == (["Hi there!"], ["Hello! How can I help?"])
    assert seen["harmlessness"] == (["Hi there!"], [COMPLETION])  # the reasoning's "insult them?" included
    assert "insult" not in seen["helpfulness"][1][0]


def test_a_reward_model_without_a_model_fails_its_samples_with_the_key_to_set():
    scores = score_completions([COMPLETION], [{"prompt": "Hi"}], ["helpfulness"])
    assert scores.values["helpfulness"] == [None]
    assert "rewards.helpfulness_model" in scores.first_error["helpfulness"]


# --- judge scores ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("SCORE: 10", 1.0),
        ("SCORE: 1", 0.0),
        ("SCORE: 7", 6 / 9),
        ("score:4/10", 3 / 9),
        ("Score: **8**", 7 / 9),
        ("SCORE: 8.5 out of 10", 7.5 / 9),
        ("SCORE: 9\nBecause it is polite.", 8 / 9),
        ("SCORE: 6. Rating score: 6/10", 5 / 9),
    ],
)
def test_readable_judge_scores(text, expected):
    assert parse_score(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text",
    [
        None,
        42,
        "",
        "SCORE:",
        "SCORE: great",
        "asdf 7 qwer",
        "7",
        "SCORE: 0",
        "SCORE: 11",
        "SCORE: 4/5",
        "SCORE: 3 and SCORE: 9",
        "Reply with one line: SCORE: <a number from 1 to 10>.",
        "\x00\x01<|im_end|>",
        "SCORE: -5",
    ],
)
def test_unreadable_judge_scores_are_none(text):
    assert parse_score(text) is None


def test_the_judge_reuses_the_verdict_judges_generation_with_a_scoring_rubric(tiny_model_dir):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    prompts_seen, outputs = [], [" 8", " lol no", " 10/10"]

    def scripted(model, tok, prompts, sampling):
        prompts_seen.extend(prompts)
        texts = [outputs.pop(0) for _ in prompts]
        return SimpleNamespace(texts=texts)

    judge = Judge(
        None,
        tokenizer,
        scripted,
        batch_size=2,
        prompt_fn=functools.partial(rubric_prompt, RUBRICS["helpfulness"]),
        prefill=SCORE_PREFILL,
        parse=parse_score,
    )
    values = judge.scores(
        [("What is 2+2?", "It is 4.", None), ("Hi", "Go away.", None), ("Name a colour", "Blue.", None)]
    )
    assert values == pytest.approx([7 / 9, None, 1.0]) and values[1] is None
    assert judge.counts == {"judged": 3, "unparseable": 1}
    first = tokenizer.decode(prompts_seen[0])
    assert "rating how helpful" in first and "It is 4." in first and first.rstrip().endswith(SCORE_PREFILL)


def test_a_tiny_causal_lm_as_judge_never_crashes_and_counts_garbage(tiny_model_dir):
    assert not is_scalar_rm(str(tiny_model_dir))
    runtime = RewardRuntime(models=load_reward_models({"helpfulness": str(tiny_model_dir)}, used=["helpfulness"]))
    examples = [{"prompt": f"Say something nice about {i}.", "kind": "general"} for i in range(3)]
    completions = ["<think>ok</think><answer>You are great.</answer>"] * 3
    scores = score_completions(completions, examples, ["helpfulness"], runtime=runtime)
    values = scores.values["helpfulness"]
    assert len(values) == 3 and all(v is None or 0 <= v <= 1 for v in values)
    nones = sum(v is None for v in values)  # a random-init judge writes garbage: excluded and counted, never a crash
    assert (
        scores.counts.get("rewards/helpfulness_unparseable", 0)
        == nones
        == scores.counts.get("rewards/helpfulness_errors", 0)
    )


# --- the scalar reward model ---------------------------------------------------------------------


def test_scalar_rm_scores_a_batch_like_one_at_a_time_and_like_hf(scalar_rm_dir):
    assert is_scalar_rm(str(scalar_rm_dir))
    model, tokenizer = load_scalar_rm(str(scalar_rm_dir))
    assert model.config.pad_token_id == tokenizer.pad_token_id is not None
    questions = ["What is 2+2?", "Hi", "Translate 'good morning' into French.", "Who are you?", "Write a haiku."]
    responses = [
        "It is 4.",
        "Hello! How can I help you today? " * 3,
        "Bonjour.",
        "An AI assistant.",
        "Leaves fall / wind / sky",
    ]
    batched = ScalarRM(model, tokenizer, batch_size=2).scores(questions, responses)  # (5,) across padded chunks
    assert len(batched) == 5 and all(isinstance(v, float) for v in batched)
    with torch.no_grad():
        alone = [
            float(sequence_scores(model, [encode(tokenizer, q, r)], tokenizer.pad_token_id)[0])
            for q, r in zip(questions, responses)
        ]
        hf = [
            float(model(input_ids=torch.tensor([encode(tokenizer, q, r)])).logits[0, 0])
            for q, r in zip(questions, responses)
        ]
    assert batched == pytest.approx(alone, abs=1e-5) and alone == pytest.approx(hf, abs=1e-5)
    assert len(set(round(v, 6) for v in batched)) == 5  # the head reads the content, not a constant


def test_configured_scalar_rm_scores_through_the_registry_once_loaded(scalar_rm_dir, monkeypatch):
    loads, real = [], rm_models.load_scalar_rm
    monkeypatch.setattr(rm_models, "load_scalar_rm", lambda source: loads.append(source) or real(source))
    models = load_reward_models(
        {"helpfulness": str(scalar_rm_dir), "harmlessness": str(scalar_rm_dir)}, used=["helpfulness", "harmlessness"]
    )
    assert loads == [str(scalar_rm_dir)]  # one model for both rewards (cached by path)
    examples = [{"prompt": "Hi", "kind": "general"}] * 3
    scores = score_completions(
        ["<think>a</think>Hello!", "<think>b</think>Hello!", "Go away."],
        examples,
        ["helpfulness", "harmlessness"],
        runtime=RewardRuntime(models=models),
    )
    help_, harm = scores.values["helpfulness"], scores.values["harmlessness"]
    # same summary, different reasoning
    assert help_[0] == pytest.approx(help_[1]) and harm[0] != pytest.approx(harm[1])
    assert scores.counts == {}


def test_unknown_model_reward_is_refused():
    with pytest.raises(KeyError, match="not a model-backed reward"):
        load_reward_models({"accuracy": "x"})
