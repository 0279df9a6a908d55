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
    grader_zip: Path, submission: Path, bytecode: bool = True
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


def _median_import(runs: list[tuple[float, int, dict]]) -> float:
    """Median of the child's own measure of its ``import numpy, torch`` (seconds)."""
    values = [
        results.get("extra_data", {}).get("child_timings", {}).get("import_torch_s")
        for _, _, results in runs
    ]
    values = [value for value in values if isinstance(value, float)]
    return statistics.median(values) if values else float("nan")


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
        print(f"  child's `import torch` (numpy included): median {_median_import(runs):.2f} s")
        if not args.skip_no_bytecode:
            cold = [grade_once(grader_zip, solution, bytecode=False) for _ in range(args.runs)]
            print(
                f"  without precompiled bytecode: grading median "
                f"{statistics.median(seconds for seconds, _, _ in cold):.2f} s, "
                f"child's `import torch` median {_median_import(cold):.2f} s"
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
