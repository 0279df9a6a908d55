"""Timing helpers of the chapters' ``bench.py`` figures (``make bench``; see ``tools/bench.py``).

Every figure is wall time (``time.perf_counter``) of a callable, summarized by the median of
several runs after a few untimed warm-up runs (first calls pay for allocations and lazy
initialization). Where two implementations are compared (the reference against PyTorch's), they
are timed *alternately*, one run of each in turn: a burst of load from other processes on a
shared machine then slows both alike instead of only whichever happened to be running, so their
ratio stays meaningful even when the absolute times do not. Benches usually run on one thread
(:func:`one_thread`), as the sandboxed grading child does.

Speed is measured here, never asserted: machines are noisy.

``torch`` and ``autograder.checks`` are imported by the functions that need them, so that
importing this module costs nothing.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autograder.checks import Check


def seconds(step: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of ``step()`` (its result is discarded)."""
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def median_seconds(step: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median seconds of ``repeats`` timed calls of ``step()``, after ``warmup`` untimed ones."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, not {repeats}")
    for _ in range(warmup):
        step()
    return statistics.median(seconds(step) for _ in range(repeats))


def in_turn(steps: Sequence[Callable[[], object]], repeats: int, warmup: int = 0) -> list[float]:
    """Median seconds of each of ``steps``, timed in turn: ``warmup`` untimed rounds, then
    ``repeats`` rounds that each time every step once, in order. Timing them in turn (rather
    than all runs of one, then all runs of the next) makes a burst of machine load slow every
    step alike, so that the steps' ratios are fair."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, not {repeats}")
    for _ in range(warmup):
        for step in steps:
            step()
    runs: list[list[float]] = [[] for _ in steps]
    for _ in range(repeats):
        for step, times in zip(steps, runs):
            times.append(seconds(step))
    return [statistics.median(times) for times in runs]


def side_by_side(
    first: Callable[[], object],
    second: Callable[[], object],
    repeats: int = 21,
    warmup: int = 3,
) -> tuple[float, float]:
    """(median seconds of ``first()``, median seconds of ``second()``), the two timed
    alternately (:func:`in_turn`) so that machine load affects both alike: the usual way to
    compare a reference implementation with PyTorch's."""
    first_s, second_s = in_turn((first, second), repeats, warmup)
    return first_s, second_s


def load_checks(checks_path: Path) -> list[Check]:
    """The hidden checks (``CHECKS``) defined by a chapter's ``checks.py``."""
    from autograder.checks import load_checks_namespace

    return load_checks_namespace(checks_path.read_text(), str(checks_path)).checks


def _discard(*_: object) -> None:
    """A ``save`` for ``run_check`` that keeps nothing: only the time is wanted."""


def run_against_reference(check: Check, reference: Any) -> None:
    """Runs every case of ``check`` against ``reference`` (a module) in this process, as the
    build does to record the expected outputs, discarding the outputs."""
    from autograder.checks import run_check

    run_check(check, reference, _discard)


def checks_against_reference_seconds(checks_path: Path, reference: Any, repeats: int = 3) -> float:
    """Median seconds (of ``repeats`` runs, no warm-up) of running every hidden check of
    ``checks_path`` on all its cases against the ``reference`` module in this process: it
    bounds the grading work of the chapter on a correct submission."""
    checks = load_checks(checks_path)

    def every_check() -> None:
        for check in checks:
            run_against_reference(check, reference)

    return median_seconds(every_check, repeats, warmup=0)


def hidden_checks_figure(checks_path: Path, reference: Any, repeats: int = 3) -> dict[str, str]:
    """The chapters' figure for :func:`checks_against_reference_seconds`, in milliseconds:
    ``{"hidden checks against the reference (all cases)": "123 ms"}``."""
    milliseconds = 1e3 * checks_against_reference_seconds(checks_path, reference, repeats)
    return {"hidden checks against the reference (all cases)": f"{milliseconds:.0f} ms"}


def check_seconds_against_reference(
    checks_path: Path, reference: Any, repeats: int = 3, warmup: int = 1
) -> list[tuple[Check, float]]:
    """(check, median seconds of running it on all its cases against ``reference``) for every
    hidden check of ``checks_path``, each after ``warmup`` untimed runs: what each check needs
    of its time limit (``check.timeout_s``) on a correct submission."""
    return [
        (check, median_seconds(partial(run_against_reference, check, reference), repeats, warmup))
        for check in load_checks(checks_path)
    ]


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Runs the body with ``torch.set_num_threads(count)`` and restores the previous thread
    count on the way out, even if the body raises."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def one_thread() -> Iterator[None]:
    """``torch_threads(1)``: one CPU thread, as the sandboxed grading child runs."""
    with torch_threads(1):
        yield
