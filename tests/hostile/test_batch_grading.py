"""Batch grading (``make grade-all``: long-lived workers whose sandboxed children are forked
from a fork server) gives every hostile submission exactly the items that one-at-a-time
grading, through Gradescope's entry point, gives it (issue 19)."""
from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

from tests.hostile.cases import CASES, reference_plus
from tests.hostile.harness import CHAPTER, RunContext, reference_source
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


def test_a_batch_submission_reads_no_classmate(suite, tmp_path):
    """Issue 25: graded in a batch, a submission learns the class folder from other processes
    (or finds it in /tmp) and quotes a classmate's notebook from a graded method. The class
    folder is readable, and writable, by every user here (worse than umask 022): only the
    sandbox's confinement keeps the classmate out of the results."""
    marker = f"CLASSMATE-{secrets.token_hex(8)}"
    folder = suite.grader.base / f"class-{secrets.token_hex(4)}"  # under a 0755 folder in /tmp
    for name in ("classmate-a", "classmate-b", "attacker"):
        (folder / name).mkdir(parents=True)
    for name in ("classmate-a", "classmate-b"):
        (folder / name / "submission.py").write_text(
            reference_source() + f"\n# {marker}: my own words\n")
    substitutions = {"CLASSMATE_MARKER": marker, "CLASS_DIR": str(folder)}
    reference_plus("case28_classmates.py")(
        RunContext(tmp_path, folder / "attacker", substitutions))
    assert marker in (folder / "attacker" / "submission.py").read_text()  # as a pattern only
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, 0o777 if path.is_dir() else 0o666)
    grader_zip = Path(shutil.make_archive(str(tmp_path / "grader"), "zip",
                                          suite.grader.pristine))
    before = sorted(str(path) for path in folder.rglob("*"))
    batch = grade_all.grade_batch(CHAPTER, grade_all.discover(folder), tmp_path / "out",
                                  jobs=2, progress=False, grader_zip=grader_zip)
    attacker = batch["attacker"]
    text = json.dumps(attacker)
    assert "a classmate wrote" not in text and marker.split("-")[1] not in text, text
    assert attacker["score"] == batch["classmate-a"]["score"] > 0, attacker["output"]
    assert sorted(str(path) for path in folder.rglob("*")) == before, "a file was planted"
    protections = attacker["extra_data"]["protections"]
    assert str(protections.get("files", "")).startswith("active"), protections
