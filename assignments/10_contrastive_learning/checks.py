"""Hidden checks of chapter 10: InfoNCE (NT-Xent), contrastive accuracy, alignment and
uniformity, augmentations, the projection head, the SimCLR module and feature extraction.

Never shipped to students. Students write functions and ``nn.Module`` classes; autograd
computes the gradients, so a loss check draws seeded float64 embeddings, calls the student's
loss twice in a row (the second call is graded), back-propagates it and grades the value and
the gradient with respect to each input as separate items.

Design facts (measured, see the course's check-design notes):

* At temperature 0.01 random embeddings saturate the softmax (the loss is about 0 and several
  bugs vanish): the embeddings are drawn around one direction, with a spread that scales with
  the temperature, so that the logits of an anchor differ by a few units.
* A log-sum-exp without the maximum subtracted does not overflow in float64 at temperature
  0.01 (exp(100) is finite); it overflows in float32 once cosines exceed about 0.89, hence the
  separate float32 check, whose embeddings have cosines above 0.9.
* Duplicated embeddings do not tie exactly through ``z @ z.T``; the tie cases of
  ``contrastive_accuracy`` use axis-aligned embeddings scaled by powers of two, whose cosines
  are exactly 0 or +-1 in any implementation.
* N = 1 exposes the diagonal and the denominator (the loss is exactly 0, with zero
  gradients); temperature 1 hides temperature bugs, so most cases use other temperatures.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from autograder.checks import Check, Output
from autograder.kit import (
    assign_parameters,
    noncontiguous,
    randn,
    record_grads,
    run_independently,
    uniform,
)

# Students write the softmax cross-entropy of the loss themselves, with a stable log-sum-exp.
FORBIDDEN = (
    "torch.nn.functional.cross_entropy",
    "torch.nn.functional.nll_loss",
    "torch.nn.functional.log_softmax",
    "torch.log_softmax",
    "torch.special.log_softmax",
    "Tensor.log_softmax",
    "torch.logsumexp",
    "torch.special.logsumexp",
    "Tensor.logsumexp",
    "torch.nn.CrossEntropyLoss",
    "torch.nn.NLLLoss",
    "torch.nn.modules.loss",
    "torch.ops",
)

GRADIENT_HINT = (
    "Autograd computes this gradient from your loss: if the value passes, look "
    "for .detach(), .data, torch.no_grad() or torch.tensor(...) on the way from "
    "{what} to the result (normalise with the tensor itself, not a detached norm)."
)


def record_scalar(out: Any, name: str, value: Any) -> None:
    """Records a number the API returns as a float (or a 0-dim tensor) as float64."""
    out[name] = torch.tensor(float(value), dtype=torch.float64)


# ------------------------------------------------------------------ embeddings for the losses
def clustered_pairs(
    rng: torch.Generator,
    n: int,
    d: int,
    spread: float,
    noise: float,
    log_norm: float,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two views (N, D): rows around one unit direction (``spread`` away from it), the second
    view ``noise`` away from the first, every row then scaled by exp(U(-log_norm, log_norm))
    so that a loss without normalisation is caught."""
    center = randn(rng, d)
    center = center / center.norm()
    z1 = center + spread * randn(rng, n, d)
    z2 = z1 + noise * randn(rng, n, d)
    scales = torch.exp(uniform(rng, 2 * n, 1, low=-log_norm, high=log_norm))
    z = torch.cat([z1, z2]) * scales
    return z[:n].to(dtype).clone(), z[n:].to(dtype).clone()


def axis_aligned(rng: torch.Generator, directions: list[int], d: int) -> torch.Tensor:
    """Rows +-2**k e_a (a = |direction| - 1, sign of direction, k in -3..3): cosines exactly
    0 or +-1 in any implementation."""
    rows = torch.zeros(len(directions), d, dtype=torch.float64)
    powers = torch.randint(-3, 4, (len(directions),), generator=rng)
    for row, (direction, power) in enumerate(zip(directions, powers.tolist())):
        rows[row, abs(direction) - 1] = math.copysign(2.0**power, direction)
    return rows


def loss_inputs(
    rng: torch.Generator, case: dict[str, Any], dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """The case's two views: clustered pairs, with the case's duplicated rows copied in."""
    z1, z2 = clustered_pairs(
        rng, case["N"], case["D"], case["spread"], case["noise"], case.get("log_norm", 1.0), dtype
    )
    for (src_view, src_row), (dst_view, dst_row), factor in case.get("duplicates", ()):
        views = (z1, z2)
        views[dst_view][dst_row] = factor * views[src_view][src_row]
    return z1, z2


# ------------------------------------------------------------------------ q1: info_nce_loss
def exercise_info_nce(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    dtype = torch.float32 if case.get("float32") else torch.float64
    warmup = loss_inputs(rng, {**case, "duplicates": ()}, dtype)
    z1, z2 = loss_inputs(rng, case, dtype)
    if case.get("noncontiguous"):
        z1, z2 = noncontiguous(z1), noncontiguous(z2)
    z1.requires_grad_(True)
    z2.requires_grad_(True)
    out.watch(z1=z1, z2=z2)
    kwargs = {} if case["temperature"] is None else {"temperature": case["temperature"]}
    api.info_nce_loss(*warmup, **kwargs)
    try:
        loss = api.info_nce_loss(z1, z2, **kwargs)
        out["loss"] = loss
        loss.backward()
    finally:
        record_grads(out, {"grad_z1": z1, "grad_z2": z2})


# temperature None: the default (0.5). spread/noise: see clustered_pairs. duplicates:
# ((view, row) copied from, (view, row) copied to, factor).
INFO_NCE_CASES = (
    {"N": 1, "D": 3, "temperature": 0.5, "spread": 1.0, "noise": 0.5},
    {"N": 1, "D": 4, "temperature": 0.01, "spread": 0.1, "noise": 0.05},
    {"N": 2, "D": 2, "temperature": None, "spread": 1.0, "noise": 0.3},
    {"N": 4, "D": 5, "temperature": 0.5, "spread": 0.8, "noise": 0.3, "log_norm": 4.0},
    {"N": 8, "D": 16, "temperature": 0.1, "spread": 0.25, "noise": 0.1},
    {"N": 16, "D": 8, "temperature": 0.01, "spread": 0.06, "noise": 0.02},
    {"N": 6, "D": 4, "temperature": 10.0, "spread": 3.0, "noise": 1.0},
    {
        "N": 5,
        "D": 6,
        "temperature": 0.2,
        "spread": 1.0,
        "noise": 0.2,
        "duplicates": (((0, 3), (0, 1), 4.0), ((0, 0), (1, 0), 0.5), ((1, 4), (1, 2), 1.0)),
    },
    {"N": 64, "D": 32, "temperature": 0.07, "spread": 0.2, "noise": 0.08, "noncontiguous": True},
    {"N": 3, "D": 3, "temperature": 2.0, "spread": 1.5, "noise": 0.8, "log_norm": 3.0},
    # Positives as far as the spread at temperature 0.01: each row's self term exp(1 / tau)
    # swamps the others, so a self term subtracted after summing (log(sum - exp(diag)))
    # cancels to 0 or loses most digits; masking it before exp is exact.
    {"N": 16, "D": 8, "temperature": 0.01, "spread": 0.3, "noise": 0.3},
)

# Cosines above 0.9 at temperature 0.01: exp(cos / 0.01) overflows float32 (max about e**88.7).
INFO_NCE_FLOAT32_CASES = (
    {"N": 1, "D": 4, "temperature": 0.01, "spread": 0.1, "noise": 0.05, "float32": True},
    {"N": 8, "D": 16, "temperature": 0.01, "spread": 0.05, "noise": 0.02, "float32": True},
    {"N": 32, "D": 8, "temperature": 0.01, "spread": 0.06, "noise": 0.02, "float32": True},
)

LOSS_HINT = (
    "Cosine similarity of all 2N embeddings z = cat([z1, z2]) (normalise the rows), "
    "divided by the temperature; exclude each row's similarity with itself; the "
    "positive of row i is row i + N (and of row N + i, row i); the loss is the mean "
    "over all 2N rows of logsumexp(row) - row[positive]."
)
STABLE_HINT = (
    "In float32 at temperature 0.01, exp(cos / 0.01) overflows (e**88.7 is the "
    "largest float32): subtract each row's maximum before exp and add it back after "
    "the log. If the float64 items of info_nce_loss fail too, fix those first."
)


# ---------------------------------------------------------------- q2: contrastive_accuracy
def exercise_accuracy(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    if "directions" in case:
        first, second = case["directions"]
        z1, z2 = axis_aligned(rng, first, case["D"]), axis_aligned(rng, second, case["D"])
    else:
        z1, z2 = clustered_pairs(
            rng, case["N"], case["D"], case["spread"], case["noise"], case.get("log_norm", 1.0)
        )
    out.watch(z1=z1, z2=z2)

    def top1() -> None:
        api.contrastive_accuracy(z2, z1)
        record_scalar(out, "top1", api.contrastive_accuracy(z1, z2))

    def topk() -> None:
        api.contrastive_accuracy(z1, z2, k=1)
        record_scalar(out, "topk", api.contrastive_accuracy(z1, z2, k=case["k"]))

    run_independently(top1, topk)


ACCURACY_CASES = (
    {"N": 1, "D": 3, "k": 1, "spread": 1.0, "noise": 0.5},
    {"N": 8, "D": 4, "k": 3, "spread": 0.4, "noise": 0.35, "log_norm": 3.0},
    {"N": 16, "D": 6, "k": 2, "spread": 0.3, "noise": 0.25, "log_norm": 2.0},
    {"N": 32, "D": 8, "k": 5, "spread": 0.25, "noise": 0.3},
    # ties: axis-aligned rows (1-based axis, sign = direction)
    {"D": 4, "k": 2, "directions": ([1, 2, 3, 1, 4, -2], [1, 2, 4, 3, 4, -2])},
    {"D": 3, "k": 3, "directions": ([1, 1, 1, 1], [1, 1, 1, 1])},
    {"D": 5, "k": 2, "directions": ([1, 2, 3, 4, 5], [1, 2, 3, 4, -5])},
    {"D": 3, "k": 1, "directions": ([1, -1, 2], [1, -1, 3])},
)


# ------------------------------------------------------------ q3: alignment and uniformity
def exercise_alignment(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    z1, z2 = clustered_pairs(
        rng, case["N"], case["D"], case["spread"], case["noise"], case.get("log_norm", 2.0)
    )
    z1.requires_grad_(True)
    z2.requires_grad_(True)
    out.watch(z1=z1, z2=z2)
    kwargs = {} if case["alpha"] is None else {"alpha": case["alpha"]}
    api.alignment(z2, z1, **kwargs)
    try:
        value = api.alignment(z1, z2, **kwargs)
        out["value"] = value
        value.backward()
    finally:
        record_grads(out, {"grad_z1": z1, "grad_z2": z2})


ALIGNMENT_CASES = (
    {"N": 1, "D": 3, "alpha": None, "spread": 1.0, "noise": 0.5},
    {"N": 6, "D": 4, "alpha": None, "spread": 0.8, "noise": 0.6},
    {"N": 10, "D": 8, "alpha": 1.0, "spread": 0.5, "noise": 0.4},
    {"N": 7, "D": 5, "alpha": 3.0, "spread": 0.8, "noise": 0.7, "log_norm": 3.0},
    {"N": 12, "D": 3, "alpha": 0.5, "spread": 1.0, "noise": 0.9},
)


def exercise_uniformity(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    z, _ = clustered_pairs(
        rng, case["N"], case["D"], case["spread"], 0.0, case.get("log_norm", 2.0)
    )
    if case.get("basis"):  # nearly orthogonal rows: every squared distance close to 2
        z = (
            torch.eye(case["N"], case["D"], dtype=torch.float64)
            + 0.05 * z / z.norm(dim=1, keepdim=True)
        ) * z.norm(dim=1, keepdim=True)
    for src, dst in case.get("duplicates", ()):
        z[dst] = 3.0 * z[src]
    z.requires_grad_(True)
    out.watch(z=z)
    kwargs = {} if case["t"] is None else {"t": case["t"]}
    api.uniformity(z[: max(2, case["N"] - 1)].detach(), **kwargs)
    try:
        value = api.uniformity(z, **kwargs)
        out["value"] = value
        value.backward()
    finally:
        record_grads(out, {"grad": z})


UNIFORMITY_CASES = (
    {"N": 2, "D": 3, "t": None, "spread": 1.0},
    {"N": 5, "D": 4, "t": None, "spread": 0.7, "log_norm": 3.0},
    {"N": 16, "D": 8, "t": 1.0, "spread": 1.0},
    {"N": 9, "D": 3, "t": 10.0, "spread": 0.6, "duplicates": ((0, 4), (2, 7))},
    # every exp(-t * squared distance) underflows float64 (below about e**-745): only a
    # stable log-mean-exp is finite
    {"N": 5, "D": 6, "t": 500.0, "spread": 1.0, "basis": True},
    # the same construction at the default t: nothing underflows, so a log-mean-exp without
    # the maximum fails only at large t, not on nearly orthogonal rows as such
    {"N": 4, "D": 6, "t": 2.0, "spread": 1.0, "basis": True},
    {"N": 40, "D": 16, "t": 2.0, "spread": 0.5},
)


# -------------------------------------------------------------------------- q4: augment
def _copies(rng: torch.Generator, n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """n copies of one random image (n, 1, 8, 8) with pixels in [0, 1]."""
    image = uniform(rng, 1, 1, 8, 8, low=0.0, high=1.0, dtype=dtype)
    return image.expand(n, 1, 8, 8).clone()


STRENGTHS = ("crop", "rotation", "translation", "noise")
ZERO = {name: 0.0 for name in STRENGTHS}


def exercise_augment(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    """Structure, not pixels. With 32 copies of one image, a correct augmentation gives 32
    identical outputs only if every image drew (almost) the same parameters: even a coarse
    implementation (integer shifts in {-1, 0, 1}, or angles below 5 degrees that
    nearest-neighbour sampling maps to the identity, a third of the draws) does so with
    probability at most (1/3)**31 < 1.7e-15 per strength. The noise check reads the 256 * 36
    = 9216 interior pixels of constant images (0.5) with noise of std s <= 0.1: the sample
    std leaves [0.9 s, 1.1 s] only with probability below 1e-40 (its relative error has sd
    1/sqrt(2 * 9216) = 0.0074, and 0.1 is 13.5 sd), the sample mean leaves 0.5 +- 0.1 s
    with probability below 1e-20 (0.1 s is 9.6 standard errors s / 96); clamping at 0 or 1
    needs a deviation of at least 5 s (probability below 6e-7 per pixel, and it would only
    shrink the std by far less than 10%)."""
    dtype = torch.float32 if case.get("float32") else torch.float64
    n = case["N"]
    x = uniform(rng, n, 1, 8, 8, low=0.0, high=1.0, dtype=dtype)
    x[:, :, 0, :] = 0.0  # a blank border row, as in the digits
    out.watch(x=x)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=rng))

    def views() -> None:
        generator = torch.Generator().manual_seed(seed)
        first = api.augment(x, generator)
        second = api.augment(x, generator)
        same_shape = all(
            type(v) is torch.Tensor and v.shape == x.shape and v.dtype == x.dtype
            for v in (first, second)
        )
        out["shape"] = torch.tensor(same_shape)
        if not same_shape:
            raise AssertionError(
                f"augment returned {type(first).__name__} of shape "
                f"{tuple(getattr(first, 'shape', ()))}, dtype "
                f"{getattr(first, 'dtype', None)}; expected the shape and "
                f"dtype of x, {tuple(x.shape)} {x.dtype}"
            )
        out["range"] = torch.tensor(
            bool(((first >= 0) & (first <= 1)).all() and ((second >= 0) & (second <= 1)).all())
        )
        differ = [not torch.equal(a, b) for a, b in zip(first, second)]
        out["views_differ"] = torch.tensor(all(differ))
        again = api.augment(x, torch.Generator().manual_seed(seed))
        out["deterministic"] = torch.tensor(torch.equal(again, first))

    def identity() -> None:
        generator = torch.Generator().manual_seed(seed)
        api.augment(x, generator, **ZERO)
        out["identity"] = api.augment(x, generator, **ZERO)

    def each_strength() -> None:
        copies = _copies(rng, 32, dtype)
        acts = []
        for name in STRENGTHS:
            strength = {"crop": 0.3, "rotation": 15.0, "translation": 1.0, "noise": 0.05}[name]
            views = api.augment(
                copies, torch.Generator().manual_seed(seed), **{**ZERO, name: strength}
            )
            changed = not torch.equal(views, copies)
            per_image = any(not torch.equal(views[0], view) for view in views[1:])
            acts.append(changed and per_image)
        out["each_strength"] = torch.tensor(acts)

    def noise() -> None:
        flat = torch.full((256, 1, 8, 8), 0.5, dtype=dtype)
        views = api.augment(
            flat, torch.Generator().manual_seed(seed), **{**ZERO, "noise": case["noise"]}
        )
        deviation = (views[:, :, 1:-1, 1:-1] - 0.5).double()  # interior: no border effects
        std, mean = deviation.std().item(), deviation.mean().item()
        out["noise_std"] = torch.tensor(
            0.9 * case["noise"] <= std <= 1.1 * case["noise"] and abs(mean) <= 0.1 * case["noise"]
        )

    def rotation_unit() -> None:
        # rotation=1 is one degree: pixels move by at most 0.09 of a pixel (the corners,
        # 4.95 pixels from the centre), so no pixel of an image in [0, 1] changes by 0.3 or
        # more; read as one radian (57 degrees), some of 32 copies turn by more than 10
        # degrees unless all 32 draws fall within a sixth of the range ((1/6)**31 < 1e-24).
        # Compared with the implementation's own view at strength 0, so that an identity
        # bug (align_corners) costs only the identity item.
        copies = _copies(rng, 32, dtype)
        still = api.augment(copies, torch.Generator().manual_seed(seed), **ZERO)
        views = api.augment(
            copies, torch.Generator().manual_seed(seed), **{**ZERO, "rotation": 1.0}
        )
        out["rotation_degrees"] = torch.tensor(bool((views - still).abs().max() < 0.3))

    run_independently(views, identity, each_strength, noise, rotation_unit)


AUGMENT_CASES = (
    {"N": 4, "noise": 0.05},
    {"N": 1, "noise": 0.1},
    {"N": 16, "noise": 0.02, "float32": True},
)

AUGMENT_FLAGS_HINT = "augment is graded on its structure: {what}"


# ------------------------------------------------------------------ q5: ProjectionHead
HEAD_LAYOUTS = {
    "fc1.weight": "(hidden_dim, in_dim), as in nn.Linear",
    "fc2.weight": "(out_dim, hidden_dim), as in nn.Linear",
}


def exercise_head(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    in_dim, hidden_dim, out_dim, n = case["in"], case["hidden"], case["out"], case["N"]
    head = api.ProjectionHead(in_dim, hidden_dim, out_dim)
    values = {
        "fc1.weight": randn(rng, hidden_dim, in_dim),
        "fc1.bias": randn(rng, hidden_dim),
        "fc2.weight": randn(rng, out_dim, hidden_dim),
        "fc2.bias": randn(rng, out_dim),
    }
    assign_parameters(head, values, HEAD_LAYOUTS)
    h = randn(rng, n, in_dim)
    if case.get("noncontiguous"):
        h = noncontiguous(h)
    h.requires_grad_(True)
    weights = randn(rng, n, out_dim)
    out.watch(h=h)
    with torch.no_grad():
        head(randn(rng, n + 1, in_dim))
    fc1_weight, fc1_bias = head.fc1.weight, head.fc1.bias
    fc2_weight, fc2_bias = head.fc2.weight, head.fc2.bias
    try:
        z = head(h)
        out["z"] = z
        (z * weights).sum().backward()
    finally:
        record_grads(out, {"grad_h": h})
        for name, (weight, bias) in (
            ("grad_fc1", (fc1_weight, fc1_bias)),
            ("grad_fc2", (fc2_weight, fc2_bias)),
        ):
            if weight.grad is not None and bias.grad is not None:
                out[name] = torch.cat([weight.grad.flatten(), bias.grad])


HEAD_CASES = (
    {"N": 1, "in": 2, "hidden": 3, "out": 1},
    {"N": 4, "in": 3, "hidden": 5, "out": 2},
    {"N": 7, "in": 8, "hidden": 16, "out": 4},
    {"N": 5, "in": 6, "hidden": 3, "out": 6, "noncontiguous": True},
)


# --------------------------------------------------------------------------- q6: SimCLR
class _ProbeEncoder(nn.Module):
    """The grader's encoder: h = tanh(flatten(x) @ a + b), row by row (so that encoding both
    views in one concatenated batch or separately gives the same result)."""

    def __init__(self, rng: torch.Generator, in_dim: int, out_dim: int):
        super().__init__()
        self.a = nn.Parameter(0.5 * randn(rng, in_dim, out_dim))
        self.b = nn.Parameter(0.5 * randn(rng, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x.flatten(1) @ self.a + self.b)


class _ProbeHead(nn.Module):
    """The grader's projection head: z = h @ c + h**2 @ e (not a student's ProjectionHead)."""

    def __init__(self, rng: torch.Generator, in_dim: int, out_dim: int):
        super().__init__()
        self.c = nn.Parameter(randn(rng, in_dim, out_dim))
        self.e = nn.Parameter(randn(rng, in_dim, out_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.c + (h * h) @ self.e


def exercise_simclr(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    n, hd, zd = case["N"], case["h"], case["z"]
    encoder = _ProbeEncoder(rng, 16, hd)
    head = _ProbeHead(rng, hd, zd)
    model = api.SimCLR(encoder, head)
    x1, x2 = randn(rng, n, 1, 4, 4), randn(rng, n, 1, 4, 4)
    weights = [randn(rng, n, d) for d in (hd, hd, zd, zd)]
    out.watch(x1=x1, x2=x2)

    def parameters() -> None:
        own = {id(p) for p in encoder.parameters()} | {id(p) for p in head.parameters()}
        found = {id(p) for p in model.parameters()} if isinstance(model, nn.Module) else set()
        out["parameters"] = torch.tensor(found == own)

    def forward() -> None:
        with torch.no_grad():
            model(x2, x1)
        try:
            outputs = model(x1, x2)
            for name, value in zip(("h1", "h2", "z1", "z2"), outputs):
                out[name] = value
            sum((v * w).sum() for v, w in zip(outputs, weights)).backward()
        finally:
            for name, params in (
                ("grad_encoder", (encoder.a, encoder.b)),
                ("grad_head", (head.c, head.e)),
            ):
                grads = [p.grad for p in params if p.grad is not None]
                if len(grads) == len(params):
                    out[name] = torch.cat([g.flatten() for g in grads])

    run_independently(parameters, forward)


SIMCLR_CASES = (
    {"N": 1, "h": 3, "z": 2},
    {"N": 5, "h": 6, "z": 4},
    {"N": 8, "h": 4, "z": 7},
)


# ---------------------------------------------------------------- q7: extract_features
class _ModeProbe(nn.Module):
    """The grader's encoder: flatten -> linear -> batch norm -> (+1 in training mode).
    Records the largest batch it saw and how many rows it encoded."""

    def __init__(self, rng: torch.Generator, in_dim: int, out_dim: int):
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim).double()
        self.norm = nn.BatchNorm1d(out_dim).double()
        with torch.no_grad():
            self.linear.weight.copy_(randn(rng, out_dim, in_dim))
            self.linear.bias.copy_(randn(rng, out_dim))
            mean, var = self.norm.running_mean, self.norm.running_var
            assert mean is not None and var is not None
            mean.copy_(randn(rng, out_dim))
            var.copy_(uniform(rng, out_dim, low=0.5, high=2.0))
        self.largest_batch = 0
        self.rows = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.largest_batch = max(self.largest_batch, x.shape[0])
        self.rows += x.shape[0]
        h = self.norm(self.linear(x.flatten(1)))
        return h + 1.0 if self.training else h


def exercise_features(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    n, batch_size = case["N"], case["batch_size"]
    encoder = _ModeProbe(rng, 12, 5)
    encoder.train(case["mode"] == "train")
    x = randn(rng, n, 3, 2, 2)
    out.watch(x=x)
    training = encoder.training
    modes, no_grad, batches, features = [], [], [], []
    for _ in range(2):
        encoder.largest_batch, encoder.rows = 0, 0
        result = api.extract_features(encoder, x, batch_size)
        features.append(result)
        modes.append(
            encoder.training == training and all(m.training == training for m in encoder.modules())
        )
        no_grad.append(
            type(result) is torch.Tensor
            and not result.requires_grad
            and all(p.grad is None for p in encoder.parameters())
        )
        batches.append(encoder.largest_batch <= batch_size and encoder.rows == n)
    out["mode"] = torch.tensor(modes)
    out["no_grad"] = torch.tensor(no_grad)
    out["batches"] = torch.tensor(batches)
    out["features"] = torch.cat(features, dim=1)


# No batch of a single row reaches an encoder in training mode: batch norm would raise there,
# and a student who forgets eval mode would lose every item instead of the features only.
FEATURE_CASES = (
    {"N": 10, "batch_size": 4, "mode": "train"},
    {"N": 7, "batch_size": 7, "mode": "eval"},
    {"N": 5, "batch_size": 16, "mode": "train"},
    {"N": 1, "batch_size": 1, "mode": "eval"},
    {"N": 33, "batch_size": 8, "mode": "eval"},
    {"N": 12, "batch_size": 5, "mode": "train"},
    # N against batch_size, not N alone, decides whether there are several batches (N > 7
    # in one batch; 3 rows in batches of 2) or none full (2 rows in batches of 3)
    {"N": 9, "batch_size": 9, "mode": "train"},
    {"N": 3, "batch_size": 2, "mode": "eval"},
    {"N": 2, "batch_size": 3, "mode": "train"},
)


# --------------------------------------------------------------- q8: concept questions
def exercise_concepts(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    api.concept_answers()
    answers = api.concept_answers()
    for name in ("largest_loss_aligned", "largest_loss_confused", "probe_features"):
        if name in answers:
            record_scalar(out, name, answers[name])


CHECKS = [
    Check(
        name="info_nce_loss",
        question="q1",
        uses=("info_nce_loss",),
        exercise=exercise_info_nce,
        cases=INFO_NCE_CASES,
        # N = 1 makes every bug vanish (the loss is exactly 0), so N alone separates the
        # cases of most bugs without being their cause
        pattern_axes=("temperature", "log_norm", "duplicates", "noncontiguous"),
        timeout_s=20.0,
        outputs=(
            Output("loss", rtol=1e-7, atol=1e-9, hint=LOSS_HINT),
            Output(
                "grad_z1", points=0.5, rtol=1e-6, atol=1e-9, hint=GRADIENT_HINT.format(what="z1")
            ),
            Output(
                "grad_z2", points=0.5, rtol=1e-6, atol=1e-9, hint=GRADIENT_HINT.format(what="z2")
            ),
        ),
    ),
    Check(
        name="info_nce_loss in float32",
        question="q1",
        uses=("info_nce_loss",),
        exercise=exercise_info_nce,
        cases=INFO_NCE_FLOAT32_CASES,
        timeout_s=10.0,
        outputs=(
            Output("loss", points=0.5, rtol=1e-4, atol=1e-5, hint=STABLE_HINT),
            Output("grad_z1", points=0.25, rtol=1e-2, atol=1e-4, hint=STABLE_HINT),
            Output("grad_z2", points=0.25, rtol=1e-2, atol=1e-4, hint=STABLE_HINT),
        ),
    ),
    Check(
        name="contrastive_accuracy",
        question="q2",
        uses=("contrastive_accuracy",),
        exercise=exercise_accuracy,
        cases=ACCURACY_CASES,
        outputs=(
            Output(
                "top1",
                atol=1e-12,
                hint="Top-1 (k defaults to 1): for each of the 2N "
                "rows, compare the cosine of its positive (row "
                "i + N, or i - N) with those of the other 2N - 2 "
                "rows (never the row itself); a tie counts "
                "against the positive; return the fraction of "
                "rows that win, as a float.",
            ),
            Output(
                "topk",
                atol=1e-12,
                hint="Top-k: the positive counts when fewer than k "
                "negatives are at least as similar as it is.",
            ),
        ),
    ),
    Check(
        name="alignment",
        question="q3",
        uses=("alignment",),
        exercise=exercise_alignment,
        cases=ALIGNMENT_CASES,
        outputs=(
            Output(
                "value",
                rtol=1e-7,
                atol=1e-10,
                hint="Normalise the rows of both views, then the mean over the N pairs of "
                "the Euclidean distance raised to the power alpha (default 2).",
            ),
            Output(
                "grad_z1", points=0.5, rtol=1e-6, atol=1e-10, hint=GRADIENT_HINT.format(what="z1")
            ),
            Output(
                "grad_z2", points=0.5, rtol=1e-6, atol=1e-10, hint=GRADIENT_HINT.format(what="z2")
            ),
        ),
    ),
    Check(
        name="uniformity",
        question="q3",
        uses=("uniformity",),
        exercise=exercise_uniformity,
        cases=UNIFORMITY_CASES,
        outputs=(
            Output(
                "value",
                rtol=1e-7,
                atol=1e-9,
                hint="Normalise the rows; over the N(N-1)/2 pairs i < j (not i = j, each "
                "pair once), the log of the mean of exp(-t * squared distance), as a "
                "stable log-mean-exp (exp underflows to 0 for large t: subtract the "
                "largest exponent first).",
            ),
            Output("grad", rtol=1e-6, atol=1e-9, hint=GRADIENT_HINT.format(what="z")),
        ),
    ),
    Check(
        name="augment",
        question="q4",
        uses=("augment",),
        exercise=exercise_augment,
        cases=AUGMENT_CASES,
        timeout_s=20.0,
        outputs=(
            Output(
                "shape",
                points=0.5,
                hint="Return a tensor of the shape and dtype of x, (N, 1, 8, 8).",
            ),
            Output(
                "range",
                points=0.5,
                hint="Keep the pixel range: clamp to [0, 1] after adding the noise.",
            ),
            Output(
                "views_differ",
                points=0.5,
                hint="Two calls with the same (advancing) generator must give different "
                "views of every image.",
            ),
            Output(
                "deterministic",
                points=0.5,
                hint="Draw every random number from the generator argument "
                "(torch.rand(..., generator=generator)), never from the global "
                "random state: two generators with the same seed give the same "
                "views.",
            ),
            Output(
                "identity",
                points=0.5,
                atol=1e-6,
                rtol=0.0,
                hint="With crop=rotation=translation=noise=0 the view is the image "
                "itself (check that affine_grid and grid_sample use the same "
                "align_corners, and that the crop side is 1 - crop * U(0, 1)).",
            ),
            Output(
                "each_strength",
                points=0.5,
                hint="Flags in the order crop, rotation, translation, noise: with only "
                "that strength non-zero, the views must differ from the image and "
                "from each other across a batch of copies (draw each image's "
                "parameters separately).",
            ),
            Output(
                "noise_std",
                points=0.5,
                hint="noise is the standard deviation of zero-mean Gaussian noise added "
                "to every pixel (noise * torch.randn(...), not its variance).",
            ),
            Output(
                "rotation_degrees",
                points=0.5,
                hint="rotation is in degrees: the angle is uniform in [-rotation, "
                "rotation] degrees, converted with math.radians before cos and sin "
                "(with rotation=1 every view must stay within a degree of the image).",
            ),
        ),
    ),
    Check(
        name="ProjectionHead",
        question="q5",
        uses=("ProjectionHead",),
        exercise=exercise_head,
        cases=HEAD_CASES,
        outputs=(
            Output(
                "z",
                hint="z = fc2(relu(fc1(h))): two nn.Linear layers named fc1 and fc2 "
                "with a ReLU between them and nothing after fc2.",
            ),
            Output("grad_h", points=0.5, hint=GRADIENT_HINT.format(what="h")),
            Output("grad_fc1", points=0.5, hint=GRADIENT_HINT.format(what="fc1")),
            Output("grad_fc2", points=0.5, hint=GRADIENT_HINT.format(what="fc2")),
        ),
    ),
    Check(
        name="SimCLR",
        question="q5",
        uses=("SimCLR",),
        exercise=exercise_simclr,
        cases=SIMCLR_CASES,
        outputs=(
            Output("h1", points=0.5, hint="h1 = encoder(x1), returned first."),
            Output(
                "h2",
                points=0.5,
                hint="forward returns (h1, h2, z1, z2), in this order; h2 = encoder(x2).",
            ),
            Output(
                "z1",
                points=0.5,
                hint="z1 = head(h1): the head is applied to the "
                "encoder's output, unchanged (no normalisation "
                "here: the loss normalises).",
            ),
            Output("z2", points=0.5, hint="z2 = head(h2), the fourth returned tensor."),
            Output(
                "grad_encoder",
                points=0.5,
                hint=GRADIENT_HINT.format(
                    what="the encoder's parameters (through h and through z)"
                ),
            ),
            Output(
                "grad_head", points=0.5, hint=GRADIENT_HINT.format(what="the head's parameters")
            ),
            Output(
                "parameters",
                points=0.5,
                hint="Store encoder and head as attributes of the nn.Module (after "
                "super().__init__()) so that model.parameters() yields exactly "
                "their parameters, and an optimizer trains both.",
            ),
        ),
    ),
    Check(
        name="extract_features",
        question="q6",
        uses=("extract_features",),
        exercise=exercise_features,
        cases=FEATURE_CASES,
        outputs=(
            Output(
                "features",
                hint="encoder(x) in eval mode (batch norm uses its running "
                "statistics, dropout is off), batches concatenated in "
                "the order of x, the last smaller batch included.",
            ),
            Output(
                "mode",
                points=0.5,
                hint="Remember encoder.training before switching to "
                "eval mode and restore it afterwards with "
                "encoder.train(was_training), which sets every submodule "
                "(assigning encoder.training sets only the top module).",
            ),
            Output(
                "no_grad",
                points=0.5,
                hint="Run the encoder under torch.no_grad(): the "
                "features must not require gradients.",
            ),
            Output(
                "batches",
                points=0.5,
                hint="Feed the encoder at most batch_size rows at a time, every row exactly once.",
            ),
        ),
    ),
    Check(
        name="concept_answers",
        question="q7",
        uses=("concept_answers",),
        exercise=exercise_concepts,
        cases=({},),
        public_gap="they check that each answer is one of the allowed choices, not which one "
        "is right",
        outputs=(
            Output(
                "largest_loss_aligned",
                points=0.5,
                hint="Compute the loss of the aligned batch at each temperature.",
            ),
            Output(
                "largest_loss_confused",
                points=0.5,
                hint="Compute the loss of the confused batch at each temperature.",
            ),
            Output(
                "probe_features",
                points=0.5,
                hint="Which representation keeps the information the augmentations vary?",
            ),
        ),
    ),
]
