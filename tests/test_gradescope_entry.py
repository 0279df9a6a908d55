"""The Gradescope entry point's lock-down never touches shared folders."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from autograder.gradescope import lock_down


def test_lock_down_locks_the_grader_folders(tmp_path):
    source, results = tmp_path / "source", tmp_path / "results"
    source.mkdir()
    results.mkdir()
    done = lock_down(source, results)
    assert {str(source), str(results)} <= set(done)
    assert stat.S_IMODE(os.stat(source).st_mode) == 0o700


def test_lock_down_leaves_a_sticky_results_folder_alone(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    source = tmp_path / "source"
    source.mkdir()
    done = lock_down(source, shared)
    assert str(shared) not in done
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o1777
    assert stat.S_IMODE(os.stat("/tmp").st_mode) & stat.S_ISVTX, "never lock /tmp"
    assert Path("/tmp").exists()


def test_base_folder_comes_from_the_environment(tmp_path, monkeypatch):
    """``KIT_AUTOGRADER_BASE`` moves Gradescope's whole layout (here an empty source folder, so
    the grader fails, and still writes results.json where the layout says)."""
    import json

    from autograder.gradescope import main

    (tmp_path / "source").mkdir()
    (tmp_path / "submission").mkdir()
    monkeypatch.setenv("KIT_AUTOGRADER_BASE", str(tmp_path))
    assert main(["--quiet"]) == 0
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert results["score"] == 0 and "grader itself failed" in results["output"]
