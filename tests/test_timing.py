"""``tools/timing.py``, the timing helpers of the chapters' ``bench.py``: what they call, in which
order and how often, never how fast anything is (the only timing asserted is a sleep's lower
bound and an ordering with a margin of several milliseconds)."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tools import timing

SLEEP_S = 0.01


def _nothing() -> None:
    return None


def _sleep() -> None:
    time.sleep(SLEEP_S)


def test_seconds_times_the_call() -> None:
    assert timing.seconds(_sleep) >= SLEEP_S


@pytest.mark.parametrize(("repeats", "warmup"), [(1, 0), (5, 1), (4, 3)])
def test_median_seconds_calls_warmup_then_repeats(repeats: int, warmup: int) -> None:
    calls: list[None] = []
    timing.median_seconds(lambda: calls.append(None), repeats, warmup)
    assert len(calls) == warmup + repeats


def test_median_seconds_does_not_time_the_warmup() -> None:
    calls: list[None] = []

    def slow_at_first() -> None:
        calls.append(None)
        if len(calls) <= 2:
            time.sleep(5 * SLEEP_S)

    assert timing.median_seconds(slow_at_first, repeats=5, warmup=2) < SLEEP_S


@pytest.mark.parametrize("function", [timing.median_seconds, timing.in_turn])
def test_no_repeats_is_an_error(function: Callable[..., object]) -> None:
    step = _nothing if function is timing.median_seconds else [_nothing]
    with pytest.raises(ValueError, match="repeats"):
        function(step, 0)


@pytest.mark.parametrize("slow_first", [True, False])
def test_side_by_side_returns_medians_in_argument_order(slow_first: bool) -> None:
    first, second = (_sleep, _nothing) if slow_first else (_nothing, _sleep)
    first_s, second_s = timing.side_by_side(first, second, repeats=5, warmup=1)
    slow_s, fast_s = (first_s, second_s) if slow_first else (second_s, first_s)
    assert slow_s >= SLEEP_S
    assert fast_s < SLEEP_S / 2


@pytest.mark.parametrize(("repeats", "warmup"), [(3, 0), (2, 3)])
def test_in_turn_alternates(repeats: int, warmup: int) -> None:
    order: list[str] = []
    steps = [lambda name=name: order.append(name) for name in "abc"]
    medians = timing.in_turn(steps, repeats, warmup)
    assert len(medians) == 3
    assert order == list("abc") * (warmup + repeats)


def test_side_by_side_alternates() -> None:
    order: list[str] = []
    timing.side_by_side(lambda: order.append("a"), lambda: order.append("b"), 4, warmup=2)
    assert order == ["a", "b"] * 6


@pytest.fixture
def three_threads() -> Iterator[None]:
    """torch on 3 threads (not 1, so that restoring is observable), then as it was."""
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("manager", "inside"),
    [(timing.one_thread, 1), (lambda: timing.torch_threads(2), 2)],
    ids=["one_thread", "torch_threads(2)"],
)
@pytest.mark.usefixtures("three_threads")
def test_thread_count_is_set_then_restored_even_on_error(
    manager: Callable[[], AbstractContextManager[None]], inside: int
) -> None:
    with manager():
        assert torch.get_num_threads() == inside
    assert torch.get_num_threads() == 3
    with pytest.raises(RuntimeError, match="boom"), manager():
        assert torch.get_num_threads() == inside
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 3


FAKE_CHECKS = textwrap.dedent(
    """
    from autograder.checks import Check, Output

    def exercise(api, case, rng, out):
        out["y"] = api.tick(case["n"])

    CHECKS = [
        Check("first", "q1", ("tick",), exercise, ({"n": 1}, {"n": 2}), (Output("y"),), 10.0),
        Check("second", "q1", ("tick",), exercise, ({"n": 3},), (Output("y"),), 20.0),
    ]
    """
)


@pytest.fixture
def fake_chapter(tmp_path: Path) -> tuple[Path, SimpleNamespace, list[int]]:
    """(a checks.py of two checks with 2 and 1 cases, a reference counting its calls, the
    calls: the case number of each)."""
    path = tmp_path / "checks.py"
    path.write_text(FAKE_CHECKS)
    calls: list[int] = []

    def tick(n: int) -> torch.Tensor:
        calls.append(n)
        return torch.tensor([float(n)])

    return path, SimpleNamespace(tick=tick), calls


@pytest.mark.parametrize("repeats", [1, 3])
def test_checks_against_reference_runs_every_case_of_every_check(
    fake_chapter: tuple[Path, SimpleNamespace, list[int]], repeats: int
) -> None:
    path, reference, calls = fake_chapter
    seconds = timing.checks_against_reference_seconds(path, reference, repeats)
    assert seconds >= 0
    assert calls == [1, 2, 3] * repeats


def test_check_seconds_against_reference_times_each_check_after_warmup(
    fake_chapter: tuple[Path, SimpleNamespace, list[int]],
) -> None:
    path, reference, calls = fake_chapter
    figures = timing.check_seconds_against_reference(path, reference, repeats=2, warmup=1)
    assert [(check.name, check.timeout_s) for check, _ in figures] == [
        ("first", 10.0),
        ("second", 20.0),
    ]
    assert all(seconds >= 0 for _, seconds in figures)
    assert calls == [1, 2] * 3 + [3] * 3


def test_hidden_checks_figure_is_whole_milliseconds(
    fake_chapter: tuple[Path, SimpleNamespace, list[int]],
) -> None:
    path, reference, calls = fake_chapter
    figure = timing.hidden_checks_figure(path, reference, repeats=2)
    assert list(figure) == ["hidden checks against the reference (all cases)"]
    number, unit = figure["hidden checks against the reference (all cases)"].split()
    assert number.isdigit() and unit == "ms"
    assert calls == [1, 2, 3] * 2
