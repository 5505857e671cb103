"""The generative judge: verdict parsing on clean, messy, contradictory and garbage text, and the
judge's prompts, batching and counts with a scripted engine and the tiny model."""

from types import SimpleNamespace

import pytest
import torch

from r1.models import load_model
from r1.rewards.judge import PREFILL, Judge, judge_prompt, load_judge, parse_verdict


@pytest.mark.parametrize(
    "text, expected",
    [
        ("VERDICT: CORRECT", 1.0),
        ("VERDICT: INCORRECT", 0.0),
        ("verdict:correct", 1.0),
        ("**Verdict:** **Incorrect**", 0.0),
        ("VERDICT: the response is not correct.", 0.0),
        ("VERDICT: CORRECT\nThe reference is 5 and the response says 5.", 1.0),  # only the verdict's line counts
        ("VERDICT: Yes", 1.0),
        ("VERDICT: NO", 0.0),
        ("Yes, the answer is correct.", 1.0),
        ("Incorrect. The response says 6.", 0.0),
        ("Not correct", 0.0),
        ("no", 0.0),
        ("Score: 7/10", 0.7),
        ("The rating is 4 out of 5", 0.8),
        ("score: 0.25", 0.25),
        ("Score: 1.", 1.0),
    ],
)
def test_readable_verdicts(text, expected):
    assert parse_verdict(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n ",
        None,
        42,
        "VERDICT:",
        "VERDICT: maybe",
        "asdf qwer 9 !!",
        "<|im_end|>",
        "\x00\x01",
        # contradictions
        "VERDICT: CORRECT\nVERDICT: INCORRECT",
        "VERDICT: correct, no wait, wrong",
        "Yes, but it is wrong.",
        "score: 3/10 and then score: 9/10",
        # echoing the rubric is not a verdict
        "Reply with one line: VERDICT: CORRECT or VERDICT: INCORRECT.",
        # numbers without a scale, or out of range
        "score: 8",
        "score: 11/10",
        "score: 5/0",
        "The answer 3/4 looks fine",
        # a verdict word that does not open the line says nothing
        "The response might be correct",
    ],
)
def test_unreadable_verdicts_are_none(text):
    assert parse_verdict(text) is None


def test_parsing_is_bounded_on_huge_text():
    assert parse_verdict("blah " * 200_000 + "VERDICT: CORRECT") is None  # beyond MAX_PARSE_CHARS
    assert parse_verdict("VERDICT: CORRECT " + "blah " * 200_000) == 1.0


def test_prompt_shows_the_reference_only_when_there_is_one():
    with_ref = judge_prompt("What is 2+3?", "<answer>5</answer>", "5")
    assert "Reference answer:\n5" in with_ref and "What is 2+3?" in with_ref and "VERDICT: CORRECT" in with_ref
    without = judge_prompt("Write a haiku.", "Leaves fall", None)
    assert "Reference" not in without and "Leaves fall" in without
    long = judge_prompt("q", "x" * 10_000 + "THE END", "5")
    assert "THE END" in long and len(long) < 4_000  # a long response keeps its end, where the answer is


class Scripted:
    """A generate_fn answering each prompt with the next scripted text; records the calls."""

    def __init__(self, outputs):
        self.outputs, self.calls, self.prompts = list(outputs), [], []

    def __call__(self, model, tokenizer, prompt_ids, s):  # s: r1.rollout.Sampling
        n, temperature, max_new_tokens, seed = s.n, s.temperature, s.max_new_tokens, s.seed
        self.calls.append(
            {
                "rows": len(prompt_ids),
                "n": n,
                "temperature": temperature,
                "max_new_tokens": max_new_tokens,
                "seed": seed,
            }
        )
        self.prompts += [tokenizer.decode(ids) for ids in prompt_ids]
        texts = [self.outputs.pop(0) for _ in prompt_ids]
        return SimpleNamespace(
            texts=texts, lengths=torch.tensor([1] * len(texts)), truncated=torch.tensor([False] * len(texts))
        )


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(str(tiny_model_dir))


def test_judge_batches_prefills_and_counts(tiny):
    model, tokenizer = tiny
    engine = Scripted([" CORRECT", " INCORRECT", " blah", "", " CORRECT\nVERDICT: INCORRECT", " No."])
    judge = Judge(model, tokenizer, engine, batch_size=2, max_new_tokens=8, seed=5)
    items = [("What is 2+3?", "5", "5"), ("What is 2+3?", "6", "5"), ("q", "r", None), ("q", "r", "x"), ("q", "r", "x")]
    assert judge.scores(items) == [1.0, 0.0, None, None, None]
    assert [(c["rows"], c["seed"], c["temperature"], c["max_new_tokens"]) for c in engine.calls] == [
        (2, 5, 0.0, 8),
        (2, 6, 0.0, 8),
        (1, 7, 0.0, 8),
    ]
    assert all(p.endswith(PREFILL) for p in engine.prompts)  # the verdict is pre-filled in the judge's turn
    assert "<|im_start|>assistant" in engine.prompts[0]  # rendered through the chat template
    assert "Reference answer" in engine.prompts[0] and "Reference answer" not in engine.prompts[2]
    assert judge.counts == {"judged": 5, "unparseable": 3}
    assert judge.score("q", "r", "x") == 0.0
    assert judge.scores([]) == [] and len(engine.calls) == 4  # nothing to judge, no engine call


def test_tiny_random_judge_never_raises(tiny):
    """A random-init model writes garbage: every verdict is a number or None, never an exception."""
    model, tokenizer = tiny
    judge = load_judge("tiny", model=model, tokenizer=tokenizer, max_new_tokens=6, batch_size=3)
    values = judge.scores(
        [("What is 2+3?", f"<answer>{i}</answer>", "5") for i in range(4)] + [("Say hi.", "hi", None)]
    )
    assert len(values) == 5 and all(v is None or 0.0 <= v <= 1.0 for v in values)
    assert judge.counts["judged"] == 5 and judge.counts["unparseable"] == sum(v is None for v in values)


def test_greedy_judging_gives_the_same_verdicts_on_every_engine(tiny):
    """temperature 0 is greedy in the fast engine and in hf generate alike (it used to need the fast one)."""
    model, tokenizer = tiny
    items = [("What is 2+3?", f"<answer>{i}</answer>", "5") for i in range(3)]
    outputs = [
        load_judge("tiny", engine=name, model=model, tokenizer=tokenizer, max_new_tokens=4, dtype="float32").raw(items)
        for name in ("fast", "hf")
    ]
    assert outputs[0] == outputs[1]
