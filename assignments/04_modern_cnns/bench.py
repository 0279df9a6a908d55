"""Bench of chapter 04: training-step cost of the three reference networks, and the hidden checks.

``bench()`` times one forward + backward pass of a batch of 64 digits (8x8) through each
reference network, on one CPU thread (median of repeated runs, the three networks measured in
turn so that machine load affects them alike), with their parameter counts, and the time of the
hidden checks run against the reference, which bounds the chapter's grading work.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

from autograder.checks import load_checks_namespace, run_check
from solutions import ch04_modern_cnns as reference

REPEATS = 15


def bench() -> dict[str, str]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
        networks = {cls.__name__: cls() for cls in (reference.SmallResNet,
                                                    reference.SmallGoogLeNet,
                                                    reference.SmallDenseNet)}
        times: dict[str, list[float]] = {name: [] for name in networks}
        for _ in range(REPEATS):
            for name, network in networks.items():
                began = time.perf_counter()
                network.zero_grad(set_to_none=True)
                network(x).sum().backward()
                times[name].append(time.perf_counter() - began)
        figures = {"setting": f"batch 64 of 1x8x8, float32, 1 thread, median of {REPEATS}"}
        for name, network in networks.items():
            figures[f"{name} forward+backward"] = (
                f"{statistics.median(times[name]) * 1e3:.1f} ms, "
                f"{reference.count_parameters(network):,} parameters")
        checks_path = Path(__file__).with_name("checks.py")
        checks = load_checks_namespace(checks_path.read_text(), str(checks_path)).checks
        runs = []
        for _ in range(3):
            began = time.perf_counter()
            for check in checks:
                run_check(check, reference, lambda *args: None)
            runs.append(time.perf_counter() - began)
        figures["hidden checks against the reference (all cases)"] = \
            f"{statistics.median(runs) * 1e3:.0f} ms"
        return figures
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    for key, value in bench().items():
        print(f"{key}: {value}")
