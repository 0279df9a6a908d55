"""The judge: grades one submission against a chapter package and returns results.json.

Trusted, and it stays that way: it reads the submission as text, scans it, hands the code to
the sandboxed child (``sandbox.run_in_sandbox``), and compares the plain arrays that come back
with the expected data, which never leaves this process.
"""
from __future__ import annotations

import time
from pathlib import Path

from autograder.arrays import array_file_name
from autograder.chapter import ChapterPackage, CheckSpec, OutputSpec
from autograder.compare import compare_output
from autograder.forbidden import ForbiddenScan
from autograder.results import ItemResult, build_results
from autograder.sandbox import SandboxConfig, SessionResult, run_in_sandbox
from autograder.submission import SubmissionError, load_submission

# How an allocation refused by the address-space limit shows up in the child's error text.
MEMORY_ERRORS = ("MemoryError", "can't allocate memory", "Cannot allocate memory",
                 "out of memory")


def explain_error(error: str) -> str:
    """The child's one-line error, prefixed with the limit it ran into when it is one."""
    if any(marker in error for marker in MEMORY_ERRORS):
        return f"Memory limit: your code tried to allocate more memory than allowed. {error}"
    return error


def _grade_output(package: ChapterPackage, check: CheckSpec, output: OutputSpec,
                  report: dict, session: SessionResult) -> tuple[bool, str]:
    cases = report.get("cases")
    if not isinstance(cases, list) or len(cases) != len(check.cases):
        return False, explain_error(
            str(report.get("error") or "the check did not run to the end")[:500])
    failures = []
    for case_index, case in enumerate(cases):
        label = f"case {case_index + 1} of {len(cases)} {check.cases[case_index]}"
        if not isinstance(case, dict):
            failures.append(f"{label}: no report")
            continue
        outputs = case.get("outputs")
        meta = outputs.get(output.name) if isinstance(outputs, dict) else None
        if not isinstance(meta, dict):
            meta = {"kind": "missing"}
        if meta.get("kind") == "missing" and case.get("error"):
            failures.append(f"{label}: {explain_error(str(case['error'])[:400])}")
            continue
        modified = meta.get("modified") or []
        if not isinstance(modified, list):
            modified = ["(an input)"]
        if modified:
            names = ", ".join(str(name)[:40] for name in modified[:5])
            failures.append(f"{label}: your code changed its input {names} in place; "
                            f"work on a copy (or out-of-place operations)")
            continue
        actual = None
        if meta.get("kind") == "tensor":
            actual = session.load_array(array_file_name(check.index, case_index, output.name))
        expected = package.expected(check.index, case_index, output.name)
        verdict = compare_output(expected, meta, actual, output.rtol, output.atol)
        if not verdict.passed:
            failures.append(f"{label}: {output.name} {verdict.message}")
    if not failures:
        return True, f"passed on all {len(cases)} cases"
    message = failures[0]
    if len(failures) > 1:
        message += f"\n(fails in {len(failures)} of {len(cases)} cases)"
    not_implemented = "not implemented" in failures[0]
    if output.hint and not not_implemented:
        message += f"\nHint: {output.hint}"
    return False, message


def _grade_item(package: ChapterPackage, check: CheckSpec, output: OutputSpec,
                hits: list[str], report: dict | None,
                session: SessionResult) -> tuple[bool, str]:
    if hits:
        shown = "; ".join(hits[:3]) + (" ..." if len(hits) > 3 else "")
        return False, (f"uses API this chapter asks you to write yourself: {shown}. "
                       f"Remove it from {', '.join(check.uses)} and its helpers.")
    if report is None:
        return False, session.check_failures.get(check.index, "the check did not run")
    trap = report.get("trap")
    if trap:
        seen = ", ".join(str(name)[:80] for name in (trap if isinstance(trap, list)
                                                     else [trap])[:3])
        return False, f"called forbidden API at run time: {seen}"
    return _grade_output(package, check, output, report, session)


def grade(package: ChapterPackage, submission: str | Path,
          config: SandboxConfig | None = None) -> dict:
    """Grades ``submission`` and returns the Gradescope ``results.json`` content."""
    config = config or SandboxConfig()
    started = time.monotonic()
    items: list[ItemResult] = []

    def fail_all(message: str) -> dict:
        for check in package.checks:
            for output in check.outputs:
                items.append(ItemResult(check, output, False, message))
        return build_results(package, items, [message],
                             {"sandbox": "not started: the submission was not graded"},
                             time.monotonic() - started)

    try:
        loaded = load_submission(submission, package.notebook_name)
    except SubmissionError as exc:
        return fail_all(f"Your submission could not be read: {exc}")
    if loaded.chapter and loaded.chapter != package.chapter:
        return fail_all(f"This is a submission for chapter {loaded.chapter[:60]}, but this "
                        f"assignment is chapter {package.chapter}: upload it to the right "
                        f"assignment.")

    scan = ForbiddenScan(loaded.cells, package.forbidden)
    forbidden_hits = {check.index: scan.hits_for(check.uses) for check in package.checks}
    to_run = {check.index: check.timeout_s for check in package.checks
              if not forbidden_hits[check.index]}
    session = run_in_sandbox(loaded.cells, package.check_source(), to_run, config) \
        if to_run else SessionResult(protections={"sandbox": "not started: nothing to run"})
    try:
        for check in package.checks:
            hits = forbidden_hits[check.index]
            report = session.check_reports.get(check.index)
            for output in check.outputs:
                try:
                    passed, message = _grade_item(package, check, output, hits, report,
                                                  session)
                except Exception:  # noqa: BLE001 - a report the child forged or garbled
                    passed, message = False, "could not be graded: the report of your code's " \
                                             "run was malformed"
                items.append(ItemResult(check, output, passed, message))
    finally:
        session.close()
    notes = loaded.skipped + session.notes
    unparsed = [note.split(" was skipped")[0] for note in session.notes if "does not parse" in note]
    if unparsed:
        for item in items:
            if not item.passed and " not found" in item.message:
                item.message += (f"\n({', '.join(unparsed)} could not be parsed and was "
                                 f"skipped; fix the syntax error shown in the notes)")
    stdout = session.stdout_head.decode("utf-8", "replace")
    left_out = session.stdout_bytes - len(session.stdout_head) - len(session.stdout_tail)
    if left_out > 0:
        stdout += f"\n[... {left_out} bytes of output left out ...]\n" + \
            session.stdout_tail.decode("utf-8", "replace")
    elif session.stdout_bytes > len(session.stdout_head):
        overlap = len(session.stdout_head) + len(session.stdout_tail) - session.stdout_bytes
        stdout += session.stdout_tail[max(overlap, 0):].decode("utf-8", "replace")
    results = build_results(package, items, notes, session.protections,
                            time.monotonic() - started, stdout)
    results["extra_data"]["child_timings"] = session.timings  # instructor-only, informative
    return results
