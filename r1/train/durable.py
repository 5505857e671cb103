"""Files that survive: checksums verified on load, fsync before rename, and disk-full as a message.

A checkpoint folder is written under a temporary name, then renamed into place (checkpoint.py).
Three things make that protocol hold on real disks and make its failures readable:

* ``fsync_tree`` flushes every file and folder of the temporary copy before the rename: a rename is
  atomic, but without the flush a power cut can leave a renamed folder of empty files.
* ``write_checksums`` records the SHA-256 of every file in ``checksums.json``; ``damaged`` reports
  what no longer matches (a truncated ``model.safetensors``, a flipped byte, a missing file), so a
  resume falls back to the previous good checkpoint instead of loading garbage or raising from
  inside safetensors.
* ``disk_full`` recognizes "no space left" in the forms torch and the OS raise it (``OSError``
  ENOSPC/EDQUOT, torch's ``RuntimeError: [enforce fail at inline_container.cc…] file write failed``;
  torch has other wordings, so the caller also compares ``free_bytes`` with what it needs) and
  ``space_message`` turns it into one paragraph naming the folder and the space needed.

Deliberately left out: checksumming while writing (the files are read back once, which also
proves they are readable) and any repair: a damaged checkpoint is skipped, never patched.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

CHECKSUMS = "checksums.json"
_NO_SPACE = ("no space left", "file write failed", "disk quota exceeded")


def sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != CHECKSUMS)


def write_checksums(folder: Path, skip: tuple[str, ...] = ()) -> None:
    """``checksums.json``: the SHA-256 of every file below ``folder`` but those named in ``skip``."""
    sums = {str(p.relative_to(folder)): sha256(p) for p in _files(folder) if p.name not in skip}
    (folder / CHECKSUMS).write_text(json.dumps(sums, indent=1, sort_keys=True))


def damaged(folder: Path) -> str | None:
    """Why ``folder`` fails its checksums (the first file that does), or None when every file matches.
    A folder written before checksums existed has none to fail: None."""
    path = Path(folder) / CHECKSUMS
    if not path.is_file():
        return None
    try:
        sums = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        return f"{CHECKSUMS} unreadable ({err})"
    for name, digest in sums.items():
        file = Path(folder) / name
        try:
            if sha256(file) != digest:
                return f"{name} does not match its checksum ({file.stat().st_size} bytes)"
        except OSError as err:
            return f"{name}: {err.strerror or err}"
    return None


def fsync_tree(folder: Path) -> None:
    """Flush every file, then every folder, below and including ``folder`` to the disk."""
    files = _files(folder)
    for path in [*files, folder / CHECKSUMS]:
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    for path in sorted({p.parent for p in files} | {folder, folder.parent}, key=lambda p: -len(p.parts)):
        fsync_dir(path)


def fsync_dir(path: Path) -> None:
    """Make a rename or creation inside ``path`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def disk_full(err: BaseException) -> bool:
    """Whether ``err`` says the disk (or the quota) is full, in any of the forms torch and the OS use."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(err, (OSError, RuntimeError)) and any(s in str(err).lower() for s in _NO_SPACE)


def free_bytes(folder: Path) -> int:
    """Free space where ``folder`` is (or would be)."""
    where = Path(folder)
    while not where.exists() and where != where.parent:
        where = where.parent
    return shutil.disk_usage(where).free


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in _files(folder)) if Path(folder).is_dir() else 0


def space_message(target: Path, needed: int) -> str:
    """One paragraph: where the disk is full, how much is free, how much a checkpoint needs."""
    where = Path(target).parent
    free = free_bytes(where)
    return (
        f"the disk is full: writing the checkpoint {target} needs about {needed / 2**20:,.0f} MiB and "
        f"{where} has {free / 2**20:,.0f} MiB free. The previous checkpoint is intact. Free some space "
        f"(or lower train.keep_checkpoints, or point run.output_dir elsewhere) and rerun the same command "
        f"with run.resume=true to continue from it."
    )
