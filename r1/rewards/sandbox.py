"""Run an untrusted Python program against trusted tests; only the trusted checker gives the verdict.

Code rewards (docs/method.md §3) execute model-written programs thousands of times, so the program is
hostile by assumption: it may loop, allocate 10 GB, fork-bomb, ``sys.exit(0)`` before the
tests, return an object whose ``__eq__`` is always True, print a fake verdict, write outside
its folder, read the trainer's secrets or open sockets. ``run(job)`` says how many of the
job's test statements passed, and nothing the program prints, returns or exits with can fake it.

This module is the parent side: it launches one fresh ``python -I -S -B -u`` (isolated, stdlib
only, no .pyc writes) per run, executing the source of ``sandbox_child.py`` (passed with ``-c``,
so a slot uid that cannot read this package still runs it). There a *checker* process forks the
*candidate* that runs the program and answers calls with plain values; the checker alone sees
the tests and writes ``<nonce> {"passed": [...]}`` to a pipe only it holds (sandbox_child.py says
how). The parent reads the verdict from that line only, never from the exit code or stdout.

Walls around both processes (walls.py probes which this machine allows; docs/sandbox.md has
the table of layers): as root, each concurrent run gets its own unprivileged uid (``SLOT_UID_BASE``
+ slot), swept empty before reuse; network, PID and mount namespaces via ``unshare``, so a run
ends, all of it, when its checker does; Landlock and a seccomp filter that the run sets on itself
(confine.py); rlimits on address space, CPU, file size, open files, processes; a private working
directory (deleted afterwards, cleanup.py); a scrubbed environment; stdin closed; output capped.
At ``wall_s`` the checker stops waiting (tests that passed still count); at ``wall_s + GRACE_S``
the parent SIGKILLs the process group; afterwards every process of the run is killed (reaper.py).

Deliberately left out: cgroups, stdin/stdout (Codeforces-style) tests, third-party packages
inside the sandbox. docs/sandbox.md lists what is and is not protected, and the measured numbers.
"""

import fcntl
import functools
import json
import logging
import os
import queue
import secrets
import selectors
import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from .cleanup import remove_owned, remove_tree
from .reaper import kill_run, processes, sweep
from .walls import SAFE_PATH, SLOT_UID_BASE, SLOTS, Isolation, isolation, package_source  # noqa: F401 (SLOT_* and Isolation: API)

GRACE_S = 1.0  # past wall_s the parent waits this long for the checker's verdict, then kills
DRAIN_S = 0.25  # after the verdict, how long a grandchild may keep stdout open before we stop reading
MAX_JOB_BYTES = 1 << 20  # program (or tests) larger than this are rejected: they travel in one pipe buffer


@dataclass(frozen=True)
class Limits:
    """Limits of one run. ``cpu_s`` defaults to ``ceil(wall_s) + 1``."""

    wall_s: float = 5.0
    cpu_s: int | None = None
    memory_mb: int = 1024  # address space (RLIMIT_AS) of each sandbox process
    file_mb: int = 16  # largest file the program may write (RLIMIT_FSIZE)
    open_files: int = 64
    processes: int = 8  # tasks (processes, threads) of one run, checker and candidate included (RLIMIT_NPROC)
    output_kb: int = 64  # stdout and stderr kept, each; the rest is read and dropped
    hooks: bool = True  # audit hooks in the candidate; tests switch them off to probe the OS walls alone


@dataclass(frozen=True)
class Statement:
    code: str  # one statement of trusted test code, run in the checker
    counted: bool = True  # False for setup statements inside the tests (imports, assignments)


@dataclass(frozen=True)
class Job:
    program: str  # the untrusted source
    tests: tuple[Statement, ...]
    setup: str = ""  # trusted code the checker runs first (helpers and constants the tests use)
    functions: dict[str, str] = field(default_factory=dict)  # checker name -> program function, {"candidate": "add"}


@dataclass
class Result:
    passed: int
    total: int
    status: str  # "ok" (verdict read) | "timeout" | "crashed" (no verdict) | "rejected" (job too large) | "error"
    timed_out: bool = False  # the wall-clock limit ended the run (partial credit is still in `passed`)
    error: str = ""  # the first failure, for logs
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0

    @property
    def fraction(self) -> float:
        return self.passed / self.total if self.total else 0.0


def network_isolation() -> str:
    """``"netns"`` when runs get their own network namespace, else ``"none: <reason>"``."""
    return isolation().network


_retired: set[int] = set()  # slot uids left out of use: a process of theirs would not die


@functools.cache
def _slots() -> queue.SimpleQueue:
    """The slot uids this process may claim (root only; ``_claim_uid``)."""
    free = queue.SimpleQueue()
    for uid in isolation().uids:
        free.put(uid)
    return free


def _filled_pipe(data: bytes) -> int | None:
    """The read end of a pipe already holding ``data`` (so writing never blocks), or None if too big."""
    read_fd, write_fd = os.pipe()
    try:
        if len(data) > 60000:
            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, MAX_JOB_BYTES)
        os.set_blocking(write_fd, False)
        if os.write(write_fd, data) == len(data):
            return read_fd
    except OSError:
        pass
    finally:
        os.close(write_fd)
    os.close(read_fd)
    return None


@functools.cache
def _child_source() -> str:
    """The checker/candidate harness, passed with ``-c``: a slot uid need not be able to read it.
    confine.py's source comes first: the child defines its walls from it (sandbox_child.py)."""
    return "\n".join(package_source(name) for name in ("confine.py", "sandbox_child.py"))


def _validate(job: Job, limits: Limits) -> None:
    if not isinstance(job, Job) or not isinstance(job.program, str) or not isinstance(job.setup, str):
        raise TypeError("run() needs a Job with a str program and str setup")
    if not all(isinstance(t, Statement) and isinstance(t.code, str) for t in job.tests):
        raise TypeError("Job.tests must be a sequence of Statement")
    if not all(isinstance(k, str) and k.isidentifier() and isinstance(v, str) for k, v in job.functions.items()):
        raise ValueError(f"Job.functions must map identifiers to function names, got {job.functions!r}")
    if limits.wall_s <= 0 or limits.memory_mb < 64 or limits.processes < 2 or limits.open_files < 16:
        raise ValueError(f"unusable limits {limits} (wall_s > 0, memory_mb >= 64, processes >= 2, open_files >= 16)")


def run(job: Job, limits: Limits = Limits()) -> Result:
    """Run ``job`` in a fresh sandbox and return the checker's verdict (module doc).

    Nothing the program does raises here; a malformed ``job`` is a TypeError/ValueError.
    """
    _validate(job, limits)
    iso = isolation()
    uid, claim = _claim_uid() if iso.uids else (None, None)
    if iso.uids and uid is None:
        return Result(0, sum(t.counted for t in job.tests), "error", error="no sandbox slot uid could be emptied")
    try:
        return _run(job, limits, iso, uid)
    finally:
        if uid is not None:
            claim.close()
            _slots().put(uid)


def _claim_uid() -> tuple[int, socket.socket] | tuple[None, None]:
    """A slot uid no other run on this machine holds, and the claim on it (close it to give the uid back).

    This process's threads share ``_slots()``; other trainer processes on the machine (the ranks of a
    torchrun launch) have their own, so a uid is also claimed machine-wide by binding an abstract Unix
    socket named after it, which the kernel frees when we close it or die. Without that, two processes
    would run programs as the same uid, and the first to finish would kill the other's (``reaper.kill_run``).
    A claimed uid is swept (``reaper.sweep``) before it runs anything; (None, None) once every slot
    has been retired because a process of its uid would not die."""
    while len(_retired) < len(isolation().uids):
        try:
            uid = _slots().get(timeout=1.0)
        except queue.Empty:  # every slot is busy with another run (or retired): look again
            continue
        claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            claim.bind(f"\0r1-sandbox-slot-{uid}")
        except OSError:  # another process runs as this uid now: try the next one
            claim.close()
            _slots().put(uid)
            time.sleep(0.001)
            continue
        if sweep(uid, isolation().python):  # nothing of an earlier run (or a crashed trainer) may meet this one
            return uid, claim
        claim.close()  # a process of this uid would not die (stuck in the kernel): the slot is retired
        _retired.add(uid)
        logging.getLogger(__name__).warning("sandbox slot uid %d keeps a process that will not die: retired", uid)
    return None, None


def run_many(jobs: list[Job], limits: Limits = Limits(), workers: int | None = None) -> list[Result]:
    """``run`` over ``jobs``, ``workers`` at a time (default: the CPU count); results in order."""
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as executor:
        return list(executor.map(lambda job: run(job, limits), jobs))


def _run(job: Job, limits: Limits, iso: Isolation, uid: int | None) -> Result:
    start, total = time.monotonic(), sum(t.counted for t in job.tests)
    nonce, token = secrets.token_hex(16), secrets.token_hex(8)
    workdir = tempfile.mkdtemp(prefix="r1-sandbox-")
    secret = {
        "nonce": nonce,
        "setup": job.setup,
        "tests": [asdict(t) for t in job.tests],
        "functions": dict(job.functions),
    }
    data = _job_data(job, limits, workdir, uid, iso)
    fds = [_filled_pipe(json.dumps(data).encode()), _filled_pipe(json.dumps(secret).encode())]
    proc = result_r = None
    try:
        if None in fds:
            return Result(0, total, "rejected", error=f"program or tests larger than {MAX_JOB_BYTES} bytes")
        if uid is not None:
            os.chown(workdir, uid, uid)
        result_r, result_w = os.pipe()
        fds.append(result_w)
        try:
            proc = _launch(iso, workdir, token, fds, uid)
        except OSError as exc:
            return Result(0, total, "error", error=f"could not start the sandbox: {exc}")
        finally:
            _close(fds)  # the child has its copies; the verdict pipe ends only when our write end is gone
        out, err, verdict, finished = _collect(proc, result_r, limits)
    finally:
        _close(fds)
        if proc is not None:
            namespaced = not iso.pid.startswith("none")
            kill_run(proc, uid, f"R1_SANDBOX={token}".encode(), iso.python, namespaced=namespaced)
            proc.stdout.close()
            proc.stderr.close()
        _close([result_r])
        remove_tree(workdir)  # never raises, however deep the program's folders (cleanup.py)
        if uid is not None and iso.landlock.startswith("none"):  # the slot uid could write outside its work dir
            remove_owned(uid)
    result = _verdict(verdict, nonce, total, finished)
    result.stdout, result.stderr = out.decode(errors="replace"), err.decode(errors="replace")
    result.seconds = time.monotonic() - start
    return result


def _launch(iso: Isolation, workdir: str, token: str, fds: list[int], uid: int | None) -> subprocess.Popen:
    """Start the child (checker and candidate) in its own session, as `uid`, with a scrubbed
    environment that carries the run's marker, passing it the pipe descriptors `fds`."""
    env = {
        "PATH": SAFE_PATH,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": workdir,
        "TMPDIR": workdir,
        "R1_SANDBOX": token,
    }
    # -u: the program's prints reach us even though the candidate ends with SIGKILL
    argv = [*iso.prefix, iso.python, "-I", "-S", "-B", "-u", "-c", _child_source(), *map(str, fds)]
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=workdir,
        env=env,
        start_new_session=True,
        pass_fds=fds,
        user=uid,
        group=uid,
        extra_groups=None if uid is None else [],
    )


def _job_data(job: Job, limits: Limits, workdir: str, uid: int | None, iso: Isolation) -> dict:
    """What the checker reads before forking the candidate (nothing secret: the candidate has it too)."""
    # RLIMIT_NPROC counts all tasks of the uid: a slot uid has none between runs (reaper.sweep), ours has
    # many; `unshare --fork` adds one of the run's own, waiting outside the namespace for the checker.
    running = 0 if uid is not None else sum(n for _, _, n in processes(os.geteuid()))
    running += "--fork" in iso.prefix
    rlimits = {
        "RLIMIT_AS": limits.memory_mb << 20,
        "RLIMIT_CPU": limits.cpu_s or int(limits.wall_s + 0.999) + 1,
        "RLIMIT_FSIZE": limits.file_mb << 20,
        "RLIMIT_NOFILE": limits.open_files,
        "RLIMIT_CORE": 0,
    }
    return {
        "program": job.program,
        "workdir": workdir,
        "hooks": limits.hooks,
        "wall_s": limits.wall_s,
        "nproc": running + limits.processes,
        "rlimits": rlimits,
        "require": iso.required(),
    }


def _close(fds: list) -> None:
    """Close and forget every descriptor in ``fds`` (None entries are skipped)."""
    while fds:
        fd = fds.pop()
        if fd is not None:
            os.close(fd)


def _collect(proc, result_r: int, limits: Limits) -> tuple[bytes, bytes, bytes, bool]:
    """Read stdout, stderr and the verdict pipe until the verdict pipe closes (plus DRAIN_S for
    the others) or the wall-clock limit plus GRACE_S; keep at most ``output_kb`` of each stream."""
    caps = {
        proc.stdout.fileno(): limits.output_kb << 10,
        proc.stderr.fileno(): limits.output_kb << 10,
        result_r: MAX_JOB_BYTES,
    }
    kept = {fd: bytearray() for fd in caps}
    stop, finished = time.monotonic() + limits.wall_s + GRACE_S, False
    with selectors.DefaultSelector() as selector:
        for fd in caps:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map() and time.monotonic() < stop:
            for key, _ in selector.select(max(stop - time.monotonic(), 0)):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    selector.unregister(key.fd)
                    if key.fd == result_r:  # the checker is done (or dead): stdout gets a short drain only
                        finished, stop = True, min(stop, time.monotonic() + DRAIN_S)
                elif len(kept[key.fd]) < caps[key.fd]:
                    kept[key.fd] += chunk[: caps[key.fd] - len(kept[key.fd])]
    return bytes(kept[proc.stdout.fileno()]), bytes(kept[proc.stderr.fileno()]), bytes(kept[result_r]), finished


def _verdict(raw: bytes, nonce: str, total: int, finished: bool) -> Result:
    """The Result from the checker's last line — accepted only with this run's nonce."""
    if not finished:
        return Result(0, total, "timeout", timed_out=True, error="killed at the wall-clock limit")
    head, _, body = raw.rstrip(b"\n").rpartition(b"\n")[2].decode("utf-8", "replace").partition(" ")
    try:
        data = json.loads(body) if head == nonce else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return Result(0, total, "crashed", error="the checker ended without a verdict")
    if "sandbox_error" in data:
        return Result(0, total, "error", error=f"a sandbox wall could not be set: {data['sandbox_error']}")
    if "setup_error" in data:
        return Result(0, total, "error", error=f"the tests' own setup failed: {data['setup_error']}")
    passed = data.get("passed")
    if not isinstance(passed, list) or len(passed) != total or not all(type(p) is bool for p in passed):
        return Result(0, total, "error", error="malformed verdict")
    return Result(sum(passed), total, "ok", timed_out=bool(data.get("timed_out")), error=str(data.get("error", "")))
