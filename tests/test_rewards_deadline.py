"""Every reward has a deadline: a hung call scores None, is counted, and costs one limit — not the run.

Timing bounds are derived, not guessed: a batch must take at least (hung calls × limit) — the
caller really waited each deadline out — and at most that plus MARGIN_S, the normal work of a
few trivial calls, thread starts and scheduling on a loaded 2-core machine.
"""

import subprocess
import sys
import threading
import time

import pytest

from r1 import rewards
from r1.rewards import REWARDS, check_reward_names, register, score_completions
from r1.rewards import pool
from r1.rewards.deadline import TIMED_OUT, run_with_deadline

TIMEOUT_S = 0.5
MARGIN_S = 1.0


@pytest.fixture
def short_deadline():
    """rewards.timeout_s = TIMEOUT_S for one test; the configuration and REWARDS are restored after."""
    saved, before = rewards.default_runtime().limits, set(REWARDS)
    rewards.configure(workers=2, timeout_s=TIMEOUT_S)
    yield
    for name in set(REWARDS) - before:
        REWARDS.pop(name)
    rewards.configure(workers=saved.workers, timeout_s=saved.timeout_s, memory_mb=saved.memory_mb)


@pytest.fixture
def release():
    """An event set at teardown: lets a spinning reward's abandoned thread end instead of eating a core."""
    event = threading.Event()
    yield event
    event.set()


def timed_score(completions, names, examples=None):
    start = time.monotonic()
    scores = score_completions(completions, examples or [{} for _ in completions], names)
    return scores, time.monotonic() - start


def assert_took(elapsed: float, hung_calls: int, limit_s: float = TIMEOUT_S) -> None:
    assert hung_calls * limit_s <= elapsed < hung_calls * limit_s + MARGIN_S, elapsed


def test_a_sleeping_reward_scores_none_is_counted_and_costs_one_limit_per_hung_call(short_deadline):
    @register("test_sleepy")
    def sleepy(completion, example):
        if "hang" in completion:
            time.sleep(10**6)
        return 1.0

    scores, elapsed = timed_score(["ok", "hang 1", "ok", "hang 2"], ["test_sleepy", "format"])
    assert scores.values["test_sleepy"] == [1.0, None, 1.0, None]
    assert scores.values["format"] == [0.0] * 4  # the other reward of the call is unaffected
    assert scores.counts == {"rewards/test_sleepy_errors": 2, "rewards/test_sleepy_timeouts": 2}
    assert scores.first_error["test_sleepy"] == "test_sleepy: no result within 0.5 s on completion 'hang 1'"
    assert_took(elapsed, hung_calls=2)


def test_one_hung_sample_of_several_the_rest_still_score(short_deadline):
    @register("test_one_hangs")
    def one_hangs(completion, example):
        if completion == "c":
            time.sleep(10**6)
        return float(len(completion))

    scores, elapsed = timed_score(["a", "bb", "c", "dddd", "eeeee"], ["test_one_hangs"])
    assert scores.values["test_one_hangs"] == [1.0, 2.0, None, 4.0, 5.0]
    assert scores.counts == {"rewards/test_one_hangs_errors": 1, "rewards/test_one_hangs_timeouts": 1}
    assert_took(elapsed, hung_calls=1)


def test_a_pure_python_loop_is_abandoned_too(short_deadline, release):
    @register("test_spins")
    def spins(completion, example):
        while completion == "spin" and not release.is_set():  # `while True: pass`, ended only at teardown
            pass
        return 1.0

    scores, elapsed = timed_score(["spin", "ok", "ok"], ["test_spins"])
    assert scores.values["test_spins"] == [None, 1.0, 1.0]
    assert scores.counts["rewards/test_spins_timeouts"] == 1
    assert_took(elapsed, hung_calls=1)


def test_a_hung_batched_reward_fails_every_sample_after_one_deadline(short_deadline):
    @register("test_batch_hangs", batched=True)
    def batch_hangs(completions, examples):
        time.sleep(10**6)

    scores, elapsed = timed_score(["a", "b"], ["test_batch_hangs"])
    assert scores.values["test_batch_hangs"] == [None, None]
    assert scores.counts == {"rewards/test_batch_hangs_errors": 2, "rewards/test_batch_hangs_timeouts": 2}
    assert "no result within 1 s" in scores.first_error["test_batch_hangs"]  # the batch's limit: 2 × 0.5 s
    assert_took(elapsed, hung_calls=1, limit_s=2 * TIMEOUT_S)


def test_a_concurrent_reward_hanging_in_its_thread_is_bounded_by_the_pool_backstop(short_deadline, monkeypatch):
    monkeypatch.setattr(pool, "STARTUP_TIMEOUT_S", 0.25)  # max_check_s = 2 × (0.25 + 0.5) = 1.5 s
    assert rewards.default_runtime().max_check_s() == pytest.approx(1.5)

    @register("test_concurrent_hangs", concurrent=True)
    def concurrent_hangs(completion, example):
        if completion == "hang":
            time.sleep(10**6)
        return 1.0

    scores, elapsed = timed_score(["a", "hang", "b", "c"], ["test_concurrent_hangs"])
    assert scores.values["test_concurrent_hangs"] == [1.0, None, 1.0, 1.0]
    assert scores.counts["rewards/test_concurrent_hangs_timeouts"] == 1
    assert_took(elapsed, hung_calls=1, limit_s=1.5)


def test_a_reward_that_returns_in_time_is_unaffected(short_deadline):
    caller_value = rewards.registry.contextvars.ContextVar("caller_value")
    caller_value.set(7.0)

    @register("test_prompt")
    def prompt(completion, example):
        time.sleep(TIMEOUT_S / 5)  # slow, but well inside its limit
        rewards.registry.note("seen", "a note from the reward's thread")
        return caller_value.get()  # the caller's context reaches the call, as inline

    scores, _ = timed_score(["a", "b", "c"], ["test_prompt"])
    assert scores.values["test_prompt"] == [7.0, 7.0, 7.0]
    assert scores.counts == {"rewards/test_prompt_seen": 3}


def test_run_with_deadline_keeps_order_and_reraises_a_base_exception():
    assert run_with_deadline(lambda x: x * x, range(5), limit_s=5.0, lanes=3) == [0, 1, 4, 9, 16]
    assert run_with_deadline(lambda s: time.sleep(s) or s, [0.0, 60.0], limit_s=0.2) == [0.0, TIMED_OUT]
    with pytest.raises(SystemExit):
        run_with_deadline(lambda x: sys.exit(3) if x else x, [0, 1], limit_s=5.0)


def test_the_interpreter_still_exits_with_a_hung_reward_abandoned():
    code = (
        "import time\n"
        "from r1 import rewards\n"
        "rewards.configure(timeout_s=0.2)\n"
        "rewards.register('hangs')(lambda c, e: time.sleep(10**6))\n"
        "print(rewards.score_completions(['x'], [{}], ['hangs']).values)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{'hangs': [None]}"


def test_unknown_reward_names_are_rejected_with_a_suggestion():
    with pytest.raises(ValueError) as raised:
        check_reward_names({"acuracy": 1.0, "format": 0.5})
    message = str(raised.value)
    assert message.startswith(
        "unknown reward 'acuracy' (did you mean 'accuracy'?) in rewards.weights; registered rewards: "
    )
    assert "format" in message and "\n" not in message
    routed = r"unknown rewards 'helpfulnes' \(did you mean 'helpfulness'\?\), 'zzz' in rewards.routes;"
    with pytest.raises(ValueError, match=routed):
        check_reward_names(["format", "helpfulnes", "zzz", "zzz"], where="rewards.routes")
    check_reward_names({"accuracy": 1.0, "format": 0.5})  # known names pass
    with pytest.raises(ValueError, match="did you mean 'format'"):
        score_completions(["x"], [{}], ["fromat"])
