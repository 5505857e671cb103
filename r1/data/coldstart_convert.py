"""Cold-start data from model outputs: R1-Zero samples or a teacher's answers, rewritten in the R1
format and kept only when correct and readable (R1 stage 1, docs/method.md §5: "cleaned-up R1-Zero outputs").

Inputs are JSONL files in any of three row shapes, told apart per row:
- an `r1 eval` record: `{id, prompt, reference, samples: [{completion, …}, …]}`;
- an `r1 grpo` sample: `{step, id, answer, completion, reward/…}` — it names its prompt only by
  `id`, so the prompts come from a dataset (`prompts`), by default the one in the `config.yaml`
  next to the samples file (the GRPO run's own data settings reproduce the same ids);
- a teacher's output: a question (`question`/`problem`/`prompt`), a `completion`/`response`/
  `output`, and a reference `answer` (or `reference`).

Each completion is rewritten as

    <think>
    {the reasoning, cleaned}
    So the answer is {answer}.
    </think>
    <answer>{answer}</answer>

The reasoning is the think block (everything before the answer when there is none, as in plain
chain-of-thought teachers), with stray tags and end-of-sequence texts removed, trailing spaces
trimmed and runs of blank lines collapsed. The answer is what the rewards extract (the `<answer>`
block, or a `\\boxed{}`). The paper's R1 format puts a summary after the reasoning; here the part
after `</think>` must be the `<answer>` block alone (the format reward allows nothing else there),
so the summary is a one-line conclusion closing the reasoning — added only when the reasoning's
last line does not already state the answer — and the answer block itself.

A rewritten completion is kept when the accuracy reward accepts its answer against the reference,
the format reward accepts its layout, and every readability filter (r1/data/filters.py) passes;
then duplicates and rows over `max_per_prompt` are cut. Every rejection is counted by reason.

Deliberately left out: rewriting the reasoning itself (a model could paraphrase it; the paper had
humans post-process), and judging rows without a reference (`r1 sample` has the judge).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from r1.data.datasets import QUESTION_FIELDS, DataError, json_lines
from r1.data.filters import Filter, curate, first_rejection
from r1.rewards.extract import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN, extract_answer
from r1.rewards import score_completions
from r1.config import load_config
from r1.data.datasets import load_configured
from r1.models import load_tokenizer, resolve
from r1.data.coldstart import write_jsonl
from r1.data.filters import filters_from_settings

COMPLETION_FIELDS = ("completion", "response", "output")
REFERENCE_FIELDS = ("answer", "reference")
EOS_TEXTS = ("<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>", "<｜end▁of▁sentence｜>")
_BLANK_RUNS = re.compile(r"\n{3,}")


def _first_text(row: dict, fields: tuple[str, ...]) -> str | None:
    return next((row[f] for f in fields if isinstance(row.get(f), str) and row[f].strip()), None)


def _reference(row: dict) -> str | None:
    value = next((row[f] for f in REFERENCE_FIELDS if row.get(f) is not None), None)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    return value.strip() if isinstance(value, str) and value.strip() else None


def candidates_from_row(row: dict, default_id: str) -> list[dict]:
    """The (id, prompt, reference, completion) candidates of one input row (see module doc)."""
    row_id = str(row.get("id", default_id))
    if isinstance(row.get("samples"), list):  # an `r1 eval` record
        prompt, reference = _first_text(row, QUESTION_FIELDS), _reference(row)
        return [
            {
                "id": row_id,
                "prompt": prompt,
                "reference": reference,
                "completion": s.get("completion") if isinstance(s, dict) else None,
            }
            for s in row["samples"]
        ]
    return [
        {
            "id": row_id,
            "prompt": _first_text(row, QUESTION_FIELDS),
            "reference": _reference(row),
            "completion": _first_text(row, COMPLETION_FIELDS),
        }
    ]


def read_candidates(paths: list[str | Path]) -> list[dict]:
    """Every candidate of every input file, in file and row order; a corrupt line is an error."""
    found = []
    for path in map(Path, paths):
        if not path.is_file():
            raise DataError(f"samples file not found: {path}")
        for number, row in json_lines(path):
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            found += candidates_from_row(row, default_id=f"{path.stem}-{number}")
    if not found:
        raise DataError(f"no rows in {', '.join(map(str, paths))}")
    return found


def attach_prompts(candidates: list[dict], examples: list[dict]) -> None:
    """Fill in missing prompts (and references) from `examples` by id; an unknown id is an error."""
    by_id = {str(e["id"]): e for e in examples}
    for c in candidates:
        if c["prompt"] is None:
            example = by_id.get(c["id"])
            if example is None:
                raise DataError(
                    f"sample '{c['id']}' has no prompt and the prompt dataset has no example with that id; "
                    "pass the dataset the samples were drawn from (--prompts, with the same "
                    "data.size/data.seed/data.split)"
                )
            c["prompt"] = example["prompt"]
            c["reference"] = c["reference"] or example.get("answer")


def _strip_eos(text: str) -> str:
    text = text.rstrip()
    while text.endswith(EOS_TEXTS):
        text = text[: -len(next(e for e in EOS_TEXTS if text.endswith(e)))].rstrip()
    return text


def clean_reasoning(text: str) -> str:
    """Tags and EOS texts out, trailing spaces trimmed, at most one blank line in a row."""
    for tag in (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE, *EOS_TEXTS):
        text = text.replace(tag, "")
    text = "\n".join(line.rstrip() for line in text.strip().splitlines())
    return _BLANK_RUNS.sub("\n\n", text).strip()


def split_completion(completion: str) -> tuple[str, str] | str:
    """`(reasoning, answer)` of a completion, or the rejection reason (`no_answer`, `no_reasoning`)."""
    text = _strip_eos(completion)
    if THINK_CLOSE in text and THINK_OPEN not in text:
        text = THINK_OPEN + text  # the prompt had opened the think block (think_prefilled)
    answer = extract_answer(text)
    if answer is None:
        return "no_answer"
    if THINK_CLOSE in text:
        start = text.find(THINK_OPEN) + len(THINK_OPEN)
        reasoning = text[start : text.rfind(THINK_CLOSE)]
    else:  # plain chain of thought: everything but the answer block
        open_at = text.find(ANSWER_OPEN)
        close_at = text.find(ANSWER_CLOSE, open_at)
        reasoning = (
            text if open_at < 0 else text[:open_at] + (text[close_at + len(ANSWER_CLOSE) :] if close_at >= 0 else "")
        )
    reasoning = clean_reasoning(reasoning)
    return (reasoning, answer.strip()) if reasoning else "no_reasoning"


def r1_completion(reasoning: str, answer: str) -> str:
    """The R1-format completion (module doc): reasoning, a conclusion line if needed, the answer block."""
    last = reasoning.splitlines()[-1] if reasoning else ""
    if not re.search(rf"(?<![\w.]){re.escape(answer)}(?!\w|\.\d)", last):  # "5" is not stated by "15" or "5.5"
        reasoning += f"\nSo the answer is {answer}."
    return f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}\n{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"


def convert(
    candidates: list[dict], filters: list[tuple[str, Filter]], *, max_per_prompt: int
) -> tuple[list[dict], Counter, dict[str, str]]:
    """Rewrite and select candidates → (SFT rows, rejections by reason, first detail per reason)."""
    rejected, details, pending = Counter(), {}, []
    for c in candidates:
        reason = None
        if not c["completion"]:
            reason = "no_completion"
        elif not c["prompt"]:
            reason = "no_prompt"
        elif not c["reference"]:
            reason = "no_reference"
        else:
            parts = split_completion(c["completion"])
            if isinstance(parts, str):
                reason = parts
            else:
                pending.append(
                    {
                        "id": c["id"],
                        "prompt": c["prompt"],
                        "completion": r1_completion(*parts),
                        "answer": c["reference"],
                    }
                )
        if reason:
            rejected[reason] += 1
            details.setdefault(reason, f"id {c['id']}")
    examples = [{"prompt": row["prompt"], "answer": row["answer"]} for row in pending]
    scores = score_completions([row["completion"] for row in pending], examples, ["accuracy", "format"])
    kept = []
    for i, (row, example) in enumerate(zip(pending, examples)):
        if scores.values["accuracy"][i] != 1.0:
            reason, detail = (
                "incorrect",
                f"id {row['id']}: answer {extract_answer(row['completion'])!r}, reference {row['answer']!r}",
            )
        elif scores.values["format"][i] != 1.0:
            reason, detail = "format", f"id {row['id']}"
        else:
            failed = first_rejection(row["completion"], example, filters)
            if failed is None:
                kept.append(row)
                continue
            reason, detail = failed[0], f"id {row['id']}: {failed[1]}"
        rejected[reason] += 1
        details.setdefault(reason, detail)
    kept, cut = curate(kept, max_per_prompt)
    rejected.update(+cut)
    return kept, rejected, details


def prompt_examples(inputs: list[str | Path], source: str | None, data) -> list[dict]:
    """The dataset that names the samples' prompts: `source` with `data` (a DataConfig) settings,
    else the data of the run whose `config.yaml` sits next to an input file."""
    if source is None:
        config = next(
            (Path(p).parent / "config.yaml" for p in inputs if (Path(p).parent / "config.yaml").is_file()), None
        )
        if config is None:
            raise DataError(
                "these samples name their prompts only by id (an `r1 grpo` samples.jsonl) and no config.yaml sits "
                "next to them; "
                "pass --prompts DATASET"
            )
        data = load_config(config).data
        source = data.source
    return load_configured(data, source=source, quiet=True)


def length_counter(cfg):
    """How the length filter measures a text: `len`, or `model.name`'s tokenizer when it counts tokens
    (loaded only when a length bound is actually set)."""
    s = cfg.sample
    bounded = "length" in s.filters and (s.min_length > 0 or s.max_length is not None)
    if s.length_unit != "tokens" or not bounded:
        return len

    tokenizer = load_tokenizer(resolve(cfg.model.name))
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def coldstart_from_samples(inputs: list[str | Path], output: str | Path, cfg, *, prompts: str | None = None) -> dict:
    """`r1 coldstart convert`: read, rewrite, select, write `output` and `<output>.report.json`; return the report.

    `cfg` is an `r1.config.Config`: `sample.*` sets the filters and `max_per_prompt` (lengths in
    `model.name`'s tokens when `sample.length_unit=tokens`), `data.*` how `prompts` is loaded.
    """
    candidates = read_candidates(inputs)
    if any(c["prompt"] is None for c in candidates):
        attach_prompts(candidates, prompt_examples(inputs, prompts, cfg.data))
    rows, rejected, details = convert(
        candidates, filters_from_settings(cfg.sample, length_counter(cfg)), max_per_prompt=cfg.sample.max_per_prompt
    )
    path = write_jsonl(rows, output)
    report = {
        "inputs": [str(p) for p in inputs],
        "output": str(path),
        "candidates": len(candidates),
        "kept": len(rows),
        "rejected": dict(sorted(rejected.items())),
        "first_rejected": details,
        "filters": list(cfg.sample.filters),
    }
    path.with_suffix(".report.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return report
