"""Entry point for PrairieLearn's external grading: the same judge and sandbox as Gradescope's.

    python -m autograder.prairielearn [--base /grade]

PrairieLearn lays a grading job out under ``/grade`` (``--base``): the question's ``tests/``
folder in ``tests/`` (here: the grader zip unpacked, i.e. the engine and the chapter package,
built by ``make`` into ``dist/prairielearn/<chapter>/tests/``), the files the student submitted
in ``student/``, the question's data in ``data/data.json``, and it reads the grade from
``results/results.json``, which the job must create. That file is in PrairieLearn's format:
``gradable``, ``score`` in [0, 1], ``message``, ``output`` and ``tests`` (``name``, ``points``,
``max_points``, ``output``, ``message``). ``gradable`` is false only when nothing was
submitted (then no attempt is used up); every other submission, however broken, is graded as
on Gradescope. A results.json is written whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from autograder.gradescope import _write_results, grade_one
from autograder.sandbox import adopt_orphans

MAX_MESSAGE = 8000


def from_gradescope(results: dict) -> dict:
    """PrairieLearn's results.json for the kit's (Gradescope-format) results of one grading."""
    maximum = float(results.get("extra_data", {}).get("max_score") or 0.0)
    score = float(results.get("score") or 0.0)
    tests = [
        {
            "name": test["name"],
            "points": float(test["score"]),
            "max_points": float(test["max_score"]),
            "message": "passed" if test["status"] == "passed" else "failed",
            "output": test["output"],
        }
        for test in results.get("tests", [])
    ]
    return {
        "gradable": True,
        "score": min(1.0, max(0.0, score / maximum)) if maximum > 0 else 0.0,
        "message": str(results.get("output", ""))[:MAX_MESSAGE],
        "output": "",  # what the child printed stays with the instructor, as on Gradescope
        "tests": tests,
    }


def not_gradable(reason: str) -> dict:
    return {"gradable": False, "score": 0.0, "format_errors": [reason], "tests": []}


def grade_job(base: Path) -> dict:
    """Grades ``base``'s job and writes ``base/results/results.json``; returns it."""
    results_path = base / "results" / "results.json"
    results_path.parent.mkdir(parents=True, exist_ok=True)
    student = base / "student"
    try:
        submitted = [path for path in student.iterdir() if not path.name.startswith(".")]
    except OSError:
        submitted = []
    if not submitted:
        results = not_gradable("No file was submitted: upload your notebook, then submit.")
        _write_results(results_path, results)
        return results
    _write_results(
        results_path,
        {
            "gradable": True,
            "score": 0.0,
            "message": "Grading did not finish (the grader was stopped before the end). "
            "Please tell your instructor.",
            "tests": [],
        },
    )
    # The judge's own results (Gradescope's format) go beside PrairieLearn's, in the folder it
    # locks to root like Gradescope's results folder.
    kit_results = results_path.with_name("kit-results.json")
    try:
        results = from_gradescope(grade_one(base / "tests", student, kit_results, base))
    except Exception:  # noqa: BLE001 - PrairieLearn must still get a valid results.json
        traceback.print_exc()
        results = {
            "gradable": True,
            "score": 0.0,
            "message": "The grader itself failed on this submission; please tell your instructor.",
            "tests": [],
        }
    _write_results(results_path, results)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base",
        type=Path,
        default=Path(os.environ.get("KIT_GRADE_BASE") or "/grade"),
        help="PrairieLearn's /grade folder",
    )
    args = parser.parse_args(argv)
    adopt_orphans()  # this process only grades: whatever outlives the child is re-parented here
    results = grade_job(args.base)
    print(json.dumps({key: results[key] for key in ("gradable", "score")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
