"""Ending every process of a sandboxed run, and making sure a slot uid is empty before it is reused.

With a PID namespace (walls.py) the kernel ends a run atomically: when its checker, PID 1 there,
exits or is killed, every process of the namespace is killed with it, whatever it did (new
sessions, fork-and-exit chains, a main thread that exited while another runs on). What is here
covers the rest:

* ``sweep(uid)`` kills every process of a slot uid, by pid and with ``kill(-1, SIGKILL)`` sent
  *as that uid*: the kernel signals all of them in one pass that a forking process cannot outrun,
  where a scan of ``/proc`` followed by kills is always one generation late. It runs before a slot is reused
  (a process left by a crashed trainer would otherwise meet the next run) and after each run
  without a PID namespace.
* Same-uid mode (the trainer is not root) cannot do that without killing the trainer: it kills the
  process group, then every process still carrying the run's environment marker, by scan.

A process counts as alive unless it is a zombie whose whole thread group has ended: a main thread
that exited while another thread runs leaves ``State: Z`` with ``Threads: 2`` in ``/proc``.
Deliberately left out: cgroups (``cgroup.kill``), which need a delegated cgroup this does not assume.
"""

import os
import shutil
import signal
import subprocess
import time

from .walls import SAFE_PATH

SWEEP_ROUNDS = 50  # each round: one kill(-1) and a short wait; RLIMIT_NPROC keeps a run's processes few


def processes(uid: int | None = None):
    """(pid, real uid, threads) of every live process, or of those whose real uid is ``uid`` (module
    doc: zombies with live threads count). Not filtered by the owner of ``/proc/PID``: a process
    that makes itself non-dumpable shows as root's there."""
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/status", "rb") as handle:
                    fields = dict(line.split(b":", 1) for line in handle.read().splitlines() if b":" in line)
            except OSError:  # exited meanwhile
                continue
            threads, owner = int(fields.get(b"Threads", b"1")), int(fields[b"Uid"].split()[0])
            alive = not fields.get(b"State", b"Z").strip().startswith(b"Z") or threads > 1
            if alive and (uid is None or owner == uid):
                yield int(name), owner, threads


def _has_marker(pid: int, marker: bytes) -> bool:
    """Whether ``pid`` carries ``marker`` in its environment; read through any live thread, since a
    zombie leader's own ``environ`` is gone while its other threads run."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/environ", "rb") as handle:
                return marker in handle.read().split(b"\0")
        except OSError:
            continue
    return False


def _kill_as(uid: int, python: str) -> None:
    """``kill(-1, SIGKILL)`` from a process running as ``uid``: every process of that uid but itself."""
    kill = shutil.which("kill", path=SAFE_PATH)
    argv = [kill, "-9", "-1"] if kill else [python, "-I", "-S", "-c", "import os; os.kill(-1, 9)"]
    try:
        subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            env={"PATH": SAFE_PATH},
            user=uid,
            group=uid,
            extra_groups=[],
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        pass


def sweep(uid: int, python: str, always: bool = False) -> bool:
    """Kill every process of slot ``uid``; True once none is left (bounded: never hangs).

    Each round kills what a scan found, by pid (the trainer is root), and sends ``kill(-1)`` as the
    uid (module doc), which also reaches processes a scan missed. Both are needed: a fork chain
    outruns the scan, and a program that kills every process of its uid kills the ``kill`` helper
    too. Without ``always``, nothing is spawned when the first scan finds nothing (the common case:
    a run in a PID namespace leaves nothing behind); ``always`` sends ``kill(-1)`` regardless, for
    runs without a PID namespace, whose processes a scan could miss."""
    for _ in range(SWEEP_ROUNDS):
        pids = [pid for pid, _, _ in processes(uid)]
        if not pids and not always:
            return True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        _kill_as(uid, python)
        always = False
        time.sleep(0.005)
    return not any(processes(uid))


def kill_run(proc: subprocess.Popen, uid: int | None, marker: bytes, python: str, namespaced: bool) -> None:
    """Kill the run's process group, reap the process we started, then kill anything of the run
    that left the group (module doc). With a PID namespace, reaping first means the sweep finds
    nothing: ``unshare`` reports its child's end only after the namespace is empty."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # cannot happen short of a stuck kernel: sweep regardless
        pass
    if uid is not None:
        sweep(uid, python, always=not namespaced)
        return
    for _ in range(100):  # same-uid mode: by the run's environment marker
        pids = [pid for pid, _, _ in processes(os.geteuid()) if _has_marker(pid, marker)]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)
