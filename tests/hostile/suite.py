"""The session's view of the hostile suite: runs per case, fault runs, and the assertions that
hold for every run (valid results, truthful protections, no canary, nothing left behind)."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from autograder.chapter import ChapterPackage
from tests.gradescope_schema import validate_results
from tests.hostile.cases import Case, Expect
from tests.hostile.harness import AS_ROOT, Builder, HostileGrader, Run, Trigger, _sandbox_uid

PER_ITEM_DEADLINE_S = 10.0  # the checks' timeout_s


@dataclass(frozen=True)
class FaultPoint:
    """A moment to kill the child from outside while the reference is graded."""

    id: str
    trigger: Callable[[int | None], Trigger]  # the sandbox uid (None without root) -> when


class Suite:
    def __init__(self, grader: HostileGrader):
        self.grader = grader
        self.full_protection = AS_ROOT
        self.package = ChapterPackage.load(grader.pristine / "chapter")
        self.points = {f"{check.name}: {output.name}": output.points
                       for check in self.package.checks for output in check.outputs}
        self.pristine_digest = self.source_digest(grader.pristine)

    # -- scheduling -----------------------------------------------------------------------
    def schedule(self, cases: list[Case], faults: list[tuple[FaultPoint, Builder]]) -> None:
        """Queues the selected runs, slow ones first, so the pool stays busy."""
        for case in sorted(cases, key=lambda case: not case.slow):
            for index in range(case.runs):
                self.grader.submit(f"{case.id}#{index}", case.id, case.build)
        for point, build in faults:
            self.grader.submit(f"fault:{point.id}", f"fault-{point.id}", build, point.trigger)

    def runs(self, case: Case) -> list[Run]:
        return [self.grader.submit(f"{case.id}#{index}", case.id, case.build).result()
                for index in range(case.runs)]

    def fault_run(self, point: FaultPoint, build: Builder) -> Run:
        return self.grader.submit(f"fault:{point.id}", f"fault-{point.id}", build,
                                  point.trigger).result()

    def finished_runs(self) -> list[Run]:
        return [future.result() for future in self.grader.futures.values()
                if future.done() and not future.exception()]

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def source_digest(source: Path) -> str:
        digest = hashlib.sha256()
        for path in sorted(source.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(source)).encode() + path.read_bytes())
        return digest.hexdigest()

    def expected_failures(self, expect: Expect) -> dict[str, str]:
        failing = {}
        for pattern, phrase in expect.failing.items():
            matched = [item for item in self.points
                       if pattern in ("*", item) or (pattern.endswith(": *") and
                                                     item.split(": ")[0] == pattern[:-3])]
            assert matched, f"the case names no known item: {pattern}"
            failing.update((item, phrase) for item in matched)
        return failing

    # -- assertions that hold for every run ------------------------------------------------
    def assert_sound(self, run: Run, *, canary_may_leak: bool = False) -> None:
        """Valid, bounded results.json; the protections reported as they were; the canary
        nowhere a student or the child can see; nothing of the sandbox left running."""
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.results, f"no results.json: {run.stderr[-2000:]}"
        validate_results(run.results)
        assert len(run.results["tests"]) == len(self.points), run.output
        assert len(run.results_text) < 100_000
        assert run.seconds < PER_ITEM_DEADLINE_S * len(self.points), run.seconds
        self.assert_protections_reported(run)
        if not canary_may_leak:
            self.assert_no_canary(run)
        assert run.leftover_processes == [], "sandbox processes outlived grading"

    def assert_protections_reported(self, run: Run) -> None:
        protections = run.protections
        if "sandbox" in protections:  # nothing was run: the submission was refused before
            assert protections["sandbox"].startswith("not started")
            return
        if self.full_protection:
            assert protections["mode"].startswith("full"), protections
            assert protections["user"] == f"uid {_sandbox_uid(run.sandbox_user)}", protections
            assert protections["network"] == "blocked (namespace + seccomp filter)", protections
            assert protections["python_files"].startswith("readable"), protections
            assert protections["subreaper"] is True, protections
            assert protections["files"].startswith("active: Landlock"), protections
            assert protections["proc"].startswith("active: private mount namespace"), protections
        else:
            assert protections["mode"].startswith("DEGRADED"), protections
            assert "WARNING: DEGRADED" in run.stderr

    def assert_no_canary(self, run: Run) -> None:
        canary = self.grader.canary
        places = {"results.json": run.results_text, "grader stdout": run.stdout,
                  "grader stderr": run.stderr}
        places.update({f"child-writable {path}": data.decode(errors="replace")
                       for path, data in run.child_files.items()})
        leaked = [place for place, text in places.items() if canary in text]
        assert not leaked, f"the canary leaked into {leaked}"

    def assert_outcome(self, run: Run, expect: Expect) -> None:
        """Exactly the expected items fail, each with its phrase; the rest pass."""
        failing = self.expected_failures(expect)
        items = run.items()
        assert set(items) == set(self.points), sorted(items)
        for name, test in items.items():
            if name in failing:
                assert test["status"] == "failed", (name, test["output"])
                assert failing[name].lower() in test["output"].lower(), (name, test["output"])
            else:
                assert test["status"] == "passed", (name, test["output"])
        expected_score = sum(points for item, points in self.points.items()
                             if item not in failing)
        assert abs(run.results["score"] - expected_score) < 1e-9
        for phrase in expect.output:
            assert phrase.lower() in run.output.lower(), (phrase, run.output)


def mode_line() -> str:
    if AS_ROOT:
        return ("hostile suite: FULL mode (root: privilege drop to kitsandbox-t*, network "
                "namespace + seccomp filter, grader files locked)")
    return (f"hostile suite: DEGRADED mode (uid {os.geteuid()}, not root: no privilege drop; "
            f"attacks a degraded grader is open to are checked for validity only)")

