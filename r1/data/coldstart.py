"""Programmatic cold-start data: worked examples in the R1 format, written by program.

R1's stage 1 fine-tunes on a small set of readable chains of thought before RL (docs/method.md §5). A model
of 135M parameters never produces the R1-Zero format on its own (see README), so RL from scratch
gets no reward; a few hundred worked examples fix that in a minute. Each example is a procedural
arithmetic problem whose reasoning is its own computation, one step per line:

    <think>
    We start from 57.
    57 + 60 = 117
    117 - 38 = 79
    </think>
    <answer>79</answer>

With `detailed` > 0 that fraction of examples works each step out digit by digit instead
(`43 + 85: 40 + 80 = 120, 3 + 5 = 8, 120 + 8 = 128`), each sub-step a one-digit fact. The idea:
a cold start showing both styles leaves RL a more careful strategy to discover. Measured, it did
not take at the demo's scale (docs/demo.md), so the demo does not use it.

The problems come from the `train` split (r1/data/arithmetic.py), so the held-out `test` split
the demo evaluates on is never seen. `GENERATORS` names this task and the GSM8K-style word
problems of r1/data/coldstart_words.py for `r1 coldstart generate`; turning model outputs into
cold-start data is r1/data/coldstart_convert.py.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from r1.data.arithmetic import make_problems
from r1.data.coldstart_words import word_problem_worked_examples


def worked_completion(problem: dict, *, detailed: bool = False) -> str:
    start = problem["steps"][0].split(" ", 1)[0]
    steps = [digit_by_digit(step) for step in problem["steps"]] if detailed else problem["steps"]
    lines = [f"We start from {start}.", *steps, f"So the result is {problem['answer']}."]
    return "<think>\n" + "\n".join(lines) + "\n</think>\n<answer>" + problem["answer"] + "</answer>"


def digit_by_digit(step: str) -> str:
    """`"43 + 85 = 128"` → `"43 + 85: 40 + 80 = 120, 3 + 5 = 8, 120 + 8 = 128"`; one-digit work stays as it is."""
    a, op, b, _, c = step.split()
    x, y = int(a), int(b)
    small, big = min(x, y), max(x, y)
    if op == "+" and small < 10 <= big and big % 10:
        parts = [f"{x % 10} + {y % 10} = {x % 10 + y % 10}", f"{big - big % 10} + {x % 10 + y % 10} = {c}"]
    elif op == "+" and small >= 10:
        parts = [
            f"{x - x % 10} + {y - y % 10} = {x - x % 10 + y - y % 10}",
            f"{x % 10} + {y % 10} = {x % 10 + y % 10}",
            f"{x - x % 10 + y - y % 10} + {x % 10 + y % 10} = {c}",
        ]
    elif op == "-" and y >= 10 and y % 10:
        parts = [f"{x} - {y - y % 10} = {x - y + y % 10}", f"{x - y + y % 10} - {y % 10} = {c}"]
    elif op == "*" and x >= 10 and x % 10 and y > 1:
        parts = [
            f"{x - x % 10} * {y} = {(x - x % 10) * y}",
            f"{x % 10} * {y} = {x % 10 * y}",
            f"{(x - x % 10) * y} + {x % 10 * y} = {c}",
        ]
    else:
        return step
    return f"{a} {op} {b}: " + ", ".join(parts)


def arithmetic_worked_examples(n: int, *, seed: int = 0, detailed: float = 0.0, **settings) -> list[dict]:
    """`n` prompt/completion rows for SFT from the arithmetic train split; `detailed` of them digit by digit."""
    rng = random.Random(f"coldstart:{seed}")
    return [
        {
            "id": p["id"],
            "prompt": p["prompt"],
            "completion": worked_completion(p, detailed=rng.random() < detailed),
            "answer": p["answer"],
        }
        for p in make_problems(n, seed=seed, split="train", **settings)
    ]


def write_jsonl(rows: list[dict], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


GENERATORS = {
    "arithmetic": arithmetic_worked_examples,
    "word-problems": word_problem_worked_examples,
}  # task → (n, *, seed) → SFT rows
