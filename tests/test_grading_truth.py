"""Grading truth (issue 8): no false fails from course-template habits, every documented method
graded, messages that point at the bug. Numbered comments refer to the issue's items.

Realistic submissions are the released solution notebook plus one cell that redefines classes
the way real students wrote them; they are graded in the real sandbox.
"""
from __future__ import annotations

import nbformat
import pytest
import torch

from autograder.checks import Check, Output, run_check, short_error
from autograder.forbidden import ForbiddenScan
from autograder.judge import describe_cases, separating_parameter
from autograder.submission import load_submission
from tests.conftest import CHAPTERS, failed_items, notebook_with_extra_cell

CH01, CH02, CH05 = "01_mlp_backprop", "02_cnn_from_scratch", "05_recurrent_networks"


def messages(results: dict) -> dict[str, str]:
    return {test["name"].split(" ", 1)[1]: test["output"] for test in results["tests"]
            if test["status"] != "passed"}


# ---------------------------------------------------------------- 1: template habits pass
CH01_TEMPLATE_HABITS = '''
class Net:
    """The course template: the constructor initialises through its own reset_params, keeps
    extra attributes and a copy of the list."""

    def __init__(self, layers, std=1.0):
        self.layers = list(layers)
        self.n_layers = len(self.layers)
        self.std = std
        self.reset_params(std)

    def reset_params(self, std=1.0, generator=None):
        for layer in self.layers:
            if hasattr(layer, "init_params"):
                layer.init_params(std, generator=generator)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dupstream):
        for layer in self.layers[::-1]:
            dupstream = layer.backward(dupstream)
        return dupstream

    def optimizer_step(self, lr):
        for layer in self.layers:
            if hasattr(layer, "grad_weight"):
                layer.weight = layer.weight - lr * layer.grad_weight
                layer.bias = layer.bias - lr * layer.grad_bias
'''


def test_1_constructor_calling_its_own_reset_params_keeps_full_marks(grade_file, tmp_path):
    path = notebook_with_extra_cell(CH01, CH01_TEMPLATE_HABITS, tmp_path / f"{CH01}.ipynb")
    assert failed_items(grade_file(CH01, path)) == set()


# ------------------------------------------- 2: getattr on torch.nn.functional by a name
CH05_NONLINEARITY_BY_NAME = '''
import torch.nn.functional as F


class RNNCell(RNNCell):
    def forward(self, x, h=None):
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        pre = x @ self.weight_xh + self.bias_xh + h @ self.weight_hh + self.bias_hh
        return getattr(F, self.nonlinearity)(pre)
'''


def test_2_nonlinearity_chosen_by_name_from_functional_keeps_full_marks(grade_file, tmp_path):
    path = notebook_with_extra_cell(CH05, CH05_NONLINEARITY_BY_NAME, tmp_path / f"{CH05}.ipynb")
    assert failed_items(grade_file(CH05, path)) == set()


def test_2_a_computed_lookup_on_a_module_that_reaches_a_forbidden_name_is_still_caught():
    from autograder.checks import load_checks_namespace
    from tools.build import REPO

    forbidden = load_checks_namespace(
        (REPO / "assignments" / CH01 / "checks.py").read_text()).forbidden
    code = ("import torch\nclass CrossEntropyLoss:\n    def forward(self, logits, target):\n"
            "        return getattr(torch, 'log_' + 'softmax')(logits, 1)\n")
    hits = ForbiddenScan([(1, code)], forbidden).hits_for(("CrossEntropyLoss",))
    assert hits == ["getattr(torch, <computed name>) (in CrossEntropyLoss.forward, line 4 of "
                    'the code cell that begins "import torch")']


# ------------------------------ 3, 4, 5, 6, 7: init, accumulation, independence, messages
CH01_BROKEN = '''
class Linear(Linear):
    def init_params(self, std=1.0, generator=None):
        # the template's default std, whatever the caller asked for
        self.weight = torch.randn(self.in_features, self.out_features, generator=generator)
        self.bias = torch.rand(self.out_features, generator=generator)

    def backward(self, dupstream):
        x = self.cache
        self.grad_weight = self.grad_weight + x.T @ dupstream
        self.grad_bias = self.grad_bias + dupstream.sum(dim=0)
        return dupstream @ self.weight.T


class Tanh(Tanh):
    def backward(self, dupstream):
        raise ValueError("not finished yet")


class Net(Net):
    def optimizer_step(self, lr):
        for layer in self.layers:
            layer.weight -= lr * layer.grad_weight
'''


def test_3_to_7_realistic_mistakes_cost_exactly_their_items_with_messages_to_match(
        grade_file, tmp_path):
    path = notebook_with_extra_cell(CH01, CH01_BROKEN, tmp_path / f"{CH01}.ipynb")
    results = grade_file(CH01, path)
    # 3: init_params ignoring std; 4: gradients accumulating across calls; 5: a broken
    # optimizer_step costs neither reset_params nor anything else
    assert failed_items(results) == {"Linear.init_params: weight", "Linear: grad_weight",
                                     "Linear: grad_bias", "Tanh: dx", "Net: params_after_step"}
    shown = messages(results)
    assert "after init_params(0.1) the weight has mean" in shown["Linear.init_params: weight"]
    # 6: the error location names the method and the cell by its first line (Jupyter shows
    # no cell number that matches a count of code cells), and shows the line
    assert ('(in Tanh.backward, line 17 of the code cell that begins "class Linear(Linear):"; '
            'the line: raise ValueError("not finished yet"))' in shown["Tanh: dx"]), \
        shown["Tanh: dx"]
    # 7: an output whose method raised reports the exception, with no hint about values
    assert "dx was not produced" in shown["Tanh: dx"] and "Hint" not in shown["Tanh: dx"]
    assert "dtype" not in shown["Net: params_after_step"]
    assert "AttributeError" in shown["Net: params_after_step"]
    assert "Hint" not in shown["Net: params_after_step"]


def test_7_stale_attributes_are_never_graded_after_the_method_raised():
    class Layer:
        def __init__(self):
            self.grad_weight = torch.zeros(3)  # float32, left by the constructor

        def forward(self, x):
            return x

        def backward(self, dupstream):
            raise RuntimeError("shape mismatch")

    from autograder.kit import forward_backward_twice

    def exercise(api, case, rng, out):
        x = torch.ones(2, 3, dtype=torch.float64)
        forward_backward_twice(out, api.Layer(), (((x,), x), ((x,), x)), grads=("grad_weight",))

    check = Check("Layer", "q1", ("Layer",), exercise, ({},),
                  (Output("y", hint="h"), Output("dx", hint="h"), Output("grad_weight", hint="h")))
    report = run_check(check, {"Layer": Layer}, lambda *args: None)
    outputs = report["cases"][0]["outputs"]
    assert outputs["y"]["kind"] == "tensor"
    assert outputs["grad_weight"] == {"kind": "raised",
                                      "error": "RuntimeError: shape mismatch"}


# ---------------------------------------------------------- 6: cells as Jupyter numbers them
def test_6_cells_are_numbered_as_code_cells_and_tracebacks_show_the_line(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# title"), nbformat.v4.new_code_cell("a = 1"),
                      nbformat.v4.new_markdown_cell("text"),
                      nbformat.v4.new_code_cell("# EXPERIMENT\nplot()"),
                      nbformat.v4.new_code_cell("def f():\n    return 1 / 0")]
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, path)
    cells = load_submission(path, "n.ipynb").cells
    assert [number for number, _ in cells] == [1, 3]
    from autograder.submission import compile_cell

    namespace: dict = {}
    for code in compile_cell(cells[1][1], cells[1][0]):
        exec(code, namespace)  # noqa: S102 - a test cell of our own
    try:
        namespace["f"]()
    except ZeroDivisionError as exc:
        assert short_error(exc) == ("ZeroDivisionError: division by zero (in f, line 2 of "
                                    'the code cell that begins "def f():"; the line: '
                                    "return 1 / 0)")


# ------------------------------------------------------------- 8: failing cases are named
def test_8_the_one_parameter_pattern_is_named():
    cases = [{"k": 3, "padding": 0, "stride": 1}, {"k": 3, "padding": 1, "stride": 1},
             {"k": 5, "padding": 2, "stride": 2}, {"k": 1, "padding": 0, "stride": 2}]
    assert separating_parameter(cases, {1, 2}) == "fails whenever padding > 0"
    assert separating_parameter(cases, {2, 3}) == "fails whenever stride > 1"
    assert separating_parameter(cases, {0, 2}) == ""
    flags = [{"N": 1}, {"N": 2, "noncontiguous": True}, {"N": 3}]
    assert separating_parameter(flags, {1}) == "fails whenever noncontiguous is set"
    assert describe_cases(cases, [1, 2]) == "2 (k=3, padding=1, stride=1), 3 (k=5, padding=2, " \
                                            "stride=2)"


CH02_NO_PADDING = '''
class Conv2d(Conv2d):
    def forward(self, x):
        saved, self.padding = self.padding, 0
        try:
            return super().forward(x)
        finally:
            self.padding = saved
'''


def test_8_a_convolution_that_ignores_padding_is_told_so(grade_file, tmp_path):
    path = notebook_with_extra_cell(CH02, CH02_NO_PADDING, tmp_path / f"{CH02}.ipynb")
    shown = messages(grade_file(CH02, path))
    assert "Conv2d: y" in shown
    assert "Pattern: it fails whenever padding > 0, and passes in every other case." \
        in shown["Conv2d: y"], shown["Conv2d: y"]


# -------------------------------------- 9: upstream first; container outputs in plain words
CH01_TWICE_RESET = '''
class Net(Net):
    def reset_params(self, std=1.0, generator=None):
        for layer in self.layers:
            if hasattr(layer, "init_params"):
                layer.init_params(std, generator=generator)
                layer.init_params(std, generator=generator)
'''


def test_9_reset_params_is_explained_in_the_students_terms(grade_file, tmp_path):
    path = notebook_with_extra_cell(CH01, CH01_TWICE_RESET, tmp_path / f"{CH01}.ipynb")
    results = grade_file(CH01, path)
    assert failed_items(results) == {"Net: reset_params_std"}
    shown = messages(results)["Net: reset_params_std"]
    assert "after reset_params(0.5), layer 0 (index in layers), which has init_params, " \
           "received init_params calls with std [0.5, 0.5]; expected exactly one" in shown
    assert "shape" not in shown


CH05_LSTM_WRONG_GATE = '''
class LSTMCell(LSTMCell):
    def forward(self, x, state=None):
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        h, c = state
        gates = x @ self.weight_xh + self.bias_xh + h @ self.weight_hh + self.bias_hh
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.sigmoid(g)  # g should be a tanh
        return torch.sigmoid(o) * torch.tanh(c), c
'''


def test_9_downstream_items_say_to_fix_the_upstream_one_first(grade_file, tmp_path):
    path = notebook_with_extra_cell(CH05, CH05_LSTM_WRONG_GATE, tmp_path / f"{CH05}.ipynb")
    shown = messages(grade_file(CH05, path))
    assert "LSTMCell: without_state" in shown
    assert "Fix 'LSTMCell: h' and 'LSTMCell: c' first" in shown["LSTMCell: without_state"]
    assert "Hint" not in shown["LSTMCell: without_state"]
    assert "Hint" in shown["LSTMCell: c"]


# ------------------------------------- 10: the notebook states every rule the grader enforces
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_10_the_student_notebook_states_the_rules_the_grader_enforces(chapter):
    from autograder.forbidden import describe_rules
    from tools.build import DIST, REPO, chapter_forbidden

    notebook = nbformat.read(DIST / "student" / chapter / f"{chapter}.ipynb", as_version=4)
    text = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    forbidden = chapter_forbidden(chapter)
    if forbidden:  # the very list the grader enforces, generated from FORBIDDEN
        assert describe_rules(forbidden) in text, "put {{FORBIDDEN_RULES}} in a markdown cell"
    assert "in place" in text, "the grader fails outputs after an input was changed in place: " \
                               "say so in the notebook"
    checks_source = (REPO / "assignments" / chapter / "checks.py").read_text()
    if "Probe" in checks_source or "exercise_container" in checks_source:
        assert "isinstance" in text, "containers are graded with the grader's own layers: " \
                                     "warn against isinstance tests on layer types"
