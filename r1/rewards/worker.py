"""The verification worker: a separate Python process that runs math-verify on request.

Started by ``pool.py`` as ``python <this file> <memory_mb>`` — a fresh interpreter (the
``spawn`` model, never ``fork``: the trainer holds torch threads and CUDA state, and a
fresh interpreter does not re-import the trainer's ``__main__`` module the way
``multiprocessing`` spawn would). This file imports only the standard library and
math-verify, never ``r1``, so starting it costs ~1 s and ~150 MB, not a torch import.

Protocol: one JSON object per line on stdin ``{"gold": str, "pred": str}``; one JSON line
back per request ``{"ok": bool}`` or ``{"ok": false, "error": "TypeName"}``, after an
initial ``{"ready": true}`` once imports are done (so the parent's per-call clock never
includes start-up). Stdout is reserved for the protocol: fd 1 is pointed at stderr so a
library ``print`` cannot corrupt it.

Protection that lives here: the address-space cap (``RLIMIT_AS``), ignoring SIGINT (the
parent decides when we stop), and a watchdog thread that exits when the parent dies, so an
interrupted trainer leaves no orphans. The wall-clock limit is enforced by the parent
(SIGKILL), which works from any thread — math-verify's own ``signal.alarm`` timeouts are
disabled (``parsing_timeout=None``, ``timeout_seconds=None``) because they only work in a
process's main thread.

Reference cache: ``_parse_reference`` is an ``lru_cache`` in each worker process, so a
reference answer is parsed at most once per worker (and again after the worker is
replaced); it is keyed by the reference string.
"""

import os
import sys

if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)  # our sibling modules must not shadow stdlib / sympy imports

import functools  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402


def _limit_memory(memory_mb: int) -> None:
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _exit_when_orphaned(parent_pid: int) -> None:
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _load_checker():
    """Import math-verify and return ``equivalent(gold, pred) -> bool``."""
    import logging

    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    logging.disable(logging.CRITICAL)  # it logs each failed parse; the parent counts instead
    config = [LatexExtractionConfig(), ExprExtractionConfig()]

    def parse_text(text: str):
        # `$…$` makes the whole string one LaTeX math environment for the extractor.
        return parse(f"${text}$", extraction_config=config, parsing_timeout=None)

    @functools.lru_cache(maxsize=4096)
    def _parse_reference(gold: str):
        return parse_text(gold)

    def equivalent(gold: str, pred: str) -> bool:
        parsed_gold = _parse_reference(gold)
        parsed_pred = parse_text(pred)
        if not parsed_gold or not parsed_pred:
            return False
        return bool(verify(parsed_gold, parsed_pred, timeout_seconds=None))

    return equivalent


def main() -> None:
    memory_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_when_orphaned(os.getppid())
    _limit_memory(memory_mb)
    equivalent = _load_checker()
    out.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        try:
            request = json.loads(line)
            reply = {"ok": equivalent(request["gold"], request["pred"])}
        except Exception as exc:  # incl. MemoryError, RecursionError: a bad input must not end us
            reply = {"ok": False, "error": type(exc).__name__}
        out.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
