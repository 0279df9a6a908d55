"""File-system confinement of the sandboxed child: it sees the Python installation, a few
device files and its own work folder, and nothing else of the host.

Two layers, both set up in the child before any student code runs (``autograder/child.py``):

* **Landlock** (Linux 5.13+, no privilege needed, allowed by Docker's default seccomp profile
  where the kernel has it, hence on Gradescope): an allow-list of folders enforced by the
  kernel, for good, on this process and everything it forks. Read and execute: the Python
  installation (``sys.prefix``, ``sys.base_prefix``, the folders of ``sys.path`` that are not
  the grader's), the system's shared libraries, ``/etc/ld.so.cache``, time zones, CPU topology
  in ``/sys``, and ``/dev/{null,zero,urandom,random}``. Read and write: the work folder only.
  Everything else (homes, the checkout, ``dist/``, other submissions, ``/tmp``, other
  processes' ``/proc`` entries) is refused with ``EACCES``. Where the ABI allows it, Landlock
  also refuses TCP ``bind``/``connect`` (a third network layer), signals to processes outside
  the sandbox and abstract Unix sockets outside it.
* **A private mount namespace** (root with ``CAP_SYS_ADMIN``: ``make grade`` and
  ``make grade-all`` as root; not in Docker) with a fresh ``/proc`` mounted
  ``hidepid=invisible``: the child sees only its own processes, so it cannot even learn the
  batch's folders from other processes' command lines. Without it, Landlock alone keeps
  ``/proc`` closed but for the child's own entries (``/proc/self``, found before the rules
  are sealed).

Landlock restricts the calling thread and what it creates afterwards, not threads that already
run; the child applies it while it has a single thread and reports the thread count.
Written with ctypes: three system calls, no dependency (the PyPI bindings are thin wrappers or
unmaintained).
"""

from __future__ import annotations

import ctypes
import errno
import os
import site
import stat
import sys
import sysconfig

SYS_LANDLOCK_CREATE_RULESET = 444  # the same numbers on every architecture
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x8, 0x4000, 0x40000

# access rights by the ABI version that introduced them
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
FS_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

READ = EXECUTE | READ_FILE | READ_DIR
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # all a file rule may hold

# Read-only beyond the Python installation: what the dynamic loader, the time functions and
# the CPU count read, and the harmless device files. Missing ones are skipped.
SYSTEM_READABLE = (
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/usr/share/zoneinfo",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/sys/devices/system/cpu",
    "/proc/cpuinfo",  # read by torch's NNPACK on the first convolution
    "/proc/meminfo",
    "/dev/zero",
    "/dev/urandom",
    "/dev/random",
)
DEV_NULL = "/dev/null"


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def threads() -> int:
    """Threads of this process: Landlock binds only the calling thread and what it creates."""
    return len(os.listdir("/proc/self/task"))


def threads_after_waiting(seconds: float) -> int:
    """Waits up to ``seconds`` for this process to be down to one thread (importing torch
    leaves a helper thread briefly); returns the count then."""
    import time

    until = time.monotonic() + seconds
    while threads() > 1 and time.monotonic() < until:
        time.sleep(0.01)
    return threads()


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 where Landlock is missing or switched off."""
    version = _libc().syscall(
        ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET),
        None,
        ctypes.c_size_t(0),
        ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION),
    )
    return max(version, 0)


def host_files_warning() -> str:
    """One warning for an instructor grading on this machine, or "" where Landlock confines
    the child. Without it a submission reads whatever the sandbox user may read."""
    if landlock_abi() >= 1:
        return ""
    return (
        "WARNING: this kernel has no Landlock (Linux 5.13+ with Landlock enabled), so the "
        "grader cannot confine submissions to their own folder: each submission can read "
        "every file that other users may read, classmates' submissions and the kit's "
        "checkout included. Make them private before grading: chmod 700 the class folder "
        "and the checkout (or grade on a machine with Landlock)."
    )


def python_installation(exclude: list[str]) -> list[str]:
    """Folders of the Python installation the child may read: the prefixes, the standard
    library and site-packages, minus any folder that holds one of ``exclude`` (the grader's
    own source folder: a virtual environment inside a checkout is allowed, not the checkout)."""
    paths = sysconfig.get_paths()
    found = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    found += [paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")]
    found += site.getsitepackages()
    excluded = [os.path.realpath(path) for path in exclude]
    kept = set()
    for path in found:
        real = os.path.realpath(path)
        # A folder that holds the grader's source would open it: skip it (the folders
        # inside it, such as a virtual environment in a checkout, stay allowed).
        if os.path.isdir(real) and not any(_inside(other, real) for other in excluded):
            kept.add(real)
    return sorted(kept)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def private_proc() -> str:
    """As root with CAP_SYS_ADMIN: a private mount namespace whose ``/proc`` shows only the
    processes of the caller's (later) user. Returns what was achieved."""
    libc = _libc()
    if libc.unshare(CLONE_NEWNS) != 0:
        return f"none (unshare failed: errno {ctypes.get_errno()})"
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return f"none (making mounts private failed: errno {ctypes.get_errno()})"
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    for option in (b"hidepid=invisible", b"hidepid=2"):  # named since Linux 5.8
        if libc.mount(b"proc", b"/proc", b"proc", flags, option) == 0:
            return f"active: private mount namespace, fresh /proc ({option.decode()})"
    return f"none (mounting /proc failed: errno {ctypes.get_errno()})"


def confine(readable: list[str], writable: list[str], whole_proc: bool) -> str:
    """Seals this process (and what it forks from now on) into ``readable`` (read, execute)
    and ``writable`` (everything) with Landlock, plus :data:`SYSTEM_READABLE`, ``/dev/null``
    and ``/proc`` (all of it where ``whole_proc``, i.e. a ``hidepid`` mount hides the others;
    else only this process's own entry). Needs ``PR_SET_NO_NEW_PRIVS`` (set by the network
    filter) or CAP_SYS_ADMIN. Returns what was achieved, starting with ``active`` or ``none``.
    """
    abi = landlock_abi()
    if abi < 1:
        return "none (Landlock is not available in this kernel)"
    fs_rights = FS_RIGHTS_BY_ABI[max(v for v in FS_RIGHTS_BY_ABI if v <= abi)]
    attr = _RulesetAttr(
        handled_access_fs=fs_rights,
        handled_access_net=(NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 else 0,
        scoped=(SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0,
    )
    size = ctypes.sizeof(attr) if abi >= 6 else (16 if abi >= 4 else 8)
    libc = _libc()
    ruleset = libc.syscall(
        ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET),
        ctypes.byref(attr),
        ctypes.c_size_t(size),
        ctypes.c_uint32(0),
    )
    if ruleset < 0:
        return f"none (creating the ruleset failed: errno {ctypes.get_errno()})"
    try:
        proc = ["/proc"] if whole_proc else ["/proc/self"]
        rules = [(path, READ) for path in [*readable, *SYSTEM_READABLE, *proc]]
        rules += [(DEV_NULL, READ | WRITE_FILE)]
        rules += [(path, fs_rights) for path in writable]
        for path, rights in rules:
            problem = _add_rule(libc, ruleset, path, rights & fs_rights)
            if problem:
                return f"none ({problem})"
        if libc.syscall(ctypes.c_long(SYS_LANDLOCK_RESTRICT_SELF), ruleset, 0) != 0:
            return f"none (restricting failed: errno {ctypes.get_errno()})"
    finally:
        os.close(ruleset)
    extras = ["TCP refused"] if abi >= 4 else []
    extras += ["signals and abstract sockets scoped"] if abi >= 6 else []
    seen = "all of /proc (others hidden)" if whole_proc else "its own /proc entry"
    return f"active: Landlock ABI {abi}, reads the Python installation and {seen}, " + (
        "writes its work folder only" + "".join(f"; {extra}" for extra in extras)
    )


def _add_rule(libc, ruleset: int, path: str, rights: int) -> str | None:
    """Adds one path rule; a missing path is skipped. Returns a problem, or None."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            rights &= FILE_RIGHTS
        rule = _PathBeneathAttr(allowed_access=rights, parent_fd=fd)
        if libc.syscall(
            ctypes.c_long(SYS_LANDLOCK_ADD_RULE),
            ruleset,
            LANDLOCK_RULE_PATH_BENEATH,
            ctypes.byref(rule),
            0,
        ):
            code = ctypes.get_errno()
            return f"rule for {path} refused: {errno.errorcode.get(code, code)}"
    finally:
        os.close(fd)
    return None
