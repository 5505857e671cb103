"""The 2025–26 options of the GRPO step, end to end on the tiny model (the math itself: tests/test_rl_*.py).

Each test runs the real trainer (or its update half on a hand-built batch) and checks a property that
fails when the option is not wired: the policy losses change the update, the advantage baselines
reach the advantages, the engine's log-probs give the logged mismatch and the correction's weights,
the control rewards replace what the run trains on while the real accuracy is still logged, and
one-step off-policy rollouts train on batches sampled from weights one update old.

Mutations of the step checked with scripts/mutate_grpo.py, each killed by a test here: the policy
loss not passed on (always "grpo"), the advantage baseline not passed on, the top-entropy selection
dropped, the mismatch weights computed but not applied, the control ignored.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch

from r1.config import ConfigError
from r1.eval.report import make_report
from r1.rewards import register
from r1.rewards.control import control_weights
from r1.rl import group_advantages
from r1.train.grpo import TrainingError, policy_update, prepare_update, train_grpo
from r1.train.optim import build_optimizer
from r1.train.update import UpdateSettings
from test_train_grpo import hand_batch, make_cfg, params, read_metrics


def update_with(model, tokenizer, batch, cfg) -> tuple[dict, dict]:
    """One update of a copy of `model` on `batch`; (metrics, parameter change)."""
    policy = copy.deepcopy(model)
    before = params(policy)
    optimizer, scheduler = build_optimizer(policy, cfg.optim, total_steps=4)
    settings = UpdateSettings.of(cfg)
    inputs = prepare_update(batch, policy, None, settings, tokenizer.pad_token_id)
    metrics = policy_update(policy, optimizer, scheduler, batch, inputs, settings, tokenizer.pad_token_id)
    return metrics, {k: v - before[k] for k, v in params(policy).items()}


REWARDS = [1.0, 0.0, 0.5, 0.25, 0.0, 1.0, 1.0, 0.0]
STOPS = [3, 5, None, 2, 6, None, 4, 1]


@pytest.mark.parametrize("loss", ["gspo", "cispo", "sapo", "gmpo"])
def test_each_policy_loss_reaches_the_update(tiny, tiny_model_dir, tmp_path, loss):
    """μ = 2 so the second pass sees ratios ≠ 1, where the variants differ from GRPO's token clip."""
    model, tokenizer = tiny
    batch = hand_batch(tokenizer, REWARDS, STOPS, G=4, T=7)
    common = ("grpo.beta=0", "grpo.ppo_epochs=2", "optim.lr=0.05", "grpo.clip_low=0.05", "grpo.clip_high=0.05")
    _, grpo = update_with(model, tokenizer, batch, make_cfg(tiny_model_dir, tmp_path, *common))
    metrics, other = update_with(
        model, tokenizer, batch, make_cfg(tiny_model_dir, tmp_path, *common, f"grpo.policy_loss={loss}")
    )
    gap = max(float((grpo[k] - other[k]).abs().max()) for k in grpo)
    assert gap > 1e-6, f"{loss} updated exactly like grpo"
    assert all(torch.isfinite(v).all() for v in other.values()) and metrics["grad_norm"] > 0


def test_leave_one_out_baseline_reaches_the_advantages(tiny, tiny_model_dir, tmp_path):
    model, tokenizer = tiny
    batch = hand_batch(tokenizer, REWARDS, STOPS, G=4, T=7)
    cfg = make_cfg(
        tiny_model_dir, tmp_path, "grpo.beta=0", "grpo.advantage_baseline=leave-one-out", "grpo.advantage_scale=none"
    )
    inputs = prepare_update(batch, model, None, UpdateSettings.of(cfg), tokenizer.pad_token_id)
    r = torch.tensor(REWARDS).view(2, 4)
    expected = torch.stack([r[:, i] - (r.sum(1) - r[:, i]) / 3 for i in range(4)], dim=1).flatten()  # by hand
    torch.testing.assert_close(inputs.advantages, expected, rtol=0, atol=1e-6)
    assert not torch.allclose(expected, group_advantages(r, scale="none").flatten())  # not the group mean


def test_reinforce_plus_plus_needs_a_batch_scale(tiny_model_dir, tmp_path):
    with pytest.raises(ConfigError, match="advantage_baseline"):
        make_cfg(tiny_model_dir, tmp_path, "grpo.advantage_baseline=batch", "grpo.advantage_scale=group")


def test_top_entropy_tokens_alone_carry_the_policy_loss(tiny, tiny_model_dir, tmp_path):
    model, tokenizer = tiny
    batch = hand_batch(tokenizer, REWARDS, STOPS, G=4, T=7)
    cfg = make_cfg(tiny_model_dir, tmp_path, "grpo.beta=0", "grpo.top_entropy_quantile=0.25")
    metrics, change = update_with(model, tokenizer, batch, cfg)
    _, full = update_with(model, tokenizer, batch, make_cfg(tiny_model_dir, tmp_path, "grpo.beta=0"))
    assert 0 < metrics["kept"] < 0.6  # about a quarter of the trained tokens (ties and per-chunk thresholds aside)
    assert max(float((full[k] - change[k]).abs().max()) for k in full) > 1e-7


# --- the engine's log-probs and the mismatch correction ------------------------------------------


def test_a_bf16_rollout_logs_its_mismatch_and_the_correction_weights_it(tiny_model_dir, tmp_path):
    run = train_grpo(
        make_cfg(
            tiny_model_dir,
            tmp_path,
            "train.steps=2",
            "grpo.beta=0",
            "rollout.engine=fast",
            "rollout.dtype=bfloat16",
            "train.bf16=false",
            "grpo.rollout_correction=tis-token",
            "grpo.correction_cap=1.0",  # every token whose trainer/engine ratio exceeds 1 is capped
        )
    )
    rows = read_metrics(run)
    for row in rows:
        assert (
            row["rollout/mismatch_abs_diff"] > 0
            and row["rollout/mismatch_abs_diff_max"] >= row["rollout/mismatch_abs_diff"]
        )
        assert row["rollout/logprob_max_diff"] == row["rollout/mismatch_abs_diff_max"]
        assert 0 < row["rollout/is_capped_frac"] < 1  # bf16 rounds both ways: some ratios above 1, some below
        assert row["rollout/is_weight_mean"] <= 1.0 and row["rollout/is_dropped_frac"] == 0
    written = {p.name for p in make_report(run)}
    assert {"mismatch.png", "correction.png", "entropy.png"} <= written  # r1 report plots them
    assert "rollout/mismatch_abs_diff" in (run / "report" / "summary.md").read_text()


def test_a_masking_correction_drops_tokens_outside_its_band(tiny_model_dir, tmp_path):
    run = train_grpo(
        make_cfg(
            tiny_model_dir,
            tmp_path,
            "train.steps=1",
            "grpo.beta=0",
            "rollout.engine=fast",
            "rollout.dtype=bfloat16",
            "train.bf16=false",
            "grpo.rollout_correction=mis-token",
            "grpo.correction_low=1.0",  # a band of width 0: every token whose ratio is not exactly 1 goes
            "grpo.correction_high=1.0",
        )
    )
    [row] = read_metrics(run)
    assert row["rollout/is_dropped_frac"] > 0.5


def test_tokens_the_correction_masks_get_no_update(tiny, tiny_model_dir, tmp_path):
    """Engine log-probs 0.1 below the trainer's on every token: a [1, 1] band masks them all, so the
    policy gradient is exactly 0 and AdamW (fresh, no weight decay) leaves every weight as it was."""
    from r1.train.forward import completion_logprobs

    model, tokenizer = tiny
    batch = hand_batch(tokenizer, REWARDS, STOPS, G=4, T=7)
    with torch.no_grad():
        trainer, _ = completion_logprobs(model, batch.prompt_ids, batch.completion_ids, pad_id=tokenizer.pad_token_id)
    batch.engine_logp = trainer - 0.1
    common = ("grpo.beta=0", "grpo.correction_low=1.0", "grpo.correction_high=1.0", "optim.lr=0.05")
    _, plain = update_with(model, tokenizer, batch, make_cfg(tiny_model_dir, tmp_path, *common))
    metrics, masked = update_with(
        model, tokenizer, batch, make_cfg(tiny_model_dir, tmp_path, *common, "grpo.rollout_correction=mis-token")
    )
    assert metrics["rollout/is_dropped_frac"] == 1.0
    assert max(float(d.abs().max()) for d in plain.values()) > 1e-4
    assert max(float(d.abs().max()) for d in masked.values()) == 0.0


def test_an_fp32_rollout_matches_the_trainer(tiny_model_dir, tmp_path):
    run = train_grpo(
        make_cfg(tiny_model_dir, tmp_path, "train.steps=1", "rollout.engine=fast", "rollout.dtype=float32")
    )
    [row] = read_metrics(run)
    assert row["rollout/mismatch_abs_diff_max"] < 1e-4  # the same weights and precision: rounding only


@pytest.mark.parametrize("correction, asked", [("none", False), ("tis-token", True)])
def test_the_hf_engine_computes_log_probs_only_for_a_correction(
    tiny_model_dir, tmp_path, monkeypatch, correction, asked
):
    """hf's log-probs cost one more forward pass per step: asked for only when a correction uses them."""
    from r1.rollout import ENGINES

    seen, hf = [], ENGINES["hf"]
    monkeypatch.setitem(ENGINES, "hf", lambda *a: seen.append(a[-1].logprobs) or hf(*a))
    overrides = ("train.steps=1", "rollout.engine=hf", f"grpo.rollout_correction={correction}")
    [row] = read_metrics(train_grpo(make_cfg(tiny_model_dir, tmp_path, *overrides)))
    assert seen == [asked]
    assert ("rollout/mismatch_abs_diff_max" in row) is asked  # the mismatch is logged where it was measured


# --- controls -----------------------------------------------------------------------------------


@register("t_right", replace=True)
def t_right(completion: str, example: dict) -> float:
    return float(len(completion) % 2)


def test_control_weights_replace_or_drop_the_correctness_rewards():
    assert control_weights({"accuracy": 1.0, "format": 0.5}, "none") == (
        {"accuracy": 1.0, "format": 0.5},
        ["accuracy", "format"],
    )
    assert control_weights({"accuracy": 2.0, "code": 1.0}, "random") == (
        {"random": 3.0},
        ["random", "accuracy", "code"],
    )
    assert control_weights({"format": 1.0}, "random") == ({"format": 1.0}, ["format"])  # nothing to replace
    with pytest.raises(ValueError, match="unknown rewards.control"):
        control_weights({"format": 1.0}, "shuffled")


def test_a_random_control_trains_on_the_coin_and_still_logs_the_accuracy(tiny_model_dir, tmp_path):
    run = train_grpo(
        make_cfg(
            tiny_model_dir,
            tmp_path,
            "train.steps=2",
            "rollout.samples_per_prompt=8",
            "rewards.weights={accuracy: 1.0, format: 0.5}",
            "rewards.control=random",
            "train.sample_every=1",
        )
    )
    rows = read_metrics(run)
    assert all("reward/random" in r and "reward/accuracy" in r and "reward/format" in r for r in rows)
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    coins = [s["reward/random"] for s in samples]
    assert set(coins) <= {0.0, 1.0} and 0 < sum(coins) < len(coins)
    for row in rows:  # the total is what was trained on: the coin and the format, not the accuracy
        assert row["reward/mean"] == pytest.approx(row["reward/random"] + 0.5 * row["reward/format"], abs=1e-6)


# --- one-step off-policy rollouts ----------------------------------------------------------------


def test_async_rollouts_train_on_batches_one_update_old(tiny_model_dir, tmp_path):
    """fp32 engine and trainer: step 1 samples on-policy (mismatch ~0); every later batch was sampled
    before the previous update, so the trainer's π_old differs from the sampling weights."""
    cfg = make_cfg(
        tiny_model_dir,
        tmp_path,
        "train.steps=3",
        "grpo.beta=0",
        "optim.lr=0.05",
        "rollout.engine=fast",
        "rollout.dtype=float32",
        "rollout.async_steps=1",
        "grpo.rollout_correction=tis-token",
        "train.save_every=1",
    )
    rows = read_metrics(train_grpo(cfg))
    assert rows[0]["rollout/mismatch_abs_diff_max"] < 1e-4
    assert all(r["rollout/mismatch_abs_diff_max"] > 1e-3 for r in rows[1:])
    state = torch.load(tmp_path / "checkpoints" / "final" / "trainer_state.pt", weights_only=False)
    assert state["sampler"]["position"] == 3 * 2  # the batch in flight at the end was never counted


def test_async_rollouts_need_a_correction(tiny_model_dir, tmp_path):
    with pytest.raises(ConfigError, match="rollout_correction"):
        make_cfg(tiny_model_dir, tmp_path, "rollout.async_steps=1")


def test_async_rollouts_refuse_several_processes(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    cfg = make_cfg(tiny_model_dir, tmp_path, "rollout.async_steps=1", "grpo.rollout_correction=tis-token")
    with pytest.raises(TrainingError, match="one process"):
        train_grpo(cfg)
