"""Sampling completions from a policy. Engines share one contract (`Rollout`) and one signature,
`generate(model, tokenizer, prompt_ids, sampling: Sampling)`; pick one by name or let `auto` pick.

A run builds one `RolloutEngine` from its `rollout:` section where it starts and samples through it;
the engine carries what an engine needs beyond the call (vLLM's options and its built `vllm.LLM`s),
so nothing is configured process-wide. `ENGINES` holds the plain generate functions (vLLM's with
default options) for direct calls and for tests to replace.
"""

from r1.config import VllmConfig
from r1.rollout import fast, hf, vllm_engine
from r1.rollout.hf import Rollout, completion_lengths, stop_token_ids
from r1.rollout.sampling import Sampling, pick_engine

ENGINES = {"hf": hf.generate, "fast": fast.generate, "vllm": vllm_engine.generate}


class RolloutEngine:
    """The engine `rollout.engine` names (`auto` picks per model and device at each call)."""

    def __init__(self, name: str = "auto", vllm: VllmConfig | None = None):
        self.name = name
        self._own = {"vllm": vllm_engine.VllmEngine(vllm).generate}  # engines with per-run state

    def picks(self, model) -> str:
        """The name of the engine that runs for this model (the fast engine falls back to hf when it cannot)."""
        return pick_engine(self.name, model, fast.unsupported)

    def for_model(self, model):
        """The generate function that runs for this model."""
        picked = self.picks(model)
        return self._own.get(picked) or ENGINES[picked]

    def generate(self, model, tokenizer, prompt_ids: list[list[int]], sampling: Sampling = Sampling()) -> Rollout:
        """Sample `sampling.n` completions per prompt (the `Rollout` contract, r1/rollout/hf.py)."""
        return self.for_model(model)(model, tokenizer, prompt_ids, sampling)


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
    "RolloutEngine",
    "Sampling",
    "completion_lengths",
    "engine",
    "fast",
    "generate",
    "hf",
    "stop_token_ids",
    "vllm_engine",
]
