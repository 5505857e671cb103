"""Model cards: the README.md that the Hugging Face Hub shows for an r1 model, in every final checkpoint.

A card is YAML front matter that ``huggingface_hub.ModelCard`` reads unchanged, then markdown:

* metadata — ``library_name: transformers``, ``pipeline_tag``, ``tags`` (``r1``, ``deepseek-r1``,
  the recipe: ``grpo``/``sft``/``rm``/``distill``, ``lora``), and ``base_model`` / ``license`` when
  they are known. ``base_model`` is written only when it is a Hub id, since the Hub refuses a card
  whose base_model names no Hub model: a hub id as configured, the bundled alias (its Hub original),
  a folder of the Hugging Face cache (``models--ORG--NAME``), or the ``base_model`` of an r1 checkpoint's
  own card (a pipeline stage trained from an earlier stage names the Hub model at the root). The
  license comes from the alias, or from the base folder's own card.
* the body — the base model as configured, the recipe (the command, and the pipeline stage or
  distillation part it ran as), the steps, the held-out results when the run has them, and the
  resolved config the checkpoint was trained with, verbatim.

``build_model_card`` is the pure part (text and scalars in, markdown out). ``card_for_checkpoint``
gathers its inputs from the run directory: the recipe (given by the trainer, else read from the
pipeline's manifest, the distillation's record or the run directory's default name), the base model's
facts, and the results found there (``find_results``). At the final checkpoint only the periodic
evaluation (``eval.every_steps``) exists; the pipeline's held-out figures, ``r1 eval`` results and a
reward model's ``rm_eval.json`` are written after it, so ``r1 export`` (export.py) rebuilds the card
with them. Deliberately left out: ``model-index`` metadata (the Hub's strict evaluation schema) and
any network access (a hub id is taken as given, never checked).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

HUB_NAMES = {"smollm2-135m": ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0")}  # alias → (hub id, license)
RECIPES = {
    "grpo": "GRPO with verifiable rewards (DeepSeek-R1's reinforcement learning)",
    "sft": "supervised fine-tuning (loss on the completion tokens)",
    "rm": "a Bradley–Terry reward model trained on preference pairs",
    "distill": "distillation from a teacher model",
}
CARD = "README.md"


# --- the card ------------------------------------------------------------------------------------


def build_model_card(
    config_yaml: str | None,
    *,
    recipe: str | None = None,
    context: str | None = None,
    step: int | None = None,
    finished: bool | None = None,
    hub_base: str | None = None,
    license: str | None = None,
    results: dict[str, dict] | None = None,
) -> str:
    """The model card of a checkpoint (module doc) as markdown with YAML front matter.

    ``config_yaml``: the run's resolved config.yaml text (None: not recorded); ``recipe``: the
    command (grpo, sft, rm, distill); ``context``: where it ran, e.g. "stage `rl` of an `r1 pipeline`
    run"; ``hub_base``: the base model's Hub id for the metadata; ``results``: source → {metric: value}.
    """
    config = yaml.safe_load(config_yaml or "") or {}
    model = config.get("model") or {}
    base, lora = str(model.get("name") or "not recorded"), bool((model.get("lora") or {}).get("enabled"))
    meta: dict = {
        "library_name": "transformers",
        "pipeline_tag": "text-classification" if recipe == "rm" else "text-generation",
    }
    meta["tags"] = ["r1", "deepseek-r1", *([recipe] if recipe else []), *(["lora"] if lora else [])]
    if hub_base:
        meta["base_model"] = hub_base
    if license:
        meta["license"] = license
    lines = ["---", yaml.safe_dump(meta, sort_keys=False).strip(), "---", ""]
    lines += [f"# {Path(base).name or base}, {f'r1 {recipe}' if recipe else 'trained with r1'}", ""]
    lines += _summary(base, hub_base, recipe, context, step, finished, lora, config)
    lines += _results(results or {})
    auto = "AutoModelForSequenceClassification" if recipe == "rm" else "AutoModelForCausalLM"
    lines += ["## Use", "", "```python", f"from transformers import {auto}, AutoTokenizer", ""]
    lines += [f'model = {auto}.from_pretrained("THIS_FOLDER_OR_REPO")']
    lines += ['tokenizer = AutoTokenizer.from_pretrained("THIS_FOLDER_OR_REPO")', "```", ""]
    lines += _template_note(config, recipe)
    lines += ["## Training config", ""]
    if config_yaml:
        lines += ["The resolved r1 config this checkpoint was trained with (`config.yaml` of the run):", ""]
        lines += ["```yaml", config_yaml.rstrip(), "```", ""]
    else:
        lines += ["Not recorded with this checkpoint.", ""]
    return "\n".join(lines)


def _summary(base, hub_base, recipe, context, step, finished, lora, config) -> list[str]:
    shown_base = f"[`{hub_base}`](https://huggingface.co/{hub_base})" if hub_base == base else f"`{base}`"
    if hub_base and hub_base != base:
        shown_base += f" (from [`{hub_base}`](https://huggingface.co/{hub_base}))"
    how = f"`r1 {recipe}`: {RECIPES.get(recipe, recipe)}" if recipe else "not recorded"
    rows = [("base model", shown_base), ("recipe", how + (f", as {context}" if context else ""))]
    weights = (config.get("rewards") or {}).get("weights") if recipe == "grpo" else None
    if weights:
        rows.append(("rewards", ", ".join(f"`{name}` × {w:g}" for name, w in weights.items())))
    if step is not None:
        rows.append(
            ("steps", f"{step}" + ({True: " (all configured steps)", False: " (stopped early)"}.get(finished, "")))
        )
    rows.append(("weights", "LoRA adapter merged into the base weights" if lora else "full fine-tuning"))
    return ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]


def _results(results: dict[str, dict]) -> list[str]:
    if not results:
        return []
    lines = ["## Results", ""]
    for source, metrics in results.items():
        lines += [f"**{source}**", "", "| metric | value |", "|---|---|"]
        lines += [f"| {name} | {_number(value)} |" for name, value in metrics.items()]
        lines.append("")
    return lines


def _number(value) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_number(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _template_note(config: dict, recipe: str | None) -> list[str]:
    template = (config.get("data") or {}).get("template")
    if template not in ("r1-zero", "r1-brief") or recipe == "rm":
        return []
    return [
        f"Prompts were written with r1's `{template}` template (`r1/data/templates.py`): the model is trained "
        "to reason in `<think>…</think>` and answer in `<answer>…</answer>`; prompt it the same way.",
        "",
    ]


# --- the inputs, from the run directory ----------------------------------------------------------


def card_for_checkpoint(
    checkpoint: Path,
    config_yaml: str | None,
    *,
    step: int | None,
    finished: bool | None,
    recipe: str | None = None,
    results: dict[str, dict] | None = None,
) -> str:
    """The card of ``checkpoint`` (``RUN/checkpoints/NAME``, which may not exist yet): the recipe and the
    base model's facts read from the run, the results found there, then ``results`` given by the caller."""
    run_dir = Path(checkpoint).parent.parent
    found_recipe, context = recipe_of(run_dir)
    base = ((yaml.safe_load(config_yaml or "") or {}).get("model") or {}).get("name")
    hub_base, license = base_model_facts(str(base)) if base else (None, None)
    return build_model_card(
        config_yaml,
        recipe=recipe or found_recipe,
        context=context,
        step=step,
        finished=finished,
        hub_base=hub_base,
        license=license,
        results={**find_results(run_dir, checkpoint), **(results or {})},
    )


def recipe_of(run_dir: Path) -> tuple[str | None, str | None]:
    """(command, where it ran) of a run directory, from the records around it; (None, None) if unknown."""
    run_dir = Path(run_dir)
    pipeline = _json(run_dir.parent / "manifest.json")
    stage = (pipeline.get("stages") or {}).get(run_dir.name) if isinstance(pipeline, dict) else None
    if isinstance(stage, dict) and stage.get("kind"):
        return stage["kind"], f"stage `{run_dir.name}` of an `r1 pipeline` run"
    if (run_dir.parent / "distill.json").is_file():
        return "distill", f"the `{run_dir.name}` part of an `r1 distill` run"
    command = run_dir.name.split("-")[0]  # runs/<command>-<time>, the default run directory
    return (command, None) if command in RECIPES else (None, None)


def base_model_facts(name: str) -> tuple[str | None, str | None]:
    """(Hub id, license) of a configured base model, each None when not known (module doc)."""
    if name in HUB_NAMES:
        return HUB_NAMES[name]
    path = Path(name).expanduser()
    if not path.exists():
        looks_like_hub_id = name.count("/") == 1 and not name.startswith((".", "/", "~")) and not name.endswith(".gguf")
        return (name if looks_like_hub_id else None), None
    card = front_matter(path / CARD) if path.is_dir() else {}
    cached = next((p.name for p in [path, *path.parents] if p.name.startswith("models--")), None)
    hub_id = "/".join(cached.split("--")[1:]) if cached else None  # the Hugging Face cache: models--ORG--NAME
    if hub_id is None and "r1" in (card.get("tags") or []):
        hub_id = card.get("base_model")  # an r1 checkpoint: the Hub model at the root of the chain
    license = card.get("license")
    return (hub_id if isinstance(hub_id, str) else None), (license if isinstance(license, str) else None)


def front_matter(path: Path) -> dict:
    """The YAML metadata of a model card file; {} when there is none or it does not parse."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return {}
    if not text.startswith("---"):
        return {}
    try:
        meta = yaml.safe_load(text.split("\n---", 1)[0][3:])
    except yaml.YAMLError:
        return {}
    return meta if isinstance(meta, dict) else {}


# --- results -------------------------------------------------------------------------------------


def find_results(run_dir: Path, checkpoint: Path) -> dict[str, dict]:
    """Held-out figures the run directory and its parent hold for this checkpoint, by source:
    the periodic evaluation (metrics.jsonl), the pipeline's held-out set (with the base model's,
    for comparison), ``r1 eval`` results whose model is this checkpoint, a reward model's rm_eval.json."""
    run_dir, found = Path(run_dir), {}
    periodic = _last_eval_row(run_dir / "metrics.jsonl")
    if periodic:
        step = periodic.pop("step", None)
        found[f"periodic evaluation during training (step {step})"] = periodic
    for name, label in ((run_dir.name, "pipeline held-out set"), ("base", "pipeline held-out set, base model")):
        heldout = _json(run_dir.parent / "heldout" / f"{name}.json")
        if isinstance(heldout, dict) and heldout:
            found[label] = heldout
    for path in _eval_results_files(run_dir):
        result = _json(path)
        if isinstance(result, dict) and _is_this_model(result.get("model"), checkpoint):
            found[f"r1 eval: {result.get('benchmark')} ({path.parent.name})"] = eval_metrics(result)
    rm_eval = _json(run_dir / "rm_eval.json")
    if isinstance(rm_eval, dict) and rm_eval:
        found["held-out preference pairs"] = rm_eval
    return found


def eval_metrics(result: dict) -> dict:
    """The headline numbers of an ``r1 eval`` results.json: means, their 95% intervals, pass@k, rates."""
    out = {}
    for key, value in (result.get("metrics") or {}).items():
        if isinstance(value, dict) and "mean" in value:
            out[key] = value["mean"]
            out[f"{key} 95% interval"] = [value.get("low"), value.get("high")]
        elif key == "pass@k" and isinstance(value, dict):
            out.update({f"pass@{k}": v for k, v in value.items() if k != "1"})
        elif isinstance(value, (int, float)):
            out[key] = value
    return out


def _last_eval_row(path: Path) -> dict:
    """The `eval/…` figures of the last metrics.jsonl row that has them (keys without the prefix, and `step`)."""
    from r1.eval.report import read_jsonl_lenient  # skips a line cut by a kill

    try:
        rows, _ = read_jsonl_lenient(Path(path))
    except OSError:
        return {}
    for row in reversed(rows):
        evals = {k[len("eval/") :]: v for k, v in row.items() if k.startswith("eval/")}
        if evals:
            return {"step": row.get("step"), **evals}
    return {}


def _eval_results_files(run_dir: Path) -> list[Path]:
    """`r1 eval` outputs next to the run: RUN/eval/…, and PARENT/eval/… (the demo, the benchmarks)."""
    found = []
    for root in (run_dir, run_dir.parent):
        found += [root / "eval" / "results.json", *sorted((root / "eval").glob("*/results.json"))]
    return [p for p in found if p.is_file()]


def _is_this_model(model, checkpoint: Path) -> bool:
    """Whether a results.json's `model` names `checkpoint`: the same folder, or a relative path ending like it."""
    if not isinstance(model, str) or not model:
        return False
    checkpoint = Path(checkpoint)
    if Path(model).expanduser().resolve() == checkpoint.resolve():
        return True
    tail = checkpoint.parts[-3:]  # RUN_NAME/checkpoints/NAME: a path written relative to another directory
    return Path(model).parts[-3:] == tail


def _json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
