"""scripts/demo_seeds.py on the tiny model: per-seed results, cached cold starts, the README table."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from test_demo import TINY

SCRIPT = Path(__file__).parent.parent / "scripts" / "demo_seeds.py"


@pytest.fixture
def demo_seeds():
    spec = importlib.util.spec_from_file_location("demo_seeds", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(module, monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["demo_seeds.py", *args])
    module.main()


def test_seeds_are_measured_on_both_phrasings_and_reruns_reuse_them(demo_seeds, tiny_model_dir, tmp_path, monkeypatch):
    common = ["--out", str(tmp_path), "--alternate", "3", "--coldstart-examples", "8"]
    common += ["--", f"model.name={tiny_model_dir}", *TINY]
    import r1.pipeline.demo as demo

    run(demo_seeds, monkeypatch, "--seeds", "0,1", "--name", "a", "--grpo", "optim.lr=1e-4", *common)
    results = [json.loads((tmp_path / "a" / f"seed{s}" / "result.json").read_text()) for s in (0, 1)]
    for seed, r in enumerate(results):
        assert r["seed"] == seed and r["grpo_overrides"] == ["optim.lr=1e-4"]
        for stage in ("coldstart", "final"):
            assert set(r[stage]) == {"standard", "alternate"}
            assert 0.0 <= r[stage]["alternate"]["accuracy"] <= 1.0
        assert r["grpo_s"] > 0 and r["peak_mib"] > 0
    table = (tmp_path / "a" / "table.md").read_text().splitlines()
    assert [line.split(" | ")[0] for line in table[2:]] == ["| 0", "| 1", "| mean (standard)", "| mean (alternate)"]
    # another recipe on the same seeds trains GRPO again but not the cold starts
    sft_calls = []
    monkeypatch.setattr(demo, "train_sft", lambda cfg: sft_calls.append(cfg) or pytest.fail("cold start retrained"))
    run(demo_seeds, monkeypatch, "--seeds", "1", "--name", "b", *common)
    assert json.loads((tmp_path / "b" / "seed1" / "result.json").read_text())["coldstart"] == results[1]["coldstart"]
    # a finished seed is not run again
    monkeypatch.setattr(demo_seeds, "train_grpo", lambda cfg: pytest.fail("finished seed rerun"))
    run(demo_seeds, monkeypatch, "--seeds", "0,1", "--name", "a", *common)
