"""A seccomp filter that keeps the sandboxed child off the network, without any privilege.

Docker (hence Gradescope) drops ``CAP_SYS_ADMIN``, so the child cannot move into an empty
network namespace there. This filter needs no capability: after ``PR_SET_NO_NEW_PRIVS`` the
kernel accepts an unprivileged seccomp program, which then applies to the child and to every
process it forks, for good (it cannot be removed). The program makes

* ``socket()`` fail with ``EACCES`` for every address family but ``AF_UNIX`` (local sockets:
  no traffic leaves the machine; the child's own protocol uses a pipe and needs nothing else);
* ``io_uring_setup()`` fail with ``EPERM`` (io_uring can create sockets without ``socket()``);
* every system call of another ABI fail (x32, or 32-bit code through ``int 0x80``), since the
  filter checks system call numbers of the native ABI only.

It is installed with ``SECCOMP_FILTER_FLAG_TSYNC`` so that threads already started (torch's
pools) are covered too. Written with ctypes: a dozen BPF instructions, no dependency. (The
PyPI bindings of libseccomp need the C library and its headers at build time, or are
unmaintained forks; this program is small enough to read in full.)
"""

from __future__ import annotations

import ctypes
import errno
import platform

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
AF_UNIX = 1
X32_SYSCALL_BIT = 0x40000000

# BPF opcodes
LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
RET_K = 0x06  # BPF_RET | BPF_K
# struct seccomp_data offsets: nr, arch, instruction pointer, args[6] (little endian)
OFFSET_NR, OFFSET_ARCH, OFFSET_ARG0 = 0, 4, 16

# machine -> (audit arch, socket, io_uring_setup, seccomp, x32 possible)
ABIS = {
    "x86_64": (0xC000003E, 41, 425, 317, True),
    "aarch64": (0xC00000B7, 198, 425, 277, False),
}


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def program(machine: str | None = None) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jump if true, jump if false, k) for ``machine``."""
    arch, socket_nr, io_uring_nr, _, x32 = ABIS[machine or platform.machine()]
    # Jump targets by label ("" = the next instruction), resolved to offsets below.
    code: list[tuple[int, str, str, int]] = [
        (LD_W_ABS, "", "", OFFSET_ARCH),
        (JEQ_K, "", "deny", arch),  # a foreign ABI: refuse everything
        (LD_W_ABS, "", "", OFFSET_NR),
    ]
    if x32:
        code.append((JGE_K, "deny", "", X32_SYSCALL_BIT))  # x32 numbers alias native ones
    code += [(JEQ_K, "socket", "", socket_nr), (JEQ_K, "deny", "allow", io_uring_nr)]
    labels = {"socket": len(code)}
    code += [
        (LD_W_ABS, "", "", OFFSET_ARG0),  # socket(domain, ...)
        (JEQ_K, "allow", "deny_socket", AF_UNIX),
    ]
    labels.update(allow=len(code), deny_socket=len(code) + 1, deny=len(code) + 2)
    code += [
        (RET_K, "", "", SECCOMP_RET_ALLOW),
        (RET_K, "", "", SECCOMP_RET_ERRNO | errno.EACCES),
        (RET_K, "", "", SECCOMP_RET_ERRNO | errno.EPERM),
    ]

    def offset(index: int, label: str) -> int:
        return labels[label] - index - 1 if label else 0

    return [
        (op, offset(index, true), offset(index, false), k)
        for index, (op, true, false, k) in enumerate(code)
    ]


def install_network_filter() -> str:
    """Installs the filter in this process (all its threads); returns what was achieved."""
    machine = platform.machine()
    if machine not in ABIS:
        return f"none (no filter for {machine})"
    libc = ctypes.CDLL(None, use_errno=True)
    instructions = program(machine)
    filters = (_SockFilter * len(instructions))(*[_SockFilter(*item) for item in instructions])
    prog = _SockFprog(len(instructions), filters)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return f"none (PR_SET_NO_NEW_PRIVS failed: errno {ctypes.get_errno()})"
    seccomp_nr = ABIS[machine][3]
    result = libc.syscall(
        ctypes.c_long(seccomp_nr),
        ctypes.c_ulong(SECCOMP_SET_MODE_FILTER),
        ctypes.c_ulong(SECCOMP_FILTER_FLAG_TSYNC),
        ctypes.byref(prog),
    )
    if result != 0 and ctypes.get_errno() in (errno.ENOSYS, errno.EINVAL):
        result = libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0)
    if result != 0:
        return f"none (seccomp failed: errno {ctypes.get_errno()})"
    return "active: seccomp, socket() refused except AF_UNIX"
