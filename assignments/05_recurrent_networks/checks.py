"""Hidden checks of chapter 05: RNN, GRU and LSTM cells, the unrolled layer, gradient clipping.

Never shipped to students. The students write ``nn.Module`` classes and autograd computes the
gradients, so a cell check installs seeded float64 values into the student's parameters by
name (``assign_parameters``, which explains a missing or misshapen parameter), runs the cell,
back-propagates a seeded loss ``sum(output * weights)``, and grades the output, the gradient
with respect to the input, to the initial state and to each parameter as separate items.
"""

import math

import torch
from torch import nn

from autograder.checks import Check, Output
from autograder.kit import assign_parameters, noncontiguous, randn, record_grads

_RECURRENT_CLASSES = (
    "RNNBase",
    "RNNCellBase",
    "RNN",
    "RNNCell",
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
)

# The recurrent modules and kernels and the clipping utilities are what the students write;
# autograd (Tensor.backward, torch.autograd) and torch.optim stay allowed.
FORBIDDEN = (
    *(f"torch.nn.{name}" for name in _RECURRENT_CLASSES),
    *(f"torch.nn.modules.{name}" for name in _RECURRENT_CLASSES),
    "torch.nn.modules.rnn",
    "torch.nn.quantizable",
    "torch.ao.nn.quantizable",
    "torch.rnn_tanh",
    "torch.rnn_relu",
    "torch.rnn_tanh_cell",
    "torch.rnn_relu_cell",
    "torch.gru",
    "torch.gru_cell",
    "torch.lstm",
    "torch.lstm_cell",
    "torch.quantized_rnn_tanh_cell",
    "torch.quantized_rnn_relu_cell",
    "torch.quantized_gru_cell",
    "torch.quantized_lstm_cell",
    "torch._VF",
    "torch.ops",
    "torch.nn.utils.clip_grad",
    "torch.nn.utils.clip_grad_norm_",
    "torch.nn.utils.clip_grad_norm",
    "torch.nn.utils.clip_grad_value_",
    "torch.nn.utils.clip_grads_with_norm_",
    "torch.nn.utils.get_total_norm",
)

PARAMETER_NAMES = ("weight_xh", "weight_hh", "bias_xh", "bias_hh")
GATES = {"RNNCell": 1, "GRUCell": 3, "LSTMCell": 4}


class BadInitialization(Exception):
    """reset_parameters (or __init__) left a parameter outside the documented distribution."""


def layouts_of(cell_name):
    """Parameter name -> layout in words, shown when a student's shape is wrong."""
    k = GATES[cell_name]
    width = "hidden_size" if k == 1 else f"{k}*hidden_size"
    return {
        "weight_xh": f"(input_size, {width})",
        "weight_hh": f"(hidden_size, {width})",
        "bias_xh": f"({width},)",
        "bias_hh": f"({width},)",
    }


def parameter_shapes(cell_name, input_size, hidden_size):
    width = GATES[cell_name] * hidden_size
    return {
        "weight_xh": (input_size, width),
        "weight_hh": (hidden_size, width),
        "bias_xh": (width,),
        "bias_hh": (width,),
    }


def seeded_parameters(rng, cell_name, input_size, hidden_size):
    shapes = parameter_shapes(cell_name, input_size, hidden_size)
    return {name: 0.7 * randn(rng, *shape) for name, shape in shapes.items()}


def check_initialization(make_cell, cell_name, input_size):
    """Raises BadInitialization unless a fresh cell, and the same cell after zeroing and
    reset_parameters(), hold parameters ~ U(-1/sqrt(H), 1/sqrt(H)); returns True otherwise.
    The draw is the student's own (global RNG, not seeded), so the test must hold for any draw:
    with H = 256 every parameter has at least 256 entries, and a correct uniform draw stays
    inside half the bound on one side with probability 2 * 0.75**256 < 1e-31."""
    hidden_size = 256
    bound = 1.0 / math.sqrt(hidden_size)
    shapes = parameter_shapes(cell_name, input_size, hidden_size)
    cell = make_cell(input_size, hidden_size)
    for moment in ("after __init__", "after reset_parameters()"):
        if moment != "after __init__":
            with torch.no_grad():
                for name in PARAMETER_NAMES:
                    getattr(cell, name).zero_()
            cell.reset_parameters()
        for name in PARAMETER_NAMES:
            param = getattr(cell, name, None)
            if not isinstance(param, nn.Parameter) or tuple(param.shape) != shapes[name]:
                # raises the same explanation as when the check sets the parameters
                assign_parameters(cell, {name: torch.zeros(shapes[name])}, layouts_of(cell_name))
            values = param.detach().double()
            where = f"{cell_name}({input_size}, {hidden_size}).{name} {moment}"
            if not torch.isfinite(values).all() or values.abs().max() > bound * (1 + 1e-6):
                raise BadInitialization(
                    f"{where} has values outside +-1/sqrt(hidden_size) = +-{bound:.4f}"
                )
            if values.max() < bound / 2 or values.min() > -bound / 2:
                raise BadInitialization(
                    f"{where} does not look uniform on "
                    f"[-1/sqrt(hidden_size), 1/sqrt(hidden_size)]: all "
                    f"values lie within [{values.min():.3g}, "
                    f"{values.max():.3g}]"
                )
    return True


# ------------------------------------------------------------------ q1-q3: the three cells
def make_cell_exercise(cell_name):
    is_lstm = cell_name == "LSTMCell"

    def exercise(api, case, rng, out):
        """The cell is called twice with a state and twice without, on different inputs; the
        second call of each is graded (parameter gradients cleared in between), so a state
        kept on the cell between calls is caught. Each part fails only its own items."""
        input_size, hidden_size, n = case["input"], case["hidden"], case["N"]
        extra = {"nonlinearity": case["nonlinearity"]} if "nonlinearity" in case else {}

        def make_cell(i, h):
            return getattr(api, cell_name)(i, h, **extra)

        cell = make_cell(input_size, hidden_size)
        params = seeded_parameters(rng, cell_name, input_size, hidden_size)
        assign_parameters(cell, params, layouts_of(cell_name))
        rounds = []
        for _ in range(2):
            x = randn(rng, n, input_size)
            if case.get("noncontiguous"):
                x = noncontiguous(x)
            h0 = randn(rng, n, hidden_size)
            c0 = randn(rng, n, hidden_size) if is_lstm else None
            rounds.append(
                (
                    x.requires_grad_(True),
                    h0.requires_grad_(True),
                    c0.requires_grad_(True) if is_lstm else None,
                    randn(rng, n, hidden_size),
                    randn(rng, n, hidden_size),
                )
            )
        graded = (
            "h",
            "c",
            "grad_x",
            "grad_h0",
            "grad_c0",
            *("grad_" + name for name in PARAMETER_NAMES),
        )
        for x, h0, c0, weights_h, weights_c in rounds:
            out.watch(x=x, h0=h0, **({"c0": c0} if is_lstm else {}))
            for name in PARAMETER_NAMES:
                getattr(cell, name).grad = None
            called = False
            with out.part(*graded):  # the forward call: if it raises, nothing is graded
                h, c = cell(x, (h0, c0)) if is_lstm else (cell(x, h0), None)
                called = True
            if not called:
                continue
            out["h"] = h
            if is_lstm:
                out["c"] = c
            with out.part(*graded[2:]):  # the gradients, through the returned state
                loss = (h * weights_h).sum() + ((c * weights_c).sum() if is_lstm else 0)
                loss.backward()
                leaves = {"grad_x": x, "grad_h0": h0, "grad_c0": c0}
                leaves.update({"grad_" + name: getattr(cell, name) for name in PARAMETER_NAMES})
                record_grads(out, leaves)
        for x, *_ in rounds:
            with out.part("without_state"), torch.no_grad():
                fresh = cell(x.detach())
                out["without_state"] = torch.cat(list(fresh), dim=1) if is_lstm else fresh
        with out.part("init"):
            out["init"] = torch.tensor(check_initialization(make_cell, cell_name, input_size))

    return exercise


CELL_CASES = (
    {"N": 1, "input": 1, "hidden": 1},
    {"N": 4, "input": 3, "hidden": 5},
    {"N": 3, "input": 6, "hidden": 2},
    {"N": 5, "input": 4, "hidden": 4, "noncontiguous": True},
)
RNN_CASES = CELL_CASES + (
    {"N": 1, "input": 2, "hidden": 3, "nonlinearity": "relu"},
    {"N": 6, "input": 5, "hidden": 3, "nonlinearity": "relu"},
)

GRADIENT_HINT = (
    "Autograd computes this gradient from your forward pass: if the forward "
    "items pass, look for .detach(), .data, torch.no_grad() or a tensor rebuilt "
    "with torch.tensor(...) on the way from {what} to the output."
)


def cell_outputs(cell_name, forward_hint, state_names=("h0",)):
    outputs = [Output("h", hint=forward_hint)]
    forward = ("h",)
    if cell_name == "LSTMCell":
        outputs.append(
            Output(
                "c",
                hint="c' = f * c + i * g, with f and i sigmoids and g a "
                "tanh of their slices of the pre-activations.",
            )
        )
        forward = ("h", "c")
    outputs.append(Output("grad_x", points=0.5, hint=GRADIENT_HINT.format(what="x"), needs=forward))
    for state in state_names:
        outputs.append(
            Output(
                "grad_" + state,
                points=0.5,
                needs=forward,
                hint=GRADIENT_HINT.format(what=f"the initial state {state}"),
            )
        )
    for name in PARAMETER_NAMES:
        outputs.append(
            Output(
                "grad_" + name,
                points=0.5,
                needs=forward,
                hint=GRADIENT_HINT.format(what=f"self.{name}"),
            )
        )
    outputs.append(
        Output(
            "without_state",
            points=0.5,
            needs=forward,
            hint="With no state given the cell starts from zeros of shape "
            "(N, hidden_size) in x's dtype (x.new_zeros(...)); for the LSTM "
            "both h and c are zeros. This item compares the returned state "
            "(h, or h and c side by side).",
        )
    )
    outputs.append(
        Output(
            "init",
            points=0.5,
            hint="__init__ creates the four nn.Parameters and calls "
            "reset_parameters(), which draws every entry uniformly from "
            "[-1/sqrt(hidden_size), 1/sqrt(hidden_size)] (hidden_size, not "
            "input_size).",
        )
    )
    return tuple(outputs)


# ---------------------------------------------------------------------- q4: RecurrentLayer
class _ProbeCell(nn.Module):
    """A cell of the grader's own with a single tensor state: h' = tanh(x A + h B + b) + h/2.
    Asserts that it receives one time step of the batch, (N, input_size)."""

    def __init__(self, rng, batch, input_size, hidden_size):
        super().__init__()
        self.batch, self.input_size, self.hidden_size = batch, input_size, hidden_size
        self.a = nn.Parameter(0.6 * randn(rng, input_size, hidden_size))
        self.b = nn.Parameter(0.6 * randn(rng, hidden_size, hidden_size))
        self.bias = nn.Parameter(0.6 * randn(rng, hidden_size))

    def check_input(self, x):
        expected = (self.batch, self.input_size)
        assert tuple(x.shape) == expected, (
            f"the cell received an input of shape {tuple(x.shape)}, expected one time step "
            f"(N, input_size) = {expected}: slice the sequence along its time dimension"
        )

    def zeros(self, x):
        return x.new_zeros(x.shape[0], self.hidden_size)

    def forward(self, x, h=None):
        self.check_input(x)
        if h is None:
            h = self.zeros(x)
        return torch.tanh(x @ self.a + h @ self.b + self.bias) + 0.5 * h


class _ProbePairCell(_ProbeCell):
    """Like _ProbeCell with an LSTM-style tuple state (h, c):
    c' = c/2 + tanh(x A + h B + b), h' = tanh(c') * sigmoid(h)."""

    def forward(self, x, state=None):
        self.check_input(x)
        if state is None:
            state = (self.zeros(x), self.zeros(x))
        h, c = state
        c_next = 0.5 * c + torch.tanh(x @ self.a + h @ self.b + self.bias)
        return torch.tanh(c_next) * torch.sigmoid(h), c_next


def flat_state(state):
    """A tuple state as one tensor (N, 2*hidden_size); a tensor state as it is."""
    if isinstance(state, (tuple, list)):
        return torch.cat(list(state), dim=1)
    return state


def exercise_layer(api, case, rng, out):
    """The layer runs twice with a state and twice without, on different sequences; the second
    run of each is graded (the probe cell's gradients cleared in between)."""
    steps, n, input_size, hidden_size = case["T"], case["N"], case["input"], case["hidden"]
    pair = case["state"] == "pair"
    cell = (_ProbePairCell if pair else _ProbeCell)(rng, n, input_size, hidden_size)
    layer = api.RecurrentLayer(cell, batch_first=case["batch_first"])
    shape = (n, steps, input_size) if case["batch_first"] else (steps, n, input_size)
    out_shape = (n, steps, hidden_size) if case["batch_first"] else (steps, n, hidden_size)
    rounds = []
    for _ in range(2):
        x = randn(rng, *shape)
        if case.get("noncontiguous"):
            x = noncontiguous(x)
        h0 = randn(rng, n, hidden_size).requires_grad_(True)
        c0 = randn(rng, n, hidden_size).requires_grad_(True)
        rounds.append(
            (
                x.requires_grad_(True),
                h0,
                c0,
                randn(rng, *out_shape),
                randn(rng, n, 2 * hidden_size if pair else hidden_size),
            )
        )
    graded = ("outputs", "last_state", "grad_x", "grad_state", "grad_cell_parameters")
    for x, h0, c0, weights_outputs, weights_last in rounds:
        out.watch(x=x, h0=h0, c0=c0)
        for param in (cell.a, cell.b, cell.bias):
            param.grad = None
        called = False
        with out.part(*graded):  # the forward call: if it raises, nothing is graded
            outputs, last = layer(x, (h0, c0) if pair else h0)
            called = True
        if not called:
            continue
        out["outputs"] = outputs
        with out.part("last_state"):
            out["last_state"] = flat_state(last)
        with out.part(*graded[2:]):  # the gradients, through both returned values
            loss = (outputs * weights_outputs).sum() + (flat_state(last) * weights_last).sum()
            loss.backward()
            record_grads(out, {"grad_x": x})
            if pair and h0.grad is not None and c0.grad is not None:
                out["grad_state"] = torch.cat([h0.grad, c0.grad], dim=1)
            elif not pair:
                record_grads(out, {"grad_state": h0})
            grads = [p.grad for p in (cell.a, cell.b, cell.bias)]
            if all(g is not None for g in grads):
                out["grad_cell_parameters"] = torch.cat([g.flatten() for g in grads])
    for x, *_ in rounds:
        with out.part("without_state"), torch.no_grad():
            outputs, last = layer(x.detach())
            out["without_state"] = torch.cat([outputs.flatten(), flat_state(last).flatten()])


LAYER_CASES = (
    {"T": 1, "N": 1, "input": 2, "hidden": 3, "batch_first": False, "state": "tensor"},
    {"T": 7, "N": 4, "input": 3, "hidden": 5, "batch_first": False, "state": "tensor"},
    {"T": 7, "N": 4, "input": 3, "hidden": 5, "batch_first": True, "state": "tensor"},
    {"T": 1, "N": 3, "input": 2, "hidden": 2, "batch_first": True, "state": "tensor"},
    {"T": 5, "N": 2, "input": 4, "hidden": 3, "batch_first": True, "state": "pair"},
    {"T": 7, "N": 1, "input": 1, "hidden": 2, "batch_first": False, "state": "pair"},
    {"T": 1, "N": 2, "input": 3, "hidden": 2, "batch_first": False, "state": "pair"},
    {
        "T": 6,
        "N": 3,
        "input": 2,
        "hidden": 4,
        "batch_first": True,
        "state": "tensor",
        "noncontiguous": True,
    },
)


# ---------------------------------------------------------------------- q5: clip_grad_norm
def exercise_clip(api, case, rng, out):
    params, originals = [], []
    for shape, has_grad in case["params"]:
        p = randn(rng, *shape).requires_grad_(True)
        if has_grad:
            p.grad = case["scale"] * randn(rng, *shape)
            originals.append(p)
        params.append(p)
    argument = (p for p in params) if case.get("generator") else params
    total = api.clip_grad_norm(argument, case["max_norm"])
    if isinstance(total, (int, float)) and not isinstance(total, bool):
        total = torch.tensor(float(total), dtype=torch.float64)
    out["total_norm"] = total
    out["grads"] = torch.cat([p.grad.flatten() for p in originals])
    out["grad_none"] = torch.tensor([p.grad is None for p in params])


CLIP_CASES = (
    {"params": [((3,), True)], "scale": 0.1, "max_norm": 1.0},
    {"params": [((3,), True)], "scale": 3.0, "max_norm": 1.0},
    {"params": [((4, 3), True), ((3,), True), ((2, 2), True)], "scale": 0.05, "max_norm": 5},
    {"params": [((4, 3), True), ((3,), False), ((2, 2), True)], "scale": 2.0, "max_norm": 0.5},
    {
        "params": [((2,), False), ((5, 2), True), ((5,), True), ((1,), False)],
        "scale": 1.0,
        "max_norm": 2.0,
        "generator": True,
    },
    {"params": [((6, 4), True), ((4,), True)], "scale": 0.2, "max_norm": 100.0, "generator": True},
)


CHECKS = [
    Check(
        name="RNNCell",
        question="q1",
        uses=("RNNCell",),
        exercise=make_cell_exercise("RNNCell"),
        cases=RNN_CASES,
        timeout_s=20.0,
        outputs=cell_outputs(
            "RNNCell",
            "h' = act(x @ weight_xh + bias_xh + h @ weight_hh + "
            "bias_hh), act = tanh, or relu when "
            "nonlinearity='relu'; both biases are added.",
        ),
    ),
    Check(
        name="GRUCell",
        question="q2",
        uses=("GRUCell",),
        exercise=make_cell_exercise("GRUCell"),
        cases=CELL_CASES,
        timeout_s=20.0,
        outputs=cell_outputs(
            "GRUCell",
            "Gate slices in the order r, z, n; n = tanh(x_n + r * "
            "(h @ W_hn + b_hn)), the reset gate multiplies the "
            "hidden projection and its bias; h' = (1 - z) * n + "
            "z * h.",
        ),
    ),
    Check(
        name="LSTMCell",
        question="q3",
        uses=("LSTMCell",),
        exercise=make_cell_exercise("LSTMCell"),
        cases=CELL_CASES,
        timeout_s=20.0,
        outputs=cell_outputs(
            "LSTMCell",
            "Gate slices in the order i, f, g, o; i, f, o are "
            "sigmoids, g a tanh; h' = o * tanh(c').",
            state_names=("h0", "c0"),
        ),
    ),
    Check(
        name="RecurrentLayer",
        question="q4",
        uses=("RecurrentLayer",),
        exercise=exercise_layer,
        cases=LAYER_CASES,
        timeout_s=20.0,
        outputs=(
            Output(
                "outputs",
                hint="Stack the hidden state of every step along the time "
                "dimension: (T, N, H), or (N, T, H) with batch_first; for "
                "a tuple state (h, c) stack h.",
            ),
            Output(
                "last_state",
                hint="Return the state after the LAST step, exactly as the "
                "cell returned it (a tuple (h, c) for an LSTM).",
            ),
            Output("grad_x", points=0.5, hint=GRADIENT_HINT.format(what="x"), needs=("outputs",)),
            Output(
                "grad_state",
                points=0.5,
                needs=("outputs",),
                hint=GRADIENT_HINT.format(
                    what="the initial state (pass it to the cell at the first step)"
                ),
            ),
            Output(
                "grad_cell_parameters",
                points=0.5,
                needs=("outputs",),
                hint=GRADIENT_HINT.format(
                    what="the cell's parameters, through every "
                    "step (do not detach the state between "
                    "steps)"
                ),
            ),
            Output(
                "without_state",
                points=0.5,
                hint="With no initial state, pass None to the cell at the first step: "
                "the cell knows how to start from zeros.",
            ),
        ),
    ),
    Check(
        name="clip_grad_norm",
        question="q5",
        uses=("clip_grad_norm",),
        exercise=exercise_clip,
        cases=CLIP_CASES,
        outputs=(
            Output(
                "total_norm",
                hint="The total norm is sqrt of the sum of squares of ALL "
                "gradient entries, before clipping, as a 0-dim tensor "
                "in the gradients' dtype (or a Python float).",
            ),
            Output(
                "grads",
                rtol=1e-5,
                hint="Scale every gradient in place by "
                "max_norm / (total_norm + 1e-6) when that factor is "
                "below 1, and leave them unchanged otherwise; "
                "iterate over `parameters` only once (it may be a "
                "generator).",
            ),
            Output(
                "grad_none",
                points=0.5,
                hint="Skip parameters whose .grad is None and leave it None.",
            ),
        ),
    ),
]
