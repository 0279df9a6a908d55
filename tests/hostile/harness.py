"""Grades submissions the way Gradescope does, in a throw-away copy of its folder layout.

Every run gets its own ``/autograder``-like folder (mode 0755, owned by root like the real one)::

    <run>/source/chapter/      the chapter package, built once per session with a canary planted
    <run>/source/autograder/   a copy of the engine (so ``python -m autograder.gradescope`` with
                               cwd=source imports it, exactly as run_autograder does)
    <run>/source/solutions/    the reference, as a careless instructor might ship it
    <run>/submission_metadata.json, <run>/submission/, <run>/results/results.json
    <run>/sandbox/             where the child's work folder is kept for inspection

and is graded by the real entry point in a subprocess. Runs go in parallel, each with its own
sandbox user (``kitsandbox-t<i>``, created on first use) because the sandbox kills and measures
every process of its user. Without root the same runs happen in the grader's degraded mode.
"""
from __future__ import annotations

import ast
import json
import os
import pwd
import queue
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from autograder.sandbox import _real_uid, _tree, ensure_sandbox_user
from tests.loopback import LoopbackListeners

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SUBMISSIONS = HERE / "submissions"
CHAPTER = "01_mlp_backprop"
NOTEBOOK_NAME = f"{CHAPTER}.ipynb"
REFERENCE = REPO / "solutions" / f"ch{CHAPTER}.py"
AS_ROOT = os.geteuid() == 0
RUN_TIMEOUT_S = 300
CANARY_ENV = "KIT_GRADER_SECRET"  # the judge's environment: part of the grader's configuration
TEMPORARY_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm")
MAX_SCANNED_BYTES = 16 * 2**20


def worker_count() -> int:
    """Parallel gradings: one per core plus one (much of a hostile run is waiting)."""
    return int(os.environ.get("KIT_HOSTILE_WORKERS") or (os.cpu_count() or 2) + 1)


# ------------------------------------------------------------------------------------------
# Submissions: the reference, a snippet appended to it, or a notebook in percent format
# ------------------------------------------------------------------------------------------

def reference_source() -> str:
    return REFERENCE.read_text()


def reference_parts() -> dict[str, str]:
    """The reference split into ``header`` (docstring and imports) and one part per class."""
    source = reference_source()
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    parts = {"header": "".join(lines[:classes[0].lineno - 1]).strip() + "\n"}
    for node in classes:
        start = node.lineno - 1 - len(node.decorator_list)
        parts[node.name] = "".join(lines[start:node.end_lineno])
    return parts


def expand(text: str, substitutions: dict[str, str]) -> str:
    """Replaces ``# include: <file>`` lines and ``{{NAME}}`` placeholders."""
    lines = []
    for line in text.splitlines(keepends=True):
        if line.startswith("# include: "):
            line = (SUBMISSIONS / line.split(":", 1)[1].strip()).read_text()
        lines.append(line)
    text = "".join(lines)
    for name, value in substitutions.items():
        text = text.replace("{{" + name + "}}", value)
    return text


def notebook_cells(percent_text: str) -> list[str]:
    """Code cells of a percent-format file; ``# %% reference [names]`` stands for reference
    parts (all of them when no name is given), one cell each."""
    parts = reference_parts()
    cells: list[str] = []
    current: list[str] | None = None
    for line in percent_text.splitlines(keepends=True):
        if line.startswith("# %%"):
            words = line[4:].split()
            if words and words[0] == "reference":
                cells.extend(parts[name] for name in (words[1:] or list(parts)))
                current = None
            else:
                current = []
                cells.append(current)  # type: ignore[arg-type]
            continue
        if current is not None:
            current.append(line)
    return ["".join(cell).strip() + "\n" if isinstance(cell, list) else cell for cell in cells]


def notebook_json(cells: list[str], chapter: str = CHAPTER) -> str:
    return json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "id": f"cell-{index}",
                   "metadata": {}, "outputs": [], "source": source}
                  for index, source in enumerate(cells)],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                    "name": "python3"},
                     "kit": {"chapter": chapter}},
        "nbformat": 4, "nbformat_minor": 5,
    }, indent=1)


def _passed_through(*names: str) -> dict[str, str]:
    """Grader settings the suite's own environment may set (to prove a case can fail)."""
    return {name: os.environ[name] for name in names if name in os.environ}


def host_substitutions(run_dir: Path) -> dict[str, str]:
    """Places on the host a submission goes after (issue 25): the kit's checkout, and a
    folder of the run's that every user may write, as a careless shared folder would be."""
    writable = run_dir / "shared-writable"
    writable.mkdir(exist_ok=True)
    os.chmod(writable, 0o777)
    return {"REPO": str(REPO), "WRITABLE_DIR": str(writable)}


@dataclass
class RunContext:
    """What a submission builder may use: where to write, and values for placeholders."""

    run_dir: Path
    submission_dir: Path
    substitutions: dict[str, str]

    def marker(self, name: str) -> Path:
        """A path in the run folder (root-owned: the sandbox user cannot create it)."""
        return self.run_dir / f"marker-{name}"


Builder = Callable[[RunContext], None]


# ------------------------------------------------------------------------------------------
# The canary and the Gradescope-like source folder
# ------------------------------------------------------------------------------------------

def build_canaried_source(dest: Path, canary: str) -> None:
    """Builds ``dest`` (Gradescope's /autograder/source) with ``canary`` in every secret: a
    comment of the hidden checks (the build must strip it), the reference (comment,
    docstring, constant), chapter.json and a file among the expected data."""
    scratch = Path(tempfile.mkdtemp(prefix="kit-hostile-build-"))
    try:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(REPO / "autograder", scratch / "autograder", ignore=ignore)
        (scratch / "tools").mkdir()
        for name in ("__init__.py", "chapter_package.py"):
            shutil.copy(REPO / "tools" / name, scratch / "tools" / name)
        checks = scratch / "assignments" / CHAPTER / "checks.py"
        checks.parent.mkdir(parents=True)
        checks.write_text((REPO / "assignments" / CHAPTER / "checks.py").read_text()
                          + f"\n# {canary}: a comment of the hidden checks\n")
        solutions = scratch / "solutions"
        solutions.mkdir()
        (solutions / "__init__.py").write_text("")
        (solutions / REFERENCE.name).write_text(
            reference_source() + f"\n\n# {canary}\n\ndef _instructor_note():\n"
                                 f'    """{canary}"""\n    return "{canary}"\n')
        subprocess.run(
            [sys.executable, "-B", "-c",
             "import sys; from pathlib import Path; "
             "from tools.chapter_package import build_package; "
             "build_package(sys.argv[1], Path(sys.argv[2]))", CHAPTER, str(dest / "chapter")],
            cwd=scratch, check=True, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        config_path = dest / "chapter" / "chapter.json"
        config = json.loads(config_path.read_text())
        config["instructor_note"] = canary
        config_path.write_text(json.dumps(config, indent=1, sort_keys=True))
        (dest / "chapter" / "expected" / "CANARY.txt").write_text(canary + "\n")
        shutil.copytree(solutions, dest / "solutions")
        shutil.copytree(REPO / "autograder", dest / "autograder", ignore=ignore)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert canary not in (dest / "chapter" / "checks_source.py").read_text(), \
        "the build kept a comment of the hidden checks"
    for path in dest.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    os.chmod(dest, 0o755)


def metadata_json(canary: str) -> str:
    """Gradescope's submission_metadata.json, with the canary as a student's e-mail."""
    return json.dumps({"id": 1, "users": [{"name": "A Student", "email": f"{canary}@example.edu"}],
                       "previous_submissions": []})


# ------------------------------------------------------------------------------------------
# One graded run
# ------------------------------------------------------------------------------------------

@dataclass
class Run:
    """Everything one grading produced, as a student, an instructor and the child could see."""

    name: str
    run_dir: Path
    results: dict
    results_text: str
    stdout: str
    stderr: str
    seconds: float
    cpu_seconds: float
    returncode: int
    sandbox_user: str | None
    child_files: dict[str, bytes] = field(default_factory=dict)
    leftover_processes: list[int] = field(default_factory=list)
    killed_at: float | None = None
    ended_at: float = 0.0

    @property
    def output(self) -> str:
        return self.results.get("output", "")

    @property
    def protections(self) -> dict:
        return self.results.get("extra_data", {}).get("protections", {})

    def items(self) -> dict[str, dict]:
        """Tests by item name ("Linear: y")."""
        return {test["name"].split(" ", 1)[1]: test for test in self.results.get("tests", [])}


def _sandbox_uid(user: str | None) -> int | None:
    if user is None:
        return None
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def _proc_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, real uid, state) for every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", "rb") as handle:
                fields = dict(line.split(b":", 1) for line in handle if b":" in line)
            table[int(entry)] = (int(fields[b"PPid"]), int(fields[b"Uid"].split()[0]),
                                 fields[b"State"].split()[0].decode())
        except (OSError, ValueError, IndexError, KeyError):
            continue
    return table


def _uid_of(pid: int) -> int | None:
    try:
        return _real_uid(str(pid))
    except (OSError, ValueError):
        return None


def _runs_child_script(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"child.py" in handle.read()
    except OSError:
        return False


def descendants(root: int, table: dict[int, tuple[int, int, str]] | None = None) -> list[int]:
    table = table if table is not None else _proc_table()
    found = []
    for pid in table:
        ancestor, hops = table[pid][0], 0
        while ancestor not in (root, 0, 1) and ancestor in table and hops < 64:
            ancestor, hops = table[ancestor][0], hops + 1
        if ancestor == root and table[pid][2] != "Z":
            found.append(pid)
    return found


def live_processes_of(uid: int, table: dict[int, tuple[int, int, str]] | None = None
                      ) -> list[int]:
    table = table if table is not None else _proc_table()
    return [pid for pid, (_, owner, state) in table.items()
            if owner == uid and state not in ("Z", "X")]


def files_owned_by(uid: int) -> list[Path]:
    """Files the sandbox user left in the shared temporary folders (never following links,
    entering only folders it could have written into)."""
    found = []
    for top in TEMPORARY_FOLDERS:
        for folder, subfolders, files in os.walk(top):
            try:
                info = os.lstat(folder)
            except OSError:  # removed meanwhile (another grading's work folder)
                subfolders[:] = []
                continue
            writable = info.st_uid == uid or info.st_mode & stat.S_IWOTH
            if not writable:
                subfolders[:] = []
                continue
            for name in files + subfolders:
                path = Path(folder) / name
                try:
                    if os.lstat(path).st_uid == uid:
                        found.append(path)
                except OSError:
                    continue
    return found


def read_tree(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` (links are recorded by their target, not followed)."""
    contents = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                contents[str(path)] = os.readlink(path).encode()
            elif stat.S_ISREG(info.st_mode):
                with open(path, "rb") as handle:
                    contents[str(path)] = handle.read(MAX_SCANNED_BYTES)
    return contents


def _wait_with_usage(process: subprocess.Popen) -> tuple[bytes, bytes, float]:
    """Drains the grader's output, waits for it (killing it after RUN_TIMEOUT_S) and returns
    stdout, stderr and the CPU seconds it and its children (judge and sandbox) used."""
    chunks: dict[str, bytes] = {}
    readers = [threading.Thread(target=lambda key=key, stream=stream:
                                chunks.__setitem__(key, stream.read()))
               for key, stream in (("out", process.stdout), ("err", process.stderr))]
    for reader in readers:
        reader.start()
    timer = threading.Timer(RUN_TIMEOUT_S, process.kill)
    timer.start()
    _, status, usage = os.wait4(process.pid, 0)
    timer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    return chunks["out"], chunks["err"], usage.ru_utime + usage.ru_stime


Trigger = Callable[[float, Path, list[int]], bool]


def after(seconds: float) -> Trigger:
    """Fires ``seconds`` after the first process below the judge appears, or at the latest
    when the child saves its first output: on a fast machine with a warm page cache the whole
    start-up can end sooner than ``seconds``, and a fault that is never injected tests nothing."""
    first_output = when_output_appears("c")
    return lambda elapsed, run_dir, owners: (elapsed >= seconds
                                             or first_output(elapsed, run_dir, owners))


def when_output_appears(prefix: str) -> Trigger:
    """Fires when the child has saved an output whose file name starts with ``prefix``
    (``c003_``: the fourth check is running)."""
    def fire(elapsed: float, run_dir: Path, owners: list[int]) -> bool:
        return any(run_dir.glob(f"sandbox/*/work/out/{prefix}*"))
    return fire


def when_privileges_dropped(uid: int | None, otherwise_after: float) -> Trigger:
    """Fires once a process below the judge runs as the sandbox user (root mode), i.e. the
    child is ready and runs the submission's statements; at the latest when its first output
    appears (a short child can slip between two looks at the process table)."""
    if uid is None:  # no privilege drop to watch for: a plain timed fault
        return after(otherwise_after)
    first_output = when_output_appears("c")
    return lambda elapsed, run_dir, owners: (uid in owners
                                             or first_output(elapsed, run_dir, owners))


class Killer(threading.Thread):
    """SIGKILLs every process below the grader (and of the sandbox user) once, when
    ``trigger`` fires: a fault injected into the judge's child from outside."""

    def __init__(self, grader_pid: int, uid: int | None, run_dir: Path, trigger: Trigger):
        super().__init__(daemon=True)
        self.grader_pid, self.uid, self.run_dir, self.trigger = grader_pid, uid, run_dir, trigger
        self.killed_at: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        first_seen = None
        while not self.stop.is_set():
            below = [pid for pid in _tree(self.grader_pid) if pid != self.grader_pid]
            if below and first_seen is None:
                first_seen = time.monotonic()
            # the sandboxed child itself: the judge's own short-lived probe of the Python
            # installation (a fork that drops to the sandbox user) must not fire the trigger
            owners = [_uid_of(pid) for pid in below if _runs_child_script(pid)]
            if first_seen is not None and self.trigger(time.monotonic() - first_seen,
                                                       self.run_dir, owners):
                victims = descendants(self.grader_pid)
                if self.uid is not None:
                    victims += live_processes_of(self.uid)
                for pid in set(victims):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                self.killed_at = time.monotonic() - first_seen
                return
            time.sleep(0.01)


class HostileGrader:
    """The session's grading machinery: the canary, the pristine source, users, a pool."""

    def __init__(self, workers: int | None = None):
        self.canary = f"KITCANARY-{secrets.token_hex(12)}"
        self.base = Path(tempfile.mkdtemp(prefix="kit-hostile-"))
        os.chmod(self.base, 0o755)  # like /autograder: anyone may pass through
        self.pristine = self.base / "pristine-source"
        build_canaried_source(self.pristine, self.canary)
        self.listeners = LoopbackListeners()  # network probes reach only these
        self.workers = workers or worker_count()
        self.users: queue.Queue[str | None] = queue.Queue()
        for index in range(self.workers):
            user = f"kitsandbox-t{index + 1}" if AS_ROOT else None
            if user is not None:  # created here, one at a time: useradd takes a lock
                ensure_sandbox_user(user)
            self.users.put(user)
        self.pool = ThreadPoolExecutor(max_workers=self.workers)
        self.counter = 0
        self.lock = threading.Lock()
        self.futures: dict[str, Future] = {}

    def run_tag(self, run_dir: Path) -> str:
        """A name unique to this session and run, for files a submission leaves in /tmp."""
        return f"{self.base.name}-{run_dir.name}"

    # -- lifecycle ----------------------------------------------------------------------
    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.listeners.close()
        for folder in TEMPORARY_FOLDERS:  # what the submissions wrote on purpose, either mode
            for path in Path(folder).glob(f"kit-hostile-*{self.base.name}*"):
                if path.is_file() and not path.is_symlink():
                    path.unlink(missing_ok=True)
        if AS_ROOT:
            for index in range(self.workers):
                uid = _sandbox_uid(f"kitsandbox-t{index + 1}")
                if uid is None:
                    continue
                for pid in live_processes_of(uid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                for path in files_owned_by(uid):
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)
        shutil.rmtree(self.base, ignore_errors=True)

    # -- scheduling -----------------------------------------------------------------------
    def submit(self, key: str, name: str, build: Builder,
               kill_when: Callable[[int | None], Trigger] | None = None) -> Future:
        """Schedules one run under ``key`` (once); returns its future. ``kill_when(uid)``
        gives the trigger of a fault to inject."""
        with self.lock:
            if key not in self.futures:
                self.futures[key] = self.pool.submit(self.grade, name, build, kill_when)
            return self.futures[key]

    # -- one run --------------------------------------------------------------------------
    def _new_run_dir(self, name: str) -> Path:
        with self.lock:
            self.counter += 1
            run_dir = self.base / "runs" / f"{self.counter:03d}-{name}"
        run_dir.mkdir(parents=True)
        for path in (run_dir.parent, run_dir):
            os.chmod(path, 0o755)
        shutil.copytree(self.pristine, run_dir / "source", symlinks=True)
        (run_dir / "submission_metadata.json").write_text(metadata_json(self.canary))
        for sub in ("submission", "results", "sandbox"):
            (run_dir / sub).mkdir(mode=0o755)
            os.chmod(run_dir / sub, 0o755)
        return run_dir

    def grade(self, name: str, build: Builder,
              kill_when: Callable[[int | None], Trigger] | None = None) -> Run:
        user = self.users.get()
        try:
            return self._grade_as(user, name, build, kill_when)
        finally:
            self.users.put(user)

    def _grade_as(self, user: str | None, name: str, build: Builder,
                  kill_when: Callable[[int | None], Trigger] | None) -> Run:
        run_dir = self._new_run_dir(name)
        context = RunContext(run_dir, run_dir / "submission", {
            "RUN_TAG": self.run_tag(run_dir), "MARKER": str(run_dir / "marker-unpickled"),
            **host_substitutions(run_dir), **self.listeners.substitutions})
        build(context)
        for path in context.submission_dir.rglob("*"):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        source, results_path = run_dir / "source", run_dir / "results" / "results.json"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1", "KIT_KEEP_WORKDIR_IN": str(run_dir / "sandbox"),
               CANARY_ENV: self.canary, **_passed_through("KIT_CONFINE_FILES")}
        if user is not None:
            env["KIT_SANDBOX_USER"] = user
        command = [sys.executable, "-m", "autograder.gradescope", "--source", str(source),
                   "--submission", str(context.submission_dir), "--results", str(results_path)]
        began = time.monotonic()
        process = subprocess.Popen(command, cwd=source, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        killer = None
        if kill_when is not None:
            uid = _sandbox_uid(user)
            killer = Killer(process.pid, uid, run_dir, kill_when(uid))
            killer.start()
        stdout, stderr, cpu_seconds = _wait_with_usage(process)
        seconds = time.monotonic() - began
        if killer is not None:
            killer.stop.set()
            killer.join()
        uid = _sandbox_uid(user)
        results_text = results_path.read_text() if results_path.exists() else ""
        try:
            results = json.loads(results_text)
        except ValueError:
            results = {}
        child_files = read_tree(run_dir / "sandbox")
        if uid is not None:
            for path in files_owned_by(uid):
                if path.is_file() and not path.is_symlink():
                    child_files[str(path)] = path.read_bytes()[:MAX_SCANNED_BYTES]
        return Run(name=name, run_dir=run_dir, results=results, results_text=results_text,
                   stdout=stdout.decode(errors="replace"), stderr=stderr.decode(errors="replace"),
                   seconds=seconds, cpu_seconds=cpu_seconds, returncode=process.returncode,
                   sandbox_user=user,
                   child_files=child_files,
                   leftover_processes=live_processes_of(uid) if uid is not None else [],
                   killed_at=killer.killed_at if killer else None, ended_at=time.time())
