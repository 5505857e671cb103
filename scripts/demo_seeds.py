"""The demo's GRPO gain on several seeds: cold start → GRPO → held-out eval, once per seed.

    python scripts/demo_seeds.py [--seeds 0,1,2,3,4] [--out runs/seeds] [--name NAME] [--alternate 128]
                                 [--grpo KEY=VALUE ...] [-- KEY=VALUE ...]

Each seed runs the stages of `r1 demo run.seed=N` that the gain is measured on (stages 2–5: the
cold start, its held-out eval, GRPO, the final eval), with the demo's settings, calling the same
functions. The base model's eval (stage 1) is left out: it scores 0 on every seed (it never writes
the format; README). Plain overrides apply to every stage, as in `r1 demo`; `--grpo` ones to the
GRPO stage only, so recipes for the RL stage can be compared on the same cold starts. Cold starts
and their evals are cached under OUT/coldstart-seedN-<hash of what shapes them>, each recipe's
result under OUT/NAME/seedN/result.json (a rerun skips finished seeds); the table goes to
OUT/NAME/table.md, ready for the README.

Deliberately left out: running seeds in parallel (two cores; timings would no longer be the demo's).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from pathlib import Path

from r1.pipeline.demo import COLDSTART_EXAMPLES, GRPO, coldstart_stage, heldout_eval, heldout_problems
from r1.pipeline.demo import stage_config
from r1.train.grpo import train_grpo


def heldout_sets(cfg, alternate: int) -> dict[str, list[dict]]:
    """The demo's held-out set, and `alternate` problems of the other phrasing family (both unseen by
    training: r1.pipeline.demo.heldout_problems)."""
    sets = {"standard": heldout_problems(cfg, cfg.eval.limit)}
    if alternate:
        sets["alternate"] = heldout_problems(cfg, alternate, phrasing="alternate")
    return sets


def evaluate(checkpoint: str, sets: dict[str, list[dict]], cfg, folder: Path) -> dict[str, dict]:
    """{set name: held-out result} of one checkpoint."""
    return {name: heldout_eval(checkpoint, problems, cfg, folder / name) for name, problems in sets.items()}


def cached_coldstart(
    out: Path, seed: int, overrides: list[str], heldout: dict, examples: int = COLDSTART_EXAMPLES
) -> tuple[str, dict, float]:
    """The seed's cold-start checkpoint, its held-out results and the SFT's seconds (trained once; a
    held-out set the cache has not seen yet is evaluated and added)."""
    key = hashlib.sha1(json.dumps([seed, examples, overrides]).encode()).hexdigest()[:8]
    folder = out / f"coldstart-seed{seed}-{key}"
    done = folder / "result.json"
    if not done.is_file():
        t0 = time.perf_counter()
        checkpoint = coldstart_stage(overrides, folder, examples)
        done.write_text(json.dumps({"checkpoint": checkpoint, "seconds": round(time.perf_counter() - t0, 1)}))
    saved = json.loads(done.read_text())
    evals = saved.setdefault("evals", {})
    missing = {name: problems for name, problems in heldout.items() if name not in evals}
    if missing:
        evals.update(evaluate(saved["checkpoint"], missing, stage_config(overrides, folder), folder / "eval"))
        done.write_text(json.dumps(saved))
    return saved["checkpoint"], {name: evals[name] for name in heldout}, saved["seconds"]


def run_seed(out: Path, seed: int, overrides: list[str], grpo: list[str], heldout: dict, examples: int) -> dict:
    done = out / f"seed{seed}" / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    shared = [*overrides, f"run.seed={seed}"]
    start, before, sft_s = cached_coldstart(out.parent, seed, shared, heldout, examples)
    # DEMO ← the GRPO stage's defaults ← every stage's overrides ← --grpo ones, as in `r1 demo`
    cfg = stage_config([*shared, *grpo], out / f"seed{seed}" / "grpo", GRPO, model__name=start)
    t0 = time.perf_counter()
    run = train_grpo(cfg)
    seconds = time.perf_counter() - t0
    final = str(run / "checkpoints" / "final")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    result = {
        "seed": seed,
        "overrides": shared,
        "grpo_overrides": grpo,
        "coldstart": before,
        "final": evaluate(final, heldout, cfg, out / f"seed{seed}" / "eval"),
        "coldstart_sft_s": sft_s,
        "grpo_s": round(seconds, 1),
        "peak_mib": max(r.get("memory/peak_mib", 0.0) for r in rows),
    }
    done.write_text(json.dumps(result, indent=2))
    return result


def table(results: list[dict]) -> str:
    """The README's five-seed table: each seed's cold start → final on the demo's held-out set, and
    the gain on the other phrasing family when it was measured."""
    alternate = all("alternate" in r["final"] for r in results)
    extra = " Δ, other phrasing (cold start → final) |" if alternate else ""
    lines = [
        f"| seed | cold start (95% CI) | after GRPO (95% CI) | Δ (points) | format |{extra} GRPO time "
        "| GRPO peak memory |",
        "|---|---|---|---|---|" + ("---|" if alternate else "") + "---|---|",
    ]
    for r in results:
        a, b = r["coldstart"]["standard"], r["final"]["standard"]
        other = ""
        if alternate:
            x, y = r["coldstart"]["alternate"], r["final"]["alternate"]
            other = f" {gain(x, y)} ({x['accuracy']:.3f} → {y['accuracy']:.3f}) |"
        lines.append(
            f"| {r['seed']} | {a['accuracy']:.3f} {ci(a)} | {b['accuracy']:.3f} {ci(b)} | {gain(a, b)} "
            f"| {b['format']:.3f} |{other} {r['grpo_s']:.0f} s | {r['peak_mib'] / 1024:.1f} GB |"
        )
    for name in ["standard"] + (["alternate"] if alternate else []):
        gains = [100 * (r["final"][name]["accuracy"] - r["coldstart"][name]["accuracy"]) for r in results]
        if gains:
            lines.append(f"| mean ({name}) | | | {statistics.mean(gains):+.1f} (min {min(gains):+.1f}) | | |")
    return "\n".join(lines) + "\n"


def ci(result: dict) -> str:
    low, high = result["accuracy_ci"]
    return f"[{low:.3f}, {high:.3f}]"


def gain(before: dict, after: dict) -> str:
    return f"{100 * (after['accuracy'] - before['accuracy']):+.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--out", default="runs/seeds")
    parser.add_argument("--name", default="demo", help="the recipe's folder under OUT")
    parser.add_argument("--grpo", nargs="*", default=[], help="overrides of the GRPO stage only")
    parser.add_argument("--coldstart-examples", type=int, default=COLDSTART_EXAMPLES)
    parser.add_argument("--alternate", type=int, default=128, help="problems of the other phrasing family (0: none)")
    parser.add_argument("overrides", nargs="*", help="overrides of every stage, as in `r1 demo`")
    args = parser.parse_args()
    out = Path(args.out) / args.name
    out.mkdir(parents=True, exist_ok=True)
    heldout = heldout_sets(stage_config(args.overrides, out), args.alternate)
    results = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        print(f"=== seed {seed}", flush=True)
        results.append(run_seed(out, seed, args.overrides, args.grpo, heldout, args.coldstart_examples))
        (out / "table.md").write_text(table(results))
        print(table(results), flush=True)


if __name__ == "__main__":
    main()
