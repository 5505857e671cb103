"""Routing rewards by example kind (rewards.routes, all-scenario RL): scoring, config and data
checks, the trainer. The reward models themselves: test_reward_models.py."""

from __future__ import annotations

import json
import math

import pytest
import torch

from r1.config import ConfigError, load_config
from r1.data import load_examples
from r1.rewards import NOT_APPLICABLE, REWARDS, register, score_completions
from r1.train.grpo import Batch, batch_metrics, train_grpo, weighted_total

from test_reward_models import CALLS, t_general, t_reasoning  # noqa: F401  (registers the test rewards)


@pytest.fixture(autouse=True)
def _clean():
    """Each test starts with no recorded reward calls."""
    CALLS.clear()
    yield


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
