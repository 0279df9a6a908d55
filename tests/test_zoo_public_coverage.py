"""Do the public checks see what the hidden checks catch? (issue 26)

For every bug-zoo mutant, the public checks of each question it fails (the zoo's ``fails``
lists stand in for the hidden grading: ``test_chapters`` proves they match it) are run exactly as
a student runs them, through ``tools.zoo_report``'s public side. Per chapter:

* every mutant missed publicly fails only items whose hidden message says what the public
  checks leave out (``Output.public_gap``): a student whose public checks were green learns why;
* at least ``MIN_PUBLIC_RATE`` of the mutants that exact checks catch are caught publicly too
  (the kit measures it over all chapters in ``docs/zoo_report.md``).
"""

from __future__ import annotations

import pytest

from tests.conftest import CHAPTERS
from tools.build import ensure_built
from tools.zoo import load_bugs
from tools.zoo_report import chapter_rows, public_verdicts

MIN_PUBLIC_RATE = 0.90


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_public_checks_catch_the_zoo_or_the_hidden_message_names_the_gap(chapter):
    ensure_built(chapter)
    bugs = load_bugs(chapter)
    public = public_verdicts(chapter, bugs)
    failing_solution = {q: message for q, message in public["baseline"].items() if message}
    assert not failing_solution, f"the solution fails public checks: {failing_solution}"
    rows = chapter_rows(chapter, bugs, None, public)
    silent = [f"{row.question}: {name}" for row in rows for name in row.silent]
    assert not silent, (
        "missed by the public checks, and the hidden message does not say what they leave "
        f"out (set public_gap on the items, or make the public check catch it): {silent}"
    )
    caught = sum(len(row.caught_public) for row in rows)
    counted = sum(len(row.caught_hidden) - len(row.statistical) for row in rows)
    missed = [f"{row.question}: {name}" for row in rows for name in row.missed]
    assert caught >= MIN_PUBLIC_RATE * counted, (
        f"public checks catch {caught} of {counted} question-mutant pairs; missed: {missed}"
    )
