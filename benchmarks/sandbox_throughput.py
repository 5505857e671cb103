"""Sandbox throughput: programs per second through `r1.rewards.sandbox.run_many`.

Two workloads per `--workers` value: a trivial program with one test (the fixed cost of a run:
spawn, isolation, checker, cleanup) and the 164 canonical HumanEval solutions with their full
tests (the code reward's real work). Prints the isolation in force, programs/s per workload and
a closing `SUMMARY key=value …` line (the format benchmarks/interleave.py compares).

    nice -n 19 .venv/bin/python benchmarks/sandbox_throughput.py --workers 1 2 4
"""

from __future__ import annotations

import argparse
import time

from r1.data import load_examples
from r1.rewards import sandbox
from r1.rewards.code import LIMITS, build_job


def throughput(jobs: list[sandbox.Job], workers: int) -> tuple[float, int]:
    """(programs per second, programs whose every test passed)."""
    start = time.perf_counter()
    results = sandbox.run_many(jobs, LIMITS, workers=workers)
    seconds = time.perf_counter() - start
    return len(jobs) / seconds, sum(r.status == "ok" and r.passed == r.total for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[2, 4], help="parallel sandboxes to try (default 2 4)"
    )
    parser.add_argument("--trivial", type=int, default=100, help="trivial programs per measurement (default 100)")
    args = parser.parse_args()
    iso = sandbox.isolation()
    print(
        f"isolation: network={iso.network}; pid={iso.pid}; landlock={iso.landlock}; seccomp={iso.seccomp}; "
        f"user={iso.user}; python={iso.python}"
    )
    trivial = [
        sandbox.Job("def f(x):\n    return x\n", (sandbox.Statement("assert f(1) == 1"),), functions={"f": "f"})
    ] * args.trivial
    humaneval = [build_job(e["answer"], e) for e in load_examples("humaneval")]
    summary = {}
    for workers in args.workers:
        rate, ok = throughput(trivial, workers)
        print(f"workers={workers}: trivial   {rate:6.1f} programs/s ({ok}/{len(trivial)} passed)")
        summary[f"trivial_w{workers}"] = round(rate, 2)
        rate, ok = throughput(humaneval, workers)
        print(
            f"workers={workers}: humaneval {rate:6.1f} programs/s ({ok}/{len(humaneval)} canonical solutions passed, "
            f"{len(humaneval) / rate:.1f} s)"
        )
        summary[f"humaneval_w{workers}"] = round(rate, 2)
    print("SUMMARY " + " ".join(f"{k}={v}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
