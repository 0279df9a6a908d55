"""Times the hostile suite: every case graded once (and the fault runs with ``--faults``).

    python -m tests.hostile.bench_suite [--faults] [--workers N]

Prints each run's wall time, the total wall time, the CPU time all gradings used (what a
2-core machine must fit into its two cores) and the worst single case, against the issue's
bounds: no case above the per-item deadline times the number of items, the whole suite
under 3 minutes on a 2-core machine.
"""
from __future__ import annotations

import argparse
import sys
import time

from tests.hostile.cases import CASES
from tests.hostile.harness import HostileGrader
from tests.hostile.suite import PER_ITEM_DEADLINE_S, Suite, mode_line
from tests.hostile.test_fault_injection import FAULT_POINTS, FAULTED_SUBMISSION


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", action="store_true", help="also time the 10 fault runs")
    parser.add_argument("--workers", type=int, default=None, help="parallel gradings")
    args = parser.parse_args(argv)
    grader = HostileGrader(workers=args.workers)
    suite = Suite(grader)
    print(mode_line())
    began = time.monotonic()
    try:
        suite.schedule(CASES, [(point, FAULTED_SUBMISSION) for point in FAULT_POINTS]
                       if args.faults else [])
        runs = [run for case in CASES for run in suite.runs(case)]
        if args.faults:
            runs += [suite.fault_run(point, FAULTED_SUBMISSION) for point in FAULT_POINTS]
    finally:
        grader.close()
    wall = time.monotonic() - began
    print("   wall     CPU  case")
    for run in sorted(runs, key=lambda run: -run.seconds):
        print(f"  {run.seconds:5.1f} s {run.cpu_seconds:5.1f} s  {run.name}")
    worst = max(runs, key=lambda run: run.seconds)
    bound = PER_ITEM_DEADLINE_S * len(suite.points)
    cpu = sum(run.cpu_seconds for run in runs)
    print(f"{len(runs)} gradings on {grader.workers} workers: {wall:.1f} s wall "
          f"({wall / 60:.2f} min), {cpu:.1f} s CPU (at least {cpu / 2:.0f} s on 2 idle cores; "
          f"goal: the whole suite under 3 min on 2 cores)")
    print(f"worst single case: {worst.name} {worst.seconds:.1f} s (bound: {bound:.0f} s = "
          f"{PER_ITEM_DEADLINE_S:g} s per item x {len(suite.points)} items)")
    return 0 if worst.seconds < bound else 1


if __name__ == "__main__":
    sys.exit(main())
