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
