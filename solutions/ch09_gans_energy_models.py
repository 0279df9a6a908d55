"""Reference implementation of chapter 09 (GANs and energy-based models): the grading oracle.

Never shipped to students. Students write functions and one class; autograd computes the
gradients. Inside the graded losses no library binary cross-entropy, ``logsigmoid`` or
``softplus`` is used: ``log(1 + exp(z))`` is written as ``torch.logaddexp(0, z)``, which is
finite for every logit and has the right gradient everywhere (also at exactly 0).

Conventions: a discriminator returns logits of shape ``(N,)`` (probability of "real" =
sigmoid(logit)); an energy model returns a score ``s(x) = -E(x)`` of shape ``(N,)``, high for
real data. Images are ``(N, 1, 8, 8)`` with pixels in ``[-1, 1]``.

Two copies of the reference, by rule: this module (the grading oracle that writes the expected
data) and the master's solution blocks (what the released solution notebook runs) are kept as
independent oracles, neither generated from the other; ``tests/test_check_coverage.py`` runs
every check's exercise on both and compares them with the kit's comparison rule.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def _log1p_exp(z: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(z)) elementwise, finite for every z, exact gradient sigmoid(z)."""
    return torch.logaddexp(torch.zeros_like(z), z)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy from logits, real labelled 1 and fake 0: mean over the real batch
    of -log sigmoid(r) plus mean over the fake batch of -log(1 - sigmoid(f)).

    real_logits (N,), fake_logits (M,). Returns a 0-dim tensor.
    """
    # -log sigmoid(r) = log(1 + exp(-r));  -log(1 - sigmoid(f)) = log(1 + exp(f))
    return _log1p_exp(-real_logits).mean() + _log1p_exp(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss: mean of -log sigmoid(f). fake_logits (M,) -> 0-dim."""
    return _log1p_exp(-fake_logits).mean()


def gan_training_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    z: torch.Tensor,
) -> tuple[float, float]:
    """One discriminator update on ``real`` and detached ``generator(z)``, then one generator
    update through the (updated) discriminator. Gradients are cleared right before each
    backward. Returns (discriminator loss, generator loss) as Python floats."""
    fake = generator(z)
    opt_d.zero_grad()
    d_loss = discriminator_loss(discriminator(real), discriminator(fake.detach()))
    d_loss.backward()
    opt_d.step()
    opt_g.zero_grad()
    g_loss = generator_loss(discriminator(fake))
    g_loss.backward()
    opt_g.step()
    return d_loss.item(), g_loss.item()


def langevin_sample(
    model: nn.Module,
    x: torch.Tensor,
    steps: int,
    step_size: float,
    noise_std: float,
    generator: torch.Generator,
    clamp: tuple[float, float] = (-1.0, 1.0),
    grad_clip: float = 0.03,
) -> torch.Tensor:
    """Langevin dynamics up the score s(x) = model(x), from x (N, ...).

    Each step: add noise_std * N(0, 1) drawn as ``torch.randn(x.shape, generator=generator,
    dtype=x.dtype)``; clamp to ``clamp``; g = d sum(s(x)) / dx clipped to [-grad_clip,
    grad_clip]; x += step_size * g; clamp again. The model runs in eval mode with its
    parameters frozen; its mode and requires_grad flags are restored. Returns a tensor
    without a graph, shape and dtype of x.
    """
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    low, high = clamp
    try:
        current = x.detach().clone()
        for _ in range(steps):
            noise = torch.randn(current.shape, generator=generator, dtype=current.dtype)
            current = (current + noise_std * noise).clamp(low, high)
            current.requires_grad_(True)
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(model(current).sum(), current)
            current = (current.detach() + step_size * grad.clamp(-grad_clip, grad_clip)).clamp(
                low, high
            )
        return current.detach()
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


def contrastive_divergence_loss(
    real_scores: torch.Tensor, fake_scores: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The energy model's loss on scores (N,) of real and sampled data.

    Returns (loss, regularization, contrastive divergence), each 0-dim:
    regularization = alpha * mean(real^2 + fake^2); contrastive divergence = mean(fake) -
    mean(real); loss = their sum.
    """
    regularization = alpha * (real_scores.pow(2) + fake_scores.pow(2)).mean()
    divergence = fake_scores.mean() - real_scores.mean()
    return regularization + divergence, regularization, divergence


class ReplayBuffer:
    """Samples kept from earlier Langevin chains, newest last, at most ``max_size`` of them.

    ``sample(n, generator)``: each of the n rows, independently with probability
    ``FRESH_SHARE``, is fresh uniform noise in [-1, 1); otherwise a copy of a stored sample
    chosen uniformly at random (with replacement). An empty buffer gives only noise.
    ``push(samples)``: stores detached copies of the rows (later rows are newer) and drops the
    oldest beyond ``max_size``.
    """

    FRESH_SHARE = 0.05

    def __init__(self, max_size: int, sample_shape: tuple[int, ...]) -> None:
        self.max_size = max_size
        self.sample_shape = tuple(sample_shape)
        self.samples = torch.empty(0, *self.sample_shape)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        dtype = self.samples.dtype
        noise = 2.0 * torch.rand(n, *self.sample_shape, generator=generator, dtype=dtype) - 1.0
        if len(self.samples) == 0:
            return noise
        fresh = torch.rand(n, generator=generator) < self.FRESH_SHARE
        chosen = self.samples[torch.randint(len(self.samples), (n,), generator=generator)]
        mask = fresh.reshape(n, *([1] * len(self.sample_shape)))
        return torch.where(mask, noise, chosen)

    def push(self, samples: torch.Tensor) -> None:
        stored = torch.cat([self.samples, samples.detach().to(self.samples.dtype)])
        self.samples = stored[-self.max_size :].clone()


def optimal_discriminator(p_data: float, p_model: float) -> float:
    """D*(x) = p_data(x) / (p_data(x) + p_model(x))."""
    return p_data / (p_data + p_model)


def concept_answers() -> dict[str, Any]:
    """The concept questions: the optimal discriminator where p_data = 0.3 and p_g = 0.1; the
    discriminator loss at the equilibrium p_g = p_data (D* = 1/2 everywhere: 2 log 2); what the
    regularizer of the contrastive-divergence loss prevents (choice 2: scores that grow
    without bound)."""
    return {
        "optimal_discriminator": optimal_discriminator(0.3, 0.1),
        "equilibrium_loss": 2 * math.log(2),
        "regularizer_prevents": 2,
    }
