"""``make grade``: grades one submission exactly as Gradescope will, and summarises it.

    python -m tools.grade_local --chapter 01_mlp_backprop --submission path [--results path]

A whole class (in parallel, resumable, with a report) is ``make grade-all`` (tools/grade_all.py).

Uses the built grader zip (``dist/autograder/<chapter>-autograder.zip``), unpacked as
Gradescope's source folder, and its own entry point; writes results.json and prints a
per-question summary.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from autograder.confinement import host_files_warning
from autograder.results import summary
from tools.build import DIST, grade_with_zip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapter", required=True)
    parser.add_argument(
        "--submission", type=Path, required=True, help="one submission (file or folder)"
    )
    parser.add_argument("--results", type=Path, default=Path("results.json"))
    args = parser.parse_args(argv)
    grader_zip = DIST / "autograder" / f"{args.chapter}-autograder.zip"
    if not grader_zip.is_file():
        known = sorted(
            p.name.removesuffix("-autograder.zip")
            for p in (DIST / "autograder").glob("*-autograder.zip")
        )
        print(
            f"no grader zip for chapter {args.chapter!r}; run `make` first "
            f"(built: {', '.join(known) or 'none'})",
            file=sys.stderr,
        )
        return 2
    if not args.submission.exists():
        print(f"no such submission: {args.submission}", file=sys.stderr)
        return 2
    warning = host_files_warning()
    if warning:
        print(warning, file=sys.stderr)
    results = grade_with_zip(grader_zip, args.submission.resolve())
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1))
    print(f"{args.chapter}: {args.submission}")
    print(summary(results))
    notes = results["output"].split("\n", 1)
    if len(notes) > 1 and notes[1].strip():
        print(notes[1].strip())
    print(f"results.json written to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
