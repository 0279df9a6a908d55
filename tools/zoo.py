"""The bug zoo: realistic wrong implementations that the hidden checks must catch.

Each chapter's ``assignments/<chapter>/bug_zoo.py`` defines ``BUGS``, a list of :class:`Bug`.
A bug is a code cell appended to the solution notebook; it usually redefines one class as a
subclass of the correct one with one method broken (``class Linear(Linear): ...``), so the zoo
holds only the mistake. The suite grades every mutant and requires that exactly the items in
``fails`` lose their points, and that every "Pattern: it fails whenever <parameter> ..." line of
the messages names the parameter the bug depends on (``pattern``), when the bug declares one.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import nbformat

from tools.chapter_package import load_chapter_module

# ``Bug.pattern`` of a bug nobody has annotated yet: its printed patterns are reported, not
# judged. An annotated bug says ``pattern="heads"`` (every printed pattern names ``heads``, and
# at least one item prints one) or ``pattern=None`` (no item prints a pattern).
NOT_ANNOTATED = "<not annotated>"
PATTERN_LINE = re.compile(r"^Pattern: it fails whenever (\S+) ", re.M)


@dataclass(frozen=True)
class Bug:
    """A named mistake, the code that makes it, the items ("Check: output") it must fail, and
    the case parameter its failures depend on (``pattern``, see :data:`NOT_ANNOTATED`)."""

    name: str
    fails: frozenset[str]
    code: str
    pattern: str | None

    def __init__(
        self,
        name: str,
        fails: set[str] | frozenset[str],
        code: str,
        pattern: str | None = NOT_ANNOTATED,
    ):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "fails", frozenset(fails))
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "pattern", pattern)

    @property
    def annotated(self) -> bool:
        return self.pattern != NOT_ANNOTATED


def load_bugs(chapter: str) -> list[Bug]:
    """The ``BUGS`` of ``assignments/<chapter>/bug_zoo.py`` (loaded by path: the folder name
    starts with a digit, so it is not an importable package name)."""
    return list(load_chapter_module(chapter, "bug_zoo.py").BUGS)


def mutant_notebook(solution: nbformat.NotebookNode, code: str) -> nbformat.NotebookNode:
    """The solution notebook with ``code`` appended as its last code cell."""
    notebook = copy.deepcopy(solution)
    notebook.cells.append(nbformat.v4.new_code_cell(code))
    return notebook


def printed_patterns(results: dict) -> dict[str, str]:
    """Failed item ("Check: output") -> the parameter its "Pattern:" line names."""
    found = {}
    for test in results["tests"]:
        match = PATTERN_LINE.search(test.get("output", ""))
        if test["status"] != "passed" and match:
            found[test["name"].split(" ", 1)[1]] = match.group(1)
    return found


def pattern_mismatches(bug: Bug, patterns: dict[str, str]) -> list[str]:
    """What is wrong with the patterns an annotated bug's grading printed ([] when right)."""
    if not bug.annotated:
        return []
    if bug.pattern is None:
        return [
            f"{item}: prints a pattern on {name}, none expected"
            for item, name in sorted(patterns.items())
        ]
    wrong = [
        f"{item}: the pattern names {name}, not {bug.pattern}"
        for item, name in sorted(patterns.items())
        if name != bug.pattern
    ]
    if not patterns:
        wrong.append(f"no item prints a pattern naming {bug.pattern}")
    return wrong
