"""Turn a checker library's own equivalence tests into a peer-agreement file for `r1 bench rewards peer`.

    pip download math-verify==0.9.0 --no-binary :all: --no-deps -d /tmp/mv && tar xzf /tmp/mv/*.tar.gz -C /tmp/mv
    python scripts/peer_cases.py /tmp/mv/math_verify-0.9.0/tests /tmp/peer.jsonl
    r1 bench rewards peer /tmp/peer.jsonl

The same works on NeMo-Skills' `tests/test_math_equal.py` (`output_pair` cases, asserted equal or
not in both orders; the file is read from the repository's source, e.g. a git checkout):

    python scripts/peer_cases.py NeMo-Skills/tests /tmp/nemo.jsonl

The cases are read, not run: every `@pytest.mark.parametrize("gold,pred,expected", [...])` list
in the test files is evaluated as a Python literal (ast.literal_eval), one JSONL row per tuple:
{"reference", "prediction", "expected", "source"}. A case whose test passes other settings too
(a rounding precision, strict=False, set–relation comparison) is skipped unless the setting is
the library's default, because `r1`'s reward has no such switches; the count of skipped cases is
printed. Nothing of the peer's is copied into this repository: the file is built on the user's
machine from the peer's own release.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

NAMES = {"gold": "reference", "pred": "prediction", "expected": "expected", "result": "expected"}
DEFAULTS = {"precision": 6, "strict": True, "allow_set_relation_comp": False}


def literal_items(node: ast.expr) -> list | None:
    """The literal elements of a list/tuple node; an element that is not a literal (``5 / 2``) is left out."""
    if not isinstance(node, (ast.List, ast.Tuple)):
        return None
    items = []
    for element in node.elts:
        try:
            items.append(ast.literal_eval(element))
        except ValueError:
            continue
    return items


def parametrized(tree: ast.Module):
    """(test name, argument names, case tuples) of every literal parametrize decorator."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        for deco in node.decorator_list:
            if isinstance(deco, ast.Call) and getattr(deco.func, "attr", "") == "parametrize" and len(deco.args) >= 2:
                try:
                    names = ast.literal_eval(deco.args[0])
                except ValueError:
                    continue
                cases = literal_items(deco.args[1])
                if cases is None:  # not a literal list (built at import time): not a table of cases
                    continue
                names = [n.strip() for n in (names.split(",") if isinstance(names, str) else names)]
                yield node.name, names, cases


def rows(test_dir: Path) -> tuple[list[dict], int]:
    """The cases of every test file under test_dir, and how many were skipped for their settings."""
    out, skipped = [], 0
    for path in sorted(test_dir.glob("test_*.py")):
        for test, names, cases in parametrized(ast.parse(path.read_text(encoding="utf-8"))):
            if names == ["output_pair"]:  # NeMo-Skills style: the test's name says equal or not, both ways
                out += pair_rows(cases, "incorrect" not in test, f"{path.name}::{test}")
                continue
            if not {"gold", "pred"} <= set(names) or not {"expected", "result"} & set(names):
                continue
            for case in cases:
                values = dict(zip(names, case))
                extra = {k: v for k, v in values.items() if k not in NAMES}
                if any(DEFAULTS.get(k, object()) != v for k, v in extra.items()):
                    skipped += 1
                    continue
                row = {NAMES[k]: v for k, v in values.items() if k in NAMES}
                row["expected"] = bool(row["expected"])
                out.append({**row, "source": f"{path.name}::{test}"})
    return out, skipped


def pair_rows(cases, expected: bool, source: str) -> list[dict]:
    """Rows of (a, b) pairs a test asserts equal (or not) in both orders; a pair with None is skipped."""
    out = []
    for a, b in cases:
        if a is not None and b is not None:
            for reference, prediction in ((a, b), (b, a)):
                row = {"reference": str(reference), "prediction": str(prediction), "expected": expected}
                out.append({**row, "source": source})
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    test_dir, target = Path(argv[0]), Path(argv[1])
    if not test_dir.is_dir():
        print(f"error: {test_dir} is not a folder of test files", file=sys.stderr)
        return 2
    found, skipped = rows(test_dir)
    with open(target, "w", encoding="utf-8") as f:
        for row in found:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(found)} cases written to {target}; {skipped} skipped (non-default checker settings)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
