"""The bug zoo: realistic wrong implementations that the hidden checks must catch.

Each chapter's ``assignments/<chapter>/bug_zoo.py`` defines ``BUGS``, a list of :class:`Bug`.
A bug is a code cell appended to the solution notebook; it usually redefines one class as a
subclass of the correct one with one method broken (``class Linear(Linear): ...``), so the zoo
holds only the mistake. The suite grades every mutant and requires that exactly the items in
``fails`` lose their points.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.chapter_package import load_chapter_module


@dataclass(frozen=True)
class Bug:
    """A named mistake, the code that makes it, and the items ("Check: output") it must fail."""

    name: str
    fails: frozenset[str]
    code: str

    def __init__(self, name: str, fails: set[str] | frozenset[str], code: str):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "fails", frozenset(fails))
        object.__setattr__(self, "code", code)


def load_bugs(chapter: str) -> list[Bug]:
    """The ``BUGS`` of ``assignments/<chapter>/bug_zoo.py`` (loaded by path: the folder name
    starts with a digit, so it is not an importable package name)."""
    return list(load_chapter_module(chapter, "bug_zoo.py").BUGS)
