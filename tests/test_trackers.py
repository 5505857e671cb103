"""Experiment trackers (`run.report_to`, r1/train/trackers.py), for real and offline.

wandb runs with WANDB_MODE=offline and is read back from the `.wandb` file it writes (offline runs
keep their history and config only there); MLflow writes a local file store and is read back with
its own client. No test touches the network.
"""

from __future__ import annotations

import importlib.util
import json
import struct
import typing
from pathlib import Path

import pytest

from r1.config import ConfigError, TrackerName, load_config
from r1.train import run as run_module
from r1.train import trackers
from r1.train.errors import RunError
from r1.train.loop import run_training
from r1.train.run import RunLogger
from r1.train.sft import train_sft
from r1.train.trackers import TRACKERS
from test_train_grpo import make_cfg as grpo_cfg
from test_train_sft import make_cfg as sft_cfg
from test_train_sft import read_metrics, write_rows

# the optional installs (pip install 'r1[trackers]'); the tests that need them are skipped without
needs_wandb = pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="pip install wandb")
needs_mlflow = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="pip install mlflow-skinny")

ROWS = [
    {"id": "p1", "answer": "5", "completion": "<answer> 5 </answer>", "advantage": 0.7, "reward/accuracy": 1.0},
    {"id": "p1", "answer": "5", "completion": "<answer> 4 </answer>", "advantage": -0.7},  # a reward not applied
]


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """wandb offline and quiet, writing under tmp_path; MLflow's store and its file-store opt-in as
    the trackers find them (unset), restored afterwards."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.setenv(name, "")  # recorded for restoring, then removed
        monkeypatch.delenv(name)
    return tmp_path


def wandb_records(root: Path) -> list:
    """Every record of the one offline run under `root`: the `.wandb` file is a LevelDB-style log
    (a 7-byte header, 32 KiB blocks, each record a 7-byte header: crc, length, type) of protobufs."""
    import wandb
    from wandb.proto import wandb_internal_pb2 as pb

    wandb.teardown()  # `finish` can return before wandb's service has flushed the file; this waits for it
    (path,) = root.glob("wandb/offline-run-*/run-*.wandb")
    raw, block, pos, part, records = path.read_bytes(), 32768, 7, b"", []
    while pos + 7 <= len(raw):
        left = block - pos % block
        _, size, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        if left < 7 or (size == 0 and kind == 0):  # the block's zero padding
            pos += left
            continue
        part, pos = part + raw[pos + 7 : pos + 7 + size], pos + 7 + size
        if kind in (1, 4):  # FULL, or the LAST piece of a record split over blocks
            record = pb.Record()
            record.ParseFromString(part)
            records.append(record)
            part = b""
    return records


def wandb_history(records) -> list[dict]:
    """The logged rows: {key: decoded value} with `_step`."""
    return [
        {"/".join(item.nested_key) or item.key: json.loads(item.value_json) for item in r.history.item}
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]


def wandb_config(records) -> dict:
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    return {item.key: json.loads(item.value_json) for item in run.config.update}


def mlflow_run(store: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("r1").experiment_id])
    return client, run


# --- names and config ---------------------------------------------------------------------------------------


def test_the_config_names_exactly_the_registered_trackers():
    assert set(typing.get_args(TrackerName)) == set(TRACKERS)
    assert load_config(None, []).run.report_to == ["tensorboard", "jsonl"]


@pytest.mark.parametrize(
    "value, message",
    [
        ("[jsonl,neptune]", r"run.report_to\[1\]: expected one of 'tensorboard', 'jsonl', 'wandb', 'mlflow'"),
        ("[wandb,wandb]", "run.report_to names a tracker twice"),
    ],
)
def test_an_unknown_or_repeated_tracker_is_a_config_error(value, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [f"run.report_to={value}"])


def test_a_named_tracker_that_is_not_installed_stops_the_run_before_any_model_loads(tmp_path, monkeypatch):
    real = trackers.importlib.util.find_spec
    monkeypatch.setattr(trackers.importlib.util, "find_spec", lambda name: None if name == "mlflow" else real(name))
    cfg = load_config(None, [f"run.output_dir={tmp_path}", "run.report_to=[jsonl,mlflow]"])
    with pytest.raises(RunError, match="mlflow is not installed: pip install mlflow-skinny"):
        run_training(cfg, "sft", lambda resume_from: pytest.fail("no model may load"))


@needs_wandb
def test_a_tracker_that_cannot_start_is_a_clear_error_and_the_others_are_closed(tmp_path, offline, monkeypatch):
    import wandb

    def refuse(**kwargs):
        raise wandb.errors.UsageError("No API key configured. Use `wandb login` to log in.")

    closed = []
    monkeypatch.setattr(wandb, "init", refuse)
    monkeypatch.setattr(trackers.TensorBoard, "close", lambda self, completed: closed.append(completed))
    with pytest.raises(RunError, match=r"wandb could not start \(No API key.*WANDB_MODE=offline"):
        RunLogger(tmp_path / "run", 3, report_to=["tensorboard", "wandb"])
    assert closed == [False]  # the tracker opened before it


# --- what each tracker receives -----------------------------------------------------------------------------


def test_the_default_trackers_write_exactly_the_files_of_before(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = RunLogger(tmp_path, total_steps=2)
    logger.log(1, {"loss": 0.5, "kl": float("nan"), "note": "x"}, show=False)
    logger.log(2, {"loss": 0.25, "kl": 0.125, "note": "x"}, show=False)
    logger.samples(2, ROWS)
    logger.finish()
    logger.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl", "samples.jsonl", "tensorboard"]
    assert (tmp_path / "metrics.jsonl").read_text() == (
        '{"step": 1, "loss": 0.5, "kl": null, "note": "x"}\n{"step": 2, "loss": 0.25, "kl": 0.125, "note": "x"}\n'
    )
    assert [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()] == [
        {"step": 2, **row} for row in ROWS
    ]
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["kl", "loss"]
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [(1, 0.5), (2, 0.25)]


def test_no_tracker_still_writes_samples_jsonl(tmp_path):
    logger = RunLogger(tmp_path, total_steps=1, report_to=[])
    logger.log(1, {"loss": 0.5}, show=False)
    logger.samples(1, ROWS[:1])
    logger.close()
    assert [p.name for p in tmp_path.iterdir()] == ["samples.jsonl"]


def test_only_rank_0_opens_trackers_or_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(run_module.dist, "is_main", lambda: False)
    logger = RunLogger(tmp_path, total_steps=1, report_to=["tensorboard", "jsonl", "mlflow"])
    logger.log(1, {"loss": 0.5}, show=False)
    logger.samples(1, ROWS)
    logger.finish()
    logger.close()
    assert logger.trackers == {} and list(tmp_path.iterdir()) == []


@needs_wandb
def test_wandb_offline_receives_config_metrics_samples_and_images(tmp_path, offline):
    (tmp_path / "run").mkdir()
    logger = RunLogger(
        tmp_path / "run", 2, report_to=["jsonl", "wandb"], project="r1-test", config={"grpo": {"beta": 0.001}}
    )
    logger.log(1, {"loss": 0.5, "reward/accuracy": 0.25}, show=False)
    logger.log(2, {"loss": 0.25, "reward/accuracy": 0.75, "kl": float("inf")}, show=False)
    logger.samples(2, ROWS)
    logger.finish()
    logger.close()
    records = wandb_records(tmp_path)
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run.project == "r1-test" and run.display_name == str(tmp_path / "run")
    assert wandb_config(records)["grpo"] == {"beta": 0.001}
    history = wandb_history(records)
    assert [(h["_step"], h["loss"], h["reward/accuracy"]) for h in history if "loss" in h] == [
        (1, 0.5, 0.25),
        (2, 0.25, 0.75),
    ]
    assert not any("kl" in h for h in history)  # a non-finite value is not sent
    (table,) = [h for h in history if "samples/_type" in h]
    assert table["_step"] == 2 and table["samples/nrows"] == 2
    data = json.loads(next(tmp_path.glob(f"wandb/offline-run-*/files/{table['samples/path']}")).read_text())
    assert data["columns"] == ["step", "id", "answer", "completion", "advantage", "reward/accuracy"]
    assert data["data"][1] == [2, "p1", "5", "<answer> 4 </answer>", -0.7, None]
    images = {k for h in history for k, v in h.items() if k.startswith("report/") and k.endswith("/_type")}
    assert "report/reward/_type" in images  # the report plot made at the end, from metrics.jsonl


@needs_mlflow
def test_mlflow_local_store_receives_params_metrics_samples_and_images(tmp_path, offline):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = {"grpo": {"beta": 0.001}, "rewards": {"weights": {"accuracy": 1.0}}, "optim": {"betas": [0.9, 0.99]}}
    logger = RunLogger(run_dir, 2, report_to=["jsonl", "mlflow"], config=config)
    logger.log(1, {"loss": 0.5, "eval/pass@1": 0.25, "skipped": None}, show=False)
    logger.log(2, {"loss": 0.25, "reward/accuracy": 0.5}, show=False)
    logger.samples(2, ROWS)
    logger.finish()
    logger.close()
    client, run = mlflow_run(run_dir / "mlruns")  # the default store: under the run directory
    assert run.info.run_name == str(run_dir) and run.info.status == "FINISHED"
    assert run.data.params == {"grpo.beta": "0.001", "rewards.weights.accuracy": "1.0", "optim.betas": "[0.9, 0.99]"}
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss")] == [(1, 0.5), (2, 0.25)]
    # eval/pass@1: a name mlflow refuses, made acceptable; None is not sent
    assert run.data.metrics == {"loss": 0.25, "eval/pass_1": 0.25, "reward/accuracy": 0.5}
    samples = Path(client.download_artifacts(run.info.run_id, "samples/step-000002.json", str(tmp_path / "dl")))
    assert json.loads(samples.read_text()) == [{"step": 2, **row} for row in ROWS]
    assert "report/reward.png" in {a.path for a in client.list_artifacts(run.info.run_id, "report")}


@needs_mlflow
def test_mlflow_follows_mlflow_tracking_uri(tmp_path, offline, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "shared").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    (tmp_path / "run").mkdir()
    logger = RunLogger(tmp_path / "run", 1, report_to=["mlflow"])
    logger.log(1, {"loss": 0.5}, show=False)
    logger.close()  # not finished: stopped early
    client, run = mlflow_run(tmp_path / "shared")
    assert run.data.metrics == {"loss": 0.5} and run.info.status == "KILLED"
    assert not (tmp_path / "run" / "mlruns").exists()


# --- failure ------------------------------------------------------------------------------------------------


def test_a_tracker_failing_mid_run_is_one_warning_and_training_goes_on(tiny_model_dir, tmp_path, monkeypatch, capsys):
    calls = {"n": 0}

    def broken(self, step, metrics):
        calls["n"] += 1
        raise ConnectionError("tracking server gone")

    monkeypatch.setattr(trackers.TensorBoard, "log_metrics", broken)
    data = write_rows(tmp_path / "data.jsonl", 6)
    cfg = sft_cfg(tiny_model_dir, tmp_path / "run", f"sft.data={data}", "sft.batch_size=2", "train.micro_batch_size=1")
    run = train_sft(cfg)
    assert [m["step"] for m in read_metrics(run)] == [1, 2, 3]  # the other tracker got every step
    assert (run / "checkpoints" / "final").is_dir()
    assert calls["n"] == 1  # dropped after its first failure, not retried every step
    warnings = [line for line in capsys.readouterr().out.splitlines() if "tracker failed" in line]
    assert len(warnings) == 1 and warnings[0].startswith("[r1] warning: the tensorboard tracker failed")
    assert "tracking server gone" in warnings[0]


# --- end to end ---------------------------------------------------------------------------------------------


@needs_wandb
@needs_mlflow
def test_a_tiny_grpo_run_reports_to_jsonl_wandb_and_mlflow(tiny_model_dir, tmp_path, offline):
    from r1.train.grpo import train_grpo

    cfg = grpo_cfg(tiny_model_dir, tmp_path / "run", "train.steps=2", "train.sample_every=1")
    cfg.run.report_to = ["jsonl", "wandb", "mlflow"]
    run = train_grpo(cfg)
    metrics = read_metrics(run)
    assert [m["step"] for m in metrics] == [1, 2] and not (run / "tensorboard").exists()
    records = wandb_records(tmp_path)
    history = [h for h in wandb_history(records) if "loss" in h]
    assert [h["reward/t_len"] for h in history] == pytest.approx([m["reward/t_len"] for m in metrics])
    assert wandb_config(records)["rollout"]["samples_per_prompt"] == 4
    client, mlrun = mlflow_run(run / "mlruns")
    assert mlrun.info.status == "FINISHED" and mlrun.data.params["rollout.samples_per_prompt"] == "4"
    losses = client.get_metric_history(mlrun.info.run_id, "loss")
    assert [m.step for m in losses] == [1, 2]
    assert [m.value for m in losses] == pytest.approx([m["loss"] for m in metrics], rel=1e-6)
    assert {a.path for a in client.list_artifacts(mlrun.info.run_id, "samples")} == {
        "samples/step-000001.json",
        "samples/step-000002.json",
    }
