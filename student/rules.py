"""The public checks' half of the grader's "from scratch" rule.

The grader reads the submitted notebook and scores 0 every item whose code uses API the chapter
forbids (``autograder/forbidden.py``, shipped in this bundle unchanged). Each public check runs
the same scan first, on the code the notebook's kernel has run, so that a forbidden call fails
the public check of its question with the message the grader would give, instead of passing
it and losing the hidden items.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from autograder.forbidden import ForbiddenScan, defined_names, forbidden_message
from autograder.submission import NOT_GRADED_MARKER, SubmissionError, load_submission


def _definitions(source: str) -> tuple[set[str], set[str]]:
    """(top-level names the code defines, names it reads); nothing when it does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set(), set()
    defined = {name for stmt in tree.body for name in defined_names(stmt)}
    read = {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }
    return defined, read


def live_cells(history: Sequence[str]) -> list[tuple[int, str]]:
    """The kernel's input history (IPython's ``In``) as (execution count, source), without the
    cells the grader skips (``# EXPERIMENT``, ``# SETUP (not graded)``) and without the runs a
    later run has replaced: an earlier cell whose names are all defined again by a later cell
    that does not build on them (``class Linear(Linear)`` builds on the earlier one; an edited
    and re-run cell does not)."""
    cells = [
        (count, source)
        for count, source in enumerate(history)
        if isinstance(source, str) and source.strip() and not NOT_GRADED_MARKER.match(source)
    ]
    parsed = [_definitions(source) for _, source in cells]
    kept = []
    for index, cell in enumerate(cells):
        defined = parsed[index][0]
        replaced = defined and any(
            defined <= later_defined and not defined & later_read
            for later_defined, later_read in parsed[index + 1 :]
        )
        if not replaced:
            kept.append(cell)
    return kept


def notebook_cells(env: dict[str, Any]) -> list[tuple[int, str]]:
    """The code behind the notebook's definitions: the kernel's history when the check runs in
    Jupyter, else the only notebook saved in the working folder, read as the grader reads it."""
    history = env.get("In")
    if isinstance(history, list):
        return live_cells(history)
    notebooks = sorted(Path.cwd().glob("*.ipynb"))
    if len(notebooks) != 1:
        return []
    try:
        return load_submission(notebooks[0], notebooks[0].name).cells
    except SubmissionError:
        return []


def assert_written_from_scratch(
    env: dict[str, Any],
    forbidden: Sequence[str],
    checks: Iterable[tuple[Sequence[str], Sequence[str]]],
) -> None:
    """Fails with the grader's message when the code behind one of ``checks`` (the question's
    hidden checks, each as (names it uses, names it replaces)) uses ``forbidden`` API."""
    scan = ForbiddenScan(notebook_cells(env), tuple(forbidden))
    for uses, replaces in checks:
        hits = scan.hits_for(tuple(uses), tuple(replaces))
        if hits:
            raise AssertionError(forbidden_message(hits, tuple(uses)))
