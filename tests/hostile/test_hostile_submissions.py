"""Issue 5: every hostile submission, graded by the Gradescope entry point, gets exactly its
expected outcome, and nothing is forged, leaked or lost."""
from __future__ import annotations

import pytest

from tests.hostile.cases import CASES, identical_results


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_submission_gets_its_exact_outcome(case, suite):
    runs = suite.runs(case)
    expect = case.expectation(suite.full_protection)
    for run in runs:
        suite.assert_sound(run, canary_may_leak=case.reads_secrets and not suite.full_protection)
        if expect is not None:
            suite.assert_outcome(run, expect)
        if case.check is not None:
            case.check(run, suite)
    if case.runs == 3:
        identical_results(runs)


def test_every_row_of_the_issue_has_a_case():
    rows = {case.row for case in CASES}
    assert {str(number) for number in range(1, 27)} <= rows
