"""Shared fixtures: the built distributions, each chapter's grading package, grading helpers."""
from __future__ import annotations

import copy
import json
import os
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.chapter import ChapterPackage
from autograder.judge import grade
from tests.gradescope_schema import validate_results
from tools.build import DIST, build_chapter, chapters, prove_chapter

CHAPTERS = chapters()

# Under pytest-xdist (`make test` runs two workers) each worker grades as its own sandbox user,
# so that gradings in parallel never wait for each other's user lock.
if os.environ.get("PYTEST_XDIST_WORKER") and not os.environ.get("KIT_SANDBOX_USER"):
    os.environ["KIT_SANDBOX_USER"] = f"kitsandbox-x{os.environ['PYTEST_XDIST_WORKER'][2:]}"


def _ensure_built(chapter: str) -> None:
    needed = [DIST / "autograder" / f"{chapter}-autograder.zip",
              DIST / "solutions" / f"{chapter}-solution.ipynb",
              DIST / "student" / chapter / f"{chapter}.ipynb"]
    if not all(path.exists() for path in needed):
        build_chapter(chapter)


@pytest.fixture(scope="session")
def package_for(tmp_path_factory):
    """chapter -> ChapterPackage unpacked from the built grader zip (built if missing)."""
    cache: dict[str, ChapterPackage] = {}

    def get(chapter: str) -> ChapterPackage:
        if chapter not in cache:
            _ensure_built(chapter)
            source = tmp_path_factory.mktemp(f"grader-{chapter}")
            with zipfile.ZipFile(DIST / "autograder" / f"{chapter}-autograder.zip") as archive:
                archive.extractall(source)
            cache[chapter] = ChapterPackage.load(source / "chapter")
        return cache[chapter]

    return get


@pytest.fixture(scope="session")
def grade_file(package_for):
    """grade_file(chapter, path) -> validated results.json dict, graded in the real sandbox."""

    def run(chapter: str, path: Path) -> dict:
        results = grade(package_for(chapter), path)
        validate_results(results)
        json.dumps(results)  # serialisable as Gradescope needs
        return results

    return run


def solution_notebook(chapter: str) -> nbformat.NotebookNode:
    _ensure_built(chapter)
    return nbformat.read(DIST / "solutions" / f"{chapter}-solution.ipynb", as_version=4)


def notebook_with_extra_cell(chapter: str, code: str, path: Path) -> Path:
    """The solution notebook with ``code`` appended as a last code cell, written to ``path``."""
    notebook = copy.deepcopy(solution_notebook(chapter))
    notebook.cells.append(nbformat.v4.new_code_cell(code))
    nbformat.write(notebook, path)
    return path


def assert_check_agrees(check, reference, other) -> None:  # type: ignore[no-untyped-def]
    """Runs one hidden check on two implementations (a module or a dict of names) and
    asserts that every recorded output agrees within that output's tolerance: a correct
    implementation in another style keeps full marks on every case."""
    import torch

    from autograder.checks import run_check

    found: dict = {}
    for name, implementation in (("reference", reference), ("other", other)):
        found[name] = {}
        report = run_check(check, implementation,
                           lambda c, n, a, into=found[name]: into.__setitem__((c, n), a.copy()))
        assert not any(case["error"] for case in report["cases"]), (name, report)
    assert found["reference"].keys() == found["other"].keys()
    tolerance = {output.name: (output.rtol, output.atol) for output in check.outputs}
    for (case, name), value in found["reference"].items():
        rtol, atol = tolerance[name]
        torch.testing.assert_close(torch.from_numpy(found["other"][(case, name)]),
                                   torch.from_numpy(value), rtol=rtol, atol=atol,
                                   msg=f"{name} case {case}")


def failed_items(results: dict) -> set[str]:
    """Names ("Check: output") of the items that lost points."""
    return {test["name"].split(" ", 1)[1] for test in results["tests"]
            if test["status"] != "passed"}


@pytest.fixture(scope="session")
def proof_for():
    """chapter -> the build's proof row (solution score, stub score, leaks)."""
    cache: dict[str, dict] = {}

    def get(chapter: str) -> dict:
        if chapter not in cache:
            _ensure_built(chapter)
            cache[chapter] = prove_chapter(chapter)
        return cache[chapter]

    return get
