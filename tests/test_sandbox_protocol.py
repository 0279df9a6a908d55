"""The supervisor's event protocol (``autograder.sandbox.Protocol``), without any process:
the real child's sequence, deadlines, what each way of ending costs, and the refusal of forged
or out-of-order events (student code can write to the protocol pipe)."""
from __future__ import annotations

import pytest

from autograder.sandbox import (
    MEMORY_LIMIT,
    PROCESS_ENDED,
    TIME_LIMIT,
    Protocol,
    SandboxConfig,
    StdoutExcerpt,
)

CONFIG = SandboxConfig(startup_timeout_s=60.0, statement_timeout_s=20.0, total_budget_s=420.0,
                       max_skipped_statements=2)
TIMEOUTS = {0: 10.0, 1: 7.0, 2: 5.0}
READY = {"ev": "ready", "protections": {"network": "blocked (seccomp filter)"},
         "timings": {"import_torch_s": 1.5}}


def protocol() -> Protocol:
    return Protocol(TIMEOUTS, CONFIG, started=1000.0)


def feed(proto: Protocol, *events: dict, now: float = 1001.0) -> list[bool]:
    return [proto.accept(event, now) for event in events]


def ready_to_check(proto: Protocol) -> None:
    assert all(feed(proto, READY, {"ev": "stmt", "cell": 0, "stmt": 0}, {"ev": "defs_done"}))


def test_the_real_childs_sequence():
    proto = protocol()
    ready_to_check(proto)
    for index in TIMEOUTS:
        assert feed(proto, {"ev": "check_start", "check": index},
                    {"ev": "check_done", "check": index, "report": {"cases": [index]}}) == \
            [True, True]
    assert feed(proto, {"ev": "all_done"}) == [True]
    assert proto.finished and proto.pending == []
    assert proto.reports == {index: {"cases": [index]} for index in TIMEOUTS}
    assert proto.protections == READY["protections"]
    assert proto.timings == {"import_torch_s": 1.5}
    assert proto.attempt_ended("done") is False


def test_deadlines_follow_the_phase_and_never_pass_the_budget():
    proto = protocol()
    assert proto.deadline() == 1000.0 + 60.0
    feed(proto, READY, now=1002.0)
    assert proto.deadline() == 1002.0 + 20.0
    feed(proto, {"ev": "stmt", "cell": 1, "stmt": 0}, now=1005.0)
    assert proto.deadline() == 1005.0 + 20.0
    feed(proto, {"ev": "defs_done"}, now=1006.0)
    assert proto.deadline() == 1006.0 + 5.0
    feed(proto, {"ev": "check_start", "check": 1}, now=1007.0)
    assert proto.deadline() == 1007.0 + 7.0
    feed(proto, {"ev": "check_done", "check": 1, "report": {}}, now=1400.0)
    feed(proto, {"ev": "check_start", "check": 0}, now=1415.0)
    assert proto.deadline() == 1420.0  # the total budget, not 1415 + 10


@pytest.mark.parametrize("event", [
    {"ev": "defs_done"}, {"ev": "check_start", "check": 0}, {"ev": "all_done"},
    {"ev": "stmt", "cell": 0, "stmt": 0}, {"ev": "check_done", "check": 0, "report": {}},
    {"ev": "nonsense"}, {"no": "ev"}, ["ev", "ready"], "ready", None,
])
def test_nothing_but_ready_is_accepted_at_start_up(event):
    proto = protocol()
    assert proto.accept(event, 1001.0) is False
    assert proto.phase == "startup" and proto.deadline() == 1060.0


def test_forged_protections_after_start_up_are_refused():
    proto = protocol()
    ready_to_check(proto)
    forged = {"ev": "ready", "protections": {"mode": "FORGED"}}
    assert feed(proto, forged) == [False]
    assert proto.protections == READY["protections"]


def test_a_statement_deadline_is_reset_only_by_a_later_statement():
    proto = protocol()
    feed(proto, READY, {"ev": "stmt", "cell": 2, "stmt": 3}, now=1001.0)
    for forged in ({"ev": "stmt", "cell": 2, "stmt": 3}, {"ev": "stmt", "cell": 2, "stmt": 1},
                   {"ev": "stmt", "cell": 1, "stmt": 9}, {"ev": "stmt", "cell": True, "stmt": 9},
                   {"ev": "stmt", "cell": 3.0, "stmt": 0}, {"ev": "stmt", "cell": "3"}):
        assert proto.accept(forged, 1010.0) is False, forged
    assert proto.stmt == (2, 3) and proto.deadline() == 1001.0 + 20.0
    assert proto.accept({"ev": "stmt", "cell": 2, "stmt": 4}, 1010.0)
    assert proto.deadline() == 1010.0 + 20.0


def test_a_check_deadline_is_set_once_per_pending_check():
    proto = protocol()
    ready_to_check(proto)
    assert feed(proto, {"ev": "check_start", "check": 0}, now=1001.0) == [True]
    # while check 0 runs, student code forges a restart, another check, or a report
    assert feed(proto, {"ev": "check_start", "check": 0}, {"ev": "check_start", "check": 1},
                {"ev": "check_done", "check": 1, "report": {"forged": 1}}, {"ev": "all_done"},
                {"ev": "defs_done"}, now=1009.0) == [False] * 5
    assert proto.check == 0 and proto.deadline() == 1001.0 + 10.0
    assert feed(proto, {"ev": "check_done", "check": 0, "report": {"cases": []}}) == [True]
    # a check already started (or done) never starts again; unknown checks never start
    for forged in ({"ev": "check_start", "check": 0}, {"ev": "check_start", "check": 7},
                   {"ev": "check_start", "check": True}, {"ev": "check_start", "check": "1"}):
        assert proto.accept(forged, 1012.0) is False, forged
    assert proto.reports == {0: {"cases": []}}


def test_all_done_is_refused_while_checks_are_pending():
    proto = protocol()
    ready_to_check(proto)
    feed(proto, {"ev": "check_start", "check": 0}, {"ev": "check_done", "check": 0, "report": {}})
    assert feed(proto, {"ev": "all_done"}) == [False]
    assert not proto.finished and proto.pending == [1, 2]


def test_a_report_that_is_not_a_dict_counts_as_no_report():
    proto = protocol()
    ready_to_check(proto)
    feed(proto, {"ev": "check_start", "check": 2}, {"ev": "check_done", "check": 2, "report": [1]})
    assert 2 not in proto.reports and 2 not in proto.pending


def test_timeout_during_a_check_costs_that_check_only():
    proto = protocol()
    ready_to_check(proto)
    feed(proto, {"ev": "check_start", "check": 1})
    assert proto.attempt_ended("timeout") is True
    assert proto.failures == {1: f"{TIME_LIMIT} (7 s)"}
    assert proto.pending == [0, 2]
    proto.start_attempt(1100.0)
    assert proto.phase == "startup" and proto.deadline() == 1160.0


@pytest.mark.parametrize("outcome,phrase", [("memory", MEMORY_LIMIT), ("ended", PROCESS_ENDED)])
def test_other_endings_during_a_check(outcome, phrase):
    proto = protocol()
    ready_to_check(proto)
    feed(proto, {"ev": "check_start", "check": 0})
    proto.attempt_ended(outcome)
    assert proto.failures[0].startswith(phrase)


def test_a_statement_that_overruns_is_skipped_until_too_many_are():
    proto = protocol()
    for attempt in range(3):
        proto.start_attempt(1000.0)
        feed(proto, READY, {"ev": "stmt", "cell": 4, "stmt": attempt})
        more = proto.attempt_ended("timeout")
        assert proto.skip[-1] == (4, attempt)
        assert more is (attempt < 2)
    assert "cell 4, statement 1: Time limit" in proto.notes[0]
    too_many = "not run: too many statements of your code had to be skipped"
    assert set(proto.failures.values()) == {too_many}


def test_two_failed_starts_end_the_grading():
    proto = protocol()
    assert proto.attempt_ended("ended") is True
    proto.start_attempt(1001.0)
    assert proto.attempt_ended("timeout") is False
    assert all("could not start your code (timeout)" in reason
               for reason in proto.failures.values())
    assert set(proto.failures) == set(TIMEOUTS)


def test_the_budget_fails_what_is_pending():
    proto = protocol()
    assert proto.out_of_budget(1419.0) is False
    assert proto.out_of_budget(1420.0) is True
    assert set(proto.failures) == set(TIMEOUTS) and proto.pending == []


def test_notes_are_bounded():
    proto = protocol()
    feed(proto, READY, {"ev": "stmt_error", "cell": 1, "error": "x" * 10_000},
         {"ev": "cell_syntax_error", "cell": 2, "error": "y" * 10_000})
    assert len(proto.notes) == 2 and all(len(note) < 600 for note in proto.notes)


def test_stdout_excerpt_keeps_head_and_tail():
    excerpt = StdoutExcerpt(keep=4)
    for chunk in (b"ab", b"cdef", b"ghij"):
        excerpt.add(chunk)
    assert (excerpt.head, excerpt.tail, excerpt.total) == (b"abcd", b"ghij", 10)
