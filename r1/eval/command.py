"""The `r1 eval` command: load a model and a benchmark, evaluate (harness.py), save and print.

`run_eval` writes `results.json` (settings, metrics with their intervals, package versions and
timings) and `samples.jsonl` into a folder, so a result can be traced to exactly what produced it.
Deliberately left out: the protocol itself (harness.py) and comparing results (report.py).
"""

from __future__ import annotations

import time
from importlib import metadata
from pathlib import Path
from typing import Callable

from r1.config import EvalConfig  # the paper's evaluation sampling: one home for its defaults
from r1.eval.harness import evaluate, reward_names
from r1.data import load_examples
from r1.models import load_model
from r1 import precision
from r1.rollout import engine as pick


def versions() -> dict[str, str | None]:
    """The versions of the packages a result depends on (None: not installed)."""
    found = {}
    for package in ("r1", "torch", "transformers", "math-verify"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def load_benchmark(model_name: str, benchmark: str, *, device: str, question_field, answer_field, limit, seed) -> tuple:
    """(model, tokenizer, examples): the model on `device` (auto: CUDA when there is one) and the
    benchmark's test split."""
    import torch

    model, tokenizer = load_model(
        model_name, device=("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    )
    examples = load_examples(
        benchmark,
        split="test",
        question_field=question_field,
        answer_field=answer_field,
        limit=limit,
        size=limit or 500,
        seed=seed,
    )
    return model, tokenizer, examples


def run_eval(
    model_name: str,
    benchmark: str,
    *,
    k: int = 4,
    limit: int | None = None,
    seed: int = 0,
    output_dir: str | Path | None = None,
    question_field: str | None = None,
    answer_field: str | None = None,
    max_new_tokens: int = 512,
    temperature: float = EvalConfig.temperature,
    top_p: float = EvalConfig.top_p,
    batch_size: int = 64,
    template: str = "r1-zero",
    form: str = "auto",
    progress: bool = True,
    generate_fn: Callable | None = None,
    engine: str = "auto",
    dtype: str = "auto",
    device: str = "auto",
) -> dict:
    """Evaluate `model_name` on `benchmark`; write results.json and samples.jsonl; return the results.

    `model_name`: anything `load_model` takes (r1 checkpoint or HF folder, `.gguf`, hub id, `smollm2-135m`).
    `benchmark`: `gsm8k`, `math500`, `aime24`, `humaneval`, `arithmetic` (its held-out test split, `limit`
    problems, default 500, generated from `seed`), a JSONL path (with `question_field`/`answer_field`) or a
    hub dataset id (its `test` split). `engine`: the rollout engine unless `generate_fn` is given (auto picks
    by model and device); `dtype` its precision (auto: r1/precision.py). `output_dir`: runs/eval-<time>.
    """
    start = time.perf_counter()
    out = Path(output_dir or f"runs/eval-{time.strftime('%Y%m%d-%H%M%S')}")
    fields = dict(question_field=question_field, answer_field=answer_field)
    model, tokenizer, examples = load_benchmark(model_name, benchmark, device=device, limit=limit, seed=seed, **fields)
    loaded = time.perf_counter()
    choice = precision.choose(dtype, "rollout", model.device)
    if progress:
        print(f"[r1] precision {choice.reason}", flush=True)
    sampling = dict(k=k, seed=seed, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens)
    prompts = dict(batch_size=batch_size, template=template, form=form)
    result = evaluate(
        model,
        tokenizer,
        examples,
        **sampling,
        **prompts,
        progress=progress,
        generate_fn=generate_fn or pick(engine, model),
        dtype=choice.dtype,
    )
    settings = {"limit": limit, **sampling, **prompts, **fields, "rewards": reward_names(examples), "engine": engine}
    settings.update(dtype=choice.dtype, precision=choice.reason)
    timings = {"total_seconds": round(time.perf_counter() - start, 3), "load_seconds": round(loaded - start, 3)}
    results = result.save(
        out, model=model_name, benchmark=benchmark, settings=settings, versions=versions(), timings=timings
    )
    if progress:
        print_summary(results, out)
    return results


def print_summary(results: dict, out: Path | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    m = results["metrics"]
    k = m["samples_per_problem"]
    table = Table(title=f"{results.get('model')} on {results.get('benchmark')}: {m['problems']} problems × {k} samples")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("95% interval", justify="right")
    for name in ("pass@1", f"cons@{k}", "format", "language"):
        table.add_row(name, f"{m[name]['mean']:.3f}", f"[{m[name]['low']:.3f}, {m[name]['high']:.3f}]")
    for kk, value in m["pass@k"].items():
        if kk != "1":
            table.add_row(f"pass@{kk}", f"{value:.3f}", "")
    for name in ("mean_length", "truncated", "no_answer"):
        table.add_row(name, f"{m[name]:.3f}", "")
    t = results["timings"]
    table.add_row("seconds (generation / scoring)", f"{t['generation_seconds']:.1f} / {t['scoring_seconds']:.1f}", "")
    console = Console()
    console.print(table)
    if out is not None:
        console.print(f"results: {out / 'results.json'}   samples: {out / 'samples.jsonl'}")
