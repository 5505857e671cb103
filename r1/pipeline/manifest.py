"""Run manifests: a JSON record of a multi-part run (`r1 distill`'s `distill.json`, `r1
pipeline`'s `manifest.json`), written atomically after every change.

A manifest is a record, not the source of truth: what is finished is decided by each part's own
marker (a complete final checkpoint, a report file), so a kill that leaves a stale "running"
status is harmless. `run_recorded` wraps one part's work so that its status, error and wall time
land in the manifest whether the work finishes, fails or is interrupted.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable, TypeVar

from r1.train.errors import Preempted

T = TypeVar("T")


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and a rename, so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_manifest(path: Path, manifest: dict) -> None:
    write_atomic(path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


def run_recorded(path: Path, manifest: dict, entry: dict, work: Callable[[], T]) -> T:
    """Run `work`, recording in `entry` (a part of `manifest`) its status, error and wall time
    (summed over invocations); `manifest["status"]` follows a failure or interruption."""
    start = time.perf_counter()
    entry["status"] = "running"
    save_manifest(path, manifest)
    try:
        result = work()
        entry["status"] = "finished"
        entry.pop("error", None)
    except BaseException as err:  # a kill (KeyboardInterrupt) too: the manifest says where it stopped
        entry["status"] = "interrupted" if isinstance(err, (KeyboardInterrupt, Preempted)) else "failed"
        entry["error"] = f"{type(err).__name__}: {err}"
        manifest["status"] = entry["status"]
        raise
    finally:
        entry["seconds"] = round(entry.get("seconds", 0.0) + time.perf_counter() - start, 3)
        save_manifest(path, manifest)
    return result
