"""Builds a chapter's grading package (see ``autograder/chapter.py``) from the trusted sources.

Runs every hidden check of ``assignments/<chapter>/checks.py`` against the reference module
``solutions/ch<NN>_<name>.py`` with the same ``run_check`` the sandboxed child uses, and saves
the outputs as the expected data. Fails if the reference does not produce every output as a
finite tensor: that is a bug in the check or the reference, never something to ship.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np

from autograder.checks import array_file_name, load_checks_namespace, run_check

REPO = Path(__file__).resolve().parent.parent
DIST = REPO / "dist"  # what the build writes: student bundles, grader zips, solutions


class BuildError(Exception):
    pass


def load_chapter_module(chapter: str, file_name: str) -> ModuleType:
    """``assignments/<chapter>/<file_name>`` as a module, loaded by path: the folder name
    starts with a digit, so it is not an importable package name."""
    path = REPO / "assignments" / chapter / file_name
    spec = importlib.util.spec_from_file_location(f"{path.stem}_{chapter}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def solution_module_name(chapter: str) -> str:
    """``01_mlp_backprop`` -> ``solutions.ch01_mlp_backprop``."""
    return f"solutions.ch{chapter}"


def strip_comments(source: str) -> str:
    """The module's code without comments (what the sandboxed child receives)."""
    return ast.unparse(ast.parse(source)) + "\n"


def build_package(chapter: str, out: Path) -> dict:
    """Writes ``out/chapter.json``, ``out/checks_source.py`` and ``out/expected/``."""
    checks_path = REPO / "assignments" / chapter / "checks.py"
    source = checks_path.read_text()
    definitions = load_checks_namespace(source, str(checks_path))
    reference = importlib.import_module(solution_module_name(chapter))
    expected_dir = out / "expected"
    expected_dir.mkdir(parents=True, exist_ok=True)
    checks_json = []
    earlier_items: set[str] = set()
    for index, check in enumerate(definitions.checks):
        unknown = [
            need
            for output in check.outputs
            for need in output.needs
            if ": " in need and need not in earlier_items
        ]
        if unknown:
            raise BuildError(
                f"{chapter}: {check.name} needs {unknown}: not items of earlier checks"
            )
        earlier_items |= {check.item_name(output) for output in check.outputs}

        def save(case_index, output_name, array, _index=index):
            np.save(
                expected_dir / array_file_name(_index, case_index, output_name),
                array,
                allow_pickle=False,
            )

        report = run_check(check, reference, save)
        for case_index, case in enumerate(report["cases"]):
            if case["error"] or case["modified"]:
                raise BuildError(
                    f"{chapter}: reference fails {check.name} case {case_index}: "
                    f"{case['error'] or case['modified']}"
                )
            for name, meta in case["outputs"].items():
                if meta.get("kind") != "tensor":
                    raise BuildError(
                        f"{chapter}: {check.name}.{name} case {case_index} is {meta}, not a tensor"
                    )
                array = np.load(expected_dir / array_file_name(index, case_index, name))
                if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
                    raise BuildError(
                        f"{chapter}: {check.name}.{name} case {case_index} is "
                        f"not finite in the reference"
                    )
        checks_json.append(
            {
                "index": index,
                "name": check.name,
                "question": check.question,
                "uses": list(check.uses),
                "replaces": list(check.replaces),
                **({"pattern_axes": list(check.pattern_axes)} if check.pattern_axes else {}),
                **(
                    {"error_hints": [list(pair) for pair in check.error_hints]}
                    if check.error_hints
                    else {}
                ),
                "timeout_s": check.timeout_s,
                "cases": [json.dumps(dict(case), sort_keys=True) for case in check.cases],
                "outputs": [
                    {
                        "name": o.name,
                        "points": o.points,
                        "rtol": o.rtol,
                        "atol": o.atol,
                        "hint": o.hint,
                        "needs": list(o.needs),
                        "public_gap": check.public_gap_of(o),
                        "case_hints": [[dict(scope), hint] for scope, hint in o.case_hints],
                    }
                    for o in check.outputs
                ],
            }
        )
    config = {
        "chapter": chapter,
        "notebook": f"{chapter}.ipynb",
        "forbidden": list(definitions.forbidden),
        "checks": checks_json,
    }
    (out / "chapter.json").write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
    (out / "checks_source.py").write_text(strip_comments(source))
    return config
