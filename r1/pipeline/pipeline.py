"""`r1 pipeline`: the R1 recipe (docs/method.md §5) as one resumable run of declared stages.

The paper's four stages — cold-start SFT → reasoning RL → rejection sampling + SFT from the base
model on curated reasoning and non-reasoning data → all-scenario RL — are `pipeline.stages` in
the config (configs/r1_smol.yaml), run in order. Each stage is an existing command on a config
derived from the pipeline's (r1/pipeline/stages.py); its output feeds the stages that name it.

The run directory holds one folder per stage, `heldout/` (the evaluation of the base model and
of every sft/grpo stage's checkpoint on a held-out set no stage trains on), `manifest.json`
(every stage's status, inputs, outputs, metrics, timings and an error when it failed) and
`report.md` (the table: after every stage, held-out accuracy, format compliance, language
consistency, mean length and wall time).

Resume: running the same command again skips finished stages (each stage's own completion
marker decides, not the manifest) and resumes an interrupted one through its own checkpoints.
A finished stage whose settings or inputs changed since is not silently reused: the run stops and
says to redo it with `--from STAGE`, which moves that stage's and every later stage's folder
aside (`NAME.prev`) and runs them again. `--only STAGE` runs one stage, whose inputs must be
finished. A failing stage leaves earlier stages' outputs intact; the error names the stage.

Deliberately left out: running stages in parallel, and deleting anything (earlier outputs are
moved aside, never removed, except an older `.prev` that a newer one replaces).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

from r1.config import Config, ConfigError, StageConfig, to_dict
from r1.pipeline import manifest as record
from r1.pipeline.stages import (
    MODEL_KINDS,
    RUNNERS,
    STAGE_REF,
    is_finished,
    output_of,
    stage_config,
    validate,
    write_stage_data,
)
from r1.progress import Progress, format_duration
from r1.train import distributed as dist
from r1.train import checkpoint as ckpt
from r1.train.errors import Preempted
from r1.train.run import console, prepare_run_dir, truncate_log_on_resume
from r1.data import load_examples
from r1.eval.harness import evaluate_with_config
from r1.models import load_model

MANIFEST = "manifest.json"
UNCOMPARED = {("run", "threads"), ("run", "resume"), ("run", "output_dir")}  # may change between invocations


class StageFailed(RuntimeError):
    """A stage raised; the message names it. Earlier stages' outputs are intact."""


def run_pipeline(cfg: Config, *, start_from: str | None = None, only: str | None = None, evaluate_fn=None) -> dict:
    """Run the configured stages (module doc); returns the manifest. `evaluate_fn(model_path,
    cfg) -> metrics` replaces the held-out evaluation (tests script it)."""
    validate(cfg.pipeline)
    names = [s.name for s in cfg.pipeline.stages]
    for flag, name in (("--from", start_from), ("--only", only)):
        if name is not None and name not in names:
            raise ConfigError(f"{flag} {name}: no such stage (stages: {', '.join(names)})")
    out = Path(cfg.run.output_dir or f"runs/pipeline-{time.strftime('%Y%m%d-%H%M%S')}")
    cfg.run.output_dir = str(out)
    outputs = {s.name: output_of(s, out / s.name) for s in cfg.pipeline.stages}
    configs = {
        s.name: stage_config(cfg, s, out / s.name, outputs) for s in cfg.pipeline.stages
    }  # every stage checked before any runs
    prepare_run_dir(cfg, "pipeline")
    manifest = open_manifest(out, cfg)
    evaluate_fn = evaluate_fn or heldout_metrics
    first = names.index(only or start_from) if (only or start_from) else 0
    selected = names[first : first + 1] if only else names[first:]
    console.rule(f"[bold]r1 pipeline[/] — {len(names)} stages, run directory {out}")

    ensure_heldout(manifest, out, "base", cfg.model.name, cfg, evaluate_fn)
    # ETAs: in the stages' lines
    stages = Progress("pipeline stage", len(names), unit="stage", eta=False, min_interval_s=0)
    for index, stage in enumerate(cfg.pipeline.stages):
        t0 = time.perf_counter()
        stage_dir, entry = out / stage.name, manifest["stages"][stage.name]
        scfg = configs[stage.name]
        fingerprint = stage_fingerprint(scfg, stage, manifest)
        label = f"{index + 1}/{len(names)} {stage.name} ({stage.kind})"
        if stage.name not in selected:
            if not is_finished(stage, stage_dir) and index < first:
                raise ConfigError(
                    f"stage '{stage.name}' has not finished, so '{names[first]}' has no inputs; run without "
                    "--from/--only first"
                )
            if index < first:
                check_unchanged(stage, entry, fingerprint)
            continue
        if (start_from or only) and stage_dir.exists():
            move_aside(stage_dir, out / "heldout" / f"{stage.name}.json")
            entry.update(status="pending", seconds=0.0, heldout=None)
        if is_finished(stage, stage_dir):
            check_unchanged(stage, entry, fingerprint)
            console.print(f"{label}: finished earlier; skipped")
        else:
            console.rule(f"{label} from {scfg.model.name}")
            run_stage(out, manifest, stage, scfg, outputs, fingerprint)
        if stage.kind in MODEL_KINDS and stage.evaluate:
            ensure_heldout(manifest, out, stage.name, str(outputs[stage.name]), scfg, evaluate_fn)
        stages.update(index + 1, done=f"{stage.name} in {format_duration(time.perf_counter() - t0)}")
    manifest["status"] = "finished"
    manifest["report"] = report_rows(manifest, cfg)
    record.write_atomic(out / "report.md", report_markdown(manifest["report"], out))
    record.save_manifest(out / MANIFEST, manifest)
    print_report(manifest["report"], out)
    return manifest


def run_stage(
    out: Path, manifest: dict, stage: StageConfig, scfg: Config, outputs: dict[str, Path], fingerprint: str
) -> None:
    stage_dir, entry = out / stage.name, manifest["stages"][stage.name]
    stage_dir.mkdir(parents=True, exist_ok=True)
    if stage.kind in MODEL_KINDS and ckpt.latest_checkpoint(stage_dir) is None:
        truncate_log_on_resume(stage_dir, 0)  # the log of a run killed before its first checkpoint starts over
    try:
        scfg = write_stage_data(stage, scfg, stage_dir, outputs)
    except Exception as err:
        entry.update(status="failed", error=f"{type(err).__name__}: {err}")
        manifest["status"] = "failed"
        record.save_manifest(out / MANIFEST, manifest)
        raise StageFailed(f"stage '{stage.name}' failed while preparing its data: {err}") from err
    entry["inputs"] = {"model": scfg.model.name, "data": list(stage.data), "data_file": data_file(stage, scfg)}
    entry["outputs"] = {"result": str(outputs[stage.name])}
    entry["fingerprint"] = fingerprint
    try:
        record.run_recorded(out / MANIFEST, manifest, entry, lambda: RUNNERS[stage.kind](scfg))
    except (KeyboardInterrupt, Preempted):  # stopped on request: the stage resumes from its checkpoint
        raise
    except Exception as err:
        raise StageFailed(
            f"stage '{stage.name}' ({stage.kind}) failed: {type(err).__name__}: {err}. Earlier stages are intact; "
            f"fix the cause and rerun the same command to resume at '{stage.name}'"
        ) from err
    entry["finished_at"] = time.time()
    entry["metrics"] = stage_metrics(stage, stage_dir)
    record.save_manifest(out / MANIFEST, manifest)


def data_file(stage: StageConfig, scfg: Config) -> str | None:
    return {"sft": scfg.sft.data, "grpo": scfg.data.source, "sample": scfg.data.source}.get(stage.kind) or getattr(
        getattr(scfg, "rm", None), "data", None
    )


# ---------------------------------------------------------------------------------------------
# The manifest and change detection


def open_manifest(out: Path, cfg: Config) -> dict:
    """The saved manifest of this run directory, extended to the configured stages, or a new one."""
    path = out / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"stages": {}, "heldout": {}}
    manifest["status"] = "running"
    manifest["model"] = cfg.model.name
    for stage in cfg.pipeline.stages:
        manifest["stages"].setdefault(
            stage.name, {"kind": stage.kind, "status": "pending", "dir": str(out / stage.name), "seconds": 0.0}
        )
    record.save_manifest(path, manifest)
    return manifest


def stage_fingerprint(scfg: Config, stage: StageConfig, manifest: dict) -> str:
    """A hash of everything that decides a stage's result: its resolved settings, its declared
    inputs and when the stages it reads finished (so a redone input makes it stale)."""
    settings = to_dict(scfg)
    for section, key in UNCOMPARED:
        settings[section].pop(key, None)
    refs = [stage.model] + [d[len(STAGE_REF) :] for d in stage.data if d.startswith(STAGE_REF)]
    refs += [v[len(STAGE_REF) :] for v in stage.set.values() if isinstance(v, str) and v.startswith(STAGE_REF)]
    inputs = {ref: manifest["stages"].get(ref, {}).get("finished_at") for ref in refs if ref != "base"}
    blob = json.dumps(
        {"settings": settings, "kind": stage.kind, "data": stage.data, "inputs": inputs}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def check_unchanged(stage: StageConfig, entry: dict, fingerprint: str) -> None:
    recorded = entry.get("fingerprint")
    if recorded is not None and recorded != fingerprint:
        raise ConfigError(
            f"stage '{stage.name}' finished with other settings or inputs than the config now gives it; "
            f"rerun with --from {stage.name} to redo it and every later stage, or use another run.output_dir"
        )


def move_aside(stage_dir: Path, heldout: Path) -> None:
    """A stage to redo: its folder becomes NAME.prev (with its held-out result), replacing an older one."""
    previous = stage_dir.with_name(stage_dir.name + ".prev")
    if previous.exists():
        shutil.rmtree(previous)
    stage_dir.rename(previous)
    if heldout.is_file():
        heldout.rename(previous / "heldout.json")
    console.print(f"moved the earlier {stage_dir.name} aside to {previous}")


def stage_metrics(stage: StageConfig, stage_dir: Path) -> dict:
    """A stage's own headline figures: the last logged training metrics, or sampling counts."""
    if stage.kind == "sample":
        report = json.loads((stage_dir / "report.json").read_text(encoding="utf-8"))
        return {k: report[k] for k in ("prompts", "samples", "kept", "rejected")}
    metrics = {}
    log = stage_dir / "metrics.jsonl"
    if log.is_file():
        lines = [line for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
        last = json.loads(lines[-1]) if lines else {}
        metrics = {k: v for k, v in last.items() if k.split("/")[0] in ("step", "loss", "reward", "eval", "rm")}
    summary = stage_dir / "rm_eval.json"
    if summary.is_file():
        metrics.update(json.loads(summary.read_text(encoding="utf-8")))
    return metrics


# ---------------------------------------------------------------------------------------------
# Held-out evaluation and the report


def heldout_metrics(model_path: str, cfg: Config) -> dict:
    """Accuracy, format, language consistency and length of `model_path` on the held-out set."""
    p = cfg.pipeline
    examples = load_examples(
        p.heldout,
        split=p.heldout_split,
        limit=cfg.eval.limit,
        size=cfg.eval.limit or 2000,
        seed=p.heldout_seed,
        arithmetic=vars(cfg.data.arithmetic),
        quiet=True,
    )
    model, tokenizer = load_model(model_path, dtype=cfg.model.dtype, device=dist.device(cfg.run.device))
    start = time.perf_counter()
    result = evaluate_with_config(model, tokenizer, examples, cfg)
    samples = [s for record_ in result.records for s in record_["samples"]]
    m = result.metrics
    return {
        "accuracy": m["pass@1"]["mean"],
        "accuracy_ci": [m["pass@1"]["low"], m["pass@1"]["high"]],
        "format": m["format"]["mean"],
        "language": sum(s["rewards"].get("language") or 0.0 for s in samples) / len(samples),
        "mean_length": m["mean_length"],
        "seconds": round(time.perf_counter() - start, 1),
        "problems": len(examples),
        "k": cfg.eval.k,
    }


def ensure_heldout(manifest: dict, out: Path, name: str, model_path: str, cfg: Config, evaluate_fn) -> dict:
    """Evaluate once per model; the result is kept in heldout/NAME.json, so a resumed run reuses it."""
    saved = out / "heldout" / f"{name}.json"
    if saved.is_file():
        metrics = json.loads(saved.read_text(encoding="utf-8"))
    else:
        console.print(
            f"held-out evaluation of {name} ({cfg.pipeline.heldout}, {cfg.eval.limit} problems × {cfg.eval.k})"
        )
        metrics = evaluate_fn(model_path, cfg)
        saved.parent.mkdir(parents=True, exist_ok=True)
        record.write_atomic(saved, json.dumps(metrics, indent=2) + "\n")
    if name == "base":
        manifest["heldout"]["base"] = metrics
    else:
        manifest["stages"][name]["heldout"] = metrics
    record.save_manifest(out / MANIFEST, manifest)
    return metrics


def report_rows(manifest: dict, cfg: Config) -> list[dict]:
    rows = []
    if "base" in manifest["heldout"]:
        rows.append({"stage": "base", "kind": "", **manifest["heldout"]["base"], "stage_seconds": 0.0})
    for stage in cfg.pipeline.stages:
        entry = manifest["stages"][stage.name]
        rows.append(
            {
                "stage": stage.name,
                "kind": stage.kind,
                **(entry.get("heldout") or {}),
                "stage_seconds": entry.get("seconds", 0.0),
                "status": entry.get("status"),
                "note": note(stage, entry),
            }
        )
    return rows


def note(stage: StageConfig, entry: dict) -> str:
    m = entry.get("metrics") or {}
    if stage.kind == "sample" and "kept" in m:
        return f"kept {m['kept']} of {m['samples']}"
    if stage.kind == "rm" and "accuracy" in m:
        return f"held-out pair accuracy {m['accuracy']:.3f}"
    return ""


def _fmt(row: dict, key: str) -> str:
    value = row.get(key)
    return "—" if value is None else f"{value:.3f}" if key != "mean_length" else f"{value:.1f}"


def report_markdown(rows: list[dict], out: Path) -> str:
    lines = [
        f"# r1 pipeline: {out}",
        "",
        "| after | kind | held-out accuracy (95% CI) | format | language | mean length | stage time | eval time | "
        "note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ci = f" [{r['accuracy_ci'][0]:.3f}, {r['accuracy_ci'][1]:.3f}]" if r.get("accuracy_ci") else ""
        lines.append(
            f"| {r['stage']} | {r['kind']} | {_fmt(r, 'accuracy')}{ci} | {_fmt(r, 'format')} | {_fmt(r, 'language')} | "
            f"{_fmt(r, 'mean_length')} | {r['stage_seconds']:.0f} s | {r.get('seconds', 0):.0f} s | "
            f"{r.get('note', '')} "
            "|"
        )
    return "\n".join(lines) + "\n"


def print_report(rows: list[dict], out: Path) -> None:
    from rich.table import Table

    table = Table(title=f"r1 pipeline — {out}")
    for column in ("after", "kind", "accuracy", "format", "language", "length", "stage s", "eval s", "note"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["stage"],
            r["kind"],
            _fmt(r, "accuracy"),
            _fmt(r, "format"),
            _fmt(r, "language"),
            _fmt(r, "mean_length"),
            f"{r['stage_seconds']:.0f}",
            f"{r.get('seconds', 0):.0f}",
            r.get("note", ""),
        )
    console.print(table)
    console.print(f"manifest: {out / MANIFEST}; report: {out / 'report.md'}")
