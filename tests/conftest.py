"""Shared fixtures: the built distributions, each chapter's grading package, grading helpers."""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.chapter import ChapterPackage
from autograder.judge import grade
from tests.gradescope_schema import validate_results
from tools.build import DIST, chapters, ensure_built, prove_chapter
from tools.zoo import mutant_notebook

CHAPTERS = chapters()

# Under pytest-xdist (`make test` runs two workers) each worker grades as its own sandbox user,
# so that gradings in parallel never wait for each other's user lock.
if os.environ.get("PYTEST_XDIST_WORKER") and not os.environ.get("KIT_SANDBOX_USER"):
    os.environ["KIT_SANDBOX_USER"] = f"kitsandbox-x{os.environ['PYTEST_XDIST_WORKER'][2:]}"


@pytest.fixture(scope="session")
def package_for(tmp_path_factory):
    """chapter -> ChapterPackage unpacked from the built grader zip (built if missing)."""
    cache: dict[str, ChapterPackage] = {}

    def get(chapter: str) -> ChapterPackage:
        if chapter not in cache:
            ensure_built(chapter)
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
    ensure_built(chapter)
    return nbformat.read(DIST / "solutions" / f"{chapter}-solution.ipynb", as_version=4)


def notebook_with_extra_cell(chapter: str, code: str, path: Path) -> Path:
    """The solution notebook with ``code`` appended as a last code cell, written to ``path``."""
    nbformat.write(mutant_notebook(solution_notebook(chapter), code), path)
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
        report = run_check(check, implementation, _saver(found[name]))
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
            ensure_built(chapter)
            cache[chapter] = prove_chapter(chapter)
        return cache[chapter]

    return get


def _saver(into: dict):
    """A check's ``save(case, output, array)`` that keeps the arrays in ``into``."""
    def save(case: int, output: str, array) -> None:
        into[(case, output)] = array.copy()
    return save


def assert_checks_accept(checks_path: Path, reference: object, namespace: dict) -> None:
    """Every hidden check of ``checks_path`` run on ``namespace`` (a correct implementation
    written in another style) gives, on every case, no error, no modified input, and outputs
    of the reference's shape and dtype within each output's tolerance."""
    import numpy as np

    from autograder.checks import load_checks_namespace, run_check

    for check in load_checks_namespace(checks_path.read_text(), str(checks_path)).checks:
        expected: dict = {}
        actual: dict = {}
        report_ref = run_check(check, reference, _saver(expected))
        report = run_check(check, namespace, _saver(actual))
        assert all(case["error"] is None for case in report_ref["cases"]), check.name
        for case in report["cases"]:
            assert case["error"] is None and not case["modified"], (check.name, case)
        tolerances = {o.name: (o.rtol, o.atol) for o in check.outputs}
        assert expected.keys() == actual.keys(), check.name
        for key, value in expected.items():
            rtol, atol = tolerances[key[1]]
            got = actual[key]
            assert got.shape == value.shape and got.dtype == value.dtype, (check.name, key)
            assert np.all(np.abs(got - value) <= atol + rtol * np.abs(value)), (check.name, key)
