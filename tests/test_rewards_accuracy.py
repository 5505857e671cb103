"""The accuracy reward end to end: equivalences, hacks, pathological inputs, the worker pool."""

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from r1.rewards import REWARDS, answers_equivalent, configure, score_completions, shutdown
from r1.rewards import runtime as pool_module  # the default runtime: get_pool, configure, shutdown

TIMEOUT_S = 1.0
# A call may also wait for a replacement worker to start (~1-2 s) after a previous timeout.
MARGIN_S = 3.0


@pytest.fixture(scope="module", autouse=True)
def small_pool():
    configure(workers=2, timeout_s=TIMEOUT_S, memory_mb=1024)
    yield
    configure()  # back to defaults (this also shuts the test pool down)


def accuracy(answer: str, reference: str) -> float:
    return REWARDS["accuracy"](f"<think>work</think><answer>{answer}</answer>", {"answer": reference})


@pytest.mark.parametrize(
    "answer, reference",
    [
        ("18", "18"),
        ("18.00", "18"),
        ("$18", "18"),
        ("\\$18.00", "18"),
        ("18 dollars", "18"),
        ("18 eggs", "18"),
        ("1,000", "1000"),
        ("$1,000,000", "1000000"),
        ("5 cm", "5"),
        ("5\\text{ cm}", "5"),
        ("\\dfrac{14}{3}", "\\frac{14}{3}"),
        ("14/3", "\\frac{14}{3}"),
        ("0.5", "\\frac{1}{2}"),
        ("50\\%", "\\frac{1}{2}"),
        ("\\sqrt{117}", "3\\sqrt{13}"),
        ("2\\pi", "2\\pi"),
        ("90", "90^\\circ"),
        ("90^\\circ", "90^\\circ"),
        ("90°", "90"),
        ("x = 5", "5"),
        ("5", "x=5"),
        ("(3, \\pi/2)", "\\left( 3, \\frac{\\pi}{2} \\right)"),
        ("\\{2, 1\\}", "\\{1, 2\\}"),
        ("[-2, 7]", "x \\in [-2,7]"),
        ("(-\\infty,0]", "(-\\infty, 0]"),
        ("\\begin{pmatrix}-1&0\\\\0&-1\\end{pmatrix}", "\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}"),
        ("C", "\\text{(C)}"),
        ("(C)", "\\text{(C)}"),
        ("-q + p", "p - q"),
        ("10080", "10,\\!080"),
        ("32348", "\\$32,\\!348"),
        ("5.4", "5.4 \\text{ cents}"),
        ("\\boxed{5}", "5"),
        ("1 + \\sqrt{19}, 1 - \\sqrt{19}", "1 \\pm \\sqrt{19}"),
    ],
)
def test_equivalent(answer, reference):
    assert accuracy(answer, reference) == 1.0


@pytest.mark.parametrize(
    "answer, reference",
    [
        ("17", "18"),
        ("4.67", "\\frac{14}{3}"),
        ("3.14", "\\pi"),
        ("10.0001", "10"),
        ("p + q", "p - q"),
        ("(2, 5)", "5"),  # a tuple for a single value
        ("2, 5", "5"),  # a list for a single value
        ("\\{2, 5\\}", "5"),
        ("2 or 5", "5"),  # hedges
        ("either 4 or 5", "5"),
        ("any number from 0 to 100", "100"),
        ("between 3 and 7", "5"),
        ("5 or more", "5"),
        ("x \\geq 5", "5"),
        ("D", "\\text{(C)}"),
        ("(3, \\pi)", "\\left( 3, \\frac{\\pi}{2} \\right)"),
        ("", "5"),
        ("5\x00", "5"),
    ],
)
def test_not_equivalent(answer, reference):
    assert accuracy(answer, reference) == 0.0


@pytest.mark.parametrize(
    "completion, score",
    [
        ("<think>2+3</think><answer>5</answer>", 1.0),
        ("<think>2+3</think>\\boxed{5}", 1.0),
        ("The total is \\boxed{5}.", 1.0),
        ("<think>2+3 so <answer>5</answer></think>", 0.0),  # answer only inside think
        ("<think>2+3 = \\boxed{5}", 0.0),  # think never closes
        ("<think>x</think><answer>5</answer><answer>6</answer>", 0.0),
        ("<think>x</think><answer>5</answer><answer>5</answer>", 0.0),
        ("<think>x</think>\\boxed{5} or \\boxed{6}", 0.0),  # two different boxed values
        ("<think>x</think>\\boxed{\\frac{10}{2}} so \\boxed{5}", 1.0),  # different text, same value
        ("<think>x</think><answer>\\boxed{5} or 6</answer>", 0.0),
        ("The answer is 5.", 0.0),  # no tag, no box
        ("2+3</think><answer>5</answer>", 1.0),
    ],
)
def test_extraction_rules(completion, score):
    assert REWARDS["accuracy"](completion, {"answer": "5"}) == score


def test_think_prefilled():
    completion = "I compute 2+3 = <answer>5</answer>"  # the model never closed the prefilled think
    assert REWARDS["accuracy"](completion, {"answer": "5"}) == 1.0
    assert REWARDS["accuracy"](completion, {"answer": "5", "think_prefilled": True}) == 0.0
    closed = "I compute 2+3.</think><answer>5</answer>"
    assert REWARDS["accuracy"](closed, {"answer": "5", "think_prefilled": True}) == 1.0


PATHOLOGICAL = {
    "power_tower": "9^9^9^9^9^9^9^9",
    "huge_factorial": "100000!",
    "huge_power": "10^{10^{10^{10}}}",
    "long_sum": "+".join(["1"] * 50_000),
    "deep_frac": "\\frac{1}{" * 300 + "2" + "}" * 300,
    "nested_parens": "(" * 5000 + "1" + ")" * 5000,
    "nul_bytes": "5\x00\x00" * 100,
    "deep_sqrt": "\\sqrt{" * 200 + "2" + "}" * 200,
}


def _timed(fn, *args):
    start = time.monotonic()
    value = fn(*args)
    return value, time.monotonic() - start


def _in_thread(fn, *args):
    out = {}
    thread = threading.Thread(target=lambda: out.update(result=_timed(fn, *args)))
    thread.start()
    thread.join(60)
    return out["result"]


@pytest.mark.parametrize("where", ["main_thread", "worker_thread"])
@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_answer_scores_zero_in_time(name, where):
    run = _timed if where == "main_thread" else _in_thread
    value, elapsed = run(accuracy, PATHOLOGICAL[name], "5")
    assert value == 0.0
    assert elapsed < TIMEOUT_S + MARGIN_S


@pytest.mark.parametrize("name", ["power_tower", "huge_power", "deep_frac", "nested_parens"])
def test_pool_contains_pathological_input(name):
    """Straight to the pool (no parent-side length filter): bounded time, pool still works."""
    pool = pool_module.get_pool()
    outcome, elapsed = _in_thread(pool.check, "5", PATHOLOGICAL[name])
    assert outcome in ("different", "timeout", "crash")
    assert elapsed < TIMEOUT_S + MARGIN_S
    assert pool.check("\\frac{1}{2}", "0.5") == "equal"


def test_timeout_is_counted_and_pool_recovers():
    completions = ["<think>x</think><answer>9^9^9^9^9^9^9^9</answer>", "<think>x</think><answer>0.5</answer>"]
    examples = [{"answer": "7"}, {"answer": "\\frac{1}{2}"}]
    scores = score_completions(completions, examples, ["accuracy"])
    assert scores.values["accuracy"] == [0.0, 1.0]
    assert scores.counts["rewards/accuracy_timeouts"] == 1
    assert "9^9^9" in scores.first_error["accuracy"]
    assert score_completions(completions[1:], examples[1:], ["accuracy"]).values["accuracy"] == [1.0]


def _kill_workers_for(seconds: float) -> threading.Thread:
    """Background thread SIGKILLing every pool worker (replacements too) for ``seconds``."""

    def loop():
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for pid in pool_module.get_pool().pids():
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)

    thread = threading.Thread(target=loop)
    thread.start()
    return thread


def test_dying_workers_count_as_crash_and_are_replaced():
    killer = _kill_workers_for(1.5)
    time.sleep(0.1)
    scores = score_completions(["<think>x</think><answer>9^9^9^9</answer>"], [{"answer": "5"}], ["accuracy"])
    killer.join()
    time.sleep(0.2)  # let the last kills land before asking the pool again
    assert scores.values["accuracy"] == [0.0]
    assert scores.counts == {"rewards/accuracy_crashes": 1}
    assert pool_module.get_pool().check("2", "\\sqrt{4}") == "equal"


def test_worker_killed_while_idle_is_not_blamed_on_the_next_sample():
    pool = pool_module.get_pool()
    assert pool.check("1", "1.0") == "equal"  # workers are up
    before = set(pool.pids())
    for pid in before:
        os.kill(pid, 9)
    time.sleep(0.2)  # "a while ago": the kill has landed, the pool has not noticed yet
    assert pool.check("2", "\\sqrt{4}") == "equal"
    assert not before & set(pool.pids())


def test_worker_memory_is_capped():
    pool = pool_module.get_pool()
    pool.check("1", "1")
    for pid in pool.pids():
        with open(f"/proc/{pid}/limits") as f:
            line = next(line for line in f if line.startswith("Max address space"))
        assert line.split()[3] == str(1024 * 1024 * 1024)


def test_batch_runs_concurrently_and_in_order():
    references = [str(i) for i in range(40)]
    completions = [
        f"<think>x</think><answer>{r}.0</answer>" if i % 2 else f"\\boxed{{{r}+1}}" for i, r in enumerate(references)
    ]
    scores = score_completions(completions, [{"answer": r} for r in references], ["accuracy", "format"])
    assert scores.values["accuracy"] == [float(i % 2) for i in range(40)]
    assert scores.values["format"] == [float(i % 2) for i in range(40)]


def test_answers_equivalent():
    assert answers_equivalent("\\frac{1}{2}", "0.5")
    assert answers_equivalent("1,000", "1000")
    assert not answers_equivalent("2", "3")
    assert not answers_equivalent("5", "9^9^9^9^9^9^9^9")


def test_no_children_left_after_shutdown():
    pool = pool_module.get_pool()
    pids = pool.pids()
    assert len(pids) == 2 and all(os.path.exists(f"/proc/{pid}") for pid in pids)
    shutdown()
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids)
    assert accuracy("5", "5.0") == 1.0  # the next use starts a new pool


def test_workers_exit_when_parent_dies_abruptly():
    """A trainer killed without running atexit must not leave workers behind."""
    script = textwrap.dedent("""
        import os, sys
        from r1.rewards import runtime as pool
        p = pool.get_pool()
        assert p.check("1", "1.0") == "equal"
        print(" ".join(map(str, p.pids())), flush=True)
        os._exit(0)
    """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    pids = [int(p) for p in out.stdout.split()]
    assert pids
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
