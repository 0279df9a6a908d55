"""Reference implementation of chapter 04: residual, inception and dense blocks, small networks.

Two copies of the reference, by rule: this module (the grading oracle that writes the expected
data) and the master's solution blocks (what the released solution notebook runs) are kept as
independent oracles, neither generated from the other; ``tests/test_check_coverage.py`` runs
every check's exercise on both and compares them with the kit's comparison rule.

Conventions (as in the notebook): images are (N, C, H, W); every convolution that is followed
by batch normalization has no bias (the normalization's shift makes it redundant); submodule
names are fixed so that the grader can install weights by name.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def count_parameters(module: nn.Module) -> int:
    """Number of scalar trainable parameters (``requires_grad``) of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def receptive_field(kernel_sizes: Sequence[int], strides: Sequence[int]) -> int:
    """Receptive field (in input pixels, along one axis) of one output unit of a stack of
    convolutions/poolings with the given kernel sizes and strides (first layer first).

    r = 1 + sum_l (k_l - 1) * prod_{j < l} s_j.
    """
    assert len(kernel_sizes) == len(strides), "one stride per kernel size"
    field, jump = 1, 1
    for kernel, stride in zip(kernel_sizes, strides):
        field += (kernel - 1) * jump
        jump *= stride
    return field


def conv_multiply_adds(
    in_channels: int, out_channels: int, kernel_size: int, height: int, width: int
) -> int:
    """Multiply-adds of a kernel_size x kernel_size convolution producing an output of
    (out_channels, height, width) from in_channels channels (bias ignored)."""
    return in_channels * kernel_size * kernel_size * out_channels * height * width


class ResidualBlock(nn.Module):
    """Post-activation basic block: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).

    x (N, in_channels, H, W) -> (N, out_channels, ceil(H / stride), ceil(W / stride)).
    Submodules: conv1 (3x3, stride, padding 1), bn1, conv2 (3x3, padding 1), bn2; when
    ``stride != 1`` or the channels change, ``shortcut`` = Sequential(1x1 conv with stride,
    BatchNorm2d); otherwise the shortcut is the identity (no parameters).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class PreActResidualBlock(nn.Module):
    """Pre-activation block: conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut, no final ReLU.

    x (N, in_channels, H, W) -> (N, out_channels, ceil(H / stride), ceil(W / stride)).
    Submodules: bn1 (in_channels), conv1 (3x3, stride, padding 1), bn2, conv2 (3x3, padding 1);
    when the shape changes, ``shortcut`` = a 1x1 convolution with stride applied to the
    pre-activated input relu(bn1(x)); otherwise the identity on x.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = torch.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv1(pre)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + skip


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int) -> list[nn.Module]:
    """[Conv2d (same padding, no bias), BatchNorm2d, ReLU]."""
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]


class InceptionBlock(nn.Module):
    """Four parallel branches concatenated along channels, in this order:

    branch1: 1x1 conv;  branch2: 1x1 reduce, 3x3;  branch3: 1x1 reduce, 5x5;
    branch4: 3x3 max-pool (stride 1, padding 1), 1x1 projection.
    Every convolution is followed by BatchNorm2d and ReLU; each branch is an nn.Sequential
    (indices: conv 0, bn 1, relu 2, conv 3, bn 4, relu 5; branch4: pool 0, conv 1, bn 2).
    x (N, in_channels, H, W) -> (N, c1x1 + c3x3 + c5x5 + pool_proj, H, W).
    """

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
        super().__init__()
        self.branch1 = nn.Sequential(*conv_bn_relu(in_channels, c1x1, 1))
        self.branch2 = nn.Sequential(
            *conv_bn_relu(in_channels, c3x3_reduce, 1), *conv_bn_relu(c3x3_reduce, c3x3, 3)
        )
        self.branch3 = nn.Sequential(
            *conv_bn_relu(in_channels, c5x5_reduce, 1), *conv_bn_relu(c5x5_reduce, c5x5, 5)
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1), *conv_bn_relu(in_channels, pool_proj, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch1, self.branch2, self.branch3, self.branch4)
        return torch.cat([branch(x) for branch in branches], dim=1)


class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (bn_size * growth_rate channels)-BN-ReLU-conv3x3 (growth_rate), and the
    new features concatenated after the input.

    Submodules: bn1, conv1, bn2, conv2. x (N, C, H, W) -> (N, C + growth_rate, H, W).
    """

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int):
        super().__init__()
        width = bn_size * growth_rate
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, growth_rate, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = self.conv1(torch.relu(self.bn1(x)))
        new = self.conv2(torch.relu(self.bn2(new)))
        return torch.cat([x, new], dim=1)


class DenseBlock(nn.Module):
    """``num_layers`` DenseLayers in ``layers`` (an nn.ModuleList); layer i gets
    in_channels + i * growth_rate channels. x (N, C, H, W) -> (N, C + L * growth_rate, H, W)."""

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int):
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size)
            for i in range(num_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class TransitionLayer(nn.Module):
    """BN-ReLU-conv1x1-avgpool(2): x (N, C_in, H, W) -> (N, C_out, H // 2, W // 2).
    Submodules: bn, conv."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d(self.conv(torch.relu(self.bn(x))), 2)


def global_average_pool(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C): the mean over the two spatial dimensions."""
    return x.mean(dim=(2, 3))


class SmallResNet(nn.Module):
    """stem (conv3x3 1->16, BN, ReLU), ResidualBlocks 16->16 (stride 1), 16->32 (2),
    32->64 (2), global average pooling, fc 64->num_classes. x (N, 1, H, W) -> (N, classes).
    Submodules: stem_conv, stem_bn, stages (nn.Sequential of the three blocks), fc."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.stem_conv = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(16)
        self.stages = nn.Sequential(
            ResidualBlock(16, 16, 1), ResidualBlock(16, 32, 2), ResidualBlock(32, 64, 2)
        )
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem_bn(self.stem_conv(x)))
        return self.fc(global_average_pool(self.stages(x)))


class SmallGoogLeNet(nn.Module):
    """stem (conv3x3 1->32, BN, ReLU), InceptionBlock(32, 16, 16, 24, 4, 8, 8) (56 channels),
    max-pool 2, InceptionBlock(56, 24, 24, 32, 8, 16, 16) (88 channels), global average
    pooling, fc 88->num_classes. Submodules: stem_conv, stem_bn, inception1, inception2, fc."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.stem_conv = nn.Conv2d(1, 32, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(32)
        self.inception1 = InceptionBlock(32, 16, 16, 24, 4, 8, 8)
        self.inception2 = InceptionBlock(56, 24, 24, 32, 8, 16, 16)
        self.fc = nn.Linear(88, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem_bn(self.stem_conv(x)))
        x = nn.functional.max_pool2d(self.inception1(x), 2)
        return self.fc(global_average_pool(self.inception2(x)))


class SmallDenseNet(nn.Module):
    """stem conv3x3 1->16, DenseBlock(3, 16, 8, 2) (40 channels), TransitionLayer(40, 20),
    DenseBlock(3, 20, 8, 2) (44 channels), final BN and ReLU, global average pooling,
    fc 44->num_classes. Submodules: stem_conv, block1, transition, block2, final_bn, fc."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.stem_conv = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.block1 = DenseBlock(3, 16, 8, 2)
        self.transition = TransitionLayer(40, 20)
        self.block2 = DenseBlock(3, 20, 8, 2)
        self.final_bn = nn.BatchNorm2d(44)
        self.fc = nn.Linear(44, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.transition(self.block1(self.stem_conv(x))))
        return self.fc(global_average_pool(torch.relu(self.final_bn(x))))
