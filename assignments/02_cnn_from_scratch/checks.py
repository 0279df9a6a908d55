"""Hidden checks of chapter 02: concept questions, Conv2dLoop, Conv2d, MaxPool2d, Flatten, CNN.

Never shipped to students. Every check runs in float64 on inputs drawn from its own seeded
generator, sets parameters directly, and records each graded output separately.

Isolation of the CNN check: a CNN builds its own layers from the student's classes, so a
probe cannot be handed in as in chapter 01. Instead the check builds the student's CNN, grades
the layer list it made ("architecture": kinds and settings, read from the attributes the given
constructors store), then replaces every layer by a trusted probe of the same kind and
settings defined below, and grades forward, backward, optimizer_step and reset_params through
the probes. A bug inside Conv2d or MaxPool2d therefore never costs CNN items; a CNN that builds
the wrong layers loses "architecture" and the items whose shapes or values that changes. The
remaining dependency: CNN construction calls the student's constructors, which call
``init_params``; an unwritten ``Conv2dLoop.init_params`` or ``Linear.init_params`` fails every
CNN item with its NotImplementedError.
"""

import torch

from autograder.checks import Check, Output
from autograder.kit import (
    FROM_SCRATCH,
    ProbeFlatten,
    ProbeLinear,
    ProbeReLU,
    as_ints,
    exercise_container,
    forward_backward_twice,
    gaussian_problem,
    noncontiguous,
    randint,
    randn,
    uniform_problem,
)

# From scratch: no autograd and no library convolution or pooling. Tensor.unfold and
# Tensor.as_strided stay allowed (students write im2col with them); torch.nn covers
# torch.nn.functional.{conv2d, unfold, fold, max_pool2d, pad} and nn.Conv2d / nn.MaxPool2d.
FORBIDDEN = (
    *FROM_SCRATCH,
    "torch.conv1d",
    "torch.conv2d",
    "torch.conv3d",
    "torch.conv_tbc",
    "torch.conv_transpose1d",
    "torch.conv_transpose2d",
    "torch.conv_transpose3d",
    "torch.convolution",
    "torch.cudnn_convolution",
    "torch.miopen_convolution",
    "torch.mkldnn_convolution",
    "torch.max_pool1d",
    "torch.max_pool1d_with_indices",
    "torch.max_pool2d",
    "torch.max_pool3d",
    "torch.mkldnn_max_pool2d",
    "torch.quantized_max_pool2d",
    "torch.adaptive_max_pool1d",
    "torch.avg_pool1d",
)


def output_size(size, kernel_size, stride, padding):
    return (size + 2 * padding - kernel_size) // stride + 1


# ------------------------------------------------------------------ q1: concept questions
def exercise_output_size(api, case, rng, out):
    out["sizes"] = as_ints([api.conv_output_size(*row) for row in case["rows"]], "conv_output_size")


def exercise_param_counts(api, case, rng, out):
    c, f, k, h, w = case["C"], case["F"], case["k"], case["H"], case["W"]
    # the fully connected layer that maps the same image to an output of the same size
    h_out, w_out = output_size(h, k, 1, k // 2), output_size(w, k, 1, k // 2)
    with out.part("conv"):
        out["conv"] = as_ints([api.conv_param_count(c, f, k)], "conv_param_count")
    with out.part("linear"):
        out["linear"] = as_ints(
            [api.linear_param_count(c * h * w, f * h_out * w_out)], "linear_param_count"
        )


def exercise_receptive_field(api, case, rng, out):
    out["field"] = as_ints(
        [api.receptive_field([tuple(layer) for layer in stack]) for stack in case["stacks"]],
        "receptive_field",
    )


# ----------------------------------------------------------------- q2, q3: the convolution
def make_conv_exercise(class_name):
    def exercise(api, case, rng, out):
        """Two forward/backward rounds on different inputs; the second is graded."""
        n, c, f, h, w = case["N"], case["C"], case["F"], case["H"], case["W"]
        k, s, p = case["k"], case["stride"], case["padding"]
        layer = getattr(api, class_name)(c, f, k, s, p)
        layer.weight = randn(rng, f, c, k, k)
        layer.bias = randn(rng, f)
        rounds = []
        for _ in range(2):
            x = randn(rng, n, c, h, w)
            dy = randn(rng, n, f, output_size(h, k, s, p), output_size(w, k, s, p))
            if case.get("noncontiguous"):
                x, dy = noncontiguous(x), noncontiguous(dy)
            rounds.append(((x,), dy))
        forward_backward_twice(out, layer, tuple(rounds), grads=("grad_weight", "grad_bias"))

    return exercise


def exercise_conv_init(api, case, rng, out):
    """init_params(std) on Conv2dLoop(50, 100, 7): 245000 weights, called twice.

    The weight is graded with ``gaussian_problem`` (a correct draw fails with probability
    below 1e-18 per test, computation in its docstring; union over 2 cases x 2 calls x 3 tests:
    below 1e-16); the bias must be exactly zero, of shape (out_channels,).
    """
    layer = api.Conv2dLoop(50, 100, 7)
    problems = {"weight": "", "bias": ""}
    for std in case["stds"]:
        layer.init_params(std, generator=rng)
        weight, bias = layer.weight, layer.bias
        found = {
            "weight": (
                f"has shape {tuple(weight.shape)}, expected (out_channels, "
                f"in_channels, kernel_size, kernel_size)"
                if tuple(weight.shape) != (100, 50, 7, 7)
                else gaussian_problem(weight, std)
            ),
            "bias": (
                ""
                if tuple(bias.shape) == (100,) and not bias.any()
                else "is not zeros of shape (out_channels,) = (100,)"
            ),
        }
        for name, problem in found.items():
            if problem and not problems[name]:
                problems[name] = (
                    f"after init_params({std}) on Conv2dLoop(50, 100, 7) the {name} {problem}"
                )
    for name, problem in problems.items():
        if problem:
            out.fail(name, problem)
        out[name] = torch.tensor(True)


CONV_CASES = (
    {"N": 1, "C": 1, "F": 1, "H": 5, "W": 5, "k": 3, "stride": 1, "padding": 0},
    {"N": 2, "C": 3, "F": 4, "H": 7, "W": 9, "k": 3, "stride": 1, "padding": 1},
    {"N": 2, "C": 2, "F": 3, "H": 9, "W": 8, "k": 3, "stride": 2, "padding": 1},
    {"N": 3, "C": 4, "F": 2, "H": 11, "W": 7, "k": 5, "stride": 3, "padding": 2},
    {"N": 2, "C": 3, "F": 5, "H": 6, "W": 5, "k": 1, "stride": 1, "padding": 0},
    {"N": 1, "C": 2, "F": 3, "H": 5, "W": 6, "k": 1, "stride": 2, "padding": 1},
    {
        "N": 2,
        "C": 3,
        "F": 2,
        "H": 8,
        "W": 8,
        "k": 5,
        "stride": 1,
        "padding": 2,
        "noncontiguous": True,
    },
    {"N": 4, "C": 2, "F": 3, "H": 10, "W": 7, "k": 2, "stride": 2, "padding": 0},
    {"N": 2, "C": 1, "F": 2, "H": 7, "W": 5, "k": 3, "stride": 3, "padding": 0},
    {
        "N": 3,
        "C": 2,
        "F": 4,
        "H": 9,
        "W": 10,
        "k": 3,
        "stride": 2,
        "padding": 2,
        "noncontiguous": True,
    },
)


def conv_check(class_name, question):
    # timeout: a scalar implementation (seven nested Python loops, one multiply-add per
    # iteration) needs about 11 s for all cases on a loaded 2-core machine, inside the sandbox
    return Check(
        name=class_name,
        question=question,
        uses=(class_name,),
        exercise=make_conv_exercise(class_name),
        cases=CONV_CASES,
        pattern_axes=("C", "k", "stride", "padding", "noncontiguous"),
        timeout_s=60.0,
        outputs=(
            Output(
                "y",
                hint="y[n, f, i, j] = bias[f] + sum over c, u, v of weight[f, c, u, v] * "
                "xpadded[n, c, i*stride + u, j*stride + v]: a cross-correlation "
                "(no kernel flip), zero padding on all four sides.",
            ),
            Output(
                "dx",
                needs=("y",),
                hint="Every output position sends dupstream * weight back to the "
                "window it read, windows overlap so contributions add up, and the "
                "padding is cropped off at the end; rows never read get zero.",
            ),
            Output(
                "grad_weight",
                needs=("y",),
                hint="grad_weight[f, c, u, v] sums dupstream[n, f, i, j] * xpadded[n, c, "
                "i*stride + u, j*stride + v] over n, i, j, with the x of the LAST "
                "forward; set it (=), never add to the previous call's gradient.",
            ),
            Output(
                "grad_bias",
                hint="grad_bias has shape (F,): sum dupstream over the batch "
                "and both spatial dimensions; set it (=), never add to "
                "the previous call's gradient.",
            ),
        ),
    )


# ----------------------------------------------------------------------- q4: max pooling
def exercise_maxpool(api, case, rng, out):
    n, c, h, w = case["N"], case["C"], case["H"], case["W"]
    k, s, p = case["k"], case["stride"], case["padding"]
    layer = api.MaxPool2d(k, s, p)
    rounds = []
    for _ in range(2):
        if case.get("ties"):
            x = randint(rng, 3, n, c, h, w).to(torch.float64)
        else:
            x = randn(rng, n, c, h, w) + case.get("shift", 0.0)
        dy = randn(rng, n, c, output_size(h, k, s, p), output_size(w, k, s, p))
        if case.get("noncontiguous"):
            x, dy = noncontiguous(x), noncontiguous(dy)
        rounds.append(((x,), dy))
    forward_backward_twice(out, layer, tuple(rounds))


MAXPOOL_CASES = (
    {"N": 1, "C": 1, "H": 4, "W": 4, "k": 2, "stride": 2, "padding": 0},
    {"N": 2, "C": 3, "H": 7, "W": 9, "k": 3, "stride": 2, "padding": 1},
    {"N": 2, "C": 2, "H": 8, "W": 7, "k": 3, "stride": 1, "padding": 1},
    {"N": 3, "C": 2, "H": 11, "W": 6, "k": 2, "stride": 3, "padding": 1},
    {"N": 2, "C": 3, "H": 9, "W": 10, "k": 5, "stride": 2, "padding": 2, "noncontiguous": True},
    {"N": 2, "C": 2, "H": 7, "W": 5, "k": 1, "stride": 2, "padding": 0},
    {"N": 2, "C": 3, "H": 6, "W": 7, "k": 3, "stride": 2, "padding": 1, "shift": -3.0},
    {"N": 2, "C": 2, "H": 6, "W": 8, "k": 3, "stride": 2, "padding": 1, "ties": True},
)


# --------------------------------------------- q5: chapter 01's layers, copied in
def exercise_chapter01_layers(api, case, rng, out):
    """Chapter 01's Linear, ReLU and CrossEntropyLoss as copied into this notebook: each method
    twice in a row on different inputs (the second call graded), each in its own part.
    ``Linear.init_params`` is graded statistically on Linear(10, 20000), twice per case:
    ``gaussian_problem`` and ``uniform_problem`` fail a correct draw with probability below
    1e-18 per test (computations in their docstrings); union over 3 cases x 2 calls x 5
    tests: below 1e-16."""
    n, fan_in, fan_out, classes = case["N"], case["in"], case["out"], case["C"]
    linear = api.Linear(fan_in, fan_out)
    linear.weight, linear.bias = randn(rng, fan_in, fan_out), randn(rng, fan_out)
    forward_backward_twice(
        out,
        linear,
        tuple(((randn(rng, n, fan_in),), randn(rng, n, fan_out)) for _ in range(2)),
        y="Linear.y",
        dx="Linear.dx",
        grads=("grad_weight", "grad_bias"),
    )
    forward_backward_twice(
        out,
        api.ReLU(),
        tuple(((randn(rng, n, fan_in),), randn(rng, n, fan_in)) for _ in range(2)),
        y="ReLU.y",
        dx="ReLU.dx",
    )
    logits = tuple(
        (case["scale"] * randn(rng, n, classes), randint(rng, classes, n)) for _ in range(2)
    )
    forward_backward_twice(
        out,
        api.CrossEntropyLoss(),
        tuple((pair, None) for pair in logits),
        y="CrossEntropyLoss.loss",
        dx="CrossEntropyLoss.dlogits",
        input_names=("logits", "target"),
    )
    with out.part("Linear.init_params"):
        wide = api.Linear(10, 20000)
        for std in (case["std"], 2 * case["std"]):
            wide.init_params(std, generator=rng)
            for name, problem in (
                ("weight", gaussian_problem(wide.weight, std)),
                ("bias", uniform_problem(wide.bias, 0.0, 1.0)),
            ):
                if problem:
                    out.fail(
                        "Linear.init_params",
                        f"after init_params({std}) on Linear(10, 20000) the {name} {problem}",
                    )
        out["Linear.init_params"] = torch.tensor(True)


# ------------------------------------------------------------------ q5: Flatten and CNN
def exercise_flatten(api, case, rng, out):
    n, c, h, w = case["shape"]
    rounds = []
    for _ in range(2):
        x, dy = randn(rng, n, c, h, w), randn(rng, n, c * h * w)
        if case.get("noncontiguous"):
            x, dy = noncontiguous(x), noncontiguous(dy)
        rounds.append(((x,), dy))
    forward_backward_twice(out, api.Flatten(), tuple(rounds))


def _padded(x, padding, value):
    n, c, h, w = x.shape
    xp = x.new_full((n, c, h + 2 * padding, w + 2 * padding), value)
    xp[:, :, padding : padding + h, padding : padding + w] = x
    return xp


def _window(xp, u, v, stride, h_out, w_out):
    return xp[
        :, :, u : u + stride * (h_out - 1) + 1 : stride, v : v + stride * (w_out - 1) + 1 : stride
    ]


class _ProbeConv:
    """Trusted convolution with the settings of the layer it replaces (one term per tap)."""

    def __init__(self, settings, weight, bias):
        self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding = settings
        self.weight, self.bias = weight, bias
        self.init_calls = []

    def init_params(self, std=0.7071, generator=None):
        self.init_calls.append(float(std))

    def forward(self, x):
        k, s = self.kernel_size, self.stride
        self.xp = _padded(x, self.padding, 0.0)
        self.h_out = output_size(x.shape[2], k, s, self.padding)
        self.w_out = output_size(x.shape[3], k, s, self.padding)
        y = self.bias.reshape(1, -1, 1, 1).expand(x.shape[0], -1, self.h_out, self.w_out)
        for u in range(k):
            for v in range(k):
                window = _window(self.xp, u, v, s, self.h_out, self.w_out)
                y = y + torch.einsum("nchw,fc->nfhw", window, self.weight[:, :, u, v])
        return y

    def backward(self, dupstream):
        k, s, p = self.kernel_size, self.stride, self.padding
        dxp = torch.zeros_like(self.xp)
        self.grad_weight = torch.zeros_like(self.weight)
        for u in range(k):
            for v in range(k):
                window = _window(self.xp, u, v, s, self.h_out, self.w_out)
                self.grad_weight[:, :, u, v] = torch.einsum("nfhw,nchw->fc", dupstream, window)
                _window(dxp, u, v, s, self.h_out, self.w_out).add_(
                    torch.einsum("nfhw,fc->nchw", dupstream, self.weight[:, :, u, v])
                )
        self.grad_bias = dupstream.sum(dim=(0, 2, 3))
        return dxp[:, :, p : dxp.shape[2] - p, p : dxp.shape[3] - p]


class _ProbePool:
    """Trusted max pooling with the settings of the layer it replaces (first maximum wins)."""

    def __init__(self, settings):
        self.kernel_size, self.stride, self.padding = settings

    def forward(self, x):
        k, s, p = self.kernel_size, self.stride, self.padding
        xp = _padded(x, p, float("-inf"))
        self.shape = xp.shape
        self.h_out = output_size(x.shape[2], k, s, p)
        self.w_out = output_size(x.shape[3], k, s, p)
        best, self.which = None, None
        for u in range(k):
            for v in range(k):
                window = _window(xp, u, v, s, self.h_out, self.w_out)
                if best is None:
                    best, self.which = window, torch.zeros(window.shape, dtype=torch.int64)
                else:
                    better = window > best
                    best = torch.where(better, window, best)
                    self.which = torch.where(better, u * k + v, self.which)
        return best.clone()

    def backward(self, dupstream):
        k, s, p = self.kernel_size, self.stride, self.padding
        dxp = dupstream.new_zeros(self.shape)
        for u in range(k):
            for v in range(k):
                _window(dxp, u, v, s, self.h_out, self.w_out).add_(
                    dupstream * (self.which == u * k + v)
                )
        return dxp[:, :, p : dxp.shape[2] - p, p : dxp.shape[3] - p]


KINDS = ("Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear")


def _describe(api, layer):
    """One row per layer: kind code (1-based index in KINDS, 0 unknown) and its settings."""
    if isinstance(layer, api.Conv2d):
        settings = (
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            layer.stride,
            layer.padding,
        )
        return [1, *(int(v) for v in settings)]
    if isinstance(layer, api.MaxPool2d):
        return [3, 0, 0, int(layer.kernel_size), int(layer.stride), int(layer.padding)]
    if isinstance(layer, api.Linear):
        return [5, int(layer.in_features), int(layer.out_features), 0, 0, 0]
    if isinstance(layer, api.Flatten):
        return [4, 0, 0, 0, 0, 0]
    if isinstance(layer, api.ReLU):
        return [2, 0, 0, 0, 0, 0]
    return [0, 0, 0, 0, 0, 0]


def _probe(row, rng):
    kind, *settings = row
    if kind == 1:
        c, f, k = settings[0], settings[1], settings[2]
        return _ProbeConv(settings, 0.5 * randn(rng, f, c, k, k), randn(rng, f))
    if kind == 3:
        return _ProbePool(settings[2:])
    if kind == 5:
        fan_in, fan_out = settings[0], settings[1]
        return ProbeLinear(randn(rng, fan_in, fan_out) / fan_in**0.5, randn(rng, fan_out))
    if kind == 4:
        return ProbeFlatten()
    if kind == 2:
        return ProbeReLU()
    raise TypeError(
        "CNN.layers holds a layer that is none of Conv2d, ReLU, MaxPool2d, Flatten or Linear"
    )


def exercise_cnn(api, case, rng, out):
    c, hidden, classes, size, n = (
        case["C"],
        case["hidden"],
        case["classes"],
        case["size"],
        case["N"],
    )
    cnn = api.CNN(c, hidden, classes, size)
    rows = [_describe(api, layer) for layer in cnn.layers]
    out["architecture"] = torch.tensor(rows, dtype=torch.int64)
    probes = [_probe(row, rng) for row in rows]
    cnn.layers = list(probes)
    rounds = tuple((randn(rng, n, c, size, size), randn(rng, n, classes)) for _ in range(2))
    exercise_container(out, cnn, probes, rng, rounds, case["lr"], (case["std"], 2 * case["std"]))


CNN_CASES = (
    {"C": 1, "hidden": 2, "classes": 3, "size": 8, "N": 1, "lr": 0.1, "std": 0.5},
    {"C": 3, "hidden": 3, "classes": 5, "size": 12, "N": 2, "lr": 0.01, "std": 2.0},
    {"C": 2, "hidden": 4, "classes": 10, "size": 16, "N": 3, "lr": 1.0, "std": 1.0},
)


CHECKS = [
    Check(
        name="conv_output_size",
        question="q1",
        uses=("conv_output_size",),
        exercise=exercise_output_size,
        cases=(
            {"rows": [[5, 3, 1, 0], [32, 3, 1, 1], [28, 5, 1, 2], [7, 3, 2, 0], [16, 2, 2, 0]]},
            {"rows": [[8, 3, 2, 1], [10, 3, 3, 0], [11, 5, 3, 2], [9, 4, 2, 1], [6, 1, 2, 1]]},
            {"rows": [[224, 7, 2, 3], [13, 3, 2, 0], [1, 1, 1, 0], [5, 5, 1, 0], [12, 3, 4, 2]]},
        ),
        outputs=(
            Output(
                "sizes",
                hint="1 + (size + 2 * padding - kernel_size) // stride: "
                "padding is added on both sides, and a last window "
                "that does not fit is dropped (floor, not round).",
            ),
        ),
    ),
    Check(
        name="param_counts",
        question="q1",
        uses=("conv_param_count", "linear_param_count"),
        exercise=exercise_param_counts,
        cases=(
            {"C": 1, "F": 1, "k": 1, "H": 4, "W": 4},
            {"C": 3, "F": 16, "k": 3, "H": 32, "W": 32},
            {"C": 8, "F": 4, "k": 5, "H": 7, "W": 9},
        ),
        outputs=(
            Output(
                "conv",
                points=0.5,
                hint="A conv layer has out * in * k * k weights and one "
                "bias per output channel, whatever the image size.",
            ),
            Output(
                "linear",
                points=0.5,
                hint="A fully connected layer has in * out weights and "
                "one bias per output feature.",
            ),
        ),
    ),
    Check(
        name="receptive_field",
        question="q1",
        uses=("receptive_field",),
        exercise=exercise_receptive_field,
        cases=(
            {"stacks": [[[3, 1]], [[1, 1]], [[3, 1], [3, 1]], [[3, 1], [3, 1], [3, 1]]]},
            {"stacks": [[[2, 2]], [[3, 1], [2, 2], [3, 1]], [[2, 2], [2, 2], [2, 2]]]},
            {
                "stacks": [
                    [[7, 2], [3, 2], [3, 1], [3, 1]],
                    [[5, 1], [2, 2], [5, 1], [2, 2], [3, 1]],
                    [[3, 3], [3, 3]],
                ]
            },
        ),
        outputs=(
            Output(
                "field",
                hint="Each layer widens the field by (kernel_size - 1) times "
                "the product of the strides of the layers before it.",
            ),
        ),
    ),
    conv_check("Conv2dLoop", "q2"),
    Check(
        name="Conv2dLoop.init_params",
        question="q2",
        uses=("Conv2dLoop",),
        exercise=exercise_conv_init,
        cases=({"stds": (0.1, 3.0)}, {"stds": (2.0, 0.7071)}),
        outputs=(
            Output(
                "weight",
                points=0.5,
                hint="weight = std * torch.randn(out_channels, in_channels, kernel_size, "
                "kernel_size, generator=generator): Gaussian, scaled by std.",
            ),
            Output(
                "bias", points=0.5, hint="bias = torch.zeros(out_channels): zero, whatever std is."
            ),
        ),
    ),
    conv_check("Conv2d", "q3"),
    Check(
        name="MaxPool2d",
        question="q4",
        uses=("MaxPool2d",),
        exercise=exercise_maxpool,
        cases=MAXPOOL_CASES,
        timeout_s=20.0,
        outputs=(
            Output(
                "y",
                points=1.5,
                hint="The maximum of each k x k window; padding must never "
                "win, so pad with -inf, not 0.",
            ),
            Output(
                "dx",
                points=1.5,
                needs=("y",),
                hint="Only the window's maximum (the first one in row-major "
                "order on ties) receives dupstream; gradients of "
                "overlapping windows add up; other entries get 0.",
            ),
        ),
    ),
    Check(
        name="chapter 01 layers",
        question="q5",
        uses=("Linear", "ReLU", "CrossEntropyLoss"),
        exercise=exercise_chapter01_layers,
        cases=(
            {"N": 1, "in": 1, "out": 1, "C": 2, "scale": 1.0, "std": 0.1},
            {"N": 4, "in": 3, "out": 5, "C": 4, "scale": 1.0, "std": 1.5},
            {"N": 5, "in": 6, "out": 4, "C": 3, "scale": 1000.0, "std": 0.5},
        ),
        outputs=(
            Output("Linear.y", points=0.25, hint="Chapter 01: y = x @ weight + bias."),
            Output("Linear.dx", points=0.25, hint="Chapter 01: dx = dupstream @ weight.T."),
            Output(
                "grad_weight",
                points=0.25,
                needs=("Linear.y",),
                hint="Linear.backward sets grad_weight = x.T @ dupstream with the x of the "
                "last forward (=, never += onto the previous call's gradient).",
            ),
            Output(
                "grad_bias",
                points=0.25,
                hint="Linear.backward sets grad_bias = dupstream.sum(dim=0) (=, never +=).",
            ),
            Output(
                "Linear.init_params",
                points=0.25,
                hint="Chapter 01: weight = std * torch.randn(in, out, generator=generator), "
                "bias = torch.rand(out, generator=generator), uniform on [0, 1) "
                "whatever std is.",
            ),
            Output("ReLU.y", points=0.25, hint="Chapter 01: max(0, x) elementwise."),
            Output(
                "ReLU.dx",
                points=0.25,
                hint="Chapter 01: pass dupstream where the last forward's input was "
                "positive, zero elsewhere.",
            ),
            Output(
                "CrossEntropyLoss.loss",
                points=0.25,
                hint="Chapter 01: softmax over dim 1 with the row maximum subtracted "
                "before exp, negative log-likelihood averaged over the batch.",
            ),
            Output(
                "CrossEntropyLoss.dlogits",
                points=0.25,
                needs=("CrossEntropyLoss.loss",),
                hint="Chapter 01: (softmax - one_hot(target)) / N, from the last forward.",
            ),
        ),
    ),
    Check(
        name="Flatten",
        question="q5",
        uses=("Flatten",),
        exercise=exercise_flatten,
        cases=(
            {"shape": (1, 1, 1, 1)},
            {"shape": (2, 3, 4, 5)},
            {"shape": (3, 2, 5, 4), "noncontiguous": True},
        ),
        outputs=(
            Output(
                "y",
                points=0.5,
                hint="(N, C, H, W) -> (N, C * H * W) in (C, H, W) order; "
                "use reshape (view fails on non-contiguous input).",
            ),
            Output("dx", points=0.5, hint="backward reshapes dupstream to the input's shape."),
        ),
    ),
    Check(
        name="CNN",
        question="q5",
        uses=("CNN", "Conv2d", "MaxPool2d", "ReLU", "Flatten", "Linear"),
        exercise=exercise_cnn,
        cases=CNN_CASES,
        timeout_s=20.0,
        outputs=(
            Output(
                "architecture",
                hint="self.layers must be [Conv2d(C, h, 3, 1, 1), ReLU(), "
                "MaxPool2d(2, 2, 0), Conv2d(h, 2h, 3, 1, 1), ReLU(), "
                "MaxPool2d(2, 2, 0), Flatten(), Linear(2h * (S//4)**2, "
                "out)].",
            ),
            Output("y", hint="forward feeds each layer's output to the next, in order."),
            Output("dx", hint="backward visits the layers in reverse order."),
            Output(
                "params_after_step",
                points=0.5,
                hint="optimizer_step does weight -= lr * grad_weight and bias -= lr * "
                "grad_bias on every layer with parameters, using the gradients set "
                "just before the call.",
            ),
            Output(
                "reset_params_std",
                points=0.5,
                hint="reset_params(std) calls init_params(std, generator=generator) exactly "
                "once on every layer that has it, and only on those (the grader swaps "
                "in layers of its own: test with hasattr, not isinstance).",
            ),
        ),
    ),
]
