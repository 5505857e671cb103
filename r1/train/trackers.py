"""Experiment trackers: where a run's metrics, samples, config and report plots go (`run.report_to`).

One small class per tracker, all with the interface of `Tracker`, registered by name in `TRACKERS`:

| name        | metrics (every step)        | samples (`train.sample_every`) | config       | report plots  |
|-------------|-----------------------------|--------------------------------|--------------|---------------|
| jsonl       | metrics.jsonl, one line     | —                              | —            | —             |
| tensorboard | scalars in tensorboard/     | —                              | —            | —             |
| wandb       | `run.log(..., step=)`       | a `wandb.Table`                | run config   | `wandb.Image` |
| mlflow      | metrics with their step     | samples/step-N.json artifact   | params (flat)| report/ files |

`samples.jsonl` is not a tracker: `RunLogger` (run.py) always writes it, whatever `report_to` says,
because the sample viewer (`r1 report --html`), `r1 report`, `r1 coldstart` and resume's log
truncation read it. The config reaches wandb and MLflow only; `config.yaml` in the run directory is
always written. The report plots are made once, at the run's natural end (`RunLogger.finish`,
after the final checkpoint), from metrics.jsonl and samples.jsonl, and only when a tracker takes
images; `r1 report` itself sends nothing to trackers.

wandb and mlflow are optional installs, imported only when named: `require` checks that they are
installed before any model loads, and a tracker that cannot start (wandb not logged in, say) is a
`RunError` at start. What goes wrong later is `RunLogger`'s business: one warning, the tracker is
dropped, training goes on.

Deliberately left out: continuing the same wandb/MLflow run after a resume (each process opens a
new run with the same name, starting at the resumed step), checkpoints as artifacts, system
metrics, and tracker options other than the trackers' own environment variables (WANDB_MODE,
WANDB_DIR, MLFLOW_TRACKING_URI, ...).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1.config_tree import flatten
from r1.train.errors import RunError


@dataclass(frozen=True)
class TrackerSetup:
    """What a tracker is opened with."""

    run_dir: Path
    name: str  # the run's name in wandb/MLflow: its directory
    project: str = "r1"  # the wandb project, the MLflow experiment
    config: dict = field(default_factory=dict)  # the resolved config tree (`to_dict(cfg)`)


class Tracker:
    """The shared interface; a tracker overrides what it receives, the rest does nothing."""

    module: str | None = None  # the optional package it imports (None: one of r1's own dependencies)
    package: str | None = None  # what to pip install for it
    takes_images = False  # whether RunLogger makes the report plots at the end of a run for it

    def log_metrics(self, step: int, metrics: dict[str, Any]) -> None:
        """`metrics`: JSON-ready values (numbers, None for non-finite ones, sometimes strings or lists)."""

    def log_samples(self, step: int, rows: list[dict]) -> None:
        """`rows`: the samples.jsonl rows of this step (r1/train/batch.py `sample_rows`), without the step."""

    def log_images(self, step: int, paths: list[Path]) -> None:
        """PNG files (the report plots, r1/eval/report.py), logged once at the end."""

    def close(self, completed: bool) -> None:
        """`completed`: the run reached its final checkpoint (not stopped by an error or a signal)."""


def numbers(metrics: dict[str, Any]) -> dict[str, int | float]:
    """The numeric entries (bools count, as TensorBoard has always received them); None and text dropped."""
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}


class Jsonl(Tracker):
    """metrics.jsonl: `{"step": N, ...metrics}` per line, the file resume, `r1 report` and the pipeline read."""

    def __init__(self, setup: TrackerSetup):
        self.path = setup.run_dir / "metrics.jsonl"

    def log_metrics(self, step: int, metrics: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": step, **metrics}) + "\n")


class TensorBoard(Tracker):
    """Scalars under RUN_DIR/tensorboard (`tensorboard --logdir runs`), flushed every step."""

    module, package = "tensorboard", "tensorboard"

    def __init__(self, setup: TrackerSetup):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(setup.run_dir / "tensorboard"))

    def log_metrics(self, step: int, metrics: dict[str, Any]) -> None:
        for key, value in numbers(metrics).items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self, completed: bool) -> None:
        self.writer.close()


class Wandb(Tracker):
    """Weights & Biases. WANDB_MODE=offline logs to disk only (`wandb sync` uploads later); the files go to
    WANDB_DIR, else RUN_DIR/wandb."""

    module, package = "wandb", "wandb"
    takes_images = True

    def __init__(self, setup: TrackerSetup):
        import wandb

        self.wandb = wandb
        try:
            self.run = wandb.init(
                project=setup.project,
                name=setup.name,
                config=setup.config,
                dir=os.environ.get("WANDB_DIR") or str(setup.run_dir),
                reinit="create_new",  # this object owns its run; a run the caller holds is left alone
            )
        except Exception as err:  # e.g. no API key: say how to go on before any step runs
            raise RunError(
                f"wandb could not start ({err}); log in (`wandb login`), set WANDB_MODE=offline to log to disk "
                "only, or remove wandb from run.report_to"
            ) from err

    def log_metrics(self, step: int, metrics: dict[str, Any]) -> None:
        self.run.log(numbers(metrics), step=step)

    def log_samples(self, step: int, rows: list[dict]) -> None:
        columns = list(dict.fromkeys(key for row in rows for key in row))  # union, first-seen order
        data = [[step, *(row.get(key) for key in columns)] for row in rows]
        # rewards are missing where one does not apply: a column may mix numbers and None
        table = self.wandb.Table(columns=["step", *columns], data=data, allow_mixed_types=True)
        self.run.log({"samples": table}, step=step)

    def log_images(self, step: int, paths: list[Path]) -> None:
        self.run.log({f"report/{p.stem}": self.wandb.Image(str(p)) for p in paths}, step=step)

    def close(self, completed: bool) -> None:
        self.run.finish(exit_code=0 if completed else 1)


class MLflow(Tracker):
    """MLflow, through its client (no global active run). The store is MLFLOW_TRACKING_URI, else a local
    file store RUN_DIR/mlruns; mlflow 3 refuses file stores unless MLFLOW_ALLOW_FILE_STORE=true, which is
    set for that default (and mlflow-skinny has no SQLite store to offer instead)."""

    module, package = "mlflow", "mlflow-skinny"
    takes_images = True

    def __init__(self, setup: TrackerSetup):
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:  # the default store, which mlflow 3 opens only when asked to
            uri = (setup.run_dir / "mlruns").resolve().as_uri()
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient

        self.Metric, self.client = Metric, MlflowClient(tracking_uri=uri)
        try:
            found = self.client.get_experiment_by_name(setup.project)
            experiment = found.experiment_id if found else self.client.create_experiment(setup.project)
            self.run_id = self.client.create_run(experiment, run_name=setup.name).info.run_id
            params = [Param(key, value) for key, value in flat_params(setup.config).items()]
            for start in range(0, len(params), 100):  # mlflow takes at most 100 params per batch
                self.client.log_batch(self.run_id, params=params[start : start + 100])
        except Exception as err:
            raise RunError(
                f"mlflow could not start at {uri} ({err}); check MLFLOW_TRACKING_URI, or remove mlflow "
                "from run.report_to"
            ) from err

    def log_metrics(self, step: int, metrics: dict[str, Any]) -> None:
        now = int(time.time() * 1000)
        batch = [self.Metric(mlflow_name(k), float(v), now, step) for k, v in numbers(metrics).items()]
        for start in range(0, len(batch), 1000):  # and at most 1000 metrics
            self.client.log_batch(self.run_id, metrics=batch[start : start + 1000])

    def log_samples(self, step: int, rows: list[dict]) -> None:
        self.client.log_dict(self.run_id, [{"step": step, **row} for row in rows], f"samples/step-{step:06d}.json")

    def log_images(self, step: int, paths: list[Path]) -> None:
        for path in paths:
            self.client.log_artifact(self.run_id, str(path), "report")

    def close(self, completed: bool) -> None:
        self.client.set_terminated(self.run_id, "FINISHED" if completed else "KILLED")


def mlflow_name(key: str) -> str:
    """A metric or param name MLflow accepts: letters, digits and `_-. /` only, no empty or `..` parts
    ("eval/pass@1" → "eval/pass_1")."""
    cleaned = re.sub(r"[^A-Za-z0-9_\-. /]", "_", key)
    return "/".join(part for part in cleaned.split("/") if part not in ("", ".", "..")) or "_"


def flat_params(config: dict, prefix: str = "") -> dict[str, str]:
    """The config tree as dotted MLflow params (`grpo.beta` → "0.001"); lists as JSON, values cut at
    MLflow's 6000 characters."""
    flat = flatten(config, prefix, keep_empty=True)
    return {mlflow_name(k): (json.dumps(v) if isinstance(v, (list, dict)) else str(v))[:6000] for k, v in flat.items()}


TRACKERS: dict[str, type[Tracker]] = {
    "jsonl": Jsonl,
    "tensorboard": TensorBoard,
    "wandb": Wandb,
    "mlflow": MLflow,
}


def require(names: list[str]) -> None:
    """Fail now, before any model loads, if a named tracker's package is missing."""
    for name in names:
        tracker = TRACKERS[name]
        if tracker.module and importlib.util.find_spec(tracker.module) is None:
            raise RunError(
                f"run.report_to names {name}, but {tracker.module} is not installed: pip install {tracker.package}, "
                f"or remove {name} from run.report_to"
            )


def open_trackers(names: list[str], setup: TrackerSetup) -> dict[str, Tracker]:
    """The named trackers, opened in order; if one cannot start, those already open are closed and its
    RunError is raised."""
    require(names)
    opened: dict[str, Tracker] = {}
    try:
        for name in names:
            opened[name] = TRACKERS[name](setup)
    except BaseException:
        for tracker in opened.values():
            tracker.close(completed=False)
        raise
    return opened
