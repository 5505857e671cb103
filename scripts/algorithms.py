"""Measure the RL algorithm options side by side: the demo's GRPO stage, shortened, once per option.

    python scripts/algorithms.py [--steps 8] [--out runs/algorithms] [--only name,name]

One cold start (the demo's: SFT of SmolLM2-135M-Instruct on worked arithmetic examples) is trained
once; every option then runs GRPO from it with the demo's settings and the same seed, data and step
budget (`--steps` steps of `--prompts` prompts × 8 samples), and is evaluated on the same held-out
problems (`--heldout` problems × 2 samples at the paper's sampling settings). The common baseline is a
bf16 rollout with an fp32 trainer, so the mismatch-correction rows have a mismatch to correct; the
`same-precision` row samples in fp32. Each option's result is kept in OUT/<name>/result.json (a rerun
skips finished options); the table goes to OUT/table.md, ready for docs/algorithms.md.

Deliberately left out: several seeds per option (one row per option is a first look, not a ranking).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from r1.data import load_examples
from r1.data.coldstart import arithmetic_worked_examples, write_jsonl
from r1.pipeline.demo import COLDSTART, HELDOUT_SEED, heldout_eval, stage_config
from r1.train.grpo import train_grpo
from r1.train.sft import train_sft

BASE = ["rollout.dtype=bfloat16", "train.bf16=false"]  # a mismatch for the corrections to correct
OPTIONS = {  # name → (overrides, what it is)
    "grpo": ([], "GRPO as in the demo (token ratios, clip 0.2/0.28), no correction"),
    "same-precision": (["rollout.dtype=float32"], "GRPO with an fp32 rollout: engine and trainer agree"),
    "tis-token": (["grpo.rollout_correction=tis-token"], "GRPO + token-level truncated IS (cap 2)"),
    "mis-token": (["grpo.rollout_correction=mis-token"], "GRPO + token-level masked IS (band [0.5, 2])"),
    "gspo": (
        ["grpo.policy_loss=gspo", "grpo.clip_low=3e-4", "grpo.clip_high=4e-4"],
        "GSPO: one ratio per sequence, the paper's clip 3e-4/4e-4",
    ),
    "cispo": (["grpo.policy_loss=cispo", "grpo.clip_low=0.99"], "CISPO: clipped, detached IS weight (0.01, 1.28)"),
    "sapo": (["grpo.policy_loss=sapo"], "SAPO: soft gate, τ+ = 1, τ− = 1.05"),
    "gmpo": (
        ["grpo.policy_loss=gmpo", "grpo.clip_low=0.4", "grpo.clip_high=0.4"],
        "GMPO: geometric mean of token ratios, log-ratio clip ±0.4",
    ),
    "rloo": (["grpo.advantage_baseline=leave-one-out", "grpo.advantage_scale=none"], "RLOO baseline, no std"),
    "reinforce++": (
        ["grpo.advantage_baseline=batch", "grpo.advantage_scale=batch"],
        "REINFORCE++: batch mean and std",
    ),
    "top-entropy-20%": (["grpo.top_entropy_quantile=0.2"], "policy loss on the 20% highest-entropy tokens"),
    "async": (
        ["rollout.async_steps=1", "grpo.rollout_correction=tis-token"],
        "one-step off-policy rollouts + token TIS",
    ),
    "control-random": (["rewards.control=random"], "control: a coin instead of the accuracy reward"),
    "control-format-only": (["rewards.control=format-only"], "control: the format reward alone"),
}


def coldstart(out: Path, seed: int) -> str:
    """The demo's cold-start checkpoint (trained once)."""
    final = out / "coldstart" / "checkpoints" / "final"
    if not (final / "config.json").is_file():
        cfg = stage_config([], out / "coldstart", COLDSTART)
        a = cfg.data.arithmetic
        shape = dict(min_digits=a.min_digits, max_digits=a.max_digits, min_steps=a.min_steps, max_steps=a.max_steps)
        data = write_jsonl(arithmetic_worked_examples(192, seed=seed, ops=a.ops, **shape), out / "coldstart.jsonl")
        train_sft(stage_config([], out / "coldstart", COLDSTART, sft__data=str(data)))
    return str(final)


def run_option(name: str, overrides: list[str], start: str, heldout: list[dict], out: Path) -> dict:
    done = out / name / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    cfg = stage_config([*BASE, *overrides], out / name / "grpo", model__name=start)
    t0 = time.perf_counter()
    run = train_grpo(cfg)
    seconds = time.perf_counter() - t0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    result = {
        "name": name,
        "overrides": overrides,
        "heldout": heldout_eval(str(run / "checkpoints" / "final"), heldout, cfg, out / name / "eval"),
        "grpo_seconds": round(seconds, 1),
        "step_s": statistics.median(r["time/step"] for r in rows),
        "train_accuracy_last3": statistics.mean(r.get("reward/accuracy", float("nan")) for r in rows[-3:]),
        "entropy_last": rows[-1].get("entropy"),
        "mismatch_mean": statistics.mean(r.get("rollout/mismatch_abs_diff", 0.0) for r in rows),
        "corrected_frac": statistics.mean(
            r.get("rollout/is_capped_frac", 0.0) + r.get("rollout/is_dropped_frac", 0.0) for r in rows
        ),
    }
    done.write_text(json.dumps(result, indent=2))
    return result


def table(results: list[dict], base: dict) -> str:
    lines = [
        "| option | held-out pass@1 (95% CI) | Δ vs cold start | format | mean length | entropy (last step) "
        "| train acc. (last 3) | mean abs Δ log π (engine vs trainer) | capped or masked tokens | median step |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| cold start (no RL) | {base['accuracy']:.3f} [{base['accuracy_ci'][0]:.3f}, {base['accuracy_ci'][1]:.3f}] "
        f"| — | {base['format']:.3f} | {base['mean_length']:.1f} | — | — | — | — | — |",
    ]
    for r in results:
        h = r["heldout"]
        entropy = "—" if r["entropy_last"] is None else f"{r['entropy_last']:.3f}"
        lines.append(
            f"| {r['name']} | {h['accuracy']:.3f} [{h['accuracy_ci'][0]:.3f}, {h['accuracy_ci'][1]:.3f}] "
            f"| {100 * (h['accuracy'] - base['accuracy']):+.1f} | {h['format']:.3f} | {h['mean_length']:.1f} "
            f"| {entropy} | {r['train_accuracy_last3']:.3f} | {r['mismatch_mean']:.4f} | {r['corrected_frac']:.3f} "
            f"| {r['step_s']:.1f} s |"
        )
    return "\n".join(lines) + "\n"


def plot_curves(out: Path, groups: dict[str, list[str]]) -> list[Path]:
    """One PNG per group of options: the training accuracy reward per step (from each metrics.jsonl)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for title, names in groups.items():
        fig, ax = plt.subplots(figsize=(6.0, 3.6))
        for name in names:
            path = out / name / "grpo" / "metrics.jsonl"
            if path.is_file():
                rows = [json.loads(line) for line in path.read_text().splitlines()]
                ax.plot([r["step"] for r in rows], [r.get("reward/accuracy") for r in rows], marker="o", label=name)
        ax.set_xlabel("GRPO step")
        ax.set_ylabel("accuracy reward (training batch)")
        ax.set_title(title)
        ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(out / f"curves_{title.split()[0].strip(':').lower()}.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written


CURVE_GROUPS = {
    "Precision and correction: bf16 rollout, fp32 trainer": ["grpo", "same-precision", "tis-token", "mis-token"],
    "Off-policy: one-step async against on-policy": ["grpo", "tis-token", "async"],
    "Controls: the reward's share of the gain": ["grpo", "control-random", "control-format-only"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--heldout", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/algorithms")
    parser.add_argument("--only", default="", help="comma-separated option names (default: all)")
    parser.add_argument("--plot", action="store_true", help="only draw OUT/curves_*.png from finished options")
    parser.add_argument("--extra", nargs="*", default=[], help="overrides for every option, e.g. grpo.ppo_epochs=2")
    args = parser.parse_args()
    out = Path(args.out)
    if args.plot:
        print("\n".join(str(p) for p in plot_curves(out, CURVE_GROUPS)))
        return
    budget = [f"train.steps={args.steps}", f"rollout.prompts_per_step={args.prompts}", f"run.seed={args.seed}"]
    BASE.extend([*budget, f"eval.limit={args.heldout}", *args.extra])
    start = coldstart(out, args.seed)
    cfg = stage_config(BASE, out / "base")
    a = cfg.data.arithmetic
    heldout = load_examples("arithmetic", split="test", size=args.heldout, seed=HELDOUT_SEED, arithmetic=vars(a))
    base_file = out / "coldstart_eval.json"
    if not base_file.is_file():
        base_file.write_text(json.dumps(heldout_eval(start, heldout, cfg, out / "coldstart" / "eval")))
    base = json.loads(base_file.read_text())
    names = [n for n in OPTIONS if not args.only or n in args.only.split(",")]
    results = []
    for name in names:
        print(f"=== {name}: {OPTIONS[name][1]}", flush=True)
        results.append(run_option(name, OPTIONS[name][0], start, heldout, out))
        (out / "table.md").write_text(table(results, base))
        print(table(results, base), flush=True)


if __name__ == "__main__":
    main()
