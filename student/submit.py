"""The notebook's last cell: a one-screen summary of the public checks, then the zip to upload.

Nothing is re-run: the checks run once more against the definitions already in the notebook's
memory (a few seconds), and the export packs the notebook file as last saved.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

WIDTH = 150


def first_failure(result: Any, width: int | None = WIDTH) -> str:
    """'ErrorType: message (at: failing line)' of the first failed case, on one line, cut to
    ``width`` characters (None: whole)."""
    for case in getattr(result, "test_case_results", []):
        if case.passed:
            continue
        lines = [line.strip() for line in (case.message or "").splitlines() if line.strip()]
        error = next(
            (
                line
                for line in reversed(lines)
                if re.match(r"^\w+(Error|Exception)\b", line) or line.startswith("AssertionError")
            ),
            lines[-1] if lines else "failed",
        )
        at = lines[2] if len(lines) > 2 and lines[1].startswith("Error at line") else ""
        if error.startswith("AssertionError: "):  # the check's own message says it all
            text = error.removeprefix("AssertionError: ")
        else:
            text = error + (f"  (at: {at})" if at and at not in error else "")
        return text if width is None or len(text) <= width else text[: width - 3] + "..."
    return "failed"


def question_names(tests_dir: str | Path = "tests") -> list[str]:
    """The questions with public checks (tests/q1.py, tests/q2.py, ...), in natural order."""
    names = [path.stem for path in Path(tests_dir).glob("*.py") if path.stem != "__init__"]
    return sorted(
        names, key=lambda n: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", n)]
    )


def summarize_public_checks(grader: Any, env: dict[str, Any]) -> bool:
    """Runs every public check against ``env`` and prints one line per question."""
    names = question_names(getattr(grader, "_tests_dir", "tests"))
    passed = 0
    print("Public checks (necessary, not sufficient: the grader tests many more inputs):")
    for name in names:
        try:
            result = grader.check(name, env)
            ok = bool(result.passed_all)
            detail = "" if ok else first_failure(result)
        except Exception as error:  # noqa: BLE001 - a broken check must not stop the export
            ok, detail = False, f"{type(error).__name__}: {error}"[:WIDTH]
        passed += ok
        print(f"  {name:<5} {'passed' if ok else 'FAILED'}  {detail}".rstrip())
    print(f"{passed} of {len(names)} passed.")
    return passed == len(names)


def export_submission(grader: Any, env: dict[str, Any]) -> None:
    """The public-check summary, then Otter's export (no re-run, no PDF) with its link."""
    summarize_public_checks(grader, env)
    if "google.colab" in sys.modules:  # Otter cannot export there
        print("In Colab: File > Download > Download .ipynb, and upload that file to Gradescope.")
        return
    grader.export(pdf=False, run_tests=False)
    print(
        "Upload the zip (or the .ipynb itself) to Gradescope. Save the notebook before "
        "exporting: the zip holds the notebook as last saved."
    )
