"""JSON schema of Gradescope's results.json (its autograder specification), for validation."""
from __future__ import annotations

import jsonschema

VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
OUTPUT_FORMAT = {"enum": ["text", "html", "simple_format", "md", "ansi"]}

TEST_SCHEMA = {
    "type": "object",
    "required": ["name", "score", "max_score", "status", "output"],
    "properties": {
        "name": {"type": "string"},
        "number": {"type": "string"},
        "score": {"type": "number", "minimum": 0},
        "max_score": {"type": "number", "minimum": 0},
        "status": {"enum": ["passed", "failed"]},
        "output": {"type": "string", "maxLength": 20000},
        "output_format": OUTPUT_FORMAT,
        "tags": {"type": "array", "items": {"type": "string"}},
        "visibility": VISIBILITY,
        "extra_data": {"type": "object"},
    },
    "additionalProperties": False,
}

RESULTS_SCHEMA = {
    "type": "object",
    "required": ["score", "tests", "output", "stdout_visibility"],
    "properties": {
        "score": {"type": "number", "minimum": 0},
        "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string", "maxLength": 20000},
        "output_format": OUTPUT_FORMAT,
        "visibility": VISIBILITY,
        "stdout_visibility": VISIBILITY,
        "extra_data": {"type": "object"},
        "tests": {"type": "array", "items": TEST_SCHEMA},
        "leaderboard": {"type": "array"},
    },
    "additionalProperties": False,
}


def validate_results(results: dict) -> None:
    """Raises if ``results`` is not a valid, self-consistent Gradescope results.json."""
    jsonschema.validate(results, RESULTS_SCHEMA)
    for test in results["tests"]:
        assert test["score"] <= test["max_score"], f"{test['name']}: score above max"
        assert (test["status"] == "passed") == (test["score"] == test["max_score"]), test["name"]
    total = round(sum(test["score"] for test in results["tests"]), 6)
    assert abs(total - results["score"]) < 1e-9, "score is not the sum of the tests"
