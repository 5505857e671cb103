"""The pipeline against pure R1-Zero with the same number of RL steps.

    python benchmarks/pipeline_vs_zero.py --pipeline-dir RUN --output-dir /tmp/zero-vs

RUN is a finished `r1 pipeline --config configs/r1_smol.yaml` run. This script counts the GRPO
steps its stages took, runs `r1 zero` (the preset r1/presets/zero.yaml: accuracy + format rewards,
no SFT) from the same base model for that many steps with the pipeline's prompts, rollout and
optimizer settings, then evaluates the result on the pipeline's held-out set with the pipeline's
own evaluation (accuracy, format, language consistency, length). Prints both final rows and
writes OUTPUT/pipeline_vs_zero.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from r1.config import load_config
from r1.pipeline.pipeline import heldout_metrics
from r1.train import checkpoint as ckpt
from r1.train.grpo import train_grpo

# The pipeline config's sections that make the comparison fair: same prompts, group size, lengths,
# precision and learning rate. The zero preset keeps its own template and rewards.
SHARED = (
    "data.source",
    "data.size",
    "data.arithmetic",
    "rollout",
    "optim",
    "train.micro_batch_size",
    "train.bf16",
    "eval",
    "pipeline",
    "model",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline-dir", type=Path, required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    manifest = json.loads((args.pipeline_dir / "manifest.json").read_text(encoding="utf-8"))
    pipe = load_config(args.pipeline_dir / "config.yaml")
    steps = sum(
        ckpt.checkpoint_step(Path(entry["dir"]) / "checkpoints" / "final")
        for entry in manifest["stages"].values()
        if entry["kind"] == "grpo"
    )
    settings = [f"{key}={json.dumps(value)}" for key, value in flat(pipe, SHARED).items()]
    cfg = load_config(
        "zero",
        [
            *settings,
            "data.split=train",
            "data.limit=null",
            "pipeline.stages=[]",
            f"train.steps={steps}",
            "train.save_every=1000",
            f"run.output_dir={args.output_dir / 'zero'}",
            *args.overrides,
        ],
    )
    start = time.perf_counter()
    run_dir = train_grpo(cfg)
    seconds = round(time.perf_counter() - start, 1)
    zero = heldout_metrics(str(run_dir / "checkpoints" / "final"), cfg)
    final = manifest["report"][-1]
    result = {"rl_steps": steps, "zero": {**zero, "train_seconds": seconds}, "pipeline_final": final}
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "pipeline_vs_zero.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print("| model | RL steps | held-out accuracy | format | language | mean length |\n|---|---|---|---|---|---|")
    for name, row in (("r1 pipeline (final stage)", final), (f"r1 zero ({seconds:.0f} s)", zero)):
        print(
            f"| {name} | {steps} | {row['accuracy']:.3f} [{row['accuracy_ci'][0]:.3f}, {row['accuracy_ci'][1]:.3f}] | "
            f"{row['format']:.3f} | {row['language']:.3f} | {row['mean_length']:.1f} |"
        )


def flat(cfg, keys: tuple[str, ...]) -> dict:
    """The values of dotted `keys` in `cfg`, as plain data (sections as dicts)."""
    from dataclasses import asdict, is_dataclass

    out = {}
    for key in keys:
        value = cfg
        for part in key.split("."):
            value = getattr(value, part)
        out[key] = asdict(value) if is_dataclass(value) else value
    return out


if __name__ == "__main__":
    main()
