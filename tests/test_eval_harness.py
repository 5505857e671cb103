"""The evaluation harness: exact metrics through scripted completions, and a tiny-model end-to-end run."""

import json
from types import SimpleNamespace

import pytest
import torch

from r1.eval import compare, evaluate, run_eval
from r1.eval.metrics import pass_at_1_mean
from r1.models import load_model

EXAMPLES = [
    {"id": "p0", "prompt": "What is one plus one?", "answer": "2", "subject": "Algebra", "level": 1},
    {"id": "p1", "prompt": "What is half of one?", "answer": "\\frac{1}{2}", "subject": "Algebra", "level": 2},
    {"id": "p2", "prompt": "What is five plus five?", "answer": "10", "subject": "Geometry", "level": 2},
]
TAGGED = "<think> working </think> <answer> {} </answer>"
SCRIPT = {  # question → its k=4 completions, in sample order
    # correct, correct, wrong, correct but boxed without tags (format 0) → c=4-1=3; majority "2" (3 votes)
    "What is one plus one?": [TAGGED.format(2), TAGGED.format(2), TAGGED.format(3), "so it is \\boxed{2}"],
    # "3" and {0.5, 1/2} tie at 2 votes; "3" came first → majority wrong although c=2
    "What is half of one?": [TAGGED.format(3), TAGGED.format("0.5"), TAGGED.format(3), TAGGED.format("1/2")],
    # a think block that never closes: no answer at all, truncated
    "What is five plus five?": ["<think> five and five"] * 4,
}


class ScriptedGenerator:
    """A `generate_fn` that returns SCRIPT's completions and records how it was called."""

    def __init__(self):
        self.calls = []
        self.taken = {question: 0 for question in SCRIPT}

    def __call__(self, model, tokenizer, prompt_ids, s):  # s: r1.rollout.Sampling
        n, temperature, top_p, seed = s.n, s.temperature, s.top_p, s.seed
        self.calls.append({"rows": len(prompt_ids), "n": n, "seed": seed, "temperature": temperature, "top_p": top_p})
        texts = []
        for ids in prompt_ids:
            question = next(q for q in SCRIPT if q in tokenizer.decode(ids))
            texts.append(SCRIPT[question][self.taken[question]])
            self.taken[question] += 1
        return SimpleNamespace(
            texts=texts,
            lengths=torch.tensor([len(t) for t in texts]),
            truncated=torch.tensor([t.startswith("<think> five") for t in texts]),
        )


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(str(tiny_model_dir))


def test_scripted_completions_give_exact_metrics(tiny):
    model, tokenizer = tiny
    generator = ScriptedGenerator()
    result = evaluate(model, tokenizer, EXAMPLES, k=4, batch_size=5, seed=10, progress=False, generate_fn=generator)
    m = result.metrics
    # chunks of 5 rows over 3 × 4 = 12 rows, seeded seed + chunk index
    assert [(c["rows"], c["n"], c["seed"]) for c in generator.calls] == [(5, 1, 10), (5, 1, 11), (2, 1, 12)]
    assert generator.calls[0]["temperature"] == 0.6 and generator.calls[0]["top_p"] == 0.95
    assert [[s["correct"] for s in r["samples"]] for r in result.records] == [
        [True, True, False, True],
        [False, True, False, True],
        [False] * 4,
    ]
    assert m["pass@1"]["mean"] == pytest.approx((0.75 + 0.5 + 0) / 3)
    # pass@2 per problem: 1 (n-c=1 < 2), 1 - C(2,2)/C(4,2) = 5/6, 0; pass@4: 1, 1, 0
    assert m["pass@k"] == {"1": pytest.approx(5 / 12), "2": pytest.approx((1 + 5 / 6) / 3), "4": pytest.approx(2 / 3)}
    assert [r["majority"] for r in result.records] == [
        {"answer": "2", "correct": True},
        {"answer": "3", "correct": False},
        {"answer": None, "correct": False},
    ]
    assert m["cons@4"]["mean"] == pytest.approx(1 / 3)
    assert m["format"]["mean"] == pytest.approx((0.75 + 1.0 + 0.0) / 3)
    assert m["no_answer"] == pytest.approx(4 / 12)
    # in the format: problem 1's samples 0–2 (True, True, False; sample 3 is a bare \boxed), all 4 of
    # problem 2's (F, T, F, T), none of problem 3's → 4 correct of 7
    assert m["accuracy_formatted"] == pytest.approx(4 / 7)
    assert m["truncated"] == pytest.approx(4 / 12)
    assert m["mean_length"] == pytest.approx(sum(len(t) for q in SCRIPT.values() for t in q) / 12)
    assert m["by_subject"]["Algebra"]["mean"] == pytest.approx(0.625) and m["by_subject"]["Algebra"]["problems"] == 2
    assert m["by_subject"]["Geometry"]["mean"] == 0.0
    assert list(m["by_level"]) == ["1", "2"] and m["by_level"]["2"]["mean"] == pytest.approx(0.25)
    for name in ("pass@1", "cons@4", "format"):
        assert m[name]["low"] <= m[name]["mean"] <= m[name]["high"]
    assert result.records[0]["samples"][3] == {
        "completion": "so it is \\boxed{2}",
        "answer": "2",
        "correct": True,
        "rewards": {"accuracy": 1.0, "format": 0.0, "language": pytest.approx(1.0)},
        "length": 18,
        "truncated": False,
    }


def test_batch_larger_than_rows_is_one_chunk(tiny):
    generator = ScriptedGenerator()
    evaluate(*tiny, EXAMPLES, k=4, batch_size=64, progress=False, generate_fn=generator)
    assert [(c["rows"], c["seed"]) for c in generator.calls] == [(12, 0)]


def test_generator_returning_too_few_rows_is_an_error(tiny):
    def short(model, tokenizer, prompt_ids, sampling):
        return SimpleNamespace(texts=["x"], lengths=[1], truncated=[False])

    with pytest.raises(RuntimeError, match="1 completions for 12 prompts"):
        evaluate(*tiny, EXAMPLES, k=4, progress=False, generate_fn=short)


def test_evaluation_leaves_the_callers_torch_rng_alone(tiny):
    model, tokenizer = tiny
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    evaluate(model, tokenizer, EXAMPLES[:1], k=2, max_new_tokens=4, seed=7, progress=False)
    assert torch.equal(torch.rand(3), expected)


def _read(out):
    results = json.loads((out / "results.json").read_text())
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return results, samples


def test_run_eval_end_to_end_on_a_tiny_model(tiny_model_dir, tmp_path):
    args = dict(k=2, limit=4, max_new_tokens=8, progress=False)
    returned = run_eval(str(tiny_model_dir), "arithmetic", seed=0, output_dir=tmp_path / "a", **args)
    results, samples = _read(tmp_path / "a")
    assert results == json.loads(json.dumps(returned))
    assert (
        results["benchmark"] == "arithmetic"
        and results["settings"]["k"] == 2
        and results["settings"]["temperature"] == 0.6
    )
    assert set(results["versions"]) == {"r1", "torch", "transformers", "math-verify"} and results["versions"]["torch"]
    assert {"total_seconds", "generation_seconds", "scoring_seconds"} <= set(results["timings"])
    assert len(samples) == 4 and all(len(r["samples"]) == 2 for r in samples)
    assert {"id", "prompt", "reference", "majority", "samples"} <= set(samples[0])
    assert {"completion", "answer", "correct", "rewards", "length", "truncated"} == set(samples[0]["samples"][0])
    assert all(1 <= s["length"] <= 8 for r in samples for s in r["samples"])
    # results.json agrees with samples.jsonl
    m = results["metrics"]
    assert m["pass@1"]["mean"] == pytest.approx(pass_at_1_mean([[s["correct"] for s in r["samples"]] for r in samples]))
    assert m["mean_length"] == pytest.approx(sum(s["length"] for r in samples for s in r["samples"]) / 8)
    assert m["cons@2"]["mean"] == pytest.approx(sum(r["majority"]["correct"] for r in samples) / 4)

    # same seed → the same samples; another seed → other samples
    run_eval(str(tiny_model_dir), "arithmetic", seed=0, output_dir=tmp_path / "b", **args)
    run_eval(str(tiny_model_dir), "arithmetic", seed=1, output_dir=tmp_path / "c", **args)
    completions = lambda rows: [s["completion"] for r in rows for s in r["samples"]]  # noqa: E731
    assert completions(_read(tmp_path / "b")[1]) == completions(samples)
    assert completions(_read(tmp_path / "c")[1]) != completions(samples)

    # compare: a markdown table and a PNG bar chart across runs (a path, a folder, a dict)
    written = compare(
        [tmp_path / "a" / "results.json", tmp_path / "c", {**results, "model": "other"}], tmp_path / "cmp"
    )
    markdown, chart = written
    assert markdown.name == "compare.md" and chart.name == "compare.png"
    table = markdown.read_text()
    assert table.count("\n") == 5  # header, rule, three rows
    assert f"{tiny_model_dir} #1" in table and f"{tiny_model_dir} #2" in table and "| other |" in table
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_labels_by_benchmark_when_several(tmp_path):
    metrics = {
        "problems": 2,
        "samples_per_problem": 4,
        "pass@1": {"mean": 0.5, "low": 0.1, "high": 0.9},
        "cons@4": {"mean": 0.5, "low": 0.1, "high": 0.9},
        "format": {"mean": 1.0},
        "mean_length": 10.0,
        "truncated": 0.0,
    }
    runs = [{"model": "m", "benchmark": b, "metrics": metrics} for b in ("gsm8k", "math500")]
    markdown, _ = compare(runs, tmp_path)
    assert "m [gsm8k]" in markdown.read_text() and "m [math500]" in markdown.read_text()
