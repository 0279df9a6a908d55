"""Bench of chapter 05: the reference cells unrolled in Python against PyTorch's fused modules.

``bench()`` times forward + backward over one batch of sequences, our ``RecurrentLayer`` and
PyTorch's ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` alternately (side by side, so that machine load
affects both alike), on one CPU thread, and reports medians and their ratio. It also times the
hidden checks run against the reference, which bounds the chapter's grading work.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
from torch import nn

from autograder.checks import load_checks_namespace, run_check
from solutions import ch05_recurrent_networks as reference

STEPS, BATCH, INPUT, HIDDEN = 16, 64, 16, 128
REPEATS, WARMUP = 21, 3


def _time_once(step) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def _side_by_side(first, second) -> tuple[float, float]:
    """Median seconds of two callables, measured alternately."""
    for _ in range(WARMUP):
        first()
        second()
    a, b = [], []
    for _ in range(REPEATS):
        a.append(_time_once(first))
        b.append(_time_once(second))
    return statistics.median(a), statistics.median(b)


def _forward_backward(layer: nn.Module, x: torch.Tensor):
    def step():
        layer.zero_grad(set_to_none=True)
        outputs, _ = layer(x)
        outputs.sum().backward()
    return step


def bench() -> dict[str, str]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(BATCH, STEPS, INPUT, generator=generator)
        figures = {"setting": f"T={STEPS}, N={BATCH}, input={INPUT}, hidden={HIDDEN}, float32, "
                              f"1 thread, median of {REPEATS}"}
        pairs = (("RNN", reference.RNNCell, nn.RNN), ("GRU", reference.GRUCell, nn.GRU),
                 ("LSTM", reference.LSTMCell, nn.LSTM))
        for name, ours_class, torch_class in pairs:
            ours = reference.RecurrentLayer(ours_class(INPUT, HIDDEN), batch_first=True)
            fused = torch_class(INPUT, HIDDEN, batch_first=True)
            ours_s, fused_s = _side_by_side(_forward_backward(ours, x),
                                            _forward_backward(fused, x))
            figures[f"{name} forward+backward, unrolled reference"] = f"{ours_s * 1e3:.2f} ms"
            figures[f"{name} forward+backward, torch.nn.{torch_class.__name__}"] = \
                f"{fused_s * 1e3:.2f} ms"
            figures[f"{name} unrolled / fused"] = f"{ours_s / fused_s:.2f}x"
        checks_path = Path(__file__).with_name("checks.py")
        checks = load_checks_namespace(checks_path.read_text(), str(checks_path)).checks
        runs = [_time_once(lambda: [run_check(c, reference, lambda *a: None) for c in checks])
                for _ in range(5)]
        figures["hidden checks against the reference (all cases)"] = \
            f"{statistics.median(runs) * 1e3:.0f} ms"
        return figures
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    for key, value in bench().items():
        print(f"{key}: {value}")
