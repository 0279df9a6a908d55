"""``make bench`` figures of chapter 08: the reference transposed convolution against PyTorch's,
one VAE training step, and the hidden checks against the reference.

The reference ``conv_transpose2d`` (one einsum for every pixel's patch, then ``F.fold``) runs
forward + autograd backward on the decoder's widest layer at a training batch, (64, 16, 4, 4)
-> (64, 8, 8, 8) with k = 3, stride 2, padding 1, output_padding 1, alternately with
``torch.nn.functional.conv_transpose2d`` on the same data (so that a busy machine slows both
alike), on one thread. The VAE step is the notebook's: forward, loss, backward and an Adam
update on a batch of 64 digits.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from solutions import ch08_autoencoders_vae as reference  # noqa: E402 - after the path fix
from student.seeding import seeded  # noqa: E402
from tools.timing import (  # noqa: E402
    hidden_checks_figure,
    median_seconds,
    one_thread,
    side_by_side,
)

REPEATS = 30


def bench() -> dict[str, str]:
    with one_thread():
        rng = torch.Generator().manual_seed(0)
        x = torch.randn(64, 16, 4, 4, generator=rng)
        weight = torch.randn(16, 8, 3, 3, generator=rng)
        bias = torch.randn(8, generator=rng)
        upstream = torch.randn(64, 8, 8, 8, generator=rng)

        def run(function: Callable[..., torch.Tensor]) -> Callable[[], None]:
            def step() -> None:
                leaves = [t.clone().requires_grad_(True) for t in (x, weight, bias)]
                function(*leaves, stride=2, padding=1, output_padding=1).backward(upstream)

            return step

        ours, theirs = side_by_side(
            run(reference.conv_transpose2d), run(F.conv_transpose2d), REPEATS, warmup=3
        )
        figures = {
            "conv_transpose2d fwd+bwd (64,16,4,4) -> (64,8,8,8), 1 thread": (
                f"reference {1000 * ours:.2f} ms, torch {1000 * theirs:.2f} ms "
                f"(medians of {REPEATS}; ratio {ours / theirs:.2f}x)"
            ),
        }
        with seeded(0):
            vae = reference.VAE(8)
        optimizer = torch.optim.Adam(vae.parameters(), lr=3e-3)
        images = torch.rand(64, 1, 8, 8, generator=rng)

        def train_step() -> None:
            loss = vae.loss(images, torch.randn(64, 8, generator=rng))[0]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        step_s = median_seconds(train_step, REPEATS, warmup=3)
        figures["VAE(8) training step, batch 64, 1 thread"] = (
            f"{1000 * step_s:.2f} ms (median of {REPEATS})"
        )
        figures |= hidden_checks_figure(Path(__file__).with_name("checks.py"), reference, repeats=3)
        return figures


if __name__ == "__main__":
    for name, value in bench().items():
        print(f"{name}: {value}")
