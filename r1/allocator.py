"""Keep freed memory in the process: glibc malloc settings that make CPU training ~30% faster.

A training step on CPU allocates and frees the same large tensors over and over (activations,
logits, their gradients: tens to hundreds of MB each). By default glibc serves every block
above its mmap threshold with a fresh `mmap` and returns it with `munmap` when freed, and trims
the heap top back to the system; the next step then page-faults the same memory in again, one
zeroed 4 KiB page at a time. Measured on the standard GRPO update (docs/perf.md):
13.5 M minor page faults and ~30 s per update by default, 6 M faults and ~19 s with the
settings below — the faults show up as time inside `copy_`, `mul` and `fill_`.

`tune()` calls `mallopt` at run time (no environment variable, no preloaded allocator):

    M_MMAP_THRESHOLD = 64 MiB     blocks below it come from the heap and go back to it, to be
                                  reused by the next step (a fixed threshold: glibc no longer
                                  raises it as it sees large blocks freed);
    M_TRIM_THRESHOLD = 2 GiB − 1  do not hand the heap's free top back to the system.

Blocks of 64 MiB and more (full-vocabulary logit chunks, whole-model temporaries) are still
mmapped and returned when freed: they are few per step, so their page faults cost little, and
keeping them would hold the peak of every phase resident at once. Measured on two
fp32 standard GRPO updates without generation (micro-batch 4; docs/perf.md): peak RSS 5.1 GB
with the former `M_MMAP_MAX = 0` (never mmap), 4.7 GB with this, ~4% slower per update (33 → 34
s). `r1` calls it once at start-up for every command; set R1_MALLOC_TUNING=0 to opt out. Library
users call `r1.allocator.tune()` themselves.

Deliberately left out: jemalloc/tcmalloc (they need LD_PRELOAD before the process starts and a
system package) and non-glibc platforms, where `tune()` does nothing and says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc <malloc.h> parameter numbers
M_MMAP_THRESHOLD = -3
KEEP_BYTES = 2**31 - 1  # mallopt takes an int
MMAP_BYTES = 64 * 2**20


def tune() -> bool:
    """Apply the settings above; True when they took effect (Linux with glibc, not opted out)."""
    if os.environ.get("R1_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    mallopt = _libc_function("mallopt")
    if mallopt is None:  # musl and other libcs without mallopt
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_BYTES))


def release() -> bool:
    """Hand the heap's free memory back to the system (`malloc_trim(0)`), e.g. between two stages of
    one process, so the next stage does not start with the last one's peak resident. True when done."""
    malloc_trim = _libc_function("malloc_trim")
    return malloc_trim is not None and bool(malloc_trim(0))


def _libc_function(name: str):
    """A function of the C library by name, or None where there is no such library or function."""
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):
        return None
