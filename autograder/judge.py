"""The judge: grades one submission against a chapter package and returns results.json.

Trusted, and it stays that way: it reads the submission as text, scans it, hands the code to
the sandboxed child (``sandbox.run_in_sandbox``), and compares the plain arrays that come back
with the expected data, which never leaves this process.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from autograder.arrays import array_file_name
from autograder.chapter import ChapterPackage, CheckSpec, OutputSpec
from autograder.compare import compare_output
from autograder.forbidden import ForbiddenScan, forbidden_message
from autograder.results import ItemResult, build_results
from autograder.sandbox import SandboxConfig, SessionResult, run_in_sandbox
from autograder.submission import SubmissionError, describe_cell, load_submission

# How an allocation refused by the address-space limit shows up in the child's error text.
MEMORY_ERRORS = ("MemoryError", "can't allocate memory", "Cannot allocate memory", "out of memory")


# Known shapes of an exception raised by the student's code, and the likely cause: shown as the
# hint of an item that failed with an exception (a check's own ``error_hints`` come first).
# Patterns are regular expressions on the error text as the student sees it.
ERROR_HINTS: tuple[tuple[str, str], ...] = (
    (
        r"does not require grad and does not have a grad_fn",
        "the tensor you differentiate carries no graph: is it computed inside torch.no_grad() "
        "(or torch.inference_mode()), from a .detach()ed tensor, or through .item(), .numpy() "
        "or a new torch.tensor(...)? Gradients need the computation to stay in torch, "
        "outside no_grad.",
    ),
    (
        r"must have the same dtype|to have the same dtype|should be the same|"
        r"must have the same scalar type|expected scalar type|Found dtype",
        "two tensors of different dtypes meet (float32 and float64): the grader also runs your "
        "code in float64. Create new tensors with the input's dtype (torch.zeros_like(x), "
        "torch.zeros(..., dtype=x.dtype)) and do not hard-code float32 (a torch.tensor(...) of "
        "Python floats, .float()).",
    ),
    (
        r"shapes cannot be multiplied|must match the size of tensor b|Sizes of tensors must "
        r"match|Expected size for first two dimensions|is invalid for input of size",
        "a shape mismatch: the grader's cases use other sizes than the notebook's examples "
        "(see the case above). Check each dimension against the docstring's shapes, and which "
        "axis each reshape, transpose or sum works on.",
    ),
    (
        r"a leaf Variable that requires grad is being used in an in-place operation",
        "an in-place operation (x += ..., x.add_(...), x[...] = ...) on a tensor that requires "
        "grad, such as a parameter or an input: work on a new tensor (y = x + ...), or update "
        "parameters inside torch.no_grad().",
    ),
    (
        r"modified by an inplace operation",
        "a tensor that autograd saved for the backward pass was changed in place afterwards "
        "(x += ..., relu_, x[...] = ...): use the out-of-place form (x = x + ...).",
    ),
    (
        r"backward through the graph a second time",
        "backward() ran twice through the same graph: compute the loss afresh for each "
        "backward call, or detach what you keep from one step to the next.",
    ),
    (
        r"Can't call numpy\(\) on Tensor that requires grad",
        "stay in torch: .numpy() leaves autograd (use torch operations throughout).",
    ),
)


def error_hint(error: str, check_hints: tuple[tuple[str, str], ...] = ()) -> str:
    """The hint for an exception's text: the check's own ``error_hints`` first, then the kit's
    :data:`ERROR_HINTS`; "" when none matches."""
    for pattern, hint in (*check_hints, *ERROR_HINTS):
        if re.search(pattern, error):
            return hint
    return ""


def explain_error(error: str) -> str:
    """The child's one-line error, prefixed with the limit it ran into when it is one."""
    if any(marker in error for marker in MEMORY_ERRORS):
        return f"Memory limit: your code tried to allocate more memory than allowed. {error}"
    return error


def _parse_case(text: str) -> dict:
    try:
        case = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return case if isinstance(case, dict) else {}


def _value_text(value: object) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value)


def describe_cases(cases: list[dict], indices: list[int], limit: int = 4) -> str:
    """Cases ``indices`` (0-based) named compactly by the settings that vary between cases."""
    keys = sorted({key for case in cases for key in case})
    varying = [
        key
        for key in keys
        if len({json.dumps(case.get(key), sort_keys=True) for case in cases}) > 1
    ]
    shown = []
    for index in indices[:limit]:
        settings = ", ".join(
            f"{key}={_value_text(cases[index].get(key))}" for key in varying if key in cases[index]
        )
        shown.append(f"{index + 1} ({settings})" if settings else str(index + 1))
    more = f", ... ({len(indices) - limit} more)" if len(indices) > limit else ""
    return ", ".join(shown) + more


def separating_parameter(
    cases: list[dict], failing: set[int], axes: tuple[str, ...] | list[str] = ()
) -> str:
    """One line such as "fails whenever padding > 0" when exactly one setting separates the
    failing cases from the passing ones; "" otherwise.

    When several settings separate them (heads > 1 and N > 1 in the same cases), the cases
    cannot tell which one the bug depends on, and naming one of them would be a guess: then
    no pattern is given, and the message lists the failing cases instead. A single failing
    case is never described by a value of its own ("shape = [4, 7]" names the case, not a
    cause); thresholds and set/not set still apply to it. ``axes`` (a check's
    ``pattern_axes``), when given, are the only settings considered."""
    passing = set(range(len(cases))) - failing
    if not failing or not passing:
        return ""
    keys = sorted({key for case in cases for key in case if not axes or key in axes})
    found = []
    for key in keys:
        bad = [cases[i].get(key) for i in sorted(failing)]
        good = [cases[i].get(key) for i in sorted(passing)]
        numbers = [v for v in bad + good if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(numbers) == len(bad) + len(good):
            low_bad, high_bad = min(numbers[: len(bad)]), max(numbers[: len(bad)])
            low_good, high_good = min(numbers[len(bad) :]), max(numbers[len(bad) :])
            if low_bad > high_good:
                found.append(f"fails whenever {key} > {_value_text(high_good)}")
            elif high_bad < low_good:
                found.append(f"fails whenever {key} < {_value_text(low_good)}")
            continue
        bad_set = {json.dumps(v, sort_keys=True) for v in bad}
        good_set = {json.dumps(v, sort_keys=True) for v in good}
        if bad_set & good_set:
            continue
        if all(v is not None for v in bad) and all(v is None for v in good):
            # given only in the failing cases: a mask, a flag, a dropout rate, bias=False
            if len(bad_set) == 1 and bad[0] is not True:
                found.append(f"fails whenever {key} = {_value_text(bad[0])}")
            else:
                found.append(f"fails whenever {key} is set")
        elif len(bad_set) > 1:
            continue
        elif bad[0] is None:
            found.append(f"fails whenever {key} is not set")
        elif bad[0] is True:
            found.append(f"fails whenever {key} is set")
        elif len(bad) > 1:  # one case's own value (its shape) only names that case
            found.append(f"fails whenever {key} = {_value_text(bad[0])}")
    return found[0] if len(found) == 1 else ""


def name_cells(notes: list[str], cells: list[tuple[int, str]]) -> list[str]:
    """The child's notes ("cell 12: ...", "cell 12 was skipped ..."), each cell named the way
    the student finds it (its first line) instead of the grader's count of code cells."""
    sources = dict(cells)
    named = []
    for note in notes:
        match = re.match(r"cell (\d+)\b", note)
        if match and int(match.group(1)) in sources:
            number = int(match.group(1))
            where = describe_cell(number, sources[number].splitlines())
            note = where[0].upper() + where[1:] + note[match.end() :]
        named.append(note)
    return named


@dataclass
class _CaseFailure:
    index: int
    message: str
    raised: bool  # the code under test raised: no value to diagnose, no hint


def _case_failures(
    package: ChapterPackage,
    check: CheckSpec,
    output: OutputSpec,
    cases: list,
    session: SessionResult,
) -> list[_CaseFailure]:
    failures = []
    for case_index, case in enumerate(cases):
        label = f"case {case_index + 1} of {len(cases)}"
        if not isinstance(case, dict):
            failures.append(_CaseFailure(case_index, f"{label}: no report", True))
            continue
        outputs = case.get("outputs")
        meta = outputs.get(output.name) if isinstance(outputs, dict) else None
        if not isinstance(meta, dict):
            meta = {"kind": "missing"}
        kind = meta.get("kind")
        if kind == "raised":
            failures.append(
                _CaseFailure(
                    case_index,
                    f"{label}: {output.name} was not produced, the code that should "
                    f"produce it raised {explain_error(str(meta.get('error'))[:400])}",
                    True,
                )
            )
            continue
        if kind == "missing" and case.get("error"):
            failures.append(
                _CaseFailure(
                    case_index, f"{label}: {explain_error(str(case['error'])[:400])}", True
                )
            )
            continue
        if kind == "explained":
            failures.append(
                _CaseFailure(case_index, f"{label}: {str(meta.get('message'))[:600]}", False)
            )
            continue
        modified = meta.get("modified") or []
        if not isinstance(modified, list):
            modified = ["(an input)"]
        if modified:
            names = ", ".join(str(name)[:40] for name in modified[:5])
            failures.append(
                _CaseFailure(
                    case_index,
                    f"{label}: your code changed its input {names} in place; work on "
                    f"a copy (or out-of-place operations)",
                    False,
                )
            )
            continue
        actual = None
        if kind == "tensor":
            actual = session.load_array(array_file_name(check.index, case_index, output.name))
        expected = package.expected(check.index, case_index, output.name)
        verdict = compare_output(expected, meta, actual, output.rtol, output.atol)
        if not verdict.passed:
            failures.append(
                _CaseFailure(case_index, f"{label}: {output.name} {verdict.message}", False)
            )
    return failures


def _grade_output(
    package: ChapterPackage,
    check: CheckSpec,
    output: OutputSpec,
    report: dict,
    session: SessionResult,
    failing: dict[str, set[int]],
) -> tuple[bool, str]:
    """Grades one output over all cases. ``failing`` maps the items graded so far ("Check:
    output") to their failing case indices (for "fix the upstream item first"); this output is
    added."""
    key = f"{check.name}: {output.name}"
    cases = report.get("cases")
    if not isinstance(cases, list) or len(cases) != len(check.cases):
        failing[key] = set(range(len(check.cases)))
        return False, explain_error(
            str(report.get("error") or "the check did not run to the end")[:500]
        )
    failures = _case_failures(package, check, output, cases, session)
    failing[key] = {failure.index for failure in failures}
    if not failures:
        return True, f"passed on all {len(cases)} cases"
    settings = [_parse_case(text) for text in check.cases]
    first = failures[0]
    message = first.message.replace(
        f"case {first.index + 1} of {len(cases)}",
        f"case {first.index + 1} of {len(cases)} {check.cases[first.index]}",
        1,
    )
    indices = [failure.index for failure in failures]
    if len(failures) > 1:
        message += (
            f"\n(fails in {len(failures)} of {len(cases)} cases: "
            f"{describe_cases(settings, indices)})"
        )
    pattern = separating_parameter(settings, set(indices), check.pattern_axes)
    if pattern:
        message += f"\nPattern: it {pattern}, and passes in every other case."
    upstream = upstream_failures(check, output, set(indices), failing)
    if upstream:
        names = " and ".join(f"'{name}'" for name in upstream)
        message += (
            f"\nFix {names} first: {output.name} is computed from it, and it fails in "
            f"the same cases."
            if all(name.startswith(f"{check.name}: ") for name in upstream)
            else f"\nFix {names} first: this item runs the same code, and it fails there too."
        )
    elif not all(failure.raised for failure in failures):
        hint = hint_for(output, [settings[index] for index in indices])
        if hint:
            message += f"\nHint: {hint}"
    elif first.raised and error_hint(first.message, check.error_hints):
        message += f"\nHint: {error_hint(first.message, check.error_hints)}"
    if output.public_gap and not all(failure.raised for failure in failures):
        message += (
            f"\nThe public checks of {check.question} do not cover this: {output.public_gap}."
        )
    return False, message


def upstream_failures(
    check: CheckSpec, output: OutputSpec, indices: set[int], failing: dict[str, set[int]]
) -> list[str]:
    """The items ``output`` declares it ``needs`` that failed where it fails: an output of the
    same check failing in (at least) the same cases, or an item of an earlier check ("Check:
    output", other cases) failing at all. Their failure explains this one: no hint then."""
    found = []
    for name in output.needs:
        if ": " in name:
            if failing.get(name):
                found.append(name)
        elif failing.get(f"{check.name}: {name}", set()) >= indices:
            found.append(f"{check.name}: {name}")
    return found


def hint_for(output: OutputSpec, failing_cases: list[dict]) -> str:
    """The hint for a value failure in ``failing_cases`` (their settings): the first of the
    output's ``case_hints`` whose settings every failing case has, else its general hint."""
    for scope, hint in output.case_hints:
        if all(
            all(case.get(key) == value for key, value in scope.items()) for case in failing_cases
        ):
            return hint
    return output.hint


def _grade_item(
    package: ChapterPackage,
    check: CheckSpec,
    output: OutputSpec,
    hits: list[str],
    report: dict | None,
    session: SessionResult,
    failing: dict[str, set[int]],
) -> tuple[bool, str]:
    if hits:
        return False, forbidden_message(hits, check.uses)
    if report is None:
        return False, session.check_failures.get(check.index, "the check did not run")
    trap = report.get("trap")
    if trap:
        seen = ", ".join(
            str(name)[:80] for name in (trap if isinstance(trap, list) else [trap])[:3]
        )
        return False, f"called forbidden API at run time: {seen}"
    return _grade_output(package, check, output, report, session, failing)


def grade(
    package: ChapterPackage, submission: str | Path, config: SandboxConfig | None = None
) -> dict:
    """Grades ``submission`` and returns the Gradescope ``results.json`` content."""
    config = config or SandboxConfig()
    started = time.monotonic()
    items: list[ItemResult] = []

    def fail_all(message: str) -> dict:
        for check in package.checks:
            for output in check.outputs:
                items.append(ItemResult(check, output, False, message))
        return build_results(
            package,
            items,
            [message],
            {"sandbox": "not started: the submission was not graded"},
            time.monotonic() - started,
        )

    try:
        loaded = load_submission(submission, package.notebook_name)
    except SubmissionError as exc:
        return fail_all(f"Your submission could not be read: {exc}")
    if loaded.chapter and loaded.chapter != package.chapter:
        return fail_all(
            f"This is a submission for chapter {loaded.chapter[:60]}, but this "
            f"assignment is chapter {package.chapter}: upload it to the right "
            f"assignment."
        )

    scan = ForbiddenScan(loaded.cells, package.forbidden)
    forbidden_hits = {
        check.index: scan.hits_for(check.uses, check.replaces) for check in package.checks
    }
    to_run = {
        check.index: check.timeout_s for check in package.checks if not forbidden_hits[check.index]
    }
    session = (
        run_in_sandbox(loaded.cells, package.check_source(), to_run, config)
        if to_run
        else SessionResult(protections={"sandbox": "not started: nothing to run"})
    )
    failing: dict[str, set[int]] = {}  # item -> its failing cases, for upstream_failures
    try:
        for check in package.checks:
            hits = forbidden_hits[check.index]
            report = session.check_reports.get(check.index)
            for output in check.outputs:
                try:
                    passed, message = _grade_item(
                        package, check, output, hits, report, session, failing
                    )
                except Exception:  # noqa: BLE001 - a report the child forged or garbled
                    passed, message = (
                        False,
                        "could not be graded: the report of your code's run was malformed",
                    )
                if not passed:  # failed before its cases were compared: all of them
                    failing.setdefault(f"{check.name}: {output.name}", set(range(len(check.cases))))
                items.append(ItemResult(check, output, passed, message))
    finally:
        session.close()
    session_notes = name_cells(session.notes, loaded.cells)
    notes = loaded.skipped + session_notes
    unparsed = [
        note[0].lower() + note.split(" was skipped")[0][1:]
        for note in session_notes
        if "does not parse" in note
    ]
    if unparsed:
        for item in items:
            if not item.passed and " not found" in item.message:
                item.message += (
                    f"\n({', '.join(unparsed)} could not be parsed and was "
                    f"skipped; fix the syntax error shown in the notes)"
                )
    stdout = session.stdout_head.decode("utf-8", "replace")
    left_out = session.stdout_bytes - len(session.stdout_head) - len(session.stdout_tail)
    if left_out > 0:
        stdout += f"\n[... {left_out} bytes of output left out ...]\n" + session.stdout_tail.decode(
            "utf-8", "replace"
        )
    elif session.stdout_bytes > len(session.stdout_head):
        overlap = len(session.stdout_head) + len(session.stdout_tail) - session.stdout_bytes
        stdout += session.stdout_tail[max(overlap, 0) :].decode("utf-8", "replace")
    results = build_results(
        package, items, notes, session.protections, time.monotonic() - started, stdout
    )
    results["extra_data"]["child_timings"] = session.timings  # instructor-only, informative
    return results
