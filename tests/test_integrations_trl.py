"""r1's rewards with TRL's reward-function signature (r1/integrations/trl.py): the mapping of plain and
conversational batches to r1 examples, the errors for missing columns, and real GRPOTrainer steps on the
tiny model — one of them the snippet of docs/interop.md, executed as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from r1.integrations import trl as r1_trl

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the tiny model is a local folder: nothing may reach the hub
DOCS = Path(__file__).resolve().parent.parent / "docs" / "interop.md"
RIGHT, WRONG = "<think>3 + 2 = 5</think><answer>5</answer>", "<think>guess</think><answer>7</answer>"


def as_messages(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


@pytest.mark.parametrize("wrap", [str, as_messages], ids=["plain", "conversational"])
def test_accuracy_reads_answer_or_solution_columns(wrap):
    completions = [wrap(RIGHT), wrap(WRONG), wrap("no tags at all")]
    assert r1_trl.accuracy_reward(completions=completions, answer=["5", "5", "5"]) == [1.0, 0.0, 0.0]
    solutions = ["so the sum is \\boxed{5}"] * 3  # a worked solution: its box is the reference
    assert r1_trl.accuracy_reward(prompts=["p"] * 3, completions=completions, solution=solutions) == [1.0, 0.0, 0.0]


def test_the_call_trl_makes_is_accepted():
    """Keywords as GRPOTrainer passes them: completion_ids, trainer objects, log_metric, extra columns."""
    logged = []
    values = r1_trl.accuracy_reward(
        prompts=[[{"role": "user", "content": "What is 3 + 2?"}]] * 2,
        completions=[as_messages(RIGHT), as_messages(WRONG)],
        completion_ids=[[1, 2], [3]],
        solution=["5", "5"],
        source=["toy", "toy"],
        trainer_state=object(),
        log_extra=lambda column, values: None,
        log_metric=lambda name, value: logged.append((name, value)),
    )
    assert values == [1.0, 0.0]
    assert logged == []  # no r1 events (timeouts, errors) in this batch


@pytest.mark.parametrize("wrap", [str, as_messages], ids=["plain", "conversational"])
def test_format_and_language(wrap):
    assert r1_trl.format_reward(completions=[wrap(RIGHT), wrap("5")]) == [1.0, 0.0]
    mixed = "<think>先算 the sum</think><answer>3</answer>"
    assert r1_trl.language_reward(completions=[wrap(mixed)], language=["zh"]) == [0.5]
    # no language column: detected from the prompt's text (the last user message of a conversational prompt)
    prompts = [[{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "计算三加二"}]]
    assert r1_trl.language_reward(prompts=prompts, completions=[wrap(mixed)]) == [0.5]
    assert r1_trl.format_reward.__name__ == "format_reward"


def test_code_runs_the_tests_column_in_the_sandbox():
    test = "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(3) == 6\n"
    good = "<think>double it</think>\n```python\ndef double(x):\n    return 2 * x\n```"
    half = "<think>hm</think>\n```python\ndef double(x):\n    return 2 if x == 1 else 0\n```"
    columns = {"tests": [test, test], "entry_point": ["double", "double"]}
    assert r1_trl.code_reward(completions=[good, as_messages(half)], **columns) == [1.0, 0.5]


@pytest.mark.parametrize(
    "reward, columns, missing",
    [
        (r1_trl.accuracy_reward, {"problem": ["q"]}, "'answer' or 'solution'"),
        (r1_trl.code_reward, {"test": ["def check(c):\n    assert c(1)\n"]}, "'entry_point'"),
    ],
)
def test_a_missing_column_is_named(reward, columns, missing):
    with pytest.raises(ValueError, match=f"needs a dataset column {missing}; the batch has columns"):
        reward(prompts=["q"], completions=[RIGHT], **columns)


def test_a_failing_sample_scores_none_and_is_counted():
    logged = []
    values = r1_trl.code_reward(
        completions=["```python\nx = 1\n```"],
        test=["not python ("],
        entry_point=["f"],
        log_metric=lambda *a: logged.append(a),
    )
    assert values == [None]  # TRL leaves a None out of the group statistics
    assert ("rewards/code_errors", 1.0) in logged


def test_any_registered_reward_can_be_wrapped():
    soft = r1_trl.trl_reward("format_soft")
    assert soft.__name__ == "format_soft"
    assert soft(completions=["<think>a</think>"]) == [0.25]
    with pytest.raises(ValueError, match="unknown r1 reward 'nope'"):
        r1_trl.trl_reward("nope")


def test_importing_the_integration_does_not_import_trl():
    code = "import sys, r1.integrations.trl; assert 'trl' not in sys.modules, 'imported trl'"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- real TRL steps ------------------------------------------------------------------------------


def documented_snippet() -> str:
    """The python block that follows the `tested by` marker in docs/interop.md."""
    text = DOCS.read_text(encoding="utf-8")
    found = re.search(r"<!-- tested by tests/test_integrations_trl.py -->\s*```python\n(.*?)```", text, re.S)
    assert found, "docs/interop.md lost its tested TRL snippet"
    return found.group(1)


def test_the_documented_trl_snippet_runs_a_grpo_step(tiny_model_dir, tmp_path, monkeypatch):
    pytest.importorskip("trl", reason="TRL is not installed (pip install trl)")
    seen, scored = [], r1_trl.score_completions

    def recording(texts, examples, names, **kwargs):
        seen.extend(examples if names == ["accuracy"] else [])
        return scored(texts, examples, names, **kwargs)

    monkeypatch.setattr(r1_trl, "score_completions", recording)
    namespace = {"model": str(tiny_model_dir), "output_dir": str(tmp_path)}
    exec(documented_snippet(), namespace)
    state = namespace["trainer"].state
    assert state.global_step == 1
    logged = {key for row in state.log_history for key in row}
    assert {"rewards/accuracy_reward/mean", "rewards/format_reward/mean"} <= logged
    assert seen and {e["answer"] for e in seen} <= {"5", "8"}  # the solution column reached r1 as the reference
    assert all(e["prompt"].startswith("What is") for e in seen)


def test_a_conversational_dataset_trains_a_step(tiny_model_dir, tmp_path):
    trl = pytest.importorskip("trl", reason="TRL is not installed (pip install trl)")
    from datasets import Dataset

    rows = [{"prompt": [{"role": "user", "content": f"What is {a} + 1?"}], "answer": str(a + 1)} for a in (2, 4)]
    args = trl.GRPOConfig(
        output_dir=str(tmp_path),
        max_steps=1,
        per_device_train_batch_size=2,
        num_generations=2,
        max_completion_length=8,
        report_to=[],
        use_cpu=True,
        logging_steps=1,
        save_strategy="no",
    )
    rewards = [r1_trl.accuracy_reward, r1_trl.format_reward, r1_trl.language_reward]
    trainer = trl.GRPOTrainer(
        model=str(tiny_model_dir), reward_funcs=rewards, args=args, train_dataset=Dataset.from_list(rows)
    )
    trainer.train()
    row = next(row for row in trainer.state.log_history if "rewards/language_reward/mean" in row)
    for name in ("accuracy_reward", "format_reward", "language_reward"):
        assert 0.0 <= row[f"rewards/{name}/mean"] <= 1.0
