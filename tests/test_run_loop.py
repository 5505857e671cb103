"""Fault injection for the shared run loop, on the tiny model, on CPU: preemption, resumes
that cannot lie, config changes, torn logs, damaged checkpoints, a full disk, a second process, a
kill between the renames of final/. docs/reliability.md maps each guarantee to its test here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import r1.train.sft as sft
from r1.cli import main
from r1.config import load_config
from r1.models import load_model
from r1.train import checkpoint as ckpt
from r1.train import durable
from r1.train.errors import Preempted, RunError
from r1.train.run import RunLogger
from r1.train.sft import train_sft
from test_train_sft import make_cfg, params, read_metrics, write_rows

COMMON = ["sft.batch_size=2", "train.save_every=2", "train.micro_batch_size=1", "sft.epochs=2"]  # 6 rows: 6 steps


class Killed(Exception):
    """Stands in for a kill of the training process."""


@pytest.fixture
def data(tmp_path):
    return write_rows(tmp_path / "data.jsonl", 6)


def cfg_for(model_dir, out, data, *overrides):
    return make_cfg(model_dir, out, f"sft.data={data}", *COMMON, *overrides)


@pytest.fixture
def straight(tiny_model_dir, tmp_path, data):
    """An uninterrupted 6-step run, to compare against."""
    return train_sft(cfg_for(tiny_model_dir, tmp_path / "straight", data))


def same_run(a, b) -> None:
    """Two run directories hold the same steps (losses, grad norms) and the same final weights."""
    ma, mb = read_metrics(a), read_metrics(b)
    assert [m["step"] for m in mb] == [m["step"] for m in ma] == [1, 2, 3, 4, 5, 6]
    for x, y in zip(ma, mb):
        for key in ("loss", "grad_norm", "tokens"):
            assert y[key] == pytest.approx(x[key], abs=1e-6), (x["step"], key)
    pa, pb = (params(load_model(str(run / "checkpoints" / "final"))[0]) for run in (a, b))
    for k in pa:
        torch.testing.assert_close(pb[k], pa[k], atol=1e-6, rtol=0)


def in_step(monkeypatch, when: int, action) -> None:
    """Call `action()` in the middle of SFT step `when` (after its update, before the loop sees it)."""
    real, count = sft.sft_step, {"n": 0}

    def step(*args, **kwargs):
        out = real(*args, **kwargs)
        count["n"] += 1
        if count["n"] == when:
            action()
        return out

    monkeypatch.setattr(sft, "sft_step", step)


def kill_after_log(monkeypatch, when: int) -> None:
    """The process dies right after logging step `when` (after any checkpoint before it)."""
    real = RunLogger.log

    def log(self, step, metrics, **kw):
        real(self, step, metrics, **kw)
        if step == when:
            raise Killed

    monkeypatch.setattr(RunLogger, "log", log)


# --- preemption -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_step_saves_that_step_and_the_resume_equals_the_uninterrupted_run(
    tiny_model_dir, tmp_path, data, straight, monkeypatch, sig
):
    out = tmp_path / "preempted"
    in_step(monkeypatch, 3, lambda: os.kill(os.getpid(), sig))
    with pytest.raises(Preempted) as stop:
        train_sft(cfg_for(tiny_model_dir, out, data))
    monkeypatch.undo()
    assert stop.value.step == 3 and stop.value.checkpoint == ckpt.step_dir(out, 3)
    assert ckpt.checkpoint_step(ckpt.step_dir(out, 3)) == 3 and not (out / "checkpoints" / "final").exists()
    assert signal.getsignal(sig) in (signal.SIG_DFL, signal.default_int_handler)  # the loop put the handler back
    train_sft(cfg_for(tiny_model_dir, out, data, "run.resume=true"))
    same_run(straight, out)


def test_the_cli_exits_with_code_75_and_one_line_when_preempted(tiny_model_dir, tmp_path, data, monkeypatch, capsys):
    in_step(monkeypatch, 2, lambda: os.kill(os.getpid(), signal.SIGTERM))
    code = main(
        [
            "sft",
            f"model.name={tiny_model_dir}",
            f"run.output_dir={tmp_path / 'cli'}",
            "run.threads=1",
            f"sft.data={data}",
            *COMMON,
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 75 and err[-1].startswith("r1: SIGTERM received: stopped after step 2")
    assert "run.resume=true" in err[-1]


# --- resume that cannot lie -------------------------------------------------------------------------


def test_resume_with_nothing_to_resume_is_an_error_and_auto_starts_afresh(tiny_model_dir, tmp_path, data, monkeypatch):
    out = tmp_path / "run"
    with pytest.raises(RunError, match="no checkpoint to resume.*run.resume=auto"):
        train_sft(cfg_for(tiny_model_dir, out, data, "run.resume=true"))
    kill_after_log(monkeypatch, 1)  # dies before its first checkpoint: logs, no checkpoint
    with pytest.raises(Killed):
        train_sft(cfg_for(tiny_model_dir, out, data))
    monkeypatch.undo()
    with pytest.raises(RunError, match="no checkpoint to resume"):
        train_sft(cfg_for(tiny_model_dir, out, data, "run.resume=true"))
    with pytest.raises(RunError, match="already holds a run.*run.resume=auto"):
        train_sft(cfg_for(tiny_model_dir, out, data))
    train_sft(cfg_for(tiny_model_dir, out, data, "run.resume=auto"))
    assert [m["step"] for m in read_metrics(out)] == [1, 2, 3, 4, 5, 6]  # not appended after the old step 1
    stale = [p for p in out.iterdir() if p.name.startswith("stale-")]
    assert len(stale) == 1 and [m["step"] for m in read_metrics(stale[0])] == [1]


def printed(capsys) -> str:
    """What the run printed, with the console's line wrapping undone."""
    return capsys.readouterr().out.replace("\n", "")


def snapshot(run_dir) -> dict:
    """Every file's (mtime, size) but the lock's, which holds the pid of whoever looked last."""
    return {
        str(p.relative_to(run_dir)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in run_dir.rglob("*")
        if p.is_file() and p.name != ".lock"
    }


@pytest.mark.parametrize("resume", ["false", "true", "auto"])
def test_a_finished_run_says_so_and_rewrites_nothing(tiny_model_dir, tmp_path, data, straight, resume, capsys):
    before = snapshot(straight)
    time.sleep(0.01)
    train_sft(cfg_for(tiny_model_dir, straight, data, f"run.resume={resume}", "train.log_every=3"))  # a safe change
    assert "holds a finished run (6 steps" in printed(capsys)
    assert snapshot(straight) == before


def test_without_resume_a_directory_holding_a_run_is_refused_with_the_ways_forward(
    tiny_model_dir, tmp_path, data, monkeypatch
):
    out = tmp_path / "run"
    kill_after_log(monkeypatch, 3)
    with pytest.raises(Killed):
        train_sft(cfg_for(tiny_model_dir, out, data))
    monkeypatch.undo()
    with pytest.raises(RunError, match=r"checkpoint at step 2.*run.resume=true.*another run.output_dir"):
        train_sft(cfg_for(tiny_model_dir, out, data))
    assert [m["step"] for m in read_metrics(out)] == [1, 2, 3]  # untouched


# --- config changes on resume --------------------------------------------------------------------------


@pytest.fixture
def stopped(tiny_model_dir, tmp_path, data, monkeypatch):
    """A run killed in step 3, after its step-2 checkpoint."""
    out = tmp_path / "run"
    kill_after_log(monkeypatch, 3)
    with pytest.raises(Killed):
        train_sft(cfg_for(tiny_model_dir, out, data))
    monkeypatch.undo()
    return out


@pytest.mark.parametrize("change", ["sft.batch_size=3", "optim.lr=0.01", "sft.max_length=300", "optim.grad_clip=0.5"])
def test_a_change_that_alters_the_run_is_refused_with_the_diff(tiny_model_dir, data, stopped, change):
    key, value = change.split("=")
    with pytest.raises(RunError, match=rf"differs.*{key}: .* -> .*{value}.*run.allow_config_change=true"):
        train_sft(cfg_for(tiny_model_dir, stopped, data, "run.resume=true", change))


@pytest.mark.parametrize("change", ["run.seed=5", "model.name=/elsewhere"])
def test_the_model_and_seed_cannot_change_even_when_allowed(tiny_model_dir, data, stopped, change):
    with pytest.raises(RunError, match="cannot change within a run"):
        train_sft(cfg_for(tiny_model_dir, stopped, data, "run.resume=true", "run.allow_config_change=true", change))


def test_an_allowed_learning_rate_change_is_applied_for_real_and_recorded(tiny_model_dir, data, stopped, monkeypatch):
    seen = []
    real = sft.sft_step

    def step(model, optimizer, *args, **kwargs):
        seen.append(optimizer.param_groups[0]["lr"])
        return real(model, optimizer, *args, **kwargs)

    monkeypatch.setattr(sft, "sft_step", step)
    allowed = ["run.resume=true", "run.allow_config_change=true"]
    train_sft(cfg_for(tiny_model_dir, stopped, data, *allowed, "optim.lr=0.02"))
    assert seen and all(lr == pytest.approx(0.02) for lr in seen)  # constant schedule: the new rate, not the old 1e-3
    changes = [json.loads(line) for line in (stopped / "config_changes.jsonl").read_text().splitlines()]
    assert changes == [{"step": 2, "time": changes[0]["time"], "changes": {"optim.lr": [0.001, 0.02]}}]
    assert "lr: 0.02" in (stopped / "config.yaml").read_text()
    assert "lr: 0.02" in (stopped / "checkpoints" / "final" / "config.yaml").read_text()


def test_an_allowed_smaller_dataset_resumes_without_an_index_error(tiny_model_dir, tmp_path, stopped):
    smaller = write_rows(tmp_path / "smaller.jsonl", 3)
    train_sft(cfg_for(tiny_model_dir, stopped, smaller, "run.resume=true", "run.allow_config_change=true"))
    assert [m["step"] for m in read_metrics(stopped)] == [1, 2, 3, 4]  # 2 epochs of 2 steps now: 4 in all


def test_safe_changes_are_applied_and_recorded(tiny_model_dir, data, stopped):
    safe = ["train.save_every=3", "train.keep_checkpoints=5"]
    train_sft(cfg_for(tiny_model_dir, stopped, data, "run.resume=true", *safe))
    changes = json.loads((stopped / "config_changes.jsonl").read_text())["changes"]
    assert changes == {"train.save_every": [2, 3], "train.keep_checkpoints": [2, 5]}
    assert ckpt.step_dir(stopped, 3).is_dir() and not ckpt.step_dir(stopped, 4).exists()  # the new cadence ran


# --- files that survive ---------------------------------------------------------------------------------


def test_a_torn_last_log_line_is_dropped_and_counted(tiny_model_dir, data, straight, stopped, capsys):
    with open(stopped / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 3, "loss": 0.12')  # a write cut short
    train_sft(cfg_for(tiny_model_dir, stopped, data, "run.resume=true"))
    assert "dropped 1 torn line(s)" in printed(capsys)
    same_run(straight, stopped)


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_good_one(
    tiny_model_dir, tmp_path, data, straight, monkeypatch, damage, capsys
):
    out = tmp_path / "run"
    kill_after_log(monkeypatch, 5)  # checkpoints at steps 2 and 4
    with pytest.raises(Killed):
        train_sft(cfg_for(tiny_model_dir, out, data))
    monkeypatch.undo()
    weights = ckpt.step_dir(out, 4) / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    if damage == "truncate":
        weights.write_bytes(blob[: len(blob) // 2])
    elif damage == "flip":
        blob[-100] ^= 0x01
        weights.write_bytes(blob)
    else:
        (ckpt.step_dir(out, 4) / ckpt.STATE_FILE).unlink()
    train_sft(cfg_for(tiny_model_dir, out, data, "run.resume=true"))
    text = printed(capsys)
    assert "step-000004 is damaged" in text and "resumed from" in text and "step-000002 at step 2" in text
    same_run(straight, out)


def test_a_full_disk_is_one_message_and_the_previous_checkpoint_stays(tiny_model_dir, tmp_path, data, monkeypatch):
    out = tmp_path / "run"
    real_save, calls = torch.save, {"n": 0}

    def save(obj, path, *a, **k):  # the second checkpoint's trainer state does not fit
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError(
                "[enforce fail at inline_container.cc:626] . unexpected pos 1024 vs 512: file write failed"
            )
        return real_save(obj, path, *a, **k)

    monkeypatch.setattr(ckpt.torch, "save", save)
    with pytest.raises(RunError, match=r"the disk is full: writing the checkpoint .*step-000004 needs about .* MiB"):
        train_sft(cfg_for(tiny_model_dir, out, data))
    monkeypatch.undo()
    assert not ckpt.step_dir(out, 4).with_name("step-000004.tmp").exists()
    assert ckpt.resumable(out)[0] == ckpt.step_dir(out, 2)


def test_a_real_full_disk_on_a_small_tmpfs(tiny_model_dir, tmp_path, data, straight):
    """Room for about one and a half checkpoints: the second one cannot be written."""
    mount = tmp_path / "small"
    mount.mkdir()
    room = int(1.5 * durable.folder_bytes(straight / "checkpoints" / "final")) + (64 << 10)  # + the logs
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={room}", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        with pytest.raises(RunError, match="the disk is full"):
            train_sft(cfg_for(tiny_model_dir, mount / "run", data))
        assert not list((mount / "run" / "checkpoints").glob("*.tmp"))
    finally:
        subprocess.run(["umount", "-l", str(mount)])


def test_a_kill_between_the_renames_of_final_leaves_a_copy_that_is_found(
    tiny_model_dir, tmp_path, data, straight, monkeypatch
):
    out = tmp_path / "run"
    real_replace = ckpt.os.replace

    def replace(src, dst):
        if str(src).endswith("final.tmp"):
            raise Killed  # after the old final (if any) went to final.old, before final.tmp took its place
        real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", replace)
    with pytest.raises(Killed):
        train_sft(cfg_for(tiny_model_dir, out, data))
    monkeypatch.undo()
    assert not (out / "checkpoints" / "final").exists() and (out / "checkpoints" / "final.tmp").is_dir()
    outcome = sft.run_training(
        cfg_for(tiny_model_dir, out, data, "run.resume=true"),
        "sft",
        lambda resume_from: pytest.fail("a finished run must not be set up again"),
    )
    assert outcome.finished_before and (out / "checkpoints" / "final").is_dir()  # the complete copy, put in place
    same_run(straight, out)


# --- one run per directory ------------------------------------------------------------------------------


def test_a_second_process_on_the_same_directory_is_refused(tiny_model_dir, tmp_path, data):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import time
        from r1.train.resume import RunLock
        with RunLock({str(out)!r}):
            print("held", flush=True)
            time.sleep(60)
    """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunError, match=rf"in use by another r1 process \(pid {holder.pid}\)"):
            train_sft(cfg_for(tiny_model_dir, out, data))
    finally:
        holder.kill()
        holder.wait()
    train_sft(cfg_for(tiny_model_dir, out, data, "run.resume=auto"))  # the kernel released the dead holder's lock
    assert [m["step"] for m in read_metrics(out)] == [1, 2, 3, 4, 5, 6]


def test_a_misspelt_reward_name_is_refused_before_any_model_loads(tmp_path, monkeypatch):
    import r1.train.grpo as grpo

    monkeypatch.setattr(grpo, "run_training", lambda *a, **k: pytest.fail("the run started"))
    cfg = load_config(None, [f"run.output_dir={tmp_path}", "rewards.weights={acuracy: 1.0}"])
    with pytest.raises(grpo.TrainingError, match=r"acuracy.*did you mean 'accuracy'"):
        grpo.train_grpo(cfg)


def test_a_hanging_custom_reward_costs_its_samples_not_the_run(tiny_model_dir, tmp_path):
    """Every other completion makes the reward hang (far past rewards.timeout_s): those samples are
    counted as timed out and excluded, and the run finishes its steps."""
    from r1.rewards import register
    from r1.train.grpo import train_grpo
    from test_train_grpo import make_cfg as grpo_cfg

    calls = {"n": 0}

    @register("t_hangs_sometimes", replace=True)
    def hangs_sometimes(completion: str, example: dict) -> float:
        calls["n"] += 1
        if calls["n"] % 2 == 0:
            time.sleep(3600)
        return len(completion) / 10

    start = time.monotonic()
    out = train_grpo(
        grpo_cfg(
            tiny_model_dir,
            tmp_path / "run",
            "train.steps=2",
            "rewards.timeout_s=0.3",
            "rewards.weights={t_hangs_sometimes: 1.0}",
            "rewards.max_error_rate=0.9",
            "grpo.beta=0",
        )
    )
    metrics = read_metrics(out)
    assert [m["step"] for m in metrics] == [1, 2]
    assert metrics[-1]["rewards/t_hangs_sometimes_timeouts"] == 8  # 16 samples over the two steps, half hung
    assert time.monotonic() - start < 60  # 8 hung calls × 0.3 s, plus the training itself


def test_os_errors_reach_the_command_line_as_one_line(tmp_path, capsys):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    code = main(["sft", f"run.output_dir={blocked / 'run'}", "sft.data=x.jsonl"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("r1: error: Not a directory") and "Traceback" not in err[0]


def test_an_unreadable_state_without_checksums_is_a_message_not_a_traceback(tiny_model_dir, data, stopped):
    """A checkpoint written before checksums existed cannot be verified first: reading it fails clearly."""
    step2 = ckpt.step_dir(stopped, 2)
    (step2 / durable.CHECKSUMS).unlink()
    state = step2 / ckpt.STATE_FILE
    state.write_bytes(state.read_bytes()[:1000])
    with pytest.raises(RunError, match=r"trainer_state.pt cannot be read .*remove .*step-000002"):
        train_sft(cfg_for(tiny_model_dir, stopped, data, "run.resume=true"))
