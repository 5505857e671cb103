"""The equivalence rules for answers written in other people's forms, table-driven from the shipped peer
file, and `r1 bench rewards peer`.

Each row of r1/rewards/peer_cases.jsonl is one rule of docs/rewards.md in one direction (equal and
not-equal variants of relations, intervals, collections, number formats, sentences, hedges). They
are scored as training scores them, from the main thread and from a worker thread."""

import json
import threading

import pytest

from r1 import cli
from r1.rewards import REWARDS, answers_equivalent
from r1.rewards.parts import parts, sentence_value, values
from r1.rewards.peer import EXAMPLE, load_cases, peer_bench

CASES = [json.loads(line) for line in EXAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]


def scored(case: dict) -> bool:
    completion = f"<think>…</think><answer>{case['prediction']}</answer>"
    return REWARDS["accuracy"](completion, {"answer": case["reference"]}) == 1.0


@pytest.mark.parametrize("case", CASES, ids=[f"{c['source']}:{c['prediction'][:30]}" for c in CASES])
def test_rule(case):
    assert scored(case) is case["expected"]


def test_every_class_has_both_directions():
    classes = {}
    for case in CASES:
        classes.setdefault(case["source"], set()).add(case["expected"])
    both = {"relation spelling", "relation meaning", "interval", "collection", "number format", "sentence", "box"}
    both |= {"final statement", "decimal comma", "negation", "label", "turn marker"}
    assert all(classes[name] == {True, False} for name in both - {"relation spelling"})
    assert classes["hedge"] == {False}


def test_rules_hold_from_a_worker_thread():
    out = {}
    worker = threading.Thread(target=lambda: out.update(results=[scored(c) for c in CASES]))
    worker.start()
    worker.join(timeout=300)
    assert out["results"] == [c["expected"] for c in CASES]


def test_majority_voting_uses_the_same_rules():
    assert answers_equivalent("x \\leq 5", "5 \\ge x")
    assert answers_equivalent("\\{1, 2, 3\\}", "3, 1, 2")
    assert not answers_equivalent("5", "2, 5")


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("\\{1, 2, 3\\}", ["1", "2", "3"]),
        ("(1, 2), (3, 4)", ["(1, 2)", "(3, 4)"]),
        ("[0, 1) \\cup (2, 3]", ["[0, 1) \\cup (2, 3]"]),  # brackets of any kind nest
        ("\\{1, \\{2, 3\\}\\}", ["1", "\\{2, 3\\}"]),
        ("a and b", ["a", "b"]),
        ("5", ["5"]),
    ],
)
def test_parts(answer, expected):
    assert parts(answer) == expected


def test_names_are_kept_only_when_every_part_has_its_own():
    assert values("k = 45, n = 2") == (["45", "2"], {"k": "45", "n": "2"})
    assert values("x = 1, x = 2") == (["1", "2"], None)  # one name for all: a set of roots
    assert values("21, 16 or 11", reference=True)[0] == ["21", "16", "11"]
    assert values("21, 16 or 11")[0] == ["21", "16 or 11"]  # a prediction's "or" is not a separator


@pytest.mark.parametrize(
    "content, expected",
    [
        ("She makes $18 every day.", "18"),
        ("The total is 1,250 dollars.", "1250"),
        ("5 cm", None),  # not a sentence: left to the unit rules
        ("\\begin{pmatrix} 1 & 0 \\end{pmatrix}", None),
        ("\\sin x + \\cos x", None),
        ("She has 3 apples and 4 pears.", ""),  # two values
        ("The answer is not 5.", ""),
        ("It is approximately 5.", ""),
    ],
)
def test_sentence_value(content, expected):
    assert sentence_value(content) == expected


def test_bench_reports_agreement_and_disagreements(tmp_path, capsys):
    path = tmp_path / "cases.jsonl"
    rows = [
        {"reference": "5", "prediction": "5", "expected": True},
        {"reference": "5", "prediction": "6", "expected": True},  # r1 says 0: a false negative
        {"reference": "5", "prediction": "5 or 6", "expected": False},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + '\nnot json\n{"reference": 5}\n')
    result = peer_bench(path, with_peer=False)
    out = capsys.readouterr().out
    assert result["r1"] == {"n": 3, "agreement": 2 / 3, "false_positives": 0, "false_negatives": 1}
    assert result["skipped"] == 2 and "skipped 2 line(s); first: line 4: not JSON" in out
    assert "false negative: '5' vs '6'" in out and "SUMMARY n=3 agreement=0.6667" in out


def test_bad_peer_files_are_clear_errors(tmp_path, capsys):
    assert cli.main(["bench", "rewards", "peer", str(tmp_path / "missing.jsonl"), "--no-peer"]) == 2
    assert "no such file" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"reference": "5"}\n')
    assert cli.main(["bench", "rewards", "peer", str(empty), "--no-peer"]) == 2
    assert "no valid case" in capsys.readouterr().err


def test_load_cases_keeps_the_source():
    cases, skipped = load_cases(EXAMPLE)
    assert not skipped and len(cases) == len(CASES) and cases[0].source


def test_peer_cases_script_reads_parametrize_tables(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_peer.py").write_text(
        "import pytest\n"
        "@pytest.mark.parametrize('gold,pred,expected', [('1', '1', 1), ('1', '2', 0)])\n"
        "def test_a(gold, pred, expected): pass\n"
        "@pytest.mark.parametrize('gold,pred,expected,precision', [('1', '1.0001', 1, 3), ('2', '2', 1, 6)])\n"
        "def test_b(gold, pred, expected, precision): pass\n"
    )
    out = tmp_path / "peer.jsonl"
    script = Path(__file__).resolve().parent.parent / "scripts" / "peer_cases.py"
    run = subprocess.run([sys.executable, str(script), str(tests), str(out)], capture_output=True, text=True)
    assert run.returncode == 0 and "3 cases written" in run.stdout and "1 skipped" in run.stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[1] == {"reference": "1", "prediction": "2", "expected": False, "source": "test_peer.py::test_a"}
