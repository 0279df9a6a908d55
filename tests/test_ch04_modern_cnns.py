"""Chapter 04: the reference agrees with independent formulations (functional ops in float64,
autograd receptive fields, PyTorch's FLOP counter), and the grader's probe substitution."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from autograder.checks import Namespace
from autograder.kit import substituted
from solutions import ch04_modern_cnns as ref
from tests.conftest import assert_check_agrees, failed_items, notebook_with_extra_cell

DOUBLE = torch.float64


def batch_norm(x: torch.Tensor, bn: torch.nn.BatchNorm2d) -> torch.Tensor:
    """Training-mode batch norm written out: biased batch variance, per channel."""
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    scale = bn.weight.view(1, -1, 1, 1)
    return (x - mean) / torch.sqrt(var + bn.eps) * scale + bn.bias.view(1, -1, 1, 1)


def randomized(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(seed)
    module.double()
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=DOUBLE))
    return module.train()


@pytest.mark.parametrize("c_in,c_out,stride,size", [
    (3, 3, 1, 5), (3, 6, 1, 5), (4, 8, 2, 7), (2, 2, 2, 6), (1, 4, 1, 4), (5, 3, 3, 9)])
def test_residual_blocks_match_functional_formulas(c_in, c_out, stride, size):
    x = torch.randn(3, c_in, size, size + 1, generator=torch.Generator().manual_seed(size),
                    dtype=DOUBLE)
    block = randomized(ref.ResidualBlock(c_in, c_out, stride), seed=1)
    h = torch.relu(batch_norm(F.conv2d(x, block.conv1.weight, stride=stride, padding=1), block.bn1))
    h = batch_norm(F.conv2d(h, block.conv2.weight, padding=1), block.bn2)
    skip = x
    if stride != 1 or c_in != c_out:
        skip = batch_norm(F.conv2d(x, block.shortcut[0].weight, stride=stride), block.shortcut[1])
    torch.testing.assert_close(block(x), torch.relu(h + skip))

    pre = randomized(ref.PreActResidualBlock(c_in, c_out, stride), seed=2)
    a = torch.relu(batch_norm(x, pre.bn1))
    h = F.conv2d(a, pre.conv1.weight, stride=stride, padding=1)
    h = F.conv2d(torch.relu(batch_norm(h, pre.bn2)), pre.conv2.weight, padding=1)
    skip = x if pre.shortcut is None else F.conv2d(a, pre.shortcut.weight, stride=stride)
    torch.testing.assert_close(pre(x), h + skip)


def test_inception_dense_and_transition_shapes_and_parameter_counts():
    x = torch.randn(2, 5, 6, 7, generator=torch.Generator().manual_seed(0))
    assert ref.InceptionBlock(5, 2, 3, 4, 1, 2, 3)(x).shape == (2, 11, 6, 7)
    assert ref.DenseBlock(3, 5, 4, 2)(x).shape == (2, 17, 6, 7)
    assert ref.TransitionLayer(5, 2)(x).shape == (2, 2, 3, 3)
    counts = {cls.__name__: ref.count_parameters(cls()) for cls in
              (ref.SmallResNet, ref.SmallGoogLeNet, ref.SmallDenseNet)}
    assert counts == {"SmallResNet": 77754, "SmallGoogLeNet": 21442, "SmallDenseNet": 11474}


def empirical_receptive_field(kernels: tuple[int, ...], strides: tuple[int, ...]) -> int:
    """Width of the input region that moves one output unit, measured with autograd."""
    size = 200
    layers = [torch.nn.Conv2d(1, 1, (1, k), stride=(1, s), bias=False)
              for k, s in zip(kernels, strides)]
    for layer in layers:
        torch.nn.init.constant_(layer.weight, 1.0)
    x = torch.zeros(1, 1, 1, size, dtype=DOUBLE, requires_grad=True)
    y = x
    for layer in layers:
        y = layer.double()(y)
    y[0, 0, 0, y.shape[-1] // 2].backward()
    touched = x.grad[0, 0, 0].nonzero().flatten()
    return int(touched.max() - touched.min() + 1)


@pytest.mark.parametrize("kernels,strides", [
    ((3,), (1,)), ((3, 3), (1, 1)), ((3, 3), (2, 1)), ((7, 3, 3), (2, 2, 1)),
    ((5, 1, 3), (3, 1, 2)), ((2, 2, 2), (2, 2, 2)), ((1, 1), (2, 2))])
def test_receptive_field_agrees_with_autograd(kernels, strides):
    assert ref.receptive_field(list(kernels), list(strides)) == \
        empirical_receptive_field(kernels, strides)


@pytest.mark.parametrize("c_in,c_out,k,h", list(itertools.product((1, 3), (2, 5), (1, 3, 5), (4, 7))))
def test_multiply_adds_agree_with_pytorchs_flop_counter(c_in, c_out, k, h):
    conv = torch.nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False)
    with FlopCounterMode(display=False) as counter:
        conv(torch.zeros(1, c_in, h, h + 1))
    assert 2 * ref.conv_multiply_adds(c_in, c_out, k, h, h + 1) == counter.get_total_flops()


def test_substituted_restores_names_in_globals_and_modules():
    source: dict = {"ResidualBlock": "student"}
    api = Namespace(source, ("ResidualBlock",))
    with substituted(api, ResidualBlock="probe", Extra=1):
        assert source == {"ResidualBlock": "probe", "Extra": 1}
    assert source == {"ResidualBlock": "student"}
    with pytest.raises(RuntimeError), substituted(Namespace(ref, ()), ResidualBlock="probe"):
        assert ref.ResidualBlock == "probe"
        raise RuntimeError
    assert ref.ResidualBlock.__name__ == "ResidualBlock"


def test_forbidden_call_in_a_block_costs_only_the_block(grade_file, tmp_path) -> None:  # type: ignore[no-untyped-def]
    chapter = "04_modern_cnns"
    code = """
class DenseLayer(DenseLayer):
    def __init__(self, in_channels, growth_rate, bn_size):
        super().__init__(in_channels, growth_rate, bn_size)
        from torchvision.ops import Conv2dNormActivation
        self.conv2 = Conv2dNormActivation(bn_size * growth_rate, growth_rate, 3, bias=False)
"""
    results = grade_file(chapter, notebook_with_extra_cell(chapter, code,
                                                           tmp_path / f"{chapter}.ipynb"))
    failed = failed_items(results)
    # DenseBlock and SmallDenseNet reach DenseLayer, but they are graded with probe blocks in
    # its place (their checks replace the blocks), so only the layer's own items are lost
    block_items = ("y_train", "grad_x", "grad_parameters", "running_stats", "y_eval", "param_count")
    assert failed == {f"DenseLayer: {name}" for name in block_items}
    messages = [test["output"] for test in results["tests"] if test["status"] == "failed"]
    assert all("torchvision" in message for message in messages)


# SmallGoogLeNet written with pooling and activation modules and adaptive pooling; executed in
# the namespace the check grades, so that the grader's probe InceptionBlock is the one it builds
MODULE_STYLE_GOOGLENET = """
class SmallGoogLeNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.stem_conv = nn.Conv2d(1, 32, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(32)
        self.inception1 = InceptionBlock(32, 16, 16, 24, 4, 8, 8)
        self.inception2 = InceptionBlock(56, 24, 24, 32, 8, 16, 16)
        self.fc = nn.Linear(88, num_classes)
        self.act, self.pool = nn.ReLU(), nn.MaxPool2d(2, 2)

    def forward(self, x):
        x = self.pool(self.inception1(self.act(self.stem_bn(self.stem_conv(x)))))
        return self.fc(F.adaptive_avg_pool2d(self.inception2(x), 1).flatten(1))
"""


def test_network_checks_accept_another_style_on_every_case():
    """Training-mode items and the odd size (9) included: a network written with modules
    (nn.MaxPool2d, nn.ReLU, adaptive pooling) agrees with the reference within tolerance."""
    from autograder.checks import load_checks_namespace

    path = "assignments/04_modern_cnns/checks.py"
    check = next(c for c in load_checks_namespace(open(path).read(), path).checks
                 if c.name == "SmallGoogLeNet")
    assert any(case["size"] % 2 for case in check.cases)
    assert {output.name for output in check.outputs} >= {"logits_train", "running_stats",
                                                         "grad_parameters"}
    other: dict = {"nn": torch.nn, "F": F, "InceptionBlock": ref.InceptionBlock}
    exec(MODULE_STYLE_GOOGLENET, other)  # noqa: S102 - the test's own code
    assert_check_agrees(check, ref, other)


@pytest.mark.parametrize("bug_name,item,shown,not_shown", [
    # y_train fails in the same cases: the eval-mode hint is not the explanation
    ("residual: bn1 reused after conv2", "ResidualBlock: y_eval",
     "Fix 'ResidualBlock: y_train' first", "switch with .eval()"),
    # y_train passes: the eval item's hint names the kept bias
    ("residual: convolutions keep their bias", "ResidualBlock: y_eval",
     "keeps its bias", "Fix 'ResidualBlock: y_train' first"),
])
def test_eval_hint_only_when_its_condition_holds(bug_name, item, shown, not_shown, grade_file,
                                                 tmp_path):
    from tools.zoo import load_bugs

    chapter = "04_modern_cnns"
    bug = next(b for b in load_bugs(chapter) if b.name == bug_name)
    results = grade_file(chapter, notebook_with_extra_cell(chapter, bug.code,
                                                           tmp_path / f"{chapter}.ipynb"))
    message = next(t["output"] for t in results["tests"] if t["name"].endswith(item))
    assert shown in message and not_shown not in message, message


def test_an_unused_torchvision_import_costs_nothing(grade_file, tmp_path):
    """The rule the notebook states: using torchvision in graded code costs points, an import
    that nothing graded uses does not."""
    chapter = "04_modern_cnns"
    code = """
try:
    import torchvision
except ImportError:
    torchvision = None
"""
    results = grade_file(chapter, notebook_with_extra_cell(chapter, code,
                                                           tmp_path / f"{chapter}.ipynb"))
    assert failed_items(results) == set(), results["output"]
