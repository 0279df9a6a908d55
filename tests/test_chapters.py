"""What every chapter must prove: full marks for the solution, zero for the stub, every bug in
the zoo caught exactly where it lives, nothing hidden in the student bundle, reproducible zips."""
from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter

import nbformat
import pytest

import tools.build
from autograder.chapter import ChapterPackage
from tests.conftest import CHAPTERS, failed_items, notebook_with_extra_cell
from tools.build import DIST, build_chapter
from tools.leaks import scan_for_leaks
from tools.zoo import load_bugs, pattern_mismatches, printed_patterns

BUG_CASES = [(chapter, bug) for chapter in CHAPTERS for bug in load_bugs(chapter)]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_solution_notebook_scores_full_marks(chapter, grade_file, package_for):
    results = grade_file(chapter, DIST / "solutions" / f"{chapter}-solution.ipynb")
    assert failed_items(results) == set(), results["output"]
    assert results["score"] == package_for(chapter).max_score > 0


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_untouched_student_notebook_scores_zero_with_not_implemented(chapter, grade_file):
    results = grade_file(chapter, DIST / "student" / chapter / f"{chapter}.ipynb")
    assert results["score"] == 0
    for test in results["tests"]:
        assert "not implemented" in test["output"], (test["name"], test["output"])


def assert_hints_hold(package: ChapterPackage, results: dict) -> None:
    """Every hint a failed item shows is one of its own (general, for its cases, or for the
    exception it raised), and is shown only while the items of earlier checks it needs pass."""
    from autograder.judge import ERROR_HINTS

    status = {test["name"].split(" ", 1)[1]: test["status"] for test in results["tests"]}
    outputs = {f"{c.name}: {o.name}": (c, o) for c in package.checks for o in c.outputs}
    for test in results["tests"]:
        if test["status"] == "passed" or "\nHint: " not in test["output"]:
            continue
        check, output = outputs[test["name"].split(" ", 1)[1]]
        shown = test["output"].split("\nHint: ", 1)[1].split("\nThe public checks of ")[0]
        own = {output.hint, *(hint for _, hint in output.case_hints)}
        own |= {hint for _, hint in (*check.error_hints, *ERROR_HINTS)}
        assert shown in own, f"{test['name']} shows a hint that is not its own: {shown}"
        failed_upstream = [n for n in output.needs if ": " in n and status[n] != "passed"]
        assert not failed_upstream, f"{test['name']} hints while {failed_upstream} fail"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_graded_check_has_at_least_three_bugs(chapter, package_for):
    checks = {check.name for check in package_for(chapter).checks}
    per_check = Counter(item.split(":")[0] for bug in load_bugs(chapter) for item in bug.fails)
    thin = {name: per_check[name] for name in checks if per_check[name] < 3}
    assert not thin, f"checks caught by fewer than 3 bugs: {thin}"


@pytest.mark.parametrize("chapter,bug", BUG_CASES, ids=[f"{c}:{b.name}" for c, b in BUG_CASES])
def test_bug_zoo_mutant_loses_exactly_its_items(chapter, bug, grade_file, package_for, tmp_path):
    items = {f"{c.name}: {o.name}" for c in package_for(chapter).checks for o in c.outputs}
    assert bug.fails <= items, f"bug names unknown items: {bug.fails - items}"
    mutant = notebook_with_extra_cell(chapter, bug.code, tmp_path / f"{chapter}.ipynb")
    results = grade_file(chapter, mutant)
    assert failed_items(results) == set(bug.fails), results["output"]
    for test in results["tests"]:
        if test["status"] == "failed":
            assert "case" in test["output"] or "killed" in test["output"], test["output"]
    assert_hints_hold(package_for(chapter), results)
    patterns = printed_patterns(results)
    assert pattern_mismatches(bug, patterns) == [], results["output"]
    # every printed pattern is judged: a mutant that prints one must say which one is right
    assert bug.annotated or not patterns, (
        f"{bug.name!r} prints patterns {patterns} but declares no pattern= in its Bug(...): "
        f"annotate the parameter its bug depends on (or None, and fix the cases or "
        f"pattern_axes if the printed one is wrong)"
    )


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_student_bundle_leaks_nothing(chapter, proof_for):
    assert proof_for(chapter)["leaks"] == []


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_leak_scan_catches_a_planted_solution_line(chapter, tmp_path):
    bundle = tmp_path / chapter
    shutil.copytree(DIST / "student" / chapter, bundle)
    master = (DIST.parent / "assignments" / chapter / "master.py").read_text()
    solution_line = next(line.strip() for line in master.split("# BEGIN SOLUTION NO PROMPT", 1)[1]
                         .splitlines()[1:] if len(line.strip()) >= 12)
    (bundle / "notes.py").write_text(f"# {chapter}\n{solution_line}\n")
    notebook_path = bundle / f"{chapter}.ipynb"
    notebook = nbformat.read(notebook_path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(f"x = 1\n    {solution_line}"))
    nbformat.write(notebook, notebook_path)
    leaks = scan_for_leaks(chapter, tmp_path)
    assert any("notes.py" in leak for leak in leaks), leaks
    assert any(f"{chapter}.ipynb: contains hidden line" in leak for leak in leaks), leaks


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_build_is_reproducible(chapter, tmp_path, monkeypatch):
    """A second, independent build (into a folder of its own, so that tests running in
    parallel never see dist/ change under them) gives byte-identical distributions."""
    names = [f"autograder/{chapter}-autograder.zip", f"student/{chapter}.zip",
             f"solutions/{chapter}-solution.ipynb"]
    if not all((DIST / name).exists() for name in names):
        build_chapter(chapter)
    monkeypatch.setattr(tools.build, "DIST", tmp_path / "dist")
    monkeypatch.setattr(tools.build, "BUILD", tmp_path / "build")
    tools.build.build_chapter(chapter)
    for name in names:
        first = hashlib.sha256((DIST / name).read_bytes()).hexdigest()
        second = hashlib.sha256((tmp_path / "dist" / name).read_bytes()).hexdigest()
        assert first == second, f"{name} differs between two builds"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_grader_zip_has_gradescope_layout_and_no_reference_module(chapter, package_for):
    import zipfile

    with zipfile.ZipFile(DIST / "autograder" / f"{chapter}-autograder.zip") as archive:
        names = set(archive.namelist())
        setup = archive.read("setup.sh").decode()
    assert {"setup.sh", "run_autograder", "requirements.txt", "chapter/chapter.json"} <= names
    assert not any(name.startswith("solutions/") for name in names)
    assert "download.pytorch.org/whl/cpu" in setup and "conda" not in setup.lower()
    config = json.loads((package_for(chapter).root / "chapter.json").read_text())
    assert config["chapter"] == chapter
    assert isinstance(ChapterPackage.load(package_for(chapter).root), ChapterPackage)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_only_the_student_notebook_has_an_export_cell(chapter):
    """The student exports from their notebook; the released solution has no export cell (it
    would package the student notebook beside it) and no leftover prompt blocks."""
    student = nbformat.read(DIST / "student" / chapter / f"{chapter}.ipynb", as_version=4).cells
    solution = nbformat.read(DIST / "solutions" / f"{chapter}-solution.ipynb", as_version=4).cells
    assert sum("grader.export(" in cell.source or "export_submission(" in cell.source
               for cell in student) == 1
    assert sum(cell.source.lstrip().startswith("## Submission") for cell in student) == 1
    assert not any("grader.export(" in cell.source or "## Submission" in cell.source
                   or "BEGIN PROMPT" in cell.source for cell in solution)
    assert solution[-1].source.strip()
