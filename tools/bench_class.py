"""``make bench``, batch part: a realistic class of chapter-01 submissions graded by
``make grade-all`` (tools.grade_all), with wall time, throughput and peak memory.

    python -m tools.bench_class [--count 1000] [--jobs N]

The class mixes full solutions, untouched stubs, every bug-zoo mutant in turn, and a few hostile
submissions (an endless loop in one method, a memory bomb), in that proportion. Beside it, the
latency of one `make grade` (a fresh grading process per submission, median of 5). Peak memory
is that of the whole process tree (this process, its workers' judges, their fork servers and
sandboxed children), as summed resident memory every 20 ms and as summed proportional memory
(shared pages counted once) every 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.conftest import notebook_with_extra_cell
from tools import grade_all
from tools.bench import PeakRss, grade_once
from tools.build import DIST
from tools.zoo import load_bugs

CHAPTER = "01_mlp_backprop"
ENDLESS_LOOP = """
class Tanh(Tanh):
    def forward(self, x):
        while True:
            pass
"""
MEMORY_BOMB = """
class ReLU(ReLU):
    def forward(self, x):
        hoard = []
        while True:
            hoard.append(torch.ones(10 * 2**20, dtype=torch.uint8))
"""


def make_class(folder: Path, count: int) -> Counter:
    """Writes ``count`` submissions into ``folder``; returns the mix."""
    solution = (DIST / "solutions" / f"{CHAPTER}-solution.ipynb").read_bytes()
    stub = (DIST / "student" / CHAPTER / f"{CHAPTER}.ipynb").read_bytes()
    templates = {}
    for bug in load_bugs(CHAPTER):
        templates[f"mutant: {bug.name}"] = notebook_with_extra_cell(
            CHAPTER, bug.code, folder / "template.ipynb"
        ).read_bytes()
    for name, code in (
        ("hostile: endless loop", ENDLESS_LOOP),
        ("hostile: memory bomb", MEMORY_BOMB),
    ):
        templates[name] = notebook_with_extra_cell(
            CHAPTER, code, folder / "template.ipynb"
        ).read_bytes()
    (folder / "template.ipynb").unlink()
    mutants = sorted(k for k in templates if k.startswith("mutant"))
    mix: Counter = Counter()
    for index in range(count):
        if index % 250 == 7:
            kind = "hostile: endless loop"
        elif index % 250 == 11:
            kind = "hostile: memory bomb"
        elif index % 4 == 0:
            kind = "solution"
        elif index % 4 == 1:
            kind = "stub"
        else:
            kind = mutants[index % len(mutants)]
        data = {"solution": solution, "stub": stub}.get(kind) or templates[kind]
        (folder / f"student{index:04d}.ipynb").write_bytes(data)
        mix["mutant" if kind.startswith("mutant") else kind] += 1
    return mix


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    grader_zip = DIST / "autograder" / f"{CHAPTER}-autograder.zip"
    solution = DIST / "solutions" / f"{CHAPTER}-solution.ipynb"
    alone = [grade_once(grader_zip, solution)[0] for _ in range(5)]
    with tempfile.TemporaryDirectory(prefix="kit-class-") as tmp:
        folder = Path(tmp) / "class"
        folder.mkdir()
        mix = make_class(folder, args.count)
        began = time.perf_counter()
        with (
            PeakRss(os.getpid(), every_s=0.02) as memory,
            PeakRss(os.getpid(), every_s=0.5, proportional=True) as proportional,
        ):
            results = grade_all.grade_batch(
                CHAPTER,
                grade_all.discover(folder),
                Path(tmp) / "out",
                jobs=args.jobs,
                progress=False,
            )
        seconds = time.perf_counter() - began
    load = os.getloadavg()
    flagged = Counter(label for r in results.values() for label in grade_all.problems(r))
    per_submission = seconds * args.jobs / max(len(results), 1)
    single = statistics.median(alone)
    print(f"  class of {args.count} ({', '.join(f'{n} {k}' for k, n in sorted(mix.items()))})")
    print(
        f"  graded {len(results)} with {args.jobs} workers on {os.cpu_count()} cores "
        f"(load average now {load[0]:.1f}): {seconds:.0f} s wall, "
        f"{len(results) / seconds:.2f} submissions/s (goal: 1,000 in 600 s)"
    )
    print(
        f"  per submission: {per_submission:.2f} s of a worker in the batch vs "
        f"{single:.2f} s median for `make grade` one at a time, side by side "
        f"({single / per_submission:.1f}x)"
    )
    print(f"  flagged for a look: {json.dumps(dict(sorted(flagged.items())))}")
    print(
        f"  peak memory of the whole batch (all workers): {proportional.peak / 2**20:.0f} MiB "
        f"PSS (shared pages counted once; sampled every 0.5 s), "
        f"{memory.peak / 2**20:.0f} MiB summed RSS (shared pages once per process)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
