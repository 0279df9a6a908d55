"""The course's default dataset: scikit-learn's bundled handwritten digits (no download).

1797 grayscale 8x8 images of the digits 0-9, pixel values 0-16. Split deterministically into
train, validation and test sets with a seeded generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Split:
    """Images (n, 1, size, size) float32 in [0, 1] and labels (n,) int64 of one split."""

    images: torch.Tensor
    labels: torch.Tensor

    def flat(self) -> torch.Tensor:
        """The images as vectors: (n, size * size)."""
        return self.images.reshape(len(self.images), -1)


def load_digits_splits(
    seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15, size: int = 8
) -> dict[str, Split]:
    """The digits set split into ``{"train", "val", "test"}``.

    Args:
        seed: seed of the split's private generator; the same seed gives the same split.
        val_fraction, test_fraction: shares of the 1797 images.
        size: 8 for the original images, or a larger size (e.g. 16) to upsample bilinearly.

    Returns:
        A dict of :class:`Split`.
    """
    if not 0 < val_fraction + test_fraction < 1:
        raise ValueError("val_fraction + test_fraction must be between 0 and 1")
    from sklearn.datasets import load_digits  # imported here: only experiments need it

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(bunch.target, dtype=torch.int64)
    if size != 8:
        images = torch.nn.functional.interpolate(
            images, size=(size, size), mode="bilinear", align_corners=False
        )
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    n_test = int(len(labels) * test_fraction)
    n_val = int(len(labels) * val_fraction)
    parts = {
        "test": order[:n_test],
        "val": order[n_test : n_test + n_val],
        "train": order[n_test + n_val :],
    }
    return {name: Split(images[idx], labels[idx]) for name, idx in parts.items()}


def minibatches(n: int, batch_size: int, generator: torch.Generator):
    """Yields index tensors covering range(n) in a random order, ``batch_size`` at a time."""
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]
