"""Numerical gradient checking by central differences, in float64.

Compare what your ``backward`` returns with what the definition of the derivative gives::

    from student.gradcheck import check_gradients
    check_gradients(Linear(4, 3), torch.randn(5, 4, dtype=torch.float64))   # a layer
    check_gradients(Net([...]), x)                                          # a whole network
    check_gradients(CrossEntropyLoss(), logits, target=labels)              # a loss

Why central differences: ``(f(x + e) - f(x - e)) / 2e`` is off from the derivative by about
``e**2`` (the one-sided ``(f(x + e) - f(x)) / e`` by about ``e``). Why float64: the difference
``f(x + e) - f(x - e)`` cancels most digits of ``f``; float64 keeps about 16, float32 only 7, so
in float32 rounding noise (about 1e-7 * |f| / e) swamps the derivative.

The error reported for each gradient is a relative error of the whole tensor,
``||analytic - numerical|| / (||analytic|| + ||numerical||)`` (0: identical, 1: unrelated or
one of them zero), with a small floor in the denominator so that two gradients that are both
almost zero count as equal. A correct backward pass gives about 1e-9 or less; anything above
``TOLERANCE`` (1e-6) is a bug. Where ``f`` has a kink within ``e`` of the point (ReLU at 0, two
equal values in a max-pooling window), the derivative is not defined there: any value between
the left and the right difference quotients is accepted for that element.

The checker restores everything it changed: parameters, gradients and caches of the object and
of every layer inside it get their original values (and dtypes) back.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

TOLERANCE = 1e-6
EPS = 1e-6
_FLOOR = 1e-3  # per sqrt(element): two gradients both below ~1e-9 per element count as equal


class GradientCheckError(Exception):
    """The object cannot be checked as it is (it changes its input, is not deterministic, ...)."""


# ---------------------------------------------------------------------------------------------
# error measure and numerical differentiation


def relative_error(
    analytic: torch.Tensor,
    numerical: torch.Tensor,
    lower: torch.Tensor | None = None,
    upper: torch.Tensor | None = None,
) -> float:
    """``||a - n|| / max(||a|| + ||n||, 1e-3 * sqrt(numel))`` over the whole tensor.

    Where ``lower``/``upper`` (the one-sided difference quotients) are given and disagree (a
    kink of the function within eps), an element of ``analytic`` between them counts as exact.
    """
    a = analytic.detach().to(torch.float64)
    n = numerical.detach().to(torch.float64)
    if a.shape != n.shape:
        raise ValueError(f"shapes differ: analytic {tuple(a.shape)} vs numerical {tuple(n.shape)}")
    if lower is not None and upper is not None:
        # a kink: the one-sided quotients disagree far beyond the curvature of a smooth function
        kink = (lower - upper).abs() > 1e-3 * (lower.abs() + upper.abs()) + 1e-6
        inside = (a >= torch.minimum(lower, upper)) & (a <= torch.maximum(lower, upper))
        n = torch.where(kink & inside, a, n)
    difference = (a - n).norm().item()
    scale = max(a.norm().item() + n.norm().item(), _FLOOR * max(a.numel(), 1) ** 0.5)
    return difference / scale


def numerical_gradient(
    f: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    dupstream: torch.Tensor | None = None,
    eps: float = EPS,
) -> torch.Tensor:
    """Gradient of ``sum(f(x) * dupstream)`` (or of the scalar ``f(x)``) by central differences.

    ``x`` is not modified: ``f`` receives a float64 copy, perturbed one element at a time.
    """
    grad, _, _ = _differences(lambda v: _weighted_sum(f(v), dupstream), x, eps)
    return grad


def _weighted_sum(output: Any, dupstream: Any) -> float:
    if dupstream is None:
        return float(output)
    if isinstance(output, (tuple, list)):
        return sum(_weighted_sum(o, d) for o, d in zip(output, dupstream))
    return float((output.detach().to(torch.float64) * dupstream).sum())


def _differences(
    f: Callable[[torch.Tensor], float], x: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Central, forward and backward difference quotients of the scalar f at x."""
    point = x.detach().to(torch.float64).clone(memory_format=torch.contiguous_format)
    flat = point.view(-1)
    at_point = f(point.clone())
    central, forward, backward = (torch.zeros(point.numel(), dtype=torch.float64) for _ in range(3))
    for i in range(flat.numel()):
        original = flat[i].item()
        flat[i] = original + eps
        plus = f(point.clone())
        flat[i] = original - eps
        minus = f(point.clone())
        flat[i] = original
        central[i] = (plus - minus) / (2 * eps)
        forward[i] = (plus - at_point) / eps
        backward[i] = (at_point - minus) / eps
    return tuple(t.view(point.shape) for t in (central, forward, backward))  # type: ignore


# ---------------------------------------------------------------------------------------------
# finding parameters, saving and restoring state


def _is_module(obj: Any) -> bool:
    return isinstance(obj, torch.nn.Module)


def _children(obj: Any) -> list[tuple[str, Any]]:
    """Sub-layers held in attributes, lists, tuples or dicts (course-pattern objects)."""
    found = []
    for name, value in vars(obj).items():
        items = (
            list(enumerate(value))
            if isinstance(value, (list, tuple))
            else list(value.items())
            if isinstance(value, dict)
            else [(None, value)]
        )
        for key, item in items:
            if hasattr(item, "forward") and not isinstance(item, (torch.Tensor, type)):
                found.append((name if key is None else f"{name}.{key}", item))
    return found


def _walk(obj: Any, prefix: str = "", seen: set[int] | None = None) -> list[tuple[str, Any]]:
    """(dotted name, object) for obj and every layer reachable inside it, each once."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    found = [(prefix, obj)]
    if not _is_module(obj) and hasattr(obj, "__dict__"):
        for name, child in _children(obj):
            found += _walk(child, f"{prefix}{name}.", seen)
    return found


def _course_parameters(obj: Any) -> list[tuple[str, Any, str]]:
    """(dotted name, owner, attribute) of every tensor ``p`` that has a ``grad_p`` beside it."""
    params = []
    for prefix, owner in _walk(obj):
        if _is_module(owner) or not hasattr(owner, "__dict__"):
            continue
        for name, value in vars(owner).items():
            if (
                isinstance(value, torch.Tensor)
                and value.is_floating_point()
                and hasattr(owner, "grad_" + name)
            ):
                params.append((prefix + name, owner, name))
    return params


class _Saved:
    """Every attribute of every layer inside ``obj`` (and every parameter of its modules), with
    a copy of each tensor's contents, so that all of it can be put back exactly."""

    def __init__(self, obj: Any) -> None:
        self.attributes: list[tuple[Any, dict[str, Any]]] = []
        self.contents: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.module_params: list[tuple[torch.nn.Parameter, torch.Tensor, Any]] = []
        for _, owner in _walk(obj):
            if _is_module(owner):
                for param in owner.parameters():
                    self.module_params.append((param, param.data, param.grad))
            elif hasattr(owner, "__dict__"):
                saved = dict(vars(owner))
                self.attributes.append((owner, saved))
                for value in saved.values():
                    if isinstance(value, torch.Tensor):
                        self.contents.append((value, value.detach().clone()))

    def restore(self) -> None:
        for owner, saved in self.attributes:
            vars(owner).clear()
            vars(owner).update(saved)
        with torch.no_grad():
            for tensor, copy in self.contents:
                if tensor.shape == copy.shape and not torch.equal(tensor, copy):
                    tensor.copy_(copy)
        for param, data, grad in self.module_params:
            param.data = data
            param.grad = grad


def _to_float64(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.detach().to(torch.float64)
    return value


# ---------------------------------------------------------------------------------------------
# the checker


def _is_loss(obj: Any) -> bool:
    backward = getattr(obj, "backward", None)
    if backward is None or _is_module(obj):
        return False
    return len(inspect.signature(backward).parameters) == 0


def _draw_like(output: Any, generator: torch.Generator) -> Any:
    if isinstance(output, (tuple, list)):
        return type(output)(_draw_like(o, generator) for o in output)
    if not isinstance(output, torch.Tensor):
        raise GradientCheckError(f"forward returned a {type(output).__name__}, not a tensor")
    return torch.randn(output.shape, generator=generator, dtype=torch.float64)


def check_gradients(
    obj: Any,
    x: torch.Tensor,
    target: torch.Tensor | None = None,
    seed: int = 0,
    param_names: tuple[str, ...] | None = None,
    verbose: bool = True,
    eps: float = EPS,
) -> dict[str, float]:
    """Compares analytic gradients with central differences, in float64; returns the errors.

    ``obj`` may be
      * a layer or a whole network of the course pattern: ``y = obj.forward(x)``,
        ``dx = obj.backward(dupstream)``, and for each parameter ``p`` (also inside layers held
        in lists such as ``net.layers``) a ``grad_p`` set by backward;
      * a loss: ``obj.forward(pred, target)`` returns a scalar and ``obj.backward()`` (no
        argument) returns dL/dpred; pass ``target=``;
      * a ``torch.nn.Module``: its gradients come from autograd (useful to test a module you
        wrote a custom piece of).

    Args:
        obj: what to check. Its forward pass must be deterministic (no dropout) and must not
            keep state between calls that changes its result.
        x: the input (for a loss: the prediction); any shape; used in float64.
        target: the loss's target (integer labels stay integers, floats become float64).
        seed: seed of the private generator that draws the upstream gradient.
        param_names: check only these parameters (dotted names such as ``"layers.0.weight"``);
            default: every parameter found.
        verbose: print one line per gradient.
        eps: the finite-difference step.

    Returns:
        ``{"x": error, "weight": error, ...}``; every error should be below ``TOLERANCE``.

    Raises:
        GradientCheckError: when ``obj`` changes its input (or its upstream gradient) in place,
            or gives different outputs for the same input.
    """
    saved = _Saved(obj)
    try:
        errors = _check(obj, x, target, seed, param_names, eps)
    finally:
        saved.restore()
    if verbose:
        for name, error in errors.items():
            verdict = "ok" if error < TOLERANCE else f"WRONG (above {TOLERANCE:.0e})"
            print(f"d{name}: relative error {error:.1e}  {verdict}")
    return errors


check_layer_gradients = check_gradients  # the name used in the notebooks


def _check(
    obj: Any,
    x: torch.Tensor,
    target: torch.Tensor | None,
    seed: int,
    param_names: tuple[str, ...] | None,
    eps: float,
) -> dict[str, float]:
    x = x.detach().to(torch.float64)
    target = _to_float64(target)
    loss = target is not None or _is_loss(obj)
    if loss and target is None:
        raise GradientCheckError(
            f"{type(obj).__name__} is a loss (its backward takes no argument): pass target=..."
        )
    module = _is_module(obj)
    label = type(obj).__name__

    # parameters, as float64 tensors that the checker perturbs in place
    params: dict[str, torch.Tensor] = {}
    if module:
        for name, param in obj.named_parameters():
            param.data = param.data.to(torch.float64).clone(memory_format=torch.contiguous_format)
            param.grad = None
            params[name] = param.data
    else:
        for name, owner, attribute in _course_parameters(obj):
            value = (
                getattr(owner, attribute)
                .detach()
                .to(torch.float64)
                .clone(memory_format=torch.contiguous_format)
            )
            setattr(owner, attribute, value)
            params[name] = value
        for _, owner in _walk(obj):  # other float tensors (e.g. constants) follow to float64
            if not _is_module(owner) and hasattr(owner, "__dict__"):
                for attribute, value in list(vars(owner).items()):
                    if (
                        isinstance(value, torch.Tensor)
                        and value.is_floating_point()
                        and value.dtype != torch.float64
                    ):
                        setattr(owner, attribute, value.detach().to(torch.float64))
    if param_names is not None:
        unknown = set(param_names) - set(params)
        if unknown:
            raise GradientCheckError(
                f"{label} has no parameter {sorted(unknown)}; found {sorted(params)}"
            )
        params = {name: params[name] for name in param_names}

    def run(v: torch.Tensor) -> Any:
        given = v.clone()
        call = obj if module else obj.forward
        out = call(v, target) if loss else call(v)
        if not torch.equal(v, given):
            raise GradientCheckError(
                f"{label}.forward changed its input in place (e.g. x += ..., x[...] = ..., "
                "x.clamp_(...)); work on a copy or write out-of-place operations"
            )
        return out

    # analytic gradients
    generator = torch.Generator().manual_seed(seed)
    if module:
        leaf = x.clone().requires_grad_()
        out = run(leaf)
        dupstream = None if loss else _draw_like(out, generator)
        torch.autograd.backward(
            list(out) if isinstance(out, (tuple, list)) else [out],
            None
            if dupstream is None
            else (list(dupstream) if isinstance(out, (tuple, list)) else [dupstream]),
        )
        analytic = {"x": leaf.grad if leaf.grad is not None else torch.zeros_like(x)}
        for name, param in obj.named_parameters():
            if name in params:
                grad = param.grad if param.grad is not None else torch.zeros_like(param)
                analytic[name] = grad.detach().clone()
    else:
        out = run(x.clone())
        again = run(x.clone())
        if not _same(out, again):
            raise GradientCheckError(
                f"{label}.forward gives different outputs for the same "
                "input (random, or state kept between calls)"
            )
        out = run(x.clone())  # backward must follow its own forward
        if loss:
            dupstream = None
            dx = obj.backward()
        else:
            dupstream = _draw_like(out, generator)
            given = dupstream.clone()
            dx = obj.backward(dupstream)
            if not torch.equal(dupstream, given):
                raise GradientCheckError(
                    f"{label}.backward changed dupstream in place; work on a copy"
                )
        if not isinstance(dx, torch.Tensor):
            raise GradientCheckError(
                f"{label}.backward returned {type(dx).__name__}, "
                "not the gradient with respect to the input"
            )
        analytic = {"x": dx.detach().clone()}
        for name, owner, attribute in _course_parameters(obj):
            if name in params:
                analytic[name] = getattr(owner, "grad_" + attribute).detach().clone()

    # numerical gradients, compared element by element with kink tolerance
    def objective() -> float:
        with torch.no_grad():
            return _weighted_sum(run(x.clone()), dupstream)

    errors: dict[str, float] = {}
    for name, grad in analytic.items():
        if name == "x":
            central, forward, backward = _differences(
                lambda v: _weighted_sum(_no_grad(run, v), dupstream), x, eps
            )
        else:
            central, forward, backward = _param_differences(params[name], objective, eps)
        if tuple(grad.shape) != tuple(central.shape):
            raise GradientCheckError(
                f"the gradient for {name} has shape {tuple(grad.shape)}, expected "
                f"{tuple(central.shape)}"
            )
        errors[name] = relative_error(grad, central, forward, backward)
    return errors


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (tuple, list)):
        return isinstance(b, (tuple, list)) and len(a) == len(b) and all(map(_same, a, b))
    return (
        isinstance(a, torch.Tensor)
        and isinstance(b, torch.Tensor)
        and a.shape == b.shape
        and torch.equal(a.detach(), b.detach())
    )


def _no_grad(run: Callable[[torch.Tensor], Any], v: torch.Tensor) -> Any:
    with torch.no_grad():
        return run(v)


def _param_differences(
    param: torch.Tensor, objective: Callable[[], float], eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Difference quotients with respect to a parameter, perturbed in place and restored."""
    flat = param.data.view(-1)
    at_point = objective()
    central, forward, backward = (torch.zeros(flat.numel(), dtype=torch.float64) for _ in range(3))
    for i in range(flat.numel()):
        original = flat[i].item()
        flat[i] = original + eps
        plus = objective()
        flat[i] = original - eps
        minus = objective()
        flat[i] = original
        central[i] = (plus - minus) / (2 * eps)
        forward[i] = (plus - at_point) / eps
        backward[i] = (at_point - minus) / eps
    return tuple(t.view(param.shape) for t in (central, forward, backward))  # type: ignore


def check_second_call_sets_gradients(
    make_layer: Callable[[], Any],
    inputs: tuple[torch.Tensor, torch.Tensor],
    upstreams: tuple[torch.Tensor, torch.Tensor],
    name: str = "the layer",
) -> None:
    """Asserts that a layer that already ran once (forward ``inputs[0]``, backward
    ``upstreams[0]``) has, after a second forward and backward, the same ``grad_weight`` and
    ``grad_bias`` as a fresh layer that ran only the second call: backward SETS its gradients.
    ``make_layer()`` returns a new layer with fixed parameters (the same every call)."""
    fresh, reused = make_layer(), make_layer()
    fresh.forward(inputs[1])
    fresh.backward(upstreams[1])
    for x, dupstream in zip(inputs, upstreams):
        reused.forward(x)
        reused.backward(dupstream)
    same = torch.allclose(reused.grad_weight, fresh.grad_weight) and torch.allclose(
        reused.grad_bias, fresh.grad_bias
    )
    assert same, (
        f"{name}: a second forward and backward changed the gradients of a layer that had "
        f"already run once: backward must SET grad_weight and grad_bias from the last "
        f"forward's input (=), not add to the previous call's gradients"
    )
