"""A generative judge: a causal LM reads question, reference and response and writes a verdict.

R1's stage 3 keeps responses whose answers rules cannot check when a generative judge, shown the
reference answer, accepts them (docs/method.md §5); stage 4 scores general prompts with a reward model. Both
need the same thing: `Judge.score(question, response, reference=None) -> float | None`, 1.0 for
"correct", 0.0 for "incorrect", a value in between when the judge wrote a score, None when its
output could not be read. `scores` does the same for a batch in one pass of a rollout engine.

The prompt (`RUBRIC` / `RUBRIC_NO_REFERENCE`) asks for one line `VERDICT: CORRECT` or `VERDICT:
INCORRECT`, and the judge's turn is pre-filled with `VERDICT:` so even a small model only has to
pick a word. `parse_verdict` reads the output robustly, in this order:

1. explicit verdicts: for every `VERDICT` marker, the verdict words on the rest of its line
   (`VERDICT: CORRECT`, `verdict: the response is not correct`, `VERDICT: **No**`) — all the
   words of all the markers must agree;
2. scores with their scale, `score: 7/10`, `8 out of 10`, or a bare `score: 0.8` in [0, 1]
   (a bare `score: 8` has no scale → unreadable) — all must agree;
3. a first line that starts with a verdict word (`Yes, it is correct.`, `Incorrect.`); every
   verdict word of that line must agree (`not` flips the word after it).

Anything else — empty text, garbage, contradictions (`VERDICT: CORRECT … VERDICT: INCORRECT`), a
score without a scale — is None: the caller rejects and counts it. Parsing never raises.

The judge model is any causal LM `r1.models.load_model` loads; generation goes through
`r1.rollout.ENGINES`, batched `batch_size` prompts at a time. Those model-side modules are imported
only when a judge renders or is built, so importing this file (and parsing verdicts) needs nothing
but the standard library, like the rest of `r1.rewards`. Deliberately left out: pairwise comparison,
chain-of-thought judging (the verdict comes first, so a tiny judge cannot talk itself out of the
format), and caching verdicts.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

RUBRIC = (
    "You are grading an answer to a question against the reference answer.\n\n"
    "Question:\n{question}\n\nReference answer:\n{reference}\n\nResponse:\n{response}\n\n"
    "Does the response reach the same final answer as the reference? Ignore differences of wording, "
    "formatting or units. Reply with one line: VERDICT: CORRECT or VERDICT: INCORRECT."
)
RUBRIC_NO_REFERENCE = (
    "You are grading a response to a question.\n\n"
    "Question:\n{question}\n\nResponse:\n{response}\n\n"
    "Is the response a correct and helpful answer to the question? "
    "Reply with one line: VERDICT: CORRECT or VERDICT: INCORRECT."
)
PREFILL = "VERDICT:"
MAX_PARSE_CHARS = 4000  # a verdict is one line; beyond this it is rambling, not a verdict
MAX_FIELD_CHARS = 3000  # question/reference/response shown to the judge, clipped to fit its context

POSITIVE = frozenset({"correct", "right", "yes", "true", "pass", "passed", "accept", "accepted", "equivalent", "valid"})
NEGATIVE = frozenset({"incorrect", "wrong", "no", "false", "fail", "failed", "reject", "rejected", "invalid"})
_WORD = re.compile(r"[a-z]+")
_VERDICT = re.compile(r"verdict", re.IGNORECASE)
_NUMBER = r"(\d+(?:\.\d+)?)"
_SCALED = re.compile(  # "score: 7/10", "rating 7 / 10", "8 out of 10"
    rf"\b(?:score|rating|grade)[\s:=*]{{0,6}}{_NUMBER}\s*(?:/|out\s+of)\s*{_NUMBER}|{_NUMBER}\s+out\s+of\s+{_NUMBER}",
    re.IGNORECASE,
)
_BARE_SCORE = re.compile(
    rf"\b(?:score|rating|grade)[\s:=*]{{0,6}}{_NUMBER}(?!\d|\.\d|\s*(?:/|out\s+of))", re.IGNORECASE
)


def _polarities(segment: str) -> list[float]:
    """1.0/0.0 for each verdict word of `segment`, in order; `not` flips the word after it."""
    values, negated = [], False
    for word in _WORD.findall(segment.lower()):
        if word == "not":
            negated = True
            continue
        if word in POSITIVE or word in NEGATIVE:
            value = 1.0 if word in POSITIVE else 0.0
            values.append(1.0 - value if negated else value)
        negated = False
    return values


def _agree(values: list[float | None]) -> float | None:
    """The common value, or None when any is unreadable or two differ (a contradiction)."""
    if not values or any(v is None for v in values) or len(set(values)) > 1:
        return None
    return values[0]


def _marked(text: str) -> list[float | None]:
    """One value per `verdict` marker: what the rest of its line says (None if it says nothing)."""
    values = []
    for match in _VERDICT.finditer(text):
        end = text.find("\n", match.end())
        values.append(_agree(_polarities(text[match.end() :] if end < 0 else text[match.end() : end])))
    return values


def _scored(text: str) -> list[float | None]:
    values = []
    for a, b, c, d in _SCALED.findall(text):
        got, scale = float(a or c), float(b or d)
        values.append(got / scale if 0 < scale and got <= scale else None)
    if not values:  # a bare score is read only when no scaled one is written, and only in [0, 1]
        values = [float(v) if float(v) <= 1 else None for v in _BARE_SCORE.findall(text)]
    return values


def _opening(text: str) -> list[float]:
    """The verdict words of the first non-empty line, if that line opens with one (or with `not`)."""
    line = next((ln for ln in text.splitlines() if _WORD.search(ln.lower())), "")
    words = _WORD.findall(line.lower())
    if not words or not (words[0] == "not" or words[0] in POSITIVE or words[0] in NEGATIVE):
        return []
    return _polarities(line)


def parse_verdict(text: str | None) -> float | None:
    """The judge's verdict as a score in [0, 1], or None when unreadable (rules in the module doc).

    >>> parse_verdict("VERDICT: CORRECT"), parse_verdict("Score: 3/4"), parse_verdict("No.")
    (1.0, 0.75, 0.0)
    >>> parse_verdict("VERDICT: CORRECT. VERDICT: INCORRECT") is None
    True
    """
    if not isinstance(text, str):
        return None
    text = text[:MAX_PARSE_CHARS]
    for rule in (_marked, _scored, _opening):
        values = rule(text)
        if values:
            return _agree(values)
    return None


def _clip(text: str, limit: int = MAX_FIELD_CHARS, *, keep_end: bool = False) -> str:
    text = str(text).strip()
    if len(text) <= limit:
        return text
    return "…" + text[-limit:] if keep_end else text[:limit] + "…"


def judge_prompt(question: str, response: str, reference: str | None = None) -> str:
    """The rubric with the three fields filled in (a response is clipped to its end, where the
    answer is; a question and reference to their start)."""
    fields = {"question": _clip(question), "response": _clip(response, keep_end=True)}
    if reference is None or not str(reference).strip():
        return RUBRIC_NO_REFERENCE.format(**fields)
    return RUBRIC.format(**fields, reference=_clip(reference))


@dataclass
class Judge:
    """A causal LM as a judge. `generate_fn` has the `r1.rollout.ENGINES` signature; `dtype` is its precision.

    `counts` accumulates `judged` and `unparseable` over every call. `prompt_fn`, `prefill` and
    `parse` default to the verdict rubric; the reward-model judge (r1/rewards/models.py) swaps
    in a 1–10 scoring rubric with the same generation and counting.
    """

    model: object
    tokenizer: object
    generate_fn: Callable
    max_new_tokens: int = 16
    temperature: float = 0.0
    batch_size: int = 16
    dtype: str = "auto"
    form: str = "auto"
    seed: int = 0
    counts: Counter = field(default_factory=Counter)
    prompt_fn: Callable[[str, str, str | None], str] = judge_prompt  # (question, response, reference) → rubric text
    prefill: str = PREFILL  # opens the judge's turn
    parse: Callable[[str], float | None] = parse_verdict  # prefill + output → score, None when unreadable

    def render(self, question: str, response: str, reference: str | None = None) -> list[int]:
        """Token ids of the judge's prompt: the rubric as the user turn, `prefill` (`VERDICT:`) pre-filled."""
        from r1.data.templates import render_prompt

        prompt = render_prompt(
            self.tokenizer, self.prompt_fn(question, response, reference), template="none", form=self.form
        )
        text = prompt.text + (self.prefill if prompt.chat else " " + self.prefill)
        return self.tokenizer(text, add_special_tokens=not prompt.chat)["input_ids"]

    def raw(self, items: list[tuple[str, str, str | None]]) -> list[str]:
        """The judge's outputs (after the pre-filled `VERDICT:`) for (question, response, reference) items."""
        from r1.rollout import Sampling

        prompts = [self.render(*item) for item in items]
        sampling = Sampling(
            n=1, temperature=self.temperature, top_p=1.0, max_new_tokens=self.max_new_tokens, dtype=self.dtype
        )
        outputs: list[str] = []
        for chunk, start in enumerate(range(0, len(prompts), self.batch_size)):
            batch = prompts[start : start + self.batch_size]
            outputs += list(
                self.generate_fn(self.model, self.tokenizer, batch, sampling.but(seed=self.seed + chunk)).texts
            )
        return outputs

    def scores(self, items: list[tuple[str, str, str | None]]) -> list[float | None]:
        """One score per (question, response, reference) item; None = unreadable verdict."""
        if not items:
            return []
        values = [self.parse(self.prefill + " " + text) for text in self.raw(items)]
        self.counts["judged"] += len(values)
        self.counts["unparseable"] += sum(v is None for v in values)
        return values

    def score(self, question: str, response: str, reference: str | None = None) -> float | None:
        """1.0 correct, 0.0 incorrect, a judge-written score in between, None unreadable."""
        return self.scores([(question, response, reference)])[0]


def load_judge(
    name: str,
    *,
    engine: str = "auto",
    dtype: str = "auto",
    max_new_tokens: int = 16,
    temperature: float = 0.0,
    batch_size: int = 16,
    seed: int = 0,
    model=None,
    tokenizer=None,
    device="cpu",
) -> Judge:
    """A `Judge` on model `name` (anything `load_model` takes); pass `model`/`tokenizer` to reuse loaded ones.

    Temperature 0 judges greedily, with every engine.
    """
    from r1.rollout import engine as pick

    if model is None:
        from r1.models import load_model

        model, tokenizer = load_model(name, device=device)
    return Judge(
        model,
        tokenizer,
        pick(engine, model),
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        batch_size=batch_size,
        dtype=dtype,
        seed=seed,
    )
