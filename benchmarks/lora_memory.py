"""Peak memory of GRPO on the bundled SmolLM2-135M: LoRA vs full fine-tuning.

Each setting runs `r1 bench grpo-step` (the standard work: 4 prompts × 8 samples × 128 forced new
tokens, β = 0.04, μ = 1) in its own process, so every peak RSS (`ru_maxrss`, model load, rollout,
reference and optimizer included) belongs to one setting. Full fine-tuning holds a frozen copy
of the model as π_ref; LoRA uses the policy with its adapter off.

    nice -n 19 .venv/bin/python benchmarks/lora_memory.py --steps 3 --dtype float32
"""

from __future__ import annotations

import argparse
import subprocess
import sys

SETTINGS = {
    "full": [],
    "full+gc": ["train.gradient_checkpointing=true"],
    "lora": ["model.lora.enabled=true"],
    "lora+gc": ["model.lora.enabled=true", "train.gradient_checkpointing=true"],
}


def run(setting: list[str], dtype: str, steps: int, micro: int) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "r1",
        "bench",
        "grpo-step",
        "--dtype",
        dtype,
        "--steps",
        str(steps),
        f"train.micro_batch_size={micro}",
        *setting,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    summary = next(line for line in out.splitlines() if line.startswith("SUMMARY "))
    return {k: float(v) for k, v in (pair.split("=") for pair in summary.split()[1:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument(
        "--micro", type=int, nargs="+", default=[4, 16], help="train.micro_batch_size values (default 4 16)"
    )
    args = parser.parse_args()
    print("| setting | micro-batch | peak RSS MiB | step s (median) | train s |\n|---|---|---|---|---|")
    for micro in args.micro:
        for name, setting in SETTINGS.items():
            s = run(setting, args.dtype, args.steps, micro)
            print(
                f"| {name} | {micro} | {s['peak_rss_mib']:.0f} | {s['step_s']:.1f} | {s['train_s']:.1f} |", flush=True
            )


if __name__ == "__main__":
    main()
