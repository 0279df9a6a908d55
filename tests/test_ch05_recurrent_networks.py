"""Chapter 05: the reference agrees with PyTorch's own recurrent modules and clipping, and the
grader explains a student's parameter mistakes and forbidden API use.

The reference stores weights as the course notes do (``x @ weight_xh``, gates concatenated
along the columns); PyTorch stores the transposes. Everything runs in float64.
"""
from __future__ import annotations

import math
import zlib
from pathlib import Path

import pytest
import torch
from torch import nn

from autograder.checks import load_checks_namespace
from autograder.kit import ParameterMismatch, assign_parameters
from solutions.ch05_recurrent_networks import (GRUCell, LSTMCell, RecurrentLayer, RNNCell,
                                               clip_grad_norm)
from tests.conftest import failed_items, notebook_with_extra_cell

CHAPTER = "05_recurrent_networks"
CHECKS_PATH = Path(__file__).resolve().parent.parent / "assignments" / CHAPTER / "checks.py"
F64 = torch.float64


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def seed_of(*parts) -> int:
    """A seed that depends only on the case (str hashes change between interpreter runs)."""
    return zlib.crc32(repr(parts).encode())


def torch_twin(cell: nn.Module) -> nn.Module:
    """PyTorch's cell of the same kind holding the same (transposed) parameters."""
    if isinstance(cell, RNNCell):
        twin = nn.RNNCell(cell.input_size, cell.hidden_size, nonlinearity=cell.nonlinearity)
    elif isinstance(cell, GRUCell):
        twin = nn.GRUCell(cell.input_size, cell.hidden_size)
    else:
        twin = nn.LSTMCell(cell.input_size, cell.hidden_size)
    twin = twin.to(F64)
    with torch.no_grad():
        twin.weight_ih.copy_(cell.weight_xh.T)
        twin.weight_hh.copy_(cell.weight_hh.T)
        twin.bias_ih.copy_(cell.bias_xh)
        twin.bias_hh.copy_(cell.bias_hh)
    return twin


def make_cell(kind: str, input_size: int, hidden_size: int, seed: int) -> nn.Module:
    classes = {"rnn_tanh": RNNCell, "rnn_relu": RNNCell, "gru": GRUCell, "lstm": LSTMCell}
    extra = {"nonlinearity": kind.split("_")[1]} if kind.startswith("rnn") else {}
    cell = classes[kind](input_size, hidden_size, **extra).to(F64)
    cell.reset_parameters(seeded(seed))
    with torch.no_grad():  # wider than the default init, to exercise saturation a little
        for param in cell.parameters():
            param.mul_(3.0)
    return cell


def assert_close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-12, msg=what)


# kind, N, input_size, hidden_size, with an initial state
CELL_CASES = [
    (kind, n, i, h, given)
    for kind in ("rnn_tanh", "rnn_relu", "gru", "lstm")
    for n, i, h in ((1, 1, 1), (4, 3, 5), (3, 6, 2), (7, 4, 4), (2, 10, 16))
    for given in (True, False)
]


@pytest.mark.parametrize("kind,n,input_size,hidden_size,given", CELL_CASES)
def test_cell_matches_pytorch_forward_and_gradients(kind, n, input_size, hidden_size, given):
    seed = seed_of(kind, n, input_size, hidden_size, given)
    rng = seeded(seed)
    cell = make_cell(kind, input_size, hidden_size, seed)
    twin = torch_twin(cell)
    x = torch.randn(n, input_size, generator=rng, dtype=F64, requires_grad=True)
    x_twin = x.detach().clone().requires_grad_()
    is_lstm = kind == "lstm"
    states = [torch.randn(n, hidden_size, generator=rng, dtype=F64, requires_grad=True)
              for _ in range(2 if is_lstm else 1)] if given else []
    twin_states = [s.detach().clone().requires_grad_() for s in states]
    if is_lstm:
        ours = cell(x, tuple(states) if given else None)
        theirs = twin(x_twin, tuple(twin_states) if given else None)
    else:
        ours = (cell(x, states[0] if given else None),)
        theirs = (twin(x_twin, twin_states[0] if given else None),)
    weights = [torch.randn(n, hidden_size, generator=rng, dtype=F64) for _ in ours]
    for a, b, name in zip(ours, theirs, ("h", "c")):
        assert_close(a, b, f"{kind} {name}")
    sum((a * w).sum() for a, w in zip(ours, weights)).backward()
    sum((b * w).sum() for b, w in zip(theirs, weights)).backward()
    assert_close(x.grad, x_twin.grad, "grad x")
    for ours_state, their_state in zip(states, twin_states):
        assert_close(ours_state.grad, their_state.grad, "grad initial state")
    assert_close(cell.weight_xh.grad, twin.weight_ih.grad.T, "grad weight_xh")
    assert_close(cell.weight_hh.grad, twin.weight_hh.grad.T, "grad weight_hh")
    assert_close(cell.bias_xh.grad, twin.bias_ih.grad, "grad bias_xh")
    assert_close(cell.bias_hh.grad, twin.bias_hh.grad, "grad bias_hh")


# kind, T, N, batch_first, with an initial state
LAYER_CASES = [
    (kind, steps, n, batch_first, given)
    for kind in ("rnn_tanh", "rnn_relu", "gru", "lstm")
    for steps, n in ((1, 1), (7, 4), (1, 3), (12, 2))
    for batch_first in (False, True)
    for given in (True, False)
]


@pytest.mark.parametrize("kind,steps,n,batch_first,given", LAYER_CASES)
def test_unrolled_layer_matches_pytorch(kind, steps, n, batch_first, given):
    input_size, hidden_size = 3, 4
    seed = seed_of(kind, steps, n, batch_first, given)
    rng = seeded(seed)
    cell = make_cell(kind, input_size, hidden_size, seed)
    twin_cell = torch_twin(cell)
    classes = {"gru": nn.GRU, "lstm": nn.LSTM}
    extra = {} if kind in classes else {"nonlinearity": kind.split("_")[1]}
    twin = classes.get(kind, nn.RNN)(input_size, hidden_size, batch_first=batch_first, **extra)
    twin = twin.to(F64)
    with torch.no_grad():
        twin.weight_ih_l0.copy_(twin_cell.weight_ih)
        twin.weight_hh_l0.copy_(twin_cell.weight_hh)
        twin.bias_ih_l0.copy_(twin_cell.bias_ih)
        twin.bias_hh_l0.copy_(twin_cell.bias_hh)
    shape = (n, steps, input_size) if batch_first else (steps, n, input_size)
    x = torch.randn(*shape, generator=rng, dtype=F64, requires_grad=True)
    x_twin = x.detach().clone().requires_grad_()
    is_lstm = kind == "lstm"
    states = [torch.randn(n, hidden_size, generator=rng, dtype=F64, requires_grad=True)
              for _ in range(2 if is_lstm else 1)]
    twin_states = [s.detach().clone().unsqueeze(0).requires_grad_() for s in states]
    layer = RecurrentLayer(cell, batch_first=batch_first)
    if given:
        outputs, last = layer(x, tuple(states) if is_lstm else states[0])
        theirs, their_last = twin(x_twin, tuple(twin_states) if is_lstm else twin_states[0])
    else:
        outputs, last = layer(x)
        theirs, their_last = twin(x_twin)
    last = last if is_lstm else (last,)
    their_last = their_last if is_lstm else (their_last,)
    assert_close(outputs, theirs, "outputs")
    for a, b in zip(last, their_last):
        assert_close(a, b[0], "last state")
    weights = torch.randn(outputs.shape, generator=rng, dtype=F64)
    ((outputs * weights).sum() + sum(s.sum() for s in last)).backward()
    ((theirs * weights).sum() + sum(s.sum() for s in their_last)).backward()
    assert_close(x.grad, x_twin.grad, "grad x")
    assert_close(cell.weight_hh.grad, twin.weight_hh_l0.grad.T, "grad weight_hh through time")
    if given:
        for a, b in zip(states, twin_states):
            assert_close(a.grad, b.grad[0], "grad initial state")


def make_clip_parameters(seed: int, layout: list[tuple[tuple[int, ...], bool]], scale: float):
    rng = seeded(seed)
    ours, theirs = [], []
    for shape, has_grad in layout:
        p = torch.randn(*shape, generator=rng, dtype=F64, requires_grad=True)
        q = p.detach().clone().requires_grad_()
        if has_grad:
            p.grad = scale * torch.randn(*shape, generator=rng, dtype=F64)
            q.grad = p.grad.clone()
        ours.append(p)
        theirs.append(q)
    return ours, theirs


CLIP_CASES = [
    ([((3,), True)], 0.1, 1.0),
    ([((3,), True)], 3.0, 1.0),
    ([((4, 3), True), ((3,), False), ((2, 2), True)], 2.0, 0.5),
    ([((4, 3), True), ((3,), True)], 0.01, 5.0),
    ([((2,), False), ((5, 2), True), ((5,), True), ((1,), False)], 1.0, 2.0),
    ([((50, 20), True), ((20,), True)], 1.0, 1e-3),
    ([((1,), True)], 0.0, 1.0),
]


@pytest.mark.parametrize("layout,scale,max_norm", CLIP_CASES)
@pytest.mark.parametrize("as_generator", [False, True])
def test_clip_grad_norm_matches_pytorch(layout, scale, max_norm, as_generator):
    ours, theirs = make_clip_parameters(len(layout) * 7 + int(scale * 100), layout, scale)
    argument = (p for p in ours) if as_generator else ours
    total = clip_grad_norm(argument, max_norm)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm)
    assert type(total) is torch.Tensor and total.dtype == F64 and total.shape == ()
    assert_close(total, expected, "total norm")
    for p, q in zip(ours, theirs):
        if q.grad is None:
            assert p.grad is None
        else:
            assert_close(p.grad, q.grad, "clipped gradient")


def test_clip_grad_norm_without_any_gradient_returns_zero():
    params = [torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)]
    assert float(clip_grad_norm(params, 1.0)) == 0.0
    assert all(p.grad is None for p in params)


@pytest.mark.parametrize("cls,gates", [(RNNCell, 1), (GRUCell, 3), (LSTMCell, 4)])
def test_parameters_follow_the_notes_layout_and_init(cls, gates):
    cell = cls(3, 25)
    shapes = {name: tuple(p.shape) for name, p in cell.named_parameters()}
    assert shapes == {"weight_xh": (3, gates * 25), "weight_hh": (25, gates * 25),
                      "bias_xh": (gates * 25,), "bias_hh": (gates * 25,)}
    bound = 1 / math.sqrt(25)
    for param in cell.parameters():
        assert param.abs().max() <= bound
        assert param.max() > bound / 2 and param.min() < -bound / 2
    first = [p.detach().clone() for p in cell.parameters()]
    cell.reset_parameters(seeded(3))
    again = [p.detach().clone() for p in cell.parameters()]
    cell.reset_parameters(seeded(3))
    assert all(torch.equal(a, p) for a, p in zip(again, cell.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(first, again))


# ------------------------------------------------------------------- assign_parameters
class _Named(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight_hh = nn.Parameter(torch.zeros(2, 6))
        self.plain = torch.zeros(3)


def test_assign_parameters_installs_float64_values_in_the_same_parameter():
    module = _Named()
    param = module.weight_hh
    param.grad = torch.ones(2, 6)
    value = torch.arange(12, dtype=F64).reshape(2, 6)
    assign_parameters(module, {"weight_hh": value})
    assert module.weight_hh is param and param.dtype == F64 and param.grad is None
    assert torch.equal(param.detach(), value)
    value += 1
    assert not torch.equal(param.detach(), value), "the values are copied"


@pytest.mark.parametrize("module,values,layouts,message", [
    (_Named(), {"weight_xh": torch.zeros(1)}, None,
     "_Named has no parameter weight_xh: name your nn.Parameter exactly weight_xh"),
    (_Named(), {"weight_hh": torch.zeros(6, 2)}, {"weight_hh": "(hidden_size, 3*hidden_size)"},
     "_Named.weight_hh has shape (2, 6), expected (6, 2): the layout is "
     "(hidden_size, 3*hidden_size)"),
    (_Named(), {"weight_hh": torch.zeros(6)}, None,
     "_Named.weight_hh has shape (2, 6), expected (6,)"),
    (_Named(), {"plain": torch.zeros(3)}, None,
     "_Named.plain is a Tensor, not an nn.Parameter"),
    (object(), {"weight_hh": torch.zeros(1)}, None, "object is not a torch.nn.Module"),
])
def test_assign_parameters_explains_mistakes(module, values, layouts, message):
    with pytest.raises(ParameterMismatch) as caught:
        assign_parameters(module, values, layouts)
    assert str(caught.value).startswith(message), str(caught.value)


# ------------------------------------------------------------------------ grading checks
def chapter_checks():
    return load_checks_namespace(CHECKS_PATH.read_text(), str(CHECKS_PATH))


def test_hidden_cases_cover_the_edge_cases_of_the_issue():
    checks = {check.name: check for check in chapter_checks().checks}
    for name in ("RNNCell", "GRUCell", "LSTMCell"):
        cases = checks[name].cases
        assert any(case["N"] == 1 for case in cases), name
        assert any(case["input"] != case["hidden"] for case in cases), name
        outputs = {output.name for output in checks[name].outputs}
        assert {"grad_x", "grad_h0", "grad_weight_xh", "grad_weight_hh", "grad_bias_xh",
                "grad_bias_hh"} <= outputs
    layer = checks["RecurrentLayer"].cases
    assert {case["T"] for case in layer} >= {1, 7}
    assert {case["batch_first"] for case in layer} == {False, True}
    assert {case["state"] for case in layer} == {"tensor", "pair"}
    clip = checks["clip_grad_norm"].cases
    assert any(not has_grad for case in clip for _, has_grad in case["params"])
    assert any(case.get("generator") for case in clip)
    norms = []
    for index, case in enumerate(clip):
        params, _ = make_clip_parameters(index, case["params"], case["scale"])
        norms.append((float(clip_grad_norm(params, math.inf)), case["max_norm"]))
    assert any(norm < max_norm for norm, max_norm in norms), "a case below the threshold"
    assert any(norm > max_norm for norm, max_norm in norms), "a case above the threshold"


def test_runtime_trap_leaves_the_allowed_api_alone():
    from autograder.child import _forbidden_functions

    found = _forbidden_functions(list(chapter_checks().forbidden))
    allowed = [torch.tanh, torch.sigmoid, torch.relu, torch.matmul, torch.addmm, torch.stack,
               torch.cat, torch.chunk, torch.sqrt, torch.zeros, torch.Tensor.backward,
               torch.Tensor.chunk, torch.Tensor.unbind, torch.Tensor.mul_, torch.Tensor.norm,
               torch.nn.functional.linear, torch.nn.functional.cross_entropy,
               torch.nn.init.uniform_, torch.autograd.backward]
    assert [f for f in allowed if f in found] == []
    assert torch.lstm_cell in found and torch.nn.utils.clip_grad_norm_ in found


def test_grader_names_a_misnamed_parameter(grade_file, tmp_path):
    code = '''
class GRUCell(GRUCell):
    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.weight_ih = self.weight_xh
        del self.weight_xh
'''
    results = grade_file(CHAPTER, notebook_with_extra_cell(CHAPTER, code,
                                                           tmp_path / f"{CHAPTER}.ipynb"))
    failed = failed_items(results)
    assert failed and all(item.startswith("GRUCell: ") for item in failed)
    outputs = [test["output"] for test in results["tests"] if test["status"] == "failed"]
    assert all("GRUCell has no parameter weight_xh: name your nn.Parameter exactly "
               "weight_xh" in output for output in outputs), outputs[0]


def test_grader_rejects_pytorch_cells_and_clipping_but_not_autograd(grade_file, tmp_path):
    code = '''
class LSTMCell(LSTMCell):
    def forward(self, x, state=None):
        twin = torch.nn.LSTMCell(self.input_size, self.hidden_size)
        return super().forward(x, state)
from torch.nn.utils import clip_grad_norm_
def clip_grad_norm(parameters, max_norm):
    return clip_grad_norm_(parameters, max_norm)
'''
    results = grade_file(CHAPTER, notebook_with_extra_cell(CHAPTER, code,
                                                           tmp_path / f"{CHAPTER}.ipynb"))
    failed = failed_items(results)
    assert {item.split(":")[0] for item in failed} == {"LSTMCell", "clip_grad_norm"}
    messages = [test["output"] for test in results["tests"] if test["status"] == "failed"]
    assert all("uses API this chapter asks you to write yourself" in m for m in messages)
    assert any("torch.nn.LSTMCell" in m for m in messages)
    assert any("torch.nn.utils.clip_grad_norm_" in m for m in messages)
