"""`auto` precision: measured on this machine, cached, recorded with its reason, and overridable.

The probe runs here for real (the suite otherwise pins `auto` to fp32 with R1_PRECISION, see
conftest.py); what is checked is that the choice follows from the measurement, whatever this CPU is.
"""

from __future__ import annotations

import json

import pytest
import yaml

from r1 import precision
from r1.config import load_config
from r1.train.run import prepare_run_dir


@pytest.fixture
def unpinned(monkeypatch):
    """The real `auto`: no R1_PRECISION pin, and no probe remembered from earlier in this process."""
    monkeypatch.delenv("R1_PRECISION", raising=False)
    precision.cpu_probe.cache_clear()
    yield
    precision.cpu_probe.cache_clear()


def test_the_probe_measures_this_cpu_and_the_choice_follows_from_it(unpinned, monkeypatch):
    probe = precision.cpu_probe()
    times = [probe.decode_fp32, probe.decode_bf16, probe.train_fp32, probe.train_bf16]
    assert all(0 < t < 5 for t in times)
    assert probe.key == precision.cpu_key() and "torch" in probe.key
    for use in ("rollout", "train"):
        choice = precision.choose("auto", use)
        assert choice.dtype == ("bfloat16" if probe.speedup(use) >= precision.MARGIN else "float32")
        assert f"{probe.speedup(use):.2f}×" in choice.reason
    # cached on disk under $R1_CACHE: a new process (simulated) reads it and does not measure again
    cached = json.loads(precision.cache_path(probe.key).read_text())
    assert cached["key"] == probe.key and cached["train_bf16"] == probe.train_bf16
    precision.cpu_probe.cache_clear()
    monkeypatch.setattr(precision, "measure", lambda: pytest.fail("measured again despite the cache"))
    assert precision.cpu_probe() == probe


def test_a_cache_written_for_another_machine_is_not_trusted(unpinned, monkeypatch):
    key = precision.cpu_key()
    path = precision.cache_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    other = {"key": "another cpu", "decode_fp32": 1, "decode_bf16": 1, "train_fp32": 1, "train_bf16": 1}
    path.write_text(json.dumps(other))
    fresh = precision.Probe(key=key, decode_fp32=2.0, decode_bf16=1.0, train_fp32=1.0, train_bf16=2.0)
    monkeypatch.setattr(precision, "measure", lambda: fresh)
    assert precision.cpu_probe() == fresh
    chosen = precision.choose("auto", "rollout").dtype, precision.choose("auto", "train").dtype
    assert chosen == ("bfloat16", "float32")


def test_explicit_settings_and_the_pin_win_over_the_probe(monkeypatch):
    monkeypatch.setattr(precision, "measure", lambda: pytest.fail("no probe for an explicit setting"))
    precision.cpu_probe.cache_clear()
    assert precision.resolve("float32", True)[:2] == ("float32", True)
    assert precision.resolve("bfloat16", False)[:2] == ("bfloat16", False)
    monkeypatch.setenv("R1_PRECISION", "bfloat16")
    assert precision.resolve("auto", "auto")[:2] == ("bfloat16", True)
    with pytest.raises(ValueError, match="auto, float32 or bfloat16"):
        precision.choose("fp8", "train")


def test_a_run_records_the_choice_and_why_in_config_yaml(unpinned, tmp_path, capsys):
    cfg = load_config(None, [f"run.output_dir={tmp_path / 'run'}"])
    assert (cfg.rollout.dtype, cfg.train.bf16) == ("auto", "auto")
    run_dir = prepare_run_dir(cfg, "grpo")
    probe = precision.cpu_probe()
    want_rollout = "bfloat16" if probe.speedup("rollout") >= precision.MARGIN else "float32"
    want_train = probe.speedup("train") >= precision.MARGIN
    text = (run_dir / "config.yaml").read_text()
    saved = yaml.safe_load(text)
    assert saved["rollout"]["dtype"] == want_rollout and saved["train"]["bf16"] is want_train
    assert f"# precision rollout: auto → {want_rollout}" in text and "# precision train: auto →" in text
    assert load_config(run_dir / "config.yaml").rollout.dtype == want_rollout  # the record loads back as a config
    assert "[r1] precision rollout: auto →" in capsys.readouterr().out
