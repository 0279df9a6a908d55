"""The check author's kit: what every chapter's ``checks.py`` shares.

``autograder/checks.py`` is the check *language* (``Check``, ``Output``, the runner). This
module is the *toolbox* chapters build their exercises from, so that no chapter retypes it:

* seeded draws: :func:`randn`, :func:`uniform`, :func:`randint` (always from the check's
  private ``torch.Generator``, never the global RNG);
* layouts: :func:`noncontiguous`;
* ``nn.Module`` chapters: :func:`assign_parameters` (install seeded parameters by name, with a
  message the student understands when a name or shape is wrong), :func:`record_grads`;
* documented initialisations, graded statistically: :func:`gaussian_problem`,
  :func:`uniform_problem` (failure probabilities for a correct draw in their docstrings);
* independence of items: ``with out.part(...)`` in the check language (one broken method
  costs only its own outputs), :func:`forward_backward_twice` (the exercise of a hand-written
  layer: two rounds, each method its own part), :func:`run_independently` (older form);
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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

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


def uniform(
    rng: torch.Generator,
    *shape: int,
    low: float = -1.0,
    high: float = 1.0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
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
            raise TypeError(
                f"{function_name} returned {value!r} of type "
                f"{type(value).__name__}; return a Python int (use // for integer "
                f"division)"
            ) from None
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
    saved = {
        name: (source.get(name, missing) if is_mapping else getattr(source, name, missing))
        for name in replacements
    }
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


# The default way to write an exercise is ``with out.part("dx", "grad_weight"): ...`` (see
# ``autograder.checks.Recorder``): each block holds the calls that produce its outputs, an
# exception fails exactly those outputs with its message, and the exercise goes on.
def run_independently(*parts: Callable[[], None]) -> None:
    """Runs every part even when an earlier one raises, then raises the first exception.

    The older form of ``out.part``: one broken method does not stop the others, but every
    output left missing is reported with the first exception. Prefer ``out.part``, which
    attributes each exception to exactly the outputs of its block.
    """
    problems: list[Exception] = []
    for part in parts:
        try:
            part()
        except Exception as exc:  # noqa: BLE001 - student code may raise anything
            problems.append(exc)
    if problems:
        raise problems[0]


def forward_backward_twice(
    out: Any,
    layer: Any,
    rounds: tuple[tuple[tuple[Any, ...], Any], ...],
    y: str = "y",
    dx: str = "dx",
    grads: tuple[str, ...] = (),
    input_names: tuple[str, ...] = ("x",),
) -> None:
    """The exercise of a hand-written layer (``forward`` caches, ``backward`` sets gradients).

    For each ``(inputs, dupstream)`` of ``rounds`` (give two, on different inputs): calls
    ``layer.forward(*inputs)`` and records it as ``y``, then ``layer.backward(dupstream)``
    (``layer.backward()`` when ``dupstream`` is None, as for a loss) recorded as ``dx``, then
    each attribute of ``grads``. The last round's values are graded, so a layer that keeps
    state between calls (gradients that accumulate, a stale cache) is caught. Each method is
    its own part: a failing ``backward`` costs ``dx`` and ``grads`` only, and stale gradient
    attributes are never graded after ``backward`` raised. Inputs are watched for in-place
    changes under ``input_names`` (``("pred", "target")`` for a loss) and ``dupstream``.
    """
    for inputs, dupstream in rounds:
        out.watch(
            **{name: t for name, t in zip(input_names, inputs) if isinstance(t, torch.Tensor)},
            **({} if dupstream is None else {"dupstream": dupstream}),
        )
        with out.part(y):
            out[y] = layer.forward(*inputs)
        returned = False
        with out.part(dx, *grads):
            out[dx] = layer.backward() if dupstream is None else layer.backward(dupstream)
            returned = True
        if returned:
            for name in grads:
                with out.part(name):
                    out[name] = getattr(layer, name)


def _close(actual: Any, expected: torch.Tensor) -> bool:
    """The kit's comparison rule at its default tolerances, inside an exercise."""
    return (
        type(actual) is torch.Tensor
        and actual.shape == expected.shape
        and bool(((actual.double() - expected).abs() <= 1e-7 + 1e-7 * expected.abs()).all())
    )


def _step_error(before: torch.Tensor, after: Any, grads: list[torch.Tensor], lr: float) -> str:
    """What an optimizer did to one parameter, in words, when it is not plain SGD."""
    if type(after) is not torch.Tensor or after.shape != before.shape:
        return f"is a {type(after).__name__} of another shape afterwards"
    total = sum(grads[1:], grads[0])
    if _close(after, before):
        return "did not change"
    if _close(after, before + lr * total):
        return "moved along +lr * grad instead of -lr * grad"
    if any(_close(after, before - lr * grad) for grad in grads):
        return "moved by one step only (each call must apply the gradient set before it)"
    return "is not parameter - lr * gradient after each step"


def exercise_container(
    out: Any,
    net: Any,
    layers: list[Any],
    rng: torch.Generator,
    rounds: tuple[tuple[torch.Tensor, torch.Tensor], ...],
    lr: float,
    stds: tuple[float, ...],
) -> None:
    """The exercise of a container of hand-written layers (chapter 01's ``Net``, 02's ``CNN``)
    holding the trusted probe layers ``layers`` (in order), graded on four outputs:

    * ``y`` and ``dx``: :func:`forward_backward_twice` through the probes;
    * ``params_after_step``: the check sets seeded gradients on every probe with a ``weight``
      and calls ``net.optimizer_step(lr)``, twice; graded on the probes' parameters, and
      explained in words ("layer 3's bias moved along +lr * grad ...") when wrong;
    * ``reset_params_std``: ``net.reset_params(std)`` for each std of ``stds``; every probe with
      ``init_params`` must receive exactly one call with that std, counted from just before the
      call (whatever the constructor did before); explained in words when wrong.

    Only the documented methods are called, so a container whose constructor calls its own
    methods, stores extra attributes or copies the list of layers is graded the same.
    """
    with_params = [(i, layer) for i, layer in enumerate(layers) if hasattr(layer, "weight")]
    steps = [
        [
            (randn(rng, *layer.weight.shape), randn(rng, *layer.bias.shape))
            for _, layer in with_params
        ]
        for _ in range(2)
    ]
    forward_backward_twice(out, net, tuple(((x,), dy) for x, dy in rounds))
    with out.part("params_after_step"):
        before = [(layer.weight.clone(), layer.bias.clone()) for _, layer in with_params]
        for pairs in steps:
            for (_, layer), (grad_weight, grad_bias) in zip(with_params, pairs):
                layer.grad_weight, layer.grad_bias = grad_weight.clone(), grad_bias.clone()
            net.optimizer_step(lr)
        for k, (i, layer) in enumerate(with_params):
            for j, name in enumerate(("weight", "bias")):
                applied = [step[k][j] for step in steps]
                expected = before[k][j] - lr * applied[0] - lr * applied[1]
                if not _close(getattr(layer, name), expected):
                    out.fail(
                        "params_after_step",
                        f"after setting gradients and calling optimizer_step(lr={lr}) "
                        f"twice, the {name} of layer {i} (index in layers) "
                        f"{_step_error(before[k][j], getattr(layer, name), applied, lr)}",
                    )
        out["params_after_step"] = torch.cat(
            [t.reshape(-1) for _, layer in with_params for t in (layer.weight, layer.bias)]
        )
    initialisable = [(i, layer) for i, layer in enumerate(layers) if hasattr(layer, "init_calls")]
    with out.part("reset_params_std"):
        for std in stds:
            for _, layer in initialisable:
                layer.init_calls.clear()
            net.reset_params(std)
            for i, layer in initialisable:
                if layer.init_calls != [float(std)]:
                    out.fail(
                        "reset_params_std",
                        f"after reset_params({std}), layer {i} (index in layers), which "
                        f"has init_params, received init_params calls with std "
                        f"{layer.init_calls}; expected exactly one, with std {std}",
                    )
        out["reset_params_std"] = torch.tensor(True)


# ------------------------------------------------------- documented initialisations
def gaussian_problem(values: Any, std: float) -> str:
    """ "" when ``values`` (at least 200000 entries) look drawn from N(0, std^2), else why not.

    Tests, each failing a correct draw with probability below 1e-18 for n >= 200000:
    |mean| <= 0.02 std (mean/std ~ N(0, 1/n): P(|Z| > 8.94) < 1e-18); sample std within 3 %
    (Laurent-Massart: P(|s^2/std^2 - 1| >= 0.0591) <= 2 exp(-n 0.0591^2 / 16) < 1e-18);
    share of |v| <= std within 0.02 of 0.6827, which a uniform of the same std (0.577) fails
    (Hoeffding: 2 exp(-2 n 0.02^2) < 1e-69).
    """
    v = torch.as_tensor(values).detach().double().flatten()
    assert v.numel() >= 200_000, "check bug: too few values for the stated probabilities"
    within = float((v.abs() <= std).double().mean())
    if (
        v.mean().abs() <= 0.02 * std
        and abs(float(v.std()) / std - 1) <= 0.03
        and abs(within - 0.6827) <= 0.02
    ):
        return ""
    return (
        f"has mean {float(v.mean()):.3g} and std {float(v.std()):.3g}, and {within:.1%} of "
        f"its entries lie within one std: it should be Gaussian with mean 0 and std {std}"
    )


def uniform_problem(values: Any, low: float, high: float) -> str:
    """ "" when ``values`` (at least 20000 entries) look drawn from U[low, high), else why not.

    Tests: every value in [low, high) (true of every correct draw); mean, and share below the
    middle, within 0.05 (high - low) of their values for a uniform (Hoeffding, m >= 20000:
    2 exp(-2 m 0.05^2) = 2 exp(-100) < 1e-43 each).
    """
    v = torch.as_tensor(values).detach().double().flatten()
    assert v.numel() >= 20_000, "check bug: too few values for the stated probabilities"
    width, middle = high - low, (low + high) / 2
    if (
        v.min() >= low
        and v.max() < high
        and abs(float(v.mean()) - middle) <= 0.05 * width
        and abs(float((v < middle).double().mean()) - 0.5) <= 0.05
    ):
        return ""
    return (
        f"has values in [{float(v.min()):.3g}, {float(v.max()):.3g}] with mean "
        f"{float(v.mean()):.3g}: it should be uniform on [{low:g}, {high:g})"
    )


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


def assign_parameters(
    module: Any, values: Mapping[str, torch.Tensor], layouts: Mapping[str, str] | None = None
) -> None:
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
        raise ParameterMismatch(
            f"{owner} is not a torch.nn.Module: subclass nn.Module and "
            f"call super().__init__() in __init__"
        )
    for name, value in values.items():
        param: Any = module
        try:
            for part in name.split("."):
                param = getattr(param, part)
        except Exception:  # noqa: BLE001 - nn.Module raises AttributeError; a student may not
            raise ParameterMismatch(
                f"{owner} has no parameter {name}: name your nn.Parameter exactly {name}"
            ) from None
        if not isinstance(param, torch.nn.Parameter):
            raise ParameterMismatch(
                f"{owner}.{name} is a {type(param).__name__}, not an "
                f"nn.Parameter: wrap it, self.{name} = "
                f"nn.Parameter(...), so that autograd and optimizers see it"
            )
        if tuple(param.shape) != tuple(value.shape):
            layout = f": the layout is {layouts[name]}" if layouts and name in layouts else ""
            raise ParameterMismatch(
                f"{owner}.{name} has shape {_shape_text(param.shape)}, "
                f"expected {_shape_text(value.shape)}{layout}"
            )
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
    """Trusted ReLU, any shape: the mask of positive inputs is kept for backward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.positive = x > 0
        return torch.where(self.positive, x, torch.zeros_like(x))

    def backward(self, dupstream: torch.Tensor) -> torch.Tensor:
        return torch.where(self.positive, dupstream, torch.zeros_like(dupstream))


class ProbeFlatten:
    """Trusted flatten: (N, ...) -> (N, prod(...)); backward restores the input's shape."""

    input_shape: tuple[int, ...] = ()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.input_shape = tuple(x.shape)
        return torch.flatten(x, start_dim=1)

    def backward(self, dupstream: torch.Tensor) -> torch.Tensor:
        return torch.reshape(dupstream, self.input_shape)
