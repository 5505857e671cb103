"""The stages `r1 pipeline` can run, and how a stage's declared inputs become files and settings.

A stage (`pipeline.stages[i]` in the config, `StageConfig`) names its kind, the model it starts
from and its data. Each kind is an existing command run on a config derived from the pipeline's:

| kind | runs | reads `data` as | output |
|---|---|---|---|
| `sft` | `r1 sft` (r1/train/sft.py) | SFT rows, concatenated into `STAGE/data.jsonl` | `STAGE/checkpoints/final` |
| `grpo` | `r1 grpo` (r1/train/grpo.py) | prompt sources, mixed into `STAGE/prompts.jsonl` | `STAGE/checkpoints/final` |
| `sample` | `r1 sample` (r1/pipeline/sample.py) | prompt sources, as for grpo | `STAGE/sft.jsonl` |
| `rm` | `r1 rm` (r1/train/rm.py) | preference pairs (prompt, chosen, rejected) | `STAGE/checkpoints/final` |

Data items, in `data`:
* `stage:NAME` — an earlier stage's output: a `sample` stage's kept completions (SFT rows);
* `coldstart:TASK:N` — N programmatic worked examples (`arithmetic`, `word-problems`);
* `SOURCE` or `SOURCE:N` — anything `load_examples` reads (a bundled name, `arithmetic`, a JSONL
  path, a hub id), first N rows. For SFT, rows must already be SFT rows (prompt/completion or
  messages) or preference pairs, whose chosen response becomes the completion: that is how
  non-reasoning data enters the stage-3 SFT. For prompts, rows keep their `kind` (`reasoning`
  when absent), which routes rewards in all-scenario RL.

A setting value `stage:NAME` (in `set`) becomes that stage's output path — e.g. the reward model
an all-scenario RL stage scores with: `set: {rewards.helpfulness_model: stage:rm}`.

Deliberately left out: stage kinds beyond these four (evaluation runs after every model stage,
see r1/pipeline/pipeline.py) and parallel stages.
"""

from __future__ import annotations

import copy
from pathlib import Path

from r1.config import Config, ConfigError, PipelineConfig, StageConfig, check, from_dict, set_dotted, to_dict
from r1.data import DataError, load_examples
from r1.data.coldstart import GENERATORS, write_jsonl
from r1.data.datasets import BUNDLED_DIR, json_lines
from r1.train import checkpoint as ckpt
from r1.train.sft import train_sft
from r1.train.grpo import train_grpo
from r1.pipeline.sample import run_sample
from r1.train.rm import train_rm

MODEL_KINDS = ("sft", "grpo")  # stages whose output is a policy the next stage can start from
STAGE_REF = "stage:"
# A general (non-reasoning) answer in the R1 format: the reasoning is brief, the answer is the response.
GENERAL_COMPLETION = "<think>\nNo calculation is needed here; I answer directly.\n</think>\n<answer>{response}</answer>"


def output_of(stage: StageConfig, stage_dir: Path) -> Path:
    """Where a stage's result lives (a checkpoint folder, or the sample stage's SFT rows)."""
    return stage_dir / "sft.jsonl" if stage.kind == "sample" else stage_dir / "checkpoints" / "final"


def is_finished(stage: StageConfig, stage_dir: Path) -> bool:
    """A stage is done when its own completion marker exists (not when the manifest says so)."""
    if stage.kind == "sample":
        return (stage_dir / "report.json").is_file()
    return (output_of(stage, stage_dir) / ckpt.STEP_FILE).is_file()


# ---------------------------------------------------------------------------------------------
# Checking a pipeline before any stage runs


def validate(p: PipelineConfig) -> None:
    """Names unique, kinds and references consistent; raises ConfigError naming the stage."""
    if not p.stages:
        raise ConfigError("pipeline.stages is empty: declare the stages to run (see configs/r1_smol.yaml)")
    seen: dict[str, StageConfig] = {}
    for i, stage in enumerate(p.stages):
        where = f"pipeline.stages[{i}] ({stage.name or 'unnamed'})"
        if not stage.name or not stage.name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(
                f"{where}: name must be non-empty letters, digits, '-' or '_' (it names the stage's folder)"
            )
        if stage.name in seen or stage.name == "base":
            raise ConfigError(
                f"{where}: the name '{stage.name}' is {'reserved' if stage.name == 'base' else 'used twice'}"
            )
        if stage.model != "base":
            source = seen.get(stage.model)
            if source is None or source.kind not in MODEL_KINDS:
                starts = ", ".join(["base"] + [s.name for s in seen.values() if s.kind in MODEL_KINDS])
                raise ConfigError(
                    f"{where}: model '{stage.model}' is not an earlier sft/grpo stage; choose one of: {starts}"
                )
        for ref in [d for d in stage.data if d.startswith(STAGE_REF)] + [
            v for v in stage.set.values() if isinstance(v, str) and v.startswith(STAGE_REF)
        ]:
            if ref[len(STAGE_REF) :] not in seen:
                raise ConfigError(f"{where}: '{ref}' does not name an earlier stage ({', '.join(seen) or 'none yet'})")
        if stage.kind in ("sft", "rm") and not stage.data:
            raise ConfigError(f"{where}: a {stage.kind} stage needs data (SFT rows or preference pairs)")
        seen[stage.name] = stage


def stage_config(cfg: Config, stage: StageConfig, stage_dir: Path, outputs: dict[str, Path]) -> Config:
    """The pipeline's config with the stage's `set` applied, its own run directory and the paths
    of the earlier stages it refers to; checked like any config (errors name the stage)."""
    data = to_dict(cfg)
    data["pipeline"] = to_dict(PipelineConfig())  # a stage's saved config.yaml is a plain command config
    for key, value in stage.set.items():
        if isinstance(value, str) and value.startswith(STAGE_REF):
            value = str(outputs.get(value[len(STAGE_REF) :], value))
        try:
            set_dotted(data, str(key), copy.deepcopy(value), Config)
        except ConfigError as err:
            raise ConfigError(f"pipeline stage '{stage.name}', set: {err}") from None
    data["run"].update(output_dir=str(stage_dir), resume="auto")  # an interrupted stage resumes its own checkpoints
    if stage.model != "base":
        data["model"]["name"] = str(outputs.get(stage.model, stage.model))
    try:
        built = from_dict(Config, data)
        check(built)
    except ConfigError as err:
        raise ConfigError(f"pipeline stage '{stage.name}': {err}") from None
    return built


# ---------------------------------------------------------------------------------------------
# Data items → rows


def split_limit(item: str) -> tuple[str, int | None]:
    """`'gsm8k-train:200'` → `('gsm8k-train', 200)`; no numeric suffix → no limit."""
    head, _, tail = item.rpartition(":")
    return (head, int(tail)) if head and tail.isdigit() else (item, None)


def sft_rows(item: str, cfg: Config, outputs: dict[str, Path]) -> list[dict]:
    """One `data` item of an SFT stage as SFT rows (module doc)."""
    if item.startswith(STAGE_REF):
        return read_rows(outputs[item[len(STAGE_REF) :]])
    if item.startswith("coldstart:"):
        task, n = split_limit(item[len("coldstart:") :])
        if task not in GENERATORS:
            raise DataError(f"'{item}': no worked-example generator for '{task}' (choose from {', '.join(GENERATORS)})")
        return GENERATORS[task](n or 256, seed=cfg.data.seed)
    source, limit = split_limit(item)
    rows = read_rows(find_file(source))[:limit]
    converted = [as_sft_row(row) for row in rows]
    if not any(converted):
        raise DataError(
            f"'{item}': its rows are neither SFT rows (prompt/completion, messages) nor preference pairs "
            "(prompt/chosen)"
        )
    return [row for row in converted if row]


def as_sft_row(row: dict) -> dict | None:
    if "completion" in row or "messages" in row:
        return row
    if isinstance(row.get("prompt"), str) and isinstance(row.get("chosen"), str):
        return {
            "prompt": row["prompt"],
            "completion": GENERAL_COMPLETION.format(response=row["chosen"].strip()),
            "kind": "general",
        }
    return None


def prompt_rows(item: str, cfg: Config) -> list[dict]:
    """One `data` item of a grpo/sample stage as prompt rows, each with its `kind`."""
    source, limit = split_limit(item)
    d = cfg.data
    examples = load_examples(
        source,
        split=d.split,
        question_field=d.question_field,
        answer_field=d.answer_field,
        limit=limit,
        size=max(d.size, limit or 0),
        seed=d.seed,
        arithmetic=vars(d.arithmetic),
        quiet=True,
    )
    keep = ("id", "prompt", "answer", "kind", "solution", "test", "entry_point")
    return [{k: e[k] for k in keep if k in e} | {"kind": e.get("kind", "reasoning")} for e in examples]


def write_stage_data(stage: StageConfig, cfg: Config, stage_dir: Path, outputs: dict[str, Path]) -> Config:
    """Materialize the stage's `data` into one file in its folder and point the config at it."""
    if not stage.data:
        return cfg
    cfg = copy.deepcopy(cfg)
    if stage.kind == "sft":
        rows = [row for item in stage.data for row in sft_rows(item, cfg, outputs)]
        cfg.sft.data = str(write_jsonl(rows, stage_dir / "data.jsonl"))
    elif stage.kind == "rm":
        cfg.rm.data = stage.data[0]  # `r1 rm` resolves bundled names and paths itself
    else:
        rows = [row for item in stage.data for row in prompt_rows(item, cfg)]
        for i, row in enumerate(rows):
            row["id"] = f"{row.get('id', 'row')}#{i}"  # unique across mixed sources
        cfg.data.source, cfg.data.question_field, cfg.data.answer_field, cfg.data.limit = (
            str(write_jsonl(rows, stage_dir / "prompts.jsonl")),
            "prompt",
            "answer",
            None,
        )
    return cfg


def find_file(source: str) -> Path:
    """A JSONL path, or a file bundled with r1 by its name (`preference_pairs`)."""
    for path in (
        Path(source).expanduser(),
        BUNDLED_DIR / source,
        BUNDLED_DIR / f"{source}.jsonl",
        BUNDLED_DIR / f"{source.replace('-', '_')}.jsonl",
    ):
        if path.is_file():
            return path
    bundled = ", ".join(sorted(p.stem for p in BUNDLED_DIR.glob("*.jsonl")))
    raise DataError(f"data file not found: {source} (a JSONL path, or one of r1's bundled files: {bundled})")


def read_rows(path: Path) -> list[dict]:
    return [row for _, row in json_lines(path)]


# ---------------------------------------------------------------------------------------------
# Running one stage


def run_sft(cfg: Config) -> None:

    train_sft(cfg)


def run_grpo(cfg: Config) -> None:

    train_grpo(cfg)


def run_sample_stage(cfg: Config) -> None:

    report = run_sample(cfg, progress=True)
    if report["kept"] == 0:
        raise DataError(
            f"rejection sampling kept 0 of {report['samples']} samples ({report['rejected']}); see "
            f"{cfg.run.output_dir}/report.md"
        )


def run_rm(cfg: Config) -> None:

    train_rm(cfg)


RUNNERS = {"sft": run_sft, "grpo": run_grpo, "sample": run_sample_stage, "rm": run_rm}
