"""What every training command shares around its loop: setup, data order, logging.

- `begin_process` joins the process group when launched by torchrun/accelerate (r1/train/distributed.py),
  seeds every RNG (seed + rank: each rank samples different completions, reproducibly) and sets
  torch's thread count; `resolve_run_dir` creates the run directory (the loop, loop.py, decides
  what to do in it); `start_run` does both and writes `config.yaml`.
- `load_trainable` builds the model a loop trains: base or resumed weights, optionally with LoRA
  adapters and gradient checkpointing, identical on every rank.
- `IndexSampler` walks a dataset in a fresh seeded permutation each epoch; its position is part of
  the checkpoint, so a resumed run sees exactly the prompts it would have seen.
- `RunLogger` sends each step's metrics to the trackers of `run.report_to` (r1/train/trackers.py:
  metrics.jsonl and TensorBoard by default, wandb, MLflow) and prints a one-line progress summary
  with the ETA (r1/progress.py) every `train.log_every` steps, and at least every ~30 s between
  them; `samples.jsonl` always receives completions with their rewards, and the trackers a copy.
  A tracker that fails mid-run is warned about once and dropped: logging never stops training.
  At a run's natural end (`finish`, after the final checkpoint) the report plots (r1/eval/report.py)
  are made and logged, only when a tracker takes images (wandb, MLflow). Under data parallelism
  only rank 0 writes files, talks to trackers or prints.
"""

from __future__ import annotations

import json
import math
import random
import resource
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from r1 import allocator, precision
from r1.config import Config, DataConfig, save_config
from r1.data import load_configured, prepare_prompts
from r1.models import load_model
from r1.progress import Progress
from r1.train import distributed as dist
from r1.train import fsdp, lora, trackers
from r1.train.errors import RunError

console = Console(highlight=False)


def resolve_run_dir(cfg: Config, command: str) -> tuple[Path, list[str]]:
    """The run directory (`run.output_dir`, default runs/<command>-<time>), created, and `auto`
    precisions resolved on rank 0 for every rank (r1/precision.py); returns it with the reasons."""
    path = Path(dist.broadcast_object(cfg.run.output_dir or f"runs/{command}-{time.strftime('%Y%m%d-%H%M%S')}"))
    cfg.run.output_dir = str(path)
    chosen = (
        precision.resolve(cfg.rollout.dtype, cfg.train.bf16, dist.device(cfg.run.device)) if dist.is_main() else None
    )
    cfg.rollout.dtype, cfg.train.bf16, notes = dist.broadcast_object(chosen)
    if dist.is_main():
        path.mkdir(parents=True, exist_ok=True)
    dist.barrier()
    return path, notes


def prepare_run_dir(cfg: Config, command: str) -> Path:
    """`resolve_run_dir`, then save config.yaml, which records what ran, with the precision reasons
    as comments at its end (the pipeline's and distillation's own directories)."""
    path, notes = resolve_run_dir(cfg, command)
    if dist.is_main():
        save_config(cfg, path / "config.yaml", notes=["precision " + note for note in notes])
    dist.barrier()
    return path


def begin_process(cfg: Config, command: str) -> None:
    """Join the process group (torchrun), seed every RNG (seed + rank), set torch's threads, and start
    counting this stage's peak memory."""
    dist.require_single_process(command)
    dist.init()
    console.quiet = not dist.is_main()
    seed = cfg.run.seed + dist.rank()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    reset_peak_memory(dist.device(cfg.run.device))


def start_run(cfg: Config, command: str) -> Path:
    """`begin_process` and `prepare_run_dir` (commands that do not train through loop.py)."""
    begin_process(cfg, command)
    return prepare_run_dir(cfg, command)


def load_trainable(cfg: Config, resume_from: Path | None = None) -> tuple:
    """(model, tokenizer) to train: `model.name` or the checkpoint `resume_from`, with LoRA adapters
    if `model.lora.enabled`, gradient checkpointing if `train.gradient_checkpointing`, sharded with
    FSDP2 if `train.fsdp` (r1/train/fsdp.py)."""
    lora_on = cfg.model.lora.enabled
    model, tokenizer = load_model(
        str(resume_from) if resume_from and not lora_on else cfg.model.name,
        dtype=cfg.model.dtype,
        device=dist.device(cfg.run.device),
    )
    if cfg.train.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if lora_on:
        model = lora.load(model, resume_from) if resume_from else lora.apply(model, cfg.model.lora)
    dist.broadcast_params(model)  # e.g. the adapters' random init: rank 0's everywhere
    if cfg.train.fsdp:
        fsdp.shard(model)
    return model, tokenizer


def for_rollout(policy):
    """The plain model that rollout engines, evaluation and checkpoints read: the policy itself, a
    merged copy of a LoRA policy, or the gathered weights of an FSDP-sharded one (a collective:
    every rank calls it at the same point)."""
    return fsdp.gathered(policy) if fsdp.is_sharded(policy) else lora.for_rollout(policy)


def reset_peak_memory(device: torch.device) -> None:
    """Start counting this stage's peak memory: a run (SFT, GRPO, …) reports its own peak, not an
    earlier stage's of the same process (`r1 demo`, `r1 pipeline`). On a CPU the heap's free memory is
    first handed back, then Linux's peak-RSS mark (VmHWM) is reset; where /proc refuses, the process's
    lifetime peak is reported instead."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    allocator.release()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS (proc(5))
    except OSError:
        pass


def peak_memory_mib(device: torch.device) -> float:
    """Peak memory since `reset_peak_memory`, the largest over ranks: CUDA memory allocated on a GPU,
    else the process's peak resident set (VmHWM; ru_maxrss where /proc is missing)."""
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = _vm_hwm_mib() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return max(dist.gather_objects(peak))


def _vm_hwm_mib() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def load_prompt_dataset(d: DataConfig, tokenizer) -> list[dict]:
    """The configured dataset with its prompts rendered and tokenized (prompt_ids, think_prefilled)."""
    examples = load_configured(d)
    return prepare_prompts(
        examples,
        tokenizer,
        template=d.template,
        form=d.template_form,
        prefill_think=d.prefill_think,
        max_prompt_tokens=d.max_prompt_tokens,
        on_overlong=d.on_overlong_prompt,
    )


class IndexSampler:
    """Indices 0..n-1 in a new seeded permutation every epoch; resumable."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch, self.position = n, seed, 0, 0
        self._order = self._permutation()

    def _permutation(self) -> list[int]:
        order = list(range(self.n))
        random.Random(f"{self.seed}:{self.epoch}").shuffle(order)
        return order

    def take(self, k: int) -> list[int]:
        out = []
        while len(out) < k:
            if self.position == self.n:
                self.epoch, self.position = self.epoch + 1, 0
                self._order = self._permutation()
            out.append(self._order[self.position])
            self.position += 1
        return out

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "n": self.n}

    def load_state_dict(self, state: dict) -> None:
        """Continue where the saved sampler stopped; over a dataset of another size (a resume with
        `run.allow_config_change`), from the start of a fresh permutation of the next epoch."""
        self.epoch, self.position = state["epoch"], state["position"]
        if state.get("n", self.n) != self.n:
            self.epoch, self.position = self.epoch + 1, 0
        self._order = self._permutation()


PROGRESS_KEYS = [  # (metric, label, format) shown in the one-line progress summary
    ("reward/mean", "reward", "{:.3f}"),
    ("reward/accuracy", "acc", "{:.2f}"),
    ("reward/format", "fmt", "{:.2f}"),
    ("loss", "loss", "{:.4f}"),
    ("kl", "kl", "{:.4f}"),
    ("completion_len/mean", "len", "{:.0f}"),
    ("grad_norm", "gnorm", "{:.2f}"),
    ("time/step", "step_s", "{:.1f}"),
    ("tokens_per_s", "tok/s", "{:.0f}"),
]


class RunLogger:
    """`label` names the loop in its progress lines (`grpo step 3/30 … ETA …`); `begin` is the step it
    starts from (a resumed run's), so the ETA counts only this process's steps. `report_to` names the
    trackers (r1/train/trackers.py); `config`, the resolved config tree, goes to those that record it;
    `budget_s` (train.max_time_s) bounds the ETA when it ends the run before its steps do."""

    def __init__(
        self,
        run_dir: Path,
        total_steps: int,
        *,
        label: str = "train",
        begin: int = 0,
        report_to: Sequence[str] = ("tensorboard", "jsonl"),
        project: str = "r1",
        config: dict | None = None,
        budget_s: float | None = None,
    ):
        self.run_dir, self.total_steps, self.main = Path(run_dir), total_steps, dist.is_main()
        self.last_step, self.completed = begin, False
        setup = trackers.TrackerSetup(self.run_dir, str(self.run_dir), project, config or {})
        opened, problem = {}, None
        if self.main:
            try:
                opened = trackers.open_trackers(list(report_to), setup)
            except RunError as err:
                problem = str(err)
        problem = dist.broadcast_object(problem)  # every rank stops, not only rank 0
        if problem:
            raise RunError(problem)
        self.trackers: dict[str, trackers.Tracker] = opened
        self.progress = Progress(f"{label} step", total_steps, begin=begin, budget_s=budget_s)

    def log(self, step: int, metrics: dict[str, float], *, show: bool = True) -> None:
        if not self.main:
            return
        clean = {k: _jsonable(v) for k, v in metrics.items()}
        self._send("log_metrics", step, clean)
        self.last_step = step
        shown = {
            label: fmt.format(clean[key])
            for key, label, fmt in PROGRESS_KEYS
            if isinstance(clean.get(key), (int, float))
        }
        self.progress.update(step, quiet=not show, **shown)  # quiet steps still print every ~30 s

    def samples(self, step: int, rows: list[dict]) -> None:
        if not self.main:
            return
        with open(self.run_dir / "samples.jsonl", "a", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps({"step": step, **row}, ensure_ascii=False) + "\n")
        self._send("log_samples", step, rows)

    def finish(self) -> None:
        """The run reached its final checkpoint: the trackers that take images get the report plots
        (written to RUN_DIR/report/, as `r1 report` does), and they close as completed."""
        self.completed = True
        if not any(tracker.takes_images for tracker in self.trackers.values()):
            return
        from r1.eval.report import make_report  # matplotlib: only when a tracker wants the plots

        try:
            images = [path for path in make_report(self.run_dir) if path.suffix == ".png"]
        except Exception as err:  # the plots are a courtesy; the run has already succeeded
            _warn(f"the report plots could not be made ({type(err).__name__}: {err})")
            return
        self._send("log_images", self.last_step, images)

    def close(self) -> None:
        self._send("close", self.completed)
        self.trackers = {}

    def _send(self, method: str, *args) -> None:
        """`method(*args)` on every tracker; one that raises is warned about once and dropped for the rest
        of the run (a tracker that failed once would likely fail, or hang on retries, every step)."""
        for name, tracker in list(self.trackers.items()):
            try:
                getattr(tracker, method)(*args)
            except Exception as err:
                del self.trackers[name]
                _warn(
                    f"the {name} tracker failed ({method}: {type(err).__name__}: {err}); "
                    f"nothing more goes to {name} in this run, training goes on"
                )


def _warn(text: str) -> None:
    # plain text on one line: an error's message may hold brackets that rich would take for markup
    console.print(f"[r1] warning: {text}", markup=False, soft_wrap=True)


def _jsonable(value):
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # strict JSON has no NaN/inf; non-finite steps are counted separately
    return value


def truncate_log_on_resume(run_dir: Path, step: int) -> int:
    """Drop metric/sample lines written after `step` by a run that died after its last checkpoint, and
    lines torn by a kill or a full disk mid-write (counted and reported); returns how many were torn."""
    if not dist.is_main():
        return 0
    torn = 0
    for name in ("metrics.jsonl", "samples.jsonl"):
        path = Path(run_dir) / name
        if path.is_file():
            kept = []
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                row = _json_row(line)
                torn += row is None and bool(line.strip())
                if row is not None and row.get("step", 0) <= step:
                    kept.append(line)
            path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    if torn:
        console.print(
            f"\\[r1] dropped {torn} torn line(s) from the logs in {run_dir} (cut short by a kill or a full disk)"
        )
    return torn


def _json_row(line: str) -> dict | None:
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) else None
