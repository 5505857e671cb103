"""Which walls this machine lets the code sandbox put up, probed once per process with short subprocesses.

Five layers, each reported as a line (``"none: <reason>"`` when the kernel or the container refuses it):

* **user**: as root, one unprivileged slot uid per concurrent run (61000-61063, checked to belong to
  no account), and an interpreter those uids can execute;
* **network** and **pid**: ``unshare --user --net --pid --fork --kill-child --mount-proc``, so a run
  has only a down loopback, sees only its own processes in ``/proc``, and ends, all of it, when its
  checker (PID 1 there) ends: the kernel kills every process of the namespace;
* **landlock** and **seccomp** (``confine.py``): set by the run itself, inside the namespaces.

A missing layer does not stop the sandbox: it runs with the rest and says so once, at startup, in
a warning naming each missing wall (docs/sandbox.md says what each stops and what the fallback
is). A layer the probe found is then required: a run whose child cannot set it is an error, not a
silently weaker run. Deliberately left out: cgroups (this needs no cgroup delegation; the PID
namespace gives the atomic kill that ``cgroup.kill`` would).
"""

import functools
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, fields

SLOT_UID_BASE, SLOTS = 61000, 64  # as root, each concurrent run borrows one of these uids (unused by accounts)
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
NAMESPACES = ("--net", "--pid", "--fork", "--kill-child", "--mount-proc")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Isolation:
    """What this machine allows (module doc); a layer reads "none: <reason>" when it is missing."""

    python: str  # the interpreter runs use
    prefix: tuple[str, ...]  # the unshare command before it, or () without namespaces
    uids: tuple[int, ...]  # one unprivileged uid per concurrent run (root only), else ()
    network: str  # "netns" or "none: <reason>"
    user: str  # how a run is separated from the trainer's uid
    pid: str = "none: not probed"  # "pidns: …" when a run has a PID namespace of its own
    landlock: str = "none: not probed"
    seccomp: str = "none: not probed"

    def missing(self) -> dict[str, str]:
        """The layers this machine refused, with the reason."""
        return {f.name: getattr(self, f.name) for f in fields(self) if str(getattr(self, f.name)).startswith("none")}

    def required(self) -> list[str]:
        """The walls a run sets itself (confine.py) that the probe found working: each run must set them."""
        return [layer for layer in ("landlock", "seccomp") if not getattr(self, layer).startswith("none")]


_isolation: Isolation | None = None
_lock = threading.Lock()


def isolation() -> Isolation:
    """Probe (once, with a few short subprocesses) which walls work here; thread-safe."""
    global _isolation
    with _lock:
        if _isolation is None:
            _isolation = _probe()
            if _isolation.missing() or not _isolation.uids:
                missing = _isolation.missing().items()
                weaker = [f"{layer} ({reason.removeprefix('none: ')})" for layer, reason in missing]
                log.warning(
                    "the code sandbox runs with fewer walls on this machine: %s; runs: %s (docs/sandbox.md)",
                    ", ".join(weaker) or "all kernel layers present",
                    _isolation.user,
                )
        return _isolation


@functools.cache
def package_source(name: str) -> str:
    """The source of one of this package's files (runs receive it with ``-c``: a slot uid need not be
    able to read the installed package)."""
    with open(os.path.join(os.path.dirname(__file__), name), encoding="utf-8") as handle:
        return handle.read()


def _try(argv: list[str], uid: int | None) -> tuple[str | None, str]:
    """(stdout, "") of a successful probe command run as ``uid``, else (None, reason)."""
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            cwd="/",
            env={"PATH": SAFE_PATH},
            user=uid,
            group=uid,
            extra_groups=None if uid is None else [],
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, str(exc)
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    if done.returncode == 0:
        return done.stdout.decode().strip(), ""
    return None, lines[-1] if lines else f"exit {done.returncode}"


def _probe() -> Isolation:
    python, uids, user = _probe_user()
    uid = uids[0] if uids else None
    network, pid, prefix = _probe_namespaces(python, uid)
    walls = _probe_confinement(python, uid, prefix)
    return Isolation(python, prefix, uids, network, user, pid, walls["landlock"], walls["seccomp"])


def _probe_user() -> tuple[str, tuple[int, ...], str]:
    """As root: an interpreter that unprivileged slot uids can run, and those uids."""
    if os.geteuid() != 0:
        return sys.executable, (), f"same uid as the trainer ({os.geteuid()}): not root, no other uid to run as"
    import pwd

    uids = tuple(range(SLOT_UID_BASE, SLOT_UID_BASE + SLOTS))
    taken = sorted(set(uids) & {entry.pw_uid for entry in pwd.getpwall()})
    if taken:
        return sys.executable, (), f"same uid as the trainer (root): slot uids {taken} belong to accounts"
    # The trainer's interpreter may sit under a directory only root can read (e.g. /root/.pyenv).
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    names = [
        sys.executable,
        getattr(sys, "_base_executable", ""),
        os.path.realpath(sys.executable),
        shutil.which(version, path=SAFE_PATH),
        shutil.which("python3", path=SAFE_PATH),
    ]
    check = "import sys; print(sys.version_info >= (3, 9))"
    runnable = (p for p in dict.fromkeys(names) if p and _try([p, "-I", "-S", "-B", "-c", check], uids[0])[0] == "True")
    python = next(runnable, None)
    if python is None:
        return sys.executable, (), "same uid as the trainer (root): no Python 3.9+ that another uid can run"
    return python, uids, f"uids {uids[0]}-{uids[-1]}, one per concurrent run"


def _probe_namespaces(python: str, uid: int | None) -> tuple[str, str, tuple[str, ...]]:
    """(network, pid, unshare prefix): the most namespaces a run of ``uid`` can get."""
    unshare = shutil.which("unshare", path=SAFE_PATH)
    if unshare is None:
        return "none: no unshare command", "none: no unshare command", ()
    me, group = (uid, uid) if uid is not None else (os.geteuid(), os.getegid())
    check = (
        "import os, socket; "
        "print(len(socket.if_nameindex()), os.getpid(), sum(p.isdigit() for p in os.listdir('/proc')))"
    )
    reason = ""
    # --map-user/--map-group for util-linux < 2.38, which has no --map-current-user
    for user in (["--map-current-user"], [f"--map-user={me}", f"--map-group={group}"]):
        for namespaces in (NAMESPACES, ("--net",)):
            prefix = (unshare, "--user", *user, *namespaces)
            out, reason = _try([*prefix, python, "-I", "-S", "-B", "-c", check], uid)
            interfaces, pid, seen = out.split() if out and len(out.split()) == 3 else ("", "", "")
            if interfaces == "1":  # only the namespace's own loopback
                if (pid, seen) == ("1", "1"):
                    return "netns", "pidns: a run sees only its own processes and ends with its checker", prefix
                return "netns", f"none: unshare --pid failed ({reason or 'host processes visible'})", prefix
    return f"none: unshare failed ({reason or 'host interfaces visible'})", "none: unshare failed", ()


def _probe_confinement(python: str, uid: int | None, prefix: tuple[str, ...]) -> dict[str, str]:
    """What ``confine()`` sets in a process like a run's (same uid, same namespaces)."""
    source = package_source("confine.py") + "\nimport json\nprint(json.dumps(confine('/')))\n"
    out, reason = _try([*prefix, python, "-I", "-S", "-B", "-c", source], uid)
    try:
        walls = json.loads(out or "")
    except ValueError:
        walls = {}
    return {layer: str(walls.get(layer, f"none: the probe failed ({reason})")) for layer in ("landlock", "seccomp")}
