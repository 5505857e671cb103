"""bf16 against fp32 on a short real GRPO run: do the reward curves agree within noise?

Runs the demo's GRPO stage (settings from r1/pipeline/demo.py) from a cold-start checkpoint twice,
with the same seed: once in float32 (rollout weights and training forward), once in bfloat16
(bf16 rollout weights, bf16 autocast training with fp32 master weights and fp32 log-softmax).
Prints the per-step accuracy reward of both, their means over steps with the standard error, and
the max |Δ log-prob| between a bf16 and an fp32 forward on the first batch's completions.

    python benchmarks/precision_curves.py runs/demo/coldstart/checkpoints/final --steps 12
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch

from r1.config import load_config
from r1.models import load_model
from r1.pipeline.demo import DEMO
from r1.train.forward import completion_logprobs
from r1.train.grpo import train_grpo


def curve(run: Path, key: str = "reward/accuracy") -> list[float]:
    return [json.loads(line)[key] for line in (run / "metrics.jsonl").read_text().splitlines()]


def logprob_gap(checkpoint: str, cfg) -> float:
    """max |log π_bf16 − log π_fp32| over 4 prompts × 4 completions sampled from `checkpoint`."""
    from r1.rollout import ENGINES, Sampling
    from r1.train.run import load_prompt_dataset

    model, tokenizer = load_model(checkpoint)
    prompts = [e["prompt_ids"] for e in load_prompt_dataset(cfg.data, tokenizer)[:4]]
    rollout = ENGINES["fast"](
        model, tokenizer, prompts, Sampling(n=4, max_new_tokens=cfg.rollout.max_new_tokens, seed=0, dtype="float32")
    )
    mask = torch.arange(rollout.completion_ids.shape[1])[None] < rollout.lengths[:, None]
    args = (model, rollout.prompt_ids, rollout.completion_ids)
    with torch.no_grad():
        fp32, _ = completion_logprobs(*args, pad_id=tokenizer.pad_token_id)
        bf16, _ = completion_logprobs(*args, pad_id=tokenizer.pad_token_id, bf16=True)
    return float((fp32 - bf16).abs()[mask].max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="the cold-start checkpoint to start GRPO from")
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="precision-"))
    curves = {}
    for dtype in ("float32", "bfloat16"):
        bf16 = str(dtype == "bfloat16").lower()
        cfg = load_config(
            None,
            [
                *DEMO,
                f"model.name={args.checkpoint}",
                f"run.output_dir={out / dtype}",
                f"train.steps={args.steps}",
                f"rollout.dtype={dtype}",
                f"train.bf16={bf16}",
            ],
        )
        run = train_grpo(cfg)
        curves[dtype] = curve(run)
        times = curve(run, "time/step")
        print(f"{dtype}: median step {statistics.median(times):.1f} s", flush=True)
    print("step | fp32 accuracy reward | bf16 accuracy reward")
    for step, (a, b) in enumerate(zip(curves["float32"], curves["bfloat16"]), 1):
        print(f"{step} | {a:.3f} | {b:.3f}")
    for dtype, values in curves.items():
        print(
            f"{dtype}: mean {statistics.mean(values):.3f} ± {statistics.stdev(values) / len(values) ** 0.5:.3f} "
            "(standard error over steps)"
        )
    print(
        f"max |Δ log-prob| bf16 autocast vs fp32 over 16 sampled completions: {logprob_gap(args.checkpoint, cfg):.4f}"
    )


if __name__ == "__main__":
    main()
