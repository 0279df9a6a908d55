"""Fault test of the judge itself: the child is SIGKILLed from outside at ten moments of a
reference grading (start-up, torch import, statements, six different checks); every run must
still end with a valid results.json, and nothing but the interrupted work may be lost."""
from __future__ import annotations

import random

import pytest

from tests.hostile.cases import reference_plus
from tests.hostile.harness import after, when_output_appears, when_privileges_dropped
from tests.hostile.suite import FaultPoint

FAULTED_SUBMISSION = reference_plus()
_jitter = random.Random(5)  # "random" moments, the same on every run of the suite

FAULT_POINTS = [
    FaultPoint("at_child_start", lambda uid: after(0.0)),
    FaultPoint("importing_torch", lambda uid, t=0.3 + _jitter.random() * 0.4: after(t)),
    FaultPoint("late_start_up", lambda uid, t=1.2 + _jitter.random(): after(t)),
    FaultPoint("after_privilege_drop", lambda uid: when_privileges_dropped(uid, 2.5)),
    *(FaultPoint(f"during_check_{index}", lambda uid, prefix=f"c{index:03d}_":
                 when_output_appears(prefix)) for index in (0, 1, 3, 5, 6, 7)),
]
# What a lost piece of work may look like: the check that was running, a statement that was
# running (its definition is then missing), or a child that died before it was ready.
ALLOWED_LOSSES = ("process ended", "not found", "could not start", "nameerror")


@pytest.mark.parametrize("point", FAULT_POINTS, ids=[point.id for point in FAULT_POINTS])
def test_killing_the_child_still_gives_valid_results(point, suite):
    run = suite.fault_run(point, FAULTED_SUBMISSION)
    assert run.killed_at is not None, "the fault was never injected"
    suite.assert_sound(run)
    failed = {name: test["output"] for name, test in run.items().items()
              if test["status"] == "failed"}
    for name, message in failed.items():
        assert any(loss in message.lower() for loss in ALLOWED_LOSSES), (name, message)
    if point.id.startswith("during_check"):
        assert len({name.split(": ")[0] for name in failed}) <= 1, failed
