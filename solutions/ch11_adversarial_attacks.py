"""Reference implementation of chapter 11 (adversarial attacks and adversarial training): the
grading oracle.

Never shipped to students. The attacks are written with tensor operations and autograd
(``torch.autograd.grad`` computes the gradient with respect to the input, so the parameters'
``.grad`` are never touched); no attack library is used.

Conventions: images ``x`` are (N, ...) float tensors in the valid pixel range ``clamp``
(``(low, high)``, default ``(0, 1)``); labels ``y`` are (N,) int64; a model maps x to logits
(N, num_classes); losses are the *mean* cross-entropy over the batch. An attack evaluates the
model in eval mode and restores the mode it found; it returns a new tensor without a graph.

Two copies of the reference, by rule: this module (the grading oracle that writes the expected
data) and the master's solution blocks (what the released solution notebook runs) are kept as
independent oracles, neither generated from the other; ``tests/test_check_coverage.py`` runs
every check's exercise on both and compares them with the kit's comparison rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "accuracy_under_attack",
    "adversarial_training_step",
    "apply_patch",
    "expected_max_change",
    "fgsm",
    "linear_max_change",
    "pgd",
    "train_patch",
]

Attack = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


# ------------------------------------------------------------------------ concept questions
def linear_max_change(w: torch.Tensor, eps: float) -> torch.Tensor:
    """max over ||delta||_inf <= eps of |w . (x + delta) - w . x| = eps * ||w||_1.

    w: (D,) -> 0-dim tensor; reached by delta = eps * sign(w).
    """
    return eps * w.abs().sum()


def expected_max_change(dim: int, eps: float, weight_std: float) -> float:
    """E[eps * ||w||_1] for w with dim i.i.d. N(0, weight_std**2) entries:
    eps * dim * weight_std * sqrt(2 / pi) (E|w_i| = weight_std * sqrt(2 / pi)): linear in dim."""
    return eps * dim * weight_std * math.sqrt(2.0 / math.pi)


# ----------------------------------------------------------------------------------- helpers
def _input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d mean-cross-entropy(model(x), y) / dx, computed in eval mode, the mode restored after;
    parameters' .grad untouched."""
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            leaf = x.detach().clone().requires_grad_(True)
            loss = F.cross_entropy(model(leaf), y)
            (grad,) = torch.autograd.grad(loss, leaf)
    finally:
        model.train(was_training)
    return grad


def _clamp(x: torch.Tensor, clamp: tuple[float, float] | None) -> torch.Tensor:
    return x if clamp is None else x.clamp(clamp[0], clamp[1])


# --------------------------------------------------------------------------------- attacks
def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    targeted: bool = False,
    clamp: tuple[float, float] | None = (0.0, 1.0),
) -> torch.Tensor:
    """Fast gradient sign method: x_adv = clamp(x + eps * sign(grad_x L(model(x), y))), or
    x - eps * sign(...) when targeted (y holds the target labels).

    x: (N, ...), y: (N,) int64 -> x_adv: (N, ...), no graph; model, its grads, its mode and x
    are left as they were.
    """
    grad = _input_gradient(model, x, y)
    direction = -1.0 if targeted else 1.0
    return _clamp(x.detach() + direction * eps * grad.sign(), clamp)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    alpha: float,
    steps: int,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    targeted: bool = False,
    clamp: tuple[float, float] | None = (0.0, 1.0),
) -> torch.Tensor:
    """Projected gradient descent in the L-infinity ball of radius eps around x.

    Random start (optional): x + (2 * rand(x.shape, generator) - 1) * eps, clamped to the range.
    Then ``steps`` times: one signed step of size alpha (ascent, or descent when targeted), the
    projection onto the ball around the original x, the clamp to the valid range.
    x: (N, ...), y: (N,) -> x_adv: (N, ...), no graph.
    """
    x0 = x.detach()
    direction = -1.0 if targeted else 1.0
    x_adv = x0.clone()
    if random_start:
        noise = 2 * torch.rand(x.shape, generator=generator, dtype=x.dtype) - 1
        x_adv = _clamp(x0 + noise * eps, clamp)
    for _ in range(steps):
        grad = _input_gradient(model, x_adv, y)
        x_adv = x_adv + direction * alpha * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x0 - eps), x0 + eps)
        x_adv = _clamp(x_adv, clamp)
    return x_adv


# ----------------------------------------------------------------------------- the patch
def apply_patch(
    images: torch.Tensor, patch: torch.Tensor, top: int | torch.Tensor, left: int | torch.Tensor
) -> torch.Tensor:
    """Pastes ``patch`` over ``images`` (its pixels replace the image's).

    images: (N, C, H, W); patch: (C, kh, kw) or (1, kh, kw) (then the same values in every
    channel); top, left: ints (one position for the whole batch) or int64 tensors (N,) (one
    position per image), with 0 <= top <= H - kh and 0 <= left <= W - kw.
    Returns a new (N, C, H, W) tensor, differentiable with respect to ``patch``; ``images`` is
    not modified.
    """
    n, c = images.shape[:2]
    kh, kw = patch.shape[-2:]
    tops = torch.as_tensor(top, dtype=torch.int64).expand(n)
    lefts = torch.as_tensor(left, dtype=torch.int64).expand(n)
    rows = tops.view(n, 1, 1) + torch.arange(kh).view(1, kh, 1)
    cols = lefts.view(n, 1, 1) + torch.arange(kw).view(1, 1, kw)
    batch = torch.arange(n).view(n, 1, 1)
    out = images.clone()
    values = patch.to(images.dtype).expand(c, kh, kw).permute(1, 2, 0)
    out[batch, :, rows, cols] = values.expand(n, kh, kw, c)
    return out


def random_positions(
    n: int, image_size: tuple[int, int], patch_size: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(top, left), each (n,) int64 uniform over the positions where the patch fits."""
    h, w = image_size
    top = torch.randint(0, h - patch_size + 1, (n,), generator=generator)
    left = torch.randint(0, w - patch_size + 1, (n,), generator=generator)
    return top, left


def train_patch(
    model: nn.Module,
    images: torch.Tensor,
    target_class: int,
    patch_size: int,
    steps: int,
    lr: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A square patch that makes ``model`` predict ``target_class`` wherever it is pasted.

    patch = sigmoid(param) (always in [0, 1]), param starting at zeros; each step pastes the
    patch on every image at positions drawn from ``generator``, and Adam(lr) lowers the mean
    cross-entropy towards ``target_class``. The model runs in eval mode (restored afterwards);
    its parameters and their .grad are left as they were.
    images: (N, C, H, W) in [0, 1] -> patch: (C, patch_size, patch_size) in [0, 1], no graph.
    """
    n, c, h, w = images.shape
    param = torch.zeros(c, patch_size, patch_size, dtype=images.dtype, requires_grad=True)
    optimizer = torch.optim.Adam([param], lr=lr)
    targets = torch.full((n,), target_class, dtype=torch.int64)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            for _ in range(steps):
                top, left = random_positions(n, (h, w), patch_size, generator)
                patched = apply_patch(images, torch.sigmoid(param), top, left)
                loss = F.cross_entropy(model(patched), targets)
                (grad,) = torch.autograd.grad(loss, param)
                param.grad = grad
                optimizer.step()
    finally:
        model.train(was_training)
    return torch.sigmoid(param).detach()


# --------------------------------------------------------------------- robust accuracy
def accuracy_under_attack(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Attack | None, batch_size: int
) -> float:
    """Share of the examples the model still classifies correctly after ``attack``.

    Walks x in consecutive batches x[i:i + batch_size] (the last one may be shorter), crafts
    ``attack(model, xb, yb)`` (None: the clean batch), predicts in eval mode without gradients,
    and returns (number correct) / N as a float. The model's mode is restored.
    """
    was_training = model.training
    correct = 0
    try:
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            x_adv = xb if attack is None else attack(model, xb, yb)
            model.eval()
            with torch.no_grad():
                correct += int((model(x_adv).argmax(dim=1) == yb).sum())
    finally:
        model.train(was_training)
    return correct / len(x)


def adversarial_training_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, eps: float
) -> float:
    """One optimizer step on the FGSM examples of the batch (Goodfellow et al.).

    Crafts x_adv = fgsm(model, x, y, eps) (fgsm evaluates in eval mode), then in train mode:
    zero the gradients, mean cross-entropy of model(x_adv) against y, backward, step. Leaves
    the model in train mode. Returns the loss (before the step) as a float.
    """
    x_adv = fgsm(model, x, y, eps)
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x_adv), y)
    loss.backward()
    optimizer.step()
    return float(loss.item())
