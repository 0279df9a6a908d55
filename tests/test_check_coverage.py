"""Generic over every chapter: each check output has a hint, every public method the master
documents is exercised by a check, and the two copies of the reference agree.

The two copies (issue 21): ``solutions/chNN_*.py`` (the grading oracle that writes the expected
data) and the master's solution blocks (what the released solution notebook runs) are kept as
independent oracles. This test extracts the master's code exactly as the grader would read a
submission (the built solution notebook: prompt blocks removed, experiment and setup cells
skipped), runs every check's exercise on both in-process with ``run_check``, and compares the
outputs with the kit's one comparison rule.
"""
from __future__ import annotations

import ast
import functools
import importlib
import sys
import types
from typing import Any
from unittest import mock

import numpy as np
import pytest

from autograder.checks import run_check
from autograder.child import _HarmlessGrader
from autograder.compare import compare_output
from autograder.submission import compile_cell, is_cell_filename, load_submission
from tests.conftest import CHAPTERS
from tools.build import DIST, chapter_checks
from tools.chapter_package import solution_module_name


def master_cells(chapter: str) -> list[tuple[int, str]]:
    from tools.build import ensure_built

    ensure_built(chapter)
    name = f"{chapter}-solution.ipynb"
    return load_submission(DIST / "solutions" / name, name).cells


def run_cells(cells: list[tuple[int, str]]) -> dict[str, Any]:
    """Runs the cells as the sandboxed child does (Otter's grader replaced by a harmless one)."""
    otter = types.ModuleType("otter")
    otter.Notebook = _HarmlessGrader  # type: ignore[attr-defined]
    namespace: dict[str, Any] = {"__name__": "__main__"}
    with mock.patch.dict(sys.modules, {"otter": otter}):
        for number, source in cells:
            for code in compile_cell(source, number):
                exec(code, namespace)  # noqa: S102 - the course's own solution
    return namespace


def documented_methods(cells: list[tuple[int, str]],
                       stubs: set[str] | None = None) -> dict[str, list[str]]:
    """Class name -> public methods defined in its body, in the graded cells; with ``stubs``,
    only the methods students write (those the student notebook leaves as stubs), so that
    given scaffolding such as a layer that calls the student's function is not required."""
    found: dict[str, list[str]] = {}
    for _, source in cells:
        for node in ast.parse(source).body:
            if isinstance(node, ast.ClassDef):
                found[node.name] = [item.name for item in node.body
                                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                                    and not item.name.startswith("_")
                                    and (stubs is None or f"{node.name}.{item.name}" in stubs)]
    return found


def stub_methods(chapter: str) -> set[str]:
    """``Class.method`` for every method the student notebook leaves raising
    NotImplementedError."""
    name = f"{chapter}.ipynb"
    cells = load_submission(DIST / "student" / chapter / name, name).cells
    stubs = set()
    for _, source in cells:
        for node in ast.parse(source).body:
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and \
                            "NotImplementedError" in ast.get_source_segment(source, item):
                        stubs.add(f"{node.name}.{item.name}")
    return stubs


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_output_has_a_hint(chapter):
    missing = [check.item_name(output) for check in chapter_checks(chapter).checks
               for output in check.outputs if not output.hint.strip()]
    assert not missing, f"outputs without a hint: {missing}"


def _called_by_the_grader() -> bool:
    """Whether the nearest caller outside torch is not the submission's own code."""
    frame = sys._getframe(2)
    while frame is not None and f"{'/'}torch{'/'}" in frame.f_code.co_filename:
        frame = frame.f_back
    return frame is not None and not is_cell_filename(frame.f_code.co_filename)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_documented_method_is_exercised_by_a_check(chapter):
    cells = master_cells(chapter)
    namespace = run_cells(cells)
    exercised: set[str] = set()

    def traced(qualified: str, method):
        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            if _called_by_the_grader():
                exercised.add(qualified)
            return method(*args, **kwargs)
        return wrapper

    documented = documented_methods(cells, stub_methods(chapter))
    for class_name, methods in documented.items():
        cls = namespace[class_name]
        for method in methods:
            setattr(cls, method, traced(f"{class_name}.{method}", cls.__dict__[method]))
    for check in chapter_checks(chapter).checks:
        run_check(check, namespace, lambda *args: None)
    expected = {f"{c}.{m}" for c, methods in documented.items() for m in methods}
    assert sorted(expected - exercised) == [], "documented methods no check calls"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_master_and_solutions_module_are_two_agreeing_oracles(chapter):
    module = importlib.import_module(solution_module_name(chapter))
    assert "independent oracle" in (module.__doc__ or ""), \
        f"{module.__name__}'s docstring must state the two-copies rule"
    namespace = run_cells(master_cells(chapter))
    disagreements = []
    for check in chapter_checks(chapter).checks:
        saved: dict[str, dict[tuple[int, str], np.ndarray]] = {"module": {}, "master": {}}
        reports = {}
        for source, implementation in (("module", module), ("master", namespace)):
            def save(case_index, name, array, _into=saved[source]):
                _into[(case_index, name)] = array
            reports[source] = run_check(check, implementation, save)
        for case_index, (ours, theirs) in enumerate(zip(reports["module"]["cases"],
                                                         reports["master"]["cases"])):
            assert ours["error"] is None and theirs["error"] is None, (check.name, ours, theirs)
            for output in check.outputs:
                key = (case_index, output.name)
                if ours["outputs"][output.name]["kind"] != "tensor":
                    disagreements.append(f"{check.item_name(output)} case {case_index + 1}: "
                                         f"the module gives {ours['outputs'][output.name]}")
                    continue
                verdict = compare_output(saved["module"][key], theirs["outputs"][output.name],
                                         saved["master"].get(key), output.rtol, output.atol)
                if not verdict.passed:
                    disagreements.append(f"{check.item_name(output)} case {case_index + 1}: "
                                         f"{verdict.message}")
    assert not disagreements, disagreements

