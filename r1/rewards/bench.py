"""Reward sanity check and throughput benchmark (``python -m r1.rewards.bench reference|throughput``).

``reference_check``: the accuracy reward must give 1.0 to every reference answer of GSM8K
test and MATH-500, both wrapped as ``<think>…</think><answer>{reference}</answer>`` and,
for MATH-500, as the reference *solution* text itself (its last ``\\boxed{}``, no tags).
Most of those hit the identical-string fast path, so each set is checked a second time
straight through math-verify (reference vs. extracted answer) — what any differently
written correct answer relies on. Anything below 100% is listed.

``throughput``: ``n`` completions built from those references, half correct, half with a
perturbed answer (a number changed), scored in batches with ``score_completions``;
reports completions/s and the worst single-call latency.

It reads the bundled JSONL files directly (only the GSM8K gold rule is needed: text after
the last ``####``, stripped, commas removed) to stay independent of ``r1.data``.
"""

import argparse
import json
import random
import re
import time
from pathlib import Path

from . import REWARDS, configure, score_completions
from .extract import answer_candidates
from .normalize import normalize
from .runtime import get_pool

_BUNDLED = Path(__file__).resolve().parent.parent / "data" / "bundled"


def _rows(name: str) -> list[dict]:
    with open(_BUNDLED / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def gsm8k_gold(answer_field: str) -> str:
    return answer_field.rsplit("####", 1)[-1].strip().replace(",", "")


def _cases() -> dict[str, list[tuple[str, dict]]]:
    """Dataset label → (completion, example) pairs that must all score 1.0."""
    gsm = [
        (
            f"<think>…</think><answer>{gsm8k_gold(r['answer'])}</answer>",
            {"answer": gsm8k_gold(r["answer"]), "prompt": r["question"]},
        )
        for r in _rows("gsm8k_test.jsonl")
    ]
    math = _rows("math500_test.jsonl")
    wrapped = [
        (f"<think>…</think><answer>{r['answer']}</answer>", {"answer": r["answer"], "prompt": r["problem"]})
        for r in math
    ]
    solution = [(r["solution"], {"answer": r["answer"], "prompt": r["problem"]}) for r in math]
    return {"gsm8k_test/answer": gsm, "math500/answer": wrapped, "math500/solution": solution}


def reference_check() -> dict:
    """Rate of 1.0 per dataset for reference answers; prints and returns exceptions."""
    report = {}
    for label, cases in _cases().items():
        completions, examples = [c for c, _ in cases], [e for _, e in cases]
        values = score_completions(completions, examples, ["accuracy"]).values["accuracy"]
        misses = [
            {"answer": e["answer"], "completion_tail": c[-120:]}
            for c, e, v in zip(completions, examples, values)
            if v != 1.0
        ]
        rate = 1 - len(misses) / len(cases)
        report[label] = {"n": len(cases), "rate": rate, "exceptions": misses}
        print(f"{label:34s} n={len(cases):5d} rate={rate:.4f} exceptions={len(misses)}")
        for miss in misses:
            print(f"    reference {miss['answer']!r}  …{miss['completion_tail'][-60:]!r}")
    for label, cases in _cases().items():  # again without the identical-string fast path
        pairs = [(normalize(e["answer"]), normalize(c)) for _, e in cases for c in answer_candidates(_, e)]
        outcomes = get_pool().check_many(pairs)
        misses = [{"answer": g, "completion_tail": p} for (g, p), o in zip(pairs, outcomes) if o != "equal"]
        rate = 1 - len(misses) / len(pairs)
        report[label + " (math-verify)"] = {"n": len(pairs), "rate": rate, "exceptions": misses}
        print(f"{label + ' (math-verify)':34s} n={len(pairs):5d} rate={rate:.4f} exceptions={len(misses)}")
        for miss in misses:
            print(f"    reference {miss['answer']!r} vs {miss['completion_tail'][-60:]!r}")
    return report


def _perturb(answer: str, rng: random.Random) -> str:
    """A wrong answer of the same shape: one number changed (or a suffix if none)."""
    numbers = list(re.finditer(r"\d+", answer))
    if not numbers:
        return answer + " + 1"
    m = rng.choice(numbers)
    return answer[: m.start()] + str(int(m.group()) + rng.randint(1, 9)) + answer[m.end() :]


def throughput(n: int = 10000, batch_size: int = 256, seed: int = 0) -> dict:
    """Score ``n`` realistic completions; report completions/s and worst call latency."""
    rng = random.Random(seed)
    pool = [case for cases in _cases().values() for case in cases]
    samples = []
    for i in range(n):
        completion, example = rng.choice(pool)
        if i % 2:  # perturbed half: same template, wrong answer
            completion = f"<think>…</think><answer>{_perturb(example['answer'], rng)}</answer>"
        samples.append((completion, example))
    warm = samples[:8]  # start the workers first: start-up is not a per-call latency
    score_completions([c for c, _ in warm], [e for _, e in warm], ["accuracy"])
    worst, worst_answer = 0.0, ""
    for completion, example in samples[:200]:  # single-call latency on a sample
        start = time.perf_counter()
        REWARDS["accuracy"](completion, example)
        if time.perf_counter() - start > worst:
            worst, worst_answer = time.perf_counter() - start, completion[-80:]
    start, counts, correct = time.perf_counter(), {}, 0.0
    for i in range(0, n, batch_size):
        batch = samples[i : i + batch_size]
        scores = score_completions([c for c, _ in batch], [e for _, e in batch], ["accuracy"])
        correct += sum(v or 0.0 for v in scores.values["accuracy"])
        for key, value in scores.counts.items():
            counts[key] = counts.get(key, 0) + value
    elapsed = time.perf_counter() - start
    result = {
        "n": n,
        "seconds": elapsed,
        "completions_per_s": n / elapsed,
        "worst_call_s": worst,
        "worst_call_tail": worst_answer,
        "mean_accuracy": correct / n,
        "counts": counts,
    }
    print(
        f"{n} completions in {elapsed:.1f}s = {n / elapsed:.0f} completions/s; "
        f"worst single call {worst * 1000:.0f} ms (of 200 timed); mean accuracy {correct / n:.3f}; {counts}"
    )
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m r1.rewards.bench", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["reference", "throughput"])
    parser.add_argument("--n", type=int, default=10000, help="completions for throughput")
    parser.add_argument("--workers", type=int, default=None, help="verifier processes (default min(2, cpus))")
    args = parser.parse_args(argv)
    configure(workers=args.workers)
    return reference_check() if args.what == "reference" else throughput(args.n)


if __name__ == "__main__":
    main()
