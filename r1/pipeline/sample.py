"""`r1 sample`: rejection sampling (R1 stage 3, docs/method.md §5) — SFT data from a model's own correct,
readable completions.

For every prompt of `data.source` (any dataset `r1.data` loads, or a JSONL file whose rows may
lack a reference answer), draw `sample.k` completions with the evaluation harness (rollout engine
`rollout.engine`, sampling settings `rollout.temperature/top_p/max_new_tokens`), which scores them
with the rule rewards (accuracy, format, language). A completion is kept when none of these, in
order, rejects it — the first that does is its counted reason:

1. `truncated`: no stop token within `rollout.max_new_tokens`;
2. `format`: the format reward is not 1 (when `sample.require_format`);
3. `incorrect`: the prompt has a reference and the accuracy reward is not 1;
4. a readability filter of `sample.filters` (r1/data/filters.py), counted under its name;
5. `uncheckable`: no reference answer, or the accuracy reward failed on it. With a judge model
   (`sample.judge`) such completions go to the generative judge (r1/rewards/judge.py), shown the
   question, the reference if any and the response's part after the reasoning; it keeps them,
   or rejects them as `judge_incorrect` / `judge_unparseable`. Without one they are rejected.

Readability comes before the judge so the judge only reads candidates worth keeping. Finally
duplicates and completions over `sample.max_per_prompt` per prompt are cut (`duplicate`,
`over_max_per_prompt`), so `samples = kept + sum(rejected)` always holds.

Output, in `run.output_dir`: `sft.jsonl` (`{id, prompt, completion, answer}` rows for `r1 sft`,
which renders the prompt with `data.template`; train with the same template), `report.json` and
`report.md` (kept, rejections by reason with a first example each), and `config.yaml`.

Resume: prompts are processed in chunks of `sample.chunk_prompts`; each finished chunk is one
line of `progress.jsonl` (its prompt ids, candidate rows and counts), written with fsync. Running
again in the same directory skips finished chunks (a torn last line from a kill is dropped and
its chunk redone), refuses a changed config or prompt set, and does nothing at all once
`report.json` — written last — exists. Chunk c samples with seed `run.seed + 100003·c`, so an
interrupted and resumed run produces what an uninterrupted one does.

Deliberately left out: the paper's non-reasoning data (writing, factual QA, translation) and its
DeepSeek-V3 prompting, and sampling until m correct completions are found per prompt.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

import yaml

from r1.config import Config, ConfigError, to_dict
from r1.data import DataError, load_configured, prepare_prompts
from r1.data.datasets import BUNDLED, QUESTION_FIELDS, to_example
from r1.data.filters import curate, filters_from_settings, first_rejection
from r1.rewards.extract import after_think, apply_prefill
from r1.pipeline.manifest import write_atomic
from r1.rewards.registry import excerpt
from r1.models import load_model
from r1.progress import Progress
from r1.rollout import RolloutEngine
from r1.train import distributed as dist
from r1.train.run import console, start_run
from r1.rewards.judge import load_judge
from r1.eval.harness import evaluate

CHUNK_SEED_STRIDE = 100_003  # chunk c samples with seed run.seed + c·stride: chunks never share a stream
ACCEPT = 0.5  # a judge score at or above this keeps the completion
UNCOMPARED = ("threads", "resume")  # run settings that may change between a run and its resumption


def load_prompts(d) -> list[dict]:
    """`data.source` as examples. Unlike `load_examples`, a JSONL file may have rows without a
    reference answer: they become examples with `answer: None`, for the judge."""
    path = Path(d.source).expanduser()
    if d.source in BUNDLED or d.source == "arithmetic" or not (d.source.endswith(".jsonl") or path.is_file()):
        return load_configured(d)
    if not path.is_file():
        raise DataError(f"prompt file not found: {path}")
    examples = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            text = raw.decode("utf-8").strip()
            row = json.loads(text) if text else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DataError(f"{path}:{number}: not valid UTF-8 JSON ({type(err).__name__})") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        example = (
            _prompt_row(row, d.question_field, d.answer_field, default_id=f"{path.stem}-{number}") if row else None
        )
        if example is not None:
            examples.append(example)
    if not examples:
        raise DataError(
            f"{path}: no row has a question (field '{d.question_field or '/'.join(QUESTION_FIELDS)}'); set "
            "data.question_field"
        )
    return examples[: d.limit] if d.limit is not None else examples


def _prompt_row(row: dict, question_field: str | None, answer_field: str | None, default_id: str) -> dict | None:
    """A row as an example (`to_example`), or as one with `answer: None` when only the answer is missing."""
    example = to_example(row, question_field, answer_field, default_id)
    if example is not None:
        return example
    fields = (question_field,) if question_field else QUESTION_FIELDS
    question = next((row[f] for f in fields if isinstance(row.get(f), str) and row[f].strip()), None)
    return (
        None if question is None else {**row, "id": str(row.get("id", default_id)), "prompt": question, "answer": None}
    )


def rule_reason(sample: dict, text: str, example: dict, filters, *, require_format: bool) -> tuple[str, str] | None:
    """The first rule rejecting a scored sample (module doc, steps 1–5) as (reason, detail), or None."""
    rewards = sample["rewards"]
    if sample["truncated"]:
        return "truncated", f"{sample['length']} tokens"
    if require_format and rewards.get("format") != 1.0:
        return "format", excerpt(text, 120)
    checkable = example.get("answer") is not None and rewards.get("accuracy") is not None
    if checkable and rewards["accuracy"] != 1.0:
        return "incorrect", f"answer {sample.get('answer')!r}, reference {example['answer']!r}"
    failed = first_rejection(text, example, filters)
    if failed is not None:
        return failed
    return (
        None
        if checkable
        else ("uncheckable", "no reference answer" if example.get("answer") is None else "accuracy reward failed")
    )


def select(records: list[dict], examples: list[dict], filters, judge=None, *, require_format: bool = True) -> dict:
    """Decide every sample of one chunk (module doc) → {"rows", "rejected", "details", "judged"}.

    `records` are `evaluate`'s per-prompt records, in the order of `examples`.
    """
    decisions, pending = [], []  # (example, text, reason or None to keep, judge score); indices for the judge
    for record, example in zip(records, examples):
        for sample in record["samples"]:
            text = apply_prefill(sample["completion"], example)
            reason = rule_reason(sample, text, example, filters, require_format=require_format)
            if reason is not None and reason[0] == "uncheckable" and judge is not None:
                pending.append(len(decisions))
            decisions.append((example, text, reason, None))
    if pending:
        items = [
            (decisions[i][0]["prompt"], after_think(decisions[i][1]) or decisions[i][1], decisions[i][0].get("answer"))
            for i in pending
        ]
        for i, score in zip(pending, judge.scores(items)):
            example, text, _, _ = decisions[i]
            if score is None:
                reason = ("judge_unparseable", "unreadable verdict")
            else:
                reason = None if score >= ACCEPT else ("judge_incorrect", f"score {score:.2f}")
            decisions[i] = (example, text, reason, score)
    rows, rejected, details = [], Counter(), {}
    for example, text, reason, score in decisions:
        if reason is None:
            rows.append(
                {
                    "id": example.get("id"),
                    "prompt": example["prompt"],
                    "completion": text,
                    "answer": example.get("answer"),
                    **({"judge": score} if score is not None else {}),
                }
            )
        else:
            rejected[reason[0]] += 1
            details.setdefault(reason[0], f"{example.get('id')}: {reason[1]}")
    return {"rows": rows, "rejected": dict(rejected), "details": details, "judged": len(pending)}


# ---------------------------------------------------------------------------------------------
# The run directory: progress.jsonl (one line per finished chunk), then sft.jsonl and the report


def read_progress(path: Path) -> list[dict]:
    """Finished chunk records. A torn last line (killed mid-write) is cut off the file and dropped."""
    if not path.is_file():
        return []
    raw = path.read_bytes()
    lines, done, offset = raw.split(b"\n"), [], 0
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line) if line.strip() else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            if number < len(lines) - (not lines[-1]):  # not the last line: corruption, not a torn write
                raise DataError(f"{path}:{number}: corrupt progress line; delete the folder to start over") from None
            with open(path, "r+b") as handle:
                handle.truncate(offset)
            break
        if record is not None:
            done.append(record)
        offset += len(line) + 1
    return done


def append_line(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def changed_settings(saved_path: Path, cfg: Config, ignore: tuple[str, ...] = UNCOMPARED) -> list[str]:
    """The dotted keys whose value in `cfg` differs from the saved config.yaml (`run.<ignore>` aside).

    An `auto` precision matches what it was resolved to in the saved file (r1/precision.py)."""
    saved, current = (
        yaml.safe_load(saved_path.read_text(encoding="utf-8")) or {},
        yaml.safe_load(yaml.safe_dump(to_dict(cfg))),
    )
    for settings in (saved, current):
        for key in ignore:
            settings.get("run", {}).pop(key, None)
    for section, key in (("rollout", "dtype"), ("train", "bf16")):
        if current[section][key] == "auto" and key in saved.get(section, {}):
            current[section][key] = saved[section][key]
    return sorted(
        f"{section}.{key}"
        for section in current
        for key in current[section]
        if saved.get(section, {}).get(key) != current[section][key]
    )


def check_same_config(out: Path, cfg: Config) -> None:
    """A resumed run must be the same run: its saved config.yaml equals this one (bar UNCOMPARED)."""
    saved_path = out / "config.yaml"
    if not (out / "progress.jsonl").is_file() or not saved_path.is_file():
        return
    changed = changed_settings(saved_path, cfg)
    if changed:
        raise ConfigError(
            f"{out} holds an unfinished `r1 sample` run with other settings ({', '.join(changed)}); "
            "rerun with the same settings to resume it, or choose another run.output_dir"
        )


def finish(out: Path, chunks: list[dict], cfg: Config, seconds: float) -> dict:
    """Cut duplicates and extras, write sft.jsonl, report.md and — last, the finished marker — report.json."""
    rows, cut = curate([row for chunk in chunks for row in chunk["rows"]], cfg.sample.max_per_prompt)
    rejected = sum((Counter(chunk["rejected"]) for chunk in chunks), Counter()) + cut
    details = {}
    for chunk in chunks:
        for reason, detail in chunk["details"].items():
            details.setdefault(reason, detail)
    write_atomic(out / "sft.jsonl", "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    prompts = sum(len(chunk["ids"]) for chunk in chunks)
    report = {
        "finished": True,
        "model": cfg.model.name,
        "prompts_source": cfg.data.source,
        "prompts": prompts,
        "samples": prompts * cfg.sample.k,
        "kept": len(rows),
        "prompts_with_kept": len({row["id"] for row in rows}),
        "rejected": dict(sorted(rejected.items(), key=lambda kv: -kv[1])),
        "first_rejected": details,
        "judged": sum(chunk["judged"] for chunk in chunks),
        "teacher_tokens": sum(chunk.get("teacher_tokens", 0) for chunk in chunks),  # prompt + sampled, all chunks
        "judge": cfg.sample.judge,
        "reward_events": dict(sum((Counter(chunk.get("events", {})) for chunk in chunks), Counter())),
        "sft": str(out / "sft.jsonl"),
        "template": cfg.data.template,
        "seconds_this_run": round(seconds, 1),
    }
    write_atomic(out / "report.md", report_markdown(report))
    write_atomic(out / "report.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return report


def report_markdown(report: dict) -> str:
    lines = [
        f"# Rejection sampling: {report['model']} on {report['prompts_source']}",
        "",
        f"{report['prompts']} prompts × {report['samples'] // max(report['prompts'], 1)} samples = "
        f"{report['samples']} samples; "
        f"**kept {report['kept']}** ({report['kept'] / max(report['samples'], 1):.1%}) for "
        f"{report['prompts_with_kept']} prompts; "
        f"{report['judged']} sent to the judge ({report['judge'] or 'none'}).",
        "",
        "| rejected because | samples | first example |",
        "|---|---:|---|",
    ]
    for reason, count in report["rejected"].items():
        detail = report["first_rejected"].get(reason, "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {reason} | {count} | {detail} |")
    lines += ["", f"SFT data: `{report['sft']}` (train with `data.template={report['template']}`)", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The command


def run_sample(cfg: Config, *, generate_fn=None, judge=None, progress: bool = True) -> dict:
    """Rejection-sample as configured (module doc) and return the report. `generate_fn` replaces
    the rollout engine and `judge` the configured judge (tests script both)."""
    start = time.perf_counter()
    out = Path(cfg.run.output_dir or f"runs/sample-{time.strftime('%Y%m%d-%H%M%S')}")
    if (out / "report.json").is_file():
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        console.print(
            f"{out} is finished (report.json): kept {report['kept']} of {report['samples']} samples; nothing to do "
            "(other settings need another run.output_dir)"
        )
        return report
    cfg.run.output_dir = str(out)
    check_same_config(out, cfg)
    start_run(cfg, "sample")
    s, d = cfg.sample, cfg.data
    model, tokenizer = load_model(cfg.model.name, dtype=cfg.model.dtype, device=dist.device(cfg.run.device))
    prompts = dict(template=d.template, form=d.template_form, prefill_think=d.prefill_think)
    examples = prepare_prompts(
        load_prompts(d), tokenizer, **prompts, max_prompt_tokens=d.max_prompt_tokens, on_overlong=d.on_overlong_prompt
    )
    generate_fn = generate_fn or RolloutEngine(cfg.rollout.engine, cfg.rollout.vllm).for_model(model)
    judge = judge if judge is not None or not s.judge else configured_judge(cfg, model, tokenizer)
    count = (
        (lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])) if s.length_unit == "tokens" else len
    )
    filters = filters_from_settings(s, count)
    progress_path = out / "progress.jsonl"
    chunks = read_progress(progress_path)
    starts = range(0, len(examples), s.chunk_prompts)
    if len(chunks) > len(starts):
        raise DataError(
            f"{progress_path} has {len(chunks)} finished chunks but {d.source} gives only {len(starts)}; use "
            "another run.output_dir"
        )
    bar = Progress("sample chunk", len(starts), unit="chunk", begin=len(chunks))  # the ETA counts this run's chunks
    for index, begin in enumerate(starts):
        part = examples[begin : begin + s.chunk_prompts]
        ids = [str(e.get("id")) for e in part]
        if index < len(chunks):
            if chunks[index]["ids"] != ids:
                raise DataError(
                    f"{progress_path}: chunk {index} was made from other prompts than {d.source} gives now; use "
                    "another run.output_dir"
                )
            continue
        chunks.append(sample_chunk(cfg, model, tokenizer, part, index, generate_fn, filters, judge, progress))
        append_line(progress_path, chunks[-1])
        passed = f"{len(chunks[-1]['rows'])}/{len(part) * s.k}"  # before dedup and the per-prompt cap
        bar.update(index + 1, passed=passed, rejected=chunks[-1]["rejected"])
    report = finish(out, chunks, cfg, time.perf_counter() - start)
    console.print(
        f"kept {report['kept']} of {report['samples']} samples → {report['sft']}; report: {out / 'report.md'}"
    )
    return report


def configured_judge(cfg: Config, model, tokenizer):
    """The judge `sample.judge` names (the policy itself, sharing its weights, when it names the policy)."""
    s, r, same = cfg.sample, cfg.rollout, cfg.sample.judge == cfg.model.name
    return load_judge(
        s.judge,
        engine=r.engine,
        dtype=r.dtype,
        max_new_tokens=s.judge_max_new_tokens,
        temperature=s.judge_temperature,
        seed=cfg.run.seed,
        model=model if same else None,
        tokenizer=tokenizer if same else None,
        device=model.device,
    )


def sample_chunk(cfg: Config, model, tokenizer, part, index, generate_fn, filters, judge, progress) -> dict:
    """Sample and filter chunk `index` (the prompts `part`) → its progress.jsonl record."""
    s, r = cfg.sample, cfg.rollout
    result = evaluate(
        model,
        tokenizer,
        part,
        k=s.k,
        temperature=r.temperature,
        top_p=r.top_p,
        max_new_tokens=r.max_new_tokens,
        seed=cfg.run.seed + CHUNK_SEED_STRIDE * index,
        batch_size=s.batch_size,
        progress=progress,
        generate_fn=generate_fn,
        dtype=r.dtype,
    )
    chosen = select(result.records, part, filters, judge, require_format=s.require_format)
    events = {k: v for k, v in result.metrics["reward_events"].items() if isinstance(v, int)}
    tokens = result.timings.get("model_tokens", 0)  # through the teacher: prompts and sampled tokens
    ids = [str(e.get("id")) for e in part]
    return {"chunk": index, "ids": ids, **chosen, "events": events, "teacher_tokens": tokens}
