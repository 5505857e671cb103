"""Tables and plots: evaluation results side by side (`compare`), a training run's curves (`make_report`).

`compare` reads several `results.json` (from `run_eval`) and writes one markdown table and a
bar chart of pass@1 with its 95% interval. `make_report` (`r1 report RUN_DIR`) reads a
training run's `metrics.jsonl` (one JSON object per step) and `samples.jsonl` (lines with
`step` and `completion`) and plots what it finds: reward (total and per reward), accuracy,
format compliance, KL, mean completion length, and how often completions use reflection
words ("wait", "verify", "等等", "확인"…) — the "aha moment" the paper reports as RL goes on.
Missing files, keys or malformed lines never stop a report: what is missing is listed in
`summary.md`.

Matplotlib runs with the Agg backend (files only, no display).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

# Each plot: (file stem, title, y label, keys — the first key found wins, except "reward", which takes all).
CURVES = [
    ("accuracy", "Accuracy reward", "mean accuracy", ["reward/accuracy", "rewards/accuracy", "accuracy"]),
    ("format", "Format compliance", "mean format reward", ["reward/format", "rewards/format", "format"]),
    ("kl", "KL divergence to the reference policy", "KL", ["kl", "kl/mean", "loss/kl"]),
    (
        "completion_length",
        "Mean completion length",
        "tokens",
        ["completion_len/mean", "completion_length/mean", "completion_len"],
    ),
]
# plotted when the run logged them (no note otherwise): every key found is one line of the plot
OPTIONAL_CURVES = [
    ("heldout", "Periodic held-out evaluation (eval.every_steps)", "share", ["eval/pass@1", "eval/format"]),
    ("entropy", "Policy entropy", "nats per token", ["entropy"]),
    (
        "mismatch",
        "Rollout engine vs trainer log-probs",
        "|Δ log π|",
        ["rollout/mismatch_abs_diff", "rollout/mismatch_abs_diff_max"],
    ),
    (
        "correction",
        "Tokens the mismatch correction touched",
        "share of tokens",
        ["rollout/is_capped_frac", "rollout/is_dropped_frac"],
    ),
]
REWARD_PREFIXES = ("reward/", "rewards/")
EVENT_SUFFIXES = ("_errors", "_timeouts", "_crashes")  # counters from score_completions, not rewards
# Reflection words. Latin ones match whole words case-insensitively ("re-check" is counted once,
# not also as "check"); Chinese/Korean ones are substrings (no spaces between words).
REFLECTION_LATIN = {
    "wait": r"wait",
    "re-check": r"re-?check(?:s|ed|ing)?",
    "check": r"check(?:s|ed|ing)?",
    "verify": r"verif(?:y|ies|ied|ying|ication)",
    "however": r"however",
}
# CJK words with ASCII plot labels (matplotlib's default font has no CJK glyphs).
REFLECTION_CJK = {
    "잠깐": "ko jamkkan (wait)",
    "확인": "ko hwagin (check)",
    "等等": "zh dengdeng (wait)",
    "检查": "zh jiancha (check)",
    "验证": "zh yanzheng (verify)",
}
_LATIN_RE = re.compile(
    r"\b(?:" + "|".join(f"(?P<{re.sub(r'[^a-z]', '_', k)}>{v})" for k, v in REFLECTION_LATIN.items()) + r")\b",
    re.IGNORECASE,
)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ----------------------------------------------------------------------------------------------
# compare: several evaluation results


def _load_result(item) -> dict:
    if isinstance(item, dict):
        return item
    path = Path(item)
    path = path / "results.json" if path.is_dir() else path
    return json.loads(path.read_text(encoding="utf-8"))


def _labels(results: list[dict]) -> list[str]:
    several_benchmarks = len({r.get("benchmark") for r in results}) > 1
    labels = [f"{r['model']} [{r.get('benchmark')}]" if several_benchmarks else str(r["model"]) for r in results]
    return [
        f"{label} #{labels[:i].count(label) + 1}" if labels.count(label) > 1 else label
        for i, label in enumerate(labels)
    ]


def compare(results: list, out_dir: str | Path) -> list[Path]:
    """One table (printed, and written as compare.md) and a pass@1 bar chart (compare.png).

    `results`: paths to `results.json` files or to the folders holding them, or result dicts.
    Returns the paths written.
    """
    from rich.console import Console
    from rich.table import Table

    results = [_load_result(item) for item in results]
    if not results:
        raise ValueError("compare needs at least one result")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = _labels(results)
    header = ["model", "problems × k", "pass@1 (95% CI)", "cons@k (95% CI)", "format", "mean length", "truncated"]
    rows = []
    for label, r in zip(labels, results):
        m = r["metrics"]
        k = m["samples_per_problem"]
        ci = lambda x: f"{x['mean']:.3f} [{x['low']:.3f}, {x['high']:.3f}]"  # noqa: E731
        rows.append(
            [
                label,
                f"{m['problems']} × {k}",
                ci(m["pass@1"]),
                ci(m[f"cons@{k}"]),
                f"{m['format']['mean']:.3f}",
                f"{m['mean_length']:.1f}",
                f"{m['truncated']:.3f}",
            ]
        )
    table = Table(title="pass@1 = mean correctness over k samples per problem; intervals over problems")
    for name in header:
        table.add_column(name)
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    markdown = out / "compare.md"
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(row) + " |" for row in rows
    ]
    markdown.write_text("\n".join(lines) + "\n", encoding="utf-8")

    plt = _plt()
    means = [r["metrics"]["pass@1"]["mean"] for r in results]
    errors = [
        [m - r["metrics"]["pass@1"]["low"] for m, r in zip(means, results)],
        [r["metrics"]["pass@1"]["high"] - m for m, r in zip(means, results)],
    ]  # (2, models): below, above
    fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(results) + 1.5), 4.0))
    ax.bar(range(len(results)), means, yerr=errors, capsize=4, color="tab:blue")
    ax.set_xticks(range(len(results)), labels, rotation=20, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("pass@1 (95% interval)")
    ax.set_title("pass@1 by model")
    fig.tight_layout()
    chart = out / "compare.png"
    fig.savefig(chart, dpi=120)
    plt.close(fig)
    return [markdown, chart]


# ----------------------------------------------------------------------------------------------
# make_report: one training run


def read_jsonl_lenient(path: Path) -> tuple[list[dict], int]:
    """The JSON-object lines of `path`, and how many lines were skipped as malformed."""
    rows, bad = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(row, dict):
            rows.append(row)
        else:
            bad += 1
    return rows, bad


def reflection_counts(text: str) -> dict[str, int]:
    """Occurrences of each reflection word in `text` (module doc). "Wait, re-check" → wait 1, re-check 1."""
    counts = dict.fromkeys([*REFLECTION_LATIN, *REFLECTION_CJK], 0)
    for match in _LATIN_RE.finditer(text):
        counts[next(k for k in REFLECTION_LATIN if match.group(re.sub(r"[^a-z]", "_", k)))] += 1
    for word in REFLECTION_CJK:
        counts[word] += text.count(word)
    return counts


def finite_number(value) -> float | None:
    """`value` as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _series(rows: list[dict], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of `key` over the rows that carry a finite number for it."""
    points = [(row.get("step", i), finite_number(row.get(key))) for i, row in enumerate(rows)]
    points = [(s, v) for s, v in points if v is not None and finite_number(s) is not None]
    return [s for s, _ in points], [v for _, v in points]


def _plot(path: Path, title: str, ylabel: str, lines: dict[str, tuple[list, list]]) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for name, (x, y) in lines.items():
        ax.plot(x, y, label=name, marker="." if len(x) < 50 else None)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(lines) > 1:
        ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def make_report(run_dir: str | Path) -> list[Path]:
    """Plots and `summary.md` for a training run, written to RUN_DIR/report/. Returns the paths."""
    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"run directory not found: {run}")
    if not (run / "metrics.jsonl").is_file() and (run / "grpo" / "metrics.jsonl").is_file():
        run = run / "grpo"  # a `r1 demo` directory: its curves are its GRPO stage's
    out = run / "report"
    out.mkdir(exist_ok=True)
    written, notes, summary = [], [], []
    metrics_path, samples_path = run / "metrics.jsonl", run / "samples.jsonl"
    rows, bad = read_jsonl_lenient(metrics_path) if metrics_path.is_file() else ([], 0)
    if not metrics_path.is_file():
        notes.append("no metrics.jsonl: no training curves")
    if bad:
        notes.append(f"metrics.jsonl: skipped {bad} malformed line(s)")

    keys = sorted({key for row in rows for key in row if finite_number(row[key]) is not None})
    reward_keys = [k for k in keys if k.startswith(REWARD_PREFIXES) and not k.endswith(EVENT_SUFFIXES)]
    if reward_keys:
        lines = {k: _series(rows, k) for k in reward_keys}
        written.append(_plot(out / "reward.png", "Reward (total and per reward)", "mean reward", lines))
        summary += [_describe(k, _series(rows, k)) for k in reward_keys]
    elif rows:
        notes.append("no reward/* keys in metrics.jsonl: no reward plot")
    for stem, title, ylabel, candidates in CURVES:
        key = next((k for k in candidates if k in keys), None)
        if key is None:
            if rows:
                notes.append(f"none of {', '.join(candidates)} in metrics.jsonl: no {stem} plot")
            continue
        written.append(_plot(out / f"{stem}.png", title, ylabel, {key: _series(rows, key)}))
        if key not in reward_keys:
            summary.append(_describe(key, _series(rows, key)))
    for stem, title, ylabel, candidates in OPTIONAL_CURVES:
        found = [k for k in candidates if k in keys]
        if found:
            written.append(_plot(out / f"{stem}.png", title, ylabel, {k: _series(rows, k) for k in found}))
            summary += [_describe(k, _series(rows, k)) for k in found]

    if samples_path.is_file():
        lines = _reflection_lines(_reflection_by_step(samples_path, notes))
        if lines:
            title, ylabel = "Reflection words per completion", "occurrences per completion"
            written.append(_plot(out / "reflection.png", title, ylabel, lines))
            summary.append(_describe("reflection words per completion", lines["all reflection words"]))
    else:
        notes.append("no samples.jsonl: no reflection-word plot")

    text = [f"# Training report: {run}", ""]
    if rows:
        steps = _series(rows, "step")[1] or list(range(len(rows)))
        text += [f"{len(rows)} logged steps ({steps[0]:g} … {steps[-1]:g}).", ""]
    if summary:
        text += ["| metric | first | last | min | max |", "|---|---|---|---|---|", *summary, ""]
    text += [f"![{p.stem}]({p.name})" for p in written] + [""]
    if notes:
        text += ["## Missing", "", *[f"- {note}" for note in notes], ""]
    summary_path = out / "summary.md"
    summary_path.write_text("\n".join(text), encoding="utf-8")
    return [*written, summary_path]


def _reflection_lines(reflection: dict[float, dict[str, float]]) -> dict[str, tuple[list, list]]:
    """Plot lines of reflection-word rates: all words together, and each word that occurs."""
    if not reflection:
        return {}
    steps = sorted(reflection)
    lines = {"all reflection words": (steps, [reflection[s]["total"] for s in steps])}
    for word in [*REFLECTION_LATIN, *REFLECTION_CJK]:
        if any(reflection[s][word] for s in steps):
            lines[REFLECTION_CJK.get(word, word)] = (steps, [reflection[s][word] for s in steps])
    return lines


def _reflection_by_step(path: Path, notes: list[str]) -> dict[float, dict[str, float]]:
    """step → mean occurrences per completion of each reflection word (and their "total")."""
    samples, bad = read_jsonl_lenient(path)
    if bad:
        notes.append(f"samples.jsonl: skipped {bad} malformed line(s)")
    sums: dict[float, dict[str, float]] = {}
    counts: dict[float, int] = {}
    skipped = 0
    for sample in samples:
        step, completion = finite_number(sample.get("step")), sample.get("completion")
        if step is None or not isinstance(completion, str):
            skipped += 1
            continue
        found = reflection_counts(completion)
        found["total"] = sum(found.values())
        total = sums.setdefault(step, dict.fromkeys(found, 0.0))
        for word, count in found.items():
            total[word] += count
        counts[step] = counts.get(step, 0) + 1
    if skipped:
        notes.append(f"samples.jsonl: {skipped} line(s) without a numeric step and a completion")
    if not sums:
        notes.append("samples.jsonl holds no usable samples: no reflection-word plot")
    return {step: {w: v / counts[step] for w, v in words.items()} for step, words in sums.items()}


def _describe(name: str, series: tuple[list, list]) -> str:
    _, values = series
    return f"| {name} | {values[0]:.4g} | {values[-1]:.4g} | {min(values):.4g} | {max(values):.4g} |"
