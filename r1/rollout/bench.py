"""Rollout throughput on the bundled SmolLM2-135M: new tokens per second, forced to full length.

`bench_rollout` samples `n_rows` completions of exactly `new_tokens` tokens (EOS ignored, so every
run does the same work) for GRPO-shaped batches — 8 arithmetic prompts × n_rows/8 samples — and
reports the median over `repeats` runs. `engine="hf"` measures HF `generate` (the baseline; EOS is
suppressed with `min_new_tokens`); `engine="vllm"` the vLLM engine (built before the timed runs). The
last printed line is machine-readable:
`SUMMARY tok_s=<median> peak_rss_mib=<peak resident memory of this process>`.

On a shared 2-core machine, 1 thread can beat 2 by far: OpenMP threads spin at every barrier
while another process holds the second core (see docs/perf.md).

    python -m r1.rollout.bench --dtype bfloat16 --threads 1
"""

from __future__ import annotations

import resource
import statistics
import time

import torch
from r1.data import make_problems, prepare_prompts
from r1.models import load_model
from r1.rollout import ENGINES, Sampling
from r1.precision import choose


def bench_rollout(
    dtype: str = "auto",
    n_rows: int = 64,
    new_tokens: int = 128,
    repeats: int = 3,
    engine: str = "fast",
    threads: int | None = None,
    model_name: str = "smollm2-135m",
) -> dict:
    """Median new tokens/s of `repeats` forced-length rollouts; `threads` sets torch's thread count."""
    if threads is not None:
        torch.set_num_threads(threads)
    dtype = choose(dtype, "rollout").dtype
    model, tokenizer = load_model(model_name, dtype=dtype if engine == "hf" else "float32")
    n_prompts = 8 if n_rows % 8 == 0 else 1
    prompts = [p["prompt_ids"] for p in prepare_prompts(make_problems(n_prompts, seed=0), tokenizer)]
    n = n_rows // n_prompts
    if engine == "vllm":  # building the engine (~10 s) is a one-time cost, not throughput
        ENGINES[engine](model, tokenizer, prompts[:1], Sampling(max_new_tokens=1, dtype=dtype))
    rates = []
    for i in range(repeats):
        start = time.perf_counter()
        if engine == "hf":
            _hf_forced(model, tokenizer, prompts, n, new_tokens, seed=i)
        else:
            rollout = ENGINES[engine](
                model,
                tokenizer,
                prompts,
                Sampling(n=n, max_new_tokens=new_tokens, seed=i, dtype=dtype, ignore_eos=True),
            )
            assert rollout.completion_ids.shape == (n_rows, new_tokens)
        seconds = time.perf_counter() - start
        rates.append(n_rows * new_tokens / seconds)
        print(
            f"run {i}: {engine} {dtype} {n_rows}x{new_tokens} tokens in {seconds:.1f} s = {rates[-1]:.0f} tok/s",
            flush=True,
        )
    result = {
        "engine": engine,
        "dtype": dtype,
        "tok_s": statistics.median(rates),
        "runs": rates,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }
    print(f"SUMMARY tok_s={result['tok_s']:.1f} peak_rss_mib={result['peak_rss_mib']:.0f}", flush=True)
    return result


@torch.inference_mode()
def _hf_forced(model, tokenizer, prompts, n, new_tokens, seed):
    rows = [p for p in prompts for _ in range(n)]
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in rows])
    attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in rows])
    torch.manual_seed(seed)
    model.generate(
        input_ids=ids,
        attention_mask=attention,
        do_sample=True,
        top_k=0,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        pad_token_id=pad,
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    parser.add_argument("--engine", default="fast", choices=["fast", "hf", "vllm"])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    a = parser.parse_args()
    bench_rollout(a.dtype, a.rows, a.new_tokens, a.repeats, engine=a.engine, threads=a.threads)
