"""File-system confinement of the sandboxed child (issue 25, ``autograder/confinement.py``):
what Landlock lets a sealed process read and write, the folders it is given, and the report
when the kernel has no Landlock. Each probe runs in a fresh process (sealing is for good)."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from autograder import confinement
from autograder.pythonaccess import python_readable_by
from autograder.sandbox import ensure_sandbox_user

REPO = Path(__file__).resolve().parents[1]
needs_landlock = pytest.mark.skipif(confinement.landlock_abi() < 1,
                                    reason="this kernel has no Landlock")

PROBE = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
from autograder import confinement, netfilter
work, secret, readable, as_uid = sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), sys.argv[5]
netfilter.install_network_filter()  # sets PR_SET_NO_NEW_PRIVS, as in the child
proc = confinement.private_proc() if as_uid != "-" else "skipped"
if as_uid != "-":
    os.setgroups([]); os.setgid(int(sys.argv[6])); os.setuid(int(as_uid))
state = confinement.confine(readable, [work], whole_proc=proc.startswith("active"))

def outcome(action):
    try:
        action()
        return "allowed"
    except (OSError, ImportError) as exc:
        return type(exc).__name__

def write(path):
    with open(path, "w") as handle:
        handle.write("x")

print(json.dumps({
    "state": state, "proc": proc,
    "read secret": outcome(lambda: open(secret).read()),
    "list its parent": outcome(lambda: os.listdir(os.path.dirname(secret))),
    "read a checkout file": outcome(lambda: open(os.path.join(sys.argv[1], "README.md")).read()),
    "import a new module": outcome(lambda: __import__("fractions")),
    "write work": outcome(lambda: write(os.path.join(work, "ok.txt"))),
    "write next to the secret": outcome(lambda: write(secret + ".planted")),
    "own /proc entry": outcome(lambda: open("/proc/self/status").read()),
    "parent's command line": outcome(lambda: open(f"/proc/{os.getppid()}/cmdline").read()),
    "init's command line": outcome(lambda: open("/proc/1/cmdline").read()),
}))
"""


def _probe(tmp: Path, as_uid: int | None, as_gid: int | None) -> dict:
    work, secrets_folder = tmp / "work", tmp / "classmates"
    work.mkdir()
    secrets_folder.mkdir()
    secret = secrets_folder / "notebook.ipynb"
    secret.write_text("a classmate's work")
    for path in (tmp, secrets_folder):
        os.chmod(path, 0o777)  # every user may read and write: only Landlock stands in the way
    os.chmod(secret, 0o666)
    if as_uid is not None:
        os.chown(work, as_uid, -1)
    readable = confinement.python_installation([str(REPO)])
    access = (contextlib.nullcontext() if as_uid is None
              else python_readable_by(as_uid, as_gid))  # the sandbox user reaches Python
    with access:
        completed = subprocess.run(
            [sys.executable, "-I", "-c", PROBE, str(REPO), str(work), str(secret),
             json.dumps(readable), "-" if as_uid is None else str(as_uid), str(as_gid)],
            capture_output=True, text=True, timeout=120,
            env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


@needs_landlock
@pytest.mark.parametrize("as_root", [False, True], ids=["same-user", "sandbox-user"])
def test_a_sealed_process_reads_only_python_and_writes_only_its_work_folder(as_root):
    if as_root and os.geteuid() != 0:
        pytest.skip("the privilege drop needs root")
    uid, gid = ensure_sandbox_user("kitsandbox-confine") if as_root else (None, None)
    tmp = Path(tempfile.mkdtemp(prefix="kit-confine-test-"))  # pytest's folders are 0700
    os.chmod(tmp, 0o755)
    try:
        seen = _probe(tmp, uid, gid)
    finally:
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    assert seen["state"].startswith("active: Landlock"), seen
    assert seen["import a new module"] == seen["write work"] == "allowed", seen
    assert seen["own /proc entry"] == "allowed", seen
    for refused in ("read secret", "list its parent", "read a checkout file",
                    "write next to the secret", "parent's command line", "init's command line"):
        assert seen[refused] != "allowed", (refused, seen)
    if as_root:  # the private /proc hides the others altogether
        assert seen["proc"].startswith("active"), seen
        assert seen["init's command line"] == "FileNotFoundError", seen


def test_the_python_installation_excludes_the_graders_folder_but_not_a_venv_inside_it():
    readable = confinement.python_installation([str(REPO)])
    assert str(REPO) not in readable
    assert not any(str(REPO).startswith(path.rstrip("/") + "/") for path in readable), readable
    assert any(Path(path, "torch").is_dir() for path in readable), readable
    assert any(Path(path, "fractions.py").exists() for path in readable), readable
    if sys.prefix.startswith(str(REPO) + "/"):  # the kit's .venv inside the checkout
        assert os.path.realpath(sys.prefix) in readable


def test_without_landlock_the_report_says_so(monkeypatch):
    monkeypatch.setattr(confinement, "landlock_abi", lambda: 0)
    state = confinement.confine([], [], whole_proc=False)
    assert state == "none (Landlock is not available in this kernel)"
    warning = confinement.host_files_warning()
    assert "chmod 700" in warning and "Landlock" in warning
