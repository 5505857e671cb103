"""A short end-to-end check of the setup: model → template → sampling → rewards → run directory.

`r1 check` runs this in a couple of minutes: it proves that the bundled model loads (converting
it once), that the R1-Zero template renders through its chat template, that sampling and the
length-derived masks work, and that the rewards score real completions. It is not a learning
demo (that is `r1 demo`): the untrained SmolLM2 never writes the R1-Zero format, so its rewards are 0.
`r1 generate` shows completions one by one with their rewards. Both are thin views over the
evaluation harness (r1/eval/harness.py), which does the sampling and scoring.
"""

from __future__ import annotations


from rich.console import Console
from rich.table import Table

from r1.config import Config
from r1.data import load_examples
from r1.eval.harness import evaluate
from r1.models import load_model
from r1.train.run import prepare_run_dir

console = Console()


def sample(
    model_name: str,
    examples: list[dict],
    *,
    n: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    form: str = "auto",
    prefill_think: bool = False,
    seed: int = 0,
    progress: bool = True,
):
    """Sample and score n completions per example with the engine and precision `auto` picks → EvalResult."""
    model, tokenizer = load_model(model_name)
    return evaluate(
        model,
        tokenizer,
        examples,
        k=n,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        seed=seed,
        form=form,
        prefill_think=prefill_think,
        progress=progress,
    )


def generate_and_score(
    *,
    model: str,
    source: str,
    limit: int,
    n: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    form: str,
    prefill_think: bool,
    seed: int,
) -> list[dict]:
    examples = load_examples(source, split="test" if source == "arithmetic" else "train", limit=limit, size=limit)
    records = sample(
        model,
        examples,
        n=n,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        form=form,
        prefill_think=prefill_think,
        seed=seed,
        progress=False,
    ).records
    for record in records:
        for s in record["samples"]:
            rewards = "  ".join(f"{k}={v}" for k, v in s["rewards"].items())
            console.rule(f"{record['id']}  reference={record['reference']!r}  extracted={s['answer']!r}  {rewards}")
            console.print(s["completion"], markup=False, highlight=False)
    return records


def setup_check(*, output_dir: str | None, limit: int, n: int, max_new_tokens: int) -> dict:
    cfg = Config()
    cfg.run.output_dir = output_dir
    cfg.data.source, cfg.data.split, cfg.data.limit = "arithmetic", "test", limit
    run_dir = prepare_run_dir(cfg, "check")
    examples = load_examples("arithmetic", split="test", size=limit, seed=cfg.data.seed)
    result = sample(
        cfg.model.name,
        examples,
        n=n,
        max_new_tokens=max_new_tokens,
        temperature=cfg.eval.temperature,
        top_p=cfg.eval.top_p,
    )
    result.save(run_dir, model=cfg.model.name, benchmark="arithmetic-test")
    m = result.metrics
    table = Table(title="setup check: bundled model, held-out arithmetic, R1-Zero template")
    rows = {
        "problems": m["problems"],
        "samples": m["problems"] * n,
        "accuracy": m["pass@1"]["mean"],
        "format": m["format"]["mean"],
        "mean_length": m["mean_length"],
        "truncated": m["truncated"],
        "seconds": result.timings["generation_seconds"] + result.timings["scoring_seconds"],
    }
    for key, value in rows.items():
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    console.print(table)
    first = result.records[0]
    console.print(f"first completion ({first['id']}, reference {first['reference']}):", style="bold")
    console.print(first["samples"][0]["completion"][:600], markup=False, highlight=False)
    console.print(f"run directory: {run_dir}")
    return rows
