"""Every chapter's notebooks run top to bottom in a real Jupyter kernel (nbclient).

The solution notebook runs with the student bundle beside it, as a student would run it, and
its ``RESULT name=value`` lines must meet ``assignments/<chapter>/notebook_targets.json``. The
untouched student notebook runs too; the only errors allowed are the stubs'
NotImplementedError.
"""
from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.conftest import CHAPTERS
from tools.build import DIST, REPO

RESULT_LINE = re.compile(r"^RESULT (\w+)=([-+0-9.eE]+)\s*$", re.M)
CELL_TIMEOUT_S = 600


def execute(notebook_path: Path, allow_errors: bool) -> tuple[nbformat.NotebookNode, float]:
    notebook = nbformat.read(notebook_path, as_version=4)
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            allow_errors=allow_errors,
                            resources={"metadata": {"path": str(notebook_path.parent)}})
    started = time.monotonic()
    client.execute()
    return notebook, time.monotonic() - started


def outputs_of(notebook: nbformat.NotebookNode) -> tuple[str, list[dict]]:
    text, errors = [], []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                text.append(output.get("text", ""))
            elif output.get("output_type") == "error":
                errors.append(output)
    return "".join(text), errors


@pytest.fixture(scope="module")
def bundle_copy(tmp_path_factory):
    def make(chapter: str) -> Path:
        folder = tmp_path_factory.mktemp(f"run-{chapter}") / chapter
        shutil.copytree(DIST / "student" / chapter, folder)
        return folder

    return make


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_solution_notebook_runs_and_meets_its_targets(chapter, bundle_copy):
    folder = bundle_copy(chapter)
    solution = folder / f"{chapter}-solution.ipynb"
    shutil.copy(DIST / "solutions" / solution.name, solution)
    notebook, seconds = execute(solution, allow_errors=False)
    text, _ = outputs_of(notebook)
    results = {name: float(value) for name, value in RESULT_LINE.findall(text)}
    targets = json.loads((REPO / "assignments" / chapter / "notebook_targets.json").read_text())
    assert targets, "a chapter must state at least one target"
    for name, bounds in targets.items():
        assert name in results, f"the solution notebook printed no 'RESULT {name}=...' line"
        assert results[name] >= bounds.get("min", float("-inf")), (name, results[name])
        assert results[name] <= bounds.get("max", float("inf")), (name, results[name])
    print(f"{chapter}: solution notebook ran in {seconds:.1f} s; results {results}")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_student_notebook_runs_with_only_not_implemented_errors(chapter, bundle_copy):
    folder = bundle_copy(chapter)
    notebook, _ = execute(folder / f"{chapter}.ipynb", allow_errors=True)
    _, errors = outputs_of(notebook)
    assert errors, "the untouched stubs should raise NotImplementedError somewhere"
    unexpected = [f"{e['ename']}: {e['evalue']}" for e in errors
                  if e["ename"] != "NotImplementedError"]
    assert not unexpected, unexpected


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_notebook_opened_outside_its_bundle_says_what_to_do(chapter, tmp_path):
    """The released solution notebook, opened on its own, stops at the setup cell with the fix
    rather than failing later inside Otter or on an import."""
    lonely = tmp_path / f"{chapter}-solution.ipynb"
    shutil.copy(DIST / "solutions" / lonely.name, lonely)
    with pytest.raises(CellExecutionError, match=f"unzip {chapter}.zip"):
        execute(lonely, allow_errors=False)
