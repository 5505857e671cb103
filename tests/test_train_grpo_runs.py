"""GRPO on the tiny random model, continued: dynamic sampling, the reference policy, and whole runs
(the bundled model, periodic eval, the time budget). Helpers and test rewards: test_train_grpo.py.
"""

from __future__ import annotations

import json

import pytest
from transformers import AutoModelForCausalLM

import r1.train.grpo as grpo
from r1.config import load_config
from r1.models import load_model
from r1.rewards import register
from r1.train.checkpoint import load_reference
from r1.train.grpo import collect, train_grpo
from r1.train.run import IndexSampler
from test_train_grpo import (
    assert_params_equal,
    load_params,
    make_cfg,
    params,
    read_metrics,
    step_run,
    tiny_examples,
)


# --- 6. dynamic sampling ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dynamic,rounds,kept_groups,drawn,zero_frac",
    [
        (False, 0, [0, 1], 2, 1 / 2),
        (True, 0, [1], 2, 1 / 2),
        (True, 1, [1, 2], 3, 1 / 3),
        (True, 3, [1, 2], 3, 1 / 3),  # stops drawing once the batch is full
    ],
)
def test_dynamic_sampling_drops_constant_groups_and_refills(
    tiny,
    tiny_model_dir,
    tmp_path,
    script,
    dynamic,
    rounds,
    kept_groups,
    drawn,
    zero_frac,  # noqa: F811 (pytest fixtures imported above)
):
    model, tokenizer = tiny
    cfg = make_cfg(
        tiny_model_dir,
        tmp_path,
        "rewards.weights={t_script: 1.0}",
        f"grpo.dynamic_sampling={str(dynamic).lower()}",
        f"grpo.dynamic_sampling_rounds={rounds}",
    )
    groups = [[1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]]  # group 0 is constant
    script[:] = [r for g in groups for r in g]
    examples, sampler = tiny_examples(tokenizer), IndexSampler(16, 0)
    order = IndexSampler(16, 0).take(3)
    batch, frac, _ = collect(step_run(model, tokenizer, examples, sampler, cfg))
    assert sampler.position == drawn
    assert frac == pytest.approx(zero_frac)
    assert [e["id"] for e in batch.examples] == [examples[order[g]]["id"] for g in kept_groups for _ in range(4)]
    assert batch.total.tolist() == [r for g in kept_groups for r in groups[g]]
    assert batch.completion_ids.shape[0] == len(batch.prompt_ids) == len(batch.texts) == 4 * len(kept_groups)


def test_a_step_whose_groups_are_all_dropped_trains_nothing(tiny_model_dir, tmp_path):
    register("t_const", replace=True)(lambda completion, example: 1.0)
    run = train_grpo(
        make_cfg(
            tiny_model_dir, tmp_path, "train.steps=1", "rewards.weights={t_const: 1.0}", "grpo.dynamic_sampling=true"
        )
    )
    (m,) = read_metrics(run)
    assert (m["samples"], m["groups/zero_variance_frac"], m["nonfinite_steps"]) == (0, 1.0, 0)
    assert_params_equal(load_params(run / "checkpoints" / "final"), load_params(tiny_model_dir))


# --- 7. the reference policy -------------------------------------------------------------------


def capture_references(monkeypatch) -> list:
    seen, real = [], grpo.prepare_update

    def spy(batch, policy, reference, cfg, pad_id):
        seen.append(reference)
        return real(batch, policy, reference, cfg, pad_id)

    monkeypatch.setattr(grpo, "prepare_update", spy)
    return seen


def test_beta_zero_builds_no_reference(tiny_model_dir, tmp_path, monkeypatch):
    seen = capture_references(monkeypatch)
    run = train_grpo(make_cfg(tiny_model_dir, tmp_path, "train.steps=2", "grpo.beta=0", "grpo.ref_reset_steps=1"))
    assert seen == [None, None]
    assert all("kl" not in m for m in read_metrics(run))
    assert not (run / "checkpoints" / "final" / "reference.safetensors").exists()


@pytest.mark.parametrize("ref_reset_steps", [0, 1])
def test_reference_starts_as_the_policy_and_is_reset_to_it(tiny_model_dir, tmp_path, monkeypatch, ref_reset_steps):
    seen = capture_references(monkeypatch)
    # k1 (= logp - ref_logp) is linear in the difference, so "KL = 0" cannot hide a small mismatch.
    run = train_grpo(
        make_cfg(
            tiny_model_dir,
            tmp_path,
            "train.steps=2",
            "grpo.beta=0.1",
            "grpo.kl_estimator=k1",
            f"grpo.ref_reset_steps={ref_reset_steps}",
        )
    )
    first, second = read_metrics(run)
    assert abs(first["kl"]) < 1e-6  # μ = 1: the first step's policy is the reference
    reference, policy = params(seen[-1]), load_params(run / "checkpoints" / "final")
    if ref_reset_steps:
        assert abs(second["kl"]) < 1e-6  # reset after step 1
        assert_params_equal(reference, policy)  # and again after step 2
        saved = load_model(str(tiny_model_dir))[0]
        assert load_reference(run / "checkpoints" / "final", saved)
        assert_params_equal(params(saved), policy)
    else:
        assert abs(second["kl"]) > 1e-4
        assert_params_equal(reference, load_params(tiny_model_dir))  # still the initial model


# --- integration on the real model ---------------------------------------------------------------


@pytest.mark.slow
def test_two_grpo_steps_on_the_bundled_model(smollm2_dir, tmp_path):
    cfg = load_config(
        None,
        [
            # Kept cheap: no reference model (β = 0) and no instruction text in the prompts.
            f"model.name={smollm2_dir}",
            f"run.output_dir={tmp_path}",
            "run.threads=1",
            "data.size=64",
            "train.steps=2",
            "grpo.beta=0",
            "data.template=none",
            "rollout.prompts_per_step=2",
            "rollout.samples_per_prompt=2",
            "rollout.max_new_tokens=16",
            "train.micro_batch_size=4",
        ],
    )
    assert list(cfg.rewards.weights) == ["accuracy", "format"]
    run = train_grpo(cfg)
    lines = read_metrics(run)
    assert [m["step"] for m in lines] == [1, 2]
    for m in lines:
        assert m["loss"] is not None and m["nonfinite_steps"] == 0 and m["samples"] == 4
        assert m["reward/accuracy"] is not None and m["reward/format"] is not None
    model = AutoModelForCausalLM.from_pretrained(run / "checkpoints" / "final")
    assert sum(p.numel() for p in model.parameters()) == 134_515_008


def test_periodic_eval_is_logged_and_leaves_training_unchanged(tiny_model_dir, tmp_path):
    # eval.every_steps=1 evaluates a fixed subset after every step (pass@1, format, length) in a
    # forked RNG: the training trajectory must be bit-identical to the run without evaluation.
    common = ["train.steps=2", "eval.benchmark=arithmetic", "eval.limit=2", "eval.k=2", "eval.max_new_tokens=4"]
    plain = read_metrics(train_grpo(make_cfg(tiny_model_dir, tmp_path / "plain", *common)))
    evald = read_metrics(train_grpo(make_cfg(tiny_model_dir, tmp_path / "eval", *common, "eval.every_steps=1")))
    assert [m["step"] for m in evald] == [1, 2]
    for with_eval, without in zip(evald, plain):
        assert 0.0 <= with_eval["eval/pass@1"] <= 1.0 and 0.0 <= with_eval["eval/format"] <= 1.0
        assert with_eval["eval/mean_length"] > 0
        for key in ("loss", "reward/mean", "grad_norm", "completion_len/mean"):
            assert with_eval[key] == without[key], key
    assert "eval/pass@1" not in plain[0]


def test_the_periodic_eval_of_arithmetic_is_the_start_of_the_demos_heldout_set():
    from r1.config import load_config
    from r1.data import unseen_heldout

    cfg = load_config(None, ["eval.benchmark=arithmetic", "eval.limit=256", "eval.periodic_limit=64"])
    subset = grpo.load_eval_subset(cfg, None)
    assert subset == unseen_heldout(cfg.data, 256, seed=cfg.pipeline.heldout_seed)[:64]
    cfg = load_config(None, ["eval.benchmark=gsm8k", "eval.limit=5"])  # no periodic_limit: eval.limit
    assert len(grpo.load_eval_subset(cfg, None)) == 5


def test_a_time_budget_stops_the_run_early_with_a_final_checkpoint(tiny_model_dir, tmp_path, monkeypatch):
    clock = iter(float(t) for t in range(0, 10_000, 10))  # every perf_counter call advances 10 s
    monkeypatch.setattr(grpo.time, "perf_counter", lambda: next(clock))
    run = train_grpo(make_cfg(tiny_model_dir, tmp_path, "train.steps=50", "train.max_time_s=1"))
    assert [m["step"] for m in read_metrics(run)] == [1]
    assert json.loads((run / "checkpoints" / "final" / "checkpoint.json").read_text())["step"] == 1
