"""`r1 export RUN_DIR DEST`: a run's checkpoint as a clean model folder for the Hub or vLLM.

A checkpoint folder holds what resume needs besides the model: trainer_state.pt (optimizer,
scheduler, sampler, every RNG), checksums, the step marker, r1's config.yaml, a reset reference
policy and, for LoRA, the adapter. `export` writes only what a model folder is — the weights
(safetensors), config.json/generation_config.json, the tokenizer's files — and a model card
rebuilt with every result found by then (model_card.py), so `huggingface-cli upload DEST` or
`vllm serve DEST` take it as it is.

Which checkpoint: RUN_DIR/checkpoints/final when it is complete, else the latest complete one
(with a note); RUN_DIR may also be a checkpoint folder itself. A checkpoint whose files fail their
checksums is refused. A LoRA run's final/ already holds the merged model next to its adapter; a step
checkpoint of a LoRA run holds the adapter only, so it is merged now onto `model.name` (the base
must be loadable here). DEST must be absent or empty (`force` replaces it, but never a folder that
holds the checkpoint or sits inside it); the files go to DEST.tmp first and are renamed into place,
so a kill mid-export leaves no half-written DEST.

Deliberately left out: uploading (use `huggingface-cli upload`), converting dtypes or formats
(GGUF, sharding) and exporting a reward model's value head to anything but transformers.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from r1.train import checkpoint as ckpt
from r1.train import durable, lora, model_card
from r1.train.errors import RunError

MODEL_FILES = ("config.json", "generation_config.json", "*.safetensors", "*.safetensors.index.json")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "tokenizer.model",
    "spiece.model",
    "*.tiktoken",
)
TOKENIZER_DIRS = ("additional_chat_templates",)  # transformers writes extra chat templates here
NOT_MODEL = ("reference.safetensors",)  # GRPO's reset reference policy: training state, not the model


class ExportError(RunError):
    """The export cannot be done as asked; the message says why and what to do."""


@dataclass
class Exported:
    """What `export` wrote."""

    source: Path  # the checkpoint exported
    dest: Path
    step: int
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def export(run_dir: Path, dest: Path, *, force: bool = False, results: list[Path] = ()) -> Exported:
    """Write the run's checkpoint to `dest` as a clean model folder (module doc). `results`: more
    `r1 eval` results.json files to put in the model card (any found next to the run are added anyway)."""
    source, notes = pick_checkpoint(Path(run_dir))
    dest = Path(dest)
    _check_dest(dest, source, force)
    problem = durable.damaged(source)
    if problem is not None:
        raise ExportError(f"{source} is damaged ({problem}); export an earlier checkpoint by its folder")
    extra = {f"r1 eval: {r.get('benchmark')} ({path})": model_card.eval_metrics(r) for path, r in _read(results)}
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        config_yaml = _config_text(source)
        if _has_weights(source):
            _copy(source, tmp, MODEL_FILES, exclude=NOT_MODEL)
        else:  # a LoRA step checkpoint: the adapter alone
            _merge_adapter(source, config_yaml, tmp)
            notes.append(f"merged the LoRA adapter of {source} onto the base model")
        _copy(source, tmp, TOKENIZER_FILES)
        for name in TOKENIZER_DIRS:
            if (source / name).is_dir():
                shutil.copytree(source / name, tmp / name)
        step, finished = ckpt.checkpoint_step(source), ckpt.is_finished(source)
        card = model_card.card_for_checkpoint(source, config_yaml, step=step, finished=finished, results=extra)
        (tmp / model_card.CARD).write_text(card, encoding="utf-8")
        durable.fsync_tree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if dest.exists():
        shutil.rmtree(dest)  # empty, or `force` (checked above)
    tmp.rename(dest)
    return Exported(source, dest, step, sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()), notes)


def pick_checkpoint(run_dir: Path) -> tuple[Path, list[str]]:
    """(checkpoint, notes): `run_dir` itself when it is a checkpoint, else its final one, else its latest."""
    if not run_dir.is_dir():
        raise ExportError(f"{run_dir} does not exist: pass the run directory of r1 grpo/sft/rm/distill")
    if (run_dir / ckpt.STEP_FILE).is_file():
        return run_dir, []
    final = run_dir / "checkpoints" / "final"
    if (final / ckpt.STEP_FILE).is_file():
        return final, []
    latest = ckpt.latest_checkpoint(run_dir)
    if latest is None:
        hint = "pass a run directory of r1 grpo/sft/rm/distill, or a checkpoint folder"
        if (run_dir / "manifest.json").is_file():
            hint = "it is a pipeline: export one of its stages, r1 export RUN/STAGE DEST"
        raise ExportError(f"{run_dir} holds no complete checkpoint (nothing in {run_dir / 'checkpoints'}); {hint}")
    return latest, [f"{run_dir} has no final checkpoint: exporting the latest one, {latest.name}"]


def _check_dest(dest: Path, source: Path, force: bool) -> None:
    if not dest.exists():
        return
    if not dest.is_dir():
        raise ExportError(f"{dest} exists and is not a folder")
    here, there = dest.resolve(), source.resolve()
    if here == there or here in there.parents or there in here.parents:
        raise ExportError(f"{dest} holds the checkpoint {source} or lies inside it: choose another destination")
    if any(dest.iterdir()) and not force:
        raise ExportError(f"{dest} exists and is not empty: choose another destination, or pass --force to replace it")


def _has_weights(source: Path) -> bool:
    return any(p.name not in NOT_MODEL for p in source.glob("*.safetensors"))


def _copy(source: Path, dest: Path, patterns: tuple[str, ...], exclude: tuple[str, ...] = ()) -> None:
    for pattern in patterns:
        for path in sorted(source.glob(pattern)):
            if path.is_file() and path.name not in exclude:
                shutil.copy2(path, dest / path.name)


def _merge_adapter(source: Path, config_yaml: str | None, dest: Path) -> None:
    """Base model (`model.name` of the run) + the checkpoint's adapter, merged, saved as a plain model."""
    from r1.models import load_model

    if not (source / lora.ADAPTER_DIR).is_dir():
        raise ExportError(f"{source} holds neither model weights nor a LoRA adapter: it cannot be exported")
    model = (yaml.safe_load(config_yaml or "") or {}).get("model") or {}
    if not model.get("name"):
        raise ExportError(f"{source} holds a LoRA adapter but no config.yaml naming its base model (model.name)")
    base, _ = load_model(str(model["name"]), dtype=str(model.get("dtype", "float32")))
    lora.for_rollout(lora.load(base, source)).save_pretrained(dest)


def _config_text(source: Path) -> str | None:
    """The config the checkpoint was trained with: its own config.yaml, else the run directory's."""
    for path in (source / "config.yaml", source.parent.parent / "config.yaml"):
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return None


def _read(paths) -> list[tuple[Path, dict]]:
    out = []
    for path in paths:
        try:
            result = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ExportError(f"--results {path}: not a readable results.json ({err})") from None
        if not isinstance(result, dict) or "metrics" not in result:
            raise ExportError(f"--results {path}: not an r1 eval results.json (no 'metrics')")
        out.append((Path(path), result))
    return out
