"""Batch grading (``make grade-all``: long-lived workers whose sandboxed children are forked
from a fork server) gives every hostile submission exactly the items that one-at-a-time
grading, through Gradescope's entry point, gives it (issue 19)."""
from __future__ import annotations

import shutil
from pathlib import Path

from tests.hostile.cases import CASES
from tests.hostile.harness import CHAPTER, RunContext
from tools import grade_all


def items(results: dict) -> dict[str, tuple[str, float, str]]:
    return {test["name"]: (test["status"], test["score"], test["output"])
            for test in results.get("tests", [])}


def test_batch_grading_gives_every_hostile_case_its_single_grading_items(suite, tmp_path):
    folder = tmp_path / "class"
    for case in CASES:
        run_dir = tmp_path / "runs" / case.id
        (folder / case.id).mkdir(parents=True)
        run_dir.mkdir(parents=True)
        case.build(RunContext(run_dir, folder / case.id, {
            "RUN_TAG": f"{suite.grader.base.name}-batch-{case.id}",
            "MARKER": str(run_dir / "marker-unpickled"),
            **suite.grader.listeners.substitutions}))
    grader_zip = Path(shutil.make_archive(str(tmp_path / "grader"), "zip",
                                          suite.grader.pristine))
    batch = grade_all.grade_batch(CHAPTER, grade_all.discover(folder), tmp_path / "out",
                                  jobs=2, progress=False, grader_zip=grader_zip)
    differing = []
    for case in CASES:
        alone = suite.runs(case)[0].results
        if items(batch[case.id]) != items(alone) or batch[case.id]["score"] != alone["score"]:
            differing.append(case.id)
    assert not differing, f"batch and one-at-a-time grading differ on {differing}"
    unpickled = list((tmp_path / "runs").glob("*/marker-unpickled"))
    assert not unpickled, f"the batch unpickled a crafted pickle: {unpickled}"
