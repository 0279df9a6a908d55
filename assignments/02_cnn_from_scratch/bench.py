"""``make bench`` figures of chapter 02: the reference convolution against PyTorch's.

The reference ``Conv2d`` (im2col with ``Tensor.unfold`` and batched matrix products) runs
forward + backward on a (64, 8, 16, 16) float32 batch with 16 filters of 3x3, stride 1,
padding 1; ``torch.nn.functional.conv2d`` runs forward + autograd backward on the same data
with the same upstream gradient. The two are timed alternately in one run (so that a busy
machine slows both alike), with one thread and with torch's default thread count. Goal: the
reference at most 3x slower.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from solutions.ch02_cnn_from_scratch import Conv2d  # noqa: E402 - after the path fix
from tools.timing import side_by_side, torch_threads  # noqa: E402

SHAPE, FILTERS, KERNEL = (64, 8, 16, 16), 16, 3


def _medians(threads: int, repeats: int) -> tuple[float, float]:
    """Median seconds of (reference, torch) forward + backward, timed alternately."""
    with torch_threads(threads):
        rng = torch.Generator().manual_seed(0)
        x = torch.randn(*SHAPE, generator=rng)
        layer = Conv2d(SHAPE[1], FILTERS, KERNEL, 1, 1)
        layer.init_params(generator=rng)
        dy = torch.randn(SHAPE[0], FILTERS, SHAPE[2], SHAPE[3], generator=rng)

        def reference() -> None:
            layer.forward(x)
            layer.backward(dy)

        def library() -> None:
            x_leaf = x.clone().requires_grad_()
            weight = layer.weight.clone().requires_grad_()
            bias = layer.bias.clone().requires_grad_()
            F.conv2d(x_leaf, weight, bias, stride=1, padding=1).backward(dy)

        return side_by_side(reference, library, repeats, warmup=3)


def bench(repeats: int = 30) -> dict[str, str]:
    figures = {}
    for threads in sorted({1, torch.get_num_threads()}):
        ours, theirs = _medians(threads, repeats)
        label = f"{threads} thread{'s' if threads > 1 else ''}"
        figures[f"conv2d fwd+bwd (64,8,16,16), 16 3x3 filters, {label}"] = (
            f"reference {1000 * ours:.2f} ms, torch.nn.functional.conv2d + autograd "
            f"{1000 * theirs:.2f} ms (medians of {repeats})"
        )
        figures[f"conv2d reference / torch ratio, {label}"] = f"{ours / theirs:.2f}x (goal <= 3x)"
    return figures


if __name__ == "__main__":
    for name, value in bench().items():
        print(f"{name}: {value}")
