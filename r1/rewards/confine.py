"""Kernel walls that one sandboxed run puts up around itself: Landlock and a seccomp filter.

The audit hooks in ``sandbox_child.py`` live inside the program's own interpreter and can be
switched off from there (docs/sandbox.md shows how). These two walls are kept by the kernel and are
one-way: once the checker has set them, neither it nor the candidate it forks, nor anything they
start, can lift them. Both need no privileges (``PR_SET_NO_NEW_PRIVS`` first).

* **Landlock** (Linux 5.13+): files and folders may be created, written, renamed or removed only
  inside the work dir (and ``/dev/null`` written); from ABI 4 no TCP bind or connect; from ABI 6
  signals and abstract Unix sockets reach only processes of the same run.
* **seccomp** (x86_64): the system calls that have no business in a test fail with EPERM
  (``DENIED_X86_64``): ptrace and cross-process memory, ``socket()`` of any family, mknod,
  extended attributes, pidfds, io_uring (whose operations would bypass this filter), bpf, perf,
  keyrings, mounts and new namespaces (``clone`` with a namespace flag), module and kexec loading.
  ``clone3`` fails with ENOSYS, the way container runtimes do it: its flags sit behind a pointer
  the filter cannot read, and glibc then falls back to ``clone``, whose flags it can.

Runs inside the sandbox child, so standard library only: the parent passes this file's source
ahead of ``sandbox_child.py``'s in one ``-c`` string. ``confine()`` reports what it set, one line
per wall; a wall the kernel refuses reads ``"none: <reason>"``. Deliberately left out: limits on
reading (a test may read the standard library and ``/etc``; the uid and the PID namespace keep
other processes' files away) and syscall tables of other architectures (seccomp reports "none"
there rather than guess numbers).
"""

import ctypes
import os
import struct

PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
LANDLOCK_CREATE_RULESET, LANDLOCK_ADD_RULE, LANDLOCK_RESTRICT_SELF = 444, 445, 446  # the same on every architecture
# Landlock filesystem rights (bit: name): 0 execute, 1 write_file, 2 read_file, 3 read_dir, 4 remove_dir,
# 5 remove_file, 6 make_char, 7 make_dir, 8 make_reg, 9 make_sock, 10 make_fifo, 11 make_block, 12 make_sym,
# 13 refer (ABI 2), 14 truncate (ABI 3), 15 ioctl_dev (ABI 5). Every right but execute and reading is handled.
FS_BITS = {1: 13, 2: 14, 3: 15, 4: 15, 5: 16}  # ABI -> how many right bits it knows
READ_RIGHTS = 1 << 0 | 1 << 2 | 1 << 3
FILE_RIGHTS = 1 << 1 | 1 << 14 | 1 << 15  # the rights that apply to a file rather than a folder (for /dev/null)
NET_TCP = 1 << 0 | 1 << 1  # bind_tcp, connect_tcp (ABI 4)
SCOPES = 1 << 0 | 1 << 1  # abstract_unix_socket, signal (ABI 6)

DENIED_X86_64 = {
    "ptrace": 101,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "kcmp": 312,
    "process_madvise": 440,
    "socket": 41,
    "mknod": 133,
    "mknodat": 259,
    "setxattr": 188,
    "lsetxattr": 189,
    "fsetxattr": 190,
    "removexattr": 197,
    "lremovexattr": 198,
    "fremovexattr": 199,
    "setxattrat": 463,
    "removexattrat": 466,
    "pidfd_open": 434,
    "pidfd_send_signal": 424,
    "pidfd_getfd": 438,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "bpf": 321,
    "perf_event_open": 298,
    "userfaultfd": 323,
    "fanotify_init": 300,
    "keyctl": 250,
    "add_key": 248,
    "request_key": 249,
    "unshare": 272,
    "setns": 308,
    "mount": 165,
    "umount2": 166,
    "pivot_root": 155,
    "chroot": 161,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "mount_setattr": 442,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "quotactl": 179,
    "quotactl_fd": 443,
    "kexec_load": 246,
    "kexec_file_load": 320,
    "init_module": 175,
    "finit_module": 313,
    "delete_module": 176,
    "acct": 163,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "syslog": 103,
    "iopl": 172,
    "ioperm": 173,
    "vhangup": 153,
}
CLONE_X86_64, CLONE3_X86_64 = 56, 435
CLONE_NAMESPACES = 0x7E020000  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
AUDIT_ARCH_X86_64, X32_BIT = 0xC000003E, 0x40000000
EPERM, ENOSYS = 1, 38


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _fail(what: str) -> str:
    return f"none: {what} failed ({os.strerror(ctypes.get_errno())})"


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def restrict_writes(workdir: str) -> str:
    """Landlock: writes only beneath ``workdir`` (module doc). Returns what was set, or "none: …"."""
    libc = _libc()
    abi = libc.syscall(LANDLOCK_CREATE_RULESET, None, 0, 1)  # flag 1: ask for the ABI version
    if abi < 1:
        return _fail("landlock_create_ruleset")
    fs = ((1 << FS_BITS[min(abi, 5)]) - 1) & ~READ_RIGHTS
    fields, scope = [fs], ""
    if abi >= 4:
        fields.append(NET_TCP)
        scope = ", no TCP"
    if abi >= 6:
        fields.append(SCOPES)
        scope += ", signals and abstract sockets scoped"
    attr = struct.pack(f"{len(fields)}Q", *fields)
    ruleset = libc.syscall(LANDLOCK_CREATE_RULESET, attr, len(attr), 0)
    if ruleset < 0:
        return _fail("landlock_create_ruleset")
    try:
        for path, rights in ((workdir, fs), ("/dev/null", fs & FILE_RIGHTS)):
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = _PathBeneath(rights, fd)
                if libc.syscall(LANDLOCK_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0) != 0:  # 1: path beneath
                    return _fail(f"landlock_add_rule({path})")
            finally:
                os.close(fd)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return _fail("PR_SET_NO_NEW_PRIVS")
        if libc.syscall(LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
            return _fail("landlock_restrict_self")
    finally:
        os.close(ruleset)
    return f"abi {abi}: writes only in the work dir{scope}"


def _filter_x86_64() -> bytes:
    """The BPF program: check the architecture, refuse x32 and DENIED_X86_64, vet clone's flags."""

    def op(code: int, jt: int, jf: int, k: int) -> bytes:
        return struct.pack("HBBI", code, jt, jf, k)

    load, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ/JGE/JSET|K, BPF_RET|K
    allow, kill = 0x7FFF0000, 0x80000000  # SECCOMP_RET_ALLOW, SECCOMP_RET_KILL_PROCESS
    errno = lambda number: 0x00050000 | number  # noqa: E731 (SECCOMP_RET_ERRNO)
    program = [
        op(load, 0, 0, 4),
        op(jeq, 1, 0, AUDIT_ARCH_X86_64),
        op(ret, 0, 0, kill),  # seccomp_data.arch
        op(load, 0, 0, 0),
        op(jge, 0, 1, X32_BIT),
        op(ret, 0, 0, errno(ENOSYS)),
    ]  # seccomp_data.nr
    for number in sorted(DENIED_X86_64.values()):
        program += [op(jeq, 0, 1, number), op(ret, 0, 0, errno(EPERM))]
    program += [
        op(jeq, 0, 1, CLONE3_X86_64),
        op(ret, 0, 0, errno(ENOSYS)),
        op(jeq, 0, 3, CLONE_X86_64),
        op(load, 0, 0, 16),  # the low half of args[0], clone's flags
        op(jset, 0, 1, CLONE_NAMESPACES),
        op(ret, 0, 0, errno(EPERM)),
        op(ret, 0, 0, allow),
    ]
    return b"".join(program)


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def deny_syscalls() -> str:
    """seccomp: refuse the calls of DENIED_X86_64 (module doc). Returns what was set, or "none: …"."""
    machine = os.uname().machine  # not platform.machine(): importing platform costs a run ~9 ms
    if machine != "x86_64":
        return f"none: no syscall table for {machine} (x86_64 only)"
    libc, code = _libc(), _filter_x86_64()
    program = _Program(len(code) // 8, code)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return _fail("PR_SET_NO_NEW_PRIVS")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0) != 0:
        return _fail("PR_SET_SECCOMP")
    return f"x86_64 filter: {len(DENIED_X86_64)} calls refused, no new namespaces"


WALLS = {"landlock": restrict_writes, "seccomp": lambda workdir: deny_syscalls()}


def confine(workdir: str, layers=tuple(WALLS)) -> dict[str, str]:
    """Set the walls named in ``layers`` on this process (and so on everything it forks); what each
    reports, ``{"landlock": …, "seccomp": …}``."""
    return {layer: WALLS[layer](workdir) for layer in layers}
