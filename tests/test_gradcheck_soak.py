"""Every public gradient check passes the reference on 1,000 seeds, for every chapter.

The public checks are seeded, so on the shipped seeds they are deterministic; this test proves
that the error measure (not luck with one seed) is what makes them pass: each public-test cell
that uses ``student.gradcheck`` runs in-process against the solution notebook's definitions
with every ``torch.Generator`` seed and the global seed shifted, 1,000 times.
"""
from __future__ import annotations

import os
import time
import types

import pytest
import torch

from autograder.submission import load_submission
from tests.conftest import CHAPTERS
from tools.build import DIST, ensure_built
from tools.public_tests import public_cells

SEEDS = int(os.environ.get("KIT_SOAK_SEEDS", "1000"))  # fewer for a quick local look


def solution_namespace(chapter: str) -> dict:
    """The solution notebook's graded definitions, executed here (experiments skipped)."""
    ensure_built(chapter)
    submission = load_submission(DIST / "solutions" / f"{chapter}-solution.ipynb",
                                 f"{chapter}.ipynb")
    namespace: dict = {"__name__": "__main__",
                       "grader": types.SimpleNamespace(check=lambda *a, **k: None)}
    for _, source in submission.cells:
        if "otter" in source or "grader." in source:
            continue
        exec(compile(source, f"<{chapter} solution>", "exec"), namespace)  # noqa: S102
    return namespace


def gradient_cells(chapter: str) -> list[tuple[str, str]]:
    found = []
    for test_file in sorted((DIST / "student" / chapter / "tests").glob("q*.py")):
        found += [(test_file.stem, cell) for cell in public_cells(test_file)
                  if "student.gradcheck" in cell]
    return found


class ShiftedGenerator(torch.Generator):
    """A torch.Generator whose seeds are all moved by ``offset`` (set per soak round)."""

    offset = 0

    def manual_seed(self, seed):  # type: ignore[override]
        return super().manual_seed(seed + ShiftedGenerator.offset)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_public_gradient_checks_pass_the_reference_on_1000_seeds(chapter, monkeypatch):
    cells = gradient_cells(chapter)
    if not cells:
        pytest.skip(f"{chapter} has no public gradient check")
    namespace = solution_namespace(chapter)
    monkeypatch.setattr(torch, "Generator", ShiftedGenerator)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    report = []
    try:
        for question, cell in cells:
            code = compile(cell, f"<{chapter} {question}>", "exec")
            failures, started = [], time.monotonic()
            for seed in range(1, SEEDS + 1):
                ShiftedGenerator.offset = 1000 * seed
                torch.manual_seed(seed)  # global seed on purpose: a student's notebook state
                try:
                    exec(code, dict(namespace))  # noqa: S102
                except AssertionError as error:
                    failures.append((seed, str(error)[:200]))
            seconds = time.monotonic() - started
            report.append(f"{question}: {SEEDS} seeds, {len(failures)} failures, {seconds:.1f} s")
            assert not failures, f"{question} failed the reference on seeds {failures[:5]}"
    finally:
        torch.set_num_threads(threads)
        ShiftedGenerator.offset = 0
    print(f"{chapter}: " + "; ".join(report))
