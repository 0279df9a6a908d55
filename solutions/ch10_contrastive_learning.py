"""Reference implementation of chapter 10 (contrastive learning, SimCLR): the grading oracle.

Never shipped to students. Students write functions and ``torch.nn.Module`` classes; autograd
computes the gradients. Inside the graded losses no library cross-entropy, log-softmax or
log-sum-exp is used: the stable log-sum-exp is written out (subtract the row maximum).

Shapes: a batch of projections of the two views is ``z1, z2`` of shape ``(N, D)``; the
``2N`` embeddings are stacked as ``z = cat([z1, z2])``, so the positive of row ``i`` is row
``(i + N) mod 2N``. Images are ``(N, 1, 8, 8)`` with pixels in ``[0, 1]``.

Two copies of the reference, by rule: this module (the grading oracle that writes the expected
data) and the master's solution blocks (what the released solution notebook runs) are kept as
independent oracles, neither generated from the other; ``tests/test_check_coverage.py`` runs
every check's exercise on both and compares them with the kit's comparison rule.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-12


def _normalize(z: torch.Tensor) -> torch.Tensor:
    """Rows of z (M, D) scaled to unit L2 norm (a zero row stays zero)."""
    return z / z.norm(dim=1, keepdim=True).clamp_min(EPS)


def _stable_logsumexp(scores: torch.Tensor) -> torch.Tensor:
    """log(sum(exp(scores), dim=1)) for scores (M, K), the row maximum subtracted first.
    Entries equal to -inf contribute exp(-inf) = 0."""
    top = scores.max(dim=1, keepdim=True).values
    return top.squeeze(1) + torch.log(torch.exp(scores - top).sum(dim=1))


def _similarities(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Cosine similarities (2N, 2N) of the stacked embeddings cat([z1, z2])."""
    z = _normalize(torch.cat([z1, z2], dim=0))
    return z @ z.T


def _positive_index(n: int, device: torch.device | None = None) -> torch.Tensor:
    """(2N,) index of each anchor's positive: i + N for the first view, i - N for the second."""
    return (torch.arange(2 * n, device=device) + n) % (2 * n)


def info_nce_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent (SimCLR's InfoNCE): mean over the 2N anchors of -log softmax at the positive.

    z1, z2: (N, D) projections of the two views (any norms; cosine similarity is used).
    Returns a 0-dim tensor in z1's dtype.
    """
    n = z1.shape[0]
    logits = _similarities(z1, z2) / temperature
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=z1.device)
    logits = logits.masked_fill(self_mask, -math.inf)
    rows = torch.arange(2 * n, device=z1.device)
    positives = logits[rows, _positive_index(n, z1.device)]
    return (_stable_logsumexp(logits) - positives).mean()


def contrastive_accuracy(z1: torch.Tensor, z2: torch.Tensor, k: int = 1) -> float:
    """Fraction of the 2N anchors whose positive is among the k most similar of the other
    2N - 1 embeddings (cosine similarity); a negative as similar as the positive ranks
    ahead of it. z1, z2: (N, D). Returns a Python float."""
    n = z1.shape[0]
    with torch.no_grad():
        sims = _similarities(z1, z2)
        rows = torch.arange(2 * n, device=z1.device)
        positive_index = _positive_index(n, z1.device)
        positive = sims[rows, positive_index].unsqueeze(1)
        rivals = sims >= positive
        rivals[rows, rows] = False
        rivals[rows, positive_index] = False
        rank = rivals.sum(dim=1)
        return (rank < k).double().mean().item()


def alignment(z1: torch.Tensor, z2: torch.Tensor, alpha: float = 2) -> torch.Tensor:
    """Wang & Isola's alignment: mean over the N pairs of ||f(x) - f(y)||_2 ** alpha, on
    L2-normalized rows. z1, z2: (N, D). Returns a 0-dim tensor."""
    return (_normalize(z1) - _normalize(z2)).norm(dim=1).pow(alpha).mean()


def uniformity(z: torch.Tensor, t: float = 2) -> torch.Tensor:
    """Wang & Isola's uniformity: log of the mean over pairs i < j of
    exp(-t ||f(x_i) - f(x_j)||^2), on L2-normalized rows, as a stable log-mean-exp.
    z: (N, D), N >= 2. Returns a 0-dim tensor."""
    n = z.shape[0]
    u = _normalize(z)
    i, j = torch.triu_indices(n, n, offset=1, device=z.device)
    squared = (u[i] - u[j]).pow(2).sum(dim=1)
    exponents = (-t * squared).unsqueeze(0)
    return _stable_logsumexp(exponents)[0] - math.log(exponents.shape[1])


def augment(
    x: torch.Tensor,
    generator: torch.Generator,
    crop: float = 0.3,
    rotation: float = 15.0,
    translation: float = 1.0,
    noise: float = 0.05,
) -> torch.Tensor:
    """A random view of every image: random resized crop, rotation, translation, noise.

    x: (N, 1, H, W) pixels in [0, 1]. Per image, independently, drawn from ``generator``:
    a square crop whose side is a fraction s ~ U(1 - crop, 1) of the image, placed uniformly,
    resized back to H x W; a rotation by an angle ~ U(-rotation, rotation) degrees; a shift
    ~ U(-translation, translation) pixels along each axis; then Gaussian noise of standard
    deviation ``noise`` per pixel, and the result clamped to [0, 1]. Bilinear sampling, zeros
    outside the image. With every strength 0 it returns x (up to rounding).
    Returns (N, 1, H, W) in x's dtype.
    """
    n, _, height, width = x.shape

    def draw(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, dtype=x.dtype, device=x.device)

    side = 1.0 - crop * draw(n)
    center = (1.0 - side).unsqueeze(1) * (2.0 * draw(n, 2) - 1.0)
    angle = math.radians(rotation) * (2.0 * draw(n) - 1.0)
    shift = translation * (2.0 * draw(n, 2) - 1.0)
    shift = shift * torch.tensor([2.0 / width, 2.0 / height], dtype=x.dtype, device=x.device)
    cos, sin = torch.cos(angle) * side, torch.sin(angle) * side
    theta = torch.stack(
        [
            torch.stack([cos, -sin, center[:, 0] + shift[:, 0]], dim=1),
            torch.stack([sin, cos, center[:, 1] + shift[:, 1]], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    views = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    views = views + noise * torch.randn(
        views.shape, generator=generator, dtype=x.dtype, device=x.device
    )
    return views.clamp(0.0, 1.0)


class ProjectionHead(nn.Module):
    """g(h) = fc2(relu(fc1(h))): (N, in_dim) -> (N, out_dim)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, out_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(h)))


class SimCLR(nn.Module):
    """Encoder f and projection head g shared by both views."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(
        self, x1: torch.Tensor, x2: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """x1, x2: the two views (N, ...) -> (h1, h2, z1, z2), h = f(x), z = g(h)."""
        h1, h2 = self.encoder(x1), self.encoder(x2)
        return h1, h2, self.head(h1), self.head(h2)


def extract_features(encoder: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """encoder(x) in eval mode without gradients, batch_size rows at a time, in x's order;
    the encoder's train/eval mode is restored afterwards. x: (N, ...) -> (N, feature_dim)."""
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            parts = [
                encoder(x[start : start + batch_size]) for start in range(0, x.shape[0], batch_size)
            ]
        return torch.cat(parts, dim=0)
    finally:
        encoder.train(was_training)


# Answers to the concept questions (section 7 of the notebook).
CONCEPT_ANSWERS = {"largest_loss_aligned": 5.0, "largest_loss_confused": 0.05, "probe_features": 2}


def concept_answers() -> dict[str, float]:
    """The answers of the concept questions, as the notebook asks for them."""
    return dict(CONCEPT_ANSWERS)
