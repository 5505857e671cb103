"""The GRPO loop on the tiny random model: update invariances, resume, reward failures, masks.

Dynamic sampling, the reference policy and whole runs are in test_train_grpo_runs.py, which shares
the helpers below.

Rewards here are our own in-process test rewards, so the random model gets varied, non-zero
rewards (and real gradients) and every failure is placed exactly where the test wants it:
`t_len` scores a completion by its length, `t_script` (conftest.py, with the `script` fixture)
returns the next value of a script
(a number, None, or "raise") in the order samples are scored (group by group).
"""

from __future__ import annotations

import copy
import json

import pytest
import torch

import r1.train.update as update
from r1.config import load_config
from r1.data import load_examples, prepare_prompts
from r1.models import load_model
from r1.rewards import register
from r1.rl import LOSS_AGGREGATIONS
from r1.rollout import completion_lengths
from r1.train.grpo import (
    Batch,
    GRPORun,
    TrainingError,
    check_error_rate,
    collect,
    policy_update,
    prepare_update,
    train_grpo,
    weighted_total,
)
from r1.train.update import UpdateSettings
from r1.train.run import IndexSampler
from r1.train.run import RunLogger
from r1.train.stats import RunStats
from conftest import SCORED


@register("t_len", replace=True)
def t_len(completion: str, example: dict) -> float:
    return len(completion) / 10


def make_cfg(model_dir, out_dir, *overrides):
    return load_config(
        None,
        [
            f"model.name={model_dir}",
            f"run.output_dir={out_dir}",
            "run.threads=1",
            "data.source=arithmetic",
            "data.size=64",
            "rollout.prompts_per_step=2",
            "rollout.samples_per_prompt=4",
            "rollout.max_new_tokens=8",
            "rewards.weights={t_len: 1.0}",
            "train.micro_batch_size=4",
            "train.sample_every=0",
            "optim.lr=1e-3",
            *overrides,
        ],
    )


def read_metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def load_params(folder) -> dict[str, torch.Tensor]:
    return params(load_model(str(folder))[0])


def assert_params_equal(a: dict, b: dict, atol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=atol, msg=k)


def tiny_examples(tokenizer, n: int = 16) -> list[dict]:
    examples = load_examples("arithmetic", split="train", size=n, seed=0)
    return prepare_prompts(examples, tokenizer, quiet=True)


def step_run(model, tokenizer, examples: list[dict], sampler: IndexSampler, cfg) -> GRPORun:
    """A GRPO run record for sampling and scoring only (no optimizer)."""
    return GRPORun(
        cfg=cfg,
        policy=model,
        reference=None,
        tokenizer=tokenizer,
        examples=examples,
        optimizer=None,
        scheduler=None,
        sampler=sampler,
        stats=RunStats(),
    )


def hand_batch(tokenizer, rewards: list[float], stop_at: list[int | None], *, G: int, T: int, seed: int = 0) -> Batch:
    """A scored batch built by hand: group g has a prompt of 5 + 3g tokens; row i stops with EOS at
    column stop_at[i] (None = truncated) and is padded with pad == EOS after it."""
    gen = torch.Generator().manual_seed(seed)
    eos, B = tokenizer.eos_token_id, len(rewards)
    prompts = [torch.randint(3, len(tokenizer), (5 + 3 * (i // G),), generator=gen).tolist() for i in range(B)]
    ids = torch.randint(3, len(tokenizer), (B, T), generator=gen)  # ids 0-2 are the special tokens
    for i, stop in enumerate(stop_at):
        if stop is not None:
            ids[i, stop:] = eos
    lengths, truncated = completion_lengths(ids, [eos])
    total, valid = weighted_total({"r": rewards}, {"r": 1.0})
    texts = [tokenizer.decode(row[:n]) for row, n in zip(ids, lengths)]
    return Batch(
        [{"id": str(i // G), "answer": "0"} for i in range(B)],
        prompts,
        ids,
        lengths,
        truncated,
        texts,
        {"r": rewards},
        total,
        valid,
    )


# --- 1. the update does not depend on the micro-batch size ------------------------------------


@pytest.mark.parametrize("aggregation", list(LOSS_AGGREGATIONS))
@pytest.mark.parametrize(
    "ppo_epochs,beta,entropy_coef,kl_placement",
    [(1, 0.0, 0.0, "in_loss"), (2, 0.1, 0.01, "in_loss"), (2, 0.1, 0.0, "in_reward")],
)
def test_update_is_the_same_for_every_micro_batch_size(
    tiny, tiny_model_dir, tmp_path, aggregation, ppo_epochs, beta, entropy_coef, kl_placement
):
    # SGD with lr 1 and a constant schedule: the parameter change is exactly the (summed) gradient.
    model, tokenizer = tiny
    torch.manual_seed(0)
    reference = copy.deepcopy(model)
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(0.02 * torch.randn_like(p))  # so the KL term and its gradient are not 0
    batch = hand_batch(tokenizer, [1.0, 0.0, 0.5, 2.0, 0.3, 0.3, 1.0, 0.0], [2, None, 5, 0, None, 3, 7, 4], G=4, T=9)
    deltas, losses = {}, {}
    for mb in (8, 3, 1):
        cfg = make_cfg(
            tiny_model_dir,
            tmp_path,
            f"train.micro_batch_size={mb}",
            f"grpo.loss_aggregation={aggregation}",
            f"grpo.ppo_epochs={ppo_epochs}",
            f"grpo.beta={beta}",
            f"grpo.entropy_coef={entropy_coef}",
            f"grpo.kl_placement={kl_placement}",
            "optim.grad_clip=0",
            "rollout.max_new_tokens=9",
        )
        policy = copy.deepcopy(model)
        before = params(policy)
        inputs = prepare_update(
            batch, policy, reference if beta > 0 else None, UpdateSettings.of(cfg), tokenizer.pad_token_id
        )
        optimizer = torch.optim.SGD(policy.parameters(), lr=1.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        metrics = policy_update(
            policy, optimizer, scheduler, batch, inputs, UpdateSettings.of(cfg), tokenizer.pad_token_id
        )
        deltas[mb] = {k: v - before[k] for k, v in params(policy).items()}
        losses[mb] = metrics
    assert max(float(d.abs().max()) for d in deltas[8].values()) > 1e-4  # a real update happened
    for mb in (3, 1):
        assert_params_equal(deltas[mb], deltas[8], atol=1e-6)
        for key in ("loss", "policy_loss", "kl", "entropy", "grad_norm"):
            if key in losses[8]:
                assert losses[mb][key] == pytest.approx(losses[8][key], rel=1e-6, abs=1e-6), key
    assert ("kl" in losses[8]) == (beta > 0)


@pytest.mark.parametrize("aggregation", list(LOSS_AGGREGATIONS))
@pytest.mark.parametrize("optimizer_name", ["sgd", "adamw"])
@pytest.mark.parametrize("rewards", [[1.0, 1.0, 1.0, 1.0, 0.3, 0.0, 1.0, 0.0], [1.0] * 8])
def test_skipping_zero_advantage_rows_leaves_the_update_unchanged(
    tiny, tiny_model_dir, tmp_path, monkeypatch, aggregation, optimizer_name, rewards
):
    # Group 1 has equal rewards (advantage 0): with β = 0 its rows are not run. The second case has
    # no trainable row at all, where AdamW must still take its (momentum) step, as with a zero gradient.
    model, tokenizer = tiny
    batch = hand_batch(tokenizer, rewards, [2, None, 5, 0, None, 3, 7, 4], G=4, T=9)
    cfg = make_cfg(
        tiny_model_dir,
        tmp_path,
        "train.micro_batch_size=3",
        f"grpo.loss_aggregation={aggregation}",
        "grpo.beta=0",
        "rollout.max_new_tokens=9",
    )
    results = {}
    for skip in (True, False):
        if not skip:
            monkeypatch.setattr(update, "trainable_rows", lambda inputs, cfg: torch.arange(len(inputs.advantages)))
        torch.manual_seed(0)
        policy = copy.deepcopy(model)
        inputs = prepare_update(batch, policy, None, UpdateSettings.of(cfg), tokenizer.pad_token_id)
        if optimizer_name == "sgd":
            optimizer = torch.optim.SGD(policy.parameters(), lr=1.0)
        else:  # a nonzero first moment, so a zero gradient still moves the weights
            optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-2)
            for p in policy.parameters():
                p.grad = torch.randn_like(p)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        metrics = policy_update(
            policy, optimizer, scheduler, batch, inputs, UpdateSettings.of(cfg), tokenizer.pad_token_id
        )
        results[skip] = (params(policy), metrics)
    assert (
        results[True][1]["trained_rows"] == (4 if rewards[0] != rewards[4] else 0)
        and results[False][1]["trained_rows"] == 8
    )
    assert_params_equal(results[True][0], results[False][0], atol=1e-6)
    assert results[True][1]["grad_norm"] == pytest.approx(results[False][1]["grad_norm"], rel=1e-5, abs=1e-7)


# --- 2. exact resume ---------------------------------------------------------------------------


class Killed(Exception):
    """Stands in for a kill of the training process."""


@pytest.mark.parametrize("how,ref_reset_steps", [("extend", 0), ("crash", 2)])
def test_resumed_grpo_run_equals_uninterrupted_run(tiny_model_dir, tmp_path, monkeypatch, how, ref_reset_steps):
    """'extend': 2 steps, then resume with train.steps=4. 'crash': a 4-step run dies in step 3 after
    logging it (after the step-2 checkpoint), then resumes; its stray step-3 line must go."""
    common = ["train.save_every=2", "grpo.beta=0.1", "grpo.ppo_epochs=2", f"grpo.ref_reset_steps={ref_reset_steps}"]
    straight = train_grpo(make_cfg(tiny_model_dir, tmp_path / "straight", "train.steps=4", *common))

    out = tmp_path / "resumed"
    if how == "extend":
        train_grpo(make_cfg(tiny_model_dir, out, "train.steps=2", *common))
    else:
        real_log = RunLogger.log

        def log_then_die(self, step, metrics, **kw):
            real_log(self, step, metrics, **kw)
            if step == 3:
                raise Killed

        monkeypatch.setattr(RunLogger, "log", log_then_die)
        with pytest.raises(Killed):
            train_grpo(make_cfg(tiny_model_dir, out, "train.steps=4", *common))
        monkeypatch.undo()
        assert len(read_metrics(out)) == 3
    extend = ["run.allow_config_change=true"] if how == "extend" else []  # more steps: a change of the run
    train_grpo(make_cfg(tiny_model_dir, out, "train.steps=4", "run.resume=true", *extend, *common))

    a, b = read_metrics(straight), read_metrics(out)
    assert [m["step"] for m in b] == [1, 2, 3, 4]
    for ma, mb in zip(a, b):
        for key in ("loss", "reward/mean", "kl", "grad_norm"):
            assert mb[key] == pytest.approx(ma[key], abs=1e-6), (ma["step"], key)
    assert len({m["reward/mean"] for m in a}) > 1  # the rewards vary, so the sampled data matters
    assert_params_equal(
        load_params(out / "checkpoints" / "final"), load_params(straight / "checkpoints" / "final"), atol=1e-6
    )


# --- 3. reward failures ------------------------------------------------------------------------


def test_failed_rewards_get_zero_advantage_and_leave_the_group_statistics(tiny, tiny_model_dir, tmp_path, script):
    model, tokenizer = tiny
    cfg = make_cfg(tiny_model_dir, tmp_path, "rewards.weights={t_script: 1.0}", "grpo.beta=0")
    script[:] = [1.0, "raise", 3.0, 0.0, None, 2.0, 2.0, 5.0]
    batch, _, counts = collect(step_run(model, tokenizer, tiny_examples(tokenizer), IndexSampler(16, 0), cfg))
    assert batch.valid.tolist() == [True, False, True, True, False, True, True, True]
    assert counts.reward_events["t_script_errors"] == 2
    assert "t_script: ValueError: scripted failure" in counts.first_error["t_script"]

    inputs = prepare_update(batch, model, None, UpdateSettings.of(cfg), tokenizer.pad_token_id)
    assert inputs.advantages[1].item() == 0.0 and inputs.advantages[4].item() == 0.0
    for rows, good in (([0, 2, 3], torch.tensor([1.0, 3.0, 0.0])), ([5, 6, 7], torch.tensor([2.0, 2.0, 5.0]))):
        expected = (good - good.mean()) / (good.std() + 1e-4)  # the valid samples alone
        torch.testing.assert_close(inputs.advantages[rows], expected, rtol=0, atol=1e-6)


def test_reward_errors_are_counted_in_the_metrics(tiny_model_dir, tmp_path, script):
    script[:] = [0.0, "raise", 1.0, 2.0, 1.0, 1.0, None, 0.0]
    run = train_grpo(
        make_cfg(
            tiny_model_dir, tmp_path, "train.steps=1", "rewards.weights={t_script: 1.0}", "rewards.max_error_rate=0.5"
        )
    )
    (m,) = read_metrics(run)
    assert m["rewards/t_script_errors"] == 2
    assert m["reward/mean"] == pytest.approx((0 + 1 + 2 + 1 + 1 + 0) / 6)  # the failed samples are left out


def test_a_reward_failing_too_often_stops_the_run_with_its_name_and_an_example(tiny_model_dir, tmp_path, script):
    script[:] = [0.0, "raise", None, "raise", 1.0, "raise", "raise", 0.0]  # 5 of 8 > 0.5
    with pytest.raises(TrainingError) as err:
        train_grpo(
            make_cfg(
                tiny_model_dir,
                tmp_path,
                "train.steps=1",
                "rewards.weights={t_script: 1.0}",
                "rewards.max_error_rate=0.5",
            )
        )
    message = str(err.value)
    assert "reward 't_script' failed on 5 of 8 samples" in message
    assert repr(SCORED[1]) in message  # the first failing completion, quoted
    assert not (tmp_path / "metrics.jsonl").exists()  # stopped before any update


def test_error_rate_limit_is_exclusive():
    stats = RunStats(samples_seen=8, reward_events={"x_errors": 4, "x_timeouts": 8}, first_error={"x": "x: boom"})
    check_error_rate(stats, 0.5)  # exactly at the limit (timeouts alone are not errors)
    stats.reward_events["x_errors"] = 5
    with pytest.raises(TrainingError, match="reward 'x'.*example: x: boom"):
        check_error_rate(stats, 0.5)


# --- 4. non-finite losses ----------------------------------------------------------------------


def test_a_nan_loss_skips_the_step_and_is_counted(tiny_model_dir, tmp_path, monkeypatch):
    real_loss, calls = update.grpo_loss, []

    def nan_on_first_step(*args, **kwargs):
        loss, metrics = real_loss(*args, **kwargs)
        calls.append(1)
        return (loss * float("nan") if len(calls) == 1 else loss), metrics

    monkeypatch.setattr(update, "grpo_loss", nan_on_first_step)
    run = train_grpo(
        make_cfg(
            tiny_model_dir, tmp_path, "train.steps=2", "train.save_every=1", "train.micro_batch_size=8", "grpo.beta=0"
        )
    )
    first, second = read_metrics(run)
    assert (first["optimizer_steps_skipped"], first["nonfinite_steps"], first["loss"]) == (1, 1, None)
    assert (second["optimizer_steps_skipped"], second["nonfinite_steps"]) == (0, 1)
    initial = load_params(tiny_model_dir)
    assert_params_equal(load_params(run / "checkpoints" / "step-000001"), initial)  # untouched by the NaN
    final = load_params(run / "checkpoints" / "final")
    assert any(not torch.equal(final[k], initial[k]) for k in initial)  # the next step trained


# --- 5. loss masks with pad == EOS, overlong handling --------------------------------------------


@pytest.mark.parametrize("overlong", ["none", "mask", "penalty"])
def test_loss_mask_ends_at_the_first_eos_and_overlong_handling(tiny, tiny_model_dir, tmp_path, overlong):
    model, tokenizer = tiny
    T = 8
    stops = [2, 4, 5, None]  # lengths 3, 5, 6, 8 (the last one truncated)
    batch = hand_batch(tokenizer, [0.0, 0.0, 0.0, 0.0], stops, G=4, T=T)
    cfg = make_cfg(
        tiny_model_dir,
        tmp_path,
        "rollout.prompts_per_step=1",
        f"grpo.overlong={overlong}",
        "grpo.overlong_buffer=4",
        "grpo.beta=0",
    )
    inputs = prepare_update(batch, model, None, UpdateSettings.of(cfg), tokenizer.pad_token_id)
    assert batch.lengths.tolist() == [3, 5, 6, 8] and batch.truncated.tolist() == [False, False, False, True]
    expected = torch.tensor([[1] * n + [0] * (T - n) for n in (3, 5, 6, 8)], dtype=torch.float32)
    if overlong == "mask":
        expected[3] = 0.0
    assert torch.equal(inputs.loss_mask, expected)
    assert batch.completion_ids[0, 2] == tokenizer.eos_token_id and inputs.loss_mask[0, 2] == 1  # the EOS itself counts
    if overlong == "penalty":
        # max_len 8, ramp of 4 tokens from length 4: lengths 3, 5, 6, 8 → 0, -1/4, -2/4, -1 (rewards are 0)
        shaped = torch.tensor([0.0, -0.25, -0.5, -1.0])
        torch.testing.assert_close(
            inputs.advantages, (shaped - shaped.mean()) / (shaped.std() + 1e-4), rtol=0, atol=1e-6
        )
        assert torch.equal(batch.total, torch.zeros(4))  # the logged reward is not shaped
    else:
        assert torch.equal(inputs.advantages, torch.zeros(4))
