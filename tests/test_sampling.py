"""One `Sampling` object for every engine: each engine honours every field, a fallback passes the
object on whole, and `rollout.engine=auto` picks the engine that can run the model where it lives."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from r1.models import load_model
from r1.rollout import ENGINES, Sampling, engine, fast, hf, sampling

PROMPTS = [[5, 6, 7, 8, 9], [20, 21, 22]]
EVERY_FIELD = Sampling(
    n=3, temperature=0.7, top_p=0.9, max_new_tokens=5, seed=11, dtype="bfloat16", ignore_eos=True, logprobs=True
)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(str(tiny_model_dir))


def test_every_field_differs_from_its_default():
    """The fixture below would miss a field left at its default: every one is set to something else."""
    defaults = Sampling()
    fields = dataclasses.fields(Sampling)
    assert all(getattr(EVERY_FIELD, f.name) != getattr(defaults, f.name) for f in fields)


@pytest.mark.parametrize("name", ["fast", "hf"])
def test_each_engine_honours_n_length_ignore_eos_and_seed(tiny, name):
    model, tokenizer = tiny
    s = EVERY_FIELD.but(dtype="float32")
    a, b = ENGINES[name](model, tokenizer, PROMPTS, s), ENGINES[name](model, tokenizer, PROMPTS, s)
    assert a.completion_ids.shape == (len(PROMPTS) * s.n, s.max_new_tokens)  # n rows a prompt, each full length
    assert a.lengths.tolist() == [s.max_new_tokens] * 6
    assert torch.equal(a.completion_ids, b.completion_ids)  # the seed is used
    c = ENGINES[name](model, tokenizer, PROMPTS, s.but(seed=12))
    assert not torch.equal(a.completion_ids, c.completion_ids)
    assert a.logprobs.shape == a.completion_ids.shape  # the engine's own log-probs, asked for


@pytest.mark.parametrize("name", ["fast", "hf"])
@pytest.mark.parametrize("dtype, tolerance", [("float32", 1e-5), ("bfloat16", 0.1)])
def test_each_engine_returns_its_own_logprobs_of_the_sampled_tokens(tiny, name, dtype, tolerance):
    """After temperature and before top-p (the trainer's convention), 0 past each completion's end; in
    fp32 equal to the trainer's to float rounding, in bf16 off by the rollout's own rounding."""
    from r1.train.forward import completion_logprobs

    model, tokenizer = tiny
    s = Sampling(n=3, temperature=0.8, top_p=0.9, max_new_tokens=12, seed=1, dtype=dtype, logprobs=True)
    out = ENGINES[name](model, tokenizer, PROMPTS, s)
    with torch.no_grad():
        trainer, _ = completion_logprobs(
            model, out.prompt_ids, out.completion_ids, pad_id=tokenizer.pad_token_id, temperature=0.8
        )
    mask = out.mask.bool()
    gap = float((trainer - out.logprobs).abs()[mask].max())
    assert gap < tolerance and (out.logprobs[~mask] == 0).all() and (out.logprobs[mask] < 0).all()
    if dtype == "bfloat16":
        assert gap > 1e-6  # bf16 matmuls do differ: the mismatch the correction is for
    assert ENGINES[name](model, tokenizer, PROMPTS, s.but(logprobs=False)).logprobs is None


def test_greedy_and_a_tiny_nucleus_agree_across_engines(tiny):
    """temperature 0 is argmax in both engines; top_p → 0 keeps only the most likely token."""
    model, tokenizer = tiny
    greedy = Sampling(temperature=0, max_new_tokens=6, ignore_eos=True, dtype="float32")
    nucleus = Sampling(temperature=1.0, top_p=1e-6, max_new_tokens=6, ignore_eos=True, seed=3, dtype="float32")
    results = [
        ENGINES[name](model, tokenizer, PROMPTS, s).completion_ids for name in ("fast", "hf") for s in (greedy, nucleus)
    ]
    assert all(torch.equal(results[0], r) for r in results[1:])


@pytest.mark.parametrize("name", ["fast", "hf"])
def test_each_engine_runs_its_matmuls_in_the_requested_precision(tiny, name, monkeypatch):
    model, tokenizer = tiny
    seen = []
    if name == "fast":
        real = fast.Decoder
        monkeypatch.setattr(fast, "Decoder", lambda m, dtype, batch: seen.append(dtype) or real(m, dtype, batch))
    else:
        hook = model.model.layers[0].mlp.down_proj.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    try:
        ENGINES[name](model, tokenizer, PROMPTS, Sampling(max_new_tokens=2, dtype="bfloat16", seed=0))
    finally:
        if name == "hf":
            hook.remove()
    assert seen and set(seen) == {torch.bfloat16}


def test_a_fallback_passes_the_whole_sampling_object_on(tiny, monkeypatch):
    """The fast engine given a model it cannot run hands hf.generate the very object it got."""
    model, tokenizer = tiny
    model = copy.deepcopy(model)
    model.config.hidden_act = "gelu"
    received = []
    monkeypatch.setattr(hf, "generate", lambda m, t, p, s: received.append(s) or "rollout")
    assert fast.generate(model, tokenizer, PROMPTS, EVERY_FIELD) == "rollout"
    assert received == [EVERY_FIELD]
    assert engine("fast", model) is ENGINES["hf"]  # through the dispatcher too: the same object reaches hf


def test_auto_picks_fast_on_the_cpu_and_hf_for_what_fast_cannot_run(tiny):
    model, _ = tiny
    assert sampling.pick_engine("auto", model, fast.unsupported) == "fast"
    other = copy.deepcopy(model)
    other.config.hidden_act = "gelu"
    assert sampling.pick_engine("auto", other, fast.unsupported) == "hf"
    assert sampling.pick_engine("hf", model, fast.unsupported) == "hf"  # a named engine that can run is kept


@pytest.mark.parametrize("vllm_installed, expected", [(True, "vllm"), (False, "hf")])
def test_auto_on_cuda_picks_vllm_when_installed_else_hf(tiny, monkeypatch, vllm_installed, expected):
    model, _ = tiny
    monkeypatch.setattr(sampling, "model_device", lambda m: torch.device("cuda", 0))
    monkeypatch.setattr(sampling.importlib.util, "find_spec", lambda name: object() if vllm_installed else None)
    assert sampling.pick_engine("auto", model, lambda m: "the model is on cuda") == expected


def test_a_notice_is_said_once(capsys, monkeypatch):
    monkeypatch.setattr(sampling, "_said", set())
    for _ in range(3):
        sampling.say_once("engine x cannot run here")
    assert capsys.readouterr().out == "[r1] engine x cannot run here\n"
