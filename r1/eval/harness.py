"""Run the paper's evaluation protocol (docs/method.md §7): k samples per problem, pass@1, pass@k, cons@k.

`evaluate` samples k completions for every problem at temperature 0.6 / top-p 0.95 (never
greedy: long-CoT models repeat themselves under greedy decoding), scores each with the same
rule-based rewards the trainer uses (`accuracy`, `format`, `language`), extracts each final
answer, and computes the metrics of `r1.eval.metrics` with 95% intervals. `run_eval`
(r1/eval/command.py) wraps it for the `r1 eval` command.

Batching: the problems × k sample rows, problem-major, go to the generator in chunks of
`batch_size` rows (each row a prompt, n=1), so a chunk mixes problems and samples and small
k never leaves a batch half empty. Chunk c is sampled with seed `seed + c`, inside a forked
torch RNG so that evaluating in the middle of training does not change the training run's
random stream. The same (seed, batch_size, k, examples) gives the same samples; a different
batch_size gives different (equally valid) samples.

`generate_fn` replaces `r1.rollout.generate` (same signature, returns an object with `texts`,
`lengths`, `truncated`); a faster engine plugs in there, and tests script completions with it.

A reward that fails on a sample (value None) counts as incorrect / unformatted and is
reported in `metrics["reward_events"]`. Correctness is the reward the examples name in
`reward` (HumanEval: `code`, its tests run in the sandbox), `accuracy` by default; for code the
"answer" is the extracted program and cons@k votes over identical programs. Deliberately left
out: multiple-choice scoring.
"""

from __future__ import annotations

import json
import operator
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from r1.config import EvalConfig  # the paper's evaluation sampling: one home for its defaults
from r1.eval.metrics import majority_vote, mean_ci, pass_at_k, pass_k_values
from r1.data import prepare_prompts
from r1.rollout import Sampling
from r1.progress import Progress
from r1.rewards import answers_equivalent, extract_answer, score_completions
from r1.rewards.code import extract_code
from r1.rollout import RolloutEngine

REWARD_NAMES = ["accuracy", "format", "language"]  # language is a cheap script count, always on


def reward_names(examples: list[dict]) -> list[str]:
    """REWARD_NAMES with the benchmark's correctness reward first: `example["reward"]` or accuracy."""
    correctness = {e.get("reward", "accuracy") for e in examples}
    if len(correctness) != 1:
        raise ValueError(
            f"the examples name different correctness rewards {sorted(correctness)}; evaluate them separately"
        )
    return [correctness.pop(), *REWARD_NAMES[1:]]


BREAKDOWN_FIELDS = ("subject", "level")  # MATH-500 carries both


@dataclass
class EvalResult:
    """Per-problem records (samples included), the metrics, and where the time went."""

    records: list[dict]
    metrics: dict
    timings: dict[str, float] = field(default_factory=dict)

    def save(self, out_dir: str | Path, **info) -> dict:
        """Write `samples.jsonl` (one line per problem) and `results.json` into `out_dir`.

        `results.json` = `info` (model, benchmark, settings, …) + metrics + timings (`info`'s
        own "timings" are merged in front). Returns that dict.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "samples.jsonl", "w", encoding="utf-8") as handle:
            for record in self.records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        results = {**info, "metrics": self.metrics, "timings": {**info.get("timings", {}), **self.timings}}
        (out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return results


def evaluate(
    model,
    tokenizer,
    examples: list[dict],
    *,
    k: int = 4,
    temperature: float = EvalConfig.temperature,
    top_p: float = EvalConfig.top_p,
    max_new_tokens: int = 512,
    seed: int = 0,
    batch_size: int = 64,
    template: str = "r1-zero",
    form: str = "auto",
    prefill_think: bool = False,
    max_prompt_tokens: int = 4096,
    progress: bool = True,
    generate_fn: Callable | None = None,
    dtype: str = "auto",
) -> EvalResult:
    """Sample `k` completions per example, score them and compute the metrics (module doc).

    `generate_fn` (default: `r1.rollout.generate`, the engine `auto` picks) is called as
    `generate_fn(model, tokenizer, prompt_ids, sampling)` with an `r1.rollout.Sampling`; `dtype` is
    the sampling precision (auto: r1/precision.py).

    `examples` come from `load_examples`; examples that already carry `prompt_ids` (from
    `prepare_prompts`) are used as they are.
    """
    if k < 1 or batch_size < 1:
        raise ValueError(f"k and batch_size must be ≥ 1, got k={k}, batch_size={batch_size}")
    if not examples:
        raise ValueError("evaluate needs at least one example")
    if "prompt_ids" not in examples[0]:
        prompts = dict(template=template, form=form, prefill_think=prefill_think, max_prompt_tokens=max_prompt_tokens)
        examples = prepare_prompts(examples, tokenizer, **prompts)
    start = time.perf_counter()
    rows = [e for e in examples for _ in range(k)]  # problem-major: problem p is rows p*k … p*k+k-1
    texts, lengths, truncated = _sample(
        model,
        tokenizer,
        [e["prompt_ids"] for e in rows],
        generate_fn,
        progress=progress,
        batch_size=batch_size,
        sampling=Sampling(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed, dtype=dtype),
    )
    generated = time.perf_counter()
    records, events = _score(examples, k, rows, texts, lengths, truncated)
    metrics = compute_metrics(records, k)
    metrics["reward_events"] = events
    timings = _timings(start, generated, len(rows), sum(lengths))
    timings["model_tokens"] = sum(len(e["prompt_ids"]) for e in rows) + sum(lengths)  # prompts + completions
    return EvalResult(records=records, metrics=metrics, timings=timings)


def _timings(start: float, generated: float, samples: int, tokens: int) -> dict:
    """Where an evaluation's time went (perf_counter marks: start, generation done, now)."""
    seconds = max(generated - start, 1e-9)
    return {
        "generation_seconds": round(generated - start, 3),
        "scoring_seconds": round(time.perf_counter() - generated, 3),
        "samples_per_second": round(samples / seconds, 3),
        "tokens_per_second": round(tokens / seconds, 3),
    }


def _sample(model, tokenizer, prompt_ids, generate_fn, *, progress, batch_size, sampling):
    """Generate one completion per row, in chunks of `batch_size` rows seeded `sampling.seed + chunk`
    (`sampling`: an r1.rollout.Sampling)."""
    import torch

    if generate_fn is None:
        from r1.rollout import generate as generate_fn
    device = getattr(model, "device", None)
    cuda = [device] if device is not None and getattr(device, "type", "cpu") == "cuda" else []
    texts, lengths, truncated = [], [], []
    bar = Progress("eval", len(prompt_ids), unit="sample", enabled=progress)  # a line per chunk, also in a pipe
    with torch.random.fork_rng(devices=cuda):
        for chunk, begin in enumerate(range(0, len(prompt_ids), batch_size)):
            batch = prompt_ids[begin : begin + batch_size]
            out = generate_fn(model, tokenizer, batch, sampling.but(n=1, seed=sampling.seed + chunk))
            if len(out.texts) != len(batch):
                raise RuntimeError(f"generate_fn returned {len(out.texts)} completions for {len(batch)} prompts")
            texts += list(out.texts)
            lengths += [int(x) for x in out.lengths]
            truncated += [bool(x) for x in out.truncated]
            bar.update(len(texts), len=f"{sum(lengths) / len(lengths):.0f}")  # mean completion tokens so far
    return texts, lengths, truncated


def _score(examples, k, rows, texts, lengths, truncated) -> tuple[list[dict], dict]:
    """Score every sample and group the samples into one record per problem."""
    names = reward_names(examples)
    # How the correctness reward reads a sample's answer, and which answers vote together for cons@k.
    extract, equivalent = {"code": (extract_code, operator.eq)}.get(names[0], (extract_answer, answers_equivalent))
    scores = score_completions(texts, rows, names)
    records = []
    for p, example in enumerate(examples):
        samples = []
        for j in range(p * k, p * k + k):
            rewards = {name: scores.values[name][j] for name in names}
            samples.append(
                {
                    "completion": texts[j],
                    "answer": extract(texts[j], example),
                    "correct": rewards[names[0]] == 1.0,
                    "rewards": rewards,
                    "length": lengths[j],
                    "truncated": truncated[j],
                }
            )
        answer, correct = majority_vote([s["answer"] for s in samples], [s["correct"] for s in samples], equivalent)
        record = {"id": example.get("id"), "prompt": example["prompt"], "reference": example["answer"]}
        record.update({f: example[f] for f in BREAKDOWN_FIELDS if f in example})
        record.update(majority={"answer": answer, "correct": correct}, samples=samples)
        records.append(record)
    events = dict(scores.counts)
    if scores.first_error:
        events["first_error"] = scores.first_error
    return records, events


def compute_metrics(records: list[dict], k: int) -> dict:
    """The metrics of a set of problem records (as in `samples.jsonl`). Intervals are 95%.

    pass@1, cons@k, format and language carry {"mean", "low", "high"}; `accuracy_formatted` is
    the share of correct samples among those in the format (None if there are none); `pass@k` maps every
    reported k' to its mean; `by_subject`/`by_level` give pass@1 per group when the records
    carry those fields.
    """
    correct = [[s["correct"] for s in r["samples"]] for r in records]
    per_problem = [sum(c) / len(c) for c in correct]
    reward_mean = lambda r, name: _mean([s["rewards"].get(name) or 0.0 for s in r["samples"]])  # noqa: E731  failed → 0
    samples = [s for r in records for s in r["samples"]]
    formatted = [s for s in samples if s["rewards"].get("format") == 1.0]  # tells format gains from answer gains
    metrics = {
        "problems": len(records),
        "samples_per_problem": k,
        "pass@1": _ci(per_problem),
        "pass@k": {str(kk): _mean([pass_at_k(len(c), sum(c), kk) for c in correct]) for kk in pass_k_values(k)},
        f"cons@{k}": _ci([float(r["majority"]["correct"]) for r in records]),
        "format": _ci([reward_mean(r, "format") for r in records]),
        "language": _ci([reward_mean(r, "language") for r in records]),
        "mean_length": _mean([s["length"] for s in samples]),
        "truncated": _mean([float(s["truncated"]) for s in samples]),
        "no_answer": _mean([float(s["answer"] is None) for s in samples]),
        "accuracy_formatted": _mean([float(s["correct"]) for s in formatted]) if formatted else None,
    }
    for name in BREAKDOWN_FIELDS:
        groups: dict[str, list[float]] = {}
        for record, score in zip(records, per_problem):
            if name in record:
                groups.setdefault(str(record[name]), []).append(score)
        if groups:
            metrics[f"by_{name}"] = {
                g: {**_ci(v), "problems": len(v)} for g, v in sorted(groups.items(), key=lambda kv: _natural(kv[0]))
            }
    return metrics


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _ci(values: list[float]) -> dict:
    mean, low, high = mean_ci(values)
    return {"mean": mean, "low": low, "high": high}


def _natural(text: str):
    return (0, int(text), "") if text.lstrip("-").isdigit() else (1, 0, text)


def config_settings(cfg) -> dict:
    """The evaluation settings of a run config (`r1.config.Config`): its `eval` sampling, and the
    prompts (`data.template`, form, think prefill) and rollout engine its model was trained with."""
    e, d, r = cfg.eval, cfg.data, cfg.rollout
    return {
        "k": e.k,
        "temperature": e.temperature,
        "top_p": e.top_p,
        "max_new_tokens": e.max_new_tokens,
        "seed": cfg.run.seed,
        "template": d.template,
        "form": d.template_form,
        "prefill_think": d.prefill_think,
        "engine": r.engine,
        "dtype": r.dtype,
    }


def evaluate_with_config(model, tokenizer, examples: list[dict], cfg, *, progress: bool = True) -> EvalResult:
    """`evaluate` with `config_settings(cfg)`: what the trainer and the demo evaluate with."""
    settings = config_settings(cfg)
    generate_fn = RolloutEngine(settings.pop("engine"), cfg.rollout.vllm).for_model(model)
    return evaluate(model, tokenizer, examples, **settings, progress=progress, generate_fn=generate_fn)
