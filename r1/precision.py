"""Precision by measurement: `auto` means bf16 only where bf16 is faster on this hardware.

bf16 is not faster everywhere. On a CPU with AMX tiles a bf16 matmul is 4–5× faster than fp32; on
an AVX-512 CPU with `avx512_bf16` (e.g. AMD Zen 4) about 1.5–2×; on one with neither (many laptops
and cloud VMs) oneDNN converts and falls back, and bf16 is 2–3× *slower* (docs/perf.md). CPU flags
alone do not settle it (the oneDNN build and `ONEDNN_MAX_CPU_ISA` change it), so on a CPU `auto` is
decided by a probe: about a second (more on a busy machine) timing bf16 against fp32 matmuls at
each of the two shapes that matter, on one thread, interleaved and best-of-N, so that another
process on the machine slows both sides alike:

* decode: (64 × 576) @ (576 × 1728), the rollout's per-token matmul, over a stack of 24 such weight
  matrices (more than the CPU cache), packed for oneDNN the way the fast engine packs them;
* training: forward + backward of (512 × 576) @ (576 × 1536) under autocast, as the trainer runs it.

bf16 is chosen for a use when it is at least `MARGIN` faster there. The measurement is cached under
`$R1_CACHE/precision/`, keyed by CPU model and flags, torch version and `ONEDNN_MAX_CPU_ISA`,
so it runs once per machine. On CUDA, bf16 where the device supports it (every Ampere or newer);
no probe. Explicit `float32`/`bfloat16` settings are never second-guessed, and `R1_PRECISION=float32`
(or `bfloat16`) pins what `auto` means for every process that inherits it (the test suite pins
float32, so that results do not depend on the machine).

Deliberately left out: float16 (needs loss scaling; no CPU gains) and per-layer choices.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

MARGIN = 1.15  # bf16 must be this much faster than fp32 to be chosen (a probe's noise is a few %)
DECODE_SHAPE = (64, 576, 1728)  # rows, in, out: SmolLM2-135M's gate/up matmul at a 64-row decode step
DECODE_LAYERS = 24  # ~96 MB of fp32 weights, more than a CPU cache holds
TRAIN_SHAPE = (512, 576, 1536)
_announced: set[str] = set()  # reasons already printed in this process
ROUNDS = 5  # interleaved fp32/bf16 timings per shape; the best of each is compared


@dataclass(frozen=True)
class Probe:
    """One machine's measured matmul times (seconds, best of ROUNDS) at the two shapes."""

    key: str  # what the cache is keyed by (CPU, torch, oneDNN ISA limit)
    decode_fp32: float
    decode_bf16: float
    train_fp32: float
    train_bf16: float

    def speedup(self, use: str) -> float:
        """fp32 time / bf16 time for `use` ("rollout" → decode shape, "train" → training shape)."""
        return self.decode_fp32 / self.decode_bf16 if use == "rollout" else self.train_fp32 / self.train_bf16


@dataclass(frozen=True)
class Choice:
    dtype: str  # "float32" or "bfloat16"
    reason: str  # one line a user can read: why this precision here


def cpu_key() -> str:
    """What decides bf16 speed on a CPU: model name, AMX/bf16 flags, torch version, oneDNN limit (the probe
    always runs on one thread, so the thread count is not part of it)."""
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():  # the first CPU's lines suffice
            name, _, value = line.partition(":")
            if name.strip() == "model name":
                model = value.strip()
            elif name.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    isa = sorted(flags & {"amx_tile", "amx_bf16", "avx512_bf16", "avx512f", "avx2"})
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA", "")
    return f"{model} | {','.join(isa)} | torch {torch.__version__} | isa-limit {limit or 'none'}"


def _decode_fn(dtype: torch.dtype):
    """One decode step through a stack of DECODE_LAYERS weight matrices: together they outgrow the
    CPU cache as a model's weights do (one matrix alone stays cached and hides bf16's halved traffic)."""
    rows, inp, out = DECODE_SHAPE
    x = torch.randn(rows, inp).to(dtype)
    weights = [torch.full((out, inp), 0.01, dtype=dtype) for _ in range(DECODE_LAYERS)]  # values: no effect on speed
    if torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        packed = [torch.ops.mkldnn._reorder_linear_weight(w, rows) for w in weights]
        return lambda: [torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], "") for w in packed]
    return lambda: [F.linear(x, w) for w in weights]


def _train_fn(bf16: bool):
    rows, inp, out = TRAIN_SHAPE
    x, w = torch.randn(rows, inp, requires_grad=True), torch.randn(out, inp, requires_grad=True)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = F.linear(x, w)
        y.float().sum().backward()

    return step


def measure(rounds: int = ROUNDS) -> Probe:
    """Time bf16 against fp32 at the decode and training shapes (interleaved, best of `rounds`)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: a ratio that another busy process on the machine barely moves
    try:
        return _measure(rounds)
    finally:
        torch.set_num_threads(threads)


def _measure(rounds: int) -> Probe:
    fns = {
        "decode_fp32": _decode_fn(torch.float32),
        "decode_bf16": _decode_fn(torch.bfloat16),
        "train_fp32": _train_fn(False),
        "train_bf16": _train_fn(True),
    }
    for fn in fns.values():  # warm-up: oneDNN builds its kernels on the first call
        fn()
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):  # interleaved: a burst of load from elsewhere slows both precisions alike
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return Probe(key=cpu_key(), **best)


def cache_path(key: str) -> Path:
    root = Path(os.environ.get("R1_CACHE", Path.home() / ".cache" / "r1")).expanduser()
    return root / "precision" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


@functools.lru_cache(maxsize=None)
def cpu_probe() -> Probe:
    """This machine's probe: read from the cache, or measured once and cached."""
    key = cpu_key()
    path = cache_path(key)
    try:
        cached = Probe(**json.loads(path.read_text()))
        if cached.key == key:
            return cached
    except (OSError, ValueError, TypeError):
        pass  # no cache yet, or an unreadable one: measure again
    probe = measure()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(probe), indent=1))
        tmp.replace(path)  # atomic: two processes probing at once both leave a whole file
    except OSError:
        pass  # a read-only cache: the probe simply runs again next time
    return probe


def choose(setting: str, use: str, device: torch.device | str = "cpu") -> Choice:
    """The precision for `use` ("rollout" or "train") on `device`: `setting` unless it is "auto"."""
    if setting in ("float32", "bfloat16"):
        return Choice(setting, f"{use}: {setting} as configured")
    if setting != "auto":
        raise ValueError(f"precision must be auto, float32 or bfloat16, got {setting!r}")
    pinned = os.environ.get("R1_PRECISION", "")
    if pinned in ("float32", "bfloat16"):
        return Choice(pinned, f"{use}: auto → {pinned} (pinned by R1_PRECISION)")
    device = torch.device(device)
    if device.type == "cuda":
        dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
        name = torch.cuda.get_device_name(device)
        return Choice(dtype, f"{use}: auto → {dtype} ({name}{'' if dtype == 'bfloat16' else ' has no bf16'})")
    if device.type != "cpu":
        return Choice("float32", f"{use}: auto → float32 (no bf16 measurement for {device.type})")
    probe = cpu_probe()
    ratio = probe.speedup(use)
    dtype = "bfloat16" if ratio >= MARGIN else "float32"
    shape = "decode" if use == "rollout" else "training"
    return Choice(
        dtype,
        f"{use}: auto → {dtype} (bf16 {ratio:.2f}× the speed of fp32 at the {shape} shape "
        f"on this CPU; bf16 needs ≥ {MARGIN}×)",
    )


def resolve(
    rollout_dtype: str, train_bf16: bool | str, device: torch.device | str = "cpu"
) -> tuple[str, bool, list[str]]:
    """Concrete (rollout dtype, training bf16) for a run's settings, and a reason line for each.

    The reasons of an `auto` choice are printed, once per process."""
    rollout = choose(rollout_dtype, "rollout", device)
    train_setting = train_bf16 if train_bf16 == "auto" else ("bfloat16" if train_bf16 else "float32")
    train = choose(train_setting, "train", device)
    for reason in (rollout.reason, train.reason):
        if "auto" in reason and reason not in _announced:
            _announced.add(reason)
            print(f"[r1] precision {reason}", flush=True)
    return rollout.dtype, train.dtype == "bfloat16", [rollout.reason, train.reason]
