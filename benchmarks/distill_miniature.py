"""The paper's distillation claim in miniature (docs/method.md §6): on a small model, SFT on a
stronger model's curated reasoning beats spending the same compute on RL.

    python benchmarks/distill_miniature.py --teacher RUN/grpo/checkpoints/final --output-dir /tmp/distill-mini

teacher = a checkpoint `r1 demo` produced (cold start + GRPO), student = the bundled base
SmolLM2-135M-Instruct, prompts = the demo's arithmetic train split, all other settings the demo's
(`r1/pipeline/demo.py` DEMO). Four models are evaluated on the demo's held-out set (its test split
and seed, `eval.limit` problems × `eval.k` samples):

1. the teacher;
2. the student before anything;
3. the student after `r1 distill` (rejection sampling from the teacher → SFT);
4. the student after on-policy distillation (`r1 distill --method on-policy`: the student samples, the
   teacher grades every sampled token, reverse KL) for the same wall-clock time as step 3 took
   (`train.max_time_s`), with the cold start's learning rate and ONPOLICY's batch shape;
5. the student after GRPO from the base model for the same wall-clock time, with the demo's GRPO settings.

Every row reports the teacher forward tokens it spent (prompts + sampled tokens through the teacher for
SFT distillation; prompts + student completions for on-policy). Prints a markdown table and writes
`OUTPUT/distill_miniature.json`. Extra key=value overrides
apply to every part (e.g. `sample.k=8`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from r1.config import load_config
from r1.data import load_examples
from r1.pipeline.demo import COLDSTART, DEMO, HELDOUT_SEED, heldout_eval
from r1.pipeline.distill import run_distill
from r1.train.grpo import train_grpo

SAMPLING = ["rollout.temperature=0.7", "rollout.top_p=0.95", "sample.k=4", "sample.max_per_prompt=2"]
# on-policy distillation needs no group baseline: more prompts, fewer samples each, than GRPO's 12 × 8
ONPOLICY = ["distill.method=on-policy", "rollout.prompts_per_step=16", "rollout.samples_per_prompt=2"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", required=True, help="the r1 demo's final checkpoint")
    parser.add_argument("--student", default="smollm2-135m")
    parser.add_argument("--prompts", type=int, default=512, help="train prompts the teacher is sampled on")
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    out = args.output_dir
    common = [*DEMO, *COLDSTART, *SAMPLING, f"data.limit={args.prompts}", *args.overrides]

    t0 = time.perf_counter()
    manifest = run_distill(
        load_config(None, [*common, f"run.output_dir={out / 'distill'}"]), teacher=args.teacher, student=args.student
    )
    distill_s = sum(part.get("seconds", 0.0) for part in manifest["parts"].values()) or time.perf_counter() - t0

    def budgeted(name: str, *settings: str, last: tuple[str, ...] = ()):
        """A part that gets the wall-clock time SFT distillation took, in OUT/name: DEMO ← `settings` ← the
        user's overrides ← `last` and the budget."""
        budget = ["train.steps=100000", f"train.max_time_s={distill_s:.0f}", f"run.output_dir={out / name}"]
        return load_config(None, [*DEMO, *settings, *args.overrides, *last, *budget])

    online = run_distill(budgeted("on-policy", *COLDSTART, *ONPOLICY), teacher=args.teacher, student=args.student)
    online_part = online["parts"]["on-policy"]

    grpo_cfg = budgeted("grpo", last=(f"model.name={args.student}",))
    t1 = time.perf_counter()
    grpo_dir = train_grpo(grpo_cfg)
    grpo_s = time.perf_counter() - t1
    grpo_steps = json.loads((grpo_dir / "checkpoints" / "final" / "checkpoint.json").read_text())["step"]

    cfg = load_config(None, common)
    heldout = load_examples(
        "arithmetic", split="test", size=cfg.eval.limit, seed=HELDOUT_SEED, arithmetic=vars(cfg.data.arithmetic)
    )
    models = {
        "teacher (r1 demo final)": args.teacher,
        "student, base": args.student,
        f"student after r1 distill ({distill_s:.0f} s)": str(out / "distill" / "sft" / "checkpoints" / "final"),
        f"student after on-policy distillation, same budget ({online_part['seconds']:.0f} s, "
        f"{online_part['steps']} steps)": str(out / "on-policy" / "on-policy" / "checkpoints" / "final"),
        f"student after GRPO, same budget ({grpo_s:.0f} s, {grpo_steps} steps)": str(
            grpo_dir / "checkpoints" / "final"
        ),
    }
    teacher_tokens = [None, 0, manifest["parts"]["sample"].get("teacher_tokens"), online_part.get("teacher_tokens"), 0]
    results = {
        name: heldout_eval(path, heldout, cfg, out / "eval" / f"m{i}") for i, (name, path) in enumerate(models.items())
    }

    sample = manifest["parts"]["sample"]
    lines = [
        f"held-out arithmetic, {len(heldout)} problems × {cfg.eval.k} samples (T={cfg.eval.temperature}); "
        f"teacher kept {sample.get('kept')} of {sample.get('samples')} samples",
        "",
        "| model | accuracy (95% CI) | format | mean length | teacher forward tokens |",
        "|---|---|---|---|---|",
    ]
    for (name, r), tokens in zip(results.items(), teacher_tokens):
        low, high = r["accuracy_ci"]
        spent = "—" if tokens is None else f"{tokens:,}"
        lines.append(
            f"| {name} | {r['accuracy']:.3f} [{low:.3f}, {high:.3f}] | {r['format']:.3f} | {r['mean_length']:.1f} "
            f"| {spent} |"
        )
    print("\n".join(lines))
    summary = {
        "results": results,
        "models": models,
        "distill_s": distill_s,
        "grpo_s": grpo_s,
        "grpo_steps": grpo_steps,
        "on_policy": {k: online_part.get(k) for k in ("seconds", "steps", "teacher_tokens", "divergence")},
        "teacher_tokens": dict(zip(models, teacher_tokens)),
        "sample": {k: sample.get(k) for k in ("prompts", "samples", "kept", "rejected")},
    }
    (out / "distill_miniature.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
