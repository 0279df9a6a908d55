"""``make bench`` figures of chapter 12: the cost of the box operations, the two patch
embeddings side by side, and each hidden check against the reference.

* IoU of 1000 x 1000 boxes (broadcast, float64) and greedy NMS of 1000 boxes in 20 clusters:
  median milliseconds on one thread (NMS is a Python loop over the kept boxes).
* PatchEmbedding on 256 digits of 8x8 with 2x2 patches and 64 dimensions: the strided
  convolution against unfold + matmul, timed alternately, and their ratio.
* Each hidden check run against the reference in this process (one thread, as in the
  sandboxed child), median of 3, against its time limit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from solutions import ch12_vision_tasks as reference  # noqa: E402 - after the path fix
from tools.timing import (  # noqa: E402
    check_seconds_against_reference,
    median_seconds,
    one_thread,
    side_by_side,
)

REPEATS = 11


def _clustered_boxes(generator: torch.Generator, n: int, clusters: int) -> torch.Tensor:
    centres = 100 * torch.rand(clusters, 2, generator=generator, dtype=torch.float64)
    picks = torch.randint(0, clusters, (n,), generator=generator)
    corner = centres[picks] + 3 * torch.randn(n, 2, generator=generator, dtype=torch.float64)
    size = 5 + 10 * torch.rand(n, 2, generator=generator, dtype=torch.float64)
    return torch.cat([corner, corner + size], dim=1)


def bench() -> dict[str, str]:
    with one_thread():
        generator = torch.Generator().manual_seed(0)
        boxes = _clustered_boxes(generator, 1000, 20)
        scores = torch.rand(1000, generator=generator, dtype=torch.float64)
        iou_s = median_seconds(lambda: reference.box_iou(boxes, boxes), REPEATS)
        nms_s = median_seconds(lambda: reference.nms(boxes, scores, 0.5), REPEATS)
        kept = len(reference.nms(boxes, scores, 0.5))
        figures = {
            "box_iou 1000 x 1000, float64, 1 thread": f"{iou_s * 1e3:.1f} ms",
            "nms of 1000 boxes in 20 clusters at IoU 0.5": f"{nms_s * 1e3:.1f} ms ({kept} kept)",
        }
        embed = reference.PatchEmbedding(8, 2, 1, 64)
        images = torch.rand(256, 1, 8, 8, generator=generator)
        with torch.no_grad():
            conv_s, unfold_s = side_by_side(
                lambda: embed(images), lambda: embed.forward_unfold(images), REPEATS
            )
        figures["PatchEmbedding, 256 digits, 2x2 patches, dim 64: conv"] = f"{conv_s * 1e3:.2f} ms"
        figures["same, unfold + matmul"] = (
            f"{unfold_s * 1e3:.2f} ms ({unfold_s / conv_s:.2f}x the convolution)"
        )
        for check, check_s in check_seconds_against_reference(
            Path(__file__).with_name("checks.py"), reference, repeats=3, warmup=1
        ):
            figures[
                f"hidden check {check.name} against the reference (limit {check.timeout_s:g} s)"
            ] = f"{check_s:.3f} s"
        return figures


if __name__ == "__main__":
    for key, value in bench().items():
        print(f"{key}: {value}")
