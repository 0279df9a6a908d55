"""``make bench`` figures of chapter 11: the cost of the attacks and of the hidden checks.

* FGSM and 10-step PGD of the reference against a digits-sized CNN (batch of 256 images of
  1x8x8, float32, one thread): median milliseconds, and PGD / FGSM.
* Each hidden check run against the reference in this process (one thread, as in the
  sandboxed child), median of 3: the patch check trains a small model and five patches, and its
  time bounds what a correct submission needs within the check's limit (60 s).
"""
from __future__ import annotations

import functools
import statistics
import sys
import time
from pathlib import Path
from collections.abc import Callable

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from autograder.checks import load_checks_namespace, run_check  # noqa: E402
from solutions import ch11_adversarial_attacks as reference  # noqa: E402

REPEATS = 11


def _median_seconds(work: Callable[[], object], repeats: int = REPEATS) -> float:
    work()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench() -> dict[str, str]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rng = torch.Generator().manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                              nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(32 * 16, 10)).eval()
        x = torch.rand(256, 1, 8, 8, generator=rng)
        y = torch.randint(0, 10, (256,), generator=rng)
        fgsm_s = _median_seconds(lambda: reference.fgsm(model, x, y, 0.1))
        pgd_s = _median_seconds(lambda: reference.pgd(model, x, y, 0.1, 0.025, 10,
                                                      generator=rng))
        figures = {
            "FGSM, 256 digits, CNN 16/32 channels, 1 thread": f"{fgsm_s * 1e3:.1f} ms",
            "PGD 10 steps, same": f"{pgd_s * 1e3:.1f} ms ({pgd_s / fgsm_s:.1f}x FGSM)",
        }
        checks_path = Path(__file__).with_name("checks.py")
        checks = load_checks_namespace(checks_path.read_text(), str(checks_path)).checks
        def discard(*_: object) -> None:
            return None

        for check in checks:
            seconds = _median_seconds(functools.partial(run_check, check, reference, discard),
                                      repeats=3)
            figures[f"hidden check {check.name} against the reference (limit "
                    f"{check.timeout_s:g} s)"] = f"{seconds:.2f} s"
        return figures
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    for key, value in bench().items():
        print(f"{key}: {value}")
