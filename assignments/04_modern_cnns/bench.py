"""Bench of chapter 04: training-step cost of the three reference networks, and the hidden checks.

``bench()`` times one forward + backward pass of a batch of 64 digits (8x8) through each
reference network, on one CPU thread (median of repeated runs, the three networks measured in
turn so that machine load affects them alike), with their parameter counts, and the time of the
hidden checks run against the reference, which bounds the chapter's grading work.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from solutions import ch04_modern_cnns as reference
from tools.timing import hidden_checks_figure, in_turn, one_thread

REPEATS = 15


def _forward_backward(network: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        network.zero_grad(set_to_none=True)
        network(x).sum().backward()

    return step


def bench() -> dict[str, str]:
    with one_thread():
        x = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
        networks = {
            cls.__name__: cls()
            for cls in (reference.SmallResNet, reference.SmallGoogLeNet, reference.SmallDenseNet)
        }
        medians = in_turn(
            [_forward_backward(network, x) for network in networks.values()], REPEATS, warmup=0
        )
        figures = {"setting": f"batch 64 of 1x8x8, float32, 1 thread, median of {REPEATS}"}
        for (name, network), median in zip(networks.items(), medians):
            figures[f"{name} forward+backward"] = (
                f"{median * 1e3:.1f} ms, {reference.count_parameters(network):,} parameters"
            )
        figures |= hidden_checks_figure(Path(__file__).with_name("checks.py"), reference, repeats=3)
        return figures


if __name__ == "__main__":
    for key, value in bench().items():
        print(f"{key}: {value}")
