"""`make grade` (tools.grade_local) on the solution, the stub and a stub with a syntax error."""
from __future__ import annotations

import json

import nbformat
import pytest

from tools.build import DIST
from tools.grade_local import main

CHAPTER = "01_mlp_backprop"


def stub_with_syntax_error(path):
    notebook = nbformat.read(DIST / "student" / CHAPTER / f"{CHAPTER}.ipynb", as_version=4)
    cell = next(c for c in notebook.cells if "class Linear" in c.source)
    cell.source = cell.source.replace('raise NotImplementedError("Linear.forward")',
                                      "return x @ self.weight +")
    nbformat.write(notebook, path)
    return path


@pytest.mark.parametrize("which,score,message", [
    ("solution", 17, "q1: 5 / 5"),
    ("stub", 0, "not implemented: Linear.init_params still raises NotImplementedError"),
    ("syntax error", 0, "could not be parsed and was skipped"),
])
def test_make_grade(which, score, message, tmp_path, capsys):
    submission = {"solution": DIST / "solutions" / f"{CHAPTER}-solution.ipynb",
                  "stub": DIST / "student" / CHAPTER / f"{CHAPTER}.ipynb"}.get(which) \
        or stub_with_syntax_error(tmp_path / f"{CHAPTER}.ipynb")
    results_path = tmp_path / "out" / "results.json"
    assert main(["--chapter", CHAPTER, "--submission", str(submission),
                 "--results", str(results_path)]) == 0
    results = json.loads(results_path.read_text())
    printed = capsys.readouterr().out
    assert results["score"] == score
    assert message in printed + json.dumps(results)
    if which == "syntax error":
        assert "does not parse: SyntaxError" in results["output"]


def test_make_grade_explains_a_missing_chapter(tmp_path, capsys):
    assert main(["--chapter", "99_nothing", "--submission", str(tmp_path)]) == 2
    assert "no grader zip" in capsys.readouterr().err
