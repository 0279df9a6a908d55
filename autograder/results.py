"""Gradescope's results.json: building it, and a readable summary for the terminal.

Schema (Gradescope's autograder specification): top-level ``score``, ``execution_time``,
``output``, ``output_format``, ``visibility``, ``stdout_visibility``, ``extra_data`` and
``tests``; each test has ``name``, ``number``, ``score``, ``max_score``, ``status``,
``output``, ``output_format`` and ``visibility``. Everything student-visible is bounded in size.
What protections were active goes to ``extra_data`` and to the run's stdout, both of which
only instructors see (``stdout_visibility: hidden``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autograder.chapter import CheckSpec, OutputSpec

MAX_TEST_OUTPUT = 2000
MAX_OUTPUT = 8000


@dataclass
class ItemResult:
    check: CheckSpec
    output: OutputSpec
    passed: bool
    message: str


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 20] + "\n[... truncated]"


def build_results(
    package,
    items: list[ItemResult],
    notes: list[str],
    protections: dict,
    seconds: float,
    stdout: str = "",
) -> dict:
    """The results.json dictionary for one graded submission."""
    tests: list[dict[str, Any]] = []
    question_numbers: dict[str, int] = {}
    for item in items:
        question = item.check.question
        question_numbers[question] = question_numbers.get(question, 0) + 1
        points = float(item.output.points)
        tests.append(
            {
                "name": f"{question} {item.check.name}: {item.output.name}",
                "number": f"{question.lstrip('q')}.{question_numbers[question]}",
                "score": points if item.passed else 0.0,
                "max_score": points,
                "status": "passed" if item.passed else "failed",
                "output": _bounded(item.message, MAX_TEST_OUTPUT),
                "output_format": "text",
                "visibility": "visible",
            }
        )
    score = round(sum(test["score"] for test in tests), 6)
    maximum = round(sum(test["max_score"] for test in tests), 6)
    lines = [f"Score: {score:g} / {maximum:g}"]
    if notes:
        lines.append("\nNotes on running your code:")
        lines.extend(f"- {note}" for note in notes[:20])
        if len(notes) > 20:
            lines.append(f"- ... and {len(notes) - 20} more")
    if stdout.strip():
        lines.append("\nWhat your code printed while being graded (excerpt):")
        lines.append(stdout)
    return {
        "score": score,
        "execution_time": round(seconds, 3),
        "output": _bounded("\n".join(lines), MAX_OUTPUT),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {
            "chapter": package.chapter,
            "max_score": maximum,
            "protections": protections,
        },
        "tests": tests,
    }


def summary(results: dict) -> str:
    """A per-question, per-item summary for a terminal (questions in the order graded)."""
    lines = []
    question = None
    for test in results["tests"]:
        if test["name"].split()[0] != question:
            question = test["name"].split()[0]
            mine = [t for t in results["tests"] if t["name"].split()[0] == question]
            lines.append(
                f"{question}: {sum(t['score'] for t in mine):g} / "
                f"{sum(t['max_score'] for t in mine):g}"
            )
        mark = "PASS" if test["status"] == "passed" else "FAIL"
        lines.append(f"  [{mark}] {test['name']:<42} {test['score']:g}/{test['max_score']:g}")
        if test["status"] != "passed":
            first = test["output"].splitlines()[0] if test["output"] else ""
            lines.append(f"         {first[:160]}")
    total = results["extra_data"]["max_score"]
    lines.append(f"  Total: {results['score']:g} / {total:g}  ({results['execution_time']:.1f} s)")
    return "\n".join(lines)
