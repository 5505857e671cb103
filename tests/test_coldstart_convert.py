"""Cold-start data from model outputs: R1-Zero samples (r1 eval / r1 grpo) and teacher outputs
rewritten in the R1 format, kept only when correct and readable, every rejection counted."""

import json

import pytest

from r1.cli import main
from r1.config import Config, load_config, save_config
from r1.data import DataError, load_examples
from r1.data.coldstart_convert import candidates_from_row, coldstart_from_samples, r1_completion, split_completion
from r1.rewards import REWARDS


def write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_split_completion_cleans_the_reasoning():
    messy = "<think>\nFirst 2 + 3 = 5.   \n\n\n\nThat is it.\n</think>\n<answer> 5 </answer><|im_end|>"
    assert split_completion(messy) == ("First 2 + 3 = 5.\n\nThat is it.", "5")
    # the chat template opened <think>: the completion starts inside it
    assert split_completion("2 + 3 = 5 </think> <answer>5</answer>") == ("2 + 3 = 5", "5")
    # a teacher's plain chain of thought with a box: all of it is the reasoning
    assert split_completion("We add 2 and 3 to get \\boxed{5}.") == ("We add 2 and 3 to get \\boxed{5}.", "5")
    assert split_completion("Adding. <answer>5</answer> Done.") == ("Adding.  Done.", "5")
    assert split_completion("<think>2 + 3</think> maybe 5") == "no_answer"
    assert split_completion("<think>2 + 3 = 5") == "no_answer"  # never closed: no answer
    assert split_completion("<think> </think><answer>5</answer>") == "no_reasoning"


def test_r1_completion_adds_a_conclusion_only_when_needed():
    assert r1_completion("2 + 3 = 5", "5") == "<think>\n2 + 3 = 5\n</think>\n<answer>5</answer>"
    assert r1_completion("Add them.", "5") == "<think>\nAdd them.\nSo the answer is 5.\n</think>\n<answer>5</answer>"
    # 15 is not 5
    assert r1_completion("We have 15 apples", "5").endswith("So the answer is 5.\n</think>\n<answer>5</answer>")
    for text in (r1_completion("2 + 3 = 5", "5"), r1_completion("Add them.", "5")):
        assert REWARDS["format"](text, {}) == 1.0 and REWARDS["accuracy"](text, {"answer": "5"}) == 1.0


def test_row_shapes():
    record = {"id": "p1", "prompt": "Q?", "reference": "5", "samples": [{"completion": "a"}, {"completion": "b"}]}
    assert candidates_from_row(record, "x") == [
        {"id": "p1", "prompt": "Q?", "reference": "5", "completion": "a"},
        {"id": "p1", "prompt": "Q?", "reference": "5", "completion": "b"},
    ]
    grpo = {"step": 3, "id": "arithmetic-train-0-7", "answer": "12", "completion": "c", "reward/accuracy": 1.0}
    assert candidates_from_row(grpo, "x") == [
        {"id": "arithmetic-train-0-7", "prompt": None, "reference": "12", "completion": "c"}
    ]
    teacher = {"question": "Q?", "response": "r", "answer": 7}
    assert candidates_from_row(teacher, "t-1") == [{"id": "t-1", "prompt": "Q?", "reference": "7", "completion": "r"}]


def test_eval_samples_convert_keep_correct_readable_and_count_the_rest(tmp_path):
    good = "<think>\n23 + 7 = 30\n30 * 4 = 120\n</think>\n<answer>120</answer>"
    records = [
        {
            "id": "p0",
            "prompt": "What is (23 + 7) * 4?",
            "reference": "120",
            "samples": [
                {"completion": good},
                {"completion": good.replace("\n", "\n\n")},  # the same after cleaning → duplicate
                {"completion": "<think>\n23 + 7 = 30 先算 乘法 然后\n</think>\n<answer>120</answer>"},  # language mix
                {"completion": "<think>\n23 + 7 = 31\n</think>\n<answer>124</answer>"},  # wrong
                {"completion": "<think>\n23 + 7 = 30 and then times four"},  # truncated: no answer
            ],
        },
        {
            "id": "p1",
            "prompt": "What is 9 - 4?",
            "reference": "5",
            "samples": [
                {"completion": "<think>Take 4 from 9.</think> <answer>5</answer>"},
                {"completion": "<think>```python\nprint(9 - 4)\n```</think><answer>5</answer>"},  # code block
                {"completion": "<think>Nine minus four.</think><answer>5</answer>"},  # over max_per_prompt=1
            ],
        },
    ]
    cfg = load_config(None, ["sample.max_per_prompt=1"])
    report = coldstart_from_samples([write(tmp_path / "samples.jsonl", records)], tmp_path / "out" / "cold.jsonl", cfg)
    rows = [json.loads(line) for line in (tmp_path / "out" / "cold.jsonl").read_text().splitlines()]
    assert [r["completion"] for r in rows] == [
        good,
        "<think>\nTake 4 from 9.\nSo the answer is 5.\n</think>\n<answer>5</answer>",
    ]
    assert rows[0] == {"id": "p0", "prompt": "What is (23 + 7) * 4?", "completion": good, "answer": "120"}
    assert report["rejected"] == {
        "code": 1,
        "duplicate": 1,
        "incorrect": 1,
        "language": 1,
        "no_answer": 1,
        "over_max_per_prompt": 1,
    }
    assert report["candidates"] == 8 == report["kept"] + sum(report["rejected"].values())
    assert json.loads((tmp_path / "out" / "cold.report.json").read_text()) == report


def test_grpo_samples_find_their_prompts_through_the_run_config(tmp_path):
    cfg = load_config(None, ["data.size=50", "data.seed=3"])
    run = tmp_path / "grpo-run"
    run.mkdir()
    save_config(cfg, run / "config.yaml")
    problems = load_examples("arithmetic", size=50, seed=3)
    p = problems[7]
    rows = [
        {
            "step": 1,
            "id": p["id"],
            "answer": p["answer"],
            "completion": f"<think>\n{' '.join(p['steps'])}\n</think>\n<answer>{p['answer']}</answer>",
            "reward/accuracy": 1.0,
        },
        {
            "step": 2,
            "id": p["id"],
            "answer": p["answer"],
            "completion": "<think>\nguess\n</think>\n<answer>-1</answer>",
            "reward/accuracy": 0.0,
        },
    ]
    samples = write(run / "samples.jsonl", rows)
    report = coldstart_from_samples([samples], tmp_path / "cold.jsonl", Config())
    kept = [json.loads(line) for line in (tmp_path / "cold.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in kept] == [p["prompt"]] and report["rejected"] == {"incorrect": 1}
    # elsewhere, without config.yaml, the prompts must be named …
    alone = write(tmp_path / "alone.jsonl", rows)
    with pytest.raises(DataError, match="--prompts"):
        coldstart_from_samples([alone], tmp_path / "x.jsonl", Config())
    # … and the wrong dataset is an error naming the missing id
    with pytest.raises(DataError, match=p["id"]):
        coldstart_from_samples([alone], tmp_path / "x.jsonl", Config(), prompts="gsm8k")
    assert (
        coldstart_from_samples(
            [alone], tmp_path / "x.jsonl", load_config(None, ["data.size=50", "data.seed=3"]), prompts="arithmetic"
        )["kept"]
        == 1
    )


def test_teacher_outputs_are_rewritten_and_unchecked_ones_rejected(tmp_path):
    rows = [
        {"question": "What is 6 * 7?", "response": "Six sevens make forty-two, so \\boxed{42}.", "answer": "42"},
        {"question": "Name a colour.", "response": "<think>Pick one.</think><answer>blue</answer>"},  # no reference
        {"question": "What is 1 + 1?", "answer": "2"},  # no completion
    ]
    report = coldstart_from_samples([write(tmp_path / "teacher.jsonl", rows)], tmp_path / "cold.jsonl", Config())
    kept = json.loads((tmp_path / "cold.jsonl").read_text())
    # the last line already states the answer, so no conclusion line is added
    assert kept["completion"] == "<think>\nSix sevens make forty-two, so \\boxed{42}.\n</think>\n<answer>42</answer>"
    assert report["rejected"] == {"no_reference": 1, "no_completion": 1}


def test_cli_convert_and_its_errors(tmp_path, capsys):
    record = {
        "id": "p",
        "prompt": "What is 2 + 2?",
        "reference": "4",
        "samples": [{"completion": "<think>2 + 2 = 4</think><answer>4</answer>"}],
    }
    samples = write(tmp_path / "samples.jsonl", [record])
    assert (
        main(
            [
                "coldstart",
                "convert",
                "--input",
                str(samples),
                "--output",
                str(tmp_path / "c.jsonl"),
                "sample.filters=[language]",
            ]
        )
        == 0
    )
    assert "kept 1 of 1" in capsys.readouterr().out
    assert (
        main(
            ["coldstart", "convert", "--input", str(tmp_path / "missing.jsonl"), "--output", str(tmp_path / "c.jsonl")]
        )
        == 2
    )
    assert "samples file not found" in capsys.readouterr().err
    (tmp_path / "bad.jsonl").write_text('{"id": 1}\n{not json\n')
    assert (
        main(["coldstart", "convert", "--input", str(tmp_path / "bad.jsonl"), "--output", str(tmp_path / "c.jsonl")])
        == 2
    )
    assert "bad.jsonl:2: not valid UTF-8 JSON" in capsys.readouterr().err
