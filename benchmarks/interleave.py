"""Run two benchmark commands alternately (A B A B …) and compare their SUMMARY lines.

Machine noise (another process, thermal state) then hits both sides alike. Each command must end
its output with `SUMMARY key=value …`, as `r1 bench grpo-step` and `benchmarks/trl_grpo_step.py`
do. Prints every run's figures, then the median of each key per side and the ratio B / A.

    python benchmarks/interleave.py --rounds 2 \\
        --a "r1 bench grpo-step --dtype bfloat16 --threads 2" \\
        --b "/tmp/trlenv/bin/python benchmarks/trl_grpo_step.py --threads 2"
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import time


def summary(command: str) -> dict[str, float]:
    started = time.perf_counter()
    proc = subprocess.run(shlex.split(command), capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("SUMMARY ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"`{command}` failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    figures = {key: float(value) for key, value in (item.split("=", 1) for item in lines[-1].split()[1:])}
    return {**figures, "wall_s": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="first command (quoted)")
    parser.add_argument("--b", required=True, help="second command (quoted)")
    parser.add_argument("--rounds", type=int, default=2, help="A B pairs to run (default 2)")
    args = parser.parse_args()
    runs = {"A": [], "B": []}
    for round_ in range(args.rounds):
        for side, command in (("A", args.a), ("B", args.b)):
            runs[side].append(summary(command))
            print(
                f"round {round_ + 1} {side}: " + " ".join(f"{k}={v:g}" for k, v in runs[side][-1].items()), flush=True
            )
    keys = list(runs["A"][0])
    print(f"\nA = {args.a}\nB = {args.b}\n")
    print("| figure | A (median) | B (median) | B / A |\n|---|---|---|---|")
    for key in keys:
        a, b = (statistics.median(r[key] for r in runs[side]) for side in "AB")
        print(f"| {key} | {a:g} | {b:g} | {b / a if a else float('nan'):.2f} |")


if __name__ == "__main__":
    main()
