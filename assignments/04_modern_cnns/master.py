# %% [raw]
# # ASSIGNMENT CONFIG
# name: 04_modern_cnns
# init_cell: false
# run_tests: false
# strip_solutions_from_all_cells: true
# export_cell:
#   pdf: false
#   run_tests: true
#   instructions: "Upload the zip this cell writes (or the .ipynb itself) to Gradescope; in Colab, use File > Download > Download .ipynb and upload that. The grader re-runs your definitions in a sandbox and skips the experiment cells, so their outputs do not matter for your score."
# tests:
#   files: true

# %% [markdown]
# # Chapter 04 — Modern CNNs: residual, inception and dense blocks
#
# Chapter 02 built a convolution by hand. This chapter is about *architecture*: how the
# networks that won ImageNet from 2014 on (GoogLeNet, ResNet, DenseNet) arrange ordinary
# layers so that deep models train well and cost little. You write the three famous building
# blocks from `torch.nn` layers, assemble a small network from each, and then measure the
# claims made for them on handwritten digits: that residual connections let deep networks
# train, that 1x1 convolutions make wide blocks cheap, that reusing features saves parameters.
#
# **Allowed:** every `torch.nn` layer (`nn.Conv2d`, `nn.BatchNorm2d`, `nn.ReLU`, pooling,
# `nn.Sequential`, `nn.ModuleList`, ...), `torch.nn.functional`, autograd, `torch.optim`.
#
# {{FORBIDDEN_RULES}}
#
# What costs points is *using* a forbidden module in a graded class or function; an import
# that nothing graded uses is not charged (the grader does not have `torchvision` installed,
# so delete such an import anyway).
#
# **Other rules the grader enforces.** Never change an input tensor in place (`x += ...`,
# `x[...] = ...` or an in-place method such as `x.clamp_()` on a tensor you were given): every
# output recorded after an input changed fails. Each function and method is called at least
# twice in a row on different inputs, so nothing may carry over from one call to the next.
# Where a class or function is graded with the grader's own parts in place of yours (each such
# place says so), build and call those parts by their names and never test `isinstance`
# against your own classes.
#
# **How this notebook is graded.** The grader builds each of your blocks, converts it to
# float64 and **installs seeded weights by name**, so the submodule names and shapes in each
# docstring are part of the specification (a missing or misshapen one is named in the failure
# message). It then runs two forward passes in training mode, back-propagates a seeded loss and
# compares, as separate items: the output, the gradient with respect to the input, the
# gradients of the parameters, the batch-norm running statistics, the output in eval mode, and
# the number of parameters. The three networks of section 4 are graded with the grader's own
# stand-in blocks (see there), so a bug in a block costs only that block's points. Cells that
# start with `# EXPERIMENT` are not run by the grader.
#
# ## Conventions
# * Images are `(N, C, H, W)`. A 3x3 convolution with `padding=1` (a 5x5 with `padding=2`)
#   keeps `H` and `W`; with `stride=2` it maps `H` to `ceil(H / 2)`.
# * **Every convolution in this chapter has `bias=False`**; only the `fc` layers have a bias.
#   For a convolution followed by batch normalization the reason is exact: in training mode
#   batch norm subtracts the per-channel mean of its input, which removes any constant the
#   convolution added, and then adds its own learned shift `beta`, so a convolution bias would
#   be a parameter that can never change the output. The convolutions followed by an addition,
#   a concatenation or a pooling (the pre-activation block's `conv2` and shortcut,
#   `DenseLayer.conv2`, `TransitionLayer.conv`) feed a batch norm a little later (the next
#   block's), which removes their constant just as well; they are bias-free too, as in the
#   reference implementations of these networks. The grader installs exactly the parameters
#   each docstring names: a convolution that keeps its bias changes the parameter count, the
#   running statistics and the eval-mode output.
# * Batch norm layers are `nn.BatchNorm2d(C)` with PyTorch's defaults (`eps=1e-5`,
#   `momentum=0.1`).

# %%
import math

import torch
from torch import nn

# %% [markdown]
# ## 1. Residual blocks
#
# **The degradation problem.** Stack more layers on a network that trains well and, past some
# depth, the *training* error goes up. This is not overfitting (that would lower the training
# error); the deeper network could in principle copy the shallower one and set the extra
# layers to the identity, yet gradient descent does not find that solution. He et al. (2015)
# made the identity the easy default: a residual block computes
#
# `y = relu(F(x) + x)`
#
# where `F` is a small stack of layers. If the best thing a block can do is nothing, it only
# has to push `F` towards zero, which weight decay and small initial weights already do. The
# backward pass shows the second benefit: `dy/dx = dF/dx + I`, so the gradient reaching early
# layers always contains an un-attenuated copy of the gradient at the top, however many blocks
# sit in between. The experiment at the end of the notebook measures both effects.
#
# **The basic block** (post-activation, as in the original paper):
#
# ```
# x ──► conv1 3x3 (stride s) ─► bn1 ─► relu ─► conv2 3x3 ─► bn2 ──► (+) ─► relu ─► y
# │                                                                  ▲
# └──────────────────────────── shortcut ────────────────────────────┘
# ```
#
# **Shapes.** With `stride=2` or with `out_channels != in_channels`, `F(x)` and `x` no longer
# have the same shape, and adding them would fail (or, worse, silently broadcast when
# `in_channels == 1`). The shortcut then becomes a *projection*: a 1x1 convolution with the
# block's stride (it picks every second pixel and mixes channels), followed by batch norm. When
# the shapes agree the shortcut is the identity and has no parameters.
#
# **The pre-activation block** (He et al., 2016) moves batch norm and ReLU *before* each
# convolution and leaves the sum alone:
#
# `y = conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut`
#
# There is no ReLU after the addition, so the path from `x` to `y` through the shortcut is a
# pure identity: stacking blocks gives `x_L = x_0 + sum of the residuals`, and the gradient of
# the loss reaches every block unchanged through that sum. When the shape changes, the
# projection (a 1x1 convolution with stride, no batch norm) is applied to the *pre-activated*
# input `relu(bn1(x))`, the tensor that also enters `conv1`.
#
# | class | submodules (names are graded) |
# |---|---|
# | `ResidualBlock` | `conv1` (3x3, stride, padding 1), `bn1`, `conv2` (3x3, padding 1), `bn2`; `shortcut` = `nn.Sequential(1x1 conv with stride, BatchNorm2d)` only when the shape changes |
# | `PreActResidualBlock` | `bn1` (on `in_channels`), `conv1` (3x3, stride, padding 1), `bn2`, `conv2` (3x3, padding 1); `shortcut` = one 1x1 conv with stride, only when the shape changes |

# %% [raw]
# # BEGIN QUESTION
# name: q1
# points: 8

# %% [raw]
# # BEGIN SOLUTION

# %%
class ResidualBlock(nn.Module):
    """Post-activation residual block: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).

    x: (N, in_channels, H, W) -> (N, out_channels, ceil(H / stride), ceil(W / stride)).
    Submodules: conv1, bn1, conv2, bn2, and shortcut (Sequential(conv 1x1, BatchNorm2d)) when
    stride != 1 or in_channels != out_channels.
    """

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        # BEGIN SOLUTION NO PROMPT
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("ResidualBlock.__init__")
        """ # END PROMPT

    def forward(self, x):
        assert x.ndim == 4, f"ResidualBlock expects (N, C, H, W), got shape {tuple(x.shape)}"
        # BEGIN SOLUTION NO PROMPT
        residual = torch.relu(self.bn1(self.conv1(x)))
        residual = self.bn2(self.conv2(residual))
        return torch.relu(residual + self.shortcut(x))
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("ResidualBlock.forward")
        """ # END PROMPT


class PreActResidualBlock(nn.Module):
    """Pre-activation residual block: conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut.

    x: (N, in_channels, H, W) -> (N, out_channels, ceil(H / stride), ceil(W / stride)).
    Submodules: bn1 (in_channels), conv1, bn2, conv2, and shortcut (one 1x1 conv with stride,
    applied to relu(bn1(x))) when the shape changes; otherwise the identity on x.
    """

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        # BEGIN SOLUTION NO PROMPT
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.needs_projection = stride != 1 or in_channels != out_channels
        if self.needs_projection:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("PreActResidualBlock.__init__")
        """ # END PROMPT

    def forward(self, x):
        assert x.ndim == 4, f"PreActResidualBlock expects (N, C, H, W), got {tuple(x.shape)}"
        # BEGIN SOLUTION NO PROMPT
        activated = torch.relu(self.bn1(x))
        skip = self.shortcut(activated) if self.needs_projection else x
        residual = self.conv2(torch.relu(self.bn2(self.conv1(activated))))
        return residual + skip
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("PreActResidualBlock.forward")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
block = ResidualBlock(4, 4)
names = sorted(name for name, _ in block.named_parameters())
assert names == ["bn1.bias", "bn1.weight", "bn2.bias", "bn2.weight", "conv1.weight", "conv2.weight"], f"ResidualBlock(4, 4) has an identity shortcut and bias-free convolutions; its parameters should be conv1/bn1/conv2/bn2 only, found {names}"
names = sorted(name for name, _ in ResidualBlock(4, 8, stride=2).named_parameters())
assert "shortcut.0.weight" in names and "shortcut.1.weight" in names, f"ResidualBlock(4, 8, stride=2) needs shortcut = nn.Sequential(conv 1x1, BatchNorm2d); found {names}"
names = sorted(name for name, _ in ResidualBlock(3, 6).named_parameters())
assert "shortcut.0.weight" in names and "shortcut.1.weight" in names, f"ResidualBlock(3, 6) keeps the stride 1 but changes the channels, so it needs the projection shortcut too (a 3-channel x cannot be added to a 6-channel F(x)); found {names}"
names = sorted(name for name, _ in PreActResidualBlock(4, 8, stride=2).named_parameters())
assert names == ["bn1.bias", "bn1.weight", "bn2.bias", "bn2.weight", "conv1.weight", "conv2.weight", "shortcut.weight"], f"PreActResidualBlock(4, 8, stride=2): bn1, conv1, bn2, conv2 and shortcut = ONE 1x1 convolution (no batch norm, and like every convolution of the chapter bias=False); found {names}"
names = sorted(name for name, _ in PreActResidualBlock(4, 4).named_parameters())
assert names == ["bn1.bias", "bn1.weight", "bn2.bias", "bn2.weight", "conv1.weight", "conv2.weight"], f"PreActResidualBlock(4, 4) keeps the shape: identity shortcut, no parameters besides bn1, conv1, bn2, conv2 (all convolutions bias=False); found {names}"

# %%
x = torch.randn(2, 4, 7, 7, generator=torch.Generator().manual_seed(0))
y = ResidualBlock(4, 8, stride=2)(x)
assert y.shape == (2, 8, 4, 4), f"ResidualBlock(4, 8, stride=2) maps (2, 4, 7, 7) to (2, 8, 4, 4), got {tuple(y.shape)}"
assert (y >= 0).all(), "the basic block ends with a ReLU after the addition"
z = PreActResidualBlock(4, 8, stride=2)(x)
assert z.shape == (2, 8, 4, 4), f"PreActResidualBlock(4, 8, stride=2) maps (2, 4, 7, 7) to (2, 8, 4, 4), got {tuple(z.shape)}"
assert (z < 0).any(), "the pre-activation block has no ReLU after the addition"

# %%
block = ResidualBlock(3, 3).eval()
for module in (block.bn2,):
    nn.init.zeros_(module.weight)
x = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(1))
assert torch.allclose(block(x), torch.relu(x)), "with bn2's scale at zero the residual branch outputs zero, so the block must return relu(x + 0): is the shortcut the identity?"

# %%
block = PreActResidualBlock(4, 8, stride=2).double()
nn.init.zeros_(block.conv2.weight)
x = torch.randn(2, 4, 7, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
skip = nn.functional.conv2d(torch.relu(block.bn1(x)), block.shortcut.weight, stride=2)
assert torch.allclose(block(x), skip), "with conv2's weights at zero the residual is zero, so the block must return shortcut(relu(bn1(x))): the projection takes the PRE-ACTIVATED input, the tensor that also enters conv1, not x itself"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 2. The inception block
#
# Which kernel size is right for a layer: 1x1, 3x3 or 5x5? GoogLeNet's answer (Szegedy et
# al., 2014) is all of them, side by side, and let training decide. An inception block runs
# four branches on the same input and concatenates their outputs along the channel axis:
#
# | branch | layers | channels out |
# |---|---|---|
# | `branch1` | 1x1 conv | `c1x1` |
# | `branch2` | 1x1 conv (`c3x3_reduce`), 3x3 conv (padding 1) | `c3x3` |
# | `branch3` | 1x1 conv (`c5x5_reduce`), 5x5 conv (padding 2) | `c5x5` |
# | `branch4` | 3x3 max-pool (stride 1, padding 1), 1x1 conv | `pool_proj` |
#
# Every convolution is followed by `BatchNorm2d` and `ReLU`, and every branch keeps `H` and
# `W`, so the concatenation `torch.cat([b1, b2, b3, b4], dim=1)` has
# `c1x1 + c3x3 + c5x5 + pool_proj` channels.
#
# **Why the 1x1 "reduce" convolutions.** A 5x5 convolution from 192 to 32 channels on a 28x28
# map costs `192 * 5 * 5 * 32 * 28 * 28 ≈ 120` million multiply-adds. Squeezing the input to 16
# channels first with a 1x1 convolution costs `192 * 16 * 28 * 28 ≈ 2.4` million, and the 5x5
# from 16 channels `16 * 25 * 32 * 28 * 28 ≈ 10` million: ten times cheaper, for a layer that
# only mixes channels. The same trick bounds the pooling branch: max-pooling keeps all input
# channels, so a 1x1 projection chooses how many it passes on.
#
# **Names (graded).** Each branch is an `nn.Sequential` whose indices follow the table:
# `branch1 = Sequential(conv, bn, relu)`;
# `branch2 = Sequential(conv 1x1, bn, relu, conv 3x3, bn, relu)` (and `branch3` with the 5x5);
# `branch4 = Sequential(maxpool, conv 1x1, bn, relu)`. So `branch2.3.weight` is the 3x3
# kernel and `branch4.1.weight` the pool projection.

# %% [raw]
# # BEGIN QUESTION
# name: q2
# points: 4

# %% [raw]
# # BEGIN SOLUTION

# %%
class InceptionBlock(nn.Module):
    """Four parallel branches (1x1 | 1x1-3x3 | 1x1-5x5 | pool-1x1), concatenated on dim 1.

    x: (N, in_channels, H, W) -> (N, c1x1 + c3x3 + c5x5 + pool_proj, H, W).
    Submodules: branch1, branch2, branch3, branch4 (nn.Sequential, indices as in the table).
    """

    def __init__(self, in_channels, c1x1, c3x3_reduce, c3x3, c5x5_reduce, c5x5, pool_proj):
        super().__init__()
        # BEGIN SOLUTION NO PROMPT
        def conv_bn_relu(c_in, c_out, k):
            return [nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), nn.BatchNorm2d(c_out),
                    nn.ReLU()]

        self.branch1 = nn.Sequential(*conv_bn_relu(in_channels, c1x1, 1))
        self.branch2 = nn.Sequential(*conv_bn_relu(in_channels, c3x3_reduce, 1),
                                     *conv_bn_relu(c3x3_reduce, c3x3, 3))
        self.branch3 = nn.Sequential(*conv_bn_relu(in_channels, c5x5_reduce, 1),
                                     *conv_bn_relu(c5x5_reduce, c5x5, 5))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                     *conv_bn_relu(in_channels, pool_proj, 1))
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("InceptionBlock.__init__")
        """ # END PROMPT

    def forward(self, x):
        assert x.ndim == 4, f"InceptionBlock expects (N, C, H, W), got shape {tuple(x.shape)}"
        # BEGIN SOLUTION NO PROMPT
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)],
                         dim=1)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("InceptionBlock.forward")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
block = InceptionBlock(3, 2, 2, 3, 1, 2, 4)
x = torch.randn(2, 3, 5, 6, generator=torch.Generator().manual_seed(0))
y = block(x)
assert y.shape == (2, 11, 5, 6), f"InceptionBlock(3, 2, 2, 3, 1, 2, 4) maps (2, 3, 5, 6) to (2, 2+3+2+4, 5, 6) = (2, 11, 5, 6), got {tuple(y.shape)}"
assert tuple(block.branch2[3].weight.shape) == (3, 2, 3, 3), "branch2[3] is the 3x3 convolution from c3x3_reduce to c3x3 channels"
assert tuple(block.branch4[1].weight.shape) == (4, 3, 1, 1), "branch4[1] is the 1x1 pool projection"
assert (y >= 0).all(), "every branch ends with a ReLU"
block.eval()
parts = [block.branch1(x), block.branch2(x), block.branch3(x), block.branch4(x)]
assert torch.allclose(block(x), torch.cat(parts, dim=1)), "the output is torch.cat([branch1(x), branch2(x), branch3(x), branch4(x)], dim=1): the 1x1, 3x3, 5x5 and pool branches in this order"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 3. Dense blocks
#
# A residual block *adds* what it computes to its input. DenseNet (Huang et al., 2017)
# *concatenates* instead: every layer receives the feature maps of all layers before it in
# the block and appends `growth_rate` new channels of its own. After `L` layers a block that
# started with `C` channels holds `C + L * growth_rate`. Because each layer can reuse every
# earlier feature directly, it only needs to add a few new ones, and DenseNets reach a given
# accuracy with far fewer parameters than ResNets.
#
# * `DenseLayer(in_channels, growth_rate, bn_size)`: BN, ReLU, 1x1 conv to
#   `bn_size * growth_rate` channels (the *bottleneck*, which keeps the 3x3 cheap however wide
#   the input grows), BN, ReLU, 3x3 conv (padding 1) to `growth_rate` channels; returns
#   `torch.cat([x, new], dim=1)`, input first. Submodules `bn1`, `conv1`, `bn2`, `conv2`.
# * `DenseBlock(num_layers, in_channels, growth_rate, bn_size)`: `layers`, an `nn.ModuleList` of
#   `num_layers` DenseLayers, layer `i` built with `in_channels + i * growth_rate` input
#   channels; `forward` feeds each layer the previous layer's output.
# * `TransitionLayer(in_channels, out_channels)`: between blocks, BN, ReLU, 1x1 conv
#   (`out_channels`, usually half the input, to stop the channel count from growing without
#   bound), then 2x2 average pooling with stride 2. Submodules `bn`, `conv`.
#
# **How `DenseBlock` is graded.** The grader replaces `DenseLayer` with a stand-in layer of its
# own while it builds your block, so build the layers by calling `DenseLayer(...)` in
# `__init__` (not a copy of it under another name), and do not test `isinstance` against your
# own class.

# %% [raw]
# # BEGIN QUESTION
# name: q3
# points: 8

# %% [raw]
# # BEGIN SOLUTION

# %%
class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1-BN-ReLU-conv3x3, new features appended after the input.

    x: (N, in_channels, H, W) -> (N, in_channels + growth_rate, H, W).
    Submodules: bn1, conv1 (1x1, bn_size * growth_rate channels), bn2, conv2 (3x3).
    """

    def __init__(self, in_channels, growth_rate, bn_size):
        super().__init__()
        # BEGIN SOLUTION NO PROMPT
        width = bn_size * growth_rate
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, growth_rate, 3, padding=1, bias=False)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("DenseLayer.__init__")
        """ # END PROMPT

    def forward(self, x):
        assert x.ndim == 4, f"DenseLayer expects (N, C, H, W), got shape {tuple(x.shape)}"
        # BEGIN SOLUTION NO PROMPT
        new = self.conv1(torch.relu(self.bn1(x)))
        new = self.conv2(torch.relu(self.bn2(new)))
        return torch.cat([x, new], dim=1)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("DenseLayer.forward")
        """ # END PROMPT


class DenseBlock(nn.Module):
    """num_layers DenseLayers in self.layers (nn.ModuleList), each fed the previous output.

    x: (N, in_channels, H, W) -> (N, in_channels + num_layers * growth_rate, H, W).
    """

    def __init__(self, num_layers, in_channels, growth_rate, bn_size):
        super().__init__()
        # BEGIN SOLUTION NO PROMPT
        self.layers = nn.ModuleList()
        for i in range(num_layers):
            self.layers.append(DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size))
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("DenseBlock.__init__")
        """ # END PROMPT

    def forward(self, x):
        assert x.ndim == 4, f"DenseBlock expects (N, C, H, W), got shape {tuple(x.shape)}"
        # BEGIN SOLUTION NO PROMPT
        for layer in self.layers:
            x = layer(x)
        return x
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("DenseBlock.forward")
        """ # END PROMPT


class TransitionLayer(nn.Module):
    """BN-ReLU-conv1x1-avgpool(2, stride 2).

    x: (N, in_channels, H, W) -> (N, out_channels, H // 2, W // 2). Submodules: bn, conv.
    """

    def __init__(self, in_channels, out_channels):
        super().__init__()
        # BEGIN SOLUTION NO PROMPT
        self.bn = nn.BatchNorm2d(in_channels)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = nn.AvgPool2d(2)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("TransitionLayer.__init__")
        """ # END PROMPT

    def forward(self, x):
        assert x.ndim == 4, f"TransitionLayer expects (N, C, H, W), got shape {tuple(x.shape)}"
        # BEGIN SOLUTION NO PROMPT
        return self.pool(self.conv(torch.relu(self.bn(x))))
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("TransitionLayer.forward")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
x = torch.randn(2, 4, 5, 5, generator=torch.Generator().manual_seed(0))
y = DenseLayer(4, 3, 2)(x)
assert y.shape == (2, 7, 5, 5), f"DenseLayer(4, growth_rate=3, bn_size=2) maps 4 channels to 4 + 3 = 7, got {tuple(y.shape)}"
assert torch.equal(y[:, :4], x), "the input comes first in the concatenation, unchanged"
layer = DenseLayer(4, 3, 2)
assert tuple(layer.conv1.weight.shape) == (6, 4, 1, 1) and tuple(layer.conv2.weight.shape) == (3, 6, 3, 3), "DenseLayer(4, growth_rate=3, bn_size=2): conv1 is the bottleneck, a 1x1 convolution to bn_size * growth_rate = 6 channels; conv2 maps those 6 to growth_rate = 3 with a 3x3 kernel"
layer = layer.double()
x = torch.randn(2, 4, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
new = layer.conv2(torch.relu(layer.bn2(layer.conv1(torch.relu(layer.bn1(x))))))
assert torch.allclose(layer(x), torch.cat([x, new], dim=1)), "DenseLayer computes bn1 -> ReLU -> conv1 -> bn2 -> ReLU -> conv2 and appends the result after x (every convolution has its batch norm and ReLU before it)"
biased = [f"{kind}.{name}" for kind, module in (("DenseLayer", DenseLayer(4, 3, 2)), ("TransitionLayer", TransitionLayer(6, 3))) for name, _ in module.named_parameters() if name.startswith("conv") and name.endswith("bias")]
assert biased == [], f"every convolution of this chapter has bias=False, also DenseLayer.conv2 and TransitionLayer.conv (see the conventions); found {biased}"

# %%
x = torch.randn(2, 4, 5, 5, generator=torch.Generator().manual_seed(0))
block = DenseBlock(3, 4, 2, 2)
assert [layer.conv2.weight.shape[0] for layer in block.layers] == [2, 2, 2], "each DenseLayer adds growth_rate channels"
assert [layer.bn1.num_features for layer in block.layers] == [4, 6, 8], "layer i sees in_channels + i * growth_rate channels"
assert block(x).shape == (2, 10, 5, 5), "DenseBlock(3, 4, 2, 2) maps 4 channels to 4 + 3 * 2 = 10"

# %%
x = torch.randn(2, 6, 7, 5, generator=torch.Generator().manual_seed(0))
y = TransitionLayer(6, 3)(x)
assert y.shape == (2, 3, 3, 2), f"TransitionLayer(6, 3) maps (2, 6, 7, 5) to (2, 3, 3, 2) (average pooling 2x2, sizes rounded down), got {tuple(y.shape)}"
layer = TransitionLayer(6, 3).double()
x = x.double()
assert torch.allclose(layer(x), nn.functional.avg_pool2d(layer.conv(torch.relu(layer.bn(x))), 2)), "TransitionLayer computes avg_pool2d(conv(relu(bn(x))), 2): bn, ReLU, the 1x1 conv, then AVERAGE pooling with kernel 2 and stride 2"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 4. Three small networks
#
# Each network follows the same plan as its big ImageNet ancestor, scaled to 1-channel digits
# of 8x8 (or 16x16) pixels: a *stem* convolution, a few blocks that widen the channels while
# halving the resolution, **global average pooling** (the mean of each channel over all
# positions, `x.mean(dim=(2, 3))`, shape `(N, C)`), and one linear classifier. Global pooling
# replaces the big fully connected layers of AlexNet and VGG: it has no parameters, works for
# any input size, and forces every channel to act as a detector whose average presence is
# evidence for a class.
#
# | network | layers (submodule names in `code`) |
# |---|---|
# | `SmallResNet` | `stem_conv` 3x3 1→16 (padding 1), `stem_bn`, ReLU; `stages` = `nn.Sequential(ResidualBlock(16, 16, 1), ResidualBlock(16, 32, 2), ResidualBlock(32, 64, 2))`; global average pooling; `fc` 64→`num_classes` |
# | `SmallGoogLeNet` | `stem_conv` 3x3 1→32, `stem_bn`, ReLU; `inception1` = `InceptionBlock(32, 16, 16, 24, 4, 8, 8)` (56 channels); 2x2 max-pool; `inception2` = `InceptionBlock(56, 24, 24, 32, 8, 16, 16)` (88 channels); global average pooling; `fc` 88→`num_classes` |
# | `SmallDenseNet` | `stem_conv` 3x3 1→16 (no batch norm: each dense layer starts with one); `block1` = `DenseBlock(3, 16, 8, 2)` (40 channels); `transition` = `TransitionLayer(40, 20)`; `block2` = `DenseBlock(3, 20, 8, 2)` (44 channels); `final_bn` (44), ReLU; global average pooling; `fc` 44→`num_classes` |
#
# Every stem convolution has `bias=False`; `fc` is an `nn.Linear` with a bias.
#
# **How the networks are graded.** The grader replaces your blocks (`ResidualBlock`,
# `InceptionBlock`, `DenseBlock`, `TransitionLayer`) with stand-ins of its own while it builds
# your network, records the arguments each block was built with, installs seeded weights into
# the parts the network owns itself (`stem_conv`, `stem_bn`, `final_bn`, `fc`), and compares
# the logits in eval mode, the output shape for several input sizes, and the parameter count.
# So: build the blocks by calling the classes above by their names inside `__init__`, pass
# them the arguments of the table, and use each block only through its `forward`. The public
# checks below do the same with stand-ins of their own, so they test the networks even before
# your blocks work.

# %% [raw]
# # BEGIN QUESTION
# name: q4
# points: 6

# %% [raw]
# # BEGIN SOLUTION

# %%
def global_average_pool(x):
    """(N, C, H, W) -> (N, C): the mean of each channel over all positions."""
    assert x.ndim == 4, f"global_average_pool expects (N, C, H, W), got {tuple(x.shape)}"
    return x.mean(dim=(2, 3))


class SmallResNet(nn.Module):
    """x: (N, 1, H, W) -> logits (N, num_classes). See the table for the layers."""

    def __init__(self, num_classes=10):
        super().__init__()
        # BEGIN SOLUTION NO PROMPT
        self.stem_conv = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(16)
        self.stages = nn.Sequential(ResidualBlock(16, 16, 1), ResidualBlock(16, 32, 2),
                                    ResidualBlock(32, 64, 2))
        self.fc = nn.Linear(64, num_classes)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("SmallResNet.__init__")
        """ # END PROMPT

    def forward(self, x):
        assert x.ndim == 4 and x.shape[1] == 1, f"SmallResNet expects (N, 1, H, W), got {tuple(x.shape)}"
        # BEGIN SOLUTION NO PROMPT
        x = torch.relu(self.stem_bn(self.stem_conv(x)))
        return self.fc(global_average_pool(self.stages(x)))
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("SmallResNet.forward")
        """ # END PROMPT


class SmallGoogLeNet(nn.Module):
    """x: (N, 1, H, W) -> logits (N, num_classes). See the table for the layers."""

    def __init__(self, num_classes=10):
        super().__init__()
        # BEGIN SOLUTION NO PROMPT
        self.stem_conv = nn.Conv2d(1, 32, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(32)
        self.inception1 = InceptionBlock(32, 16, 16, 24, 4, 8, 8)
        self.inception2 = InceptionBlock(56, 24, 24, 32, 8, 16, 16)
        self.fc = nn.Linear(88, num_classes)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("SmallGoogLeNet.__init__")
        """ # END PROMPT

    def forward(self, x):
        assert x.ndim == 4 and x.shape[1] == 1, f"SmallGoogLeNet expects (N, 1, H, W), got {tuple(x.shape)}"
        # BEGIN SOLUTION NO PROMPT
        x = torch.relu(self.stem_bn(self.stem_conv(x)))
        x = nn.functional.max_pool2d(self.inception1(x), 2)
        return self.fc(global_average_pool(self.inception2(x)))
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("SmallGoogLeNet.forward")
        """ # END PROMPT


class SmallDenseNet(nn.Module):
    """x: (N, 1, H, W) -> logits (N, num_classes). See the table for the layers."""

    def __init__(self, num_classes=10):
        super().__init__()
        # BEGIN SOLUTION NO PROMPT
        self.stem_conv = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.block1 = DenseBlock(3, 16, 8, 2)
        self.transition = TransitionLayer(40, 20)
        self.block2 = DenseBlock(3, 20, 8, 2)
        self.final_bn = nn.BatchNorm2d(44)
        self.fc = nn.Linear(44, num_classes)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("SmallDenseNet.__init__")
        """ # END PROMPT

    def forward(self, x):
        assert x.ndim == 4 and x.shape[1] == 1, f"SmallDenseNet expects (N, 1, H, W), got {tuple(x.shape)}"
        # BEGIN SOLUTION NO PROMPT
        x = self.block2(self.transition(self.block1(self.stem_conv(x))))
        return self.fc(global_average_pool(torch.relu(self.final_bn(x))))
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("SmallDenseNet.forward")
        """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
built = []


class StandIn(nn.Module):
    """The tests' stand-in for one of your blocks, so that q4 is checked apart from q1-q3: a 1x1
    convolution (with the block's stride) and tanh, then optionally 2x2 average pooling, and
    optionally appended after the input. It records the arguments it was built with."""

    def __init__(self, args, c_in, c_out, stride=1, pool=1, concat=False):
        super().__init__()
        built.append(args)
        generator = torch.Generator().manual_seed(len(built))
        self.weight = nn.Parameter(torch.randn(c_out, c_in, 1, 1, generator=generator) / c_in**0.5)
        self.stride, self.pool, self.concat = stride, pool, concat

    def forward(self, x):
        assert x.ndim == 4 and x.shape[1] == self.weight.shape[1], f"a block built for {self.weight.shape[1]} input channels received an input of shape {tuple(x.shape)}: the channels passed to the block's constructor and the tensor fed to its forward disagree"
        y = torch.tanh(nn.functional.conv2d(x, self.weight, stride=self.stride))
        y = nn.functional.avg_pool2d(y, self.pool)
        return torch.cat([x, y], dim=1) if self.concat else y


stand_ins = {
    "ResidualBlock": lambda in_channels, out_channels, stride=1: StandIn(("ResidualBlock", in_channels, out_channels, stride), in_channels, out_channels, stride),
    "InceptionBlock": lambda in_channels, c1x1, c3x3_reduce, c3x3, c5x5_reduce, c5x5, pool_proj: StandIn(("InceptionBlock", in_channels, c1x1, c3x3_reduce, c3x3, c5x5_reduce, c5x5, pool_proj), in_channels, c1x1 + c3x3 + c5x5 + pool_proj),
    "DenseBlock": lambda num_layers, in_channels, growth_rate, bn_size: StandIn(("DenseBlock", num_layers, in_channels, growth_rate, bn_size), in_channels, num_layers * growth_rate, concat=True),
    "TransitionLayer": lambda in_channels, out_channels: StandIn(("TransitionLayer", in_channels, out_channels), in_channels, out_channels, pool=2),
}


def build_with_stand_ins(network_class, **kwargs):
    """network_class(**kwargs) built with the stand-ins in place of your blocks (as the grader
    does), in float64, with seeded weights in the layers the network owns."""
    built.clear()
    names = network_class.__init__.__globals__  # where your __init__ looks up ResidualBlock etc.
    saved = {name: names[name] for name in stand_ins}
    names.update(stand_ins)
    try:
        network = network_class(**kwargs).double()
    finally:
        names.update(saved)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, parameter in network.named_parameters():
            if not name.startswith(("stages", "inception", "block", "transition")):
                parameter.copy_(0.2 + 0.5 * torch.randn(parameter.shape, dtype=torch.float64, generator=generator))
    return network


tables = {
    SmallResNet: [("ResidualBlock", 16, 16, 1), ("ResidualBlock", 16, 32, 2), ("ResidualBlock", 32, 64, 2)],
    SmallGoogLeNet: [("InceptionBlock", 32, 16, 16, 24, 4, 8, 8), ("InceptionBlock", 56, 24, 24, 32, 8, 16, 16)],
    SmallDenseNet: [("DenseBlock", 3, 16, 8, 2), ("DenseBlock", 3, 20, 8, 2), ("TransitionLayer", 40, 20)],
}
owned = {
    SmallResNet: ["fc.bias", "fc.weight", "stem_bn.bias", "stem_bn.weight", "stem_conv.weight"],
    SmallGoogLeNet: ["fc.bias", "fc.weight", "stem_bn.bias", "stem_bn.weight", "stem_conv.weight"],
    SmallDenseNet: ["fc.bias", "fc.weight", "final_bn.bias", "final_bn.weight", "stem_conv.weight"],
}
for network_class, table in tables.items():
    network = build_with_stand_ins(network_class)
    found = sorted(built, key=lambda args: args[0])  # per kind of block, in the order built
    assert found == table, f"{network_class.__name__} builds its blocks with the arguments of the table (channels, strides, one call per block); it built {found}"
    own = sorted(name for name, _ in network.named_parameters() if not name.startswith(("stages", "inception", "block", "transition")))
    assert own == owned[network_class], f"{network_class.__name__}'s own layers are those of the table (every stem convolution with bias=False); found the parameters {own}"

# %%
x = torch.randn(3, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
for network_class in (SmallResNet, SmallGoogLeNet, SmallDenseNet):
    logits = build_with_stand_ins(network_class).eval()(x)
    assert logits.shape == (3, 10), f"{network_class.__name__} maps (3, 1, 8, 8) to logits (3, 10), got {tuple(logits.shape)}"
x = torch.randn(2, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
logits = build_with_stand_ins(SmallResNet, num_classes=4).eval()(x)
assert logits.shape == (2, 4), f"global average pooling makes the network work for 16x16 inputs and any num_classes; got {tuple(logits.shape)}"
sizes = []
googlenet = build_with_stand_ins(SmallGoogLeNet).eval()
googlenet.inception2.register_forward_hook(lambda module, inputs, output: sizes.append(tuple(inputs[0].shape[2:])))
googlenet(torch.randn(1, 1, 9, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))
assert sizes == [(4, 4)], f"the 2x2 max-pool between the inception blocks floors odd sizes (max_pool2d(x, 2), ceil_mode=False): 9x9 becomes 4x4, got {sizes}"

# %%
def batch_norm(bn, z):
    """Batch norm by its formula: the batch's statistics in training mode, the running ones in eval mode."""
    mean, var = (z.mean(dim=(0, 2, 3)), z.var(dim=(0, 2, 3), unbiased=False)) if bn.training else (bn.running_mean, bn.running_var)
    return (z - mean[:, None, None]) / torch.sqrt(var[:, None, None] + 1e-5) * bn.weight[:, None, None] + bn.bias[:, None, None]


plans = {
    SmallResNet: ("stem_conv -> stem_bn -> ReLU -> stages -> global average pooling -> fc",
                  lambda net, x: net.fc(net.stages(torch.relu(batch_norm(net.stem_bn, net.stem_conv(x)))).mean(dim=(2, 3)))),
    SmallGoogLeNet: ("stem_conv -> stem_bn -> ReLU -> inception1 -> max_pool2d(x, 2) -> inception2 -> global average pooling -> fc",
                     lambda net, x: net.fc(net.inception2(nn.functional.max_pool2d(net.inception1(torch.relu(batch_norm(net.stem_bn, net.stem_conv(x)))), 2)).mean(dim=(2, 3)))),
    SmallDenseNet: ("stem_conv -> block1 -> transition -> block2 -> final_bn -> ReLU -> global average pooling -> fc",
                    lambda net, x: net.fc(torch.relu(batch_norm(net.final_bn, net.block2(net.transition(net.block1(net.stem_conv(x)))))).mean(dim=(2, 3)))),
}
x = torch.randn(3, 1, 9, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
for network_class, (plan, by_hand) in plans.items():
    network = build_with_stand_ins(network_class)
    for mode in ("eval", "training"):
        network.train(mode == "training")
        logits = network(x)
        assert torch.allclose(logits, by_hand(network, x)), f"in {mode} mode, {network_class.__name__} computes {plan} (the blocks are the tests' stand-ins here, so this checks the network alone; its own batch norms use the batch's statistics in training mode and the running ones in eval mode)"
    logits.sum().backward()
    assert network.stem_conv.weight.grad is not None and network.stem_conv.weight.grad.abs().sum() > 0, f"the gradient of the loss must reach {network_class.__name__}.stem_conv: no .detach(), .data or torch.no_grad() in forward"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ## 5. Counting parameters and cost
#
# Three small functions that turn the design principles into numbers.
#
# * `count_parameters(module)`: the number of **trainable** scalars, the sum of `p.numel()` over
#   `module.parameters()` with `p.requires_grad`. (`parameters()` lists a parameter shared by
#   two layers once; running statistics of batch norm are buffers, not parameters.)
# * `receptive_field(kernel_sizes, strides)`: how many input pixels, along one axis, one unit of
#   the last layer of a stack can see. Each layer with kernel `k` widens the field by `k - 1`
#   steps of the layer below, and a step of layer `l` is as many input pixels as the product of
#   the strides before it: `r = 1 + sum_l (k_l - 1) * prod_{j<l} s_j`. Two 3x3 layers see 5
#   pixels, like one 5x5; three see 7.
# * `conv_multiply_adds(in_channels, out_channels, kernel_size, height, width)`: each of the
#   `out_channels * height * width` outputs is a sum of `in_channels * k * k` products.
#
# Each of the three returns a Python `int` (not a float: `math.pow` and `/` give floats).
#
# With these you can check the design rules of VGG and GoogLeNet yourself: two stacked 3x3
# convolutions see as far as one 5x5 with `2 * 9 = 18` instead of 25 weights per channel pair
# (and an extra nonlinearity), and a 1x1 reduction divides the cost of a wide convolution by
# the ratio of the channel counts.

# %% [raw]
# # BEGIN QUESTION
# name: q5
# points: 3

# %% [raw]
# # BEGIN SOLUTION

# %%
def count_parameters(module):
    """Number of trainable scalars (requires_grad) in module.parameters(); returns an int."""
    # BEGIN SOLUTION NO PROMPT
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("count_parameters")
    """ # END PROMPT


def receptive_field(kernel_sizes, strides):
    """Receptive field (pixels along one axis) of a stack; lists of ints, first layer first."""
    assert len(kernel_sizes) == len(strides), "give one stride per kernel size"
    # BEGIN SOLUTION NO PROMPT
    field, step = 1, 1
    for kernel, stride in zip(kernel_sizes, strides):
        field += (kernel - 1) * step
        step *= stride
    return field
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("receptive_field")
    """ # END PROMPT


def conv_multiply_adds(in_channels, out_channels, kernel_size, height, width):
    """Multiply-adds of a k x k convolution with an output of (out_channels, height, width)."""
    # BEGIN SOLUTION NO PROMPT
    return in_channels * kernel_size * kernel_size * out_channels * height * width
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("conv_multiply_adds")
    """ # END PROMPT

# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
assert count_parameters(nn.Linear(3, 2)) == 8, "nn.Linear(3, 2) has 3 * 2 weights and 2 biases"
assert count_parameters(nn.BatchNorm2d(4)) == 8, "BatchNorm2d(4) has 4 scales and 4 shifts; its running statistics are buffers"
frozen = nn.Linear(3, 2)
frozen.weight.requires_grad_(False)
assert count_parameters(frozen) == 2, "only trainable parameters count (requires_grad=True): nn.Linear(3, 2) with its weight frozen has 2 trainable scalars, its biases"

# %%
assert receptive_field([3, 3], [1, 1]) == 5, "two stacked 3x3 convolutions see 5 pixels"
assert receptive_field([3, 3], [2, 1]) == 7, "after a stride-2 layer, each step of the next layer covers 2 input pixels"
assert conv_multiply_adds(2, 3, 3, 4, 4) == 2 * 9 * 3 * 16, "each of the 3 * 4 * 4 outputs needs 2 * 3 * 3 products"
answers = {"count_parameters": count_parameters(nn.Linear(3, 2)), "receptive_field": receptive_field([3, 3], [2, 1]), "conv_multiply_adds": conv_multiply_adds(2, 3, 3, 4, 4)}
for function_name, answer in answers.items():
    assert isinstance(answer, int) and not isinstance(answer, bool), f"{function_name} returns a Python int, got {type(answer).__name__} (math.pow and / give floats)"

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# ### Questions to think about (not graded)
# 1. Use `conv_multiply_adds` to compare one 5x5 convolution (64 → 64 channels on 16x16) with
#    two 3x3 convolutions: by how much do they differ, and which sees further?
# 2. `SmallGoogLeNet`'s `inception2` reduces 56 channels to 8 before its 5x5. How many
#    multiply-adds would that branch cost without the reduction, on a 4x4 map?
# 3. Why does the `ResidualBlock` need its shortcut projection only in some blocks, and
#    what would happen to the first block of `SmallResNet` if it always had one?

# %% [markdown]
# ## 6. Experiments
#
# Everything below is marked `# EXPERIMENT` and is not graded. First a training module, in the
# spirit of PyTorch Lightning's, written in plain PyTorch: the model says how it is optimized
# and what one training, validation and test step does; `fit` runs the epochs and keeps the
# weights of the best validation epoch.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
import copy
import time

import matplotlib.pyplot as plt
from tqdm.auto import tqdm

from student.data import load_digits_splits, minibatches
from student.plots import plot_curves
from student.results import record
from student.seeding import seeded

splits = load_digits_splits(seed=0)
train, val, test = splits["train"], splits["val"], splits["test"]
print({name: tuple(split.images.shape) for name, split in splits.items()})


class TrainingModule:
    """Wraps a model with its optimizer, its steps, and best-checkpoint training."""

    def __init__(self, model, lr=1e-2, epochs=12, batch_size=64, seed=0):
        self.model, self.lr, self.epochs, self.batch_size = model, lr, epochs, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.history = {"train loss": [], "val accuracy": []}

    def configure_optimizer(self, steps):
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.lr / 3, weight_decay=1e-4)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.lr, total_steps=steps)
        return optimizer, schedule

    def training_step(self, images, labels):
        # label smoothing (targets 0.91 / 0.01 instead of 1 / 0) keeps the logits from growing
        # without bound on this small, easy training set
        return nn.functional.cross_entropy(self.model(images), labels, label_smoothing=0.1)

    @torch.no_grad()
    def validation_step(self, split):
        self.model.eval()
        return (self.model(split.images).argmax(dim=1) == split.labels).float().mean().item()

    test_step = validation_step

    def fit(self, train, val, label=""):
        batches = math.ceil(len(train.labels) / self.batch_size)
        optimizer, schedule = self.configure_optimizer(self.epochs * batches)
        best_accuracy, best_state = -1.0, None
        for _ in tqdm(range(self.epochs), desc=label, leave=False):
            self.model.train()
            losses = []
            for index in minibatches(len(train.labels), self.batch_size, self.generator):
                loss = self.training_step(train.images[index], train.labels[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                losses.append(loss.item())
            accuracy = self.validation_step(val)
            self.history["train loss"].append(sum(losses) / len(losses))
            self.history["val accuracy"].append(accuracy)
            if accuracy >= best_accuracy:
                best_accuracy, best_state = accuracy, copy.deepcopy(self.model.state_dict())
        self.model.load_state_dict(best_state)
        return best_accuracy

# %% [markdown]
# ### 6.1 Plain versus residual: the degradation problem
#
# Two networks of the same depth, 12 convolutions of 16 channels between a stem and the
# classifier. The plain one stacks conv-BN-ReLU; the residual one groups the same layers in
# pairs with identity shortcuts (your `ResidualBlock`). First the gradient at initialization:
# the norm of the loss gradient with respect to each convolution's weights, from the output
# back to the input. Then both are trained with the same settings.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
def plain_network(depth=12, width=16):
    layers = [nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    for _ in range(depth):
        layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))


def residual_network(depth=12, width=16):
    layers = [nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    layers += [ResidualBlock(width, width) for _ in range(depth // 2)]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))


def gradient_norms(model):
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, generator=generator)
    model.train()
    loss = nn.functional.cross_entropy(model(train.images[:256]), train.labels[:256])
    model.zero_grad()
    loss.backward()
    return [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, nn.Conv2d)
            and m.kernel_size == (3, 3)]


figure, axis = plt.subplots(figsize=(6, 3))
for name, build in (("plain", plain_network), ("residual", residual_network)):
    with seeded(0):  # the classifier's nn.Linear draws from the global generator
        model = build()
    axis.semilogy(range(1, 14), gradient_norms(model), marker="o", label=name)
axis.set_xlabel("3x3 convolution (1 = next to the input)")
axis.set_ylabel("gradient norm at init")
axis.legend()
axis.grid(alpha=0.3)
plt.show()

depth_results = {}
for name, build in (("plain", plain_network), ("residual", residual_network)):
    with seeded(0):  # PyTorch's layers draw their initial weights from the global generator
        model = build()
    module = TrainingModule(model, lr=1e-2, epochs=6)
    module.fit(train, val, label=name)
    depth_results[name] = module
plot_curves({name: m.history["train loss"] for name, m in depth_results.items()}, "training loss",
            "12 convolutions deep: plain vs residual")
plt.show()
for name, module in depth_results.items():
    print(f"{name:>8}: final training loss {module.history['train loss'][-1]:.3f}, "
          f"test accuracy {module.test_step(test):.3f}")
record(residual_minus_plain_final_loss=depth_results["residual"].history["train loss"][-1]
       - depth_results["plain"].history["train loss"][-1])  # for the course's tests; prints nothing

# %% [markdown]
# ### 6.2 Three architectures on the digits
#
# Each network is trained for the same number of epochs with the same schedule; the table
# reports the test accuracy of the best validation checkpoint, the parameter count (your
# `count_parameters`) and the training time on this machine.

# %% tags=["experiment"]
# EXPERIMENT: not run by the grader
rows = []
for network_class in (SmallResNet, SmallGoogLeNet, SmallDenseNet):
    with seeded(0):
        model = network_class()
    module = TrainingModule(model, lr=1e-2, epochs=12)
    began = time.perf_counter()
    module.fit(train, val, label=network_class.__name__)
    seconds = time.perf_counter() - began
    rows.append((network_class.__name__, module.test_step(test), count_parameters(module.model), seconds))

print(f"{'network':<16}{'test accuracy':>14}{'parameters':>12}{'seconds':>9}")
for name, accuracy, parameters, seconds in rows:
    print(f"{name:<16}{accuracy:>14.3f}{parameters:>12,}{seconds:>9.1f}")
record(best_test_accuracy=max(row[1] for row in rows))  # for the course's tests; prints nothing
