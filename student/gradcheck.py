"""Numerical gradient checking by central differences, in float64.

Use it on your own layers: compare what your ``backward`` returns with what the definition of
the derivative gives. Agreement to about 1e-6 relative error or better means the analytic
gradient is almost surely right; 1e-2 or worse means a bug.
"""
from __future__ import annotations

from typing import Callable

import torch


def numerical_gradient(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                       dupstream: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Gradient of ``sum(f(x) * dupstream)`` with respect to ``x`` by central differences.

    Args:
        f: maps x (any shape) to an output of the shape of ``dupstream``. Must not keep state
            between calls that changes its result.
        x: the point, any shape; converted to float64 (a copy is perturbed, x is untouched).
        dupstream: the upstream gradient, shape of f(x).
        eps: the step.

    Returns:
        float64 tensor of x's shape.
    """
    x = x.detach().to(torch.float64).clone()
    dupstream = dupstream.to(torch.float64)
    grad = torch.zeros_like(x)
    flat_x, flat_grad = x.view(-1), grad.view(-1)
    for i in range(flat_x.numel()):
        original = flat_x[i].item()
        flat_x[i] = original + eps
        plus = (f(x) * dupstream).sum().item()
        flat_x[i] = original - eps
        minus = (f(x) * dupstream).sum().item()
        flat_x[i] = original
        flat_grad[i] = (plus - minus) / (2 * eps)
    return grad


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max(1e-8, |a| + |b|), elementwise, as in CS231n."""
    a, b = a.to(torch.float64), b.to(torch.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return ((a - b).abs() / (a.abs() + b.abs()).clamp(min=1e-8)).max().item()


def check_layer_gradients(layer, x: torch.Tensor, seed: int = 0,
                          param_names: tuple[str, ...] = ("weight", "bias"),
                          verbose: bool = True) -> dict[str, float]:
    """Compares a layer's ``backward`` with numerical gradients of its ``forward``.

    The layer must follow the course pattern: ``y = layer.forward(x)``,
    ``dx = layer.backward(dupstream)`` and, for each parameter ``p``, ``layer.grad_p``.
    Works in float64: the layer's parameters are converted.

    Args:
        layer: the layer to check.
        x: an input batch; its shape is whatever the layer expects.
        seed: seed of the private generator that draws the upstream gradient.
        param_names: parameters to check, where the layer has them.
        verbose: print one line per gradient.

    Returns:
        {"x": rel_error, "weight": rel_error, ...}.
    """
    x = x.detach().to(torch.float64)
    for name in param_names:
        if hasattr(layer, name):
            setattr(layer, name, getattr(layer, name).to(torch.float64))
    rng = torch.Generator().manual_seed(seed)
    y = layer.forward(x.clone())
    dupstream = torch.randn(y.shape, generator=rng, dtype=torch.float64)
    dx = layer.backward(dupstream)
    errors = {"x": relative_error(dx, numerical_gradient(lambda v: layer.forward(v), x,
                                                         dupstream))}
    for name in param_names:
        if not hasattr(layer, name):
            continue
        analytic = getattr(layer, "grad_" + name)
        original = getattr(layer, name)

        def with_param(value, _name=name):
            setattr(layer, _name, value)
            return layer.forward(x.clone())

        errors[name] = relative_error(analytic, numerical_gradient(with_param, original,
                                                                   dupstream))
        setattr(layer, name, original)
    if verbose:
        for name, error in errors.items():
            verdict = "ok" if error < 1e-6 else "CHECK THIS"
            print(f"d{name}: relative error {error:.2e}  {verdict}")
    return errors
