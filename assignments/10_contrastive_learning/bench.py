"""``make bench`` figures of chapter 10: the reference InfoNCE against the usual
``F.cross_entropy`` formulation, one SimCLR training step of the notebook's encoder, and the
hidden checks run against the reference.

Both losses run forward + backward on (256, 128) float32 embeddings, timed alternately on one
thread (so that a busy machine slows both alike); the training step is what the notebook's
pre-training repeats (two augmentations of 256 digits, encoder, head, loss, Adam).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from solutions import ch10_contrastive_learning as reference  # noqa: E402 - after the path fix
from tools.timing import (  # noqa: E402
    hidden_checks_figure,
    median_seconds,
    one_thread,
    side_by_side,
)

N, D, BATCH = 256, 128, 256
REPEATS, WARMUP = 21, 3


def _cross_entropy_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = (z @ z.T / temperature).masked_fill(torch.eye(2 * n, dtype=torch.bool), -1e9)
    return F.cross_entropy(logits, (torch.arange(2 * n) + n) % (2 * n))


def _loss_step(
    loss_fn: Callable[..., torch.Tensor], z1: torch.Tensor, z2: torch.Tensor
) -> Callable[[], None]:
    def step() -> None:
        a, b = z1.detach().requires_grad_(), z2.detach().requires_grad_()
        loss_fn(a, b, 0.5).backward()

    return step


def _encoder(width: int = 16) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1, stride=2),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        nn.Conv2d(2 * width, 4 * width, 3, padding=1, stride=2),
        nn.BatchNorm2d(4 * width),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


def bench() -> dict[str, str]:
    with one_thread():
        generator = torch.Generator().manual_seed(0)
        z1, z2 = torch.randn(2, N, D, generator=generator)
        ours_step = _loss_step(reference.info_nce_loss, z1, z2)
        theirs_step = _loss_step(_cross_entropy_loss, z1, z2)
        ours, theirs = side_by_side(ours_step, theirs_step, REPEATS, WARMUP)
        figures = {
            "setting": f"N={N}, D={D}, float32, 1 thread, median of {REPEATS}",
            "InfoNCE forward+backward, reference": f"{ours * 1e3:.2f} ms",
            "InfoNCE forward+backward, F.cross_entropy": f"{theirs * 1e3:.2f} ms",
            "reference / cross_entropy": f"{ours / theirs:.2f}x",
        }

        model = reference.SimCLR(_encoder(), reference.ProjectionHead(64, 128, 32))
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        images = torch.rand(BATCH, 1, 8, 8, generator=generator)

        def train_step() -> None:
            views = reference.augment(images, generator), reference.augment(images, generator)
            _, _, a, b = model(*views)
            loss = reference.info_nce_loss(a, b, 0.5)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        step_s = median_seconds(train_step, REPEATS, WARMUP)
        figures["SimCLR training step (256 digits, notebook's CNN)"] = f"{step_s * 1e3:.1f} ms"

        figures |= hidden_checks_figure(Path(__file__).with_name("checks.py"), reference, repeats=5)
        return figures


if __name__ == "__main__":
    for key, value in bench().items():
        print(f"{key}: {value}")
