"""PrairieLearn's external grading, imitated (issue 29): each chapter's question folder
(``dist/prairielearn/<chapter>``, built by ``make``) laid out as PrairieLearn lays a job out
(``/grade/tests`` from the question's ``tests/``, the upload in ``/grade/student``,
``/grade/data/data.json``), its entry point run as root with an empty environment, from a
foreign working folder, under Docker's default capabilities where ``setpriv`` exists. The
solution scores 1, the untouched stub 0, nothing submitted is "not gradable", and every
results.json is valid against PrairieLearn's format."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import CHAPTERS
from tests.test_gradescope_imitation import DOCKER_CAPABILITIES, SETPRIV
from tools.build import DIST, ensure_built
from tools.prairielearn import build_question

# PrairieLearn's results.json as its external-grader results element reads it.
RESULTS_SCHEMA = {
    "type": "object",
    "required": ["gradable"],
    "properties": {
        "gradable": {"type": "boolean"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "message": {"type": "string"},
        "output": {"type": "string"},
        "format_errors": {"type": ["string", "array"], "items": {"type": "string"}},
        "tests": {"type": "array", "items": {
            "type": "object",
            "required": ["name", "points", "max_points"],
            "properties": {"name": {"type": "string"}, "points": {"type": "number"},
                           "max_points": {"type": "number"}, "message": {"type": "string"},
                           "output": {"type": "string"}, "description": {"type": "string"}}}},
    },
    "if": {"properties": {"gradable": {"const": True}}},
    "then": {"required": ["score", "tests"]},
}
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="PrairieLearn runs its grading "
                                                          "container as root; so must its imitation")


def run_job(chapter: str, upload: Path | None) -> dict:
    """One grading job of ``chapter``'s question with ``upload`` (or nothing) submitted."""
    question = DIST / "prairielearn" / chapter
    if not (question / "tests" / "run_prairielearn").exists():
        ensure_built(chapter)
        build_question(chapter)
    grade = Path(tempfile.mkdtemp(prefix="kit-pl-grade-"))
    try:
        os.chmod(grade, 0o755)
        shutil.copytree(question / "tests", grade / "tests")
        (grade / "student").mkdir()
        if upload is not None:
            shutil.copy(upload, grade / "student" / f"{chapter}.ipynb")
        (grade / "data").mkdir()
        (grade / "data" / "data.json").write_text(json.dumps(
            {"params": {}, "correct_answers": {}, "submitted_answers": {}, "options": {}}))
        command = [str(grade / "tests" / "run_prairielearn")]
        if SETPRIV:
            command = [SETPRIV, f"--bounding-set={DOCKER_CAPABILITIES}", "--", *command]
        completed = subprocess.run(
            ["env", "-i", "HOME=/root", f"KIT_PYTHON={sys.executable}",
             f"KIT_GRADE_BASE={grade}", *command],
            cwd=tempfile.gettempdir(), capture_output=True, text=True, timeout=600)
        assert completed.returncode == 0, completed.stderr[-2000:]
        results = json.loads((grade / "results" / "results.json").read_text())
        jsonschema.validate(results, RESULTS_SCHEMA)
        return results
    finally:
        shutil.rmtree(grade, ignore_errors=True)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_prairielearn_gives_the_solution_1_and_the_stub_0(chapter):
    ensure_built(chapter)
    solution = run_job(chapter, DIST / "solutions" / f"{chapter}-solution.ipynb")
    assert solution["gradable"] and solution["score"] == 1.0, solution["message"]
    assert solution["tests"] and all(t["points"] == t["max_points"] for t in solution["tests"])
    stub = run_job(chapter, DIST / "student" / chapter / f"{chapter}.ipynb")
    assert stub["gradable"] and stub["score"] == 0.0, stub["message"]
    assert all("not implemented" in test["output"] for test in stub["tests"])


def test_nothing_submitted_is_not_gradable():
    results = run_job(CHAPTERS[0], None)
    assert results["gradable"] is False and "No file was submitted" in results["format_errors"][0]


def test_question_folder_names_the_external_grader():
    ensure_built(CHAPTERS[0])
    folder = build_question(CHAPTERS[0])
    info = json.loads((folder / "info.json").read_text())
    assert info["gradingMethod"] == "External"
    options = info["externalGradingOptions"]
    assert options["enabled"] is True and options["image"]
    assert options["entrypoint"] == "/grade/tests/run_prairielearn"
    assert 420 < options["timeout"] <= 600  # above the engine's own cap, within PrairieLearn's
    assert 'pl-file-upload file-names="' in (folder / "question.html").read_text()
    assert build_question(CHAPTERS[0]) and json.loads((folder / "info.json").read_text()) == info
    assert not (folder / "tests" / "setup.sh").exists()
