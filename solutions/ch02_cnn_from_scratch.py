"""Reference implementation of chapter 02 (a CNN from scratch): the grading oracle.

Never shipped to students. Torch tensors only, no autograd, no library convolution or pooling.
Images are (N, C, H, W); a convolution's weight is (F, C, k, k) and computes a
cross-correlation, as ``torch.nn.Conv2d`` does. The convolution is vectorised (im2col with
``Tensor.unfold`` and one batched matrix product; col2im by k * k strided additions); max pooling
routes each window's gradient to the window's first maximum in row-major order.
The chapter reuses chapter 01's Linear, ReLU, CrossEntropyLoss and Net.

Two copies of the reference, by rule: this module (the grading oracle that writes the expected
data) and the master's solution blocks (what the released solution notebook runs) are kept as
independent oracles, neither generated from the other; ``tests/test_check_coverage.py`` runs
every check's exercise on both and compares them with the kit's comparison rule.
"""

from __future__ import annotations

from typing import Any

import torch

from solutions.ch01_mlp_backprop import CrossEntropyLoss, Linear, Net, ReLU

__all__ = [
    "conv_output_size",
    "conv_param_count",
    "linear_param_count",
    "receptive_field",
    "Conv2dLoop",
    "Conv2d",
    "MaxPool2d",
    "Flatten",
    "CNN",
    "Linear",
    "ReLU",
    "CrossEntropyLoss",
]


# ------------------------------------------------------------------------ concept questions
def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """Output length along one spatial axis: 1 + (size + 2 padding - kernel_size) // stride."""
    return (size + 2 * padding - kernel_size) // stride + 1


def conv_param_count(in_channels: int, out_channels: int, kernel_size: int) -> int:
    """Weights (out, in, k, k) plus one bias per output channel."""
    return out_channels * in_channels * kernel_size * kernel_size + out_channels


def linear_param_count(in_features: int, out_features: int) -> int:
    """Weights (in, out) plus one bias per output feature."""
    return in_features * out_features + out_features


def receptive_field(layers: list[tuple[int, int]]) -> int:
    """Side of the input square that one output unit of a stack of (kernel_size, stride)
    layers (convolutions or poolings, padding irrelevant) depends on."""
    field, jump = 1, 1
    for kernel_size, stride in layers:
        field += (kernel_size - 1) * jump
        jump *= stride
    return field


# -------------------------------------------------------------------------------- helpers
def _pad(x: torch.Tensor, padding: int, value: float) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H + 2p, W + 2p), the border filled with ``value``."""
    if padding == 0:
        return x
    n, c, h, w = x.shape
    out = x.new_full((n, c, h + 2 * padding, w + 2 * padding), value)
    out[:, :, padding : padding + h, padding : padding + w] = x
    return out


def _crop(xp: torch.Tensor, padding: int) -> torch.Tensor:
    """Inverse of ``_pad`` for gradients: drops the border."""
    if padding == 0:
        return xp
    return xp[:, :, padding : xp.shape[2] - padding, padding : xp.shape[3] - padding]


def _windows(xp: torch.Tensor, kernel_size: int, stride: int) -> torch.Tensor:
    """(N, C, Hp, Wp) -> view (N, C, H', W', k, k) of every k x k window at the given stride."""
    return xp.unfold(2, kernel_size, stride).unfold(3, kernel_size, stride)


def _fold(windows: torch.Tensor, padded_shape: torch.Size, stride: int) -> torch.Tensor:
    """Adjoint of ``_windows``: sums (N, C, H', W', k, k) window gradients into (N, C, Hp, Wp)."""
    _, _, h_out, w_out, k, _ = windows.shape
    out = windows.new_zeros(padded_shape)
    for i in range(k):
        for j in range(k):
            out[
                :,
                :,
                i : i + stride * (h_out - 1) + 1 : stride,
                j : j + stride * (w_out - 1) + 1 : stride,
            ] += windows[:, :, :, :, i, j]
    return out


# ----------------------------------------------------------------------------- the layers
class Conv2dLoop:
    """2-D convolution (cross-correlation), zero padding.

    Attributes:
        weight: (out_channels, in_channels, k, k); bias: (out_channels,).
        grad_weight, grad_bias: same shapes, set by ``backward``.

    The reference of the loop question is the vectorised computation: both must agree.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
    ):
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.cache: Any = None
        self.init_params()

    def init_params(self, std: float = 0.7071, generator: torch.Generator | None = None) -> None:
        """weight ~ N(0, std^2) of shape (F, C, k, k); bias = 0 of shape (F,)."""
        k = self.kernel_size
        self.weight = std * torch.randn(
            self.out_channels, self.in_channels, k, k, generator=generator
        )
        self.bias = torch.zeros(self.out_channels)
        self.grad_weight = torch.zeros_like(self.weight)
        self.grad_bias = torch.zeros_like(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W) -> y: (N, F, H', W'), H' = 1 + (H + 2p - k) // s."""
        xp = _pad(x, self.padding, 0.0)
        windows = _windows(xp, self.kernel_size, self.stride)
        n, _, h_out, w_out = windows.shape[:4]
        # im2col, columns (C * k * k) by positions (H' * W'): the copy keeps W' innermost
        cols = windows.permute(0, 1, 4, 5, 2, 3).reshape(n, -1, h_out * w_out)
        self.cache = (cols, xp.shape, (h_out, w_out))
        y = self.weight.reshape(self.out_channels, -1) @ cols + self.bias.reshape(-1, 1)
        return y.reshape(n, self.out_channels, h_out, w_out)

    def backward(self, dupstream: torch.Tensor) -> torch.Tensor:
        """dupstream: (N, F, H', W') -> dx: (N, C, H, W); sets grad_weight and grad_bias."""
        cols, padded_shape, (h_out, w_out) = self.cache
        n, k = padded_shape[0], self.kernel_size
        dy = dupstream.reshape(n, self.out_channels, h_out * w_out)
        self.grad_weight = (dy @ cols.transpose(1, 2)).sum(dim=0).reshape(self.weight.shape)
        self.grad_bias = dupstream.sum(dim=(0, 2, 3))
        dcols = self.weight.reshape(self.out_channels, -1).T @ dy
        dwindows = dcols.reshape(n, self.in_channels, k, k, h_out, w_out).permute(0, 1, 4, 5, 2, 3)
        return _crop(_fold(dwindows, padded_shape, self.stride), self.padding)


class Conv2d(Conv2dLoop):
    """The vectorised convolution (same computation as ``Conv2dLoop``)."""


class MaxPool2d:
    """Max pooling over k x k windows; padding counts as minus infinity.

    Gradient: each window's upstream gradient goes to the window's first maximum in row-major
    order; windows that overlap add their contributions.
    """

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0):
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.cache: Any = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W) -> y: (N, C, H', W')."""
        xp = _pad(x, self.padding, float("-inf"))
        windows = _windows(xp, self.kernel_size, self.stride)
        flat = windows.reshape(*windows.shape[:4], -1)
        y, argmax = flat.max(dim=-1)
        self.cache = (argmax, xp.shape, windows.shape)
        return y

    def backward(self, dupstream: torch.Tensor) -> torch.Tensor:
        """dupstream: (N, C, H', W') -> dx: (N, C, H, W)."""
        argmax, padded_shape, windows_shape = self.cache
        k = self.kernel_size
        dflat = dupstream.new_zeros(*windows_shape[:4], k * k)
        dflat.scatter_(-1, argmax.unsqueeze(-1), dupstream.unsqueeze(-1))
        return _crop(_fold(dflat.reshape(windows_shape), padded_shape, self.stride), self.padding)


class Flatten:
    """(N, C, H, W) -> (N, C * H * W), in the memory order of (C, H, W); backward reshapes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dupstream: torch.Tensor) -> torch.Tensor:
        return dupstream.reshape(self.shape)


class CNN(Net):
    """conv3x3(C->h) - ReLU - maxpool2 - conv3x3(h->2h) - ReLU - maxpool2 - flatten - linear.

    Input (N, in_channels, S, S) with S divisible by 4 -> logits (N, out_features). Chaining,
    reset_params and optimizer_step are chapter 01's ``Net``.
    """

    def __init__(
        self, in_channels: int, hidden_channels: int, out_features: int, image_size: int = 16
    ):
        if image_size % 4:
            raise ValueError("image_size must be divisible by 4")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_features = out_features
        self.image_size = image_size
        h = hidden_channels
        super().__init__(
            [
                Conv2d(in_channels, h, 3, 1, 1),
                ReLU(),
                MaxPool2d(2, 2, 0),
                Conv2d(h, 2 * h, 3, 1, 1),
                ReLU(),
                MaxPool2d(2, 2, 0),
                Flatten(),
                Linear(2 * h * (image_size // 4) ** 2, out_features),
            ]
        )
