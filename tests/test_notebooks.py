"""Every chapter's notebooks run top to bottom in a real Jupyter kernel (nbclient).

The solution notebook runs with the student bundle beside it, as a student would run it; every
public check (``grader.check``) in it must pass, and the figures it records must meet
``assignments/<chapter>/notebook_targets.json``. Figures are recorded with
``student.results.record(name=value)``, which prints nothing (students need not see them); the
older ``RESULT name=value`` printed lines are still read. The untouched student notebook runs
too: the only errors allowed are the stubs' NotImplementedError, and every public check must
fail with a short message.
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

from student.results import ENVIRONMENT_VARIABLE
from tests.conftest import CHAPTERS
from tools.build import DIST, REPO

RESULT_LINE = re.compile(r"^RESULT (\w+)=([-+0-9.eE]+)\s*$", re.M)
CELL_TIMEOUT_S = 600
MAX_FAILURE_LINES = 10  # what one failing public check may print


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


def check_outputs(notebook: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """(question, printed summary) of every ``grader.check("qN")`` cell."""
    found = []
    for cell in notebook.cells:
        match = re.search(r"grader\.check\(\s*[\"'](\w+)[\"']", cell.source)
        if cell.cell_type != "code" or not match:
            continue
        text = "".join(output.get("data", {}).get("text/plain", "") + output.get("text", "")
                       for output in cell.get("outputs", []))
        errors = [f"{o['ename']}: {o['evalue']}" for o in cell.get("outputs", [])
                  if o.get("output_type") == "error"]
        found.append((match.group(1), text + "".join(errors)))
    return found


def execution_seconds(cell: nbformat.NotebookNode) -> float:
    """Wall time of one executed cell, from the timestamps nbclient records."""
    from datetime import datetime
    timing = cell.metadata.get("execution", {})
    try:
        start, end = (datetime.fromisoformat(timing[key])
                      for key in ("iopub.execute_input", "shell.execute_reply"))
    except (KeyError, ValueError):
        return float("nan")
    return (end - start).total_seconds()


def recorded_results(text: str, results_file: Path) -> dict[str, float]:
    results = {name: float(value) for name, value in RESULT_LINE.findall(text)}
    if results_file.exists():
        for line in results_file.read_text().splitlines():
            results.update(json.loads(line))
    return results


@pytest.fixture(scope="module")
def bundle_copy(tmp_path_factory):
    def make(chapter: str) -> Path:
        folder = tmp_path_factory.mktemp(f"run-{chapter}") / chapter
        shutil.copytree(DIST / "student" / chapter, folder)
        return folder

    return make


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_solution_notebook_runs_passes_its_public_checks_and_meets_its_targets(
        chapter, bundle_copy, monkeypatch):
    folder = bundle_copy(chapter)
    solution = folder / f"{chapter}-solution.ipynb"
    shutil.copy(DIST / "solutions" / solution.name, solution)
    results_file = folder.parent / "results.jsonl"
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, str(results_file))  # the kernel inherits it
    notebook, seconds = execute(solution, allow_errors=False)
    text, _ = outputs_of(notebook)
    checks = check_outputs(notebook)
    assert checks, "the solution notebook has no grader.check cell"
    failed = {question: summary for question, summary in checks
              if "All test cases passed" not in summary}
    assert not failed, f"public checks fail on the reference solution: {failed}"
    results = recorded_results(text, results_file)
    targets = json.loads((REPO / "assignments" / chapter / "notebook_targets.json").read_text())
    assert targets, "a chapter must state at least one target"
    for name, bounds in targets.items():
        assert name in results, f"the solution notebook printed no 'RESULT {name}=...' line"
        assert results[name] >= bounds.get("min", float("-inf")), (name, results[name])
        assert results[name] <= bounds.get("max", float("inf")), (name, results[name])
    check_seconds = sum(execution_seconds(cell) for cell in notebook.cells
                        if cell.cell_type == "code" and "grader.check(" in cell.source)
    print(f"{chapter}: solution notebook ran in {seconds:.1f} s; its public checks (what the "
          f"export cell re-runs) {check_seconds:.1f} s; results {results}")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_student_notebook_runs_with_only_not_implemented_errors(chapter, bundle_copy):
    folder = bundle_copy(chapter)
    notebook, _ = execute(folder / f"{chapter}.ipynb", allow_errors=True)
    _, errors = outputs_of(notebook)
    assert errors, "the untouched stubs should raise NotImplementedError somewhere"
    unexpected = [f"{e['ename']}: {e['evalue']}" for e in errors
                  if e["ename"] != "NotImplementedError"]
    assert not unexpected, unexpected
    checks = check_outputs(notebook)
    assert checks, "the student notebook has no grader.check cell"
    for question, summary in checks:
        assert "All test cases passed" not in summary, f"{question} passes on the stubs"
        lines = summary.strip().splitlines()
        assert len(lines) <= MAX_FAILURE_LINES, \
            f"{question}'s failure prints {len(lines)} lines:\n{summary}"
        assert "Error" in summary, f"{question}'s failure names no error:\n{summary}"
    export = [cell for cell in notebook.cells if "export_submission(" in cell.source]
    assert export, "the student notebook has no export cell"
    printed = "".join(o.get("text", "") for o in export[0].outputs if o.get("name") == "stdout")
    assert len(printed.strip().splitlines()) <= 15, printed
    assert not [o for o in export[0].outputs if o.get("name") == "stderr"], "export warnings"
    print(f"{chapter}: stub public checks print "
          f"{[len(s.strip().splitlines()) for _, s in checks]} lines; export cell "
          f"{execution_seconds(export[0]):.1f} s, {len(printed.strip().splitlines())} lines")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_notebook_opened_outside_its_bundle_says_what_to_do(chapter, tmp_path):
    """The released solution notebook, opened on its own, stops at the setup cell with the fix
    rather than failing later inside Otter or on an import."""
    lonely = tmp_path / f"{chapter}-solution.ipynb"
    shutil.copy(DIST / "solutions" / lonely.name, lonely)
    with pytest.raises(CellExecutionError, match=f"unzip {chapter}.zip"):
        execute(lonely, allow_errors=False)
