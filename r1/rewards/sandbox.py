"""Run an untrusted Python program against trusted tests; only the trusted checker gives the verdict.

Code rewards (SPEC §3) execute model-written programs thousands of times, so the program is
hostile by assumption: it may loop, allocate 10 GB, fork-bomb, ``sys.exit(0)`` before the
tests, return an object whose ``__eq__`` is always True, print a fake verdict, write outside
its folder, read the trainer's secrets or open sockets. ``run(job)`` says how many of the
job's test statements passed, and nothing the program prints, returns or exits with can fake it.

One run is a fresh ``python -I -S -B -u`` (isolated, stdlib only, no .pyc writes) executing
this file's child section. Inside it, two processes:

* the *checker* reads the program, forks the *candidate*, makes itself non-dumpable (so the
  candidate cannot ptrace it or read ``/proc/<pid>/mem``), and only then reads the tests and
  a random nonce from a second pipe that the candidate closed before running any program code;
* the candidate executes the program, then serves calls: the checker runs the test statements
  with names such as ``candidate`` bound to proxies that send JSON-encoded arguments and get
  back a plain value (None, bool, int, float, str, bytes, complex, list, tuple, dict, set;
  subclasses are reduced to their base type, any other object is an error). Comparisons
  therefore happen in the checker on builtin types: ``__eq__`` tricks have nothing to act on.
  Each test statement is counted on its own; a timeout fails the statements not yet run.
* when all tests ran, the checker writes ``<nonce> {"passed": [...]}`` to a third pipe. The
  parent reads the verdict from that line only, never from the exit code or stdout.

Walls around both processes: as root, each concurrent run gets its own unprivileged uid
(``SLOT_UID_BASE`` + slot), so file permissions, RLIMIT_NPROC and signals work as for any
user; a new network namespace via ``unshare`` when it works (``network_isolation()``); rlimits
on address space, CPU, file size, open files, processes; a private working directory (deleted
afterwards); a scrubbed environment; stdin closed; output capped. At ``wall_s`` the checker
stops waiting (tests that passed still count); at ``wall_s + GRACE_S`` the parent SIGKILLs the
process group; afterwards every process of the run is killed (group, slot uid, env marker).
Inside the candidate, audit hooks block sockets, process creation, ctypes and writes outside
the work dir — defence in depth only: in-process hooks can be undone by a determined program.

Deliberately left out: seccomp, Landlock, mount and PID namespaces, cgroups, stdin/stdout
(Codeforces-style) tests, third-party packages inside the sandbox. docs/sandbox.md lists what
is and is not protected, and the measured numbers.
"""

import json
import os
import resource
import select
import signal
import sys
import time

# ---------------------------------------------------------------------------------------------
# Child side: the checker and the candidate. The parent runs this whole source with
# `python -I -S -B -c`; the child stops at the `__main__` guard, before the parent side.

MAX_DEPTH = 64  # nesting of values passed between checker and candidate
MAX_REPLY_BYTES = 8 << 20
BLOCKED_MODULES = frozenset({"ctypes", "_ctypes", "_posixsubprocess", "sqlite3", "_sqlite3", "dbm", "_dbm", "_gdbm",
                             "_xxsubinterpreters", "_testcapi", "_testinternalcapi"})
DENIED_EVENTS = frozenset({"os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen",
                           "os.kill", "os.killpg", "socket.__new__", "socket.connect", "socket.bind", "os.symlink", "os.link",
                           "resource.setrlimit", "resource.prlimit"})
PATH_EVENTS = {  # audit event -> (argument positions of the paths it writes, of its dir_fd arguments)
    "os.remove": ((0,), (1,)), "os.rmdir": ((0,), (1,)), "os.mkdir": ((0,), (2,)), "os.rename": ((0, 1), (2, 3)),
    "os.chmod": ((0,), (2,)), "os.chown": ((0,), (3,)), "os.utime": ((0,), (3,)), "os.truncate": ((0,), ()),
}


class CandidateError(Exception):
    """The program could not answer a call: it raised, exited, timed out or returned a non-value."""


def _describe(exc: BaseException) -> str:
    try:
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    except BaseException:  # a program's exception may carry a __str__ that raises
        return type(exc).__name__


def _encode(value, depth: int = 0):
    """A plain value as JSON data. Base-type methods read subclasses, so overrides never run."""
    if depth > MAX_DEPTH:
        raise ValueError("value nested too deeply")
    if value is None or type(value) is bool:
        return value
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, list):
        return [_encode(v, depth + 1) for v in list.__iter__(value)]
    if isinstance(value, dict):
        return {"dict": [[_encode(k, depth + 1), _encode(v, depth + 1)] for k, v in dict.items(value)]}
    for kind in (tuple, frozenset, set):
        if isinstance(value, kind):
            return {kind.__name__: [_encode(v, depth + 1) for v in kind.__iter__(value)]}
    if isinstance(value, bytes):
        return {"bytes": bytes.hex(value)}
    if type(value) is complex:
        return {"complex": [value.real, value.imag]}
    raise TypeError(f"returned a {type(value).__name__}, not a plain value")


def _decode(data, depth: int = 0):
    """The inverse of ``_encode`` for data from an untrusted process: builtin types only."""
    if depth > MAX_DEPTH:
        raise ValueError("value nested too deeply")
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is list:
        return [_decode(v, depth + 1) for v in data]
    if type(data) is dict and len(data) == 1:
        (tag, items), = data.items()
        if tag == "bytes" and type(items) is str:
            return bytes.fromhex(items)
        if type(items) is list:
            if tag == "dict":
                return {_decode(k, depth + 1): _decode(v, depth + 1) for k, v in items}
            if tag == "complex":
                return complex(*[float(x) for x in items])
            kinds = {"tuple": tuple, "set": set, "frozenset": frozenset}
            if tag in kinds:
                return kinds[tag](_decode(v, depth + 1) for v in items)
    raise ValueError("malformed value from the program")


class _Channel:
    """The checker's end of the call pipes to the candidate process, with one deadline."""

    def __init__(self, pid: int, calls_fd: int, replies_fd: int, deadline: float):
        self.pid, self.calls, self.replies, self.deadline = pid, calls_fd, replies_fd, deadline
        self.buffer = bytearray()
        self.failure = ""  # set once the candidate can no longer answer
        self.timed_out = False
        os.set_blocking(calls_fd, False)

    def call(self, name: str, args: tuple, kwargs: dict):
        if self.failure:
            raise CandidateError(self.failure)
        self._send(json.dumps({"fn": name, "args": _encode(list(args)), "kwargs": _encode(kwargs)}).encode() + b"\n")
        reply = json.loads(self._receive())
        if "error" in reply:
            raise CandidateError(str(reply["error"])[:300])
        return _decode(reply["value"])

    def stop(self, reason: str) -> None:
        if not self.failure:
            self.failure = reason
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except OSError:
                pass

    def _wait(self, readable: bool) -> None:
        left = self.deadline - time.monotonic()
        ready = select.select([self.replies] if readable else [], [] if readable else [self.calls], [], max(left, 0))
        if not any(ready):
            self.timed_out = True
            self.stop("timed out (wall-clock limit reached)")
            raise CandidateError(self.failure)

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            self._wait(readable=False)
            try:
                view = view[os.write(self.calls, view):]
            except BrokenPipeError:
                self.stop("the program exited")
                raise CandidateError(self.failure) from None

    def _receive(self) -> bytes:
        while b"\n" not in self.buffer:
            self._wait(readable=True)
            chunk = os.read(self.replies, 1 << 16)
            if not chunk or len(self.buffer) > MAX_REPLY_BYTES:
                self.stop("the program exited" if not chunk else "reply too large")
                raise CandidateError(self.failure)
            self.buffer += chunk
        end = self.buffer.index(b"\n")
        line = bytes(self.buffer[:end])
        del self.buffer[:end + 1]
        return line


class _Remote:
    """Stands in for one of the program's functions inside the checker."""

    def __init__(self, channel: _Channel, name: str):
        self.channel, self.name = channel, name

    def __call__(self, *args, **kwargs):
        return self.channel.call(self.name, args, kwargs)


def _install_guards(workdir: str) -> None:
    """Audit hooks for the candidate: no sockets, processes, signals, ctypes, or writes outside
    ``workdir``. Defence in depth only; everything the hook needs is bound here, not looked up."""
    getcwd, getpid, fspath = os.getcwd, os.getpid, os.fspath
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    root, denied, blocked, path_events = workdir.rstrip("/"), DENIED_EVENTS, BLOCKED_MODULES, PATH_EVENTS

    def absolute(path) -> str:
        path = fspath(path)
        path = path.decode("utf-8", "surrogateescape") if isinstance(path, bytes) else path
        parts = []
        for part in (path if path.startswith("/") else getcwd() + "/" + path).split("/"):
            if part == "..":
                parts = parts[:-1]
            elif part not in ("", "."):
                parts.append(part)
        return "/" + "/".join(parts)

    def writable(path) -> bool:
        if isinstance(path, int):  # an already open descriptor
            return True
        where = absolute(path)
        return where == root or where.startswith(root + "/") or where == "/dev/null"

    def hook(event: str, args: tuple) -> None:
        if event in denied:
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "import" and args[0].partition(".")[0] in blocked:
            raise ImportError(f"sandbox: module {args[0]} is not allowed")
        if event == "open":
            path, mode, flags = args
            where = "" if isinstance(path, int) else absolute(path)
            parts = where.split("/")
            if len(parts) > 2 and parts[1] == "proc" and parts[2].isdigit() and int(parts[2]) != getpid():
                raise PermissionError("sandbox: other processes' /proc entries are not readable")
            wants_write = (mode is not None and any(c in mode for c in "wax+")) or bool(flags & write_flags)
            if wants_write and (mode is None or not writable(path)):  # os.open may carry an unseen dir_fd
                raise PermissionError(f"sandbox: writing {path!r} is not allowed (only inside the work dir)")
        elif event in path_events:
            paths, dir_fds = path_events[event]
            if any(args[i] not in (None, -1) for i in dir_fds) or not all(writable(args[i]) for i in paths):
                raise PermissionError(f"sandbox: {event} outside the work dir (or relative to a dir_fd) is not allowed")

    sys.addaudithook(hook)


def _candidate(job: dict, reader, replies_fd: int) -> None:
    """The forked candidate process: run the program, then answer calls until the checker stops."""
    resource.setrlimit(resource.RLIMIT_NPROC, (job["nproc"], job["nproc"]))
    if reader.readline() != b"go\n":  # the checker is non-dumpable now
        os._exit(0)
    if job["hooks"]:
        _install_guards(job["workdir"])
    namespace, load_error = {"__name__": "solution"}, ""
    try:
        exec(compile(job["program"], "solution.py", "exec"), namespace)
    except BaseException as exc:  # SyntaxError, SystemExit, MemoryError…: the program failed
        load_error = "the program raised " + _describe(exc)
    for line in reader:
        try:
            request = json.loads(line)
            fn = namespace.get(request["fn"])
            if load_error or not callable(fn):
                reply = json.dumps({"error": load_error or f"the program does not define {request['fn']}()"})
            else:
                reply = json.dumps({"value": _encode(fn(*_decode(request["args"]), **_decode(request["kwargs"])))})
        except BaseException as exc:  # incl. SystemExit from inside the function: a failed call
            reply = json.dumps({"error": _describe(exc)})
        data = reply.encode() + b"\n"
        while data:
            data = data[os.write(replies_fd, data):]
    os._exit(0)


def _check(secret: dict, channel: _Channel) -> tuple[list[bool], str]:
    """Run the trusted test statements in the checker; a statement passes when it raises nothing."""
    namespace = {"__name__": "checker"}
    exec(compile(secret["setup"], "setup.py", "exec"), namespace)
    for alias, target in secret["functions"].items():
        namespace[alias] = _Remote(channel, target)
    passed, first_error = [], ""
    for test in secret["tests"]:
        try:
            exec(compile(test["code"], "test.py", "exec"), namespace)
            ok = True
        except Exception as exc:
            ok, first_error = False, first_error or _describe(exc)
        if test["counted"]:
            passed.append(ok)
    return passed, first_error


def _make_undumpable() -> None:
    """PR_SET_DUMPABLE 0: a same-uid process can then neither ptrace us nor read our memory."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
    except Exception:  # no ctypes or prctl: the uid and namespace walls remain
        pass


def _child_main(job_fd: int, secret_fd: int, result_fd: int) -> int:
    start = time.monotonic()
    with os.fdopen(job_fd, "rb") as handle:
        job = json.loads(handle.read())
    for name, value in job["rlimits"].items():
        limit = getattr(resource, name)
        resource.setrlimit(limit, (value, value + 1 if limit == resource.RLIMIT_CPU else value))
    calls_r, calls_w = os.pipe()
    replies_r, replies_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the candidate: it must never hold the secret or the verdict pipe
        for fd in (secret_fd, result_fd, calls_w, replies_r):
            os.close(fd)
        _candidate(job, os.fdopen(calls_r, "rb"), replies_w)
    os.close(calls_r)
    os.close(replies_w)
    _make_undumpable()
    os.write(calls_w, b"go\n")
    with os.fdopen(secret_fd, "rb") as handle:
        secret = json.loads(handle.read())
    channel = _Channel(pid, calls_w, replies_r, start + job["wall_s"])
    try:
        passed, error = _check(secret, channel)
        verdict = {"passed": passed, "error": channel.failure or error, "timed_out": channel.timed_out}
    except Exception as exc:  # the trusted setup code failed: a data error, not the program's
        verdict = {"setup_error": _describe(exc)}
    channel.stop("finished")
    os.write(result_fd, f"{secret['nonce']} {json.dumps(verdict)}\n".encode())
    return 0


if __name__ == "__main__":  # the child stops here; everything below is the parent side
    sys.exit(_child_main(*map(int, sys.argv[1:4])))

# ---------------------------------------------------------------------------------------------
# Parent side. Its imports sit here so that the child, which runs this same source, skips them
# (they would add ~20 ms to every run).

import fcntl  # noqa: E402
import functools  # noqa: E402
import queue  # noqa: E402
import secrets  # noqa: E402
import selectors  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402

SLOT_UID_BASE, SLOTS = 61000, 64  # as root, each concurrent run borrows one of these uids (unused by accounts)
GRACE_S = 1.0  # past wall_s the parent waits this long for the checker's verdict, then kills
DRAIN_S = 0.25  # after the verdict, how long a grandchild may keep stdout open before we stop reading
MAX_JOB_BYTES = 1 << 20  # program (or tests) larger than this are rejected: they travel in one pipe buffer
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


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


@dataclass(frozen=True)
class Isolation:
    """What this machine allows, probed once: see ``isolation()``."""

    python: str  # the interpreter runs use
    prefix: tuple[str, ...]  # the unshare command before it, or () without network namespaces
    uids: tuple[int, ...]  # one unprivileged uid per concurrent run (root only), else ()
    network: str  # "netns" or "none: <reason>"
    user: str  # how a run is separated from the trainer's uid


_isolation: Isolation | None = None
_lock = threading.Lock()
_free_uids: queue.SimpleQueue = queue.SimpleQueue()


def isolation() -> Isolation:
    """Probe (once, with a few short subprocesses) which walls work here; thread-safe."""
    global _isolation
    with _lock:
        if _isolation is None:
            _isolation = _probe()
            for uid in _isolation.uids:
                _free_uids.put(uid)
        return _isolation


def network_isolation() -> str:
    """``"netns"`` when runs get their own network namespace, else ``"none: <reason>"``."""
    return isolation().network


def _try(argv: list[str], uid: int | None) -> tuple[str | None, str]:
    """(stdout, "") of a successful probe command run as ``uid``, else (None, reason)."""
    try:
        done = subprocess.run(argv, capture_output=True, timeout=60, stdin=subprocess.DEVNULL, cwd="/", env={"PATH": SAFE_PATH},
                              user=uid, group=uid, extra_groups=None if uid is None else [])
    except (OSError, subprocess.SubprocessError) as exc:
        return None, str(exc)
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    return (done.stdout.decode().strip(), "") if done.returncode == 0 else (None, lines[-1] if lines else f"exit {done.returncode}")


def _probe() -> Isolation:
    python, uids, user = _probe_user()
    network, prefix = _probe_network(python, uids[0] if uids else None)
    return Isolation(python, prefix, uids, network, user)


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
    names = [sys.executable, getattr(sys, "_base_executable", ""), os.path.realpath(sys.executable),
             shutil.which(f"python{sys.version_info[0]}.{sys.version_info[1]}", path=SAFE_PATH), shutil.which("python3", path=SAFE_PATH)]
    check = "import sys; print(sys.version_info >= (3, 9))"
    python = next((p for p in dict.fromkeys(names) if p and _try([p, "-I", "-S", "-B", "-c", check], uids[0])[0] == "True"), None)
    if python is None:
        return sys.executable, (), "same uid as the trainer (root): no Python 3.9+ that another uid can run"
    return python, uids, f"uids {uids[0]}-{uids[-1]}, one per concurrent run"


def _probe_network(python: str, uid: int | None) -> tuple[str, tuple[str, ...]]:
    """("netns", unshare prefix) when a run can get a network namespace of its own."""
    unshare = shutil.which("unshare", path=SAFE_PATH)
    if unshare is None:
        return "none: no unshare command", ()
    me, group = (uid, uid) if uid is not None else (os.geteuid(), os.getegid())
    reason = ""
    for flags in (["--map-current-user"], [f"--map-user={me}", f"--map-group={group}"]):  # the latter for util-linux < 2.38
        prefix = (unshare, "--user", *flags, "--net")
        out, reason = _try([*prefix, python, "-I", "-S", "-B", "-c", "import socket; print(len(socket.if_nameindex()))"], uid)
        if out == "1":  # only the namespace's own loopback
            return "netns", prefix
    return f"none: unshare failed ({reason or 'host interfaces visible'})", ()


def _processes():
    """(pid, real uid, threads) of every live (non-zombie) process."""
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/status", "rb") as handle:
                    fields = dict(line.split(b":", 1) for line in handle.read().splitlines() if b":" in line)
            except OSError:  # exited meanwhile
                continue
            if not fields.get(b"State", b"Z").strip().startswith(b"Z"):
                yield int(name), int(fields[b"Uid"].split()[0]), int(fields.get(b"Threads", b"1"))


def _has_marker(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return marker in handle.read().split(b"\0")
    except OSError:
        return False


def _kill_run(pgid: int, uid: int | None, marker: bytes) -> None:
    """Kill the run's process group, then anything of the run that left it: every process of the
    slot uid, or (same-uid mode) every process still carrying the run's environment marker."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
    for _ in range(100):  # a fork bomb may still be spawning; RLIMIT_NPROC keeps this short
        if uid is not None:
            pids = [pid for pid, owner, _ in _processes() if owner == uid]
        else:
            pids = [pid for pid, owner, _ in _processes() if owner == os.geteuid() and _has_marker(pid, marker)]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)


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
    with open(__file__, encoding="utf-8") as handle:
        return handle.read()


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
    uid = _free_uids.get() if iso.uids else None
    try:
        return _run(job, limits, iso, uid)
    finally:
        if uid is not None:
            _free_uids.put(uid)


def run_many(jobs: list[Job], limits: Limits = Limits(), workers: int | None = None) -> list[Result]:
    """``run`` over ``jobs``, ``workers`` at a time (default: the CPU count); results in order."""
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as executor:
        return list(executor.map(lambda job: run(job, limits), jobs))


def _run(job: Job, limits: Limits, iso: Isolation, uid: int | None) -> Result:
    start, total = time.monotonic(), sum(t.counted for t in job.tests)
    nonce, token = secrets.token_hex(16), secrets.token_hex(8)
    workdir = tempfile.mkdtemp(prefix="r1-sandbox-")
    secret = {"nonce": nonce, "setup": job.setup, "tests": [asdict(t) for t in job.tests], "functions": dict(job.functions)}
    fds = [_filled_pipe(json.dumps(_job_data(job, limits, workdir, uid)).encode()), _filled_pipe(json.dumps(secret).encode())]
    proc = result_r = None
    try:
        if None in fds:
            return Result(0, total, "rejected", error=f"program or tests larger than {MAX_JOB_BYTES} bytes")
        if uid is not None:
            os.chown(workdir, uid, uid)
        result_r, result_w = os.pipe()
        fds.append(result_w)
        env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir, "R1_SANDBOX": token}
        # -u: the program's prints reach us even though the candidate ends with SIGKILL
        argv = [*iso.prefix, iso.python, "-I", "-S", "-B", "-u", "-c", _child_source(), *map(str, fds)]
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=workdir, env=env,
                                    start_new_session=True, pass_fds=fds, user=uid, group=uid, extra_groups=None if uid is None else [])
        except OSError as exc:
            return Result(0, total, "error", error=f"could not start the sandbox: {exc}")
        finally:
            _close(fds)  # the child has its copies; the verdict pipe ends only when our write end is gone
        out, err, verdict, finished = _collect(proc, result_r, limits)
    finally:
        _close(fds)
        if proc is not None:
            _kill_run(proc.pid, uid, f"R1_SANDBOX={token}".encode())
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        _close([result_r])
        shutil.rmtree(workdir, ignore_errors=True)
    result = _verdict(verdict, nonce, total, finished)
    result.stdout, result.stderr = out.decode(errors="replace"), err.decode(errors="replace")
    result.seconds = time.monotonic() - start
    return result


def _job_data(job: Job, limits: Limits, workdir: str, uid: int | None) -> dict:
    """What the checker reads before forking the candidate (nothing secret: the candidate has it too)."""
    # RLIMIT_NPROC counts all tasks of the uid: a slot uid has none between runs (_kill_run), ours has many.
    running = 0 if uid is not None else sum(n for _, owner, n in _processes() if owner == os.geteuid())
    rlimits = {"RLIMIT_AS": limits.memory_mb << 20, "RLIMIT_CPU": limits.cpu_s or int(limits.wall_s + 0.999) + 1,
               "RLIMIT_FSIZE": limits.file_mb << 20, "RLIMIT_NOFILE": limits.open_files, "RLIMIT_CORE": 0}
    return {"program": job.program, "workdir": workdir, "hooks": limits.hooks, "wall_s": limits.wall_s,
            "nproc": running + limits.processes, "rlimits": rlimits}


def _close(fds: list) -> None:
    """Close and forget every descriptor in ``fds`` (None entries are skipped)."""
    while fds:
        fd = fds.pop()
        if fd is not None:
            os.close(fd)


def _collect(proc, result_r: int, limits: Limits) -> tuple[bytes, bytes, bytes, bool]:
    """Read stdout, stderr and the verdict pipe until the verdict pipe closes (plus DRAIN_S for
    the others) or the wall-clock limit plus GRACE_S; keep at most ``output_kb`` of each stream."""
    caps = {proc.stdout.fileno(): limits.output_kb << 10, proc.stderr.fileno(): limits.output_kb << 10, result_r: MAX_JOB_BYTES}
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
    if "setup_error" in data:
        return Result(0, total, "error", error=f"the tests' own setup failed: {data['setup_error']}")
    passed = data.get("passed")
    if not isinstance(passed, list) or len(passed) != total or not all(type(p) is bool for p in passed):
        return Result(0, total, "error", error="malformed verdict")
    return Result(sum(passed), total, "ok", timed_out=bool(data.get("timed_out")), error=str(data.get("error", "")))
