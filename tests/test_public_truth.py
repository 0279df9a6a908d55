"""Feedback that tells the truth (issue 26): the public checks run the grader's forbidden-API
scan, patterns are printed only when the cases can tell, and locations name what students see.

A forbidden call used to pass every public check ("7 of 7 passed") and lose every hidden item.
The public check of its question now fails first, with the grader's own message.
"""
from __future__ import annotations

import pytest

from autograder.forbidden import ForbiddenScan
from autograder.judge import separating_parameter
from autograder.submission import SCRIPT_CELL, compile_cell
from student.rules import assert_written_from_scratch, live_cells
from tests.conftest import notebook_with_extra_cell
from tools.zoo import NOT_ANNOTATED, Bug, pattern_mismatches
from tools.zoo_report import public_verdicts

CH09, CH10 = "09_gans_energy_models", "10_contrastive_learning"

CH10_CROSS_ENTROPY = '''
import torch.nn.functional as F


def info_nce_loss(z1, z2, temperature=0.5):
    n = z1.shape[0]
    z = torch.cat([z1, z2], dim=0)
    z = z / z.norm(dim=1, keepdim=True)
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool), -math.inf)
    targets = (torch.arange(2 * n) + n) % (2 * n)
    return F.cross_entropy(logits, targets)
'''

CH09_BINARY_CROSS_ENTROPY = '''
import torch.nn.functional as F


def discriminator_loss(real_logits, fake_logits):
    real = F.binary_cross_entropy(torch.sigmoid(real_logits), torch.ones_like(real_logits))
    fake = F.binary_cross_entropy(torch.sigmoid(fake_logits), torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits):
    return F.binary_cross_entropy(torch.sigmoid(fake_logits), torch.ones_like(fake_logits))
'''


@pytest.mark.parametrize("chapter,code,item", [
    (CH10, CH10_CROSS_ENTROPY, "info_nce_loss: loss"),
    (CH09, CH09_BINARY_CROSS_ENTROPY, "discriminator_loss: loss"),
])
def test_a_forbidden_call_fails_the_public_check_of_its_question_with_the_hidden_message(
        chapter, code, item, grade_file, tmp_path):
    results = grade_file(chapter, notebook_with_extra_cell(chapter, code, tmp_path / "m.ipynb"))
    hidden = {test["name"].split(" ", 1)[1]: test for test in results["tests"]}
    question = hidden[item]["name"].split()[0]
    assert hidden[item]["score"] == 0 and "write yourself" in hidden[item]["output"]
    public = public_verdicts(chapter, [Bug("forbidden", set(), code)])
    assert not any(public["baseline"].values()), public["baseline"]
    verdicts = public["mutants"]["forbidden"]
    # the same words as the grader's, the failing line of Otter's output removed
    assert verdicts[question] == hidden[item]["output"], verdicts
    others = {q: message for q, message in verdicts.items() if q != question and message}
    assert not others, others


def test_the_scan_reads_the_kernel_history_as_it_stands_after_edits_and_reruns():
    forbidden = ("torch.nn.functional.cross_entropy",)
    first = "import torch.nn.functional as F\ndef loss(x, y):\n    return F.cross_entropy(x, y)\n"
    fixed = "def loss(x, y):\n    return -(x.log_softmax(1) * y).sum()\n"
    wrapped = "def loss(x, y, loss=loss):\n    return 2 * loss(x, y)\n"
    checks = [(("loss",), ())]
    # the fixed cell, run after the forbidden one, replaces it
    assert_written_from_scratch({"In": ["", first, fixed]}, forbidden, checks)
    # a cell that builds on the earlier definition keeps it (and its forbidden call)
    with pytest.raises(AssertionError, match="uses API this chapter asks you to write yourself"):
        assert_written_from_scratch({"In": ["", first, wrapped]}, forbidden, checks)
    # experiment cells are not graded, so they are not scanned either
    experiment = "# EXPERIMENT: anything goes\n" + first
    assert [count for count, _ in live_cells(["", experiment, fixed])] == [2]


# ------------------------------------------------------------------ 2: patterns that tell
def test_a_pattern_is_printed_only_when_exactly_one_setting_separates_the_failures():
    heads = [{"N": 1, "heads": 1}, {"N": 2, "heads": 1}, {"N": 2, "heads": 4},
             {"N": 3, "heads": 2}]
    # heads > 1 alone separates cases 3 and 4 ...
    assert separating_parameter(heads, {2, 3}) == "fails whenever heads > 1"
    # ... but when N > 1 does too, the cases cannot tell which: no guess is printed
    confounded = [{"N": 1, "heads": 1}, {"N": 2, "heads": 4}, {"N": 3, "heads": 2}]
    assert separating_parameter(confounded, {1, 2}) == ""


def test_zoo_annotations_judge_the_printed_patterns():
    assert pattern_mismatches(Bug("b", set(), "", pattern="heads"), {"MHA: y": "heads"}) == []
    assert pattern_mismatches(Bug("b", set(), "", pattern="heads"), {"MHA: y": "N"}) == [
        "MHA: y: the pattern names N, not heads"]
    assert pattern_mismatches(Bug("b", set(), "", pattern="heads"), {}) == [
        "no item prints a pattern naming heads"]
    assert pattern_mismatches(Bug("b", set(), "", pattern=None), {"MHA: y": "N"}) == [
        "MHA: y: prints a pattern on N, none expected"]
    unannotated = Bug("b", set(), "")
    assert unannotated.pattern == NOT_ANNOTATED and not unannotated.annotated
    assert pattern_mismatches(unannotated, {"MHA: y": "N"}) == []


# ------------------------------------------------------------- 6: locations students find
def test_locations_name_the_function_and_the_cell_by_its_first_line_or_the_file_line():
    from autograder.checks import short_error

    source = "\nclass Tanh:\n    def backward(self, d):\n        return d / 0\n"
    for number, where in ((7, 'line 4 of the code cell that begins "class Tanh:"'),
                          (SCRIPT_CELL, "line 4 of your .py file")):
        namespace: dict = {}
        for code in compile_cell(source, number):
            exec(code, namespace)  # noqa: S102 - a test cell of our own
        with pytest.raises(ZeroDivisionError) as raised:
            namespace["Tanh"]().backward(1)
        assert short_error(raised.value) == (
            f"ZeroDivisionError: division by zero (in Tanh.backward, {where}; the line: "
            f"return d / 0)")
    hits = ForbiddenScan([(7, "import torch\n" + source.replace("d / 0", "torch.softmax(d)"))],
                         ("torch.softmax",)).hits_for(("Tanh",))
    assert hits == ['torch.softmax (in Tanh.backward, line 5 of the code cell that begins '
                    '"import torch")']


def test_in_jupyter_the_check_and_the_export_summary_say_what_the_grader_will_say(tmp_path):
    """The real path: a kernel, Otter's grader.check and the export cell's summary. An edited and
    re-run cell replaces the forbidden version in the kernel's history."""
    import shutil

    import nbformat

    from tests.test_notebooks import check_outputs, execute
    from tools.build import DIST
    from tools.zoo import load_chapter_module

    folder = tmp_path / CH10
    shutil.copytree(DIST / "student" / CH10, folder)
    correct = load_chapter_module(CH10, "bug_zoo.py").loss()
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in (
        f'import math\nimport torch\nimport otter\ngrader = otter.Notebook("{CH10}.ipynb")',
        CH10_CROSS_ENTROPY.lstrip(), 'grader.check("q1")',
        "from student.submit import summarize_public_checks\n"
        "summarize_public_checks(grader, globals())",
        correct, 'grader.check("q1")')]
    path = folder / f"{CH10}.ipynb"
    nbformat.write(notebook, path)
    executed, _ = execute(path, allow_errors=True)
    (_, forbidden), (_, fixed) = check_outputs(executed)
    assert "uses API this chapter asks you to write yourself: torch.nn.functional.cross_entropy " \
           "(in info_nce_loss, line 11 of the code cell that begins" in forbidden, forbidden
    assert len(forbidden.strip().splitlines()) <= 10, forbidden
    summary = "".join(output.get("text", "") for output in executed.cells[3].outputs)
    assert "q1    FAILED  uses API this chapter asks you to write yourself" in summary, summary
    assert "7 of 7 passed" not in summary
    assert "All test cases passed" in fixed, fixed


def test_declared_pattern_axes_are_the_only_settings_a_pattern_may_name():
    confounded = [{"N": 1, "heads": 1}, {"N": 2, "heads": 4}, {"N": 3, "heads": 2}]
    assert separating_parameter(confounded, {1, 2}, ("heads",)) == "fails whenever heads > 1"
    # an axis that does not separate the failures gives no pattern, whatever else would
    assert separating_parameter(confounded, {2}, ("heads",)) == ""
    from autograder.checks import Check

    with pytest.raises(ValueError, match="not case parameters"):
        Check("c", "q1", ("f",), lambda *args: None, tuple(confounded), (), pattern_axes=("H",))


def test_notes_name_cells_by_their_first_line_not_by_the_graders_count():
    from autograder.judge import name_cells

    cells = [(3, "\n# my helper\nx = y"), (4, "def f(:"), (SCRIPT_CELL, "z")]
    assert name_cells(["cell 3: NameError: name 'y' is not defined", "cell 0: oops",
                       "cell 4 was skipped, it does not parse: SyntaxError", "other"], cells) == [
        "The code cell that begins \"# my helper\": NameError: name 'y' is not defined",
        "Your .py file: oops",
        'The code cell that begins "def f(:" was skipped, it does not parse: SyntaxError',
        "other"]


def test_a_setting_given_only_in_the_failing_cases_separates_them_and_one_case_is_no_pattern():
    masks = [{"d": 1, "mask": None}, {"d": 5, "mask": "square"}, {"d": 2, "mask": None},
             {"d": 4, "mask": "causal"}]
    assert separating_parameter(masks, {1, 3}, ("mask",)) == "fails whenever mask is set"
    # d > 2 separates them as well: no guess without declared axes
    assert separating_parameter(masks, {1, 3}) == ""
    shapes = [{"shape": [1, 1]}, {"shape": [4, 7]}, {"shape": [6, 5]}]
    assert separating_parameter(shapes, {1}) == ""


def test_a_value_given_only_in_the_failing_case_is_named():
    cases = [{"N": 5}, {"N": 6, "bias": False}, {"N": 4}]
    assert separating_parameter(cases, {1}, ("bias",)) == "fails whenever bias = False"


# ------------------------------------------------------------- 5: exceptions get a hint too
@pytest.mark.parametrize("error,cause", [
    ("RuntimeError: element 0 of tensors does not require grad and does not have a grad_fn",
     "torch.no_grad()"),
    ("RuntimeError: mat1 and mat2 must have the same dtype, but got Double and Float", "dtype"),
    ("RuntimeError: Input type (double) and bias type (float) should be the same", "dtype"),
    ("RuntimeError: index_add_(): self (Float) and source (Double) must have the same scalar "
     "type", "dtype"),
    ("RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x3 and 4x2)", "shape"),
    ("RuntimeError: The size of tensor a (2) must match the size of tensor b (4) at "
     "non-singleton dimension 0", "shape"),
    ("RuntimeError: shape '[4, 2]' is invalid for input of size 6", "shape"),
    ("RuntimeError: a leaf Variable that requires grad is being used in an in-place operation.",
     "in-place"),
    ("RuntimeError: one of the variables needed for gradient computation has been modified by "
     "an inplace operation: [torch.FloatTensor [2]]", "in place"),
    ("RuntimeError: Trying to backward through the graph a second time", "twice"),
])
def test_known_exception_shapes_name_their_likely_cause(error, cause):
    from autograder.judge import error_hint

    assert cause in error_hint(error)
    # a check's own hint for the same text comes first
    assert error_hint(error, ((r"RuntimeError", "chapter-specific"),)) == "chapter-specific"


def test_an_unknown_exception_gets_no_guessed_hint():
    from autograder.judge import error_hint

    assert error_hint("ValueError: my own message") == ""
    assert error_hint("NotImplementedError: Linear.forward") == ""


def test_an_attack_run_under_no_grad_is_told_why_it_raises(grade_file, tmp_path):
    no_grad_gradient = '''
def input_gradient(model, x, y):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        leaf = x.detach().clone().requires_grad_(True)
        loss = F.cross_entropy(model(leaf), y)
        (grad,) = torch.autograd.grad(loss, leaf)
    model.train(was_training)
    return grad
'''
    chapter = "11_adversarial_attacks"
    results = grade_file(chapter, notebook_with_extra_cell(chapter, no_grad_gradient,
                                                           tmp_path / "m.ipynb"))
    raised = [test["output"] for test in results["tests"]
              if test["status"] == "failed" and "does not require grad" in test["output"]]
    assert raised, results["output"]
    assert all("Hint: the tensor you differentiate carries no graph" in out for out in raised)


# ------------------------------------------- 3: a hint is shown only when its condition holds
def _spec(**fields):
    from autograder.chapter import OutputSpec

    return OutputSpec(**{"name": "y", "points": 1.0, "rtol": 0.0, "atol": 0.0, "hint": "general",
                         **fields})


def test_a_case_hint_is_shown_only_when_every_failing_case_has_its_settings():
    from autograder.judge import hint_for

    output = _spec(case_hints=(({"extreme": True}, "do not clamp"),))
    assert hint_for(output, [{"N": 2, "extreme": True}]) == "do not clamp"
    # one ordinary case fails too: the clamping story no longer explains it
    assert hint_for(output, [{"N": 2, "extreme": True}, {"N": 3}]) == "general"
    assert hint_for(output, [{"N": 3}]) == "general"


def test_hints_assume_their_upstream_items_pass():
    from autograder.chapter import CheckSpec
    from autograder.judge import upstream_failures

    check = CheckSpec(0, "GCNLayer at scale", "q2", ("GCNLayer",), 10.0, ('{"N": 5}',), ())
    at_scale = _spec(needs=("GCNLayer: out",))
    assert upstream_failures(check, at_scale, {0}, {"GCNLayer: out": {2}}) == ["GCNLayer: out"]
    assert upstream_failures(check, at_scale, {0}, {"GCNLayer: out": set()}) == []
    # within a check: only when the upstream output fails in (at least) the same cases
    gradient = _spec(needs=("y",))
    assert upstream_failures(check, gradient, {0, 1}, {"GCNLayer at scale: y": {0, 1, 2}}) == [
        "GCNLayer at scale: y"]
    assert upstream_failures(check, gradient, {0, 1}, {"GCNLayer at scale: y": {1}}) == []


def test_every_hint_condition_names_what_exists():
    """needs name earlier items, case_hints name case parameters: a condition that cannot
    hold is a check bug, refused when the chapter is defined (tools.chapter_package checks the
    earlier items at build time)."""
    from autograder.checks import Check, Output

    with pytest.raises(ValueError, match="not case parameters"):
        Check("c", "q1", ("f",), lambda *args: None, ({"N": 1},),
              (Output("y", hint="h", case_hints=(({"extreme": True}, "x"),)),))
    with pytest.raises(ValueError, match="not earlier outputs"):
        Check("c", "q1", ("f",), lambda *args: None, ({"N": 1},),
              (Output("y", hint="h", needs=("dx",)),))


# --------------------------------- 1: a mutant the public checks miss is told what they skip
def test_a_concept_answer_the_public_checks_cannot_see_says_so(grade_file, tmp_path):
    from tools.zoo import load_bugs

    chapter = "03_optimization_regularization"
    bug = next(bug for bug in load_bugs(chapter) if bug.name.startswith("concepts:"))
    results = grade_file(chapter, notebook_with_extra_cell(chapter, bug.code, tmp_path / "m.ipynb"))
    failed = [test for test in results["tests"] if test["status"] == "failed"]
    assert failed, results["output"]
    for test in failed:
        assert "The public checks of q7 do not cover this: they check that every answer is a " \
               "number" in test["output"], test["output"]
    assert public_verdicts(chapter, [bug])["mutants"][bug.name]["q7"] == ""
