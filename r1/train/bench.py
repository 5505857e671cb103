"""GRPO step time on the standard work: `r1 bench grpo-step`.

The standard work (the same as `benchmarks/trl_grpo_step.py` runs in TRL): the bundled
SmolLM2-135M, 4 arithmetic prompts (r1-zero template) × 8 samples, exactly 128 new tokens per
completion (EOS ignored, so every step does the same work whatever the model writes), β = 0.04
with a frozen reference, μ = 1, accuracy + format rewards. Each step is the real `grpo_step` —
the trainer's own code, not a copy — timed as generation / scoring / training.

`dtype` sets both the rollout's weights and the training forward (bf16 autocast with fp32
master weights and an fp32 log-softmax). Step 1 warms up; the summary takes the median of steps
2–6 (or of every step after the first when fewer). The last printed line is machine-readable:

    SUMMARY step_s=… gen_s=… score_s=… train_s=… gen_tok_s=… peak_rss_mib=…

Deliberately left out: checkpoints, logging files and evaluation — only the step is timed.
"""

from __future__ import annotations

import resource
import statistics

import torch

from r1.config import load_config
from r1.precision import resolve as resolve_precision
from r1.train import distributed as dist
from r1.train.grpo import build_run, grpo_step

STANDARD = [
    "model.name=smollm2-135m",
    "data.source=arithmetic",
    "data.size=64",
    "data.template=r1-zero",
    "rollout.prompts_per_step=4",
    "rollout.samples_per_prompt=8",
    "rollout.max_new_tokens=128",
    "rollout.ignore_eos=true",
    "rollout.temperature=1.0",
    "rollout.engine=fast",
    "rewards.weights={accuracy: 1.0, format: 1.0}",
    "grpo.beta=0.04",
    "grpo.ppo_epochs=1",
    "train.micro_batch_size=16",
    "optim.lr=1e-6",
]
PHASES = ("step", "generate", "score", "train")


def rss_mib() -> float:
    """Resident memory of this process now (Linux), or the peak where /proc is missing."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_grpo_step(dtype: str = "auto", steps: int = 6, threads: int | None = None, overrides: list[str] = ()) -> dict:
    """Run `steps` standard GRPO steps; print each and the SUMMARY line; return the figures."""
    if threads is not None:
        torch.set_num_threads(threads)
    bf16 = "auto" if dtype == "auto" else str(dtype == "bfloat16").lower()
    precision = [f"rollout.dtype={dtype}", f"train.bf16={bf16}"]
    cfg = load_config(None, [*STANDARD, *precision, *overrides])
    cfg.rollout.dtype, cfg.train.bf16, _ = resolve_precision(
        cfg.rollout.dtype, cfg.train.bf16, dist.device(cfg.run.device)
    )
    cfg.train.steps = steps  # the LR schedule's length
    run, rows = build_run(cfg), []
    for step in range(1, steps + 1):
        result = grpo_step(run)
        metrics = result.metrics
        row = {phase: metrics[f"time/{phase}"] for phase in PHASES}
        row["gen_tok_s"] = float(result.batch.lengths.sum()) / row["generate"]
        rows.append(row)
        print(
            f"step {step}: "
            + " ".join(f"{k}={v:.2f}" for k, v in row.items())
            + f" reward={metrics['reward/mean']:.3f} rss_mib={rss_mib():.0f} peak_mib={metrics['memory/peak_mib']:.0f}",
            flush=True,
        )
    run.rewards.close()
    return {
        "dtype": dtype,
        "rollout_dtype": cfg.rollout.dtype,
        "train_bf16": cfg.train.bf16,
        "threads": torch.get_num_threads(),
        **summarize(rows),
    }


def summarize(rows: list[dict]) -> dict:
    """Median of steps 2–6 (step 1 warms up) and peak memory; prints the SUMMARY line."""
    timed = rows[1:6] or rows
    m = {key: statistics.median(r[key] for r in timed) for key in rows[0]}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # then also the GPU's peak (scripts/gpu_check.py)
    on_gpu = torch.cuda.is_available() and torch.cuda.is_initialized()
    cuda = f" peak_cuda_mib={torch.cuda.max_memory_allocated() / 2**20:.0f}" if on_gpu else ""
    print(
        f"SUMMARY step_s={m['step']:.2f} gen_s={m['generate']:.2f} score_s={m['score']:.3f} train_s={m['train']:.2f} "
        f"gen_tok_s={m['gen_tok_s']:.1f} peak_rss_mib={peak:.0f}{cuda}",
        flush=True,
    )
    return {"steps": rows, "median": m, "peak_rss_mib": peak}
