"""Hidden checks of chapter 04: residual, inception and dense blocks, small networks.

Never shipped to students. The students build ``nn.Module``s from ``torch.nn`` layers, so a
block check builds the student's block, converts it to float64, installs seeded parameters and
batch-norm statistics by name (``assign_parameters``; names and shapes are fixed by the
notebook), then grades separately:

* ``y_train``: the output of the *second* of two forward passes in training mode (state that
  leaks between calls is caught), ``grad_x`` and ``grad_parameters`` (autograd through a seeded
  loss), ``running_stats`` (every batch-norm's running mean and variance after both passes);
* ``y_eval``: the output in eval mode, with running statistics installed by the check (so it
  does not depend on the training-mode items);
* ``param_count``: every parameter the block owns (extra or missing submodules show here).

Containers (``DenseBlock`` and the three networks) are graded with the grader's own probe
blocks substituted for the student's (``kit.substituted``): a bug in a block costs only that
block's items. The notebook says so where the students write the containers. These checks
declare the blocks they replace (``Check.replaces``), so the forbidden-API scan does not charge
a container for a forbidden call inside a block either. The substitution is in place while the
container is built; its forward then runs the probe blocks it holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from autograder.checks import Check, Output
from autograder.kit import (
    as_ints,
    assign_parameters,
    noncontiguous,
    randn,
    record_grads,
    run_independently,
    substituted,
)

# This chapter is about architecture: every torch.nn layer is allowed. Only ready-made model
# code is not (torchvision is not a dependency; hub models download).
FORBIDDEN = ("torchvision", "torch.hub", "timm")

Shapes = dict[str, tuple[int, ...]]


# ------------------------------------------------------------------ parameter layouts
def conv_bn(prefix_conv: str, prefix_bn: str, c_in: int, c_out: int, k: int) -> Shapes:
    return {
        f"{prefix_conv}.weight": (c_out, c_in, k, k),
        f"{prefix_bn}.weight": (c_out,),
        f"{prefix_bn}.bias": (c_out,),
    }


def residual_shapes(c_in: int, c_out: int, stride: int) -> Shapes:
    shapes = {**conv_bn("conv1", "bn1", c_in, c_out, 3), **conv_bn("conv2", "bn2", c_out, c_out, 3)}
    if stride != 1 or c_in != c_out:
        shapes.update(conv_bn("shortcut.0", "shortcut.1", c_in, c_out, 1))
    return shapes


def preact_shapes(c_in: int, c_out: int, stride: int) -> Shapes:
    shapes = {
        "bn1.weight": (c_in,),
        "bn1.bias": (c_in,),
        "conv1.weight": (c_out, c_in, 3, 3),
        "bn2.weight": (c_out,),
        "bn2.bias": (c_out,),
        "conv2.weight": (c_out, c_out, 3, 3),
    }
    if stride != 1 or c_in != c_out:
        shapes["shortcut.weight"] = (c_out, c_in, 1, 1)
    return shapes


def inception_shapes(c_in: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pp: int) -> Shapes:
    return {
        **conv_bn("branch1.0", "branch1.1", c_in, c1, 1),
        **conv_bn("branch2.0", "branch2.1", c_in, c3r, 1),
        **conv_bn("branch2.3", "branch2.4", c3r, c3, 3),
        **conv_bn("branch3.0", "branch3.1", c_in, c5r, 1),
        **conv_bn("branch3.3", "branch3.4", c5r, c5, 5),
        **conv_bn("branch4.1", "branch4.2", c_in, pp, 1),
    }


def dense_layer_shapes(c_in: int, growth: int, bn_size: int) -> Shapes:
    width = bn_size * growth
    return {
        "bn1.weight": (c_in,),
        "bn1.bias": (c_in,),
        "conv1.weight": (width, c_in, 1, 1),
        "bn2.weight": (width,),
        "bn2.bias": (width,),
        "conv2.weight": (growth, width, 3, 3),
    }


def transition_shapes(c_in: int, c_out: int) -> Shapes:
    return {"bn.weight": (c_in,), "bn.bias": (c_in,), "conv.weight": (c_out, c_in, 1, 1)}


def seeded_values(rng: torch.Generator, shapes: Shapes) -> dict[str, torch.Tensor]:
    """Convolution weights ~ N(0, 1/fan_in); batch-norm scales ~ 1 + N(0, 0.3^2), shifts ~
    N(0, 0.3^2); linear layers like convolutions."""
    values = {}
    for name, shape in shapes.items():
        if len(shape) > 1:
            fan_in = math.prod(shape[1:])
            values[name] = randn(rng, *shape) / math.sqrt(fan_in)
        elif name.endswith(".weight"):
            values[name] = 1.0 + 0.3 * randn(rng, *shape)
        else:
            values[name] = 0.3 * randn(rng, *shape)
    return values


def batch_norms(shapes: Shapes) -> list[str]:
    """Names of the batch-norm modules: those whose weight is a vector and that have a bias."""
    return [
        name[: -len(".weight")]
        for name, shape in shapes.items()
        if name.endswith(".weight")
        and len(shape) == 1
        and name[: -len(".weight")] + ".bias" in shapes
    ]


def submodule(module: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


def install_running_stats(module: Any, bn_names: list[str], rng: torch.Generator) -> None:
    """Seeded running mean ~ N(0, 0.5^2) and running variance in [0.5, 1.5) for every BN."""
    with torch.no_grad():
        for name in bn_names:
            bn = submodule(module, name)
            bn.running_mean.copy_(0.5 * randn(rng, *bn.running_mean.shape))
            bn.running_var.copy_(
                0.5 + torch.rand(bn.running_var.shape, generator=rng, dtype=torch.float64)
            )


def count(module: Any) -> torch.Tensor:
    return torch.tensor(float(sum(p.numel() for p in module.parameters())), dtype=torch.float64)


# -------------------------------------------------------------------- the block exercise
def record_training(
    module: Any,
    first: torch.Tensor,
    second: torch.Tensor,
    shapes: Shapes,
    rng: torch.Generator,
    out: Any,
    output: str,
) -> None:
    """Two forward passes in training mode; records the second output under ``output``, the
    running statistics of the batch norms among ``shapes`` (``running_stats``), and, after a
    seeded loss, the gradients of the parameters named in ``shapes`` (``grad_parameters``)."""
    module.train()
    module(first)
    y = module(second)
    out[output] = y
    out["running_stats"] = torch.cat(
        [
            torch.cat([submodule(module, name).running_mean, submodule(module, name).running_var])
            for name in batch_norms(shapes)
        ]
    )
    (y * randn(rng, *y.shape)).sum().backward()
    grads = [submodule(module, name).grad for name in shapes]
    if all(g is not None for g in grads):
        out["grad_parameters"] = torch.cat([g.flatten() for g in grads])


def make_block_exercise(
    class_name: str,
    arguments: Callable[[Mapping[str, Any]], tuple],
    shapes_of: Callable[..., Shapes],
) -> Callable[..., None]:
    """Exercise for a block: see the module docstring for the outputs."""

    def exercise(api: Any, case: Mapping[str, Any], rng: torch.Generator, out: Any) -> None:
        args = arguments(case)
        shapes = shapes_of(*args)
        bn_names = batch_norms(shapes)
        block = getattr(api, class_name)(*args)
        out["param_count"] = count(block)
        block.double()
        values = seeded_values(rng, shapes)
        assign_parameters(block, values)
        n, c, h, w = case["N"], args[0], case["H"], case["W"]
        first, second, third = (randn(rng, n, c, h, w) for _ in range(3))
        if case.get("noncontiguous"):
            second = noncontiguous(second)
        second.requires_grad_(True)
        out.watch(x=second)

        def train() -> None:
            record_training(block, first, second, shapes, rng, out, "y_train")
            record_grads(out, {"grad_x": second})

        def evaluate() -> None:
            # its own generator: the eval item must not depend on what the training part drew
            install_running_stats(block, bn_names, torch.Generator().manual_seed(n * 1000 + h))
            block.eval()
            with torch.no_grad():
                out["y_eval"] = block(third)

        run_independently(train, evaluate)

    return exercise


def block_outputs(forward_hint: str, eval_hint: str, count_hint: str) -> tuple[Output, ...]:
    autograd = (
        "Autograd computes this from your forward pass, which passes: look for "
        ".detach(), .data or torch.no_grad() in forward."
    )
    return (
        Output("y_train", hint=forward_hint),
        Output("grad_x", points=0.5, hint=autograd, needs=("y_train",)),
        Output("grad_parameters", points=0.5, hint=autograd, needs=("y_train",)),
        Output(
            "running_stats",
            points=0.5,
            hint="Each BatchNorm2d updates its running mean and variance when it runs in "
            "training mode: wrong values mean a batch norm saw another tensor (layer "
            "order), ran a different number of times, or follows a convolution that "
            "keeps its bias (the bias shifts the running mean).",
            needs=("y_train",),
        ),
        Output("y_eval", hint=eval_hint + " " + BIAS_EVAL_NOTE, needs=("y_train",)),
        Output("param_count", points=0.5, hint=count_hint),
    )


BIAS_NOTE = (
    "every convolution of the chapter has bias=False (also those not followed by batch norm); "
)
BIAS_EVAL_NOTE = (
    "If y_train passes but param_count fails too, a convolution keeps its bias: the "
    "grader installs only the parameters the docstring names, so a bias keeps its random "
    "value, which batch norm cancels in training mode but not in eval mode."
)

RESIDUAL_CASES = (
    {"in": 4, "out": 4, "stride": 1, "N": 3, "H": 6, "W": 6},
    {"in": 4, "out": 8, "stride": 2, "N": 2, "H": 7, "W": 7},
    {"in": 3, "out": 6, "stride": 1, "N": 2, "H": 5, "W": 4},
    {"in": 4, "out": 4, "stride": 2, "N": 2, "H": 8, "W": 8},
    {"in": 1, "out": 4, "stride": 1, "N": 2, "H": 4, "W": 4},
    {"in": 3, "out": 3, "stride": 1, "N": 1, "H": 5, "W": 5, "noncontiguous": True},
)


def residual_arguments(case: Mapping[str, Any]) -> tuple:
    return case["in"], case["out"], case["stride"]


INCEPTION_CASES = (
    {"in": 3, "c": (2, 2, 3, 1, 2, 2), "N": 2, "H": 5, "W": 5},
    {"in": 4, "c": (3, 2, 4, 2, 3, 1), "N": 2, "H": 6, "W": 4},
    {"in": 2, "c": (1, 1, 1, 1, 1, 1), "N": 1, "H": 4, "W": 4},
    {"in": 5, "c": (4, 3, 2, 2, 2, 3), "N": 3, "H": 3, "W": 3, "noncontiguous": True},
)

DENSE_LAYER_CASES = (
    {"in": 4, "growth": 3, "bn_size": 2, "N": 2, "H": 5, "W": 5},
    {"in": 2, "growth": 4, "bn_size": 1, "N": 3, "H": 4, "W": 6},
    {"in": 6, "growth": 2, "bn_size": 4, "N": 1, "H": 5, "W": 5},
    {"in": 3, "growth": 3, "bn_size": 2, "N": 2, "H": 3, "W": 3, "noncontiguous": True},
)

TRANSITION_CASES = (
    {"in": 4, "out": 2, "N": 2, "H": 6, "W": 6},
    {"in": 3, "out": 5, "N": 2, "H": 7, "W": 5},
    {"in": 6, "out": 3, "N": 1, "H": 4, "W": 4},
    {"in": 2, "out": 2, "N": 3, "H": 8, "W": 6, "noncontiguous": True},
)


# ---------------------------------------------------------------------- probe blocks
class _ProbeBlock(nn.Module):
    """The grader's stand-in for a student's block inside a container: a 1x1 convolution with
    stride (weights seeded from the constructor arguments alone, so the construction order does
    not matter), followed by tanh, optionally concatenated after its input. Records its
    constructor arguments in ``made`` so that the container's wiring can be graded."""

    made: list[tuple[int, ...]] = []

    def __init__(
        self,
        args: tuple[int, ...],
        c_in: int,
        c_out: int,
        stride: int = 1,
        concat: bool = False,
        pool: int = 1,
    ):
        super().__init__()
        type(self).made.append(args)
        rng = torch.Generator().manual_seed(sum(a * 7919**i for i, a in enumerate(args)) % 2**31)
        self.weight = nn.Parameter(torch.randn(c_out, c_in, 1, 1, generator=rng) / math.sqrt(c_in))
        self.stride, self.concat, self.pool, self.c_in = stride, concat, pool, c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.ndim == 4 and x.shape[1] == self.c_in, (
            f"a block built for {self.c_in} input channels received an input of shape "
            f"{tuple(x.shape)}: the channels passed to the constructor and the tensor fed to "
            f"forward disagree"
        )
        y = torch.tanh(nn.functional.conv2d(x, self.weight, stride=self.stride))
        if self.pool > 1:
            y = nn.functional.avg_pool2d(y, self.pool)
        return torch.cat([x, y], dim=1) if self.concat else y


def probe_classes() -> dict[str, type[_ProbeBlock]]:
    """Fresh probe classes (each with its own ``made`` list) under the students' names."""

    class ResidualBlock(_ProbeBlock):
        made: list[tuple[int, ...]] = []

        def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
            super().__init__((in_channels, out_channels, stride), in_channels, out_channels, stride)

    class InceptionBlock(_ProbeBlock):
        made: list[tuple[int, ...]] = []

        def __init__(
            self,
            in_channels: int,
            c1x1: int,
            c3x3_reduce: int,
            c3x3: int,
            c5x5_reduce: int,
            c5x5: int,
            pool_proj: int,
        ):
            args = (in_channels, c1x1, c3x3_reduce, c3x3, c5x5_reduce, c5x5, pool_proj)
            super().__init__(args, in_channels, c1x1 + c3x3 + c5x5 + pool_proj)

    class DenseLayer(_ProbeBlock):
        made: list[tuple[int, ...]] = []

        def __init__(self, in_channels: int, growth_rate: int, bn_size: int):
            super().__init__(
                (in_channels, growth_rate, bn_size), in_channels, growth_rate, concat=True
            )

    class DenseBlock(_ProbeBlock):
        made: list[tuple[int, ...]] = []

        def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int):
            super().__init__(
                (num_layers, in_channels, growth_rate, bn_size),
                in_channels,
                num_layers * growth_rate,
                concat=True,
            )

    class TransitionLayer(_ProbeBlock):
        made: list[tuple[int, ...]] = []

        def __init__(self, in_channels: int, out_channels: int):
            super().__init__((in_channels, out_channels), in_channels, out_channels, pool=2)

    return {
        cls.__name__: cls
        for cls in (ResidualBlock, InceptionBlock, DenseLayer, DenseBlock, TransitionLayer)
    }


def architecture(probes: Mapping[str, type[_ProbeBlock]], names: tuple[str, ...]) -> torch.Tensor:
    """The constructor arguments of every probe built, per kind in ``names`` order, padded."""
    rows = [(index, *args) for index, name in enumerate(names) for args in probes[name].made]
    width = max((len(row) for row in rows), default=1)
    return torch.tensor(
        [list(row) + [-1] * (width - len(row)) for row in rows], dtype=torch.int64
    ).reshape(len(rows), width)


# -------------------------------------------------------------------------- DenseBlock
def exercise_dense_block(api: Any, case: Mapping[str, Any], rng: torch.Generator, out: Any) -> None:
    probes = probe_classes()
    with substituted(api, DenseLayer=probes["DenseLayer"]):
        block = api.DenseBlock(case["L"], case["in"], case["growth"], case["bn_size"])
    out["architecture"] = architecture(probes, ("DenseLayer",))
    block.double()
    for _ in range(2):
        x = randn(rng, case["N"], case["in"], 3, 4).requires_grad_(True)
        out.watch(x=x)
        y = block(x)
        out["y"] = y
        (y * randn(rng, *y.shape)).sum().backward()
        record_grads(out, {"grad_x": x})


DENSE_BLOCK_CASES = (
    {"L": 1, "in": 2, "growth": 3, "bn_size": 2, "N": 2},
    {"L": 3, "in": 4, "growth": 2, "bn_size": 4, "N": 2},
    {"L": 4, "in": 1, "growth": 1, "bn_size": 1, "N": 1},
)


# ------------------------------------------------------------------------ the networks
NETWORK_PARAMETERS: dict[str, Shapes] = {
    "SmallResNet": {
        "stem_conv.weight": (16, 1, 3, 3),
        "stem_bn.weight": (16,),
        "stem_bn.bias": (16,),
        "fc.weight": (10, 64),
        "fc.bias": (10,),
    },
    "SmallGoogLeNet": {
        "stem_conv.weight": (32, 1, 3, 3),
        "stem_bn.weight": (32,),
        "stem_bn.bias": (32,),
        "fc.weight": (10, 88),
        "fc.bias": (10,),
    },
    "SmallDenseNet": {
        "stem_conv.weight": (16, 1, 3, 3),
        "final_bn.weight": (44,),
        "final_bn.bias": (44,),
        "fc.weight": (10, 44),
        "fc.bias": (10,),
    },
}
NETWORK_BLOCKS = {
    "SmallResNet": ("ResidualBlock",),
    "SmallGoogLeNet": ("InceptionBlock",),
    "SmallDenseNet": ("DenseBlock", "TransitionLayer"),
}


def make_network_exercise(class_name: str) -> Callable[..., None]:
    def exercise(api: Any, case: Mapping[str, Any], rng: torch.Generator, out: Any) -> None:
        probes = probe_classes()
        used = NETWORK_BLOCKS[class_name]
        with substituted(api, **{name: probes[name] for name in used}):
            network = getattr(api, class_name)()
        out["architecture"] = architecture(probes, used)
        out["param_count"] = count(network)
        network.double()
        own = NETWORK_PARAMETERS[class_name]
        assign_parameters(network, seeded_values(rng, own))
        n, size = case["N"], case["size"]

        def evaluate() -> None:
            network.eval()
            shapes = []
            with torch.no_grad():
                for _ in range(2):
                    logits = network(randn(rng, n, 1, size, size))
                    shapes.append(torch.tensor(logits.shape, dtype=torch.float64))
                out["logits"] = logits
            out["output_shape"] = torch.cat(shapes)

        def train() -> None:
            # its own generator: these items must not depend on what evaluate drew
            train_rng = torch.Generator().manual_seed(1000 * n + size)
            first, second = (randn(train_rng, n, 1, size, size) for _ in range(2))
            record_training(network, first, second, own, train_rng, out, "logits_train")

        run_independently(evaluate, train)

    return exercise


# size 9: an odd size, where a 2x2 max-pool with ceil_mode=True keeps a fifth row and column
NETWORK_CASES = (
    {"N": 2, "size": 8},
    {"N": 1, "size": 16},
    {"N": 3, "size": 12},
    {"N": 2, "size": 9},
)


def network_outputs(blocks: str) -> tuple[Output, ...]:
    return (
        Output(
            "architecture",
            hint=f"The blocks ({blocks}) your network builds, with their "
            f"constructor arguments in order, differ from the "
            f"configuration in the notebook (channels, strides, number "
            f"of blocks).",
        ),
        Output(
            "param_count",
            points=0.5,
            hint="With the grader's probe blocks in place, the parameters your network owns "
            "itself (stem, final batch norm, classifier) differ from the notebook's "
            "configuration.",
        ),
        Output(
            "output_shape",
            points=0.5,
            hint="The logits have shape (N, num_classes) for any input size: global average "
            "pooling takes the mean over the two spatial dimensions, (2, 3).",
        ),
        Output(
            "logits",
            hint="The order stem -> blocks -> global average pooling -> fc, in eval "
            "mode, differs from the notebook's; check the ReLU after the stem "
            "batch norm, the mean over dims (2, 3), and pooling that floors odd sizes "
            "(max_pool2d(x, 2), ceil_mode=False).",
        ),
        Output(
            "logits_train",
            hint="In training mode the network's own batch norms use the batch's "
            "statistics: the same forward as in eval mode, each module switched by "
            ".train()/.eval() (no batch norm kept in eval mode or called with "
            "F.batch_norm(training=False)).",
            needs=("logits",),
        ),
        Output(
            "running_stats",
            points=0.5,
            hint="The running mean and variance of the network's own batch norms "
            "(stem_bn, final_bn) after two training-mode passes: each must run once "
            "per forward, on the tensor the notebook names.",
            needs=("logits_train",),
        ),
        Output(
            "grad_parameters",
            points=0.5,
            hint="Autograd computes the gradients of stem, batch norm and fc from your "
            "training-mode forward: look for .detach(), .data or torch.no_grad() in "
            "forward.",
            needs=("logits_train",),
        ),
    )


# --------------------------------------------------------------- q5: counting and costs
def _module_zoo(name: str) -> nn.Module:
    if name == "linear":
        return nn.Linear(7, 3)
    if name == "conv_bn":
        return nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU())
    if name == "frozen":
        model = nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 2))
        model[0].weight.requires_grad_(False)
        return model
    shared = nn.Linear(6, 6)
    return nn.Sequential(shared, nn.Tanh(), shared, nn.Conv2d(2, 2, 1))


def exercise_count_parameters(
    api: Any, case: Mapping[str, Any], rng: torch.Generator, out: Any
) -> None:
    answers = [api.count_parameters(_module_zoo(name)) for name in case["modules"]]
    answers += [api.count_parameters(_module_zoo(name)) for name in case["modules"]]
    out["counts"] = as_ints(answers, "count_parameters")


def exercise_receptive_field(
    api: Any, case: Mapping[str, Any], rng: torch.Generator, out: Any
) -> None:
    out["fields"] = as_ints(
        [api.receptive_field(list(k), list(s)) for k, s in case["rows"]], "receptive_field"
    )


def exercise_multiply_adds(
    api: Any, case: Mapping[str, Any], rng: torch.Generator, out: Any
) -> None:
    out["multiply_adds"] = as_ints(
        [api.conv_multiply_adds(*row) for row in case["rows"]], "conv_multiply_adds"
    )


def network_check(name: str, blocks: str) -> Check:
    """A whole network, built from the grader's probe blocks (``blocks`` names the student's
    blocks the probes stand in for, in the hints)."""
    return Check(
        name=name,
        question="q4",
        uses=(name,),
        replaces=NETWORK_BLOCKS[name],
        exercise=make_network_exercise(name),
        cases=NETWORK_CASES,
        outputs=network_outputs(blocks),
    )


CHECKS = [
    Check(
        name="ResidualBlock",
        question="q1",
        uses=("ResidualBlock",),
        exercise=make_block_exercise("ResidualBlock", residual_arguments, residual_shapes),
        cases=RESIDUAL_CASES,
        pattern_axes=("in", "out", "stride", "noncontiguous"),
        timeout_s=20.0,
        outputs=block_outputs(
            "conv1 (3x3, stride) -> bn1 -> ReLU -> conv2 (3x3) -> bn2, plus the shortcut, and "
            "the ReLU AFTER the addition. The shortcut is the identity only when stride == 1 "
            "and the channels stay the same; otherwise 1x1 conv with the block's stride, "
            "then batch norm.",
            "In eval mode batch norm uses its running statistics: the same structure as in "
            "training mode, with the module switched by .eval() (do not call F.batch_norm "
            "with training=True yourself).",
            "conv1, bn1, conv2, bn2, and shortcut.0 (1x1 conv) + shortcut.1 (batch norm) only "
            "when the shape changes; " + BIAS_NOTE + "no other parameters.",
        ),
    ),
    Check(
        name="PreActResidualBlock",
        question="q1",
        uses=("PreActResidualBlock",),
        exercise=make_block_exercise("PreActResidualBlock", residual_arguments, preact_shapes),
        cases=RESIDUAL_CASES,
        timeout_s=20.0,
        outputs=block_outputs(
            "bn1 -> ReLU -> conv1 (stride) -> bn2 -> ReLU -> conv2, plus the shortcut, and NO "
            "ReLU after the addition. A projection shortcut (1x1 conv with stride) takes the "
            "pre-activated input relu(bn1(x)); the identity takes x itself.",
            "In eval mode batch norm uses its running statistics: switch with .eval().",
            "bn1 (in_channels), conv1, bn2, conv2, and shortcut (one 1x1 conv, no batch norm) "
            "only when the shape changes; " + BIAS_NOTE + "no other parameters.",
        ),
    ),
    Check(
        name="InceptionBlock",
        question="q2",
        uses=("InceptionBlock",),
        exercise=make_block_exercise(
            "InceptionBlock", lambda case: (case["in"], *case["c"]), inception_shapes
        ),
        cases=INCEPTION_CASES,
        timeout_s=20.0,
        outputs=block_outputs(
            "Four branches concatenated along dim=1 in the order 1x1, 3x3, 5x5, pool; each "
            "conv is followed by batch norm and ReLU; the 3x3 and 5x5 keep the size (padding "
            "1 and 2); the pool branch is MaxPool2d(3, stride=1, padding=1) then a 1x1 conv.",
            "In eval mode batch norm uses its running statistics: switch with .eval().",
            "Each branch is an nn.Sequential with the indices of the notebook's table (conv "
            "0, bn 1, ReLU 2, conv 3, bn 4; pool branch: pool 0, conv 1, bn 2); "
            + BIAS_NOTE
            + "the pool projection has its own conv and batch norm.",
        ),
    ),
    Check(
        name="DenseLayer",
        question="q3",
        uses=("DenseLayer",),
        exercise=make_block_exercise(
            "DenseLayer",
            lambda case: (case["in"], case["growth"], case["bn_size"]),
            dense_layer_shapes,
        ),
        cases=DENSE_LAYER_CASES,
        timeout_s=20.0,
        outputs=block_outputs(
            "bn1 -> ReLU -> conv1 (1x1, bn_size*growth_rate) -> bn2 -> ReLU -> conv2 (3x3, "
            "padding 1, growth_rate), and the result is torch.cat([x, new], dim=1): the input "
            "first, the new features after it.",
            "In eval mode batch norm uses its running statistics: switch with .eval().",
            "bn1 (in_channels), conv1 (bn_size*growth_rate, 1x1), bn2, conv2 (growth_rate, "
            "3x3); " + BIAS_NOTE + "no other parameters.",
        ),
    ),
    Check(
        name="DenseBlock",
        question="q3",
        uses=("DenseBlock",),
        replaces=("DenseLayer",),
        exercise=exercise_dense_block,
        cases=DENSE_BLOCK_CASES,
        outputs=(
            Output(
                "architecture",
                hint="Layer i of the block is DenseLayer(in_channels + i * "
                "growth_rate, growth_rate, bn_size), built by calling "
                "DenseLayer(...) in __init__ (the grader replaces "
                "DenseLayer with its own probe layer).",
            ),
            Output(
                "y",
                hint="Feed each layer the output of the previous one (which already "
                "contains every earlier feature map) and return the last output.",
            ),
            Output("grad_x", points=0.5, hint="Autograd through the chain of layers: fix y first."),
        ),
    ),
    Check(
        name="TransitionLayer",
        question="q3",
        uses=("TransitionLayer",),
        exercise=make_block_exercise(
            "TransitionLayer", lambda case: (case["in"], case["out"]), transition_shapes
        ),
        cases=TRANSITION_CASES,
        timeout_s=20.0,
        outputs=block_outputs(
            "bn -> ReLU -> conv (1x1) -> average pooling with kernel 2 and stride 2 (odd sizes "
            "round down).",
            "In eval mode batch norm uses its running statistics: switch with .eval().",
            "bn (in_channels) and conv (1x1, " + BIAS_NOTE.rstrip("; ") + "); pooling has no "
            "parameters.",
        ),
    ),
    *(
        network_check(name, blocks)
        for name, blocks in (
            ("SmallResNet", "ResidualBlock"),
            ("SmallGoogLeNet", "InceptionBlock"),
            ("SmallDenseNet", "DenseBlock, TransitionLayer"),
        )
    ),
    Check(
        name="count_parameters",
        question="q5",
        uses=("count_parameters",),
        exercise=exercise_count_parameters,
        cases=({"modules": ("linear", "conv_bn")}, {"modules": ("frozen", "shared")}),
        outputs=(
            Output(
                "counts",
                hint="Sum p.numel() over module.parameters() (each shared "
                "parameter once, buffers such as running statistics "
                "not at all) for the parameters with "
                "requires_grad=True.",
            ),
        ),
    ),
    Check(
        name="receptive_field",
        question="q5",
        uses=("receptive_field",),
        exercise=exercise_receptive_field,
        cases=(
            {"rows": (((3,), (1,)), ((3, 3), (1, 1)), ((3, 3, 3), (1, 1, 1)))},
            {
                "rows": (
                    ((3, 2, 3), (1, 2, 1)),
                    ((7, 3, 3), (2, 2, 1)),
                    ((5,), (3,)),
                    ((1, 1), (2, 2)),
                )
            },
        ),
        outputs=(
            Output(
                "fields",
                hint="r = 1 + sum over layers of (k_l - 1) times the product "
                "of the strides of the layers BEFORE layer l.",
            ),
        ),
    ),
    Check(
        name="conv_multiply_adds",
        question="q5",
        uses=("conv_multiply_adds",),
        exercise=exercise_multiply_adds,
        cases=(
            {"rows": ((3, 8, 3, 8, 8), (1, 1, 1, 1, 1))},
            {"rows": ((16, 32, 5, 4, 6), (64, 16, 1, 7, 7), (2, 3, 3, 5, 1))},
        ),
        outputs=(
            Output(
                "multiply_adds",
                hint="Each output value (out_channels x height x "
                "width of them) needs in_channels * k * k "
                "multiply-adds.",
            ),
        ),
    ),
]
