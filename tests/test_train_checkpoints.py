"""Checkpoints and the run directory of the training commands (r1/train/checkpoint.py, run.py).

Forward passes, the optimizer step and the data order: test_train_infra.py."""

from __future__ import annotations

import copy
import json
import random

import pytest
import torch
from transformers import AutoModelForCausalLM

from r1.config import load_config
from r1.models import load_model
from r1.train import checkpoint as ckpt
from r1.train.optim import build_optimizer, optimizer_step
from r1.train.run import IndexSampler, RunLogger, start_run, truncate_log_on_resume


# --- checkpoints ---------------------------------------------------------------------------------


def save(run_dir, name, model, tokenizer, step):
    optimizer, scheduler = build_optimizer(model, load_config().optim, total_steps=10)
    path = run_dir / "checkpoints" / name
    return ckpt.save_training(
        path,
        model,
        tokenizer,
        optimizer=optimizer,
        scheduler=scheduler,
        sampler=IndexSampler(4, 0),
        counters={"n": step},
        step=step,
    )


def test_a_failure_mid_save_leaves_the_previous_checkpoint_latest_and_loadable(tiny, tmp_path, monkeypatch):
    model, tokenizer = tiny
    save(tmp_path, "step-000002", model, tokenizer, 2)

    def dies_half_way(path, **kwargs):
        path.mkdir(parents=True, exist_ok=True)
        (path / "model.safetensors").write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(model, "save_pretrained", dies_half_way)
    with pytest.raises(OSError, match="disk full"):
        save(tmp_path, "step-000004", model, tokenizer, 4)
    with pytest.raises(OSError, match="disk full"):
        save(tmp_path, "step-000002", model, tokenizer, 5)  # re-saving over an existing folder
    monkeypatch.undo()

    latest = ckpt.latest_checkpoint(tmp_path)
    assert latest == tmp_path / "checkpoints" / "step-000002"
    assert ckpt.load_state(latest)["step"] == 2
    reloaded, _ = load_model(str(latest))
    for k, v in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[k], v)


def test_saving_over_an_existing_checkpoint_replaces_it(tiny, tmp_path):
    model, tokenizer = tiny
    save(tmp_path, "final", model, tokenizer, 2)
    (tmp_path / "checkpoints" / "final.old" / "leftover").mkdir(parents=True)  # a kill during an earlier replace
    save(tmp_path, "final", model, tokenizer, 3)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["final"]
    assert (
        ckpt.checkpoint_step(tmp_path / "checkpoints" / "final")
        == ckpt.load_state(tmp_path / "checkpoints" / "final")["step"]
        == 3
    )


def fake_checkpoint(run_dir, name, step):
    path = run_dir / "checkpoints" / name
    path.mkdir(parents=True)
    (path / ckpt.STEP_FILE).write_text(json.dumps({"step": step}))
    return path


def test_latest_checkpoint_takes_the_highest_complete_step(tmp_path):
    assert ckpt.latest_checkpoint(tmp_path) is None
    fake_checkpoint(tmp_path, "step-000002", 2)
    fake_checkpoint(tmp_path, "step-000004", 4)
    final = fake_checkpoint(tmp_path, "final", 4)
    (tmp_path / "checkpoints" / "step-000008.tmp").mkdir()  # an interrupted save: no checkpoint.json yet
    fake_checkpoint(tmp_path, "final.old", 9)  # the copy a replace of final keeps until the new one is in place
    (tmp_path / "checkpoints" / "step-000009").mkdir()  # no checkpoint.json: incomplete
    assert ckpt.latest_checkpoint(tmp_path) == final  # final wins the tie with step-4; its .old never beats it
    later = fake_checkpoint(tmp_path, "step-000006", 6)  # e.g. a longer run resumed from final
    assert ckpt.latest_checkpoint(tmp_path) == later
    renamed = fake_checkpoint(tmp_path, "step-000007.tmp", 7)  # complete, killed before its rename
    assert ckpt.latest_checkpoint(tmp_path) == renamed


def test_prune_keeps_the_newest_step_checkpoints_and_final(tmp_path):
    for step in (1, 2, 3, 10, 11):
        fake_checkpoint(tmp_path, f"step-{step:06d}", step)
    fake_checkpoint(tmp_path, "final", 11)
    (tmp_path / "checkpoints" / "step-000012.tmp").mkdir()
    ckpt.prune(tmp_path, keep=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "final",
        "step-000010",
        "step-000011",
        "step-000012.tmp",
    ]


def test_checkpoint_loads_with_plain_transformers_and_restores_the_loop(tiny, tmp_path):
    model, tokenizer = copy.deepcopy(tiny[0]), tiny[1]
    optimizer, scheduler = build_optimizer(model, load_config(None, ["optim.lr=0.1"]).optim, total_steps=10)
    model(torch.tensor([[5, 6, 7]])).logits.sum().backward()
    optimizer_step(model, optimizer, scheduler, grad_clip=1.0)
    sampler = IndexSampler(9, 0)
    sampler.take(4)
    random.seed(1)
    path = ckpt.save_training(
        tmp_path / "step-000001",
        model,
        tokenizer,
        optimizer=optimizer,
        scheduler=scheduler,
        sampler=sampler,
        counters={"x": 1},
        step=1,
    )
    expected_draws = (torch.rand(3), random.random())

    plain = AutoModelForCausalLM.from_pretrained(path)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        torch.testing.assert_close(plain(ids).logits, model(ids).logits, rtol=0, atol=0)

    fresh_opt, fresh_sched = build_optimizer(plain, load_config(None, ["optim.lr=0.1"]).optim, total_steps=10)
    fresh_sampler = IndexSampler(9, 0)
    torch.rand(5)  # the RNGs moved on since the save
    step, counters = ckpt.restore_training(
        path, model=plain, optimizer=fresh_opt, scheduler=fresh_sched, sampler=fresh_sampler
    )
    assert (step, counters) == (1, {"x": 1})
    draws = (torch.rand(3), random.random())
    assert torch.equal(draws[0], expected_draws[0]) and draws[1] == expected_draws[1]
    assert fresh_sched.last_epoch == 1 and fresh_sampler.take(5) == sampler.take(5)
    for a, b in zip(fresh_opt.state.values(), optimizer.state.values()):
        assert torch.equal(a["exp_avg"], b["exp_avg"])


def test_restored_torch_rng_continues_the_same_stream(tiny, tmp_path):
    model, tokenizer = tiny
    torch.manual_seed(7)
    path = save(tmp_path, "step-000001", model, tokenizer, 1)
    expected = torch.rand(4)
    torch.rand(10)
    ckpt.set_rng_state(ckpt.load_state(path)["rng"])
    assert torch.equal(torch.rand(4), expected)


# --- the run directory ---------------------------------------------------------------------------


def test_config_yaml_in_the_run_dir_round_trips(tmp_path):
    cfg = load_config(
        None,
        [
            f"run.output_dir={tmp_path / 'run'}",
            "run.threads=1",
            "grpo.beta=0.04",
            "rewards.weights={accuracy: 1.0, language: 0.1}",
            "optim.betas=[0.9, 0.95]",
        ],
    )
    run_dir = start_run(cfg, "grpo")
    assert load_config(run_dir / "config.yaml") == cfg


def test_run_logger_writes_strict_json_and_resume_truncates(tmp_path):
    logger = RunLogger(tmp_path, total_steps=3)
    for step in (1, 2, 3):
        logger.log(step, {"loss": float("nan") if step == 2 else 0.5, "kl": torch.tensor(0.25)}, show=False)
    logger.samples(3, [{"completion": "x"}])
    logger.close()
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines[1] == {"step": 2, "loss": None, "kl": 0.25}
    truncate_log_on_resume(tmp_path, 2)
    assert [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert (tmp_path / "samples.jsonl").read_text() == ""


def test_run_stats_round_trip_and_read_the_flat_counters_of_older_checkpoints():
    from r1.train.stats import RunStats, StepCounts

    stats = RunStats(samples_seen=16, nonfinite_steps=1)
    stats.add_step(
        StepCounts.merged(
            [
                StepCounts(0.5, {"acc_errors": 2}, {"acc": "acc: boom"}),
                StepCounts(0.7, {"acc_errors": 1, "acc_timeouts": 3}, {"acc": "acc: later"}),
            ]
        )
    )
    assert stats.reward_events == {"acc_errors": 3, "acc_timeouts": 3} and stats.first_error == {"acc": "acc: boom"}
    assert stats.reward_errors() == {"acc": 3} and stats.reward_metrics()["rewards/acc_timeouts"] == 3
    again = RunStats()
    again.load_state_dict(stats.state_dict())
    assert again == stats
    old = {"samples_seen": 8, "nonfinite_steps": 2, "rewards/acc_errors": 1, "first_error/acc": "x", "before": {"a": 1}}
    legacy = RunStats()
    legacy.load_state_dict(old)
    assert legacy == RunStats(
        samples_seen=8, nonfinite_steps=2, reward_events={"acc_errors": 1}, first_error={"acc": "x"}, baseline={"a": 1}
    )
