"""``make bench`` figures of chapter 11: the cost of the attacks and of the hidden checks.

* FGSM and 10-step PGD of the reference against a digits-sized CNN (batch of 256 images of
  1x8x8, float32, one thread): median milliseconds, and PGD / FGSM.
* Each hidden check run against the reference in this process (one thread, as in the
  sandboxed child), median of 3: the patch check trains a small model and five patches, and its
  time bounds what a correct submission needs within the check's limit (60 s).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from solutions import ch11_adversarial_attacks as reference  # noqa: E402
from tools.timing import check_seconds_against_reference, median_seconds, one_thread  # noqa: E402

REPEATS = 11


def bench() -> dict[str, str]:
    with one_thread():
        rng = torch.Generator().manual_seed(0)
        model = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * 16, 10),
        ).eval()
        x = torch.rand(256, 1, 8, 8, generator=rng)
        y = torch.randint(0, 10, (256,), generator=rng)
        fgsm_s = median_seconds(lambda: reference.fgsm(model, x, y, 0.1), REPEATS)
        pgd_s = median_seconds(
            lambda: reference.pgd(model, x, y, 0.1, 0.025, 10, generator=rng), REPEATS
        )
        figures = {
            "FGSM, 256 digits, CNN 16/32 channels, 1 thread": f"{fgsm_s * 1e3:.1f} ms",
            "PGD 10 steps, same": f"{pgd_s * 1e3:.1f} ms ({pgd_s / fgsm_s:.1f}x FGSM)",
        }
        for check, seconds in check_seconds_against_reference(
            Path(__file__).with_name("checks.py"), reference, repeats=3, warmup=1
        ):
            figures[
                f"hidden check {check.name} against the reference (limit {check.timeout_s:g} s)"
            ] = f"{seconds:.2f} s"
        return figures


if __name__ == "__main__":
    for key, value in bench().items():
        print(f"{key}: {value}")
