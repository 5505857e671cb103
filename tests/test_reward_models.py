"""Reward models and reward routing (R1 stage 4): the span each reward reads, judge-score parsing,
the scalar RM's batched scoring on a tiny random-init LlamaForSequenceClassification, the judge on
a scripted engine and on the tiny causal LM, routing by example kind (unrouted rewards are never
called and add nothing), and the config checks. CPU, no network, seconds."""

from __future__ import annotations

import functools
import json
import math
from types import SimpleNamespace

import pytest
import torch

from r1.config import ConfigError, load_config
from r1.data import load_examples
from r1.models import load_tokenizer
from r1.rewards import NOT_APPLICABLE, REWARDS, RewardRuntime, load_reward_models, register, score_completions
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
from r1.train.grpo import Batch, batch_metrics, train_grpo, weighted_total

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


@pytest.fixture(scope="module")
def scalar_rm_dir(tiny_model_dir, tmp_path_factory):
    """A tiny random-init LlamaForSequenceClassification (one logit) with the tiny tokenizer."""
    from transformers import AutoConfig, LlamaForSequenceClassification

    config = AutoConfig.from_pretrained(tiny_model_dir)
    config.num_labels, config.architectures = 1, None
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("rm") / "model"
    LlamaForSequenceClassification(config).save_pretrained(path)
    load_tokenizer(str(tiny_model_dir)).save_pretrained(path)
    return path


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


# --- routing by example kind -----------------------------------------------------------------------


ROUTES = {"reasoning": ["t_reasoning"], "general": ["t_general"]}


def test_unrouted_rewards_are_not_called_and_add_nothing():
    examples = [
        {"prompt": "1+1", "answer": "2"},
        {"prompt": "Hi", "kind": "general"},
        {"prompt": "2+2", "kind": "reasoning"},
    ]
    texts = ["r0", "g1", "r2"]
    scores = score_completions(texts, examples, ["t_reasoning", "t_general"], routes=ROUTES)
    assert CALLS == {"t_reasoning": ["r0", "r2"], "t_general": [["g1"]]}  # kind defaults to reasoning
    assert scores.values["t_reasoning"][0] == 1.0 and math.isnan(scores.values["t_reasoning"][1])
    assert math.isnan(scores.values["t_general"][0]) and scores.values["t_general"][1] == 0.5
    total, valid = weighted_total(scores.values, {"t_reasoning": 2.0, "t_general": 4.0})
    assert total.tolist() == [2.0, 2.0, 2.0] and valid.all()  # 2·1 (reasoning) and 4·0.5 (general), nothing else


def test_empty_routes_keep_every_reward_on_every_example():
    examples = [{"prompt": "1+1", "answer": "2"}, {"prompt": "Hi", "kind": "general"}]
    plain = score_completions(["a", "b"], examples, ["t_reasoning", "t_general"])
    routed = score_completions(["a", "b"], examples, ["t_reasoning", "t_general"], routes={})
    assert plain.values == routed.values == {"t_reasoning": [1.0, 1.0], "t_general": [0.5, 0.5]}
    total, valid = weighted_total(plain.values, {"t_reasoning": 1.0, "t_general": 2.0})
    assert total.tolist() == [2.0, 2.0] and valid.all()


def test_weighted_total_failed_is_invalid_not_applicable_is_not():
    total, valid = weighted_total(
        {"a": [1.0, None, NOT_APPLICABLE, None], "b": [NOT_APPLICABLE, 1.0, 3.0, NOT_APPLICABLE]}, {"a": 1.0, "b": 0.5}
    )
    assert valid.tolist() == [True, False, True, False]
    assert total[0] == 1.0 and total[2] == 1.5 and total[[1, 3]].isnan().all()


def test_an_example_kind_without_a_route_is_an_error_before_any_reward_runs():
    with pytest.raises(ValueError, match=r"kind \['code'\] have no entry in rewards.routes"):
        score_completions(["x"], [{"kind": "code"}], ["t_reasoning"], routes=ROUTES)
    assert CALLS == {}


def test_per_reward_metrics_average_only_where_the_reward_applied():
    rewards = {
        "t_reasoning": [1.0, 0.0, NOT_APPLICABLE, NOT_APPLICABLE],
        "t_general": [NOT_APPLICABLE, NOT_APPLICABLE, 0.25, None],
    }
    total, valid = weighted_total(rewards, {"t_reasoning": 1.0, "t_general": 1.0})
    batch = Batch(
        [{}] * 4,
        [[1]] * 4,
        torch.zeros(4, 2, dtype=torch.long),
        torch.ones(4, dtype=torch.long),
        torch.zeros(4, dtype=torch.bool),
        ["a"] * 4,
        rewards,
        total,
        valid,
    )
    m = batch_metrics(batch, 0.0)
    assert m["reward/t_reasoning"] == 0.5 and m["reward/t_general"] == 0.25
    assert m["reward/mean"] == pytest.approx((1.0 + 0.0 + 0.25) / 3)


def test_a_batched_reward_that_raises_fails_each_of_its_samples():
    @register("t_broken_batch", replace=True, batched=True)
    def broken(completions, examples):
        raise RuntimeError("model exploded")

    @register("t_short_batch", replace=True, batched=True)
    def short(completions, examples):
        return [1.0]

    scores = score_completions(["a", "b"], [{}, {}], ["t_broken_batch", "t_short_batch"])
    assert scores.values == {"t_broken_batch": [None, None], "t_short_batch": [None, None]}
    assert scores.counts == {"rewards/t_broken_batch_errors": 2, "rewards/t_short_batch_errors": 2}
    assert (
        "model exploded" in scores.first_error["t_broken_batch"]
        and "1 values for 2" in scores.first_error["t_short_batch"]
    )


# --- config and data ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["rewards.weights.helpfulness=1"],
            "rewards.helpfulness_model must be set when rewards.weights uses helpfulness",
        ),
        (["rewards.weights.harmlessness=1"], "rewards.harmlessness_model must be set"),
        (
            ["rewards.routes={reasoning: [accuracy, format, helpful]}"],
            "names rewards that are not in rewards.weights: ['helpful']",
        ),
        (["rewards.routes={reasoning: [accuracy]}"], "sends no example kind to ['format']"),
    ],
)
def test_reward_config_errors(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    assert message in str(err.value)


def test_all_scenario_config_loads():
    cfg = load_config(
        None,
        [
            "rewards.weights={accuracy: 1, format: 0.5, helpfulness: 1, harmlessness: 1}",
            "rewards.helpfulness_model=runs/rm/checkpoints/final",
            "rewards.harmlessness_model=runs/rm/checkpoints/final",
            "rewards.routes={reasoning: [accuracy, format], general: [helpfulness, harmlessness]}",
        ],
    )
    assert cfg.rewards.routes["general"] == ["helpfulness", "harmlessness"]


def test_general_prompts_load_by_name_without_answers_and_mix_with_reasoning(tmp_path):
    general = load_examples("general")
    assert 60 <= len(general) <= 100 and all(e["kind"] == "general" and "answer" not in e for e in general)
    assert any(e["prompt"] == "Who are you?" for e in general) and len({e["id"] for e in general}) == len(general)
    mixed = tmp_path / "mixed.jsonl"
    rows = [
        {"prompt": "What is 2+3?", "answer": "5"},
        {"prompt": "Write a haiku.", "kind": "general"},
        {"prompt": "No answer, not general"},
    ]
    mixed.write_text("".join(json.dumps(r) + "\n" for r in rows))
    examples = load_examples(str(mixed), quiet=True)
    assert [(e.get("kind"), e.get("answer")) for e in examples] == [(None, "5"), ("general", None)]


def test_bundled_preference_pairs_are_well_formed():
    from r1.data.general import general_prompts, preference_pairs
    from r1.train.rm import pairs_file, read_pairs

    rows = read_pairs(pairs_file("preference_pairs"))
    assert 150 <= len(rows) <= 300 and rows == preference_pairs()  # the file is what the generator writes
    assert [json.loads(line) for line in open(pairs_file("general_prompts"), encoding="utf-8")] == general_prompts()
    assert {r["style"] for r in rows} == {"wrong", "unhelpful", "rude", "refusal", "harmful"}


# --- the trainer routes rewards -------------------------------------------------------------------------


def test_grpo_on_mixed_prompts_scores_each_kind_with_its_rewards(tiny_model_dir, scalar_rm_dir, tmp_path):
    data = tmp_path / "mixed.jsonl"
    rows = [{"prompt": "What is 2+3?", "answer": "5"}, {"prompt": "Write a haiku about rain.", "kind": "general"}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = load_config(
        None,
        [
            f"model.name={tiny_model_dir}",
            f"run.output_dir={tmp_path / 'run'}",
            "run.threads=1",
            f"data.source={data}",
            "data.template=none",
            "rollout.prompts_per_step=2",
            "rollout.samples_per_prompt=2",
            "rollout.max_new_tokens=6",
            "train.steps=1",
            "train.sample_every=1",
            "grpo.beta=0",
            "rewards.weights={t_reasoning: 1.0, helpfulness: 1.0}",
            f"rewards.helpfulness_model={scalar_rm_dir}",
            "rewards.routes={reasoning: [t_reasoning], general: [helpfulness]}",
        ],
    )
    run = train_grpo(cfg)
    metrics = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert metrics["reward/t_reasoning"] == 1.0 and isinstance(metrics["reward/helpfulness"], float)
    assert not any(k.endswith("_errors") for k in metrics)
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    by_kind = {("reward/helpfulness" in s, "reward/t_reasoning" in s) for s in samples}
    assert by_kind == {(True, False), (False, True)}  # each sample carries only the rewards that applied to it
    assert len(CALLS["t_reasoning"]) == 2  # the reasoning prompt's group only
    assert "helpfulness" in REWARDS
