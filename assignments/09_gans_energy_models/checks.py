"""Hidden checks of chapter 09: the GAN losses and training step, Langevin sampling from an
energy model, the contrastive-divergence loss and the replay buffer.

Never shipped to students. Students write functions and one class; autograd computes the
gradients, so a loss check draws seeded float64 logits or scores, calls the student's loss
twice in a row (the second call is graded), back-propagates it and grades the value and the
gradient with respect to each input as separate items.

Design facts (measured, see the course's check-design notes):

* In float64, logits of magnitude 100 break only ``log(1 - sigmoid(100))`` (it is log 0); the
  naive ``log(1 + exp(z))`` and ``-log(sigmoid(z))`` need magnitudes of 1000 to overflow, so
  the float64 cases hold logits of +-100 and +-1000, and a float32 check holds +-100 (there
  every naive form gives inf).
* The max/abs "stable" form has the wrong autograd gradient only at a logit of exactly 0:
  cases hold exact zeros. PyTorch's own gradient at +100 is exactly 0 where a correct stable
  form gives about -7e-45, so gradients are compared with an absolute tolerance.
* The training step is graded with the grader's own losses substituted for the student's
  (``kit.substituted``), so a loss bug costs only the loss items; two steps run in a row on
  networks that start with stale gradients, so a missing or misplaced ``zero_grad`` shows.
  A fake batch that is not detached leaves a trace only when the generator's gradients are
  not cleared right before its own backward.
* Langevin sampling uses the grader's score network, whose score is 1.5 times larger in
  training mode (so sampling in training mode shows in the samples); a frozen parameter shows
  flags forced back to True, and a model handed over in training mode shows a mode that is
  not restored.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from autograder.checks import Check, Output
from autograder.kit import randn, record_grads, substituted, uniform, uniform_problem

# Students write the stable binary cross-entropy themselves.
FORBIDDEN = (
    "torch.nn.functional.binary_cross_entropy",
    "torch.nn.functional.binary_cross_entropy_with_logits",
    "torch.binary_cross_entropy_with_logits",
    "torch.nn.BCELoss",
    "torch.nn.BCEWithLogitsLoss",
    "torch.nn.modules.loss",
    "torch.nn.functional.logsigmoid",
    "torch.nn.LogSigmoid",
    "torch.nn.functional.softplus",
    "torch.nn.Softplus",
    "torch.ops",
)

GRADIENT_HINT = (
    "Autograd computes this gradient from your loss: if the value passes, look for "
    "max/abs/relu/clamp around a logit of exactly 0 (their gradient there is 0 or 1; "
    "torch.logaddexp(0, z) is right everywhere), or .detach(), .item(), torch.tensor(...) "
    "on the way from {what} to the result."
)
STABLE_HINT = (
    "In float32 at logits of +-100, exp(100) overflows and sigmoid(100) rounds to 1: never "
    "take log(sigmoid(z)) or log(1 + exp(z)) literally; log(1 + exp(z)) = "
    "torch.logaddexp(0, z). If the float64 items fail too, fix those first."
)


# ------------------------------------------------------------------------- q1: GAN losses
def draw_logits(
    rng: torch.Generator, n: int, case: dict[str, Any], dtype: torch.dtype
) -> torch.Tensor:
    """(n,) logits of the case's scale, with +-each magnitude of ``big`` and ``zeros`` exact
    zeros placed at random positions."""
    values = case["scale"] * randn(rng, n)
    special = [sign * big for big in case.get("big", ()) for sign in (1.0, -1.0)]
    special += [0.0] * case.get("zeros", 0)
    positions = torch.randperm(n, generator=rng)[: len(special)]
    for position, value in zip(positions.tolist(), special):
        values[position] = value
    return values.to(dtype)


def strided(values: torch.Tensor) -> torch.Tensor:
    """The same (n,) values as a non-contiguous leaf tensor (stride 2)."""
    storage = torch.zeros(len(values), 2, dtype=values.dtype)
    leaf = storage[:, 0]
    leaf.copy_(values)
    return leaf


def _dtype(case: dict[str, Any]) -> torch.dtype:
    return torch.float32 if case.get("float32") else torch.float64


def exercise_discriminator_loss(
    api: Any, case: dict[str, Any], rng: torch.Generator, out: Any
) -> None:
    dtype = _dtype(case)
    warmup = (draw_logits(rng, case["M"], case, dtype), draw_logits(rng, case["N"], case, dtype))
    real = draw_logits(rng, case["N"], case, dtype)
    fake = draw_logits(rng, case["M"], case, dtype)
    if case.get("noncontiguous"):
        real, fake = strided(real), strided(fake)
    real.requires_grad_(True)
    fake.requires_grad_(True)
    out.watch(real_logits=real, fake_logits=fake)
    api.discriminator_loss(*warmup)
    try:
        loss = api.discriminator_loss(real, fake)
        out["loss"] = loss
        loss.backward()
    finally:
        record_grads(out, {"grad_real": real, "grad_fake": fake})


def exercise_generator_loss(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    dtype = _dtype(case)
    warmup = draw_logits(rng, case["N"] + 1, case, dtype)
    fake = draw_logits(rng, case["N"], case, dtype).requires_grad_(True)
    out.watch(fake_logits=fake)
    api.generator_loss(warmup)
    try:
        loss = api.generator_loss(fake)
        out["loss"] = loss
        loss.backward()
    finally:
        record_grads(out, {"grad": fake})


# N real logits, M fake logits; big: magnitudes placed with both signs; zeros: exact zeros.
DISCRIMINATOR_CASES = (
    {"N": 1, "M": 1, "scale": 1.0},
    {"N": 4, "M": 6, "scale": 2.0, "zeros": 1},
    {"N": 8, "M": 8, "scale": 3.0, "big": (100.0,), "zeros": 2},
    {"N": 5, "M": 7, "scale": 1.0, "big": (1000.0, 100.0)},
    {"N": 16, "M": 12, "scale": 10.0, "big": (100.0, 40.0), "zeros": 1},
    {"N": 3, "M": 9, "scale": 0.5, "zeros": 3, "noncontiguous": True},
)
GENERATOR_CASES = (
    {"N": 1, "scale": 1.0},
    {"N": 6, "scale": 2.0, "zeros": 2},
    {"N": 8, "scale": 3.0, "big": (100.0,)},
    {"N": 9, "scale": 1.0, "big": (1000.0, 100.0), "zeros": 1},
    {"N": 20, "scale": 10.0, "big": (40.0,)},
)
FLOAT32_DISCRIMINATOR_CASES = (
    {"N": 4, "M": 4, "scale": 2.0, "big": (100.0,), "float32": True},
    {"N": 8, "M": 5, "scale": 1.0, "big": (100.0, 60.0), "float32": True},
    {"N": 2, "M": 3, "scale": 1.0, "big": (100.0,), "float32": True},
)
FLOAT32_GENERATOR_CASES = (
    {"N": 4, "scale": 2.0, "big": (100.0,), "float32": True},
    {"N": 7, "scale": 1.0, "big": (100.0, 60.0), "float32": True},
    # N = 3, not 2: the logits +100 and -100 alone are symmetric, and there the loss of the
    # fakes labelled fake, mean sp(f), equals the right mean sp(-f) by accident
    {"N": 3, "scale": 1.0, "big": (100.0,), "float32": True},
)

DISCRIMINATOR_HINT = (
    "Binary cross-entropy from logits with real = 1 and fake = 0: mean over the real batch "
    "of log(1 + exp(-r)) plus mean over the fake batch of log(1 + exp(f)) (two means, "
    "summed; the batches may differ in size), computed stably (torch.logaddexp(0, z)); "
    "log(1 - sigmoid(100)) is log(0)."
)
GENERATOR_HINT = (
    "The non-saturating loss: the mean over the fake batch of -log sigmoid(f) = "
    "log(1 + exp(-f)), computed stably (torch.logaddexp(0, -f)); not the saturating "
    "log(1 - sigmoid(f)), and not the discriminator's fake term log(1 + exp(f))."
)


# ---------------------------------------------------------------- q2: gan_training_step
def grader_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The grader's own discriminator loss, substituted for the student's in the step."""
    zero = torch.zeros((), dtype=real_logits.dtype)
    return torch.logaddexp(zero, -real_logits).mean() + torch.logaddexp(zero, fake_logits).mean()


def grader_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The grader's own non-saturating generator loss."""
    return torch.logaddexp(torch.zeros((), dtype=fake_logits.dtype), -fake_logits).mean()


class _ProbeGenerator(nn.Module):
    """The grader's generator: x = tanh(z @ a + b) @ c, z (M, latent) -> x (M, dim)."""

    def __init__(self, rng: torch.Generator, latent: int, hidden: int, dim: int):
        super().__init__()
        self.a = nn.Parameter(0.8 * randn(rng, latent, hidden))
        self.b = nn.Parameter(0.3 * randn(rng, hidden))
        self.c = nn.Parameter(0.8 * randn(rng, hidden, dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z @ self.a + self.b) @ self.c


class _ProbeDiscriminator(nn.Module):
    """The grader's discriminator: logits tanh(x @ v + c) @ w + d, x (N, dim) -> (N,)."""

    def __init__(self, rng: torch.Generator, dim: int, hidden: int):
        super().__init__()
        self.v = nn.Parameter(0.8 * randn(rng, dim, hidden))
        self.c = nn.Parameter(0.3 * randn(rng, hidden))
        self.w = nn.Parameter(randn(rng, hidden))
        self.d = nn.Parameter(0.3 * randn(rng, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x @ self.v + self.c) @ self.w + self.d


class _ProbeSGD:
    """The grader's SGD with momentum (PyTorch's rule: the first step's buffer is the
    gradient), with the two methods a training step calls. torch.optim's first ``step``
    imports torch._dynamo (about 3 s), which a grading need not pay."""

    def __init__(self, params: Any, lr: float, momentum: float = 0.0):
        self.params, self.lr, self.momentum = list(params), lr, momentum
        self.buffers: dict[int, torch.Tensor] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad = torch.zeros_like(p.grad)

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:
        for index, p in enumerate(self.params):
            if p.grad is None:
                continue
            update = p.grad.clone()
            if self.momentum:
                if index in self.buffers:
                    update = self.buffers[index].mul_(self.momentum).add_(p.grad)
                self.buffers[index] = update.clone()
            p.sub_(self.lr * update)


def _flat(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()])


def exercise_training_step(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    latent, dim, hidden = case["latent"], case["dim"], case["hidden"]
    generator = _ProbeGenerator(rng, latent, hidden, dim)
    discriminator = _ProbeDiscriminator(rng, dim, hidden)
    opt_g = _ProbeSGD(generator.parameters(), lr=case["lr_g"], momentum=case["momentum"])
    opt_d = _ProbeSGD(discriminator.parameters(), lr=case["lr_d"])
    batches = [(randn(rng, case["N"], dim), randn(rng, case["M"], latent)) for _ in range(2)]
    for p in [*generator.parameters(), *discriminator.parameters()]:
        p.grad = randn(rng, *p.shape)  # stale gradients from an earlier backward
    returned: list[Any] = []
    with out.part("discriminator_params", "generator_params", "losses"):
        with substituted(
            api,
            discriminator_loss=grader_discriminator_loss,
            generator_loss=grader_generator_loss,
        ):
            for real, z in batches:
                out.watch(real=real, z=z)
                returned.append(
                    api.gan_training_step(generator, discriminator, opt_g, opt_d, real, z)
                )
        out["discriminator_params"] = _flat(discriminator)
        out["generator_params"] = _flat(generator)
    with out.part("losses"):
        if returned:
            d_loss, g_loss = returned[-1]
            out["losses"] = torch.tensor([float(d_loss), float(g_loss)], dtype=torch.float64)


TRAINING_STEP_CASES = (
    {"N": 4, "M": 4, "latent": 2, "dim": 3, "hidden": 5, "lr_d": 0.1, "lr_g": 0.2, "momentum": 0.0},
    {"N": 6, "M": 3, "latent": 3, "dim": 2, "hidden": 4, "lr_d": 0.3, "lr_g": 0.1, "momentum": 0.0},
    {
        "N": 1,
        "M": 5,
        "latent": 4,
        "dim": 5,
        "hidden": 3,
        "lr_d": 0.05,
        "lr_g": 0.5,
        "momentum": 0.9,
    },
    {"N": 8, "M": 8, "latent": 2, "dim": 4, "hidden": 6, "lr_d": 0.5, "lr_g": 0.5, "momentum": 0.5},
)
STEP_HINT = (
    "fake = generator(z); discriminator step: opt_d.zero_grad(), discriminator_loss("
    "discriminator(real), discriminator(fake.detach())), backward, opt_d.step(); then the "
    "generator step: opt_g.zero_grad(), generator_loss(discriminator(fake)) through the "
    "updated discriminator, backward, opt_g.step(). Clear gradients right before each "
    "backward (the networks arrive with stale gradients)."
)


# ------------------------------------------------------------------ q3: langevin_sample
class _Gain(nn.Module):
    """No parameters: multiplies by 1.5 in training mode, by 1 in eval mode."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h * (1.5 if self.training else 1.0)


class _ProbeScore(nn.Module):
    """The grader's score network s(x) = gain(tanh(x @ w + b)) @ v - q * |x|^2 / 2, on the
    flattened input: (N, ...) -> (N,)."""

    def __init__(self, rng: torch.Generator, dim: int, hidden: int):
        super().__init__()
        self.w = nn.Parameter(1.5 * randn(rng, dim, hidden))
        self.b = nn.Parameter(0.3 * randn(rng, hidden))
        self.v = nn.Parameter(randn(rng, hidden))
        self.q = nn.Parameter(uniform(rng, 1, low=0.2, high=1.0))
        self.gain = _Gain()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        return self.gain(torch.tanh(flat @ self.w + self.b)) @ self.v - 0.5 * self.q * (
            flat * flat
        ).sum(dim=1)


def exercise_langevin(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    shape = case["shape"]
    model = _ProbeScore(rng, math.prod(shape[1:]), case["hidden"])
    if case.get("frozen"):
        model.b.requires_grad_(False)
    model.train(case["mode"] == "train")
    for p in model.parameters():
        if p.requires_grad and case.get("stale_grads"):
            p.grad = randn(rng, *p.shape)
    low, high = case.get("clamp", (-1.0, 1.0))
    x0 = uniform(rng, *shape, low=low, high=high)
    x = uniform(rng, *shape, low=low, high=high)
    out.watch(x=x)
    before = [
        (p.detach().clone(), None if p.grad is None else p.grad.clone()) for p in model.parameters()
    ]
    flags = [p.requires_grad for p in model.parameters()]
    modes = [m.training for m in model.modules()]
    kwargs = {key: case[key] for key in ("clamp", "grad_clip") if key in case}
    generator = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=rng)))
    results = []
    # an exception costs every item: nothing was sampled, so nothing can be judged
    with out.part("samples", "no_graph", "params", "mode", "flags"):
        for start in (x0, x):
            results.append(
                api.langevin_sample(
                    model,
                    start,
                    case["steps"],
                    case["step_size"],
                    case["noise_std"],
                    generator,
                    **kwargs,
                )
            )
        out["samples"] = results[-1]
        out["no_graph"] = torch.tensor(
            [type(r) is torch.Tensor and not r.requires_grad and r.grad_fn is None for r in results]
        )
    untouched = [
        torch.equal(p.detach(), value)
        and (
            (p.grad is None) if grad is None else (p.grad is not None and torch.equal(p.grad, grad))
        )
        for p, (value, grad) in zip(model.parameters(), before)
    ]
    out["params"] = torch.tensor(untouched)
    out["mode"] = torch.tensor([m.training for m in model.modules()] == modes)
    out["flags"] = torch.tensor([p.requires_grad for p in model.parameters()] == flags)


LANGEVIN_CASES = (
    {"shape": (4, 5), "hidden": 6, "steps": 1, "step_size": 0.1, "noise_std": 0.1, "mode": "train"},
    {
        "shape": (3, 4),
        "hidden": 5,
        "steps": 1,
        "step_size": 0.2,
        "noise_std": 0.3,
        "mode": "eval",
        "grad_clip": 10.0,
        "stale_grads": True,
    },
    {
        "shape": (6, 1, 3, 3),
        "hidden": 8,
        "steps": 60,
        "step_size": 10.0,
        "noise_std": 0.005,
        "mode": "train",
        "frozen": True,
        "stale_grads": True,
    },
    {
        "shape": (5, 1, 2, 2),
        "hidden": 4,
        "steps": 60,
        "step_size": 0.05,
        "noise_std": 0.02,
        "mode": "eval",
        "grad_clip": 0.5,
        "clamp": (0.0, 1.0),
    },
    {
        "shape": (2, 6),
        "hidden": 5,
        "steps": 5,
        "step_size": 1.0,
        "noise_std": 0.0,
        "mode": "train",
        "grad_clip": 0.1,
        "frozen": True,
    },
    # large noise with the default clip: the noise level does not separate the cases in which
    # a sampler without gradient clipping fails (the clip does)
    {"shape": (3, 5), "hidden": 6, "steps": 3, "step_size": 0.5, "noise_std": 0.5, "mode": "eval"},
)
LANGEVIN_HINT = (
    "Per step, in this order: x + noise_std * torch.randn(x.shape, generator=generator, "
    "dtype=x.dtype); clamp; the gradient of model(x).sum() with respect to x, clipped to "
    "[-grad_clip, grad_clip]; x + step_size * gradient (up the score); clamp. The model "
    "runs in eval mode."
)


# --------------------------------------------------------- q4: contrastive_divergence_loss
def exercise_divergence(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    n = case["N"]
    warmup = (randn(rng, n + 1), randn(rng, n + 1))
    real = (case["scale"] * randn(rng, n) + case["shift"]).requires_grad_(True)
    fake = (case["scale"] * randn(rng, n) - case["shift"]).requires_grad_(True)
    out.watch(real_scores=real, fake_scores=fake)
    api.contrastive_divergence_loss(*warmup, case["alpha"])
    try:
        loss, regularization, divergence = api.contrastive_divergence_loss(
            real, fake, case["alpha"]
        )
        out["loss"] = loss
        out["regularization"] = regularization
        out["divergence"] = divergence
        loss.backward()
    finally:
        record_grads(out, {"grad_real": real, "grad_fake": fake})


DIVERGENCE_CASES = (
    {"N": 1, "scale": 1.0, "shift": 0.5, "alpha": 0.1},
    {"N": 5, "scale": 2.0, "shift": 1.0, "alpha": 1.0},
    {"N": 16, "scale": 0.5, "shift": -0.3, "alpha": 0.0},
    {"N": 8, "scale": 3.0, "shift": 2.0, "alpha": 0.25},
)
DIVERGENCE_HINT = (
    "loss = alpha * mean(real**2 + fake**2) + mean(fake) - mean(real); return (loss, "
    "alpha * mean(real**2 + fake**2), mean(fake) - mean(real)). Minimising it raises the "
    "real scores and lowers the fake ones."
)


# ------------------------------------------------------------------- q5: ReplayBuffer
FRESH_SHARE, DRAWS, DRAW_SIZE = 0.05, 3, 40_000
SHARE_TOLERANCE = 0.0096
FREQUENCY_TOLERANCE = 0.02


def _rows(ids: range, shape: tuple[int, ...]) -> torch.Tensor:
    """One float32 row per id (the documented storage dtype), every entry equal to 2 + id
    (exact in float32, and outside the noise range [-1, 1))."""
    values = torch.tensor([2.0 + i for i in ids], dtype=torch.float32)
    return values.reshape(-1, *([1] * len(shape))).expand(-1, *shape).clone()


def exercise_buffer(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    """The fresh share, the stored contents and their frequencies, graded statistically.

    A correct buffer fails with probability below 1e-9 in all:
    * fresh share: 3 x 40000 rows, each fresh independently with probability 0.05; Hoeffding:
      P(|share - 0.05| > 0.0096) <= 2 exp(-2 * 120000 * 0.0096**2) = 2 exp(-22.1) < 5.1e-10;
    * fresh rows uniform on [-1, 1): at least 0.0404 * 120000 * 6 > 20000 entries, so
      ``kit.uniform_problem`` applies (below 1e-43); with fewer fresh entries (a buffer
      whose share fails anyway) only the range is judged;
    * stored rows chosen uniformly: given the share test passed, m > 112000 rows come from
      the buffer; each stored row's frequency lies within 0.02 of 1/K (K <= 12 rows) except
      with probability 2 exp(-2 m 0.02**2) < 1e-38 per row (Hoeffding), and every stored row
      appears at least once except with probability K (1 - 1/K)**m < 1e-4000.
    """
    shape = case["shape"]
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=rng))
    buffer = api.ReplayBuffer(case["max_size"], shape)
    with out.part("empty"):
        first = buffer.sample(case["n_empty"], torch.Generator().manual_seed(seed))
        second = buffer.sample(case["n_empty"], torch.Generator().manual_seed(seed + 1))
        ok = all(
            type(s) is torch.Tensor and tuple(s.shape) == (case["n_empty"], *shape)
            for s in (first, second)
        )
        if ok:
            both = torch.cat([first, second]).double().reshape(2 * case["n_empty"], -1)
            ok = bool((both >= -1).all() and (both < 1).all())
            ok = ok and len(torch.unique(both, dim=0)) == len(both)
        out["empty"] = torch.tensor(ok)
    with out.part("contents", "fresh_share", "fresh_uniform", "from_buffer", "deterministic"):
        start = 0
        for size in case["pushes"]:
            rows = _rows(range(start, start + size), shape)
            buffer.push(rows)
            rows += 1000.0  # the caller reuses its tensor: the buffer must hold copies
            start += size
        generator = torch.Generator().manual_seed(seed + 2)
        draws = [buffer.sample(DRAW_SIZE, generator) for _ in range(DRAWS)]
        again = buffer.sample(DRAW_SIZE, torch.Generator().manual_seed(seed + 2))
        out["deterministic"] = torch.tensor(torch.equal(again, draws[0]))
        flat = torch.cat(draws).double().reshape(DRAWS * DRAW_SIZE, -1)
        fresh = flat.max(dim=1).values < 1.5
        stored = flat[~fresh]
        out["fresh_share"] = torch.tensor(
            abs(float(fresh.double().mean()) - FRESH_SHARE) <= SHARE_TOLERANCE
        )
        noise = flat[fresh]
        if noise.numel() >= 20_000:
            out["fresh_uniform"] = torch.tensor(uniform_problem(noise, -1.0, 1.0) == "")
        else:
            out["fresh_uniform"] = torch.tensor(bool(((noise >= -1) & (noise < 1)).all()))
        ids = stored[:, 0]
        copies = bool((stored == ids.unsqueeze(1)).all()) and bool((ids == ids.round()).all())
        observed, counts = torch.unique(ids, return_counts=True)
        shares = counts.double() / max(len(ids), 1)
        even = bool(((shares - 1 / max(len(observed), 1)).abs() <= FREQUENCY_TOLERANCE).all())
        out["from_buffer"] = torch.tensor(copies and even and len(ids) > 0)
        out["contents"] = observed - 2.0


# pushes: sizes of successive pushes of rows numbered 0, 1, 2, ... (row k holds 2 + k);
# later rows are newer, the oldest are dropped beyond max_size.
BUFFER_CASES = (
    {"max_size": 8, "shape": (6,), "pushes": (5, 7), "n_empty": 300},
    {"max_size": 5, "shape": (1, 2, 3), "pushes": (3, 9), "n_empty": 50},
    {"max_size": 10, "shape": (2, 3), "pushes": (4, 3), "n_empty": 1},
)


# --------------------------------------------------------------- q6: concept questions
def exercise_concepts(api: Any, case: dict[str, Any], rng: torch.Generator, out: Any) -> None:
    api.concept_answers()
    answers = api.concept_answers()
    for name in ("optimal_discriminator", "equilibrium_loss", "regularizer_prevents"):
        if name in answers:  # a number, recorded as a float64 tensor
            out[name] = torch.tensor(float(answers[name]), dtype=torch.float64)


CHECKS = [
    Check(
        name="discriminator_loss",
        question="q1",
        uses=("discriminator_loss",),
        exercise=exercise_discriminator_loss,
        cases=DISCRIMINATOR_CASES,
        outputs=(
            Output("loss", rtol=1e-7, atol=1e-9, hint=DISCRIMINATOR_HINT),
            Output(
                "grad_real",
                points=0.5,
                rtol=1e-7,
                atol=1e-12,
                hint=GRADIENT_HINT.format(what="real_logits"),
            ),
            Output(
                "grad_fake",
                points=0.5,
                rtol=1e-7,
                atol=1e-12,
                hint=GRADIENT_HINT.format(what="fake_logits"),
            ),
        ),
    ),
    Check(
        name="generator_loss",
        question="q1",
        uses=("generator_loss",),
        exercise=exercise_generator_loss,
        cases=GENERATOR_CASES,
        outputs=(
            Output("loss", rtol=1e-7, atol=1e-9, hint=GENERATOR_HINT),
            Output("grad", rtol=1e-7, atol=1e-12, hint=GRADIENT_HINT.format(what="fake_logits")),
        ),
    ),
    Check(
        name="discriminator_loss in float32",
        question="q1",
        uses=("discriminator_loss",),
        exercise=exercise_discriminator_loss,
        cases=FLOAT32_DISCRIMINATOR_CASES,
        outputs=(
            Output("loss", points=0.5, rtol=1e-5, atol=1e-5, hint=STABLE_HINT),
            Output("grad_real", points=0.25, rtol=1e-4, atol=1e-6, hint=STABLE_HINT),
            Output("grad_fake", points=0.25, rtol=1e-4, atol=1e-6, hint=STABLE_HINT),
        ),
    ),
    Check(
        name="generator_loss in float32",
        question="q1",
        uses=("generator_loss",),
        exercise=exercise_generator_loss,
        cases=FLOAT32_GENERATOR_CASES,
        outputs=(
            Output("loss", points=0.5, rtol=1e-5, atol=1e-5, hint=STABLE_HINT),
            Output("grad", points=0.5, rtol=1e-4, atol=1e-6, hint=STABLE_HINT),
        ),
    ),
    Check(
        name="gan_training_step",
        question="q2",
        uses=("gan_training_step",),
        replaces=("discriminator_loss", "generator_loss"),
        exercise=exercise_training_step,
        cases=TRAINING_STEP_CASES,
        outputs=(
            Output("discriminator_params", rtol=1e-7, atol=1e-9, hint=STEP_HINT),
            Output("generator_params", rtol=1e-7, atol=1e-9, hint=STEP_HINT),
            Output(
                "losses",
                points=0.5,
                rtol=1e-7,
                atol=1e-9,
                hint="Return (discriminator loss, generator loss) of this step, in this "
                "order, as Python floats (loss.item()).",
            ),
        ),
    ),
    Check(
        name="langevin_sample",
        question="q3",
        uses=("langevin_sample",),
        exercise=exercise_langevin,
        cases=LANGEVIN_CASES,
        timeout_s=20.0,
        outputs=(
            Output("samples", points=2.0, rtol=1e-6, atol=1e-8, hint=LANGEVIN_HINT),
            Output(
                "no_graph",
                points=0.5,
                hint="Return a tensor without a graph: .detach() the result (it must not "
                "require gradients).",
            ),
            Output(
                "params",
                points=0.5,
                hint="Sampling must leave the model's parameters and their .grad exactly "
                "as they were: freeze them (p.requires_grad_(False)) or use "
                "torch.autograd.grad(score, x), and never call zero_grad or backward into "
                "the parameters.",
            ),
            Output(
                "mode",
                points=0.5,
                hint="Remember model.training, switch to model.eval() for sampling and "
                "restore the mode afterwards (model.train(was_training)).",
            ),
            Output(
                "flags",
                points=0.5,
                hint="Restore each parameter's own requires_grad flag (a frozen parameter "
                "stays frozen); do not set them all back to True.",
            ),
        ),
    ),
    Check(
        name="contrastive_divergence_loss",
        question="q4",
        uses=("contrastive_divergence_loss",),
        exercise=exercise_divergence,
        cases=DIVERGENCE_CASES,
        outputs=(
            Output("loss", rtol=1e-7, atol=1e-10, hint=DIVERGENCE_HINT),
            Output("regularization", points=0.5, rtol=1e-7, atol=1e-10, hint=DIVERGENCE_HINT),
            Output("divergence", points=0.5, rtol=1e-7, atol=1e-10, hint=DIVERGENCE_HINT),
            Output(
                "grad_real",
                points=0.5,
                rtol=1e-7,
                atol=1e-10,
                hint=GRADIENT_HINT.format(what="real_scores"),
            ),
            Output(
                "grad_fake",
                points=0.5,
                rtol=1e-7,
                atol=1e-10,
                hint=GRADIENT_HINT.format(what="fake_scores"),
            ),
        ),
    ),
    Check(
        name="ReplayBuffer",
        question="q5",
        uses=("ReplayBuffer",),
        exercise=exercise_buffer,
        cases=BUFFER_CASES,
        timeout_s=20.0,
        outputs=(
            Output(
                "empty",
                points=0.5,
                hint="An empty buffer samples only fresh noise: (n, *sample_shape), uniform "
                "in [-1, 1), drawn from the generator argument.",
            ),
            Output(
                "contents",
                hint="push stores copies (samples.detach().clone()) of every row; beyond "
                "max_size drop the oldest rows (later rows of one push are newer), so the "
                "buffer holds the max_size most recent rows.",
            ),
            Output(
                "fresh_share",
                points=0.5,
                hint="Each sampled row is fresh noise with probability 0.05, independently; "
                "the other rows come from the buffer.",
            ),
            Output(
                "fresh_uniform",
                points=0.5,
                hint="Fresh noise is uniform in [-1, 1): 2 * torch.rand(..., "
                "generator=generator) - 1.",
            ),
            Output(
                "from_buffer",
                points=0.5,
                hint="The other rows are whole copies of stored rows, each chosen "
                "uniformly at random with replacement (torch.randint(len, (n,), "
                "generator=generator)).",
            ),
            Output(
                "deterministic",
                points=0.5,
                hint="Draw every random number from the generator argument, never from the "
                "global random state: the same seed must give the same samples.",
            ),
        ),
    ),
    Check(
        name="concept_answers",
        question="q6",
        uses=("concept_answers",),
        exercise=exercise_concepts,
        cases=({},),
        public_gap="they check the keys and the range of each answer, not its value",
        outputs=(
            Output(
                "optimal_discriminator",
                points=0.5,
                atol=1e-3,
                rtol=0.0,
                hint="The optimal discriminator is D*(x) = p_data(x) / (p_data(x) + p_g(x)).",
            ),
            Output(
                "equilibrium_loss",
                points=0.5,
                atol=1e-3,
                rtol=0.0,
                hint="When p_g = p_data, D* = 1/2 everywhere: evaluate the discriminator "
                "loss (two means, summed) there.",
            ),
            Output(
                "regularizer_prevents",
                points=0.5,
                atol=1e-9,
                rtol=0.0,
                hint="What happens to the contrastive divergence if every real score is "
                "multiplied by 10 and every fake score too?",
            ),
        ),
    ),
]
