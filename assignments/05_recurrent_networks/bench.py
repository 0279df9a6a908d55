"""Bench of chapter 05: the reference cells unrolled in Python against PyTorch's fused modules.

``bench()`` times forward + backward over one batch of sequences, our ``RecurrentLayer`` and
PyTorch's ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` alternately (side by side, so that machine load
affects both alike), on one CPU thread, and reports medians and their ratio. It also times the
hidden checks run against the reference, which bounds the chapter's grading work.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from solutions import ch05_recurrent_networks as reference
from tools.timing import hidden_checks_figure, one_thread, side_by_side

STEPS, BATCH, INPUT, HIDDEN = 16, 64, 16, 128
REPEATS, WARMUP = 21, 3


def _forward_backward(layer: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        layer.zero_grad(set_to_none=True)
        outputs, _ = layer(x)
        outputs.sum().backward()

    return step


def bench() -> dict[str, str]:
    with one_thread():
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(BATCH, STEPS, INPUT, generator=generator)
        figures = {
            "setting": f"T={STEPS}, N={BATCH}, input={INPUT}, hidden={HIDDEN}, float32, "
            f"1 thread, median of {REPEATS}"
        }
        pairs = (
            ("RNN", reference.RNNCell, nn.RNN),
            ("GRU", reference.GRUCell, nn.GRU),
            ("LSTM", reference.LSTMCell, nn.LSTM),
        )
        for name, ours_class, torch_class in pairs:
            ours = reference.RecurrentLayer(ours_class(INPUT, HIDDEN), batch_first=True)
            fused = torch_class(INPUT, HIDDEN, batch_first=True)
            ours_s, fused_s = side_by_side(
                _forward_backward(ours, x), _forward_backward(fused, x), REPEATS, WARMUP
            )
            figures[f"{name} forward+backward, unrolled reference"] = f"{ours_s * 1e3:.2f} ms"
            figures[f"{name} forward+backward, torch.nn.{torch_class.__name__}"] = (
                f"{fused_s * 1e3:.2f} ms"
            )
            figures[f"{name} unrolled / fused"] = f"{ours_s / fused_s:.2f}x"
        figures |= hidden_checks_figure(Path(__file__).with_name("checks.py"), reference, repeats=5)
        return figures


if __name__ == "__main__":
    for key, value in bench().items():
        print(f"{key}: {value}")
