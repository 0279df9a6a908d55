"""The fork server that batch grading uses (``autograder/child.py`` ``serve``, judge side
``sandbox.ForkServer``): a forked child starts from the server's state, never from a previous
submission's; the server never holds a job; a child can neither kill the server nor outlive its
grading. (Batch results equal one-at-a-time results: ``tests/test_grade_all.py``.)"""
from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest

from autograder.sandbox import ForkServer, SandboxConfig, run_in_sandbox

REPO = Path(__file__).resolve().parents[1]
CHECKS = (REPO / "assignments" / "01_mlp_backprop" / "checks.py").read_text()
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the fork server is used as root only")

LEAVES_TRACES = """
import builtins, os, sys, numpy, torch
torch.kit_marker = builtins.kit_marker = "left by the first submission"
sys.modules["kit_marker"] = torch
os.environ["KIT_MARKER"] = "1"
open("marker.txt", "w").write("x")
print("RANDOM", numpy.random.randint(1 << 30))
"""
LOOKS_FOR_TRACES = """
import builtins, os, signal, sys, numpy, torch
print("SEEN", hasattr(torch, "kit_marker"), hasattr(builtins, "kit_marker"),
      "kit_marker" in sys.modules, "KIT_MARKER" in os.environ, os.path.exists("marker.txt"))
print("RANDOM", numpy.random.randint(1 << 30))
try:
    os.kill(os.getppid(), signal.SIGKILL)
    print("KILLED THE SERVER")
except PermissionError:
    print("KILL REFUSED")
"""


def run(config: SandboxConfig, source: str) -> str:
    """Runs one submission cell (and chapter 01's first check, which fails on it)."""
    result = run_in_sandbox([(1, source)], CHECKS, {0: 20.0}, config)
    try:
        assert result.protections["mode"].startswith("full"), result.protections
        return result.stdout_head.decode()
    finally:
        result.close()


def test_a_forked_child_sees_nothing_of_the_previous_one_and_cannot_harm_the_server():
    config = SandboxConfig()
    with ForkServer(config) as server:
        config.fork_server = server
        pid = server.process.pid
        first = run(config, LEAVES_TRACES)
        second = run(config, LOOKS_FOR_TRACES)
        assert "SEEN False False False False False" in second, second
        assert "KILL REFUSED" in second, second
        randoms = [re.search(r"RANDOM (\d+)", out).group(1) for out in (first, second)]
        assert randoms[0] != randoms[1], "every child must get fresh random state"
        assert server.process.pid == pid and server.process.poll() is None
        assert "RANDOM" in run(config, LEAVES_TRACES)  # and it still serves


def _writable_memory(pid: int) -> bytes:
    """The server's private writable memory (heap and anonymous mappings), read as root."""
    chunks = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if fields[1].startswith("rw") and (len(fields) < 6 or fields[5] == "[heap]"):
                start, end = (int(x, 16) for x in fields[0].split("-"))
                try:
                    mem.seek(start)
                    chunks.append(mem.read(end - start))
                except OSError:
                    continue
    return b"".join(chunks)


def test_the_server_never_holds_a_job():
    marker = f"KIT-SECRET-{uuid.uuid4().hex}"
    config = SandboxConfig()
    with ForkServer(config) as server:
        config.fork_server = server
        assert marker in run(config, f"print({marker!r})")
        memory = _writable_memory(server.process.pid)
        assert len(memory) > 2**20, "the scan must have read the server's heap"
        assert marker.encode() in _writable_memory(os.getpid()), "the scan finds what is there"
        assert marker.encode() not in memory
        assert marker.encode("utf-16-le") not in memory and marker.encode("utf-32-le") not in memory


def test_a_dead_server_is_restarted_and_one_that_cannot_start_gives_way_to_fresh_children(
        monkeypatch):
    config = SandboxConfig()
    with ForkServer(config) as server:
        config.fork_server = server
        first_pid = server.process.pid
        server.process.kill()  # killed from outside, between two gradings
        server.process.wait()
        assert "RANDOM" in run(config, LEAVES_TRACES)
        assert server.process.pid != first_pid and server.process.poll() is None
        server.process.kill()
        server.process.wait()

        def cannot_start(self):
            raise RuntimeError("the fork server did not start: test")

        monkeypatch.setattr(ForkServer, "start", cannot_start)
        assert "RANDOM" in run(config, LEAVES_TRACES)  # graded by a fresh child instead
        assert server.process is None


def test_judge_and_child_agree_on_the_forked_protocol_descriptor():
    from autograder import child, sandbox

    assert child.FORKED_PROTO_FD == sandbox.FORKED_PROTO_FD
