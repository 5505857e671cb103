"""Prompt datasets: lists of examples with a question (`prompt`) and a reference `answer`.

An example is a plain dict: `id`, `prompt` (the question text), `answer` (the reference final
answer, a string), plus every other field of the source row (MATH-500's `subject` and `level`,
a `language`, test cases…), passed through untouched to the rewards.

Sources, by name:
- bundled benchmarks `gsm8k` (test), `gsm8k-train`, `math500`, `aime24` — JSONL files shipped
  inside the package (see bundled/SOURCES.md for origins and licenses);
- the bundled code benchmark `humaneval` (`code_task`): the prompt asks for the function in a
  ```python block; `entry_point`, `test` and the original prompt (`code_prompt`) ride along for
  the `code` reward (r1/rewards/code.py), which the example names in `reward`;
- `arithmetic`, the procedural task of r1/data/arithmetic.py;
- any `.jsonl` file, with configurable question/answer field names;
- otherwise a Hugging Face hub dataset id (needs the `datasets` package and network).

GSM8K-style answers (a worked solution ending in `#### 1,234`) are reduced to the text after the
last `####` with thousands separators removed; the full text is kept as `solution`.

Rows with `kind: general` (writing, factual QA, … — `general`, the bundled set of them, routed to
reward models in all-scenario RL) need no answer and then have no `answer` field. Other rows
without a question or answer are skipped and counted (the count is printed). A line that
is not valid UTF-8 JSON object is an error naming the file and line — silently dropping data is
worse than stopping — and so is a file in which no row is usable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

from r1.data.arithmetic import make_problems, unseen

BUNDLED_DIR = Path(__file__).parent / "bundled"
BUNDLED = {  # name -> (file, question field)
    "gsm8k": ("gsm8k_test.jsonl", "question"),
    "gsm8k-train": ("gsm8k_train.jsonl", "question"),
    "math500": ("math500_test.jsonl", "problem"),
    "aime24": ("aime24_test.jsonl", "problem"),
    "general": ("general_prompts.jsonl", "prompt"),  # kind=general, no answers: scored by reward models
}
QUESTION_FIELDS = ("question", "problem", "prompt")  # tried in order when none is configured
CODE_TASKS = {"humaneval": "humaneval_test.jsonl"}  # rows: task_id, prompt, entry_point, canonical_solution, test
CODE_QUESTION = (
    "Complete the following Python function. Reply with the complete function, including the imports it "
    "needs, in a single ```python code block.\n\n```python\n{prompt}```"
)


class DataError(ValueError):
    """Unusable input data; the message names the file and line."""


def load_examples(
    source: str,
    *,
    split: str = "train",
    question_field: str | None = None,
    answer_field: str | None = None,
    limit: int | None = None,
    size: int = 2000,
    seed: int = 0,
    arithmetic: dict | None = None,
    quiet: bool = False,
) -> list[dict]:
    """Load examples from a bundled name, `arithmetic`, a JSONL path or a hub id (module doc)."""
    if source == "arithmetic":
        examples = make_problems(size, seed=seed, split=split, **(arithmetic or {}))
        return examples[:limit] if limit is not None else examples
    if source in CODE_TASKS:
        examples, skipped = read_jsonl(BUNDLED_DIR / CODE_TASKS[source], "prompt", "canonical_solution", name=source)
        examples = [code_task(e) for e in examples]
    elif source in BUNDLED:
        filename, default_question = BUNDLED[source]
        path, question_field = BUNDLED_DIR / filename, question_field or default_question
        examples, skipped = read_jsonl(path, question_field, answer_field, name=source)
    elif source.endswith(".jsonl") or Path(source).is_file():
        path = Path(source).expanduser()
        if not path.is_file():
            raise DataError(f"dataset file not found: {path}")
        examples, skipped = read_jsonl(path, question_field, answer_field)
    else:
        examples, skipped = _from_hub(source, split, question_field, answer_field)
    if skipped and not quiet:
        print(f"[r1] {source}: skipped {skipped} row(s) without a question or answer")
    return examples[:limit] if limit is not None else examples


def load_configured(d, *, source: str | None = None, quiet: bool = False) -> list[dict]:
    """`load_examples` with the settings of a DataConfig `d` (its `source`, unless another is given)."""
    return load_examples(
        d.source if source is None else source,
        split=d.split,
        question_field=d.question_field,
        answer_field=d.answer_field,
        limit=d.limit,
        size=d.size,
        seed=d.seed,
        arithmetic=vars(d.arithmetic),
        quiet=quiet,
    )


def unseen_heldout(d, size: int, *, seed: int, phrasing: str = "standard") -> list[dict]:
    """`size` arithmetic test problems (seed `seed`) in the shape of DataConfig `d`'s whose calculations
    the training data `d` never shows in any phrasing: genuinely new problems, not new texts of seen
    ones (~15% of test problems share their worked steps with a training problem written in the other
    style). `phrasing="alternate"`: the other family of templates (r1/data/arithmetic.py)."""
    a = {**vars(d.arithmetic), "phrasing": phrasing}
    candidates = load_examples("arithmetic", split="test", size=2 * size, seed=seed, arithmetic=a)
    kept = unseen(candidates, load_configured(d, source="arithmetic", quiet=True))
    if len(kept) < size:
        raise DataError(f"only {len(kept)} held-out arithmetic problems are unseen by training; ask for fewer")
    return kept[:size]


def json_lines(path: Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed value) for every non-blank line of a JSONL file; a line that is not
    UTF-8 JSON is a DataError naming the file and line."""
    for number, raw in enumerate(Path(path).read_bytes().splitlines(), start=1):
        try:
            text = raw.decode("utf-8").strip()
            value = json.loads(text) if text else None
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DataError(f"{path}:{number}: not valid UTF-8 JSON ({type(err).__name__})") from None
        if text:
            yield number, value


def read_jsonl(
    path: Path, question_field: str | None, answer_field: str | None, name: str | None = None
) -> tuple[list[dict], int]:
    """Read a JSONL file of problems. Returns (examples, number of rows skipped)."""
    rows = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8").strip()
                if not line:
                    continue
                row = json.loads(line)
            except UnicodeDecodeError:
                raise DataError(f"{path}:{number}: not valid UTF-8") from None
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{number}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            rows.append((number, row))
    return _examples(rows, question_field, answer_field, name or path.stem, where=str(path))


def _examples(
    rows: Iterable[tuple[int, dict]], question_field, answer_field, name: str, where: str
) -> tuple[list[dict], int]:
    examples, skipped, total = [], 0, 0
    for number, row in rows:
        total += 1
        example = to_example(row, question_field, answer_field, default_id=f"{name}-{number}")
        if example is None:
            skipped += 1
        else:
            examples.append(example)
    if total and not examples:
        fields = (
            f"question field '{question_field or '/'.join(QUESTION_FIELDS)}', answer field '{answer_field or 'answer'}'"
        )
        raise DataError(
            f"{where}: none of its {total} rows has both a question and an answer ({fields}); set "
            "data.question_field / data.answer_field"
        )
    if not total:
        raise DataError(f"{where}: contains no rows")
    return examples, skipped


def to_example(row: dict, question_field: str | None, answer_field: str | None, default_id: str) -> dict | None:
    """One source row as an example, or None when it lacks a question or an answer."""
    fields = (question_field,) if question_field else QUESTION_FIELDS
    question = next((row[f] for f in fields if isinstance(row.get(f), str) and row[f].strip()), None)
    answer = row.get(answer_field or "answer")
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        answer = str(answer)
    if question is not None and row.get("kind") == "general" and not (isinstance(answer, str) and answer.strip()):
        # a general prompt (writing, QA, …) is scored by reward models (r1/rewards/models.py): no reference answer
        return {
            **{k: v for k, v in row.items() if k != (answer_field or "answer")},
            "id": str(row.get("id", default_id)),
            "prompt": question,
        }
    if question is None or not isinstance(answer, str) or not answer.strip():
        return None
    example = dict(row)
    if "####" in answer:
        example.setdefault("solution", answer)
        answer = gsm8k_final_answer(answer)
    example.update(id=str(row.get("id", row.get("task_id", default_id))), prompt=question, answer=answer.strip())
    return example


def code_task(example: dict) -> dict:
    """A HumanEval row as a chat question for the `code` reward; the reference answer is the full solution."""
    original = example["code_prompt"] = example["prompt"]
    example.update(
        prompt=CODE_QUESTION.format(prompt=original), answer=original + example["canonical_solution"], reward="code"
    )
    return example


def gsm8k_final_answer(text: str) -> str:
    """`'… so she makes $18.\\n#### 1,018'` → `'1018'`: the text after the last `####`, no commas."""
    return text.rsplit("####", 1)[1].strip().replace(",", "")


def _from_hub(source: str, split: str, question_field, answer_field) -> tuple[list[dict], int]:
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"'{source}' is not a bundled dataset ({', '.join([*BUNDLED, *CODE_TASKS, 'arithmetic'])}) nor an "
            "existing file; "
            "to load it from the Hugging Face hub install `datasets` (pip install datasets)"
        ) from None
    try:
        table = datasets.load_dataset(source, split=split)
    except Exception as err:  # the hub client raises many types; all mean "could not load"
        raise DataError(f"could not load hub dataset '{source}' (split '{split}'): {err}") from None
    return _examples(enumerate(table, start=1), question_field, answer_field, source.replace("/", "_"), where=source)
