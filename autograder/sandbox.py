"""Runs a submission in the sandboxed child and supervises it from the trusted judge.

The judge never executes student code. It starts ``child.py`` in a new session, sends the job
on stdin, and watches three things: the protocol pipe (progress events), the child's stdout
(drained and kept bounded), and the resident memory of every process the child spawned. A
statement or check that overruns its deadline, ends the process, or exceeds the memory limit
is charged to what was running; every process of the sandbox is then SIGKILLed and a fresh
child resumes with the rest. Outputs are read back with ``O_NOFOLLOW`` from a folder the judge
holds open, so a child cannot point the judge at a file it should not read.

Protections by privilege (reported in every result):

* as root: a dedicated unprivileged user, a new network namespace, no read access to the
  grader's files (``autograder.gradescope`` locks them down first), resource limits;
* not root (degraded, reported as such): resource limits, a user+network namespace where the
  kernel allows it, and the same deadlines and memory watchdog; the child runs as the calling
  user, so it can read and write whatever that user can, including the grader's files.

Leftover processes are found by uid (as root) and, in both modes, by session and by descent
from the child, which makes itself a child subreaper so that a daemonised grandchild stays
below it rather than being re-parented to init. A dedicated judge process (the Gradescope entry
point) also calls :func:`adopt_orphans`, so that what outlives the child is re-parented to the
judge and killed with the rest. The event protocol is data from an untrusted process:
:class:`Protocol` accepts events only in the order the real child sends them, so that forged
ones cannot extend a deadline beyond one per statement and one per check; it holds no process
and is unit-tested alone (``tests/test_sandbox_protocol.py``).

Environment (read by :class:`SandboxConfig`; never set by a submission, which only runs later):
``KIT_SANDBOX_USER`` names the unprivileged user (default ``kitsandbox``), so that several
graders can run side by side on one machine, as the test suite does; ``KIT_KEEP_WORKDIR_IN``
makes the child's work folder in that folder and keeps it after grading, for inspection.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import pwd
import select
import selectors
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from autograder.pythonaccess import python_readable_by

ENGINE_ROOT = str(Path(__file__).resolve().parent.parent)
CHILD_SCRIPT = str(Path(__file__).resolve().parent / "child.py")
FORKED_PROTO_FD = 3  # child.FORKED_PROTO_FD (child.py is not imported by the judge)
SANDBOX_USER = "kitsandbox"
MAX_ARRAY_FILE_BYTES = 64 * 2**20
KEEP_STDOUT_BYTES = 3000  # head and tail each: both fit in the student-visible output
PR_SET_CHILD_SUBREAPER = 36
USERADD_PATHS = ("/usr/sbin/useradd", "/sbin/useradd", "/usr/bin/useradd", "/bin/useradd")
DRAIN_SECONDS = 1.0  # how long the judge reads what the child printed last, after it ended

# What the judge tells the student when it had to kill the child while a check was running.
TIME_LIMIT = "Time limit: killed, your code did not finish within the time limit"
MEMORY_LIMIT = "Memory limit: killed, your code went over the memory limit"
PROCESS_ENDED = (
    "Process ended: killed, your code ended the process (os._exit, a signal, or a crash)"
)


@dataclass
class SandboxConfig:
    """Limits for one grading run. Times are wall-clock seconds."""

    python: str = sys.executable
    isolate_network: bool = True
    # Landlock (and, as root, a private /proc): the child reads only the Python installation
    # and its work folder (``autograder/confinement.py``). ``KIT_CONFINE_FILES=off`` only to
    # measure what it costs (make bench); the results then say DEGRADED.
    confine_files: bool = field(
        default_factory=lambda: os.environ.get("KIT_CONFINE_FILES", "on") != "off"
    )
    drop_privileges: bool = True
    sandbox_user: str = field(
        default_factory=lambda: os.environ.get("KIT_SANDBOX_USER") or SANDBOX_USER
    )
    keep_workdir_in: str | None = field(
        default_factory=lambda: os.environ.get("KIT_KEEP_WORKDIR_IN") or None
    )
    use_bytecode: bool = field(
        default_factory=lambda: os.environ.get("KIT_CHILD_BYTECODE", "on") != "off"
    )
    # Batch grading only (``autograder.gradescope --serve``): forks children from a server
    # that imported torch once instead of starting a fresh Python per child. Never an
    # environment setting, so a single grading always starts a fresh process.
    fork_server: ForkServer | None = field(default=None, repr=False, compare=False)
    memory_limit_bytes: int = 640 * 2**20
    startup_timeout_s: float = 60.0
    statement_timeout_s: float = 20.0
    total_budget_s: float = 420.0
    max_skipped_statements: int = 10
    limits: dict = field(
        default_factory=lambda: {
            "address_space_bytes": 4 * 2**30,
            "cpu_seconds": 300,
            "file_size_bytes": 64 * 2**20,
            "open_files": 256,
            # per uid, threads included; below 60 so that a small fork bomb is refused
            "processes": 32,
        }
    )


@dataclass
class SessionResult:
    """What the child produced, as the judge saw it."""

    check_reports: dict[int, dict] = field(default_factory=dict)
    check_failures: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    protections: dict = field(default_factory=dict)
    stdout_head: bytes = b""
    stdout_tail: bytes = b""
    stdout_bytes: int = 0
    timings: dict[str, float] = field(default_factory=dict)  # the child's start-up, reported
    outdir_fd: int | None = None
    cleanup_path: str | None = None

    def load_array(self, file_name: str) -> np.ndarray | None:
        """Loads one output written by the child, refusing links, devices and huge files."""
        try:
            fd = os.open(
                file_name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=self.outdir_fd
            )
        except OSError:
            return None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_ARRAY_FILE_BYTES:
                return None
            try:
                return np.load(handle, allow_pickle=False)
            except Exception:  # noqa: BLE001 - malformed data is the child's failure
                return None

    def close(self) -> None:
        """Releases the output folder and removes the work folder (unless it is kept)."""
        if self.outdir_fd is not None:
            os.close(self.outdir_fd)
            self.outdir_fd = None
        if self.cleanup_path is not None:
            # The container is owned by the judge, so the child cannot swap it for a link;
            # rmtree works on file descriptors and never follows a link inside it.
            shutil.rmtree(self.cleanup_path, ignore_errors=True)
            self.cleanup_path = None


def _useradd() -> str:
    """``useradd`` by absolute path first: Gradescope's ``run_autograder`` may run with a PATH
    that lacks the sbin folders (or with no PATH at all)."""
    for candidate in USERADD_PATHS:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("useradd") or "useradd"


def ensure_sandbox_user(name: str = SANDBOX_USER) -> tuple[int, int]:
    """The sandbox user's uid and gid, creating the user if needed (root only). The grader
    zip's ``setup.sh`` creates ``kitsandbox`` when the image is built, so that a running
    container never edits ``/etc/passwd``; this is the fallback."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            [_useradd(), "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        entry = pwd.getpwnam(name)
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise RuntimeError(f"sandbox user {name} must not be root")
    return entry.pw_uid, entry.pw_gid


_ADOPTS_ORPHANS = False
# Fork servers started by this process: root processes below the judge that never run student
# code; their children are the sandbox's, they themselves are never watched or killed.
_SPARED_PIDS: set[int] = set()


def adopt_orphans() -> bool:
    """Makes this process a child subreaper and counts all its descendants as the sandbox's.

    Only for a process that exists to grade (``autograder.gradescope``): a library caller's
    other children would be counted too.
    """
    global _ADOPTS_ORPHANS
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        _ADOPTS_ORPHANS = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        _ADOPTS_ORPHANS = False
    return _ADOPTS_ORPHANS


def _reap_adopted() -> None:
    """Collects the exit status of adopted processes that were killed (no zombies left)."""
    while _ADOPTS_ORPHANS:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _real_uid(pid: str) -> int | None:
    """The real uid of a process. (The owner of /proc/<pid> is not it: a process that dropped
    privileges is not dumpable, and its /proc files may stay owned by root.)"""
    with open(f"/proc/{pid}/status", "rb") as handle:
        for line in handle:
            if line.startswith(b"Uid:"):
                return int(line.split()[1])
    return None


def _processes(uid: int | None, session: int) -> list[int]:
    """Live pids owned by ``uid`` (when given), in session ``session`` (the child's, whose pid
    is the session id), or descending from the child. Zombies are left out: they hold no
    memory and cannot be killed again."""
    parents: dict[int, int] = {}
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            if fields[0] in (b"Z", b"X"):
                continue
            parents[pid] = int(fields[1])
            if int(fields[3]) == session or (uid is not None and _real_uid(entry) == uid):
                pids.append(pid)
        except (OSError, ValueError, IndexError):
            continue
    # Descendants that left the session (setsid): the child is a subreaper, so orphans stay
    # below it while it lives, and below an adopting judge after that.
    me = os.getpid()
    roots = {session, me} if _ADOPTS_ORPHANS else {session}
    for pid in parents:
        ancestor, hops = parents.get(pid), 0
        while ancestor not in roots and ancestor not in (None, 0, 1) and hops < 64:
            ancestor, hops = parents.get(ancestor), hops + 1
        if ancestor in roots and pid != me and pid not in pids:
            pids.append(pid)
    return [pid for pid in pids if pid not in _SPARED_PIDS]


def kill_processes_of(user: str) -> int:
    """SIGKILLs every process whose real uid is ``user``'s (root only; e.g. what a crashed
    judge left behind), holding the user's lock (see :func:`_exclusive_use_of`), so that a
    grading that uses the same user elsewhere is never hit mid-run: this waits for it to end.
    Returns how many were signalled."""
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return 0
    if uid == 0:
        raise ValueError("refusing to kill root's processes")
    with _exclusive_use_of(user):
        return _kill_uid(uid)


def _kill_uid(uid: int) -> int:
    killed = 0
    for _ in range(20):
        remaining = _processes(uid, session=-1)
        for pid in remaining:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed += len(remaining)
        if not remaining:
            break
        time.sleep(0.02)
    return killed


_HAS_CHILDREN_LISTS = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def _tree(root: int) -> list[int]:
    """``root`` and every live process below it, from the kernel's per-thread children lists:
    much cheaper than scanning /proc, so the watchdog can look every 50 ms."""
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        if pid not in _SPARED_PIDS:  # a fork server's children count, the server does not
            found.append(pid)
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/children", "rb") as handle:
                    stack.extend(int(child) for child in handle.read().split())
            except (OSError, ValueError):
                continue
    return found


def _resident_bytes(pids: list[int]) -> int:
    """Sum of resident set sizes: cheap, but counts pages shared after a fork once per process."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as handle:
                total += int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    return total


def _proportional_bytes(pids: list[int]) -> int:
    """Sum of proportional set sizes (shared pages split between their users), as a container's
    memory limit sees them; about 5 ms per process, so only read to confirm an RSS alarm."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
                for line in handle:
                    if line.startswith(b"Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError, IndexError):
            total += _resident_bytes([pid])
    return total


def _shared_part_bytes(pid: int) -> int:
    """The part of a process's proportional set size that it holds in pages shared with
    others (``Pss`` minus its private pages)."""
    values = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                key, _, rest = line.partition(b":")
                if key in (b"Pss", b"Private_Clean", b"Private_Dirty"):
                    values[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return 0
    return max(
        0, values.get(b"Pss", 0) - values.get(b"Private_Clean", 0) - values.get(b"Private_Dirty", 0)
    )


def child_command(config: SandboxConfig) -> list[str]:
    """How a child is started: isolated mode (no environment variables, no user site, no
    script folder on sys.path), no bytecode written (it starts as root), unbuffered output."""
    command = [config.python, "-I", "-B", "-u"]
    if not config.use_bytecode:  # make bench: a grading as if nothing were precompiled
        command += ["-X", "pycache_prefix=/nonexistent-kit-pycache"]
    return command + [CHILD_SCRIPT]


def child_environment(workdir: str) -> dict[str, str]:
    """The child's whole environment: nothing of the judge's (its variables may be secrets)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "PYTHONHASHSEED": "0",
        "LANG": "C.UTF-8",
    }


def child_job(
    config: SandboxConfig, job: dict, proto_fd: int, uid: int | None, gid: int | None
) -> dict:
    """The job as the child reads it on stdin."""
    return dict(
        job,
        proto_fd=proto_fd,
        uid=uid,
        gid=gid,
        isolate_network=config.isolate_network,
        confine_files=config.confine_files,
        limits=config.limits,
        engine_root=ENGINE_ROOT,
    )


class ForkServer:
    """The judge's handle on a fork server (``child.py serve``, see ``autograder/child.py``):
    a root process, started fresh (never forked from the judge), that imported torch once and
    forks one child per :meth:`spawn`. Used by batch grading, only as root with the privilege
    drop on (every child then runs as the sandbox user and can neither signal, trace nor read
    the server); a child is what a fresh process would be after its imports (see
    ``docs/security_model.md``, "Fork server").

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, config: SandboxConfig):
        self.config = config
        self.process: subprocess.Popen | None = None
        self.control: socket.socket | None = None
        self.timings: dict = {}
        self.start()

    def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = child_command(self.config) + ["serve", str(theirs.fileno()), ENGINE_ROOT]
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
                cwd="/",
                env=child_environment(tempfile.gettempdir()),
                close_fds=True,
            )
        finally:
            theirs.close()
        _SPARED_PIDS.add(self.process.pid)
        self.control = ours
        ours.settimeout(self.config.startup_timeout_s)
        try:
            hello = json.loads(ours.recv(4096) or b"{}")
        except (OSError, ValueError):
            hello = {}
        if hello.get("ready") is not True:
            self.close()
            raise RuntimeError(f"the fork server did not start: {hello or 'no answer'}")
        self.timings = hello
        ours.settimeout(10.0)

    def spawn(self) -> ForkedChild:
        """A fresh child with its own pipes; its job is to be written to ``.stdin``."""
        if self.control is None or self.process is None or self.process.poll() is not None:
            self.close()
            self.start()  # the server died (killed from outside): start a new one
        assert self.control is not None
        job_read, job_write = os.pipe()
        output_read, output_write = os.pipe()
        proto_read, proto_write = os.pipe()
        try:
            socket.send_fds(self.control, [b"fork"], [job_read, output_write, proto_write])
            pid = int(self.control.recv(64))
        except (OSError, ValueError) as exc:
            for fd in (job_write, output_read, proto_read):
                os.close(fd)
            self.close()
            raise RuntimeError(f"the fork server did not fork: {exc}") from exc
        finally:
            for fd in (job_read, output_write, proto_write):
                os.close(fd)
        return ForkedChild(pid, job_write, output_read, proto_read)

    def close(self) -> None:
        if self.control is not None:
            self.control.close()  # the server reads EOF and exits
            self.control = None
        if self.process is not None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            _SPARED_PIDS.discard(self.process.pid)
            self.process = None

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class ForkedChild:
    """A child forked by a :class:`ForkServer`, with the part of ``subprocess.Popen`` that the
    supervisor uses. It is the server's child, not the judge's: its end is seen on a pidfd
    (opened before the server may reap it, so the pid cannot be reused meanwhile)."""

    def __init__(self, pid: int, job_write: int, output_read: int, proto_read: int):
        self.pid = pid
        self.pidfd = os.pidfd_open(pid)
        self.stdin: IO[bytes] | None = os.fdopen(job_write, "wb")
        self.stdout: IO[bytes] | None = os.fdopen(output_read, "rb", buffering=0)
        self.proto_read = proto_read
        self.returncode: int | None = None

    def _ended_within(self, seconds: float) -> bool:
        readable, _, _ = select.select([self.pidfd], [], [], seconds)
        if readable and self.returncode is None:
            self.returncode = 0  # ended; its status belongs to the server, which reaps it
            os.close(self.pidfd)
        return self.returncode is not None

    def poll(self) -> int | None:
        return self.returncode if self._ended_within(0) else None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and not self._ended_within(timeout or 0):
            raise subprocess.TimeoutExpired(f"forked child {self.pid}", timeout or 0)
        return 0


class _Attempt:
    """One child process, from start to its end."""

    def __init__(
        self, config: SandboxConfig, job: dict, uid: int | None, gid: int | None, on_stdout=None
    ):
        self.config = config
        self.on_stdout = on_stdout or (lambda chunk: None)
        self.process: subprocess.Popen | ForkedChild
        forked = None
        if config.fork_server is not None:
            try:
                forked = config.fork_server.spawn()
            except RuntimeError as exc:  # a fresh process instead: slower, just as safe
                print(f"warning: {exc}; starting a fresh child", file=sys.stderr)
        if forked is not None:
            self.process = forked
            read_fd = forked.proto_read
            job = child_job(config, job, FORKED_PROTO_FD, uid, gid)
        else:
            read_fd, write_fd = os.pipe()
            job = child_job(config, job, write_fd, uid, gid)
            self.process = subprocess.Popen(
                child_command(config),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                start_new_session=True,
                cwd=job["workdir"],
                env=child_environment(job["workdir"]),
                close_fds=True,
            )
            os.close(write_fd)
        self.uid = uid
        self.proto = os.fdopen(read_fd, "rb", buffering=0)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.proto, selectors.EVENT_READ, "proto")
        self.selector.register(_pipe(self.process.stdout), selectors.EVENT_READ, "stdout")
        self.stdout_open = True
        self.buffer = b""
        self.memory_checked_at = 0.0
        self.memory_over = False
        try:
            _pipe(self.process.stdin).write(json.dumps(job).encode())
            _pipe(self.process.stdin).close()
        except (BrokenPipeError, OSError):
            pass

    def events(self, deadline_for):
        """Yields ("event", dict), then one of ("timeout"|"ended"|"memory", None)."""
        proto_open = True
        while True:
            deadline = deadline_for()
            now = time.monotonic()
            if now >= deadline:
                yield "timeout", None
                return
            if self.over_memory(now):
                yield "memory", None
                return
            exited = self.process.poll() is not None
            ready = self.selector.select(timeout=min(0.05, deadline - now))
            for key, _ in ready:
                chunk = os.read(key.fileobj.fileno(), 65536)
                if not chunk:
                    self.selector.unregister(key.fileobj)
                    proto_open = proto_open and key.data != "proto"
                    self.stdout_open = self.stdout_open and key.data != "stdout"
                    continue
                if key.data == "stdout":
                    self.on_stdout(chunk)
                    continue
                self.buffer += chunk
                while b"\n" in self.buffer:
                    line, self.buffer = self.buffer.split(b"\n", 1)
                    try:
                        event = json.loads(line[:1_000_000])
                    except ValueError:
                        continue
                    if isinstance(event, dict):
                        yield "event", event
                if len(self.buffer) > 1_000_000:
                    self.buffer = b""
            if not proto_open or (exited and not ready):
                yield "ended", None
                return

    def watched(self) -> list[int]:
        """The processes whose memory counts: everything below the child (a subreaper), or
        below an adopting judge; a full scan of /proc where the kernel keeps no children lists.
        (kill() always does the full scan, by uid as well.)"""
        if not _HAS_CHILDREN_LISTS:
            return _processes(self.uid, self.process.pid)
        me = os.getpid()
        return [pid for pid in _tree(me if _ADOPTS_ORPHANS else self.process.pid) if pid != me]

    def over_memory(self, now: float) -> bool:
        """Whether the sandbox's processes hold more than the limit (RSS, confirmed by PSS so
        that forked processes sharing pages are not counted several times)."""
        limit = self.config.memory_limit_bytes
        pids = self.watched()
        if _resident_bytes(pids) <= limit:
            return False
        if now - self.memory_checked_at >= 0.25:
            self.memory_checked_at = now
            counted = _proportional_bytes(pids)
            server = self.config.fork_server
            if server is not None and server.process is not None:
                # A forked child shares the server's pages (torch, numpy), and PSS gives it
                # only half of them; the server's half is added back, so that a child is
                # charged what a fresh process holding the same memory would be.
                counted += _shared_part_bytes(server.process.pid)
            self.memory_over = counted > limit
        return self.memory_over

    def drain_stdout(self) -> None:
        """Reads what the child printed last: the protocol's final event can arrive before
        the output printed just before it. Every writer is dead by now, so the pipe ends
        soon; a time limit still bounds it (a writer the sweep missed)."""
        if not self.stdout_open:
            return
        fd = _pipe(self.process.stdout).fileno()
        os.set_blocking(fd, False)
        end = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < end:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            except OSError:
                break
            if not chunk:
                break
            self.on_stdout(chunk)
        self.stdout_open = False

    def kill(self) -> None:
        """SIGKILLs the child, its session, its descendants and (as root) every process of the
        sandbox user. The processes are listed before the child dies, while its descendants
        are still below it."""
        for _ in range(20):
            remaining = _processes(self.uid, self.process.pid)
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            for pid in remaining:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            if not remaining:
                break
            time.sleep(0.02)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        _reap_adopted()
        self.drain_stdout()
        for stream in (self.proto, _pipe(self.process.stdout)):
            try:
                stream.close()
            except OSError:
                pass
        self.selector.close()


def _pipe(stream: IO[bytes] | None) -> IO[bytes]:
    """A pipe the child was started with (``subprocess.PIPE``), never None."""
    if stream is None:
        raise RuntimeError("the child was started without its pipes")
    return stream


def _make_workdir(config: SandboxConfig, uid: int | None, gid: int | None) -> tuple[str, str]:
    """Creates (container, work folder). The container belongs to the judge (mode 0711: the
    sandbox user may pass through, not list or rename); the work folder inside it, and its
    ``out`` folder, belong to the sandbox user."""
    container = tempfile.mkdtemp(prefix="kit-sandbox-", dir=config.keep_workdir_in)
    os.chmod(container, 0o711)
    workdir = os.path.join(container, "work")
    os.mkdir(workdir, 0o700)
    os.mkdir(os.path.join(workdir, "out"), 0o700)
    if uid is not None:
        group = -1 if gid is None else gid  # -1: leave the group as it is
        os.chown(workdir, uid, group)
        os.chown(os.path.join(workdir, "out"), uid, group)
    return container, workdir


def _int(value) -> int | None:
    return value if type(value) is int else None


def protections_by_judge(
    config: SandboxConfig, uid: int | None, child: dict, python_files: str | None
) -> dict:
    """What was in force, for the instructor-only output: the judge's own measures, the
    child's start-up report (sent before any student code ran), and ``mode``, which is "full"
    only when every protection is active and names whatever is missing otherwise."""
    missing = []
    files = str(child.get("files", "")) if child else ""
    if uid is None:
        why = "privilege drop is switched off" if os.geteuid() == 0 else "the grader is not root"
        reach = (
            "(Landlock still keeps it to its work folder and the Python installation)"
            if files.startswith("active")
            else "and can read and write what the grader can"
        )
        missing.append(
            f"{why}, so the child runs as the grader's own user {reach}; "
            f"grade as root for isolation"
        )
        cleanup = (
            "the child's session and descendants, and orphans adopted by the judge"
            if _ADOPTS_ORPHANS
            else "the child's session and descendants (a daemon that left both may survive)"
        )
    else:
        cleanup = "every process of the sandbox user, its session and its descendants"
        if child and child.get("user") != f"uid {uid}":
            missing.append(f"the child did not report the privilege drop ({child.get('user')})")
        if python_files is not None and not python_files.startswith("readable"):
            missing.append(
                f"Python files {python_files}: the submission cannot import "
                f"modules that were not loaded before the privilege drop"
            )
    if not child:
        missing.append("the child never reported its protections (it did not start)")
    else:
        network = str(child.get("network", ""))
        if config.isolate_network and not network.startswith("blocked"):
            missing.append(f"network {network or 'not reported'}")
        if not files.startswith("active"):
            missing.append(
                f"file system not confined ({files or 'not reported'}): the submission can "
                f"read whatever the sandbox user can, such as other submissions and a "
                f"checkout that are readable by all (chmod 700 them)"
            )
        if child.get("subreaper") is not True:
            missing.append("the child is not a subreaper")
    if not missing:
        mode = (
            "full: running as root, the child drops to an unprivileged user"
            if uid is not None
            else "full"
        )
        mode += ", its files confined by Landlock"
        if not str(child.get("proc", "")).startswith("active"):
            mode += " (no private /proc: Landlock closes other processes' entries)"
        if child and "namespace" not in str(child.get("network", "")):
            mode += (
                f"; network blocked by the seccomp filter alone (no network namespace: "
                f"{child.get('network_namespace')})"
            )
    else:
        mode = "DEGRADED: " + "; ".join(missing)
    report = {
        "mode": mode,
        "sandbox_user": config.sandbox_user if uid is not None else None,
        "memory_watchdog_mib": config.memory_limit_bytes // 2**20,
        "process_cleanup": cleanup,
    }
    if python_files is not None:
        report["python_files"] = python_files
    return report


@contextlib.contextmanager
def _exclusive_use_of(user: str | None):
    """Holds a lock on the sandbox user for one grading.

    Cleaning up kills every process of the sandbox user, so two gradings sharing the user
    (``make test`` beside ``make grade``, say) would kill each other's children. They take
    turns instead. The lock file is root's and the child never inherits its descriptor.
    """
    if user is None:
        yield
        return
    folder = "/run/lock" if os.path.isdir("/run/lock") else tempfile.gettempdir()
    fd = os.open(
        os.path.join(folder, f"kit-sandbox-{user}.lock"),
        os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
        0o600,
    )
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def run_in_sandbox(
    cells: list[tuple[int, str]],
    check_source: str,
    check_timeouts: dict[int, float],
    config: SandboxConfig,
) -> SessionResult:
    """Runs the submission's cells, then the given checks, in as many children as needed.

    Args:
        cells: (cell number, source) of every code cell to execute, in order.
        check_source: the checks module's code (comments stripped), executed in the child.
        check_timeouts: check index -> seconds allowed for that check.
        config: limits.

    Returns:
        The reports of the checks that completed and the reason for each that did not. The
        caller must ``close()`` it, which removes the work folder.
    """
    result = SessionResult()
    is_root = os.geteuid() == 0
    uid = gid = None
    if is_root and config.drop_privileges:
        uid, gid = ensure_sandbox_user(config.sandbox_user)
    container, workdir = _make_workdir(config, uid, gid)
    result.cleanup_path = None if config.keep_workdir_in else container
    python_files = None
    try:
        result.outdir_fd = os.open(
            os.path.join(workdir, "out"), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
        )
        with (
            _exclusive_use_of(config.sandbox_user if uid is not None else None),
            _python_readable(uid, gid) as python_files,
        ):
            _supervise(result, cells, check_source, check_timeouts, config, workdir, uid, gid)
    except BaseException:
        result.close()
        raise
    result.protections = dict(
        result.protections, **protections_by_judge(config, uid, result.protections, python_files)
    )
    return result


@contextlib.contextmanager
def _python_readable(uid: int | None, gid: int | None):
    """As root: the sandbox user can read the Python installation while inside (see
    ``autograder.pythonaccess``); yields the report, or None when there is no privilege drop."""
    if uid is None or gid is None:
        yield None
        return
    with python_readable_by(uid, gid) as report:
        yield report


class StdoutExcerpt:
    """What the child printed, bounded: the first and the last ``KEEP_STDOUT_BYTES`` bytes and
    how many there were in all."""

    def __init__(self, keep: int = KEEP_STDOUT_BYTES):
        self.keep = keep
        self.head = b""
        self.tail = b""
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if len(self.head) < self.keep:
            self.head += chunk[: self.keep - len(self.head)]
        self.tail = (self.tail + chunk)[-self.keep :]


class Protocol:
    """The supervisor's state machine over the child's events, for one whole grading (all its
    children). No process and no clock of its own: the supervisor feeds it events with the
    time they arrived and asks it for the current deadline, so it is unit-tested alone.

    A child goes through the phases ``startup`` -> ``defs`` (the submission's statements) ->
    ``checks`` <-> ``check`` (one check running) and ends with ``all_done`` once no check is
    pending. The events are data from an untrusted process (student code can write to the
    protocol pipe too), so an event is accepted only where the real child sends it: protections
    only in the start-up message, a statement's deadline reset only for a strictly later
    statement, a check's only once and only for a check still pending, a report only for the
    check running. Anything else is refused (``accept`` returns False) and changes nothing.

    After each child, ``attempt_ended(outcome)`` charges what was running when it ended
    (timeout, memory, the process ended) and says whether another child should resume.
    """

    def __init__(self, check_timeouts: dict[int, float], config: SandboxConfig, started: float):
        self.check_timeouts = dict(check_timeouts)
        self.config = config
        self.budget_end = started + config.total_budget_s
        self.pending: list[int] = list(check_timeouts)
        self.skip: list[tuple[int, int]] = []
        self.reports: dict[int, dict] = {}
        self.failures: dict[int, str] = {}
        self.notes: list[str] = []
        self.protections: dict = {}
        self.timings: dict[str, float] = {}
        self.failed_starts = 0
        self.finished = False
        self.start_attempt(started)

    # -- one child ------------------------------------------------------------------------
    def start_attempt(self, now: float) -> None:
        self.phase = "startup"
        self.stmt: tuple[int, int] | None = None
        self.check: int | None = None
        self.since = now
        self.started_checks: set[int] = set()

    def deadline(self) -> float:
        """When what is running now must have finished (never after the total budget)."""
        if self.phase == "startup":
            limit = self.config.startup_timeout_s
        elif self.phase == "defs":
            limit = self.config.statement_timeout_s
        elif self.phase == "check" and self.check is not None:
            limit = self.check_timeouts[self.check]
        else:
            limit = 5.0  # between checks: the child only reports and moves on
        return min(self.budget_end, self.since + limit)

    def accept(self, event: object, now: float) -> bool:
        """Applies one event if it is where the real child would send it."""
        if not isinstance(event, dict) or self.finished:
            return False
        name, phase = event.get("ev"), self.phase
        if name == "ready" and phase == "startup":
            protections, timings = event.get("protections"), event.get("timings")
            self.protections = protections if isinstance(protections, dict) else {}
            if isinstance(timings, dict):
                self.timings = {
                    str(key)[:40]: value for key, value in timings.items() if type(value) is float
                }
            self.phase, self.since = "defs", now
        elif name == "stmt" and phase == "defs":
            where = (_int(event.get("cell")), _int(event.get("stmt")))
            if (
                where[0] is None
                or where[1] is None
                or (self.stmt is not None and where <= self.stmt)
            ):
                return False
            self.stmt, self.since = (where[0], where[1]), now
        elif name == "stmt_error" and phase == "defs":
            self.notes.append(f"cell {_int(event.get('cell'))}: {str(event.get('error'))[:500]}")
        elif name == "cell_syntax_error" and phase == "defs":
            self.notes.append(
                f"cell {_int(event.get('cell'))} was skipped, it does not "
                f"parse: {str(event.get('error'))[:500]}"
            )
        elif name == "defs_done" and phase == "defs":
            self.phase, self.stmt, self.since = "checks", None, now
        elif name == "check_start" and phase == "checks":
            check = _int(event.get("check"))
            if check not in self.pending or check in self.started_checks:
                return False
            self.started_checks.add(check)
            self.phase, self.check, self.since = "check", check, now
        elif name == "check_done" and phase == "check":
            if _int(event.get("check")) != self.check or self.check is None:
                return False
            report = event.get("report")
            if isinstance(report, dict):
                self.reports[self.check] = report
            self.pending.remove(self.check)
            self.phase, self.check, self.since = "checks", None, now
        elif name == "all_done" and phase == "checks" and not self.pending:
            self.finished = True
        else:
            return False
        return True

    def attempt_ended(self, outcome: str) -> bool:
        """Charges ``outcome`` ("done", "timeout", "memory" or "ended") to what was running;
        returns whether a fresh child should resume with what is left."""
        if outcome == "done" or self.finished:
            return False
        reason = {
            "timeout": TIME_LIMIT,
            "memory": f"{MEMORY_LIMIT} ({self.config.memory_limit_bytes // 2**20} MiB)",
            "ended": PROCESS_ENDED,
        }[outcome]
        if self.phase == "check" and self.check is not None:
            if outcome == "timeout":
                reason += f" ({self.check_timeouts[self.check]:g} s)"
            self.failures[self.check] = reason
            self.pending.remove(self.check)
        elif self.phase == "defs" and self.stmt is not None:
            cell, stmt = self.stmt
            self.skip.append((cell, stmt))
            self.notes.append(
                f"cell {cell}, statement {stmt + 1}: {reason}; it was skipped "
                f"and the rest of your code was run without it"
            )
            if len(self.skip) > self.config.max_skipped_statements:
                self.fail_pending("not run: too many statements of your code had to be skipped")
        else:
            self.failed_starts += 1
            if self.failed_starts >= 2:
                self.fail_pending(f"not run: the sandbox could not start your code ({outcome})")
        return bool(self.pending)

    def fail_pending(self, reason: str) -> None:
        for index in self.pending:
            self.failures[index] = reason
        self.pending = []

    def out_of_budget(self, now: float) -> bool:
        if now < self.budget_end:
            return False
        self.fail_pending("not run: the grading time budget was used up")
        return True


def _supervise(
    result: SessionResult,
    cells: list[tuple[int, str]],
    check_source: str,
    check_timeouts: dict[int, float],
    config: SandboxConfig,
    workdir: str,
    uid: int | None,
    gid: int | None,
) -> None:
    """Runs children until every check has a report or a failure (see run_in_sandbox)."""
    protocol = Protocol(check_timeouts, config, time.monotonic())
    output = StdoutExcerpt()
    while protocol.pending and not protocol.out_of_budget(time.monotonic()):
        job = {
            "cells": cells,
            "check_source": check_source,
            "checks": protocol.pending,
            "skip": protocol.skip,
            "workdir": workdir,
            "outdir": os.path.join(workdir, "out"),
        }
        attempt = _Attempt(config, job, uid, gid, output.add)
        protocol.start_attempt(time.monotonic())
        outcome = "ended"
        for kind, event in attempt.events(protocol.deadline):
            if kind != "event":
                outcome = kind
                break
            protocol.accept(event, time.monotonic())
            if protocol.finished:
                outcome = "done"
                break
        attempt.kill()
        if not protocol.attempt_ended(outcome):
            break
    result.check_reports.update(protocol.reports)
    result.check_failures.update(protocol.failures)
    result.notes.extend(protocol.notes)
    result.protections = protocol.protections
    result.timings = protocol.timings
    result.stdout_head, result.stdout_tail = output.head, output.tail
    result.stdout_bytes = output.total
