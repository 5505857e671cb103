"""`scripts/gpu_check.sh --device cpu`: the GPU check's stages, smaller and on the CPU, as CI runs them.

Every stage must print its one `GPU_CHECK` line and pass; vLLM and TRL may be skipped only when they
are not installed. The bundled model is converted once into the user's cache (the smollm2_dir
fixture), which the script's load stage then reads.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGES = ["install", "load", "sft", "grpo", "eval", "torchrun", "fsdp", "lora", "vllm", "trl"]
OPTIONAL = {"vllm": "vllm", "trl": "trl"}  # stage → the module without which it is skipped


def test_gpu_check_cpu_runs_every_stage(smollm2_dir, tmp_path):
    env = {**os.environ, "R1_CACHE": str(smollm2_dir.parent.parent), "PYTHON": sys.executable}
    command = ["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--device", "cpu", "--output-dir", str(tmp_path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    lines = re.findall(r"^GPU_CHECK stage=(\S+) ok=(\S+)(.*)$", done.stdout, flags=re.M)
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    assert [stage for stage, _, _ in lines] == STAGES, done.stdout
    for stage, ok, rest in lines:
        if stage in OPTIONAL and importlib.util.find_spec(OPTIONAL[stage]) is None:
            assert ok == "skipped" and "reason=" in rest, (stage, ok, rest)
            continue
        assert ok == "true", (stage, ok, rest)
        seconds, peak = re.search(r"seconds=([\d.]+) peak_mem_mib=(\d+)", rest).groups()
        assert float(seconds) >= 0 and (int(peak) > 0 or stage == "install"), (stage, rest)
    assert (tmp_path / "grpo" / "run" / "checkpoints" / "final" / "config.json").is_file()
    assert (tmp_path / "eval" / "results.json").is_file()
    assert "wall time" in done.stdout
