"""One self-contained HTML page for a training run: `r1 report RUN_DIR --html` (docs/viewer.md).

The page shows the curves of `make_report` (its PNGs, embedded as base64 data URIs, so the plots
are exactly those of `r1 report`), then the completions of RUN_DIR/samples.jsonl in a table
(think and answer spans marked; filters by step, by a reward/advantage/length range and for
truncated completions only; pages of 50 rows) and two chosen steps side by side. It opens from
disk with no network: CSS and JS (viewer.css, viewer.js next to this file) and the data are
inlined.

Completions are untrusted model output. They travel as JSON inside a
`<script type="application/json">` block with `<`, `>` and `&` written as `\\u003c`…, so no
completion can close that block, and the page's JS only ever puts text into the DOM with
`textContent`: an injected `<script>` shows as text. Python splits each completion into
think/answer/tag/text spans (`split_spans`) so the marking is tested here, not in JS.

Huge runs: at most `max_rows` completions are embedded (the first rows of every logged step,
an equal share per step), each cut to `max_chars` characters (its head and tail, the middle
replaced by a note). Per-step statistics are computed over all rows, before the cap. Left out:
text search, sorting, and charts drawn in the browser (the PNGs are fixed images).
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path
from string import Template

from r1.eval.report import finite_number, make_report, read_jsonl_lenient

MAX_ROWS = 4000  # completions embedded in the page (≈ 4000 × 4 kB = 16 MB at worst)
MAX_CHARS = 4000  # characters kept of one completion (head and tail)
REWARD_PREFIX = "reward/"
_TAG = re.compile(r"</?(?:think|answer)>")
_ASSETS = Path(__file__).parent


def split_spans(text: str) -> list[list[str]]:
    """`text` as [kind, text] spans, kind one of think, answer, tag (the tags themselves), text.

    A `</think>` before any `<think>` means the prompt opened the block (think-prefilled templates),
    so the text before it is thinking. An unclosed block runs to the end (a truncated completion).
    "<think>a</think> <answer>4</answer>" → [tag, <think>], [think, a], [tag, </think>], [text, " "],
    [tag, <answer>], [answer, 4], [tag, </answer>].
    """
    first_open, first_close = text.find("<think>"), text.find("</think>")
    state = "think" if first_close >= 0 and (first_open < 0 or first_close < first_open) else "text"
    spans, pos = [], 0
    for match in _TAG.finditer(text):
        if match.start() > pos:
            spans.append([state, text[pos : match.start()]])
        tag = match.group()
        spans.append(["tag", tag])
        state = "text" if tag.startswith("</") else tag[1:-1]
        pos = match.end()
    if pos < len(text):
        spans.append([state, text[pos:]])
    return spans


def cut_middle(text: str, max_chars: int) -> str:
    """`text` itself when short enough, else its head and tail around a note of how much was cut."""
    if len(text) <= max_chars:
        return text
    half = max_chars // 2
    return f"{text[:half]}\n[… {len(text) - 2 * half} characters cut by the viewer …]\n{text[-half:]}"


def _step(value) -> int | float:
    """A step as the page keys it: 5, not 5.0, so that Python's and JS's string forms agree."""
    return int(value) if float(value).is_integer() else float(value)


def _mean(values: list) -> float | None:
    values = [v for v in (finite_number(v) for v in values) if v is not None]
    return sum(values) / len(values) if values else None


def step_stats(rows: list[dict], reward_keys: list[str]) -> dict:
    """Summary of one step's rows: count, mean length, truncated share, mean advantage and of each reward."""
    stats = {
        "samples": len(rows),
        "mean length": _mean([r.get("length") for r in rows]),
        "truncated share": _mean([float(bool(r.get("truncated"))) for r in rows]) if rows else None,
        "mean advantage": _mean([r.get("advantage") for r in rows]),
    }
    for key in reward_keys:
        stats[f"mean {key}"] = _mean([r.get(key) for r in rows])
    return stats


def _page_row(row: dict, reward_keys: list[str], max_chars: int) -> dict:
    """The fields the page shows of one samples.jsonl row (rewards None when failed or absent)."""
    prompt = row.get("prompt")
    return {
        "step": _step(row["step"]),
        "id": str(row.get("id", "")),
        "gold": "" if row.get("answer") is None else str(row.get("answer")),
        "prompt": cut_middle(prompt, max_chars) if isinstance(prompt, str) else "",
        "length": finite_number(row.get("length")),
        "truncated": bool(row.get("truncated")),
        "advantage": finite_number(row.get("advantage")),
        "rewards": {key: finite_number(row.get(key)) for key in reward_keys},
        "spans": split_spans(cut_middle(row["completion"], max_chars)),
    }


def load_samples(path: Path, max_rows: int = MAX_ROWS, max_chars: int = MAX_CHARS) -> dict:
    """What the page needs from samples.jsonl: rows (capped), steps, reward keys, per-step stats, notes."""
    if not path.is_file():
        return {"rows": [], "steps": [], "reward_keys": [], "stats": {}, "notes": ["no samples.jsonl in this run"]}
    lines, bad = read_jsonl_lenient(path)
    usable = [r for r in lines if finite_number(r.get("step")) is not None and isinstance(r.get("completion"), str)]
    notes = [f"skipped {bad} malformed line(s) (a torn last line is normal for a live run)"] if bad else []
    if len(usable) < len(lines):
        notes.append(f"skipped {len(lines) - len(usable)} line(s) without a numeric step and a completion")
    by_step: dict[int | float, list[dict]] = {}
    for row in usable:
        by_step.setdefault(_step(row["step"]), []).append(row)
    steps = sorted(by_step)
    reward_keys = sorted({k for r in usable for k in r if k.startswith(REWARD_PREFIX)})
    per_step = max(1, max_rows // max(1, len(steps)))
    kept = [row for step in steps for row in by_step[step][:per_step]]
    if len(kept) < len(usable):
        notes.append(f"showing {len(kept)} of {len(usable)} completions: the first {per_step} of each step")
    if not usable:
        notes.append("samples.jsonl holds no usable completions")
    return {
        "rows": [_page_row(r, reward_keys, max_chars) for r in kept],
        "steps": steps,
        "reward_keys": reward_keys,
        "stats": {str(step): step_stats(by_step[step], reward_keys) for step in steps},
        "notes": notes,
    }


def embed_json(value) -> str:
    """`value` as JSON that is safe inside a <script> block: no `<`, `>` or `&` can end or open a tag."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _curves_html(paths: list[Path]) -> str:
    figures = []
    for path in paths:
        if path.suffix != ".png" or not path.is_file():
            continue
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        name = html.escape(path.stem)
        figures.append(
            f'<figure><img alt="{name}" title="click to enlarge" src="data:image/png;base64,{data}">'
            f"<figcaption>{name}</figcaption></figure>"
        )
    if not figures:
        return "<p>No curves: the run has no metrics.jsonl, or it holds no known keys.</p>"
    return '<div class="curves">' + "".join(figures) + "</div>"


def write_viewer(
    run_dir: str | Path,
    out_path: str | Path | None = None,
    *,
    report_paths: list[Path] | None = None,
    max_rows: int = MAX_ROWS,
    max_chars: int = MAX_CHARS,
) -> Path:
    """Write the run's HTML viewer to `out_path` (default RUN_DIR/report.html) and return its path.

    `report_paths`: what `make_report(run_dir)` returned, when the caller already ran it (it is run
    here otherwise, which also writes RUN_DIR/report/).
    """
    run = Path(run_dir)
    paths = make_report(run) if report_paths is None else report_paths
    summary = next((p for p in paths if p.name == "summary.md"), None)
    samples = load_samples(run / "samples.jsonl", max_rows, max_chars)
    page = Template((_ASSETS / "viewer.html").read_text(encoding="utf-8")).substitute(
        title=html.escape(str(run)),
        css=(_ASSETS / "viewer.css").read_text(encoding="utf-8"),
        js=(_ASSETS / "viewer.js").read_text(encoding="utf-8"),
        curves=_curves_html(paths),
        summary=html.escape(summary.read_text(encoding="utf-8")) if summary else "(no summary.md)",
        notes=html.escape("; ".join(samples["notes"])),
        data=embed_json(samples),
    )
    out = Path(out_path) if out_path is not None else run / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
