"""Reference implementation of chapter 01 (MLP and backpropagation by hand): the grading oracle.

Never shipped to students. Torch tensors only, no autograd. Layers compute in the dtype of
their input and parameters. Weight layout follows the course notes: ``y = x W + b`` with
``W`` of shape (in_features, out_features).

Two copies of the reference, by rule: this module (the grading oracle that writes the expected
data) and the master's solution blocks (what the released solution notebook runs) are kept as
independent oracles, neither generated from the other; ``tests/test_check_coverage.py`` runs
every check's exercise on both and compares them with the kit's comparison rule.
"""

from __future__ import annotations

from typing import Any

import torch


class Linear:
    """Fully connected layer ``y = x @ weight + bias``.

    Attributes:
        weight: (in_features, out_features).
        bias: (out_features,).
        grad_weight, grad_bias: gradients of the loss, same shapes, set by ``backward``.
    """

    def __init__(self, in_features: int, out_features: int):
        self.in_features = in_features
        self.out_features = out_features
        self.weight = torch.empty(in_features, out_features)
        self.bias = torch.empty(out_features)
        self.grad_weight = torch.zeros_like(self.weight)
        self.grad_bias = torch.zeros_like(self.bias)
        self.cache: Any = None
        self.init_params()

    def init_params(self, std: float = 1.0, generator: torch.Generator | None = None) -> None:
        """Weight ~ N(0, std^2), bias ~ U(0, 1)."""
        self.weight = std * torch.randn(self.in_features, self.out_features, generator=generator)
        self.bias = torch.rand(self.out_features, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, in_features) -> y: (N, out_features)."""
        self.cache = x
        return x @ self.weight + self.bias

    def backward(self, dupstream: torch.Tensor) -> torch.Tensor:
        """dupstream: (N, out_features) -> dx: (N, in_features); sets grad_weight, grad_bias."""
        x = self.cache
        self.grad_weight = x.T @ dupstream
        self.grad_bias = dupstream.sum(dim=0)
        return dupstream @ self.weight.T


class ReLU:
    """max(0, x) elementwise; any shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.cache = x
        return x.clamp(min=0)

    def backward(self, dupstream: torch.Tensor) -> torch.Tensor:
        return dupstream * (self.cache > 0).to(dupstream.dtype)


class LeakyReLU:
    """x for x > 0, negative_slope * x otherwise; any shape."""

    def __init__(self, negative_slope: float = 0.01):
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.cache = x
        return torch.where(x > 0, x, self.negative_slope * x)

    def backward(self, dupstream: torch.Tensor) -> torch.Tensor:
        slope = torch.where(
            self.cache > 0,
            torch.ones_like(self.cache),
            torch.full_like(self.cache, self.negative_slope),
        )
        return dupstream * slope


class Sigmoid:
    """1 / (1 + exp(-x)) elementwise, computed without overflow; any shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.where(
            x >= 0, 1 / (1 + torch.exp(-x.abs())), torch.exp(-x.abs()) / (1 + torch.exp(-x.abs()))
        )
        self.cache = out
        return out

    def backward(self, dupstream: torch.Tensor) -> torch.Tensor:
        s = self.cache
        return dupstream * s * (1 - s)


class Tanh:
    """tanh elementwise; any shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.tanh(x)
        self.cache = out
        return out

    def backward(self, dupstream: torch.Tensor) -> torch.Tensor:
        return dupstream * (1 - self.cache**2)


class MSELoss:
    """Mean squared error over all elements."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """pred, target: same shape -> scalar tensor."""
        self.cache = (pred, target)
        return ((pred - target) ** 2).mean()

    def backward(self) -> torch.Tensor:
        """-> dpred, shape of pred."""
        pred, target = self.cache
        return 2 * (pred - target) / pred.numel()


class CrossEntropyLoss:
    """Softmax followed by negative log-likelihood, averaged over the batch."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """logits: (N, C), target: (N,) int64 class indices -> scalar tensor."""
        shifted = logits - logits.max(dim=1, keepdim=True).values
        log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
        self.cache = (log_probs, target)
        return -log_probs[torch.arange(logits.shape[0]), target].mean()

    def backward(self) -> torch.Tensor:
        """-> dlogits (N, C): (softmax - one_hot) / N."""
        log_probs, target = self.cache
        grad = log_probs.exp()
        grad[torch.arange(grad.shape[0]), target] -= 1
        return grad / grad.shape[0]


class Net:
    """A stack of layers applied in order."""

    def __init__(self, layers: list):
        self.layers = layers

    def reset_params(self, std: float = 1.0, generator: torch.Generator | None = None) -> None:
        for layer in self.layers:
            if hasattr(layer, "init_params"):
                layer.init_params(std, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dupstream: torch.Tensor) -> torch.Tensor:
        for layer in reversed(self.layers):
            dupstream = layer.backward(dupstream)
        return dupstream

    def optimizer_step(self, lr: float) -> None:
        for layer in self.layers:
            if hasattr(layer, "weight"):
                layer.weight = layer.weight - lr * layer.grad_weight
                layer.bias = layer.bias - lr * layer.grad_bias
