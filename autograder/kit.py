"""The check author's kit: what every chapter's ``checks.py`` shares.

``autograder/checks.py`` is the check *language* (``Check``, ``Output``, the runner). This
module is the *toolbox* chapters build their exercises from, so that no chapter retypes it:

* seeded draws: :func:`randn`, :func:`uniform`, :func:`randint` (always from the check's
  private ``torch.Generator``, never the global RNG);
* layouts: :func:`noncontiguous`;
* ``nn.Module`` chapters: :func:`assign_parameters` (install seeded parameters by name, with a
  message the student understands when a name or shape is wrong), :func:`record_grads`;
* independence of items: :func:`run_independently` (one broken method costs only its own
  outputs);
* "from scratch" chapters: :data:`FROM_SCRATCH` (the forbidden base a chapter's ``FORBIDDEN``
  extends) and trusted probe layers in the hand-written ``forward``/``backward`` convention
  (:class:`ProbeLinear`, :class:`ProbeScale`, :class:`ProbeSquareRoll`, :class:`ProbeReLU`,
  :class:`ProbeFlatten`), used to grade containers (``Net``, ``CNN``) independently of the
  student's own layers.

Like ``checks.py`` it runs in the sandboxed child (imported before the privilege drop), so it
imports only torch and the standard library, and nothing from ``solutions/`` or a chapter.
"""
from __future__ import annotations

import operator
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable, Mapping

import torch

# The "from scratch" base: autograd and the library versions of layers. A chapter's FORBIDDEN
# is ``(*FROM_SCRATCH, <what the chapter itself writes>)``. Prefixes cover their members
# (``torch.nn`` covers ``torch.nn.functional.linear``).
FROM_SCRATCH: tuple[str, ...] = (
    "torch.nn",
    "torch.autograd",
    "torch.func",
    "torch.ops",
    "functorch",
    "Tensor.backward",
)


# ----------------------------------------------------------------------------- seeded draws
def randn(rng: torch.Generator, *shape: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Standard normal tensor of ``shape`` drawn from ``rng``."""
    return torch.randn(*shape, generator=rng, dtype=dtype)


def uniform(rng: torch.Generator, *shape: int, low: float = -1.0, high: float = 1.0,
            dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Uniform tensor in [low, high) of ``shape`` drawn from ``rng``."""
    return low + (high - low) * torch.rand(*shape, generator=rng, dtype=dtype)


def randint(rng: torch.Generator, high: int, *shape: int) -> torch.Tensor:
    """int64 tensor of ``shape`` with values in [0, high) drawn from ``rng``."""
    return torch.randint(0, high, shape, generator=rng, dtype=torch.int64)


def noncontiguous(x: torch.Tensor) -> torch.Tensor:
    """The same values as ``x`` in a non-contiguous layout (a transposed view of a copy)."""
    return x.transpose(0, -1).contiguous().transpose(0, -1)


def as_ints(values: Any, function_name: str) -> torch.Tensor:
    """int64 tensor of a student's integer answers; a float (7.0 from ``/``) or a bool is an
    error with a message, never silently truncated."""
    answers = []
    for value in values:
        if isinstance(value, bool):
            raise TypeError(f"{function_name} returned a bool; return an int")
        try:
            answers.append(operator.index(value))
        except TypeError:
            raise TypeError(f"{function_name} returned {value!r} of type "
                            f"{type(value).__name__}; return a Python int (use // for integer "
                            f"division)") from None
    return torch.tensor(answers, dtype=torch.int64)


# ---------------------------------------------------------------- independence of outputs
@contextmanager
def substituted(api: Any, **replacements: Any) -> Iterator[None]:
    """Temporarily replaces names in the implementation under test (the student's globals, or
    the reference module at build time), so that a container is graded with the grader's own
    parts: ``with substituted(api, ResidualBlock=Probe): net = api.SmallResNet()`` builds the
    network from probes, and a bug in the student's block cannot cost the network's items.
    The notebook must say that the container is graded this way."""
    source = api._source
    is_mapping = isinstance(source, dict)
    missing = object()
    saved = {name: (source.get(name, missing) if is_mapping else getattr(source, name, missing))
             for name in replacements}
    for name, value in replacements.items():
        if is_mapping:
            source[name] = value
        else:
            setattr(source, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            if is_mapping:
                if value is missing:
                    source.pop(name, None)
                else:
                    source[name] = value
            elif value is missing:
                delattr(source, name)
            else:
                setattr(source, name, value)



def run_independently(*parts: Callable[[], None]) -> None:
    """Runs every part even when an earlier one raises, then raises the first exception.

    The default way to write an exercise with several methods: put each method's calls and
    recordings in its own part, so that a broken ``optimizer_step`` does not hide a correct
    ``reset_params``. The first exception's message is shown for the outputs left missing.
    """
    problems: list[Exception] = []
    for part in parts:
        try:
            part()
        except Exception as exc:  # noqa: BLE001 - student code may raise anything
            problems.append(exc)
    if problems:
        raise problems[0]


def record_grads(out: Any, tensors: Mapping[str, torch.Tensor | None]) -> None:
    """Records ``t.grad`` under each name; a gradient that never arrived stays missing."""
    for name, tensor in tensors.items():
        if tensor is not None and tensor.grad is not None:
            out[name] = tensor.grad


# ------------------------------------------------------------------ nn.Module parameters
class ParameterMismatch(Exception):
    """A student's module lacks a parameter a check sets, or holds it in another form.

    Its message is written for the student; ``short_error`` shows it as
    ``"ParameterMismatch: <message>"``.
    """


def _shape_text(tensor_shape: Any) -> str:
    dims = [str(int(n)) for n in tensor_shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def assign_parameters(module: Any, values: Mapping[str, torch.Tensor],
                      layouts: Mapping[str, str] | None = None) -> None:
    """Sets the parameters of a student's ``torch.nn.Module`` to a check's values, by name.

    For chapters whose students write ``nn.Module`` classes: the check draws every parameter
    from its seeded generator and installs it here, so that the outputs do not depend on the
    student's initialisation. Runs inside the sandboxed child.

    For each ``name, value``, the attribute at ``name`` (dotted paths such as
    ``"q_proj.weight"`` reach submodules) must be a ``torch.nn.Parameter`` of exactly
    ``value``'s shape. Its data is replaced, under ``torch.no_grad()``, by a copy of ``value``,
    dtype included (a float32 parameter becomes float64 like the check's inputs; the Parameter
    object itself is kept, so the module still owns it), and its ``.grad`` is cleared.

    Args:
        module: the implementation under test, e.g. ``api.GRUCell(3, 5)``.
        values: parameter name -> value, e.g. ``{"weight_hh": randn(rng, 5, 15)}``.
        layouts: optional parameter name -> layout in words, appended to shape errors,
            e.g. ``{"weight_hh": "(hidden_size, 3*hidden_size)"}``.

    Raises:
        ParameterMismatch: the module is not an ``nn.Module``, or a parameter is missing, is
            not an ``nn.Parameter``, or has another shape. Examples of messages:
            ``GRUCell has no parameter weight_hh: name your nn.Parameter exactly weight_hh``;
            ``GRUCell.weight_hh has shape (4, 12), expected (4, 6): the layout is
            (hidden_size, 3*hidden_size)``.
    """
    owner = type(module).__name__
    if not isinstance(module, torch.nn.Module):
        raise ParameterMismatch(f"{owner} is not a torch.nn.Module: subclass nn.Module and "
                                f"call super().__init__() in __init__")
    for name, value in values.items():
        param: Any = module
        try:
            for part in name.split("."):
                param = getattr(param, part)
        except Exception:  # noqa: BLE001 - nn.Module raises AttributeError; a student may not
            raise ParameterMismatch(f"{owner} has no parameter {name}: name your "
                                    f"nn.Parameter exactly {name}") from None
        if not isinstance(param, torch.nn.Parameter):
            raise ParameterMismatch(f"{owner}.{name} is a {type(param).__name__}, not an "
                                    f"nn.Parameter: wrap it, self.{name} = "
                                    f"nn.Parameter(...), so that autograd and optimizers see it")
        if tuple(param.shape) != tuple(value.shape):
            layout = f": the layout is {layouts[name]}" if layouts and name in layouts else ""
            raise ParameterMismatch(f"{owner}.{name} has shape {_shape_text(param.shape)}, "
                                    f"expected {_shape_text(value.shape)}{layout}")
        with torch.no_grad():
            param.data = value.detach().clone()
        param.grad = None


# ------------------------------------------------- trusted probe layers (forward/backward)
class ProbeLinear:
    """Trusted ``y = x @ weight + bias`` layer, weight (in, out), bias (out,), in the course's
    hand-written layer convention (``forward`` caches, ``backward`` sets ``grad_weight`` and
    ``grad_bias`` and returns dx). Records every ``init_params(std)`` call in ``init_calls``."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        self.weight, self.bias = weight, bias
        self.init_calls: list[float] = []

    def init_params(self, std: float = 1.0, generator: torch.Generator | None = None) -> None:
        self.init_calls.append(float(std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, in) -> (N, out)."""
        self.x = x
        return x @ self.weight + self.bias

    def backward(self, dupstream: torch.Tensor) -> torch.Tensor:
        """dupstream (N, out) -> dx (N, in)."""
        self.grad_weight = self.x.T @ dupstream
        self.grad_bias = dupstream.sum(dim=0)
        return dupstream @ self.weight.T


class ProbeScale(ProbeLinear):
    """Trusted elementwise affine layer ``y = x * weight + bias``, weight and bias (D,): cheap
    parameters whose values after an optimizer step are easy to explain to a student."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, D) -> (N, D)."""
        self.x = x
        return x * self.weight + self.bias

    def backward(self, dupstream: torch.Tensor) -> torch.Tensor:
        """dupstream (N, D) -> dx (N, D)."""
        self.grad_weight = (self.x * dupstream).sum(dim=0)
        self.grad_bias = dupstream.sum(dim=0)
        return dupstream * self.weight


class ProbeSquareRoll:
    """Trusted layer without parameters: y = roll(x**2, 1 along features). It does not commute
    with elementwise layers, so a container that runs backward in the wrong order is caught."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, D) -> (N, D)."""
        self.x = x
        return torch.roll(x * x, 1, dims=1)

    def backward(self, dupstream: torch.Tensor) -> torch.Tensor:
        """dupstream (N, D) -> dx (N, D)."""
        return 2 * self.x * torch.roll(dupstream, -1, dims=1)


class ProbeReLU:
    """Trusted ReLU, any shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.x = x
        return x.clamp(min=0)

    def backward(self, dupstream: torch.Tensor) -> torch.Tensor:
        return dupstream * (self.x > 0)


class ProbeFlatten:
    """Trusted flatten: (N, ...) -> (N, prod(...))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dupstream: torch.Tensor) -> torch.Tensor:
        return dupstream.reshape(self.shape)
