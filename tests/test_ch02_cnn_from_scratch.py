"""The chapter-02 reference against PyTorch's own convolution, pooling and autograd, in float64.

The reference in ``solutions/`` is the oracle the hidden checks are computed from, so it is
checked here against ``torch.nn.functional`` on a table of shapes (odd sizes, strides 1-3,
paddings 0-2, kernels 1-5, batch of 1, non-contiguous inputs, sizes where (H + 2p - k) is not
a multiple of the stride), the concept-question answers against what PyTorch builds, and the
whole CNN against the same network written with ``torch.nn`` and differentiated by autograd.
"""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from autograder.kit import noncontiguous
from solutions import ch02_cnn_from_scratch as ref

DOUBLE = torch.float64

# (N, C, F, H, W, kernel_size, stride, padding)
CONV_CASES = [
    (1, 1, 1, 5, 5, 3, 1, 0),
    (2, 3, 4, 7, 9, 3, 1, 1),
    (2, 2, 3, 9, 8, 3, 2, 1),
    (3, 4, 2, 11, 7, 5, 3, 2),
    (2, 3, 5, 6, 5, 1, 1, 0),
    (1, 2, 3, 5, 6, 1, 2, 1),
    (2, 3, 2, 8, 8, 5, 1, 2),
    (4, 2, 3, 10, 7, 2, 2, 0),
    (2, 1, 2, 7, 5, 3, 3, 0),
    (3, 2, 4, 9, 10, 3, 2, 2),
    (1, 5, 1, 4, 13, 4, 3, 1),
    (2, 1, 6, 3, 3, 3, 1, 2),
]

# (N, C, H, W, kernel_size, stride, padding); PyTorch needs padding <= kernel_size // 2
POOL_CASES = [
    (1, 1, 4, 4, 2, 2, 0),
    (2, 3, 7, 9, 3, 2, 1),
    (2, 2, 8, 7, 3, 1, 1),
    (3, 2, 11, 6, 2, 3, 1),
    (2, 3, 9, 10, 5, 2, 2),
    (2, 2, 7, 5, 1, 2, 0),
    (1, 4, 6, 6, 4, 4, 2),
    (2, 1, 10, 3, 3, 3, 0),
]


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert type(actual) is torch.Tensor and actual.dtype == expected.dtype
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("layer_class", [ref.Conv2dLoop, ref.Conv2d])
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
@pytest.mark.parametrize("contiguous", [True, False])
def test_conv_matches_torch(layer_class, case, contiguous):
    n, c, f, h, w, k, s, p = case
    rng = torch.Generator().manual_seed(hash(case) % 2**31)
    layer = layer_class(c, f, k, s, p)
    layer.weight = torch.randn(f, c, k, k, generator=rng, dtype=DOUBLE)
    layer.bias = torch.randn(f, generator=rng, dtype=DOUBLE)
    x = torch.randn(n, c, h, w, generator=rng, dtype=DOUBLE)
    x_in = x if contiguous else noncontiguous(x)
    before = x_in.clone()

    x_t = x.clone().requires_grad_()
    w_t = layer.weight.clone().requires_grad_()
    b_t = layer.bias.clone().requires_grad_()
    y_t = F.conv2d(x_t, w_t, b_t, stride=s, padding=p)
    dy = torch.randn(y_t.shape, generator=rng, dtype=DOUBLE)
    if not contiguous:
        dy = noncontiguous(dy)
    y_t.backward(dy)

    y = layer.forward(x_in)
    assert_close(y, y_t.detach())
    assert y.shape == (n, f, ref.conv_output_size(h, k, s, p), ref.conv_output_size(w, k, s, p))
    dx = layer.backward(dy)
    assert_close(dx, x_t.grad)
    assert_close(layer.grad_weight, w_t.grad)
    assert_close(layer.grad_bias, b_t.grad)
    assert torch.equal(x_in, before), "the layer changed its input"


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
@pytest.mark.parametrize("contiguous", [True, False])
def test_maxpool_matches_torch(case, contiguous):
    n, c, h, w, k, s, p = case
    rng = torch.Generator().manual_seed(hash(case) % 2**31)
    x = torch.randn(n, c, h, w, generator=rng, dtype=DOUBLE) - (1.5 if p else 0.0)
    x_t = x.clone().requires_grad_()
    y_t = F.max_pool2d(x_t, k, s, p)
    dy = torch.randn(y_t.shape, generator=rng, dtype=DOUBLE)
    y_t.backward(dy)
    layer = ref.MaxPool2d(k, s, p)
    y = layer.forward(x if contiguous else noncontiguous(x))
    assert_close(y, y_t.detach())
    assert_close(layer.backward(dy if contiguous else noncontiguous(dy)), x_t.grad)


def test_maxpool_padding_is_minus_infinity_not_zero():
    x = -torch.ones(1, 1, 3, 3, dtype=DOUBLE)
    y = ref.MaxPool2d(3, 1, 1).forward(x)
    assert torch.equal(y, -torch.ones(1, 1, 3, 3, dtype=DOUBLE))


@pytest.mark.parametrize("case", [(2, 3, 6, 6, 2, 2, 0), (1, 2, 7, 5, 3, 1, 1), (2, 2, 8, 9, 3, 2, 1)],
                         ids=str)
def test_maxpool_ties_go_to_the_first_maximum_like_torch(case):
    n, c, h, w, k, s, p = case
    rng = torch.Generator().manual_seed(7)
    x = torch.randint(0, 3, (n, c, h, w), generator=rng).to(DOUBLE)
    layer = ref.MaxPool2d(k, s, p)
    y = layer.forward(x)
    dy = torch.randn(y.shape, generator=rng, dtype=DOUBLE)
    dx = layer.backward(dy)
    # the documented rule, by brute force: first maximum of each window in row-major order
    expected = torch.zeros(n, c, h + 2 * p, w + 2 * p, dtype=DOUBLE)
    xp = torch.full((n, c, h + 2 * p, w + 2 * p), float("-inf"), dtype=DOUBLE)
    xp[:, :, p:p + h, p:p + w] = x
    for b, ch, i, j in itertools.product(range(n), range(c), range(y.shape[2]), range(y.shape[3])):
        window = xp[b, ch, i * s:i * s + k, j * s:j * s + k].reshape(-1)
        first = int(torch.nonzero(window == window.max())[0])
        expected[b, ch, i * s + first // k, j * s + first % k] += dy[b, ch, i, j]
    assert_close(dx, expected[:, :, p:p + h, p:p + w])
    # PyTorch's CPU kernel follows the same rule
    x_t = x.clone().requires_grad_()
    F.max_pool2d(x_t, k, s, p).backward(dy)
    assert_close(dx, x_t.grad)


def test_flatten_round_trip():
    x = noncontiguous(torch.randn(3, 2, 4, 5, dtype=DOUBLE))
    layer = ref.Flatten()
    y = layer.forward(x)
    assert_close(y, torch.flatten(x, 1))
    dy = noncontiguous(torch.randn(3, 40, dtype=DOUBLE))
    assert_close(layer.backward(dy), dy.reshape(3, 2, 4, 5))


VALID_GEOMETRIES = [(size, kernel, stride, padding) for size, kernel, stride, padding
                    in itertools.product([1, 4, 7, 16], [1, 2, 3, 5], [1, 2, 3], [0, 1, 2])
                    if size + 2 * padding >= kernel]  # the kernel must fit the padded input


@pytest.mark.parametrize("size,kernel,stride,padding", VALID_GEOMETRIES)
def test_conv_output_size_matches_torch(size, kernel, stride, padding):
    y = F.conv2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, kernel, kernel), stride=stride,
                 padding=padding)
    assert ref.conv_output_size(size, kernel, stride, padding) == y.shape[-1]


@pytest.mark.parametrize("c,f,k", [(1, 1, 1), (3, 16, 3), (16, 32, 5), (8, 4, 7)])
def test_param_counts_match_torch_modules(c, f, k):
    assert ref.conv_param_count(c, f, k) == sum(p.numel() for p in torch.nn.Conv2d(c, f, k).parameters())
    assert ref.linear_param_count(c * 10, f) == sum(
        p.numel() for p in torch.nn.Linear(c * 10, f).parameters())


@pytest.mark.parametrize("layers", [
    [(3, 1)], [(3, 1), (3, 1)], [(3, 1), (2, 2), (3, 1)], [(5, 2), (3, 2), (3, 1)],
    [(3, 1), (2, 2), (3, 1), (2, 2), (3, 1)], [(1, 1), (7, 3), (2, 2)], [(2, 2), (2, 2), (2, 2)],
])
def test_receptive_field_matches_the_support_of_a_gradient(layers):
    """Receptive field measured: the input pixels on which one output unit's gradient is nonzero."""
    size = 64
    x = torch.ones(1, 1, size, size, dtype=DOUBLE, requires_grad=True)
    y = x
    for kernel, stride in layers:  # positive weights: no cancellation, the support is exact
        y = F.conv2d(y, torch.ones(1, 1, kernel, kernel, dtype=DOUBLE), stride=stride)
    y[0, 0, y.shape[2] // 2, y.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad[0, 0].sum(dim=1))
    assert ref.receptive_field(layers) == int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize("c,h,out,size,n", [(1, 2, 3, 8, 1), (3, 4, 5, 12, 2), (1, 8, 10, 16, 4)])
def test_cnn_matches_the_same_network_in_torch_nn(c, h, out, size, n):
    rng = torch.Generator().manual_seed(c * 100 + h)
    cnn = ref.CNN(c, h, out, image_size=size)
    for layer in cnn.layers:
        if hasattr(layer, "weight"):
            layer.weight = torch.randn(layer.weight.shape, generator=rng, dtype=DOUBLE) * 0.5
            layer.bias = torch.randn(layer.bias.shape, generator=rng, dtype=DOUBLE)
    conv1, conv2, linear = (layer for layer in cnn.layers if hasattr(layer, "weight"))
    torch_net = torch.nn.Sequential(
        torch.nn.Conv2d(c, h, 3, 1, 1), torch.nn.ReLU(), torch.nn.MaxPool2d(2, 2),
        torch.nn.Conv2d(h, 2 * h, 3, 1, 1), torch.nn.ReLU(), torch.nn.MaxPool2d(2, 2),
        torch.nn.Flatten(), torch.nn.Linear(2 * h * (size // 4) ** 2, out)).to(DOUBLE)
    with torch.no_grad():
        torch_net[0].weight.copy_(conv1.weight)
        torch_net[0].bias.copy_(conv1.bias)
        torch_net[3].weight.copy_(conv2.weight)
        torch_net[3].bias.copy_(conv2.bias)
        torch_net[7].weight.copy_(linear.weight.T)
        torch_net[7].bias.copy_(linear.bias)
    x = torch.randn(n, c, size, size, generator=rng, dtype=DOUBLE)
    x_t = x.clone().requires_grad_()
    y_t = torch_net(x_t)
    dy = torch.randn(y_t.shape, generator=rng, dtype=DOUBLE)
    y_t.backward(dy)
    assert_close(cnn.forward(x), y_t.detach())
    assert_close(cnn.backward(dy), x_t.grad)
    assert_close(conv1.grad_weight, torch_net[0].weight.grad)
    assert_close(conv2.grad_bias, torch_net[3].bias.grad)
    assert_close(linear.grad_weight, torch_net[7].weight.grad.T)
    lr = 0.1
    expected = conv2.weight - lr * conv2.grad_weight
    cnn.optimizer_step(lr)
    assert_close(conv2.weight, expected)


def test_conv_init_params_draws_from_the_generator_with_zero_bias():
    layer = ref.Conv2d(3, 5, 3)
    layer.init_params(0.5, generator=torch.Generator().manual_seed(3))
    expected = 0.5 * torch.randn(5, 3, 3, 3, generator=torch.Generator().manual_seed(3))
    assert torch.equal(layer.weight, expected)
    assert torch.equal(layer.bias, torch.zeros(5))


def test_reference_uses_no_forbidden_api():
    """The reference obeys the chapter's own rule (AST scan with the chapter's FORBIDDEN)."""
    import inspect
    from pathlib import Path

    from autograder.checks import load_checks_namespace
    from autograder.forbidden import ForbiddenScan

    root = Path(__file__).resolve().parent.parent
    checks_path = root / "assignments" / "02_cnn_from_scratch" / "checks.py"
    forbidden = load_checks_namespace(checks_path.read_text(), str(checks_path)).forbidden
    scan = ForbiddenScan([(1, inspect.getsource(ref))], forbidden)
    assert scan.hits_for(("Conv2d", "Conv2dLoop", "MaxPool2d", "CNN", "Flatten")) == []


LIBRARY_ROUTES = [
    ("Conv2d", """
import torch.nn.functional as F
class Conv2d(Conv2d):
    def forward(self, x):
        self.x = x
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)
"""),
    ("Conv2d", """
from torch.nn.functional import unfold
def im2col(xp, kernel_size, stride):
    return unfold(xp, kernel_size, stride=stride)
"""),
    ("Conv2dLoop", """
class Conv2dLoop(Conv2dLoop):
    def forward(self, x):
        return torch.conv2d(x, self.weight, self.bias, self.stride, self.padding)
"""),
    ("MaxPool2d", """
class MaxPool2d(MaxPool2d):
    def forward(self, x):
        return torch.max_pool2d(x, self.kernel_size, self.stride, self.padding)
"""),
    ("MaxPool2d", """
def pad2d(x, padding, value=0.0):
    return torch.nn.functional.pad(x, (padding,) * 4, value=value)
"""),
]


@pytest.mark.parametrize("check,code", LIBRARY_ROUTES, ids=[f"{c}-{i}" for i, (c, _) in
                                                             enumerate(LIBRARY_ROUTES)])
def test_library_convolution_and_pooling_are_refused(check, code, grade_file, tmp_path):
    """Library routes lose every item of the check that reaches them; Tensor.unfold, which the
    solution itself uses, stays allowed (the solution scores full marks elsewhere)."""
    from tests.conftest import notebook_with_extra_cell

    chapter = "02_cnn_from_scratch"
    mutant = notebook_with_extra_cell(chapter, code, tmp_path / f"{chapter}.ipynb")
    results = grade_file(chapter, mutant)
    tests = {test["name"].split(" ", 1)[1]: test for test in results["tests"]}
    lost = [test for name, test in tests.items() if name.startswith(f"{check}: ")]
    assert lost and all(test["status"] == "failed" for test in lost)
    assert all("uses API this chapter asks you to write yourself" in test["output"]
               for test in lost), [test["output"] for test in lost]
    assert tests["Flatten: y"]["status"] == "passed"
