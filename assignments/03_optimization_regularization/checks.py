"""Hidden checks of chapter 03: optimizers, initializers, dropout, batch and layer normalization,
penalties, early stopping, learning-rate schedules and the concept questions.

Never shipped to students. Everything runs in float64 on inputs drawn from the check's own
seeded generator. Design notes (measured, see the kit's check-design facts):

* Optimizers: 25 steps with fresh gradients each step, four parameter tensors of different
  shapes; parameter 1 has no gradient (``.grad`` None) on the first two steps and on every third
  step after, parameter 3 never has one. At default settings Adam's eps placed without bias
  correction moves the trajectory by about 1e-8 and AdamW's decay after the update by about
  2e-7, so the cases use a large eps with gradients of about 1e-3, and lr * weight_decay up to
  0.05; the tolerance is 1e-9 (correct float64 code in any summation order agrees to ~1e-14).
* Initializers draw from the check's generator and are graded statistically; each test's false
  alarm probability for a correct draw is given (below 1e-12 in total per call).
* Batch-norm running statistics are compared after conversion to float64 with rtol 1e-6, which
  float32 statistics created as ``torch.zeros(C)`` meet (they end about 2.4e-8 away).
"""

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from autograder.checks import Check, Output, Recorder
from autograder.kit import FROM_SCRATCH, noncontiguous, randn, run_independently, uniform

# The public normalization and dropout kernels of torch (the private ones are forbidden by the
# scan's rule on torch's private internals).
_NORM_AND_DROPOUT = (
    "alpha_dropout",
    "alpha_dropout_",
    "batch_norm",
    "batch_norm_backward_elemt",
    "batch_norm_backward_reduce",
    "batch_norm_elemt",
    "batch_norm_gather_stats",
    "batch_norm_gather_stats_with_counts",
    "batch_norm_stats",
    "batch_norm_update_stats",
    "cudnn_batch_norm",
    "dropout",
    "dropout_",
    "feature_alpha_dropout",
    "feature_alpha_dropout_",
    "feature_dropout",
    "feature_dropout_",
    "group_norm",
    "instance_norm",
    "layer_norm",
    "miopen_batch_norm",
    "native_batch_norm",
    "native_dropout",
    "native_group_norm",
    "native_layer_norm",
    "quantized_batch_norm",
)

# From scratch: no autograd, no torch.nn (so no torch.nn.init and no layers), no torch.optim,
# and none of the functional normalization and dropout kernels. A hit costs only the items of
# the class or function that uses it: torch.optim in an optimizer costs that optimizer's items.
FORBIDDEN = (
    *FROM_SCRATCH,
    "torch.optim",
    *(f"torch.{name}" for name in _NORM_AND_DROPOUT),
)

TRAJECTORY_TOL = 1e-9


class StatisticalCheckFailed(Exception):
    """A draw that a correct implementation produces with probability below 1e-12."""


def as_float64(value: Any) -> Any:
    """A Python number or a tensor of any float dtype as a float64 tensor (for outputs whose
    dtype the notebook leaves free)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.tensor(float(value), dtype=torch.float64)
    if type(value) is torch.Tensor and value.is_floating_point():
        return value.detach().to(torch.float64)
    return value


# ------------------------------------------------------------------------ q1: optimizers
PARAM_SHAPES = ((3, 4), (5,), (2, 3, 2), (4,))
STEPS = 25


def has_grad(index: int, step: int) -> bool:
    """Parameter 1 skips the first two steps and every third one; parameter 3 never has a
    gradient. A single step counter shared by all parameters shows only here."""
    if index == 3:
        return False
    if index == 1:
        return step >= 2 and step % 3 != 1
    return True


def make_optimizer_exercise(class_name: str) -> Callable[..., None]:
    def exercise(api: Any, case: Mapping[str, Any], rng: torch.Generator, out: Recorder) -> None:
        params = [randn(rng, *shape) for shape in PARAM_SHAPES]
        optimizer = getattr(api, class_name)(list(params), **case["options"])
        trajectory = []

        def steps() -> None:
            for step in range(STEPS):
                for index, p in enumerate(params):
                    scale = case["grad_scale"] * (1 + step % 4)
                    p.grad = scale * randn(rng, *p.shape) if has_grad(index, step) else None
                optimizer.step()
                trajectory.append(torch.cat([p.detach().flatten().clone() for p in params]))
            out["params"] = torch.stack(trajectory)

        def zero_grad() -> None:
            for p in params:
                p.grad = randn(rng, *p.shape)
            optimizer.zero_grad()
            optimizer.zero_grad()
            cleared = [
                p.grad is None or (type(p.grad) is torch.Tensor and bool((p.grad == 0).all()))
                for p in params
            ]
            out["zero_grad"] = torch.tensor(cleared)

        run_independently(steps, zero_grad)

    return exercise


def optimizer_check(class_name: str, cases: tuple[dict[str, Any], ...], hint: str) -> Check:
    return Check(
        name=class_name,
        question="q1",
        uses=(class_name,),
        exercise=make_optimizer_exercise(class_name),
        cases=cases,
        outputs=(
            Output("params", points=1.5, rtol=TRAJECTORY_TOL, atol=TRAJECTORY_TOL, hint=hint),
            Output(
                "zero_grad",
                points=0.5,
                hint="zero_grad() sets every parameter's .grad to None (or to zeros).",
            ),
        ),
    )


SGD_CASES = (
    {"options": {"lr": 0.1}, "grad_scale": 1.0},
    {"options": {"lr": 0.05, "momentum": 0.9}, "grad_scale": 1.0},
    {"options": {"lr": 0.05, "momentum": 0.8, "dampening": 0.5}, "grad_scale": 1.0},
    {"options": {"lr": 0.05, "momentum": 0.9, "nesterov": True}, "grad_scale": 1.0},
    {"options": {"lr": 0.1, "weight_decay": 0.3}, "grad_scale": 1.0},
    {"options": {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.2}, "grad_scale": 1.0},
    {
        "options": {"lr": 0.05, "momentum": 0.7, "dampening": 0.3, "weight_decay": 0.5},
        "grad_scale": 0.5,
    },
    {
        "options": {"lr": 0.02, "momentum": 0.95, "weight_decay": 0.1, "nesterov": True},
        "grad_scale": 2.0,
    },
)
RMSPROP_CASES = (
    {"options": {"lr": 0.01}, "grad_scale": 1.0},
    {"options": {"lr": 0.05, "alpha": 0.9}, "grad_scale": 1e-3},
    {"options": {"lr": 0.01, "eps": 1e-2}, "grad_scale": 1e-2},
    {"options": {"lr": 0.02, "alpha": 0.7, "weight_decay": 0.3}, "grad_scale": 1.0},
    {"options": {"lr": 0.05, "alpha": 0.5, "eps": 1e-3, "weight_decay": 0.1}, "grad_scale": 1e-3},
)
ADAM_CASES = (
    {"options": {"lr": 0.01}, "grad_scale": 1.0},
    {"options": {"lr": 0.05, "eps": 1e-3}, "grad_scale": 1e-3},
    {"options": {"lr": 0.05, "betas": (0.8, 0.9)}, "grad_scale": 1.0},
    {"options": {"lr": 0.1, "weight_decay": 0.5}, "grad_scale": 1.0},
    {
        "options": {"lr": 0.1, "betas": (0.5, 0.7), "eps": 0.1, "weight_decay": 0.2},
        "grad_scale": 0.1,
    },
)
ADAMW_CASES = (
    {"options": {"lr": 0.01}, "grad_scale": 1.0},
    {"options": {"lr": 0.1, "weight_decay": 0.5}, "grad_scale": 1.0},
    {"options": {"lr": 0.05, "eps": 1e-3, "weight_decay": 0.2}, "grad_scale": 1e-3},
    {"options": {"lr": 0.1, "betas": (0.7, 0.8), "weight_decay": 0.3}, "grad_scale": 0.1},
)


# ---------------------------------------------------------------------- q2: initializers
def exercise_fans(api: Any, case: Mapping[str, Any], rng: torch.Generator, out: Recorder) -> None:
    fans = [api.calculate_fans(torch.empty(shape, dtype=torch.float64)) for shape in case["shapes"]]
    out["fans"] = torch.tensor([[float(f) for f in pair] for pair in fans], dtype=torch.float64)


FAN_SHAPES = (
    {"shapes": ((3, 5), (5, 3), (1, 1))},
    {"shapes": ((8, 4, 3, 3), (2, 6, 5), (4, 2, 1, 3, 2), (16, 1, 1, 1))},
)

# Expected (fan_in, fan_out) come from the reference; the statistical tests below recompute
# the bound and standard deviation from the documented formulas.
GAINS = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0)}
FAIL_EXPONENT = 28.5  # e^-28.5 = 4.2e-13 per one-sided test


def reference_scale(name: str, shape: tuple[int, ...], options: Mapping[str, Any]) -> float:
    receptive = math.prod(shape[2:])
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    if name.startswith("xavier"):
        std = options.get("gain", 1.0) * math.sqrt(2.0 / (fan_in + fan_out))
    else:
        std = GAINS[options.get("nonlinearity", "relu")] / math.sqrt(fan_in)
    return std


def test_uniform(values: torch.Tensor, std: float, where: str) -> None:
    """U(-b, b) with b = sqrt(3) std. (1) no value beyond b (up to 1e-9 relative, rounding):
    never fails a correct draw. (2) the largest value above b (1 - delta) and the smallest below
    -b (1 - delta), delta = 2 * 28.5 / n: a correct draw fails each with probability
    (1 - delta / 2)^n <= e^-28.5 = 4.2e-13, so both together below 1e-12."""
    bound = math.sqrt(3.0) * std
    n = values.numel()
    delta = 2 * FAIL_EXPONENT / n
    largest = values.abs().max().item()
    if not math.isfinite(largest) or largest > bound * (1 + 1e-9):
        raise StatisticalCheckFailed(
            f"{where}: values reach {largest / bound:.3f} times the documented bound"
        )
    if values.max().item() < bound * (1 - delta) or values.min().item() > -bound * (1 - delta):
        raise StatisticalCheckFailed(
            f"{where}: the values span only [{values.min().item() / bound:.3f}, "
            f"{values.max().item() / bound:.3f}] times the documented bound; a uniform draw of "
            f"{n} values reaches both ends"
        )


def test_normal(values: torch.Tensor, std: float, where: str) -> None:
    """N(0, std^2). With n values, mean(x^2)/std^2 is chi-square(n)/n; Laurent-Massart: it
    exceeds 1 + 2 sqrt(x/n) + 2x/n, or falls below 1 - 2 sqrt(x/n), each with probability at
    most e^-x; x = 28.5 gives 4.2e-13 per side. The mean: |mean| > 7.6 std / sqrt(n) has
    probability 2 * Phi(-7.6) < 3e-14. A uniform draw of the same std never exceeds sqrt(3) std;
    a normal one of n >= 40000 values stays below it with probability 0.917^n < 1e-1000."""
    n = values.numel()
    x = FAIL_EXPONENT
    ratio = (values * values).mean().item() / std**2
    if not (1 - 2 * math.sqrt(x / n) <= ratio <= 1 + 2 * math.sqrt(x / n) + 2 * x / n):
        raise StatisticalCheckFailed(
            f"{where}: the standard deviation is {math.sqrt(max(ratio, 0.0)):.3f} times the "
            f"documented one"
        )
    if abs(values.mean().item()) > 7.6 * std / math.sqrt(n):
        raise StatisticalCheckFailed(f"{where}: the values are not centred on 0")
    if values.abs().max().item() <= math.sqrt(3.0) * std:
        raise StatisticalCheckFailed(f"{where}: the values look uniform, not normal")


def make_init_exercise(name: str) -> Callable[..., None]:
    def exercise(api: Any, case: Mapping[str, Any], rng: torch.Generator, out: Recorder) -> None:
        init = getattr(api, name)
        options = dict(case.get("options", {}))
        shape = case["shape"]
        arguments = "".join(f", {k}={v!r}" for k, v in options.items())
        where = f"{name}(torch.empty{shape}{arguments})"

        def distribution() -> None:
            for call in range(2):
                tensor = torch.full(shape, float("nan"), dtype=torch.float64)
                result = init(tensor, **options, generator=rng)
                if result is not tensor:
                    raise StatisticalCheckFailed(
                        f"{where} must fill the tensor in place and return that same tensor"
                    )
                test = test_uniform if name.endswith("uniform_") else test_normal
                test(tensor, reference_scale(name, shape, options), f"{where}, call {call + 1}")
            out["distribution"] = torch.tensor(True)

        def generator() -> None:
            seed = int(torch.randint(0, 2**31, (1,), generator=rng))
            draws = []
            for offset in (0, 0, 1):
                tensor = torch.zeros(shape, dtype=torch.float64)
                init(tensor, **options, generator=torch.Generator().manual_seed(seed + offset))
                draws.append(tensor)
            same = torch.equal(draws[0], draws[1])
            different = not torch.equal(draws[0], draws[2])
            out["generator"] = torch.tensor([same, different])

        run_independently(distribution, generator)

    return exercise


def init_check(name: str, cases: tuple[dict[str, Any], ...], hint: str) -> Check:
    return Check(
        name=name,
        question="q2",
        uses=(name,),
        exercise=make_init_exercise(name),
        cases=cases,
        timeout_s=20.0,
        outputs=(
            Output("distribution", hint=hint),
            Output(
                "generator",
                points=0.5,
                hint="Draw every random number from `generator` when one is given "
                "(torch.rand(..., generator=generator) or "
                "tensor.uniform_(..., generator=generator)): the same seed must give "
                "the same values.",
            ),
        ),
    )


XAVIER_CASES = (
    {"shape": (50, 1000)},
    {"shape": (1000, 40), "options": {"gain": 5.0 / 3.0}},
    {"shape": (64, 32, 5, 5)},
    {"shape": (100, 40, 10), "options": {"gain": 0.5}},
)
KAIMING_CASES = (
    {"shape": (50, 1000)},
    {"shape": (1000, 40), "options": {"nonlinearity": "tanh"}},
    {"shape": (64, 32, 5, 5), "options": {"nonlinearity": "relu"}},
    {"shape": (100, 40, 10), "options": {"nonlinearity": "linear"}},
)
FAN_HINT = (
    "fan_in = in * prod(kernel) and fan_out = out * prod(kernel) for a weight laid out "
    "(out, in, *kernel): the kernel size counts in both."
)


# ----------------------------------------------------------------------------- q3: dropout
def exercise_dropout(
    api: Any, case: Mapping[str, Any], rng: torch.Generator, out: Recorder
) -> None:
    p, shape = case["p"], case["shape"]
    n = math.prod(shape)
    layer = api.Dropout(p)
    x = uniform(rng, *shape, low=1.0, high=2.0) * torch.where(
        torch.rand(shape, generator=rng) < 0.5, -1.0, 1.0
    ).to(torch.float64)
    if case.get("noncontiguous"):
        x = noncontiguous(x)
    dy = randn(rng, *shape)
    out.watch(x=x, dupstream=dy)

    def check_structure(y: Any, what: str) -> torch.Tensor:
        if type(y) is not torch.Tensor or y.shape != x.shape:
            raise StatisticalCheckFailed(f"{what} must be a tensor of x's shape {tuple(shape)}")
        kept = y != 0
        scaled = x / (1 - p)
        if not torch.allclose(y[kept], scaled[kept], rtol=1e-12, atol=0.0):
            raise StatisticalCheckFailed(f"{what}: kept values must equal x / (1 - p)")
        return kept

    def training() -> None:
        outputs = [layer.forward(x, generator=rng) for _ in range(2)]
        dx = layer.backward(dy)
        # backward is graded against the mask of the student's own last forward, before the
        # forward's statistics are judged, so that a forward bug costs only the forward's items
        y = outputs[1]
        shapes_match = all(type(t) is torch.Tensor and t.shape == x.shape for t in (y, dx))
        out["backward"] = dx - dy * (y != 0) / (1 - p) if shapes_match else dx
        masks = [check_structure(output, "forward in training mode") for output in outputs]
        rate = masks[1].double().mean().item()
        # Hoeffding: P(|rate - (1 - p)| > t) <= 2 exp(-2 n t^2) = 2e-13 for this t.
        t = math.sqrt(math.log(2e13) / (2 * n))
        if abs(rate - (1 - p)) > t:
            raise StatisticalCheckFailed(f"forward keeps {rate:.3f} of the values with p = {p}")
        if 0 < p and torch.equal(masks[0], masks[1]):
            raise StatisticalCheckFailed(
                "two forward calls used the same mask: draw a new one each call"
            )
        out["train_forward"] = torch.tensor(True)

    def evaluation() -> None:
        layer.eval()
        y = layer.forward(x)
        dx = layer.backward(dy)
        y2 = layer.forward(x)
        out["eval"] = (
            torch.stack([y, dx, y2])
            if all(type(t) is torch.Tensor and t.shape == x.shape for t in (y, dx, y2))
            else y
        )
        layer.train()
        again = layer.forward(x, generator=rng)
        check_structure(again, "forward after train()")
        out["train_after_eval"] = torch.tensor(bool((again == 0).any()) or p == 0)

    def generator() -> None:
        seed = int(torch.randint(0, 2**31, (1,), generator=rng))
        first = layer.forward(x, generator=torch.Generator().manual_seed(seed))
        second = layer.forward(x, generator=torch.Generator().manual_seed(seed))
        default = layer.forward(x)
        check_structure(default, "forward without a generator")
        out["generator"] = torch.tensor(torch.equal(first, second))

    run_independently(training, evaluation, generator)


DROPOUT_CASES = (
    {"p": 0.2, "shape": (200, 250)},
    {"p": 0.6, "shape": (50, 40, 25)},
    {"p": 0.0, "shape": (7, 9)},
    {"p": 0.75, "shape": (250, 200), "noncontiguous": True},
)


# -------------------------------------------------------------------------- q4: batch norm
def exercise_batchnorm(
    api: Any, case: Mapping[str, Any], rng: torch.Generator, out: Recorder
) -> None:
    n, c = case["N"], case["C"]
    options = case.get("options", {})
    layer = api.BatchNorm1d(c, **options)
    layer.weight = randn(rng, c)
    layer.bias = randn(rng, c)
    scales = (
        10.0 ** uniform(rng, c, low=-3.0, high=3.0)
        if case.get("scaled")
        else torch.ones(c, dtype=torch.float64)
    )
    offsets = uniform(rng, c, low=1.0, high=3.0) * torch.where(
        torch.arange(c) % 2 == 0, 1.0, -1.0
    ).to(torch.float64)
    batches = [scales * (offsets + randn(rng, n, c)) for _ in range(3)]
    upstream = [randn(rng, n, c) for _ in range(3)]
    x_eval = scales * (offsets + randn(rng, n + 3, c))
    problems = []

    def training() -> None:
        layer.train()  # a fresh layer is in training mode already: train() must keep it there
        for step, (x, dy) in enumerate(zip(batches, upstream)):
            out.watch(x=x, dupstream=dy)
            y = layer.forward(x)
            if step == 2:
                out["y_train"] = y
            try:
                dx = layer.backward(dy)
                if step == 2:
                    out["dx"] = dx
                    out.attributes(layer, "grad_weight", "grad_bias")
            except Exception as exc:  # noqa: BLE001 - graded as missing backward items
                problems.append(exc)
        out["running_mean"] = as_float64(layer.running_mean)
        out["running_var"] = as_float64(layer.running_var)

    def evaluation() -> None:
        layer.eval()
        layer.forward(x_eval)
        out["y_eval"] = layer.forward(x_eval)

    run_independently(training, evaluation)
    if problems:
        raise problems[0]


BN_CASES = (
    {"N": 2, "C": 3},
    {"N": 2, "C": 4, "scaled": True},
    {"N": 8, "C": 5, "scaled": True},
    {"N": 64, "C": 4, "scaled": True, "options": {"momentum": 0.3}},
    {"N": 16, "C": 1, "options": {"eps": 1e-3}},
    {"N": 5, "C": 6, "scaled": True, "options": {"eps": 1e-2, "momentum": 0.5}},
)


# -------------------------------------------------------------------------- q5: layer norm
def exercise_layernorm(
    api: Any, case: Mapping[str, Any], rng: torch.Generator, out: Recorder
) -> None:
    shape, normalized = case["shape"], case["normalized"]
    norm_shape = (normalized,) if isinstance(normalized, int) else tuple(normalized)
    options = case.get("options", {})
    layer = api.LayerNorm(normalized, **options)
    layer.weight = randn(rng, *norm_shape)
    layer.bias = randn(rng, *norm_shape)
    for call in range(2):
        x = case["scale"] * (randn(rng, *shape) + uniform(rng, *shape[:-1], 1, low=-2, high=2))
        dy = randn(rng, *shape)
        if call == 1:
            out.watch(x=x, dupstream=dy)
        y = layer.forward(x)
        try:
            dx = layer.backward(dy)
        finally:
            if call == 1:
                out["y"] = y
        if call == 1:
            out["dx"] = dx
            out.attributes(layer, "grad_weight", "grad_bias")


LN_CASES = (
    {"shape": (4, 6), "normalized": 6, "scale": 1.0},
    {"shape": (1, 7), "normalized": 7, "scale": 100.0},
    {"shape": (3, 5, 8), "normalized": (8,), "scale": 1.0},
    {"shape": (2, 3, 4, 5), "normalized": (4, 5), "scale": 0.01},
    {"shape": (2, 3, 4), "normalized": (3, 4), "scale": 1.0, "options": {"eps": 0.1}},
    {"shape": (3, 2, 3, 4), "normalized": (2, 3, 4), "scale": 10.0},
)


# ---------------------------------------------------- q6: penalties, early stopping, schedules
def exercise_penalties(
    api: Any, case: Mapping[str, Any], rng: torch.Generator, out: Recorder
) -> None:
    def draw() -> list[torch.Tensor]:
        params = [randn(rng, *shape) for shape in case["shapes"]]
        params[-1][::2] = 0.0
        return params

    def record(name: str) -> Callable[[], None]:
        def part() -> None:
            values = []
            for _ in range(2):
                params = draw()
                value, grads = getattr(api, name)(params)
                values.append(as_float64(value))
            out[name.split("_")[0] + "_value"] = torch.stack(values)
            out[name.split("_")[0] + "_grads"] = torch.cat([g.flatten() for g in grads])

        return part

    run_independently(record("l2_penalty"), record("l1_penalty"))


PENALTY_CASES = (
    {"shapes": ((4,),)},
    {"shapes": ((3, 4), (5,), (6,))},
    {"shapes": ((2, 3, 2), (1,), (4, 4), (8,))},
)


def exercise_early_stopping(
    api: Any, case: Mapping[str, Any], rng: torch.Generator, out: Recorder
) -> None:
    stopper = api.EarlyStopping(case["patience"], min_delta=case["min_delta"], mode=case["mode"])
    decisions, bests, best_steps = [], [], []
    for value in case["values"]:
        stop = stopper.step(value)
        decisions.append(float(bool(stop)))
        bests.append(float(stopper.best))
        best_steps.append(float(stopper.best_step))
        if stop:
            break
    out["stop"] = torch.tensor(decisions, dtype=torch.float64)
    out["best"] = torch.tensor(bests, dtype=torch.float64)
    out["best_step"] = torch.tensor(best_steps, dtype=torch.float64)


# Dyadic values: best + min_delta is exact, so a tie within min_delta is a tie in any style.
EARLY_CASES = (
    {
        "patience": 3,
        "min_delta": 0.0,
        "mode": "max",
        "values": (0.5, 0.625, 0.625, 0.75, 0.5, 0.75, 0.875, 0.5, 0.875, 0.875, 0.25, 1.0),
    },
    {
        "patience": 2,
        "min_delta": 0.25,
        "mode": "max",
        "values": (0.5, 0.75, 0.75, 1.0, 1.5, 1.625, 1.75, 2.0, 1.5, 2.25, 2.0),
    },
    {
        "patience": 2,
        "min_delta": 0.0,
        "mode": "min",
        "values": (2.0, 1.5, 1.5, 1.0, 1.25, 0.5, 0.5, 0.75, 0.25),
    },
    {
        "patience": 3,
        "min_delta": 0.125,
        "mode": "min",
        "values": (1.0, 0.875, 0.75, 0.625, 0.625, 0.25, 0.25, 0.125, 0.25, 0.0, 0.5, 0.5),
    },
    {"patience": 1, "min_delta": 0.0, "mode": "max", "values": (1.0, 2.0, 3.0, 3.0, 4.0)},
    {
        "patience": 4,
        "min_delta": 0.5,
        "mode": "max",
        "values": (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.75, 1.75, 2.0, 2.25, 2.25, 2.5),
    },
)


def exercise_schedules(
    api: Any, case: Mapping[str, Any], rng: torch.Generator, out: Recorder
) -> None:
    def steps() -> None:
        out["step_lr"] = torch.tensor(
            [
                float(api.step_lr(t, case["base_lr"], case["step_size"], case["gamma"]))
                for t in range(case["total"] + 1)
            ],
            dtype=torch.float64,
        )

    def cosine() -> None:
        out["cosine_lr"] = torch.tensor(
            [
                float(api.cosine_lr(t, case["base_lr"], case["total"], case["min_lr"]))
                for t in range(case["total"] + 1)
            ],
            dtype=torch.float64,
        )

    run_independently(steps, cosine)


SCHEDULE_CASES = (
    {"base_lr": 0.1, "step_size": 3, "gamma": 0.1, "total": 10, "min_lr": 0.0},
    {"base_lr": 0.5, "step_size": 1, "gamma": 0.5, "total": 7, "min_lr": 0.01},
    {"base_lr": 2.0, "step_size": 10, "gamma": 0.9, "total": 30, "min_lr": 0.2},
    {"base_lr": 0.3, "step_size": 4, "gamma": 0.25, "total": 1, "min_lr": 0.05},
)


# ---------------------------------------------------------------------------- q7: concepts
CONCEPTS = {
    "var_linear": "Var(sum_i x_i W_ij) = fan_in * Var(W) * E[x^2] for independent zero-mean "
    "weights.",
    "var_kaiming_relu": "A ReLU keeps half of the second moment of a symmetric pre-activation: "
    "E[relu(z)^2] = Var(z) / 2.",
    "bn_parameters": "The learnable parameters are gamma and beta, one of each per feature.",
    "bn_running_statistics": "Batch-norm keeps a running mean and a running variance per "
    "feature (not counting PyTorch's num_batches_tracked).",
    "sgd_l2_in_loss": "With L = L0 + (wd/2) w^2 the gradient is g + wd * w.",
    "sgd_weight_decay": "SGD's weight_decay adds wd * w to the gradient before the step.",
    "adam_l2": "Adam's first step moves every coordinate by about lr (m_hat / sqrt(v_hat) = "
    "sign of the gradient), whatever the L2 term adds to the gradient.",
    "adamw": "AdamW first multiplies w by (1 - lr * wd), then takes the Adam step on g alone.",
}


def exercise_concepts(
    api: Any, case: Mapping[str, Any], rng: torch.Generator, out: Recorder
) -> None:
    answers = api.concept_answers()
    for key in CONCEPTS:
        try:
            out[key] = as_float64(answers[key])
        except Exception:  # noqa: BLE001, S112 - a missing key is graded as a missing output
            continue


CHECKS = [
    optimizer_check(
        "SGD",
        SGD_CASES,
        "Weight decay adds weight_decay * p to the gradient first; the momentum "
        "buffer is the gradient itself on the first step, then momentum * buf + "
        "(1 - dampening) * g; Nesterov steps along g + momentum * buf. Update in "
        "place and skip parameters whose .grad is None.",
    ),
    optimizer_check(
        "RMSprop",
        RMSPROP_CASES,
        "v = alpha * v + (1 - alpha) * g**2 and p -= lr * g / (sqrt(v) + eps): eps "
        "outside the square root; weight decay enters g before v.",
    ),
    optimizer_check(
        "Adam",
        ADAM_CASES,
        "Bias-correct both moments with each parameter's own step count (a "
        "parameter whose .grad is None is skipped and its count does not advance): "
        "p -= lr * m_hat / (sqrt(v_hat) + eps); L2 weight decay enters g before "
        "the moments.",
    ),
    optimizer_check(
        "AdamW",
        ADAMW_CASES,
        "Decoupled decay: p *= (1 - lr * weight_decay) before the Adam step, and the "
        "decay never enters the gradient or the moments; bias correction with each "
        "parameter's own step count.",
    ),
    Check(
        name="calculate_fans",
        question="q2",
        uses=("calculate_fans",),
        exercise=exercise_fans,
        cases=FAN_SHAPES,
        outputs=(Output("fans", hint=FAN_HINT + " Return (fan_in, fan_out) in this order."),),
    ),
    init_check(
        "xavier_uniform_",
        XAVIER_CASES,
        "U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)). " + FAN_HINT,
    ),
    init_check(
        "xavier_normal_",
        XAVIER_CASES,
        "N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)). " + FAN_HINT,
    ),
    init_check(
        "kaiming_uniform_",
        KAIMING_CASES,
        "U(-b, b) with b = gain * sqrt(3 / fan_in), gain sqrt(2) for relu, 5/3 for "
        "tanh, 1 for linear and sigmoid. " + FAN_HINT,
    ),
    init_check(
        "kaiming_normal_",
        KAIMING_CASES,
        "N(0, std^2) with std = gain / sqrt(fan_in), gain sqrt(2) for relu, 5/3 for "
        "tanh, 1 for linear and sigmoid. " + FAN_HINT,
    ),
    Check(
        name="Dropout",
        question="q3",
        uses=("Dropout",),
        exercise=exercise_dropout,
        cases=DROPOUT_CASES,
        timeout_s=20.0,
        outputs=(
            Output(
                "train_forward",
                hint="In training, keep each value with probability 1 - p "
                "(p is the probability of DROPPING) and divide the kept "
                "ones by 1 - p; draw a new mask every call.",
            ),
            Output(
                "backward",
                rtol=1e-12,
                atol=1e-12,
                hint="backward multiplies dupstream by the same mask / (1 - p) that the last "
                "forward used: keep it from forward, do not draw a new one.",
            ),
            Output(
                "eval",
                hint="In eval mode forward returns x unchanged (no mask, no "
                "scaling: inverted dropout already scaled during training) and "
                "backward returns dupstream.",
            ),
            Output(
                "train_after_eval",
                points=0.5,
                hint="train() switches dropping back on after eval().",
            ),
            Output(
                "generator",
                points=0.5,
                hint="Draw the mask from `generator` when one is given: the same seed must "
                "give the same output; without one, use the global generator.",
            ),
        ),
    ),
    Check(
        name="BatchNorm1d",
        question="q4",
        uses=("BatchNorm1d",),
        exercise=exercise_batchnorm,
        cases=BN_CASES,
        pattern_axes=("N", "scaled", "options"),
        outputs=(
            Output(
                "y_train",
                rtol=1e-7,
                atol=1e-9,
                hint="Training mode normalizes with the batch mean and the BIASED batch "
                "variance (divide by N) over dim 0, then y = weight * x_hat + bias.",
            ),
            Output(
                "dx",
                rtol=1e-7,
                atol=1e-9,
                hint="dx = weight / (N * sqrt(var + eps)) * (N * dy - dy.sum(0) - x_hat * "
                "(dy * x_hat).sum(0)): both mean terms matter.",
            ),
            Output(
                "grad_weight",
                points=0.5,
                rtol=1e-7,
                atol=1e-9,
                hint="grad_weight = (dy * x_hat).sum(0), from the last forward's x_hat.",
            ),
            Output("grad_bias", points=0.5, rtol=1e-7, atol=1e-9, hint="grad_bias = dy.sum(0)."),
            Output(
                "running_mean",
                points=0.5,
                rtol=1e-6,
                atol=1e-9,
                hint="running_mean = (1 - momentum) * running_mean + momentum * batch_mean, "
                "starting from zeros.",
            ),
            Output(
                "running_var",
                points=0.5,
                rtol=1e-6,
                atol=1e-9,
                hint="running_var keeps the UNBIASED batch variance (divide by N - 1): "
                "(1 - momentum) * running_var + momentum * var * N / (N - 1), starting "
                "from ones.",
            ),
            Output(
                "y_eval",
                rtol=1e-5,
                atol=1e-7,
                hint="In eval mode normalize with running_mean and running_var (not the "
                "batch's statistics) and leave the running statistics unchanged.",
            ),
        ),
    ),
    Check(
        name="LayerNorm",
        question="q5",
        uses=("LayerNorm",),
        exercise=exercise_layernorm,
        cases=LN_CASES,
        outputs=(
            Output(
                "y",
                rtol=1e-7,
                atol=1e-9,
                hint="Normalize each example over its LAST len(normalized_shape) dimensions "
                "(not over the batch) with the biased variance, then weight * x_hat + "
                "bias.",
            ),
            Output(
                "dx",
                rtol=1e-7,
                atol=1e-9,
                hint="Over the M normalized entries of one example: dx = inv_std / M * (M * g "
                "- sum(g) - x_hat * sum(g * x_hat)) with g = dy * weight.",
            ),
            Output(
                "grad_weight",
                points=0.5,
                rtol=1e-7,
                atol=1e-9,
                hint="grad_weight sums dy * x_hat over ALL leading dimensions; its shape is "
                "normalized_shape.",
            ),
            Output(
                "grad_bias",
                points=0.5,
                rtol=1e-7,
                atol=1e-9,
                hint="grad_bias sums dy over all leading dimensions.",
            ),
        ),
    ),
    Check(
        name="penalties",
        question="q6",
        uses=("l2_penalty", "l1_penalty"),
        exercise=exercise_penalties,
        cases=PENALTY_CASES,
        outputs=(
            Output(
                "l2_value",
                points=0.5,
                hint="0.5 * the sum of squares of every entry of every tensor.",
            ),
            Output(
                "l2_grads",
                points=0.5,
                hint="The gradient of 0.5 * p**2 is p itself, one tensor per parameter.",
            ),
            Output("l1_value", points=0.5, hint="The sum of absolute values of every entry."),
            Output("l1_grads", points=0.5, hint="sign(p), which is 0 where p is exactly 0."),
        ),
    ),
    Check(
        name="EarlyStopping",
        question="q6",
        uses=("EarlyStopping",),
        exercise=exercise_early_stopping,
        cases=EARLY_CASES,
        outputs=(
            Output(
                "stop",
                hint="Count the calls in a row without improvement; return True when "
                "the count reaches patience. A tie, or an improvement of at most "
                "min_delta, is no improvement and does not reset the count.",
            ),
            Output(
                "best",
                points=0.5,
                hint="best is the best metric so far in the mode's "
                "direction ('min': lower is better), updated only on "
                "an improvement.",
            ),
            Output(
                "best_step",
                points=0.5,
                hint="best_step is the 0-based index of the call that set best.",
            ),
        ),
    ),
    Check(
        name="schedules",
        question="q6",
        uses=("step_lr", "cosine_lr"),
        exercise=exercise_schedules,
        cases=SCHEDULE_CASES,
        pattern_axes=("base_lr", "step_size", "gamma", "min_lr"),
        outputs=(
            Output(
                "step_lr",
                points=0.5,
                rtol=1e-12,
                atol=1e-15,
                hint="base_lr * gamma ** (step // step_size): step 0 is base_lr.",
            ),
            Output(
                "cosine_lr",
                points=0.5,
                rtol=1e-12,
                atol=1e-15,
                hint="min_lr + (base_lr - min_lr) * (1 + cos(pi * step / total_steps)) / 2.",
            ),
        ),
    ),
    Check(
        name="concepts",
        question="q7",
        uses=("concept_answers",),
        exercise=exercise_concepts,
        cases=({},),
        public_gap="they check that every answer is a number (and that the two SGD answers "
        "agree), not its value",
        outputs=tuple(
            Output(key, points=0.5, rtol=1e-6, atol=1e-6, hint=hint)
            for key, hint in CONCEPTS.items()
        ),
    ),
]
