"""The sandboxed child: runs a submission's code and the hidden checks' exercises on it.

Started by the judge (``autograder/sandbox.py``) as ``python -I -B -u child.py`` with the job
as JSON on stdin (unbuffered, so that what the submission prints survives a kill). Before any
student code runs it: reads the whole job, moves into a new network namespace where it can (no
interface is up, so every connection fails at once) and installs a seccomp filter that
refuses every socket but AF_UNIX (``autograder/netfilter.py``; needs no privilege), sets
resource limits, becomes a child subreaper, imports torch, and drops to the unprivileged
sandbox user. It then executes the submission
statement by statement and runs each requested check, reporting progress as JSON lines on the
protocol file descriptor and writing outputs as plain ``.npy`` files into its work folder.

For batch grading the same file is also a fork server (``serve``): it loads the runtime once
and forks a fresh child per submission, which then isolates itself, drops privileges and runs
its job exactly as above (see ``docs/security_model.md``, "Fork server").

Nothing here is trusted by the judge: reports and arrays are data to compare, never code.
The job holds the submission's cells and the checks' exercise code (comments stripped), never
an expected value.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys
import types

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
PR_SET_CHILD_SUBREAPER = 36


def _send(proto, event: dict) -> None:
    try:
        proto.write(json.dumps(event)[:200_000] + "\n")
        proto.flush()
    except Exception:  # noqa: BLE001 - the student may have closed our pipe
        pass


def _unshare_network(as_root: bool) -> str:
    """Moves this process into an empty network namespace; returns what was achieved."""
    libc = ctypes.CDLL(None, use_errno=True)
    flags = CLONE_NEWNET if as_root else (CLONE_NEWUSER | CLONE_NEWNET)
    if libc.unshare(flags) == 0:
        return "active"
    return f"none (unshare failed: errno {ctypes.get_errno()})"


def _block_network(protections: dict) -> None:
    """Two layers: an empty network namespace where the kernel allows it (root with
    CAP_SYS_ADMIN, or unprivileged user namespaces), and in every case a seccomp filter that
    refuses sockets other than AF_UNIX (Docker, hence Gradescope, has no CAP_SYS_ADMIN)."""
    from autograder.netfilter import install_network_filter

    as_root = os.geteuid() == 0
    namespace = _unshare_network(as_root)
    seccomp = install_network_filter()
    layers = [
        name
        for name, state in (("namespace", namespace), ("seccomp filter", seccomp))
        if state.startswith("active")
    ]
    protections["network_namespace"] = namespace
    protections["network_filter"] = seccomp
    protections["network"] = (
        f"blocked ({' + '.join(layers)})"
        if layers
        else f"NOT blocked: namespace {namespace}; filter {seccomp}"
    )


def _set_limits(limits: dict) -> None:
    pairs = {
        "address_space_bytes": resource.RLIMIT_AS,
        "cpu_seconds": resource.RLIMIT_CPU,
        "file_size_bytes": resource.RLIMIT_FSIZE,
        "open_files": resource.RLIMIT_NOFILE,
        "processes": resource.RLIMIT_NPROC,
    }
    for key, which in pairs.items():
        if key in limits:
            resource.setrlimit(which, (limits[key], limits[key]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _become_subreaper() -> bool:
    """Orphaned descendants (a daemonised fork) are re-parented to this process instead of
    init, so the judge still finds them below the child when it cleans up."""
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def _drop_privileges(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise RuntimeError("privilege drop failed")


class _HarmlessGrader:
    """Stands in for ``otter.Notebook``: public checks and export do nothing when graded."""

    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _install_fake_otter() -> None:
    fake = types.ModuleType("otter")
    fake.Notebook = _HarmlessGrader  # type: ignore[attr-defined]
    sys.modules["otter"] = fake


def _forbidden_functions(names: list[str]):
    """Resolves forbidden API names to the set of callables a runtime trap should notice."""
    import importlib

    import torch

    found = {}
    for name in names:
        if name.startswith("Tensor."):
            attr = getattr(torch.Tensor, name.split(".", 1)[1], None)
            if attr is not None:
                found[attr] = "torch." + name
            continue
        try:
            module = importlib.import_module(name)
        except Exception:  # noqa: BLE001 - not a module: a function such as torch.softmax
            module = None
        if module is not None:
            _add_module_functions(module, name, found, depth=2)
            continue
        parent, _, attr_name = name.rpartition(".")
        try:
            attr = getattr(importlib.import_module(parent), attr_name)
            found[attr] = name
        except Exception:  # noqa: BLE001
            pass
    return found


def _add_module_functions(module, prefix: str, found: dict, depth: int) -> None:
    """Adds every function of ``module`` (and of its submodules, ``depth`` levels down)."""
    for attr_name in dir(module):
        attr = getattr(module, attr_name, None)
        if isinstance(attr, types.ModuleType):
            if depth > 0 and attr.__name__.startswith(module.__name__ + "."):
                _add_module_functions(attr, f"{prefix}.{attr_name}", found, depth - 1)
        elif callable(attr) and not isinstance(attr, type):
            try:
                found.setdefault(attr, f"{prefix}.{attr_name}")
            except TypeError:
                pass


def _make_trap(forbidden: dict):
    """A TorchFunctionMode that records calls of forbidden functions (evidence only)."""
    from torch.overrides import TorchFunctionMode

    class ForbiddenCallTrap(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.seen: list[str] = []

        def __torch_function__(self, func, types_, args=(), kwargs=None):
            try:
                name = forbidden.get(func)
            except TypeError:
                name = None
            if name and name not in self.seen:
                self.seen.append(name)
            return func(*args, **(kwargs or {}))

    return ForbiddenCallTrap


def _statements(source: str, cell_index: int):
    """Top-level statements of one cell, each compiled alone; raises SyntaxError."""
    from autograder.submission import compile_cell  # registers the lines with linecache

    return compile_cell(source, cell_index)


def isolate(job: dict) -> dict:
    """Network off, resource limits, subreaper: everything that needs no privilege drop yet.
    Returns the protections achieved so far."""
    protections: dict = {"network": "off (not requested)"}
    if job["isolate_network"]:
        _block_network(protections)
    _set_limits(job["limits"])
    protections["limits"] = sorted(job["limits"])
    protections["subreaper"] = _become_subreaper()
    return protections


def load_runtime() -> dict[str, float]:
    """Imports numpy, torch and the kit's child-side modules, while still root (the grader's
    source folder is locked to root, and the Python installation may be too). A process that
    did this once can fork fresh children that skip it. Returns the time it took."""
    import time

    began = time.perf_counter()
    import numpy  # noqa: F401
    import torch

    import_torch_s = time.perf_counter() - began
    torch.set_num_threads(1)
    from autograder import arrays, checks, kit  # noqa: F401

    return {"import_torch_s": round(import_torch_s, 4)}


def drop_privileges(job: dict, protections: dict) -> None:
    """Becomes the sandbox user (as root), and moves into the work folder."""
    if os.geteuid() == 0 and job.get("uid") is not None:
        _drop_privileges(job["uid"], job["gid"])
        protections["user"] = f"uid {job['uid']}"
    else:
        protections["user"] = f"uid {os.getuid()} (no privilege drop)"
    os.chdir(job["workdir"])


def prepare_file_confinement(job: dict, protections: dict) -> list[str] | None:
    """As root, before the drop: finds the Python installation's folders (the sandbox user may
    not be able to list them) and, where the kernel allows it, moves into a private mount
    namespace with a fresh ``/proc`` that shows only the sandbox user's processes. Returns the
    folders the child may read, or None when file confinement is not requested."""
    if not job.get("confine_files"):
        protections["files"] = "off (not requested)"
        return None
    from autograder import confinement

    readable = confinement.python_installation([job["engine_root"]])
    protections["proc"] = (
        confinement.private_proc()
        if os.geteuid() == 0
        else "none (not root: no private mount namespace)"
    )
    return readable


def seal_file_system(job: dict, protections: dict, readable: list[str] | None) -> None:
    """Seals the child, as the sandbox user, into the Python installation (read) and its work
    folder (read and write) with Landlock (``autograder/confinement.py``). Landlock binds the
    calling thread and what it creates from then on, so a thread started earlier (a BLAS pool)
    makes the confinement partial, and the report says so."""
    if readable is None:
        return
    from autograder import confinement

    threads = confinement.threads_after_waiting(2.0)
    state = confinement.confine(
        readable, [job["workdir"]], whole_proc=protections["proc"].startswith("active")
    )
    if state.startswith("active") and threads > 1:
        state = f"partial ({threads - 1} thread(s) started before it are not bound): {state}"
    protections["files"] = state


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
        os._exit(0)
    job = json.loads(sys.stdin.read())
    sys.path.insert(0, job["engine_root"])  # -I leaves the script's folder off sys.path
    run_job(job, preloaded=None)
    os._exit(0)


def run_job(job: dict, preloaded: dict[str, float] | None) -> None:
    """Isolates this process, loads the runtime (unless it came ``preloaded`` from a fork
    server), drops privileges and runs the submission; reports on the protocol fd."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    proto = os.fdopen(job["proto_fd"], "w", buffering=1)
    protections = isolate(job)
    timings = load_runtime() if preloaded is None else preloaded
    from autograder import checks as checks_api

    chapter = checks_api.load_checks_namespace(job["check_source"])
    forbidden = _forbidden_functions(list(chapter.forbidden)) if chapter.forbidden else {}
    trap_class = _make_trap(forbidden) if forbidden else None
    import time

    began = time.perf_counter()
    readable = prepare_file_confinement(job, protections)
    drop_privileges(job, protections)
    seal_file_system(job, protections, readable)
    timings = dict(timings, drop_and_confine_s=round(time.perf_counter() - began, 4))
    _send(proto, {"ev": "ready", "protections": protections, "timings": timings})
    run_submission(job, proto, chapter, trap_class)
    proto.close()


# -- the fork server ------------------------------------------------------------------------
FORKED_PROTO_FD = 3  # where a forked child finds its protocol pipe


def serve(control_fd: int, engine_root: str) -> None:
    """The fork server (``python -I -B -u child.py serve FD ENGINE_ROOT``), for batch grading.

    Loads the runtime once, as root, then forks one fresh child per request and never runs
    student code itself. A request is the message ``fork`` on the control socket (a
    ``SOCK_SEQPACKET`` socket pair with the judge) carrying three file descriptors: the job
    pipe (read end), the output pipe and the protocol pipe (write ends). The server answers
    with the child's pid. It never reads a job: the judge writes it straight to the child, so
    nothing of one submission ever enters the server's memory, and so no later child can
    inherit it. Dead children are reaped at the next request only, after the judge has opened
    a pidfd on them, so a pid the judge watches is never reused under it.
    """
    import socket

    sys.path.insert(0, engine_root)
    timings = load_runtime()
    from autograder import confinement, netfilter, submission  # noqa: F401 - every child's

    # fork() copies one thread; a second one (a library's helper) could hold a lock forever.
    # Importing torch leaves one briefly: wait for it, and refuse to serve if it stays.
    control = socket.socket(fileno=control_fd)
    threads = confinement.threads_after_waiting(5.0)
    hello = {"ready": threads == 1, "threads": threads, **timings}
    control.sendall(json.dumps(hello).encode())
    if threads != 1:
        return
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 64, 3)
        except OSError:
            return
        if not message:
            return  # the judge is gone
        while True:  # reap the children that ended (the judge is done with them)
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        if message != b"fork" or len(fds) != 3:
            for fd in fds:
                os.close(fd)
            control.sendall(b"refused")
            continue
        pid = os.fork()
        if pid == 0:
            _forked_child(fds, timings)
        for fd in fds:
            os.close(fd)
        control.sendall(str(pid).encode())


def _forked_child(fds: list[int], timings: dict[str, float]) -> None:
    """A child forked by the server: becomes what ``main`` would have made of a fresh process
    (own session, the judge's pipes on 0/1/2 and the protocol fd, nothing else open, fresh
    random state, its own HOME and TMPDIR), then runs the job. Never returns."""
    code = 1
    try:
        job_fd, output_fd, proto_fd = fds
        os.setsid()
        os.dup2(job_fd, 0)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.dup2(proto_fd, FORKED_PROTO_FD)
        os.closerange(FORKED_PROTO_FD + 1, 1 << 20)  # the control socket above all
        sys.argv = sys.argv[:1]
        import tempfile

        import numpy

        numpy.random.seed()  # the legacy global state would be the same in every child
        chunks = []
        while chunk := os.read(0, 1 << 20):
            chunks.append(chunk)
        job = json.loads(b"".join(chunks))
        os.environ.update(HOME=job["workdir"], TMPDIR=job["workdir"])
        tempfile.tempdir = None
        run_job(job, dict(timings, import_torch_s=0.0))
        code = 0
    finally:
        os._exit(code)


def run_submission(job: dict, proto, chapter, trap_class) -> None:
    """Executes the submission statement by statement, then the requested checks; reports
    every step on ``proto``. Runs as the sandbox user."""
    import numpy as np

    from autograder import checks as checks_api

    _install_fake_otter()
    namespace: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    skip = {tuple(pair) for pair in job["skip"]}
    for cell_index, source in job["cells"]:
        try:
            compiled = list(_statements(source, cell_index))
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            _send(
                proto,
                {
                    "ev": "cell_syntax_error",
                    "cell": cell_index,
                    "error": f"{type(exc).__name__}: {getattr(exc, 'msg', exc)} "
                    f"(line {getattr(exc, 'lineno', '?')})",
                },
            )
            continue
        for stmt_index, code in enumerate(compiled):
            if (cell_index, stmt_index) in skip:
                continue
            _send(proto, {"ev": "stmt", "cell": cell_index, "stmt": stmt_index})
            try:
                exec(code, namespace)  # noqa: S102 - this is the sandbox
            except BaseException as exc:  # noqa: BLE001
                _send(
                    proto,
                    {
                        "ev": "stmt_error",
                        "cell": cell_index,
                        "stmt": stmt_index,
                        "error": checks_api.short_error(exc),
                    },
                )
    _send(proto, {"ev": "defs_done"})

    outdir = job["outdir"]
    for check_index in job["checks"]:
        check = chapter.checks[check_index]
        _send(proto, {"ev": "check_start", "check": check_index})

        def save(case_index, output_name, array, _check_index=check_index):
            name = checks_api.array_file_name(_check_index, case_index, output_name)
            np.save(os.path.join(outdir, name), array, allow_pickle=False)

        trap = trap_class() if trap_class else None
        try:
            if trap is not None:
                with trap:
                    report = checks_api.run_check(check, namespace, save)
            else:
                report = checks_api.run_check(check, namespace, save)
        except BaseException as exc:  # noqa: BLE001 - e.g. the trap itself was sabotaged
            report = {"cases": [], "error": checks_api.short_error(exc)}
        report["trap"] = list(trap.seen) if trap is not None else []
        _send(proto, {"ev": "check_done", "check": check_index, "report": report})
    _send(proto, {"ev": "all_done"})


if __name__ == "__main__":
    main()
