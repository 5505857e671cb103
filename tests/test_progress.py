"""Progress lines (r1/progress.py): ETA arithmetic on a fake clock, the rate limiter, and the lines of
real loops captured as a non-terminal: an eval (capsys) and a GRPO run whose stdout is a pipe — the
case rich's live bar left silent."""

from __future__ import annotations

import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch

from r1.eval import evaluate
from r1.progress import Progress, format_duration, format_rate
from r1.train.run import RunLogger


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


def test_duration_and_rate_formats():
    seconds = (0, 42.4, 60, 312, 3600 + 5 * 60 + 59)
    assert [format_duration(s) for s in seconds] == ["0s", "42s", "1m 00s", "5m 12s", "1h 05m"]
    assert format_rate(12.44, "step") == "12.4 s/step" and format_rate(0.25, "sample") == "4.0 samples/s"


def test_eta_is_the_mean_rate_times_the_work_left(clock, capsys):
    bar = Progress("grpo step", 30, clock=clock)
    clock.now += 37.2  # 3 steps in 37.2 s: 12.4 s/step; 27 steps left → 334.8 s = 5m 35s
    assert bar.update(3, reward=0.3125) == "grpo step 3/30  12.4 s/step  elapsed 37s  ETA 5m 35s  reward 0.3125"
    assert capsys.readouterr().out == "grpo step 3/30  12.4 s/step  elapsed 37s  ETA 5m 35s  reward 0.3125\n"


def test_a_resumed_run_counts_only_its_own_steps(clock):
    bar = Progress("sft step", 20, begin=10, clock=clock)
    clock.now += 4.0  # steps 11 and 12 took 4 s: 2 s/step, 8 steps left
    assert bar.update(12) == "sft step 12/20  2.0 s/step  elapsed 4s  ETA 16s"


def test_a_time_budget_bounds_the_eta(clock):
    bar = Progress("distill step", 100000, budget_s=300, clock=clock)
    clock.now += 100.0  # 2 steps in 100 s: the steps would take 58 days; the budget ends it in 200 s
    assert bar.update(2) == "distill step 2/100000  50.0 s/step  elapsed 1m 40s  ETA 3m 20s"
    short = Progress("grpo step", 4, budget_s=300, clock=clock)
    clock.now += 20.0  # 2 steps in 20 s: the steps end first (20 s), not the budget
    assert short.update(2) == "grpo step 2/4  10.0 s/step  elapsed 20s  ETA 20s"


def test_stage_lines_without_eta(clock):
    bar = Progress("demo stage", 5, unit="stage", eta=False, clock=clock)
    clock.now += 219
    assert bar.update(1, eval_base="3m 39s") == "demo stage 1/5  elapsed 3m 39s  eval_base 3m 39s"


def test_rate_limit_bounds_lines_and_the_last_always_prints(clock, capsys):
    bar = Progress("eval", 1000, unit="sample", clock=clock)
    for done in range(1, 1001):  # 1000 updates, 10 ms apart: 10 s of work
        clock.now += 0.01
        bar.update(done)
    lines = capsys.readouterr().out.splitlines()
    assert 19 <= len(lines) <= 21  # one per min_interval_s = 0.5 s, plus the last
    assert lines[-1].startswith("eval 1000/1000  100.0 samples/s  elapsed 10s  ETA 0s")


def test_quiet_updates_print_only_a_heartbeat(clock):
    bar = Progress("grpo step", 100, clock=clock)
    printed = []
    for step in range(1, 100):  # 10 s per step, every one quiet (train.log_every > 99)
        clock.now += 10.0
        printed += [step] if bar.update(step, quiet=True) else []
    assert printed == list(range(3, 100, 3))  # every 30 s of work
    assert bar.update(100, quiet=True) is not None  # the last step always


def test_disabled_prints_nothing(clock, capsys):
    bar = Progress("eval", 2, enabled=False, clock=clock)
    clock.now += 5
    assert bar.update(2) is None and capsys.readouterr().out == ""


def test_run_logger_prints_the_last_step_even_when_every_step_is_quiet(tmp_path, capsys):
    logger = RunLogger(tmp_path, total_steps=3, label="sft")
    for step in (1, 2, 3):  # train.log_every > 3: every step quiet, and faster than the 30 s heartbeat
        logger.log(step, {"loss": 0.5}, show=False)
    logger.close()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sft step 3/3  ") and "ETA 0s" in lines[0]
    assert lines[0].endswith("loss 0.5000")


def test_eval_prints_a_line_per_chunk_with_eta(capsys):
    def slow_generate(model, tokenizer, prompt_ids, sampling):  # a chunk slower than the 0.5 s rate limit
        time.sleep(0.55)
        rows = len(prompt_ids)
        return SimpleNamespace(
            texts=["<think> x </think> <answer> 2 </answer>"] * rows,
            lengths=torch.full((rows,), 7),
            truncated=torch.zeros(rows, dtype=torch.bool),
        )

    examples = [{"id": f"p{i}", "prompt": "1 + 1?", "answer": "2", "prompt_ids": [1, 2, 3]} for i in range(3)]
    evaluate(None, None, examples, k=2, batch_size=2, generate_fn=slow_generate)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["eval 2/6", "eval 4/6", "eval 6/6"]
    assert all(" samples/s  elapsed " in line and "  ETA " in line and line.endswith("len 7") for line in lines)


def test_grpo_into_a_pipe_prints_step_lines_with_eta(tiny_model_dir, tmp_path):
    overrides = [
        f"model.name={tiny_model_dir}",
        f"run.output_dir={tmp_path / 'run'}",
        "run.threads=1",
        "data.source=arithmetic",
        "data.size=16",
        "rollout.prompts_per_step=2",
        "rollout.samples_per_prompt=2",
        "rollout.max_new_tokens=4",
        "train.steps=2",
        "train.micro_batch_size=4",
        "train.sample_every=0",
    ]
    done = subprocess.run([sys.executable, "-m", "r1", "grpo", *overrides], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    progress = [line for line in done.stdout.splitlines() if line.startswith("grpo step ")]  # fast steps: rate-limited
    assert progress[-1].startswith("grpo step 2/2  ") and "ETA 0s" in progress[-1] and "reward" in progress[-1]
    assert all("ETA" in line for line in progress)
