"""A short end-to-end check of the setup: model → template → sampling → rewards → run directory.

`r1 check` runs this in a couple of minutes: it proves that the bundled model loads (converting
it once), that the R1-Zero template renders through its chat template, that sampling and the
length-derived masks work, and that the rewards score real completions. It is not a learning
demo (that is `r1 demo`): the untrained SmolLM2 never writes the R1-Zero format, so its rewards are 0.
"""

from __future__ import annotations

import json
import time

from rich.console import Console
from rich.table import Table

from r1.config import Config, prepare_run_dir
from r1.data import load_examples, prepare_prompts
from r1.models import load_model
from r1.rewards import extract_answer, score_completions
from r1.rollout import generate

console = Console()


def sample(model_name: str, examples: list[dict], *, n: int, max_new_tokens: int, temperature: float, top_p: float, form: str = "auto", prefill_think: bool = False, seed: int = 0):
    """Sample n completions per example and score them. Returns (rows, rollout, scores)."""
    model, tokenizer = load_model(model_name)
    examples = prepare_prompts(examples, tokenizer, form=form, prefill_think=prefill_think)
    rollout = generate(model, tokenizer, [e["prompt_ids"] for e in examples], n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed)
    row_examples = [e for e in examples for _ in range(n)]
    scores = score_completions(rollout.texts, row_examples, ["accuracy", "format"])
    rows = [
        {"id": e["id"], "answer": e["answer"], "completion": text, "extracted": extract_answer(text, e),
         "accuracy": scores.values["accuracy"][i], "format": scores.values["format"][i],
         "length": int(rollout.lengths[i]), "truncated": bool(rollout.truncated[i])}
        for i, (e, text) in enumerate(zip(row_examples, rollout.texts))
    ]
    return rows, rollout, scores


def generate_and_score(*, model: str, source: str, limit: int, n: int, max_new_tokens: int, temperature: float, top_p: float, form: str, prefill_think: bool, seed: int) -> list[dict]:
    examples = load_examples(source, split="test" if source == "arithmetic" else "train", limit=limit)
    rows, _, _ = sample(model, examples, n=n, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, form=form, prefill_think=prefill_think, seed=seed)
    for row in rows:
        console.rule(f"{row['id']}  reference={row['answer']!r}  extracted={row['extracted']!r}  accuracy={row['accuracy']}  format={row['format']}")
        console.print(row["completion"], markup=False, highlight=False)
    return rows


def setup_check(*, output_dir: str | None, limit: int, n: int, max_new_tokens: int) -> dict:
    cfg = Config()
    cfg.run.output_dir = output_dir
    cfg.data.source, cfg.data.split, cfg.data.limit = "arithmetic", "test", limit
    run_dir = prepare_run_dir(cfg, "check")
    start = time.perf_counter()
    examples = load_examples("arithmetic", split="test", size=limit, seed=cfg.data.seed)
    rows, rollout, scores = sample(cfg.model.name, examples, n=n, max_new_tokens=max_new_tokens, temperature=cfg.eval.temperature, top_p=cfg.eval.top_p)
    with open(run_dir / "samples.jsonl", "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    mean = lambda xs: sum(x or 0.0 for x in xs) / len(xs)  # noqa: E731
    summary = {
        "model": cfg.model.name, "problems": len(examples), "samples": len(rows),
        "accuracy": mean(scores.values["accuracy"]), "format": mean(scores.values["format"]),
        "mean_length": float(rollout.lengths.float().mean()), "truncated": float(rollout.truncated.float().mean()),
        "seconds": round(time.perf_counter() - start, 1), "counts": scores.counts,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    table = Table(title="setup check: bundled model, held-out arithmetic, R1-Zero template")
    for key in ("problems", "samples", "accuracy", "format", "mean_length", "truncated", "seconds"):
        value = summary[key]
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    console.print(table)
    console.print(f"first completion ({rows[0]['id']}, reference {rows[0]['answer']}):", style="bold")
    console.print(rows[0]["completion"][:600], markup=False, highlight=False)
    console.print(f"run directory: {run_dir}")
    return summary
