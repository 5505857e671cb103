"""The child side of the code sandbox: the checker and the candidate, inside one sandboxed run.

The parent (``sandbox.py``) runs this file's source with ``python -I -S -B -u -c <source> JOB SECRET
RESULT`` (three inherited pipe descriptors), so nothing here may import beyond the standard
library, and the source travels on the command line: the sandboxed uid never needs to read this
file, which may sit under a directory only the trainer's uid can read. Two processes:

* the *checker* reads the job (program, limits) from JOB, sets the rlimits, forks the
  *candidate*, makes itself non-dumpable (so the candidate cannot ptrace it or read
  ``/proc/<pid>/mem``), and only then reads the tests and a random nonce from SECRET, a pipe
  that the candidate closed before running any program code;
* the candidate executes the program, then serves calls: the checker runs the test statements
  with names such as ``candidate`` bound to proxies that send JSON-encoded arguments and get
  back a plain value (None, bool, int, float, str, bytes, complex, list, tuple, dict, set;
  subclasses are reduced to their base type, any other object is an error). Comparisons
  therefore happen in the checker on builtin types: ``__eq__`` tricks have nothing to act on.
  Each test statement is counted on its own; a timeout fails the statements not yet run.
* when all tests ran, the checker writes ``<nonce> {"passed": [...]}`` to RESULT. The parent
  reads the verdict from that line only, never from the exit code or stdout.

Before forking, the checker sets the kernel walls of ``confine.py`` (Landlock, seccomp) on
itself, so the candidate inherits them and cannot lift them; a wall the parent's probe found
working but that fails here ends the run with ``{"sandbox_error": …}`` instead of a weaker run.
Inside the candidate, audit hooks also block sockets, process creation, ctypes and writes
outside the work dir — defence in depth only: in-process hooks can be undone by a determined
program (docs/sandbox.md shows how), which is why the walls above exist.
Deliberately left out: launching, uids, namespaces, killing and verdict parsing (all in
``sandbox.py``); anything beyond the standard library, which ``-I -S`` would not find anyway.
"""

import json
import os
import resource
import select
import signal
import sys
import time

try:
    confine  # noqa: B018 (run by the parent: confine.py's source precedes this file's in the -c string)
except NameError:  # imported as a module (tests, tools)
    from .confine import confine

MAX_DEPTH = 64  # nesting of values passed between checker and candidate
MAX_REPLY_BYTES = 8 << 20
BLOCKED_MODULES = frozenset(
    {
        "ctypes",
        "_ctypes",
        "_posixsubprocess",
        "sqlite3",
        "_sqlite3",
        "dbm",
        "_dbm",
        "_gdbm",
        "_xxsubinterpreters",
        "_testcapi",
        "_testinternalcapi",
    }
)
DENIED_EVENTS = frozenset(
    {
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "subprocess.Popen",
        "os.kill",
        "os.killpg",
        "socket.__new__",
        "socket.connect",
        "socket.bind",
        "os.symlink",
        "os.link",
        "resource.setrlimit",
        "resource.prlimit",
    }
)
PATH_EVENTS = {  # audit event -> (argument positions of the paths it writes, of its dir_fd arguments)
    "os.remove": ((0,), (1,)),
    "os.rmdir": ((0,), (1,)),
    "os.mkdir": ((0,), (2,)),
    "os.rename": ((0, 1), (2, 3)),
    "os.chmod": ((0,), (2,)),
    "os.chown": ((0,), (3,)),
    "os.utime": ((0,), (3,)),
    "os.truncate": ((0,), ()),
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
        ((tag, items),) = data.items()
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
                view = view[os.write(self.calls, view) :]
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
        del self.buffer[: end + 1]
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
    getcwd, getpid, fspath, realpath = os.getcwd, os.getpid, os.fspath, os.path.realpath
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
        if event == "import" and not blocked.isdisjoint(args[0].split(".")):  # pkg._ctypes too
            raise ImportError(f"sandbox: module {args[0]} is not allowed")
        if event == "open":
            path, mode, flags = args
            where = "" if isinstance(path, int) else absolute(path)
            if ".." in str(path):  # /dev/fd/../../PID is /proc/PID to the kernel, not to a lexical check
                where = realpath(path)
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
    """The forked candidate process: run the program, then answer calls until the checker stops.

    ctypes, which the checker needed for the walls, is dropped from ``sys.modules`` first: the
    program's ``import ctypes`` would otherwise be served from that cache without an import event."""
    for name in [name for name in sys.modules if name.split(".")[0] in ("ctypes", "_ctypes")]:
        del sys.modules[name]
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
            data = data[os.write(replies_fd, data) :]
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


def _set_walls(job: dict) -> str:
    """Set the kernel walls the parent's probe found (confine.py); "" when all are up, else what failed."""
    walls = confine(job["workdir"], job["require"])
    return "; ".join(f"{layer} {state}" for layer, state in walls.items() if state.startswith("none"))


def _child_main(job_fd: int, secret_fd: int, result_fd: int) -> int:
    start = time.monotonic()
    with os.fdopen(job_fd, "rb") as handle:
        job = json.loads(handle.read())
    for name, value in job["rlimits"].items():
        limit = getattr(resource, name)
        resource.setrlimit(limit, (value, value + 1 if limit == resource.RLIMIT_CPU else value))
    failed = _set_walls(job)
    if failed:  # the candidate never starts: no program runs with fewer walls than the probe promised
        with os.fdopen(secret_fd, "rb") as handle:
            nonce = json.loads(handle.read())["nonce"]
        os.write(result_fd, f"{nonce} {json.dumps({'sandbox_error': failed})}\n".encode())
        return 0
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


if __name__ == "__main__":  # run by the parent with `python -I -S -B -u -c <this source> JOB SECRET RESULT`
    sys.exit(_child_main(*map(int, sys.argv[1:4])))
