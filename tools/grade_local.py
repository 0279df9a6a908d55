"""``make grade``: grades one submission exactly as Gradescope will, and summarises it.

    python -m tools.grade_local --chapter 01_mlp_backprop --submission path [--results path]
    python -m tools.grade_local --chapter 01_mlp_backprop --each folder [--results-dir dir]

``--each`` grades every file or subfolder of ``folder`` as one student's submission, writes
one results.json per student and a ``scores.csv`` beside them.

Uses the built grader zip (``dist/autograder/<chapter>-autograder.zip``), unpacked as
Gradescope's source folder, and its own entry point; writes results.json and prints a
per-question summary.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from autograder.results import summary
from tools.build import DIST, grade_with_zip


def grade_each(grader_zip: Path, chapter: str, folder: Path, out: Path) -> int:
    """Grades every entry of ``folder``; writes ``out/<entry>.json`` and ``out/scores.csv``."""
    import csv

    if not folder.is_dir():
        print(f"not a folder: {folder}", file=sys.stderr)
        return 2
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for entry in entries:
        results = grade_with_zip(grader_zip, entry.resolve())
        (out / f"{entry.stem}.json").write_text(json.dumps(results, indent=1))
        maximum = results.get("extra_data", {}).get("max_score", 0)
        rows.append({"submission": entry.name, "score": results["score"], "max_score": maximum,
                     "failed_items": "; ".join(t["name"] for t in results["tests"]
                                               if t["status"] != "passed")})
        print(f"{entry.name:<40} {results['score']:g} / {maximum:g}")
    with open(out / "scores.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["submission", "score", "max_score",
                                                    "failed_items"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"{chapter}: {len(rows)} submissions graded; scores in {out / 'scores.csv'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapter", required=True)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--submission", type=Path, help="one submission (file or folder)")
    target.add_argument("--each", type=Path, help="a folder of submissions, one per entry")
    parser.add_argument("--results", type=Path, default=Path("results.json"))
    parser.add_argument("--results-dir", type=Path, default=Path("graded"))
    args = parser.parse_args(argv)
    grader_zip = DIST / "autograder" / f"{args.chapter}-autograder.zip"
    if not grader_zip.is_file():
        known = sorted(p.name.removesuffix("-autograder.zip")
                       for p in (DIST / "autograder").glob("*-autograder.zip"))
        print(f"no grader zip for chapter {args.chapter!r}; run `make` first "
              f"(built: {', '.join(known) or 'none'})", file=sys.stderr)
        return 2
    if args.each is not None:
        return grade_each(grader_zip, args.chapter, args.each, args.results_dir)
    if not args.submission.exists():
        print(f"no such submission: {args.submission}", file=sys.stderr)
        return 2
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
