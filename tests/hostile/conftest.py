"""Session fixture of the hostile suite: one grader layout, every selected run queued at once."""
from __future__ import annotations

import pytest

from tests.hostile.cases import Case
from tests.hostile.harness import HostileGrader
from tests.hostile.suite import FaultPoint, Suite, mode_line


def pytest_report_header(config):
    return mode_line()


@pytest.fixture(scope="session")
def suite(request):
    grader = HostileGrader()
    session_suite = Suite(grader)
    cases, faults = [], []
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if isinstance(params.get("case"), Case):
            cases.append(params["case"])
        if isinstance(params.get("point"), FaultPoint):
            faults.append((params["point"], item.module.FAULTED_SUBMISSION))
    session_suite.schedule(cases, faults)
    request.config._hostile_suite = session_suite
    yield session_suite
    grader.close()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session_suite = getattr(config, "_hostile_suite", None)
    terminalreporter.write_line(mode_line())
    if session_suite is None:
        return
    runs = session_suite.finished_runs()
    if runs:
        worst = max(runs, key=lambda run: run.seconds)
        terminalreporter.write_line(
            f"hostile suite: {len(runs)} gradings on {session_suite.grader.workers} workers, "
            f"{sum(run.cpu_seconds for run in runs):.0f} s CPU; worst single run "
            f"{worst.name} {worst.seconds:.1f} s")
