"""``make bench`` figures of chapter 09: the reference discriminator loss against PyTorch's
``F.binary_cross_entropy_with_logits``, one GAN training step and one EBM training step of the
notebook's networks, and the hidden checks run against the reference.

Timings are medians on one thread (``tools.timing``); the two losses run forward + backward on
(4096,) float32 logits, timed alternately. The EBM step is what the notebook's training
repeats: 128 starting points from the replay buffer, 20 Langevin steps of the small CNN, a push,
and one Adam step on the contrastive-divergence loss.
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

from solutions import ch09_gans_energy_models as reference  # noqa: E402
from student.seeding import seeded  # noqa: E402
from tools.timing import hidden_checks_figure, median_seconds, one_thread, side_by_side  # noqa: E402

REPEATS = 21


def _bce(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(
        real, torch.ones_like(real)
    ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))


def _loss_step(
    loss: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor
) -> Callable[[], None]:
    def step() -> None:
        loss(real.detach().requires_grad_(), fake.detach().requires_grad_()).backward()

    return step


def bench() -> dict[str, str]:
    with one_thread():
        generator = torch.Generator().manual_seed(0)
        real, fake = 5 * torch.randn(2, 4096, generator=generator)
        ours, theirs = (
            1e3 * seconds
            for seconds in side_by_side(
                _loss_step(reference.discriminator_loss, real, fake),
                _loss_step(_bce, real, fake),
                REPEATS,
            )
        )
        figures = {
            "discriminator loss fwd+bwd, (4096,) float32, 1 thread": f"reference {ours:.3f} ms, "
            f"F.binary_cross_entropy_with_logits {theirs:.3f} ms (ratio {ours / theirs:.2f}x)"
        }

        with seeded(0):  # the layers draw their initial weights from the global generator
            gan_g = nn.Sequential(
                nn.Linear(16, 128),
                nn.LeakyReLU(0.2),
                nn.Linear(128, 256),
                nn.LeakyReLU(0.2),
                nn.Linear(256, 64),
                nn.Tanh(),
            )
            gan_d = nn.Sequential(
                nn.Linear(64, 256),
                nn.LeakyReLU(0.2),
                nn.Linear(256, 128),
                nn.LeakyReLU(0.2),
                nn.Linear(128, 1),
                nn.Flatten(0),
            )
        opt_g = torch.optim.Adam(gan_g.parameters(), lr=1e-3, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(gan_d.parameters(), lr=1e-3, betas=(0.5, 0.999))
        images = 2 * torch.rand(64, 64, generator=generator) - 1

        def gan_step() -> None:
            noise = torch.randn(64, 16, generator=generator)
            reference.gan_training_step(gan_g, gan_d, opt_g, opt_d, images, noise)

        figures["GAN training step (batch 64, notebook's MLPs)"] = (
            f"{1e3 * median_seconds(gan_step, REPEATS):.2f} ms"
        )

        with seeded(1):
            model = nn.Sequential(
                nn.Conv2d(1, 8, 3, padding=1),
                nn.SiLU(),
                nn.Conv2d(8, 16, 3, stride=2, padding=1),
                nn.SiLU(),
                nn.Conv2d(16, 32, 3, stride=2, padding=1),
                nn.SiLU(),
                nn.Flatten(),
                nn.Linear(128, 64),
                nn.SiLU(),
                nn.Linear(64, 1),
                nn.Flatten(0),
            )
        optimizer = torch.optim.Adam(model.parameters(), lr=2e-3, betas=(0.0, 0.999))
        buffer = reference.ReplayBuffer(4096, (1, 8, 8))
        digits = 2 * torch.rand(128, 1, 8, 8, generator=generator) - 1

        def ebm_step() -> None:
            samples = reference.langevin_sample(
                model, buffer.sample(128, generator), 20, 10.0, 0.005, generator
            )
            buffer.push(samples)
            loss = reference.contrastive_divergence_loss(model(digits), model(samples), 0.1)[0]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        figures["EBM training step (128 chains x 20 Langevin steps, notebook's CNN)"] = (
            f"{1e3 * median_seconds(ebm_step, 9):.1f} ms"
        )

        figures.update(hidden_checks_figure(Path(__file__).with_name("checks.py"), reference, 5))
        return figures


if __name__ == "__main__":
    print("\n".join(f"{name}: {value}" for name, value in bench().items()))
