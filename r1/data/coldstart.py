"""Programmatic cold-start data: worked examples in the R1 format, written by program.

R1's stage 1 fine-tunes on a small set of readable chains of thought before RL (SPEC §5). A model
of 135M parameters never produces the R1-Zero format on its own (see README), so RL from scratch
gets no reward; a few hundred worked examples fix that in a minute. Each example is a procedural
arithmetic problem whose reasoning is its own computation, one step per line:

    <think>
    We start from 57.
    57 + 60 = 117
    117 - 38 = 79
    </think>
    <answer>79</answer>

The problems come from the `train` split (r1/data/arithmetic.py), so the held-out `test` split
the demo evaluates on is never seen.
"""

from __future__ import annotations

import json
from pathlib import Path

from r1.data.arithmetic import make_problems


def worked_completion(problem: dict) -> str:
    start = problem["steps"][0].split(" ", 1)[0]
    lines = [f"We start from {start}.", *problem["steps"], f"So the result is {problem['answer']}."]
    return "<think>\n" + "\n".join(lines) + "\n</think>\n<answer>" + problem["answer"] + "</answer>"


def arithmetic_worked_examples(n: int, *, seed: int = 0, **settings) -> list[dict]:
    """`n` prompt/completion rows for SFT from the arithmetic train split."""
    return [{"id": p["id"], "prompt": p["prompt"], "completion": worked_completion(p), "answer": p["answer"]} for p in make_problems(n, seed=seed, split="train", **settings)]


def write_jsonl(rows: list[dict], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path
