"""`r1 distill`: SFT of a student on a teacher's correct, readable reasoning (docs/method.md §6), one command.

The paper distils R1 into small dense models by plain SFT on its curated samples — no RL — and
finds that this beats running the same RL on the small model. `r1 distill --teacher A --student B
--prompts P` runs that recipe in one run directory, in two parts that are the existing commands:

1. `sample/` — rejection sampling from the teacher on the prompts P (`r1 sample`,
   r1/pipeline/sample.py): `sample.k` completions per prompt, kept when correct and readable →
   `sample/sft.jsonl`, `sample/report.json` and `report.md`;
2. `sft/` — SFT of the student on `sample/sft.jsonl` (`r1 sft`, r1/train/sft.py) with the same
   `data.template`, so the student is trained on the prompts exactly as the teacher saw them →
   `sft/checkpoints/final`.

One config tree serves both parts: `rollout.*` and `sample.*` configure the first, `sft.*`,
`optim.*` and `train.*` the second. `model.name` is set per part (the teacher, then the student) and `sft.data`
is the first part's output. The run directory's `config.yaml` holds the shared settings, with
the student as `model.name`; each part writes its own exact config.yaml too.

Resume: running the same command again in the same directory skips a finished part (sample:
`report.json` exists; sft: `checkpoints/final` is complete) and resumes an interrupted one with
that part's own machinery (sample's finished chunks in `progress.jsonl`; SFT's latest step
checkpoint, `run.resume`). A directory holding a distillation with other models, prompts or
settings is refused — except the SFT part's own settings (`sft.*`, `optim.*`, `train.*`) between
a finished sampling and a finished SFT, so that an SFT setting can be fixed (say, `sft.max_length`)
without sampling again. If sampling kept nothing, SFT does not start and the error says why.

`distill.json`, the manifest: the inputs, and per part its status, inputs, outputs, counts (kept
and rejected by reason) and wall time, summed over the invocations that worked on it. It is a
record, not the source of truth: what is finished is decided by the parts' own markers, so a kill
that leaves a stale "running" status is harmless.

`distill.method` chooses the parts: `sft` (the paper's, above), `on-policy` (one part, `on-policy/`:
the student samples and the teacher grades every sampled token, r1/train/on_policy.py) and `mixed`
(both: sample, SFT, then on-policy distillation starting from the SFT student).

Deliberately left out: evaluating teacher and student (use `r1 eval`;
`benchmarks/distill_miniature.py` compares the methods on one budget) and several teachers.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

from r1.config import Config, ConfigError
from r1.data import DataError
from r1.models import ModelLoadError, resolve
from r1.pipeline import manifest as record
from r1.pipeline.sample import UNCOMPARED, changed_settings, load_prompts, run_sample
from r1.train import checkpoint as ckpt
from r1.train.run import console, prepare_run_dir, truncate_log_on_resume
from r1.train.on_policy import train_on_policy
from r1.train.sft import train_sft

MANIFEST = "distill.json"
FLAGS = {"model.name": "--student", "data.source": "--prompts"}  # config keys the command's flags set
SFT_ONLY = ("sft", "optim", "train")  # config sections only the SFT part reads


def run_distill(
    cfg: Config, *, teacher: str, student: str, generate_fn=None, judge=None, progress: bool = True
) -> dict:
    """Sample from `teacher` on `data.source`, keep the good completions, SFT `student` on them
    (module doc); returns the manifest. `generate_fn` and `judge` go to `run_sample` (tests script them).
    With `distill.method=on-policy`, `run_on_policy` instead."""
    if cfg.distill.method == "on-policy":
        return run_on_policy(cfg, teacher=teacher, student=student)
    cfg = copy.deepcopy(cfg)
    cfg.model.name = student
    out = Path(cfg.run.output_dir or f"runs/distill-{time.strftime('%Y%m%d-%H%M%S')}")
    cfg.run.output_dir = str(out)
    sample_dir, sft_dir = out / "sample", out / "sft"
    data, final = sample_dir / "sft.jsonl", sft_dir / "checkpoints" / "final"
    sampled, trained = (sample_dir / "report.json").is_file(), (final / ckpt.STEP_FILE).is_file()
    manifest = open_manifest(out, cfg, teacher, may_change=SFT_ONLY if sampled and not trained else ())
    # Check what the unfinished parts need before any of them spends time.
    if not sampled:
        check_model("teacher", teacher)
        if cfg.sample.judge:
            check_model("judge", cfg.sample.judge)
        load_prompts(cfg.data)  # a missing or empty prompt set fails here, not after the teacher loads
    if not trained:
        check_model("student", student)
    prepare_run_dir(cfg, "distill")
    save_manifest(out, manifest)

    console.rule(f"[bold]r1 distill[/] {teacher} → {student} — run directory {out}")
    if sampled:
        console.print(f"1/2 sample: finished earlier ({sample_dir / 'report.json'}); skipped")
        report = json.loads((sample_dir / "report.json").read_text(encoding="utf-8"))
    else:
        console.print(f"1/2 sample: rejection sampling from the teacher on {cfg.data.source}")
        sample_cfg = part_config(cfg, sample_dir, teacher)
        report = run_part(
            out,
            manifest,
            "sample",
            lambda: run_sample(sample_cfg, generate_fn=generate_fn, judge=judge, progress=progress),
        )
    record_sample(out, manifest, report, sample_dir)

    if trained:
        console.print(f"2/2 sft: finished earlier ({final}); skipped")
    else:
        console.print(f"2/2 sft: the student on {report['kept']} kept samples")
        if ckpt.latest_checkpoint(sft_dir) is None:
            truncate_log_on_resume(sft_dir, 0)  # metrics of a run killed before its first checkpoint: it starts over
        sft_cfg = part_config(cfg, sft_dir, student, data=data)
        run_part(out, manifest, "sft", lambda: train_sft(sft_cfg))
    manifest["parts"]["sft"].update(status="finished", data_rows=report["kept"], steps=ckpt.checkpoint_step(final))
    if cfg.distill.method == "mixed":
        console.print(f"3/3 on-policy: the SFT student {final} samples, the teacher grades every token")
        final = on_policy_part(cfg, out, manifest, teacher, str(final))
    manifest["status"] = "finished"
    save_manifest(out, manifest)
    console.print(
        f"distilled: {teacher} → {student} on {report['kept']} samples; student checkpoint {final}; "
        f"manifest {out / MANIFEST}"
    )
    return manifest


def record_sample(out: Path, manifest: dict, report: dict, sample_dir: Path) -> None:
    """Put the sampling report's counts into the manifest; with nothing kept, fail the run with the
    reasons and what may help (there is no data to train the student on)."""
    counts = ("prompts", "samples", "kept", "prompts_with_kept", "rejected", "judged", "teacher_tokens")
    manifest["parts"]["sample"].update(status="finished", **{key: report[key] for key in counts})
    if report["kept"] > 0:
        return
    reasons = ", ".join(f"{count} {reason}" for reason, count in report["rejected"].items()) or "no samples"
    error = (
        f"rejection sampling kept 0 of {report['samples']} samples: {reasons} "
        f"(first examples in {sample_dir / 'report.md'}); "
        "no data to train the student on. More samples (sample.k), a longer budget (rollout.max_new_tokens), the "
        "teacher's own template (data.template) or looser filters (sample.*) may help, in another run.output_dir"
    )
    manifest["parts"]["sft"].update(status="not started", error=error)
    manifest["status"] = "failed"
    save_manifest(out, manifest)
    raise DataError(error)


def part_config(cfg: Config, out: Path, model: str, data: Path | None = None) -> Config:
    """The shared config with one part's model, run directory and (for SFT) data; SFT always
    resumes its latest checkpoint, if it has one."""
    part = copy.deepcopy(cfg)
    part.model.name, part.run.output_dir = model, str(out)
    if data is not None:
        part.sft.data, part.run.resume = str(data), "auto"
    return part


def check_model(role: str, name: str) -> None:
    """Fail now, naming the role, if `name` is a missing path (a hub id is only checked when it loads)."""
    try:
        resolve(name)
    except ModelLoadError as err:
        raise ModelLoadError(f"the {role} cannot be loaded: {err}") from None


# ---------------------------------------------------------------------------------------------
# The manifest


def open_manifest(out: Path, cfg: Config, teacher: str, may_change: tuple[str, ...] = ()) -> dict:
    """The saved manifest of this run directory, or a new one. A saved one must be of the same
    distillation: same teacher and the same settings (run.threads and run.resume aside), bar the
    config sections `may_change`."""
    saved = out / MANIFEST
    if not saved.is_file():
        return new_manifest(out, cfg, teacher)
    manifest = json.loads(saved.read_text(encoding="utf-8"))
    changed = ["--teacher"] if manifest["inputs"]["teacher"] != teacher else []
    if (out / "config.yaml").is_file():
        changed += [
            FLAGS.get(key, key)
            for key in changed_settings(out / "config.yaml", cfg, ignore=(*UNCOMPARED, "output_dir"))
            if key.split(".")[0] not in may_change
        ]
    if changed:
        raise ConfigError(
            f"{out} holds a distillation with other settings ({', '.join(changed)}); rerun it with the same "
            "command to resume it, or choose another run.output_dir"
        )
    manifest["status"] = "running"
    return manifest


def new_manifest(out: Path, cfg: Config, teacher: str) -> dict:
    """The manifest of a distillation not started yet: its inputs and its parts, by `distill.method`."""
    sample, sft, online = out / "sample", out / "sft", out / "on-policy"
    parts = {
        "sample": {
            "status": "pending",
            "dir": str(sample),
            "inputs": {"model": teacher, "prompts": cfg.data.source},
            "outputs": {"data": str(sample / "sft.jsonl"), "report": str(sample / "report.json")},
            "seconds": 0.0,
        },
        "sft": {
            "status": "pending",
            "dir": str(sft),
            "inputs": {"model": cfg.model.name, "data": str(sample / "sft.jsonl"), "template": cfg.data.template},
            "outputs": {"checkpoint": str(sft / "checkpoints" / "final")},
            "seconds": 0.0,
        },
        "on-policy": {
            "status": "pending",
            "dir": str(online),
            "inputs": {"student": cfg.model.name, "teacher": teacher, "prompts": cfg.data.source},
            "outputs": {"checkpoint": str(online / "checkpoints" / "final")},
            "seconds": 0.0,
        },
    }
    if cfg.distill.method == "mixed":  # the on-policy part starts from the SFT part's student
        parts["on-policy"]["inputs"]["student"] = parts["sft"]["outputs"]["checkpoint"]
    chosen = {"sft": ("sample", "sft"), "on-policy": ("on-policy",), "mixed": ("sample", "sft", "on-policy")}
    chosen = chosen[cfg.distill.method]
    inputs = {"teacher": teacher, "student": cfg.model.name, "prompts": cfg.data.source, "template": cfg.data.template}
    return {"status": "running", "method": cfg.distill.method, "inputs": inputs, "parts": {k: parts[k] for k in chosen}}


def run_on_policy(cfg: Config, *, teacher: str, student: str) -> dict:
    """`r1 distill --method on-policy`: one part, `on-policy/` (r1/train/on_policy.py); returns the manifest."""
    cfg = copy.deepcopy(cfg)
    cfg.model.name = student
    out = Path(cfg.run.output_dir or f"runs/distill-{time.strftime('%Y%m%d-%H%M%S')}")
    cfg.run.output_dir = str(out)
    trained = (out / "on-policy" / "checkpoints" / "final" / ckpt.STEP_FILE).is_file()
    manifest = open_manifest(out, cfg, teacher)
    if not trained:  # what the run needs, checked before it spends time
        check_model("teacher", teacher)
        check_model("student", student)
        load_prompts(cfg.data)
    prepare_run_dir(cfg, "distill")
    save_manifest(out, manifest)
    console.rule(f"[bold]r1 distill --method on-policy[/] {teacher} → {student} — run directory {out}")
    final = on_policy_part(cfg, out, manifest, teacher, student)
    manifest["status"] = "finished"
    save_manifest(out, manifest)
    console.print(f"distilled on-policy: {teacher} → {student}; student checkpoint {final}; manifest {out / MANIFEST}")
    return manifest


def on_policy_part(cfg: Config, out: Path, manifest: dict, teacher: str, student: str) -> Path:
    """The `on-policy/` part (r1/train/on_policy.py): skipped when finished, else run or resumed; its counts
    go into the manifest. Returns the student checkpoint it ends with."""
    part_dir = out / "on-policy"
    final = part_dir / "checkpoints" / "final"
    if (final / ckpt.STEP_FILE).is_file():
        console.print(f"on-policy: finished earlier ({final}); skipped")
    else:
        part = part_config(cfg, part_dir, student)
        part.run.resume = "auto"
        run_part(out, manifest, "on-policy", lambda: train_on_policy(part, teacher))
    log = part_dir / "metrics.jsonl"  # absent when run.report_to leaves jsonl out
    rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.is_file() else []
    last = rows[-1] if rows else {}
    manifest["parts"]["on-policy"].update(
        status="finished",
        steps=ckpt.checkpoint_step(final),
        teacher_tokens=last.get("distill/teacher_tokens"),
        divergence=last.get("distill/divergence"),
    )
    save_manifest(out, manifest)
    return final


def save_manifest(out: Path, manifest: dict) -> None:
    record.save_manifest(out / MANIFEST, manifest)


def run_part(out: Path, manifest: dict, name: str, work):
    """Run one part, recording its status and wall time in the manifest whether it finishes or not."""
    return record.run_recorded(out / MANIFEST, manifest, manifest["parts"][name], work)
