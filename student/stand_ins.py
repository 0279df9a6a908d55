"""Stand-in layers for the public checks of a network that chains layers (chapter 01's ``Net``,
chapter 02's ``CNN``).

The checks run your container on these instead of on your own layers, so a bug in an earlier
question cannot fail a later one. They are deliberately not the layers you write: a
roll-scale-and-shift of the features and an elementwise square, each with the same interface
(``forward``, ``backward``, and for the one with parameters ``weight``, ``bias``,
``grad_weight``, ``grad_bias``, ``init_params``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class StandInScale:
    """y = roll(x, 1) * weight + bias: the features move one place along (the last one comes
    first), then each is scaled and shifted. x: (N, D); weight, bias: (D,). The roll makes the
    order of two such layers matter, as it does for real layers.

    ``init_params(std)`` only records the ``std`` it was called with (in ``init_calls``).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        self.weight, self.bias = weight, bias
        self.init_calls: list[float] = []

    def init_params(self, std: float = 1.0, generator: torch.Generator | None = None) -> None:
        self.init_calls.append(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rolled = torch.roll(x, 1, dims=1)
        return self.rolled * self.weight + self.bias

    def backward(self, dupstream: torch.Tensor) -> torch.Tensor:
        """dupstream (N, D) -> dx (N, D); sets grad_weight and grad_bias, (D,) each."""
        self.grad_weight = (self.rolled * dupstream).sum(dim=0)
        self.grad_bias = dupstream.sum(dim=0)
        return torch.roll(dupstream * self.weight, -1, dims=1)


class StandInSquare:
    """y = x ** 2 elementwise: a layer without parameters. x: (N, D)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.x = x
        return x**2

    def backward(self, dupstream: torch.Tensor) -> torch.Tensor:
        return 2 * self.x * dupstream


def check_layer_container(
    build: Callable[[list[Any]], Any], name: str, generator: torch.Generator
) -> None:
    """Asserts that ``build(layers)`` (a network whose ``layers`` are the given list) chains
    them: forward in order, backward in reverse, ``optimizer_step(lr)`` descends on every layer
    with parameters, ``reset_params(std)`` calls each ``init_params`` once with ``std``.
    The messages name ``name``'s method and the likely bug."""

    def values(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    def stand_ins() -> list[Any]:
        first, last = StandInScale(values(3), values(3)), StandInScale(values(3), values(3))
        return [first, StandInSquare(), last]

    net = build(stand_ins())
    first, square, last = net.layers
    x, dupstream = values(5, 3), values(5, 3)
    out = net.forward(x)
    assert out.shape == (5, 3) and torch.allclose(
        out, last.forward(square.forward(first.forward(x)))
    ), (
        f"{name}.forward should apply the layers in order, feeding each output to the next "
        f"layer, and return the last layer's output"
    )
    dx = net.backward(dupstream)
    assert dx.shape == (5, 3) and torch.allclose(
        dx, first.backward(square.backward(last.backward(dupstream)))
    ), (
        f"{name}.backward should visit the layers in REVERSE order, handing each returned "
        f"gradient to the previous layer, and return the first layer's"
    )

    net = build(stand_ins())
    with_parameters = (net.layers[0], net.layers[2])
    for layer in with_parameters:
        layer.grad_weight, layer.grad_bias = values(3), values(3)
    before = [(layer.weight.clone(), layer.bias.clone()) for layer in with_parameters]
    net.optimizer_step(0.5)
    for layer, (weight, bias) in zip(with_parameters, before):
        assert not torch.allclose(layer.weight, weight + 0.5 * layer.grad_weight), (
            "optimizer_step moved the weight UPHILL: gradient descent subtracts, "
            "weight - lr * grad_weight"
        )
        assert torch.allclose(layer.weight, weight - 0.5 * layer.grad_weight), (
            "optimizer_step should set weight to weight - lr * grad_weight on every layer "
            "that has parameters"
        )
        assert torch.allclose(layer.bias, bias - 0.5 * layer.grad_bias), (
            "optimizer_step should update the bias too: bias - lr * grad_bias, on every layer "
            "that has parameters"
        )

    net = build(stand_ins())
    net.reset_params(0.25)
    for layer in (net.layers[0], net.layers[2]):
        assert layer.init_calls, (
            "reset_params skipped a layer that has init_params: test for the method with "
            "hasattr(layer, 'init_params'), not for your own classes with isinstance"
        )
        assert layer.init_calls == [0.25], (
            "reset_params(std) should call init_params exactly once on each layer that has "
            "it, passing std on (not the default)"
        )
