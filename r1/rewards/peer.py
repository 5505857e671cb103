"""Peer agreement: `r1 bench rewards peer FILE.jsonl` scores answer pairs somebody else labelled.

Each line of FILE is ``{"reference": …, "prediction": …, "expected": true|false}`` (an optional
``"source"`` names where the case comes from). The prediction is what a model wrote as its final
answer: it is scored the way training scores it, by ``REWARDS["accuracy"]`` on
``<think>…</think><answer>{prediction}</answer>`` (a prediction that closes a think block itself is a
whole model output and scored as written) — extraction (a box inside the block wins),
normalization, the hedge rules and math-verify, all of it. The report gives agreement with
``expected``, the false positives (scored 1, labelled wrong: the costly kind in RL, a reward a
policy can learn to exploit), the false negatives, the slowest case and every disagreement. The
same pairs are also put to math-verify directly (its default ``parse``/``verify``), so the two
figures can be read side by side.

``r1/rewards/peer_cases.jsonl`` is a small file of cases written for this project, one or more
per rule of docs/rewards.md; ``scripts/peer_cases.py`` builds a file from a checker library's own
test tables (math-verify's, from its source release). Rows that are not a JSON object with a
string reference, a string prediction and a boolean expected are skipped and counted, with the
first line number said.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from . import REWARDS

EXAMPLE = Path(__file__).resolve().parent / "peer_cases.jsonl"
SHORT = 120  # characters: a prediction up to this long is an answer, longer ones are mostly whole solutions


class PeerFileError(ValueError):
    """A peer file that cannot be read: missing, or without one valid case."""


@dataclass
class Case:
    reference: str
    prediction: str
    expected: bool
    source: str = ""
    scored: bool | None = None  # r1's verdict
    peer: bool | None = None  # math-verify's verdict, when asked
    seconds: float = 0.0


def load_cases(path: Path) -> tuple[list[Case], list[str]]:
    """The valid cases of a JSONL file and a message per skipped line."""
    cases, skipped = [], []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                skipped.append(f"line {number}: not JSON ({err.msg})")
                continue
            ok = isinstance(row, dict) and all(isinstance(row.get(k), str) for k in ("reference", "prediction"))
            if not ok or not isinstance(row.get("expected"), bool):
                skipped.append(f"line {number}: needs a string reference, a string prediction and a boolean expected")
                continue
            cases.append(Case(row["reference"], row["prediction"], row["expected"], str(row.get("source", ""))))
    return cases, skipped


def as_completion(prediction: str) -> str:
    """The completion a prediction stands for: its own text when it is a whole model output (it closes a
    think block itself), else the answer block of one."""
    return prediction if "</think>" in prediction else f"<think>…</think><answer>{prediction}</answer>"


def score_r1(case: Case) -> None:
    start = time.perf_counter()
    completion = as_completion(case.prediction)
    case.scored = REWARDS["accuracy"](completion, {"answer": case.reference}) == 1.0
    case.seconds = time.perf_counter() - start


def score_peer(case: Case) -> None:
    """math-verify with its defaults; an error in it counts as 'not equal' (as its verify does)."""
    from math_verify import parse, verify

    try:
        case.peer = bool(verify(parse(case.reference), parse(case.prediction)))
    except Exception:  # noqa: BLE001 (a peer's failure on one case is that case's verdict)
        case.peer = False


def agreement(cases: list[Case], verdict: str) -> dict:
    """Agreement rate, false positives and false negatives of one checker's verdicts."""
    fp = [c for c in cases if getattr(c, verdict) and not c.expected]
    fn = [c for c in cases if not getattr(c, verdict) and c.expected]
    n = len(cases)
    return {
        "n": n,
        "agreement": (n - len(fp) - len(fn)) / n if n else float("nan"),
        "false_positives": len(fp),
        "false_negatives": len(fn),
    }


def _short(text: str, width: int = 70) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def peer_bench(path: str | Path, with_peer: bool = True) -> dict:
    """Score every case of `path`; print the report and a SUMMARY line; return the figures."""
    path = Path(path)
    if not path.is_file():
        raise PeerFileError(f"no such file: {path} (a JSONL file of reference/prediction/expected rows)")
    cases, skipped = load_cases(path)
    for message in skipped[:1]:
        print(f"skipped {len(skipped)} line(s); first: {message}")
    if not cases:
        raise PeerFileError(f"{path}: no valid case" + (f" ({skipped[0]})" if skipped else ""))
    for case in cases:
        score_r1(case)
        if with_peer:
            score_peer(case)
    ours = agreement(cases, "scored")
    print(
        f"r1 accuracy reward: {ours['agreement']:.1%} agreement on {ours['n']} cases; "
        f"{ours['false_positives']} false positives, {ours['false_negatives']} false negatives"
    )
    short = [c for c in cases if len(c.prediction) <= SHORT]
    if 0 < len(short) < len(cases):  # a whole derivation as the answer block is rare in RL; said apart
        part = agreement(short, "scored")
        print(
            f"  on the {part['n']} predictions of ≤ {SHORT} characters: {part['agreement']:.1%} "
            f"({part['false_positives']} false positives, {part['false_negatives']} false negatives)"
        )
    theirs = agreement(cases, "peer") if with_peer else None
    if theirs:
        print(
            f"math-verify direct: {theirs['agreement']:.1%} agreement; "
            f"{theirs['false_positives']} false positives, {theirs['false_negatives']} false negatives"
        )
    slowest = max(cases, key=lambda c: c.seconds)
    print(
        f"slowest case: {slowest.seconds * 1000:.0f} ms  "
        f"{_short(slowest.reference, 30)!r} vs {_short(slowest.prediction, 50)!r}"
    )
    wrong = [c for c in cases if c.scored != c.expected]
    for c in wrong:
        kind = "FALSE POSITIVE" if c.scored else "false negative"
        print(f"  {kind}: {_short(c.reference, 40)!r} vs {_short(c.prediction)!r}  [{c.source}]")
    print(
        f"SUMMARY n={ours['n']} agreement={ours['agreement']:.4f} false_positives={ours['false_positives']} "
        f"false_negatives={ours['false_negatives']} skipped={len(skipped)}"
        + (f" peer_agreement={theirs['agreement']:.4f}" if theirs else "")
    )
    return {
        "r1": ours,
        "peer": theirs,
        "skipped": len(skipped),
        "slowest_s": slowest.seconds,
        "disagreements": [vars(c) for c in wrong],
    }
