"""Sampling completions from a policy. Engines share one contract (`Rollout`) and one signature,
`generate(model, tokenizer, prompt_ids, sampling: Sampling)`; pick one by name or let `auto` pick."""

from r1.rollout import fast, hf, vllm_engine
from r1.rollout.hf import Rollout, completion_lengths, stop_token_ids
from r1.rollout.sampling import Sampling, pick_engine

ENGINES = {"hf": hf.generate, "fast": fast.generate, "vllm": vllm_engine.generate}


def engine(name: str, model):
    """The generate function for `rollout.engine=name` ("auto", "fast", "hf", "vllm") and this model."""
    return ENGINES[pick_engine(name, model, fast.unsupported)]


def generate(
    model, tokenizer, prompt_ids: list[list[int]], sampling: Sampling = Sampling(), *, engine_name: str = "auto"
) -> Rollout:
    """Sample with the engine `engine_name` picks for this model (module doc)."""
    return engine(engine_name, model)(model, tokenizer, prompt_ids, sampling)


__all__ = [
    "ENGINES",
    "Rollout",
    "Sampling",
    "completion_lengths",
    "engine",
    "fast",
    "generate",
    "hf",
    "stop_token_ids",
    "vllm_engine",
]
