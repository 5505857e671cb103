"""The code reward: run the completion's last Python block against the task's tests in the sandbox.

For code the reward runs the program on test cases in a sandbox: pass/fail, or the share of tests
passed (docs/method.md §3). A code example carries HumanEval-style tests: ``test`` (code defining
``check(candidate)``, a list of asserts) and ``entry_point`` (the function under test), and
optionally ``code_prompt`` (the task's signature and docstring, with the imports and helper
functions the task defines).

1. ``extract_code`` follows the tag rules of ``extract.py``: only text after the last
   ``</think>`` counts, and only inside ``<answer>…</answer>`` when that block is used (then
   exactly one). The code is the *last* complete fenced block tagged ``python``/``py``/
   ``python3`` or untagged; a fence left open (a truncated completion) does not count.
2. ``build_job``: the program is ``code_prompt`` followed by the code. A complete function then
   replaces the prompt's stub and still has the prompt's imports and helpers (HumanEval/32
   needs ``poly``); a body-only answer (indented lines) completes the stub. The checker runs
   ``code_prompt`` and the test file's module-level code as trusted setup, then each top-level
   statement of ``check``'s body as one test: statements with an ``assert`` are counted, the
   others (imports, assignments, ``assert True`` lines) are setup; both ``candidate`` and the
   entry point's name call the program. See sandbox.py for why nothing it does can fake a pass.
3. The reward is the fraction of counted statements that passed — or 1/0 when ``BINARY`` (or
   ``example["binary"]``) asks for all-or-nothing. No code block → 0. A run stopped at the time
   limit is counted as ``rewards/code_timeouts``, one that ended without a verdict as
   ``rewards/code_crashes``; unusable tests raise (a data error, counted by ``score_completions``).

Deliberately left out: stdin/stdout test formats (APPS, Codeforces), stitching several code
blocks together, and lenient extraction of code outside fences.
"""

import ast
import functools

from . import sandbox
from .extract import ANSWER_CLOSE, ANSWER_OPEN, after_think, apply_prefill
from .registry import excerpt, note, register

LIMITS = sandbox.Limits(wall_s=6.0)
BINARY = False  # True: 1.0 only when every test passes (an example's "binary" key overrides)
PYTHON_TAGS = frozenset({"", "python", "py", "python3"})
FENCE = "```"


def fenced_blocks(text: str) -> list[str]:
    """The complete fenced blocks tagged as Python (or untagged), in order, each ending in a newline.

    Lines lose only the fence's own indentation, so an indented body-only answer keeps its indent.
    """
    blocks, lines, indent = [], None, 0  # lines: the open Python block; False: an open block of another language
    for line in text.splitlines():
        stripped = line.strip()
        if lines is None:
            if stripped.startswith(FENCE):
                tag = stripped[len(FENCE) :].split()
                lines = [] if (tag[0].lower() if tag else "") in PYTHON_TAGS else False
                indent = len(line) - len(line.lstrip())
        elif stripped == FENCE:
            if lines is not False:
                blocks.append("".join(ln[min(indent, len(ln) - len(ln.lstrip())) :] + "\n" for ln in lines))
            lines = None
        elif lines is not False:
            lines.append(line)
    return blocks


def extract_code(completion: str, example: dict | None = None) -> str | None:
    """The program a completion answers with (module doc, rule 1), or None.

    >>> extract_code("<think>easy</think> <answer>```python\\ndef f():\\n    return 1\\n```</answer>")
    'def f():\\n    return 1\\n'
    """
    region = after_think(apply_prefill(completion, example))
    if region is None:
        return None
    if ANSWER_OPEN in region or ANSWER_CLOSE in region:
        start, end = region.find(ANSWER_OPEN) + len(ANSWER_OPEN), region.find(ANSWER_CLOSE)
        if region.count(ANSWER_OPEN) != 1 or region.count(ANSWER_CLOSE) != 1 or end < start:
            return None
        region = region[start:end]
    blocks = [block for block in fenced_blocks(region) if block.strip()]
    return blocks[-1] if blocks else None


@functools.lru_cache(maxsize=1024)
def check_statements(test_code: str) -> tuple[str, tuple[sandbox.Statement, ...], str]:
    """HumanEval test code → (module-level setup, the statements of ``check``, its parameter name)."""
    try:
        tree = ast.parse(test_code)
    except SyntaxError as err:
        raise ValueError(f"example['test'] is not valid Python: {err}") from None
    checks = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "check"]
    if len(checks) != 1 or not checks[0].args.args:
        raise ValueError("example['test'] must define check(candidate) exactly once")
    check = checks[0]
    setup = "\n".join(ast.unparse(node) for node in tree.body if node is not check)
    statements = tuple(
        sandbox.Statement(ast.unparse(node), counted=any(_real_assert(n) for n in ast.walk(node)))
        for node in check.body
    )
    if not any(s.counted for s in statements):
        raise ValueError("check() in example['test'] contains no assert")
    return setup, statements, check.args.args[0].arg


def _real_assert(node: ast.AST) -> bool:
    """An assert that tests something: HumanEval's ``assert True, "…"`` lines would be free credit."""
    return isinstance(node, ast.Assert) and not isinstance(node.test, ast.Constant)


def build_job(code: str, example: dict) -> sandbox.Job:
    """The sandbox job for ``code`` on a code example (module doc, rule 2)."""
    test, entry_point = example.get("test"), example.get("entry_point")
    if not isinstance(test, str) or not isinstance(entry_point, str) or not entry_point.isidentifier():
        raise ValueError(
            "the code reward needs example['test'] (code defining check(candidate)) and example['entry_point']"
        )
    setup, statements, parameter = check_statements(test)
    prompt = example.get("code_prompt") or ""
    if prompt and not prompt.endswith("\n"):
        prompt += "\n"
    body_only = code.lstrip("\n")[:1] in (" ", "\t")
    program = prompt + code if body_only else f"{prompt}\n\n{code}"
    # Tests may call the entry point by name as well (HumanEval/33): in the original harness they
    # share the program's namespace, so that name is the program's function too, not the stub.
    return sandbox.Job(
        program, statements, setup=f"{prompt}\n{setup}", functions={parameter: entry_point, entry_point: entry_point}
    )


@register("code", concurrent=True)
def code_reward(completion: str, example: dict) -> float:
    """The fraction of the task's tests that the completion's last Python block passes (module doc)."""
    source = extract_code(completion, example)
    if source is None:
        return 0.0
    result = sandbox.run(build_job(source, example), LIMITS)
    if result.status == "error":
        raise RuntimeError(f"sandbox: {result.error}")
    if result.timed_out:
        note("timeouts", f"time limit on code {excerpt(source)!r}")
    elif result.status == "crashed":
        note("crashes", f"no verdict for code {excerpt(source)!r}")
    if example.get("binary", BINARY):
        return float(result.status == "ok" and result.passed == result.total)
    return result.fraction
