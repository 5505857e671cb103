"""Shared fixtures: a tiny random-init causal LM with a real tokenizer, built in seconds, offline.

The tokenizer is a byte-level BPE trained here on a few hundred lines of our own task text, with
a ChatML chat template and pad == EOS (the common, trap-laden case). The model is a 2-layer,
32-wide Llama. Both are saved with `save_pretrained`, so tests exercise the same loading path as
real checkpoints.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# `auto` precision means fp32 in tests, on every machine (r1/precision.py)
os.environ.setdefault("R1_PRECISION", "float32")
_USER_CACHE = os.environ.get("R1_CACHE")  # before any test isolates it

CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' "
    "}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _corpus() -> list[str]:
    from r1.data import make_problems
    from r1.data.templates import R1_ZERO_INSTRUCTION

    lines = [R1_ZERO_INSTRUCTION, "User: Assistant: system user assistant"]
    for p in make_problems(300, seed=123):
        lines.append(p["prompt"])
        lines.append(f"<think> {' , '.join(p['steps'])} </think> <answer> {p['answer']} </answer>")
    return lines


def build_tiny_model(path: Path, *, chat_template: str | None = CHAT_TEMPLATE, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        _corpus(),
        trainers.BpeTrainer(
            vocab_size=512, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
    )
    if chat_template:
        tokenizer.chat_template = chat_template
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A folder holding a tiny random-init Llama and its tokenizer (chat template, pad == EOS)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    """(model, tokenizer) of the tiny model, loaded once per test module; torch on 1 thread, as
    run.threads=1 does in the loops (tiny matrices gain nothing from more)."""
    import torch

    from r1.models import load_model

    torch.set_num_threads(1)
    return load_model(str(tiny_model_dir))


SCRIPT: list = []  # values the t_script reward returns, consumed front to back
SCORED: list[str] = []  # completions t_script saw, in order


def _register_t_script() -> None:
    from r1.rewards import register

    @register("t_script", replace=True)
    def t_script(completion: str, example: dict) -> float | None:
        """A test reward that follows a script: a number, None, or "raise", in the order samples are scored."""
        SCORED.append(completion)
        value = SCRIPT.pop(0)
        if value == "raise":
            raise ValueError("scripted failure")
        return value


@pytest.fixture
def script():
    """Set SCRIPT for the t_script reward (fill the yielded list); cleared before and after."""
    _register_t_script()
    SCRIPT.clear()
    SCORED.clear()
    yield SCRIPT
    SCRIPT.clear()


@pytest.fixture(scope="session")
def tiny_base_model_dir(tmp_path_factory) -> Path:
    """The same tiny model without a chat template (a 'base' model)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny_base") / "model", chat_template=None)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Tests never write to the user's ~/.cache/r1 unless they ask for the real bundled model."""
    monkeypatch.setenv("R1_CACHE", str(tmp_path / "r1-cache"))


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The bundled SmolLM2-135M-Instruct as a plain folder, converted once into the user's cache."""
    from r1.models import resolve

    saved = os.environ.get("R1_CACHE")
    if _USER_CACHE is None:
        os.environ.pop("R1_CACHE", None)
    else:
        os.environ["R1_CACHE"] = _USER_CACHE
    try:
        return Path(resolve("smollm2-135m"))
    finally:
        if saved is not None:
            os.environ["R1_CACHE"] = saved


@pytest.fixture(scope="session")
def scalar_rm_dir(tiny_model_dir, tmp_path_factory):
    """A tiny random-init LlamaForSequenceClassification (one logit) with the tiny tokenizer."""
    import torch
    from transformers import AutoConfig, LlamaForSequenceClassification

    from r1.models import load_tokenizer

    config = AutoConfig.from_pretrained(tiny_model_dir)
    config.num_labels, config.architectures = 1, None
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("rm") / "model"
    LlamaForSequenceClassification(config).save_pretrained(path)
    load_tokenizer(str(tiny_model_dir)).save_pretrained(path)
    return path
