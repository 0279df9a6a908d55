"""Public tests students can read: each question's Otter test file becomes one short check.

``otter assign`` writes each question's public test cells as OK-format doctests. A failing
doctest prints every line it tried, then a traceback, then a ``NameError`` for every later line
that used a name the failing line should have defined: 100-236 lines for one stub. This module
rewrites each ``tests/qN.py`` into Otter's exception-based format with a single test function
that runs the question's cells in order and stops at the first failure, so a failing check
prints about six lines: the failing line and its message (or the stub's
``NotImplementedError``). Each parameter of the function is a name the cells use, filled by
Otter from the notebook's globals, so the cells read exactly as written in the master.
"""

from __future__ import annotations

import ast
import builtins
import doctest
import textwrap
from pathlib import Path

_BUILTINS = set(dir(builtins))
CELL_MARKER = "# -- next public-test cell of the master --"


def cells_of(test_file: Path) -> tuple[dict, list[tuple[str, bool]]]:
    """The OK-format ``test`` dict and its cases as (source, hidden)."""
    namespace: dict = {}
    exec(compile(test_file.read_text(), str(test_file), "exec"), namespace)  # noqa: S102 - our build output
    spec = namespace["test"]
    cases = []
    for case in spec["suites"][0]["cases"]:
        examples = doctest.DocTestParser().get_examples(case["code"])
        cases.append(
            ("".join(example.source for example in examples), bool(case.get("hidden", False)))
        )
    return spec, cases


def names_used(source: str) -> list[str]:
    """Every non-builtin name the code reads, assigns or imports, in first-seen order."""
    found: dict[str, None] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name):
            found.setdefault(node.id, None)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                found.setdefault((alias.asname or alias.name).split(".")[0], None)
    return [name for name in found if name not in _BUILTINS and name != "env"]


def public_cells(test_file: Path) -> list[str]:
    """The master's public-test cells, back from a rewritten test file (for the kit's tests)."""
    tree = ast.parse(test_file.read_text())
    cells = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.endswith("_0"):
            segment = ast.get_source_segment(test_file.read_text(), node) or ""
            body = textwrap.dedent("\n".join(segment.splitlines()[1:]))
            # what precedes the first cell is the kit's own prologue (the forbidden-API scan)
            cells += [cell.strip("\n") for cell in body.split(CELL_MARKER)[1:] if cell.strip()]
    return cells


RULES_CALL = (
    "from student.rules import assert_written_from_scratch\n"
    "assert_written_from_scratch(env, FORBIDDEN_API, SCANNED_NAMES)"
)


def rules_check_source(
    forbidden: tuple[str, ...], checks: list[tuple[tuple[str, ...], tuple[str, ...]]]
) -> str:
    """The module-level data of a question's forbidden-API scan (``student/rules.py``, the
    grader's scan of the notebook, run first in the public check): the chapter's FORBIDDEN and
    the question's hidden checks as (uses, replaces); "" when the chapter forbids nothing."""
    if not forbidden or not checks:
        return ""
    return f"FORBIDDEN_API = {forbidden!r}\nSCANNED_NAMES = {tuple(checks)!r}\n"


def exception_test_file(
    name: str, points: float | None, cases: list[tuple[str, bool]], rules: str = ""
) -> str:
    """An Otter exception-based test file: the public cells as one function, hidden ones apart.
    With ``rules`` (see :func:`rules_check_source`) the public function starts with the
    forbidden-API scan (:data:`RULES_CALL`; Otter passes ``env``, the notebook's globals)."""
    public = "\n".join(
        f"{CELL_MARKER}\n" + source.rstrip("\n") for source, hidden in cases if not hidden
    )
    groups = [(public, False)] if public.strip() else []
    groups += [(source, True) for source, hidden in cases if hidden]
    lines = [
        "from otter.test_files import test_case",
        "",
        "OK_FORMAT = False",
        "",
        f"name = {name!r}",
        f"points = {points!r}",
        "",
        *([rules] if rules else []),
    ]
    share = None if points is None else points / max(len(groups), 1)
    for index, (source, hidden) in enumerate(groups):
        first = [RULES_CALL] if rules and not hidden else []
        parameters = ", ".join((["env"] if first else []) + names_used(source))
        lines += [
            f"@test_case(points={share!r}, hidden={hidden})",
            f"def test_{name}_{index}({parameters}):",
            textwrap.indent("\n".join([*first, source.rstrip("\n")]), "    "),
            "",
        ]
    return "\n".join(lines) + "\n"


def rewrite_public_tests(tests_dir: Path, rules: dict[str, str] | None = None) -> None:
    """Rewrites every OK-format ``tests/*.py`` in place (files already rewritten are left);
    ``rules`` maps a question to its :func:`rules_check_source`."""
    for test_file in sorted(tests_dir.glob("*.py")):
        if "OK_FORMAT = True" not in test_file.read_text():
            continue
        spec, cases = cells_of(test_file)
        question_rules = (rules or {}).get(spec["name"], "")
        source = exception_test_file(spec["name"], spec.get("points"), cases, question_rules)
        ast.parse(source)
        test_file.write_text(source)
