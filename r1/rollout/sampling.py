"""How to sample, as one object every engine takes whole, and which engine runs where.

Every engine (`fast`, `hf`, `vllm`) is called as `generate(model, tokenizer, prompt_ids, sampling)`
with one frozen `Sampling`. An engine that hands the work to another (the fast engine given a
model it cannot run) passes the same object on, so no field can be dropped on the way — which is
what used to happen when each engine took its own list of keyword arguments.

`pick_engine("auto", model)` chooses: `fast` for a Llama/Qwen2-shaped model on the CPU, `vllm` for
a model on CUDA when vLLM is installed, else `hf`. A named engine that cannot run the model says
so once per process and per reason (`say_once`), not at every call.

Deliberately left out: per-request sampling settings inside one call (every row of a call samples
alike), top-k and repetition penalties (the paper's settings use neither).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, replace

from r1 import precision

_said: set[str] = set()
FAST_FALLBACK = (
    "the fast rollout runs Llama/Qwen2-shaped models on the CPU, not this one ({reason}): "
    "using hf (transformers generate) with the same sampling settings"
)


@dataclass(frozen=True)
class Sampling:
    """The sampling settings of one `generate` call."""

    n: int = 1  # completions per prompt (the GRPO group size); rows i*n … i*n+n-1 belong to prompt i
    temperature: float = 1.0  # 0 = greedy
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int | None = None
    dtype: str = "auto"  # the engine's matmul precision: float32, bfloat16, or auto (r1/precision.py)
    ignore_eos: bool = False  # benchmarks only: every completion runs to max_new_tokens
    # return the engine's own log-prob of every sampled token (`Rollout.logprobs`, after temperature,
    # without top-p: the trainer's convention): free in fast and vllm, one more forward pass in hf
    logprobs: bool = False

    def but(self, **changes) -> "Sampling":
        """A copy with some fields changed, e.g. `sampling.but(seed=7)`."""
        return replace(self, **changes)

    def resolved_dtype(self, device) -> str:
        """`dtype` with auto replaced by the measured choice for `device`."""
        return precision.choose(self.dtype, "rollout", device).dtype


def say_once(message: str) -> None:
    """Print a notice the first time it comes up in this process."""
    if message not in _said:
        _said.add(message)
        print(f"[r1] {message}", flush=True)


def model_device(model):
    return next(model.parameters()).device


def pick_engine(name: str, model, fast_unsupported) -> str:
    """The engine to run: `name`, or for auto the best one that can run `model` where it lives.

    `fast_unsupported(model)` says why the fast engine cannot run it, or None (r1/rollout/fast.py)."""
    device = model_device(model)
    reason = fast_unsupported(model)
    if name == "auto":
        if reason is None:
            return "fast"
        if device.type == "cuda" and importlib.util.find_spec("vllm") is not None:
            return "vllm"
        return "hf"
    if name == "fast" and reason:
        say_once(FAST_FALLBACK.format(reason=reason))
        return "hf"
    return name
