"""The sandbox's structural walls, each against a program of our own that got past the
sandbox before them: a process that outlives its run, files and sockets outside the work dir, the
audit hooks switched off from inside, kernel interfaces that have no business in a test.

Most programs run with the audit hooks off (`hooks=False`) or switch them off themselves: what
is tested is the wall that the program cannot turn off (PID namespace, uid sweep, Landlock,
seccomp). Where the machine lacks a wall, its test skips and says which (docs/sandbox.md says
what the fallback is). "fallback" runs repeat an attack with the namespaces taken away, as on a
container without `unshare`.
"""

import dataclasses
import os
import platform
import queue
import secrets
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from r1.rewards import sandbox, walls
from r1.rewards.sandbox import Job, Limits, Statement, isolation, run
from test_sandbox import CORRECT, SOLVE_TESTS, WALL, attack, sandbox_processes

X86_64 = pytest.mark.skipif(platform.machine() != "x86_64", reason="the programs call x86_64 syscalls by number")
ASK = (Statement("assert candidate(0) == 'blocked'"),)  # the program's solve() reports what its attempt did


def need(layer: str) -> None:
    state = getattr(isolation(), layer)
    if state.startswith("none"):
        pytest.skip(f"{layer}: {state}")


@pytest.fixture(params=["namespaces", "fallback"])
def namespaces(request, monkeypatch):
    """The machine's isolation, or the same without PID and network namespaces (no `unshare`)."""
    iso = isolation()
    if request.param == "fallback":
        monkeypatch.setattr(
            walls,
            "_isolation",
            dataclasses.replace(
                iso, prefix=(), network="none: test without namespaces", pid="none: test without namespaces"
            ),
        )
    elif iso.pid.startswith("none"):
        pytest.skip(f"no PID namespace here ({iso.pid})")
    return request.param


@pytest.fixture
def one_slot(monkeypatch):
    """Every run takes the same slot uid, so what one run leaves behind meets the next."""
    if not isolation().uids:
        pytest.skip(f"runs share the trainer's uid here ({isolation().user})")
    slots = queue.SimpleQueue()
    slots.put(isolation().uids[0])
    monkeypatch.setattr(sandbox, "_slots", lambda: slots)
    return isolation().uids[0]


# A child of the candidate leaves the run's process group, starts a thread and ends its main thread
# with SYS_exit: /proc then shows it as a zombie ("Z"), which the cleanup used to skip, so the thread
# lived on under the slot uid. (The candidate itself is killed by the checker, by pid.)
ZOMBIE_LEADER = """
    import ctypes, os, threading, time
    def linger():
        while True:
            time.sleep(0.02)
    if os.fork() == 0:
        os.setsid()
        threading.Thread(target=linger).start()
        ctypes.CDLL(None).syscall(60, 0)  # SYS_exit: only the calling thread ends
"""

# The same, but the surviving thread kills every other process of its uid: the next run's checker.
HUNTER = """
    import ctypes, os, threading, time
    def hunt():
        me, uid = os.getpid(), os.getuid()
        while True:
            for name in os.listdir("/proc"):
                try:
                    if name.isdigit() and int(name) != me and os.stat("/proc/" + name).st_uid == uid:
                        os.kill(int(name), 9)
                except OSError:
                    pass
            time.sleep(0.005)
    if os.fork() == 0:
        os.setsid()
        threading.Thread(target=hunt).start()
        ctypes.CDLL(None).syscall(60, 0)
"""

# Chains in which each generation forks the next in a new session and exits: a /proc scan that
# kills what it saw is always one generation late.
FORK_CHAIN = """
    import os
    def solve(x):
        return x * 2
    def chain():
        while True:
            try:
                if os.fork():
                    os._exit(0)
                os.setsid()
            except OSError:  # RLIMIT_NPROC: try again
                pass
    for _ in range(3):
        try:
            if os.fork() == 0:
                chain()
        except OSError:
            pass
"""


@X86_64
def test_a_zombie_leader_with_live_threads_does_not_outlive_its_run(namespaces):
    result = attack(ZOMBIE_LEADER, hooks=False)  # attack() checks that no process of the run is left
    assert result.passed == 0


def test_a_fork_chain_does_not_outlive_its_run(namespaces):
    assert attack(FORK_CHAIN, hooks=False).passed == 3


@X86_64
def test_a_survivor_cannot_kill_the_next_run_on_its_uid(namespaces, one_slot):
    attack(HUNTER, hooks=False)
    assert attack(CORRECT).passed == 3


def test_a_slot_uid_is_swept_before_it_is_reused(one_slot):
    """A process of the slot uid that belongs to no run (left by a crashed trainer, say) is killed
    before the uid runs a program: here it would kill that program's checker."""
    hunter = textwrap.dedent(HUNTER).replace("import ctypes,", "import").split("if os.fork()")[0] + "hunt()\n"
    stray = subprocess.Popen(
        [isolation().python, "-c", hunter], user=one_slot, group=one_slot, extra_groups=[], cwd="/"
    )
    try:
        time.sleep(0.5)  # until it hunts
        result = run(Job(CORRECT, SOLVE_TESTS, functions={"candidate": "solve"}), Limits(wall_s=WALL))
        assert stray.wait(timeout=5) == -9 and result.passed == 3, result
        assert sandbox_processes() == []
    finally:
        stray.kill()
        stray.wait()


def outside_path(kind: str) -> str:
    """A fresh name in a world-writable folder, where a slot uid's permissions do not stop it."""
    folder = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    return os.path.join(folder, f"r1-{kind}-{secrets.token_hex(6)}")


def attempt(body: str, **kwargs):
    """Run a program whose solve() tries ``body`` and returns 'blocked' if it raised OSError."""
    indented = "\n".join("        " + line for line in body.strip().splitlines())
    program = (
        f"import os, signal, socket\ndef solve(x):\n    try:\n{indented}\n"
        "    except OSError:\n        return 'blocked'\n    return 'done'\n"
    )
    return attack(program, tests=ASK, **kwargs)


@pytest.mark.parametrize("call", ["os.mkfifo(PATH)", "os.mknod(PATH)"])
def test_fifos_and_nodes_outside_the_work_dir_are_refused(call):
    # no audit event: the hooks let these through, and the cleanup never saw the file
    need("landlock")
    path = outside_path("node")
    try:
        assert attempt(call.replace("PATH", repr(path))).passed == 1
        assert not os.path.lexists(path)
    finally:
        if os.path.lexists(path):
            os.remove(path)


def test_extended_attributes_cannot_be_set():
    need("seccomp")
    assert attempt("open('f', 'w').close()\nos.setxattr('f', 'user.r1', b'1')").passed == 1


# Switch the audit hooks off from inside: blank the closure cells of the hook functions through gc.
DISABLE_HOOKS = textwrap.dedent("""
    import gc
    for obj in gc.get_objects():
        code = getattr(obj, "__code__", None)
        if code is None or code.co_filename != "<string>" or not obj.__closure__:
            continue
        for name, cell in zip(code.co_freevars, obj.__closure__):
            if name in ("denied", "blocked"):
                cell.cell_contents = frozenset()
            elif name == "path_events":
                cell.cell_contents = {}
            elif name == "root":
                cell.cell_contents = ""
""")


def test_writes_outside_the_work_dir_fail_with_the_hooks_switched_off():
    need("landlock")
    path = outside_path("escape")
    program = DISABLE_HOOKS + textwrap.dedent(f"""
        def solve(x):
            import ctypes  # refused while the hooks work: this proves they are off
            try:
                with open({path!r}, "w") as handle:
                    handle.write("escaped")
            except OSError:
                return "blocked"
            return "done"
    """)
    try:
        result = attack(program, tests=ASK)
        assert result.passed == 1, result
        assert not os.path.exists(path)
    finally:
        if os.path.exists(path):
            os.remove(path)


def test_the_hooks_can_really_be_switched_off():
    """The control for the test above: the gc attack does disable the hooks."""
    program = DISABLE_HOOKS + "\ndef solve(x):\n    import ctypes\n    return 'blocked'\n"
    assert attack(program, tests=ASK).passed == 1


def test_a_path_based_unix_socket_outside_is_unreachable():
    need("seccomp")
    folder = tempfile.mkdtemp()
    os.chmod(folder, 0o755)
    path = os.path.join(folder, "listener")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o777)
    listener.listen(1)
    listener.settimeout(0.2)
    accepted = []

    def accept():
        try:
            accepted.append(listener.accept())
        except OSError:
            pass

    try:
        connect = f"s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\ns.connect({path!r})\ns.send(b'x')"
        result = attempt(connect, hooks=False)
        accept()
        assert result.passed == 1 and not accepted
    finally:
        listener.close()
        os.remove(path)
        os.rmdir(folder)


@pytest.mark.parametrize("family", ["AF_VSOCK", "AF_NETLINK", "AF_PACKET"])
def test_sockets_of_families_a_test_has_no_use_for_are_refused(family):
    need("seccomp")
    kind = "SOCK_STREAM" if family == "AF_VSOCK" else "SOCK_DGRAM"
    assert attempt(f"socket.socket(socket.{family}, socket.{kind})", hooks=False).passed == 1


def test_pidfd_signals_are_refused():
    # signal.pidfd_send_signal raises no audit event: in same-uid mode it could stop the trainer
    need("seccomp")
    assert attempt("signal.pidfd_send_signal(os.pidfd_open(os.getppid()), signal.SIGSTOP)").passed == 1


@X86_64
def test_ptrace_is_refused():
    need("seccomp")
    program = (
        "import ctypes\ndef solve(x):\n    return 'blocked' if ctypes.CDLL(None).ptrace(0, 0, 0, 0) == -1 else 'done'\n"
    )
    assert attack(program, tests=ASK, hooks=False).passed == 1  # PTRACE_TRACEME always succeeds otherwise


@pytest.mark.parametrize("hooks", [True, False], ids=["hooks", "os-walls-only"])
def test_other_processes_are_not_visible_through_dev_fd(hooks):
    """`/dev/fd/../../PID` is /proc/PID to the kernel but not to a lexical check: the trainer's
    command line (this test's) must not be readable, nor its process listed."""
    need("pid")
    with open("/proc/self/cmdline", "rb") as handle:
        mine = handle.read().replace(b"\0", b" ").decode()
    program = """
        import os
        def solve(x):
            seen = []
            for name in os.listdir("/proc"):
                try:
                    with open(f"/dev/fd/../../{name}/cmdline", "rb") as handle:
                        seen.append(handle.read().replace(b"\\0", b" ").decode())
                except OSError:
                    pass
            return seen
        def pids():
            return [int(p) for p in os.listdir("/proc") if p.isdigit()]
    """
    tests = (
        Statement("assert len(candidate(0)) >= 1"),  # the control: its own entry reads
        Statement(f"assert not any({mine!r} in text for text in candidate(0))"),
        Statement("assert len(pids()) <= 3"),
    )  # the checker, the candidate, perhaps one more of the run
    job = Job(textwrap.dedent(program), tests, functions={"candidate": "solve", "pids": "pids"})
    result = run(job, Limits(wall_s=WALL, hooks=hooks))
    assert (result.status, result.passed) == ("ok", 3), result
    assert sandbox_processes() == []


def test_the_reward_still_scores_normal_programs_with_every_wall_up():
    assert attack(CORRECT).passed == 3
    threads = (
        "import threading\ndef solve(x):\n"
        "    t = threading.Thread(target=lambda: None)\n    t.start()\n    t.join()\n    return x * 2\n"
    )
    assert attack(threads).passed == 3  # threads still start (clone3 is refused, glibc falls back to clone)
    files = (
        "def solve(x):\n    with open('scratch.txt', 'w') as f:\n        f.write(repr(x))\n"
        "    return eval(open('scratch.txt').read()) * 2\n"
    )
    assert attack(files).passed == 3


def test_isolation_names_every_layer():
    iso = isolation()
    for layer in ("network", "pid", "landlock", "seccomp"):
        state = getattr(iso, layer)
        assert state and (not state.startswith("none") or state.startswith("none: ")), (layer, state)


def test_a_machine_without_a_layer_says_so_at_startup(monkeypatch, caplog):
    weaker = dataclasses.replace(isolation(), pid="none: no unshare command", landlock="none: landlock refused")
    monkeypatch.setattr(walls, "_isolation", None)
    monkeypatch.setattr(walls, "_probe", lambda: weaker)
    with caplog.at_level("WARNING", logger="r1.rewards.walls"):
        assert walls.isolation() is weaker
    assert "fewer walls" in caplog.text and "pid (no unshare command)" in caplog.text and "landlock (" in caplog.text
    assert weaker.required() == (["seccomp"] if not weaker.seccomp.startswith("none") else [])


def test_a_required_wall_that_fails_in_the_run_is_an_error_not_a_weaker_run(monkeypatch):
    from r1.rewards import sandbox_child

    walls_set = {"landlock": "none: refused", "seccomp": "x86_64 filter"}
    monkeypatch.setattr(sandbox_child, "confine", lambda workdir, layers: {layer: walls_set[layer] for layer in layers})
    assert sandbox_child._set_walls({"workdir": "/", "require": ["landlock", "seccomp"]}) == "landlock none: refused"
    assert sandbox_child._set_walls({"workdir": "/", "require": ["seccomp"]}) == ""
    result = sandbox._verdict(b'n0nce {"sandbox_error": "landlock none: refused"}\n', "n0nce", 3, True)
    assert (result.status, result.passed) == ("error", 0) and "could not be set" in result.error


def test_with_every_slot_retired_a_run_is_an_error_not_a_hang(monkeypatch):
    if not isolation().uids:
        pytest.skip(f"runs share the trainer's uid here ({isolation().user})")
    monkeypatch.setattr(sandbox, "_retired", set(isolation().uids))
    result = run(Job(CORRECT, SOLVE_TESTS, functions={"candidate": "solve"}), Limits(wall_s=WALL))
    assert (result.status, result.passed, result.total) == ("error", 0, 3) and "slot" in result.error


def test_without_landlock_what_a_slot_uid_leaves_in_shared_folders_is_removed(monkeypatch):
    """The fallback for kernels without Landlock: a file written to /dev/shm with the hooks off
    stays only until the run's cleanup."""
    if not isolation().uids:
        pytest.skip(f"runs share the trainer's uid here ({isolation().user})")
    monkeypatch.setattr(walls, "_isolation", dataclasses.replace(isolation(), landlock="none: test without Landlock"))
    path = outside_path("left")
    try:
        assert attempt(f"open({path!r}, 'w').write('left')", hooks=False).passed == 0  # written: nothing stopped it
        assert not os.path.lexists(path)
    finally:
        if os.path.lexists(path):
            os.remove(path)


def test_the_cleanup_of_deep_folders_needs_no_descriptor_per_level(tmp_path):
    """Under a 64-file limit (a trainer at the usual 1,024 with 2,000 levels used to run out), 500
    nested folders and a file at the bottom are removed."""
    script = textwrap.dedent(f"""
        import os, resource
        from r1.rewards.cleanup import remove_tree
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        top = {str(tmp_path / "deep")!r}
        os.mkdir(top)
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
        for _ in range(500):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        os.close(os.open("bottom.txt", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
        os.close(fd)
        remove_tree(top)
        print(os.path.exists(top))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr[-2000:]
