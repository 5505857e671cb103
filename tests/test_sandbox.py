"""The code sandbox against hostile programs, for real: each attack runs in a real sandbox and must
score 0 (or be blocked), finish promptly and leave no process behind.

Most attacks run twice: with the audit hooks (the default) and without them (`hooks=False`), so
that the OS-level walls — uid, network namespace, rlimits, process-group kill — are tested on
their own. A wall this machine lacks (no netns, not root) skips its hook-less variant.
"""

import glob
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import psutil
import pytest

from r1.rewards.sandbox import SLOT_UID_BASE, SLOTS, Job, Limits, Statement, isolation, network_isolation, run, run_many

WALL = 1.5
PROMPT_S = 15  # generous bound on any run's wall time (the machine is shared)
SOLVE_TESTS = (
    Statement("assert candidate(2) == 4"),
    Statement("assert candidate(5) == 10"),
    Statement("assert candidate('a') == 'aa'"),
)
CORRECT = "def solve(x):\n    return x * 2\n"


def sandbox_processes() -> list[psutil.Process]:
    """Processes of any sandbox run: a slot uid, or the run marker in the environment. A zombie counts
    while other threads of it run (its main thread exited); a dead one waits to be reaped."""
    found = []
    for proc in psutil.process_iter(["uids", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE and live_threads(proc.pid) <= 1:
                continue
            if SLOT_UID_BASE <= proc.info["uids"].real < SLOT_UID_BASE + SLOTS or "R1_SANDBOX" in proc.environ():
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def live_threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        return int(next(line.split()[1] for line in handle if line.startswith("Threads:")))


def attack(program: str, *, tests=SOLVE_TESTS, hooks: bool = True, wall: float = WALL, **limits):
    """Run `program` as a sandboxed solve(x); check promptness and that nothing is left running."""
    start = time.monotonic()
    result = run(
        Job(textwrap.dedent(program), tuple(tests), functions={"candidate": "solve"}),
        Limits(wall_s=wall, hooks=hooks, **limits),
    )
    assert time.monotonic() - start < PROMPT_S, result
    assert "SyntaxError" not in result.error and "IndentationError" not in result.error, "the attack itself is broken"
    assert sandbox_processes() == [], "a sandboxed process survived the run"
    return result


def need_uid_drop():
    if not isolation().uids:
        pytest.skip(f"runs share the trainer's uid here ({isolation().user})")


def need_netns():
    if network_isolation() != "netns":
        pytest.skip(f"no network namespace here ({network_isolation()})")


HOOKS = pytest.mark.parametrize("hooks", [True, False], ids=["hooks", "os-walls-only"])


def test_correct_program_passes_and_wrong_one_is_counted_per_test():
    assert attack(CORRECT).passed == 3
    result = attack("def solve(x):\n    return 4 if x == 2 else None\n")
    assert (result.status, result.passed, result.total) == ("ok", 1, 3)
    assert result.fraction == pytest.approx(1 / 3)


def test_setup_statements_run_but_are_not_counted():
    tests = (
        Statement("import math", counted=False),
        Statement("y = math.sqrt(16)", counted=False),
        Statement("assert candidate(y) == 8.0"),
    )
    assert (attack(CORRECT, tests=tests).passed, attack(CORRECT, tests=tests).total) == (1, 1)


@HOOKS
def test_infinite_loop_times_out_with_zero(hooks):
    result = attack("while True:\n    pass\n" + CORRECT, hooks=hooks)
    assert (result.passed, result.timed_out) == (0, True)


def test_loop_in_one_test_keeps_the_credit_already_earned():
    result = attack("def solve(x):\n    while x == 5:\n        pass\n    return x * 2\n")
    assert (result.passed, result.timed_out) == (1, True)  # solve(2) passed, then the loop


@HOOKS
def test_ten_gigabyte_allocation_fails(hooks):
    result = attack("x = bytearray(10 * 1024 ** 3)\n" + CORRECT, hooks=hooks)
    assert result.passed == 0 and "MemoryError" in result.error


@HOOKS
def test_fork_bomb_is_contained(hooks):
    bomb = """
        import os
        while True:
            try:
                os.fork()
            except Exception:
                pass
    """
    assert attack(textwrap.dedent(bomb) + CORRECT, hooks=hooks).passed == 0


def test_rlimit_nproc_caps_process_creation():
    need_uid_drop()  # as a shared uid the cap is relative to the trainer's own process count
    program = """
        import os, time
        def solve():
            made = 0
            try:
                while made < 100:
                    if os.fork() == 0:
                        time.sleep(30)
                        os._exit(0)
                    made += 1
            except OSError:
                pass
            return made
    """
    made = run(
        Job(textwrap.dedent(program), (Statement("assert candidate() == 2"),), functions={"candidate": "solve"}),
        Limits(wall_s=3, hooks=False, processes=4),
    )
    assert made.passed == 1, made  # 4 tasks: the checker, the candidate and two forks
    assert sandbox_processes() == []


@HOOKS
@pytest.mark.parametrize("escape", ["", "os.setsid()"], ids=["same-group", "new-session"])
def test_grandchild_holding_stdout_does_not_hang_us(hooks, escape):
    program = f"""
        import os, time
        if os.fork() == 0:
            {escape}
            time.sleep(60)
            os._exit(0)
    """
    result = attack(textwrap.dedent(program) + CORRECT, hooks=hooks)
    assert result.seconds < WALL + 3  # the verdict came, and stdout was only drained briefly
    assert result.passed == (0 if hooks else 3)  # with hooks the fork is refused; without, solve is correct


@HOOKS
@pytest.mark.parametrize("exit_call", ["import sys; sys.exit(0)", "import os; os._exit(0)", "raise SystemExit(0)"])
def test_exit_before_the_tests_scores_zero(hooks, exit_call):
    assert attack(f"{exit_call}\n{CORRECT}", hooks=hooks).passed == 0


def test_exit_inside_the_function_scores_zero():
    assert attack("import os\ndef solve(x):\n    os._exit(0)\n").passed == 0
    assert attack("import sys\ndef solve(x):\n    sys.exit(0)\n").passed == 0


def test_printed_verdicts_are_ignored():
    program = """
        import sys
        for line in ["OK 3/3", "passed 3 3", "0" * 32 + ' {"passed": [true, true, true]}']:
            print(line)
            print(line, file=sys.stderr)
    """
    assert attack(program).passed == 0


@HOOKS
@pytest.mark.parametrize("kind", ["object", "str subclass", "int subclass", "list subclass"])
def test_always_equal_objects_do_not_pass(hooks, kind):
    bases = {"object": "", "str subclass": "str", "int subclass": "int", "list subclass": "list"}
    program = f"""
        class Sneaky({bases[kind]}):
            def __eq__(self, other):
                return True
            __ne__ = lambda self, other: False
            __hash__ = object.__hash__
            def __sub__(self, other):
                return 0
            def __abs__(self):
                return 0
        def solve(x):
            return Sneaky()
    """
    tests = SOLVE_TESTS + (Statement("assert abs(candidate(1.5) - 3.0) < 1e-6"),)
    assert attack(program, tests=tests, hooks=hooks).passed == 0


MEMORY_SCAN = """
    import os, re
    def solve(x):
        found = []  # every readable byte of the candidate process, searched for the secret's shape
        with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", buffering=0) as mem:
            for line in maps:
                span, perms = line.split()[:2]
                start, end = (int(v, 16) for v in span.split("-"))
                try:
                    mem.seek(start)
                    found += re.findall(rb"zebra-\\d+", mem.read(end - start)) if perms.startswith("r") else []
                except (OSError, OverflowError, ValueError):
                    pass
        if found:  # (this source holds only the pattern, which has no digits)
            return found[0].decode()
        try:  # the checker's memory (it made itself non-dumpable)
            with open(f"/proc/{os.getppid()}/mem", "rb"):
                return "read the checker's memory"
        except OSError:
            return "nothing found"
"""


@HOOKS
def test_the_tests_and_nonce_are_not_in_the_programs_memory(hooks):
    if not hooks and os.geteuid() == 0:
        need_uid_drop()  # a root candidate could ptrace the checker despite PR_SET_DUMPABLE
    leaked, clean = (
        Statement("assert candidate(0) == 'zebra-4242'"),
        Statement("assert candidate(0) == 'nothing found'"),
    )
    assert attack(MEMORY_SCAN, tests=(leaked,), hooks=hooks).passed == 0
    assert attack(MEMORY_SCAN, tests=(clean,), hooks=hooks).passed == 1
    planted = 'PLANTED = "zebra-" + "4242"\n' + textwrap.dedent(MEMORY_SCAN)  # control: the scan does find a secret
    assert attack(planted, tests=(leaked,), hooks=hooks).passed == 1


@HOOKS
def test_writing_outside_the_work_dir_is_blocked(hooks, tmp_path):
    if not hooks:
        need_uid_drop()  # without hooks only file permissions stop the write
    existing = tmp_path / "existing.txt"
    existing.write_text("original")
    created = tmp_path / "created.txt"
    program = f"""
        import os
        def solve(x):
            done = []
            for path, mode in [({str(created)!r}, "w"), ({str(existing)!r}, "w"), ({str(existing)!r}, "a")]:
                try:
                    with open(path, mode) as handle:
                        handle.write("pwned")
                    done.append(path)
                except OSError:
                    pass
            try:
                os.remove({str(existing)!r})
                done.append("removed")
            except OSError:
                pass
            with open("inside.txt", "w") as handle:  # its own folder stays writable
                handle.write("fine")
            return done
    """
    result = attack(program, tests=(Statement("assert candidate(0) == []"),), hooks=hooks)
    assert result.passed == 1
    assert not created.exists() and existing.read_text() == "original"


@HOOKS
def test_environment_secrets_are_not_visible(hooks, monkeypatch):
    if not hooks:
        need_uid_drop()
    monkeypatch.setenv("R1_TEST_SECRET", "hunter2")
    program = f"""
        import os
        def solve(x):
            seen = os.environ.get("R1_TEST_SECRET", "")
            try:
                with open("/proc/{os.getpid()}/environ", "rb") as handle:  # the trainer's environment
                    seen += handle.read().decode(errors="replace")
            except OSError:
                pass
            return seen
    """
    result = attack(program, tests=(Statement("assert 'hunter2' in candidate(0)"),), hooks=hooks)
    assert result.passed == 0 and "hunter2" not in result.stdout + result.stderr


@HOOKS
def test_sockets_reach_nothing(hooks):
    if not hooks:
        need_netns()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        program = f"""
            import socket
            def solve(x):
                with socket.create_connection(("127.0.0.1", {port}), timeout=1) as conn:
                    conn.sendall(b"hello")
                return "connected"
        """
        result = attack(program, tests=(Statement("assert candidate(0) == 'connected'"),), hooks=hooks)
        assert result.passed == 0
        with pytest.raises(socket.timeout):
            listener.accept()


def test_blocked_modules_and_process_creation():
    program = """
        def solve(x):
            import ctypes
            return 1
        def spawn(x):
            import subprocess
            return subprocess.run(["true"]).returncode
    """
    tests = (Statement("assert candidate(0) == 1"), Statement("assert spawn(0) == 0"))
    result = run(
        Job(textwrap.dedent(program), tests, functions={"candidate": "solve", "spawn": "spawn"}), Limits(wall_s=WALL)
    )
    assert result.passed == 0


@HOOKS
def test_huge_output_is_capped(hooks):
    result = attack("import sys\nwhile True:\n    sys.stdout.write('x' * 100000)\n", hooks=hooks)
    assert result.passed == 0 and len(result.stdout) <= 64 * 1024


def test_run_many_keeps_order_and_runs_in_parallel():
    jobs = [
        Job(f"def solve(x):\n    return x * {k}\n", SOLVE_TESTS, functions={"candidate": "solve"}) for k in (2, 3, 2, 0)
    ]
    assert [r.passed for r in run_many(jobs, Limits(wall_s=5), workers=2)] == [3, 0, 3, 0]


# another trainer process: one run of a correct program that takes 4 s
SLOW_RUN = """
from r1.rewards.sandbox import Job, Limits, Statement, run
program = "import time\\ndef solve(x):\\n    time.sleep(4)\\n    return x * 2\\n"
print(run(Job(program, (Statement("assert candidate(2) == 4"),), functions={"candidate": "solve"}), Limits(wall_s=10)))
"""


def test_two_trainer_processes_on_one_machine_never_share_a_slot_uid():
    """The ranks of a torchrun launch on one machine score code in separate processes: a run that ends here
    must not take the other process's running program with it (as the same uid, its cleanup would kill it)."""
    need_uid_drop()
    other = subprocess.Popen(
        [sys.executable, "-c", SLOW_RUN], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + PROMPT_S
        while not sandbox_processes() and time.monotonic() < deadline:  # until the other's program runs
            time.sleep(0.05)
        # not attack(): the other's program runs on
        quick = run(Job(CORRECT, SOLVE_TESTS, functions={"candidate": "solve"}))
        out, _ = other.communicate(timeout=PROMPT_S)
    finally:
        other.kill()
    assert quick.passed == 3 and "passed=1, total=1, status='ok'" in out, out


def test_runs_leak_no_descriptors_or_folders():
    folders = lambda: set(glob.glob(os.path.join(tempfile.gettempdir(), "r1-sandbox-*")))  # noqa: E731
    run(Job(CORRECT, SOLVE_TESTS, functions={"candidate": "solve"}))  # first use: the isolation probe
    fds, before = len(os.listdir("/proc/self/fd")), folders()
    jobs = [
        Job(CORRECT, SOLVE_TESTS, functions={"candidate": "solve"}),
        Job("while True:\n    pass\n", SOLVE_TESTS, functions={"candidate": "solve"}),
        Job("x" * (2 << 20), SOLVE_TESTS),
    ]  # a normal run, a timeout, a rejected job
    results = run_many(jobs * 2, Limits(wall_s=1.0))
    assert [(r.status, r.timed_out) for r in results] == [("ok", False), ("ok", True), ("rejected", False)] * 2
    assert len(os.listdir("/proc/self/fd")) == fds and folders() == before


def test_malformed_jobs_are_clear_errors():
    with pytest.raises(TypeError, match="Statement"):
        run(Job("x = 1", ("assert True",)))
    with pytest.raises(ValueError, match="identifiers"):
        run(Job("x = 1", (), functions={"not a name": "f"}))
    with pytest.raises(ValueError, match="wall_s"):
        run(Job("x = 1", ()), Limits(wall_s=0))
    assert run(Job("x = 1" + " " * (2 << 20), SOLVE_TESTS)).status == "rejected"


def test_broken_test_setup_is_reported_as_an_error():
    result = run(Job(CORRECT, SOLVE_TESTS, setup="raise RuntimeError('bad data')", functions={"candidate": "solve"}))
    assert result.status == "error" and "bad data" in result.error


def test_isolation_is_reported():
    iso = isolation()
    assert iso.network == "netns" or iso.network.startswith("none: ")
    assert iso.user


def test_deep_directories_cannot_make_the_cleanup_raise():
    # 2,000 nested folders made shutil.rmtree raise RecursionError out of the sandbox: the reward
    # call failed instead of scoring 0, and the work dir stayed on disk
    folders = lambda: set(glob.glob(os.path.join(tempfile.gettempdir(), "r1-sandbox-*")))  # noqa: E731
    before = folders()
    result = attack(
        """
        import os
        for _ in range(2000):
            os.mkdir("d")
            os.chdir("d")
        def solve(x):
            return x * 2
    """,
        wall=10.0,
    )
    assert result.passed == 3 and folders() == before


def test_ctypes_under_a_dotted_alias_is_blocked():
    # `import pkg._ctypes` of a copied _ctypes extension: the import check saw only "pkg"
    program = """
        import glob, os, sys
        os.mkdir("pkg")
        open("pkg/__init__.py", "w").close()
        so = [f for d in sys.path for f in glob.glob(os.path.join(d, "_ctypes.*.so"))][0]
        with open(so, "rb") as src, open(os.path.join("pkg", os.path.basename(so)), "wb") as dst:
            dst.write(src.read())  # a copy inside the work dir (symlinks are refused)
        def solve(x):
            import pkg._ctypes
            return x * 2
    """
    result = attack(program)
    assert result.passed == 0 and "not allowed" in result.stdout + result.stderr + result.error
