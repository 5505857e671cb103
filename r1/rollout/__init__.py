"""Sampling completions from a policy. Engines share one contract (`Rollout`); pick one by name."""

from r1.rollout import fast, hf, vllm_engine
from r1.rollout.hf import Rollout, completion_lengths, generate, stop_token_ids

ENGINES = {"hf": hf.generate, "fast": fast.generate, "vllm": vllm_engine.generate}  # one signature, dtype included

__all__ = ["ENGINES", "Rollout", "completion_lengths", "fast", "generate", "hf", "stop_token_ids", "vllm_engine"]
