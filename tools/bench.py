"""``make bench``: speed and memory, measured (never asserted in tests: machines are noisy).

For every chapter: the wall time to grade the solution notebook through the grader zip's
entry point, exactly as Gradescope runs it (median of several runs); the peak resident memory
of the whole grading run, judge and sandboxed child together, sampled every 10 ms; and the
solution notebook's full execution time in a Jupyter kernel. Then each chapter's own figures
(``assignments/<chapter>/bench.py``, a ``bench() -> dict[str, str]`` function, if present) and
the hostile-submission suite's timings (``tests/hostile/bench_suite.py``, if present).

    python -m tools.bench [--runs N] [--skip-notebooks] [--skip-no-bytecode] [CHAPTER ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

from tools.build import DIST, REPO, chapters
from tools.chapter_package import load_chapter_module

# Gradings that share a sandbox user take turns (see autograder.sandbox._exclusive_use_of): a
# user of its own keeps `make bench` from timing the wait for other gradings on the machine.
BENCH_SANDBOX_USER = os.environ.get("KIT_SANDBOX_USER") or "kitsandbox-bench"


def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants right now (the kernel's children
    lists: cheap enough to sample every 10 ms without taking a core from the grading)."""
    from autograder.sandbox import _resident_bytes, _tree

    return _resident_bytes(_tree(root))


class PeakRss:
    """The peak resident memory of a process tree, sampled in a thread while inside:
    ``with PeakRss(pid) as memory: ...``, then ``memory.peak`` (bytes). ``proportional``:
    the sum of proportional set sizes instead (pages shared between the tree's processes
    counted once in all, as a container's memory limit sees them; ~5 ms per process, so
    sample it less often)."""

    def __init__(self, root: int, every_s: float = 0.01, proportional: bool = False):
        self.root, self.every_s, self.peak = root, every_s, 0
        self.proportional = proportional
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        from autograder.sandbox import _proportional_bytes, _tree

        while not self._stop.is_set():
            now = (
                _proportional_bytes(_tree(self.root)) if self.proportional else _tree_rss(self.root)
            )
            self.peak = max(self.peak, now)
            time.sleep(self.every_s)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()


def grade_once(
    grader_zip: Path, submission: Path, bytecode: bool = True, confine_files: bool = True
) -> tuple[float, int, dict]:
    """(seconds, peak bytes of judge + child, results) for one Gradescope-style grading;
    ``bytecode=False`` makes the child ignore precompiled ``.pyc`` files (what a Python
    environment installed without them, such as uv's default, costs on every grading)."""
    with tempfile.TemporaryDirectory(prefix="kit-bench-") as tmp:
        source = Path(tmp) / "source"
        with zipfile.ZipFile(grader_zip) as archive:
            archive.extractall(source)
        results = Path(tmp) / "results.json"
        started = time.monotonic()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "autograder.gradescope",
                "--source",
                str(source),
                "--submission",
                str(submission),
                "--results",
                str(results),
                "--quiet",
            ],
            cwd=source,
            env=dict(
                os.environ,
                KIT_CHILD_BYTECODE="on" if bytecode else "off",
                KIT_CONFINE_FILES="on" if confine_files else "off",
                KIT_SANDBOX_USER=BENCH_SANDBOX_USER,
            ),
        )
        with PeakRss(process.pid) as memory:
            process.wait()
            seconds = time.monotonic() - started
        return seconds, memory.peak, json.loads(results.read_text())


def notebook_seconds(chapter: str) -> float:
    from tests.test_notebooks import execute

    with tempfile.TemporaryDirectory(prefix="kit-nb-") as tmp:
        folder = Path(tmp) / chapter
        shutil.copytree(DIST / "student" / chapter, folder)
        notebook = folder / f"{chapter}-solution.ipynb"
        shutil.copy(DIST / "solutions" / notebook.name, notebook)
        _, seconds = execute(notebook, allow_errors=False)
        return seconds


def chapter_hook(chapter: str) -> dict[str, str]:
    path = REPO / "assignments" / chapter / "bench.py"
    if not path.exists():
        return {}
    return load_chapter_module(chapter, "bench.py").bench()


def _median_child_timing(runs: list[tuple[float, int, dict]], name: str) -> float:
    """Median of one of the child's own start-up timings (seconds), e.g. ``import_torch_s``
    (its ``import numpy, torch``) or ``drop_and_confine_s``."""
    values = [
        results.get("extra_data", {}).get("child_timings", {}).get(name) for _, _, results in runs
    ]
    values = [value for value in values if isinstance(value, float)]
    return statistics.median(values) if values else float("nan")


def confinement_cost(runs: int) -> None:
    """What the file-system confinement (Landlock, private /proc) adds to one grading:
    chapter 01's solution graded with and without it, in turn, ``runs`` times each."""
    chapter = "01_mlp_backprop"
    grader_zip = DIST / "autograder" / f"{chapter}-autograder.zip"
    solution = DIST / "solutions" / f"{chapter}-solution.ipynb"
    confined: list[tuple[float, int, dict]] = []
    open_: list[tuple[float, int, dict]] = []
    for _ in range(runs):
        confined.append(grade_once(grader_zip, solution, confine_files=True))
        open_.append(grade_once(grader_zip, solution, confine_files=False))
    with_s = statistics.median(seconds for seconds, _, _ in confined)
    without_s = statistics.median(seconds for seconds, _, _ in open_)
    step_with = _median_child_timing(confined, "drop_and_confine_s")
    step_without = _median_child_timing(open_, "drop_and_confine_s")
    mode = confined[0][2].get("extra_data", {}).get("protections", {}).get("files", "?")
    print(f"\n== file-system confinement ({chapter}, {runs} gradings each, in turn)")
    print(f"  confinement: {mode}")
    print(
        f"  child's privilege drop + confinement: median {step_with * 1000:.1f} ms "
        f"(without confinement {step_without * 1000:.1f} ms; goal: < 50 ms added)"
    )
    print(
        f"  whole grading: median {with_s:.2f} s confined, {without_s:.2f} s without "
        f"(difference {1000 * (with_s - without_s):+.0f} ms)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-notebooks", action="store_true")
    parser.add_argument(
        "--class-size", type=int, default=1000, help="submissions in the make grade-all bench"
    )
    parser.add_argument(
        "--skip-no-bytecode",
        action="store_true",
        help="do not time gradings without precompiled bytecode",
    )
    parser.add_argument("chapters", nargs="*")
    args = parser.parse_args(argv)
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; grading "
        f"runs per chapter: {args.runs}; sandbox user {BENCH_SANDBOX_USER} (as root)"
    )
    for chapter in args.chapters or chapters():
        grader_zip = DIST / "autograder" / f"{chapter}-autograder.zip"
        solution = DIST / "solutions" / f"{chapter}-solution.ipynb"
        runs = [grade_once(grader_zip, solution) for _ in range(args.runs)]
        times = [seconds for seconds, _, _ in runs]
        peaks = [peak for _, peak, _ in runs]
        scores = {results["score"] for _, _, results in runs}
        print(f"\n== {chapter}")
        print(
            f"  grading wall time per submission: median {statistics.median(times):.2f} s "
            f"(min {min(times):.2f}, max {max(times):.2f}; goal < 5 s; bytecode "
            f"precompiled)"
        )
        print(
            f"  child's `import torch` (numpy included): median "
            f"{_median_child_timing(runs, 'import_torch_s'):.2f} s"
        )
        if not args.skip_no_bytecode:
            cold = [grade_once(grader_zip, solution, bytecode=False) for _ in range(args.runs)]
            print(
                f"  without precompiled bytecode: grading median "
                f"{statistics.median(seconds for seconds, _, _ in cold):.2f} s, "
                f"child's `import torch` median "
                f"{_median_child_timing(cold, 'import_torch_s'):.2f} s"
            )
        print(
            f"  peak RSS, judge + child: max {max(peaks) / 2**20:.0f} MiB "
            f"(median {statistics.median(peaks) / 2**20:.0f} MiB; goal < 768 MiB)"
        )
        print(f"  solution score on every run: {sorted(scores)}")
        if not args.skip_notebooks:
            print(f"  solution notebook full execution: {notebook_seconds(chapter):.1f} s")
        for name, value in chapter_hook(chapter).items():
            print(f"  {name}: {value}")
    if not args.chapters or "01_mlp_backprop" in args.chapters:
        confinement_cost(max(args.runs, 7))
    print("\n== make grade-all: a class of chapter-01 submissions")
    sys.stdout.flush()
    subprocess.run(
        [sys.executable, "-m", "tools.bench_class", "--count", str(args.class_size)],
        cwd=REPO,
        check=False,
    )
    suite = REPO / "tests" / "hostile" / "bench_suite.py"
    if suite.exists():
        print("\n== hostile-submission suite")
        sys.stdout.flush()
        subprocess.run([sys.executable, "-m", "tests.hostile.bench_suite"], cwd=REPO, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
