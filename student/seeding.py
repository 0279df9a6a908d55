"""Reproducible experiments without global seeds.

PyTorch's layers (``nn.Linear``, ``nn.Conv2d``, ...) draw their initial weights from the
global random generator and take no ``generator`` argument. Seeding it for good with
``torch.manual_seed`` would make everything that runs afterwards (your own code, other cells,
a grader) depend on how many numbers were drawn before. ``seeded`` seeds it only inside a
``with`` block and puts the previous state back when the block ends::

    with seeded(0):
        model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))

Everything else in the kit (data order, noise, augmentations) uses an explicit
``torch.Generator``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Within the block, the global CPU generator starts from ``seed``; on exit (also on an
    exception) it is back in the state it had before the block."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
