"""Bench of chapter 03: the reference optimizers and normalization layers against PyTorch's.

``bench()`` times one Adam step over a 64-128-10-sized list of parameters and one batch-norm
forward + backward on (256, 128), ours and PyTorch's alternately (so that machine load affects
both alike), on one CPU thread, and reports medians and their ratio. It also times the hidden
checks run against the reference, which bounds the chapter's grading work.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from solutions import ch03_optimization_regularization as reference
from tools.timing import hidden_checks_figure, one_thread, side_by_side

REPEATS, WARMUP = 21, 3
SHAPES = ((128, 64), (128,), (10, 128), (10,))


def _adam_pair() -> tuple[Callable[[], None], Callable[[], None]]:
    generator = torch.Generator().manual_seed(0)
    ours = [torch.randn(shape, generator=generator) for shape in SHAPES]
    theirs = [p.clone().requires_grad_(True) for p in ours]
    for a, b in zip(ours, theirs):
        a.grad = torch.randn(a.shape, generator=generator)
        b.grad = a.grad.clone()
    ours_opt = reference.Adam(ours, lr=1e-3)
    theirs_opt = torch.optim.Adam(theirs, lr=1e-3, foreach=False)
    return ours_opt.step, theirs_opt.step


def _batchnorm_pair() -> tuple[Callable[[], object], Callable[[], object]]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(256, 128, generator=generator)
    dy = torch.randn(256, 128, generator=generator)
    ours = reference.BatchNorm1d(128)
    ours.weight, ours.bias = torch.ones(128), torch.zeros(128)
    ours.running_mean, ours.running_var = torch.zeros(128), torch.ones(128)
    theirs = torch.nn.BatchNorm1d(128)
    leaf = x.clone().requires_grad_(True)

    def ours_step() -> object:
        ours.forward(x)
        return ours.backward(dy)

    def theirs_step() -> object:
        theirs.zero_grad(set_to_none=True)
        leaf.grad = None
        theirs(leaf).backward(dy)
        return leaf.grad

    return ours_step, theirs_step


def bench() -> dict[str, str]:
    with one_thread():
        figures = {"setting": f"float32, 1 thread, median of {REPEATS}"}
        ours_s, torch_s = side_by_side(*_adam_pair(), REPEATS, WARMUP)
        figures["Adam step (64-128-10 MLP parameters), reference"] = f"{ours_s * 1e6:.0f} us"
        figures["Adam step, torch.optim.Adam(foreach=False)"] = f"{torch_s * 1e6:.0f} us"
        figures["Adam reference / torch"] = f"{ours_s / torch_s:.2f}x"
        ours_s, torch_s = side_by_side(*_batchnorm_pair(), REPEATS, WARMUP)
        figures["BatchNorm1d forward+backward (256, 128), reference"] = f"{ours_s * 1e6:.0f} us"
        figures["BatchNorm1d forward+backward, torch.nn + autograd"] = f"{torch_s * 1e6:.0f} us"
        figures["BatchNorm1d reference / torch"] = f"{ours_s / torch_s:.2f}x"
        figures |= hidden_checks_figure(Path(__file__).with_name("checks.py"), reference, repeats=5)
        return figures


if __name__ == "__main__":
    for key, value in bench().items():
        print(f"{key}: {value}")
