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
* not root: resource limits, a user+network namespace where the kernel allows it, and the
  same deadlines and memory watchdog; the child runs as the calling user.
"""
from __future__ import annotations

import json
import os
import pwd
import selectors
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ENGINE_ROOT = str(Path(__file__).resolve().parent.parent)
CHILD_SCRIPT = str(Path(__file__).resolve().parent / "child.py")
SANDBOX_USER = "kitsandbox"
MAX_ARRAY_FILE_BYTES = 64 * 2**20
KEEP_STDOUT_BYTES = 4096


@dataclass
class SandboxConfig:
    """Limits for one grading run. Times are wall-clock seconds."""

    python: str = sys.executable
    isolate_network: bool = True
    drop_privileges: bool = True
    memory_limit_bytes: int = 640 * 2**20
    startup_timeout_s: float = 60.0
    statement_timeout_s: float = 20.0
    total_budget_s: float = 420.0
    max_skipped_statements: int = 10
    limits: dict = field(default_factory=lambda: {
        "address_space_bytes": 4 * 2**30,
        "cpu_seconds": 300,
        "file_size_bytes": 64 * 2**20,
        "open_files": 256,
        "processes": 64,
    })


@dataclass
class SessionResult:
    """What the child produced, as the judge saw it."""

    check_reports: dict[int, dict] = field(default_factory=dict)
    check_failures: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    protections: dict = field(default_factory=dict)
    stdout_head: bytes = b""
    stdout_tail: bytes = b""
    outdir_fd: int | None = None

    def load_array(self, file_name: str) -> np.ndarray | None:
        """Loads one output written by the child, refusing links, devices and huge files."""
        try:
            fd = os.open(file_name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK,
                         dir_fd=self.outdir_fd)
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
        if self.outdir_fd is not None:
            os.close(self.outdir_fd)
            self.outdir_fd = None


def ensure_sandbox_user() -> tuple[int, int]:
    """The sandbox user's uid and gid, creating the user if needed (root only)."""
    try:
        entry = pwd.getpwnam(SANDBOX_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", SANDBOX_USER], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        entry = pwd.getpwnam(SANDBOX_USER)
    return entry.pw_uid, entry.pw_gid


def _processes(uid: int | None, session: int) -> list[int]:
    """Pids owned by ``uid`` (when given) or belonging to session ``session``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if uid is not None:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    pids.append(int(entry))
            else:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    fields = handle.read().rsplit(b")", 1)[1].split()
                if int(fields[3]) == session:
                    pids.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def _resident_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as handle:
                total += int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    return total


class _Attempt:
    """One child process, from start to its end."""

    def __init__(self, config: SandboxConfig, job: dict, uid: int | None, gid: int | None):
        self.config = config
        read_fd, write_fd = os.pipe()
        job = dict(job, proto_fd=write_fd, uid=uid, gid=gid,
                   isolate_network=config.isolate_network, limits=config.limits,
                   engine_root=ENGINE_ROOT)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": job["workdir"],
               "TMPDIR": job["workdir"], "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0", "LANG": "C.UTF-8"}
        self.process = subprocess.Popen(
            [config.python, "-I", "-B", CHILD_SCRIPT], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, pass_fds=(write_fd,),
            start_new_session=True, cwd=job["workdir"], env=env, close_fds=True)
        os.close(write_fd)
        self.uid = uid
        self.proto = os.fdopen(read_fd, "rb", buffering=0)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.proto, selectors.EVENT_READ, "proto")
        self.selector.register(self.process.stdout, selectors.EVENT_READ, "stdout")
        self.buffer = b""
        try:
            self.process.stdin.write(json.dumps(job).encode())
            self.process.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    def events(self, deadline_for, on_stdout):
        """Yields ("event", dict), then one of ("timeout"|"ended"|"memory", None)."""
        proto_open = True
        while True:
            deadline = deadline_for()
            now = time.monotonic()
            if now >= deadline:
                yield "timeout", None
                return
            if _resident_bytes(_processes(self.uid, self.process.pid)) > \
                    self.config.memory_limit_bytes:
                yield "memory", None
                return
            exited = self.process.poll() is not None
            ready = self.selector.select(timeout=min(0.05, deadline - now))
            for key, _ in ready:
                chunk = os.read(key.fileobj.fileno(), 65536)
                if not chunk:
                    self.selector.unregister(key.fileobj)
                    proto_open = proto_open and key.data != "proto"
                    continue
                if key.data == "stdout":
                    on_stdout(chunk)
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

    def kill(self) -> None:
        """SIGKILLs the child, its session and (as root) every process of the sandbox user."""
        for _ in range(20):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            remaining = _processes(self.uid, self.process.pid)
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
        for stream in (self.proto, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.selector.close()


def run_in_sandbox(cells: list[tuple[int, str]], check_source: str,
                   check_timeouts: dict[int, float], config: SandboxConfig) -> SessionResult:
    """Runs the submission's cells, then the given checks, in as many children as needed.

    Args:
        cells: (cell number, source) of every code cell to execute, in order.
        check_source: the checks module's code (comments stripped), executed in the child.
        check_timeouts: check index -> seconds allowed for that check.
        config: limits.

    Returns:
        The reports of the checks that completed and the reason for each that did not.
    """
    result = SessionResult()
    started = time.monotonic()
    is_root = os.geteuid() == 0
    uid = gid = None
    if is_root and config.drop_privileges:
        uid, gid = ensure_sandbox_user()
    workdir = tempfile.mkdtemp(prefix="kit-sandbox-")
    outdir = os.path.join(workdir, "out")
    os.mkdir(outdir)
    result.outdir_fd = os.open(outdir, os.O_RDONLY | os.O_DIRECTORY)
    if uid is not None:
        os.chown(workdir, uid, gid)
        os.chown(outdir, uid, gid)

    stdout_state = {"head": b"", "tail": b""}

    def on_stdout(chunk: bytes) -> None:
        if len(stdout_state["head"]) < KEEP_STDOUT_BYTES:
            stdout_state["head"] += chunk[:KEEP_STDOUT_BYTES - len(stdout_state["head"])]
        stdout_state["tail"] = (stdout_state["tail"] + chunk)[-KEEP_STDOUT_BYTES:]

    pending = list(check_timeouts)
    skip: list[tuple[int, int]] = []
    failed_starts = 0
    while pending:
        if time.monotonic() - started > config.total_budget_s:
            for index in pending:
                result.check_failures[index] = "not run: the grading time budget was used up"
            break
        job = {"cells": cells, "check_source": check_source, "checks": pending,
               "skip": skip, "workdir": workdir, "outdir": outdir}
        attempt = _Attempt(config, job, uid, gid)
        state = {"phase": "startup", "stmt": None, "check": None,
                 "since": time.monotonic()}

        def deadline_for() -> float:
            budget_end = started + config.total_budget_s
            if state["phase"] == "startup":
                return min(budget_end, state["since"] + config.startup_timeout_s)
            if state["phase"] == "defs":
                return min(budget_end, state["since"] + config.statement_timeout_s)
            if state["phase"] == "check":
                return min(budget_end, state["since"] + check_timeouts[state["check"]])
            return min(budget_end, state["since"] + 5.0)

        outcome = "ended"
        for kind, event in attempt.events(deadline_for, on_stdout):
            if kind != "event":
                outcome = kind
                break
            name = event.get("ev")
            if name == "ready":
                result.protections = event.get("protections", {})
                state.update(phase="defs", since=time.monotonic())
            elif name == "stmt":
                state.update(stmt=(event.get("cell"), event.get("stmt")),
                             since=time.monotonic())
            elif name == "stmt_error":
                result.notes.append(f"cell {event.get('cell')}: {event.get('error')}")
            elif name == "cell_syntax_error":
                result.notes.append(f"cell {event.get('cell')} was skipped, it does not "
                                    f"parse: {event.get('error')}")
            elif name == "defs_done":
                state.update(phase="checks", stmt=None, since=time.monotonic())
            elif name == "check_start" and event.get("check") in pending:
                state.update(phase="check", check=event["check"], since=time.monotonic())
            elif name == "check_done" and event.get("check") == state["check"]:
                report = event.get("report")
                if isinstance(report, dict):
                    result.check_reports[state["check"]] = report
                pending.remove(state["check"])
                state.update(phase="checks", check=None, since=time.monotonic())
            elif name == "all_done":
                outcome = "done"
                break
        attempt.kill()
        if outcome == "done":
            break
        reason = {"timeout": "did not finish within its time limit",
                  "memory": f"went over the memory limit "
                            f"({config.memory_limit_bytes // 2**20} MiB)",
                  "ended": "ended the process (os._exit, a signal, or a crash)"}[outcome]
        if state["phase"] == "check":
            result.check_failures[state["check"]] = f"killed: your code {reason}"
            pending.remove(state["check"])
        elif state["phase"] == "defs" and state["stmt"] is not None:
            cell, stmt = state["stmt"]
            skip.append((cell, stmt))
            result.notes.append(f"cell {cell}, statement {stmt + 1} {reason}; it was "
                                f"skipped and the rest of your code was run without it")
            if len(skip) > config.max_skipped_statements:
                for index in pending:
                    result.check_failures[index] = "not run: too many statements of your " \
                                                   "code had to be skipped"
                break
        else:
            failed_starts += 1
            if failed_starts >= 2:
                for index in pending:
                    result.check_failures[index] = f"not run: the sandbox could not start " \
                                                   f"your code ({outcome})"
                break
    result.stdout_head = stdout_state["head"]
    result.stdout_tail = stdout_state["tail"]
    return result
