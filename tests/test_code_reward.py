"""The code reward: code extraction, fraction/binary scoring, HumanEval as data and as an eval
benchmark, and the required outcome that every canonical HumanEval solution scores 1 (164/164)."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from r1.config import load_config
from r1.data import load_examples
from r1.eval.harness import _score, compute_metrics, reward_names
from r1.rewards import REWARDS, score_completions
from r1.rewards import code as code_module
from r1.rewards.code import build_job, check_statements, extract_code

code_reward = REWARDS["code"]
DOUBLE = {  # a small code task in HumanEval's format
    "code_prompt": 'def double(x):\n    """Twice x."""\n',
    "entry_point": "double",
    "test": "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(2) == 4\n    assert "
    "candidate(0) == 0\n    assert True, 'free'\n",
}


def fenced(code: str, tag: str = "python") -> str:
    return f"```{tag}\n{code}```"


@pytest.mark.parametrize(
    "completion, expected",
    [
        (fenced("x = 1\n"), "x = 1\n"),
        (fenced("x = 1\n", tag=""), "x = 1\n"),
        (fenced("x = 1\n", tag="py") + "\n" + fenced("x = 2\n", tag="Python3"), "x = 2\n"),  # the last Python block
        (fenced("x = 1\n") + "\n" + fenced("not python\n", tag="text"), "x = 1\n"),  # other languages are skipped
        ("no code here", None),
        ("<think>" + fenced("x = 1\n") + "</think> done", None),  # code only while thinking does not count
        ("<think>" + fenced("x = 1\n"), None),  # the think block never closed
        ("<think>plan</think> " + fenced("x = 1\n"), "x = 1\n"),
        # inside the answer
        (
            "<think>plan</think><answer>" + fenced("a = 1\n") + "</answer>\n" + fenced("b = 2\n"),
            "a = 1\n",
        ),
        ("<answer>" + fenced("a = 1\n") + "</answer><answer>" + fenced("b = 2\n") + "</answer>", None),  # two answers
        ("<answer>" + fenced("a = 1\n") + "</answer> and a stray </answer>", None),
        (fenced("x = 1\n") + "\n```python\ntruncated = (", "x = 1\n"),  # an unclosed fence does not count
        # list indent removed
        (
            "1. the code:\n   ```python\n   def f():\n       return 1\n   ```",
            "def f():\n    return 1\n",
        ),
        (fenced("    return x * 2\n"), "    return x * 2\n"),  # a body keeps its indentation
        (fenced("\n\n"), None),  # an empty block is no code
    ],
)
def test_extract_code(completion, expected):
    assert extract_code(completion) == expected


def test_extract_code_with_prefilled_think():
    assert extract_code("plan</think>" + fenced("x = 1\n"), {"think_prefilled": True}) == "x = 1\n"
    assert extract_code("plan " + fenced("x = 1\n"), {"think_prefilled": True}) is None


def test_check_statements_split_humaneval_tests():
    setup, statements, parameter = check_statements(
        "import math\nMETADATA = {}\ndef check(f):\n    import random\n"
        "    assert f(1) == 2\n    for i in range(3):\n        assert f(i) == 2 * i\n"
        "    assert True, 'free'\n"
    )
    assert parameter == "f" and "METADATA" in setup and "import math" in setup
    assert [s.counted for s in statements] == [False, True, True, False]  # import and `assert True` are setup
    with pytest.raises(ValueError, match="check"):
        check_statements("def test(candidate):\n    assert candidate(1)\n")
    with pytest.raises(ValueError, match="no assert"):
        check_statements("def check(candidate):\n    candidate(1)\n")


def test_fraction_passed_and_binary_mode(monkeypatch):
    half_right = fenced("def double(x):\n    return 2 if x == 1 else x * 3\n")  # right for 1 and 0
    assert code_reward(half_right, DOUBLE) == pytest.approx(2 / 3)
    assert code_reward(fenced("def double(x):\n    return x + x\n"), DOUBLE) == 1.0
    assert code_reward(half_right, {**DOUBLE, "binary": True}) == 0.0
    monkeypatch.setattr(code_module, "BINARY", True)
    assert code_reward(half_right, DOUBLE) == 0.0
    assert code_reward(fenced("    return 2 * x\n"), DOUBLE) == 1.0  # a body completes the prompt's stub


def test_no_code_or_broken_code_scores_zero():
    assert code_reward("The answer is to double x.", DOUBLE) == 0.0
    assert code_reward(fenced("def double(x) return x\n"), DOUBLE) == 0.0  # SyntaxError
    assert code_reward(fenced("def triple(x):\n    return 3 * x\n"), DOUBLE) == 0.0  # the stub stays: returns None


def test_prompt_helpers_and_imports_are_available_to_a_full_function():
    example = {
        "code_prompt": "import math\n\ndef helper(x):\n    return math.sqrt(x)\n\ndef root(x):\n    '''doc'''\n",
        "entry_point": "root",
        "test": "def check(candidate):\n    assert candidate(16) == helper(16) == 4.0\n",
    }
    assert code_reward(fenced("def root(x):\n    return helper(x)\n"), example) == 1.0


def test_timeouts_and_bad_examples_are_counted(monkeypatch):
    monkeypatch.setattr(code_module, "LIMITS", code_module.sandbox.Limits(wall_s=1.0))
    looping = fenced("def double(x):\n    while True:\n        pass\n")
    scores = score_completions([looping, fenced("x = 1\n")], [DOUBLE, {"entry_point": "double"}], ["code"])
    assert scores.values["code"] == [0.0, None]  # the example without tests is a data error, not a 0
    assert scores.counts["rewards/code_timeouts"] == 1 and scores.counts["rewards/code_errors"] == 1
    assert "example['test']" in scores.first_error["code"]
    with pytest.raises(ValueError, match="entry_point"):
        build_job("x = 1\n", {"test": DOUBLE["test"]})


def test_humaneval_loads_as_a_code_dataset():
    examples = load_examples("humaneval")
    assert len(examples) == 164 and len({e["id"] for e in examples}) == 164
    first = examples[0]
    assert first["id"] == "HumanEval/0" and first["reward"] == "code" and first["entry_point"] == "has_close_elements"
    assert "```python" in first["prompt"] and first["code_prompt"] in first["prompt"]
    assert first["answer"].startswith(first["code_prompt"])  # the reference: the complete canonical function
    assert len(load_examples("humaneval", limit=5)) == 5


def test_grpo_config_accepts_the_code_reward():
    cfg = load_config(None, ["data.source=humaneval", "rewards.weights={code: 1.0}"])
    assert cfg.rewards.weights == {"code": 1.0} and "code" in REWARDS


def test_canonical_humaneval_solutions_all_pass():
    """Required outcome: 164/164 (the wall time is printed; docs/sandbox.md records it)."""
    examples = load_examples("humaneval")
    completions = [f"<think>known</think> <answer>{fenced(e['answer'])}</answer>" for e in examples]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        scores = list(pool.map(code_reward, completions, examples))
    print(f"canonical HumanEval: {sum(s == 1.0 for s in scores)}/164 in {time.perf_counter() - start:.1f} s")
    assert [e["id"] for e, s in zip(examples, scores) if s != 1.0] == []
    bodies = [fenced(e["canonical_solution"]) for e in examples[:8]]  # body-only answers complete the stub
    assert [code_reward(b, e) for b, e in zip(bodies, examples[:8])] == [1.0] * 8


def test_eval_scores_humaneval_with_the_code_reward():
    examples = load_examples("humaneval", limit=2)
    right = [f"<think>ok</think><answer>{fenced(e['answer'])}</answer>" for e in examples]
    wrong = "<think>hmm</think><answer>" + fenced("def nothing():\n    pass\n") + "</answer>"
    texts = [right[0], right[0], right[1], wrong]  # problem 0: 2/2 correct; problem 1: 1/2
    rows = [examples[0], examples[0], examples[1], examples[1]]
    records, events = _score(examples, 2, rows, texts, [10] * 4, [False] * 4)
    assert reward_names(examples) == ["code", "format", "language"]
    assert [[s["correct"] for s in r["samples"]] for r in records] == [[True, True], [True, False]]
    assert (
        records[0]["samples"][0]["rewards"]["code"] == 1.0
        and records[0]["samples"][0]["answer"] == examples[0]["answer"]
    )
    assert records[0]["majority"]["correct"] and records[1]["majority"]["correct"]  # a tie goes to the first program
    metrics = compute_metrics(records, 2)
    assert metrics["pass@1"]["mean"] == pytest.approx(0.75) and metrics["pass@k"]["2"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="different correctness rewards"):
        reward_names([examples[0], {"prompt": "1+1?", "answer": "2"}])
