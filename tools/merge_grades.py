"""``make merge-grades``: one class's results from the shards that graded it, merged.

    python -m tools.merge_grades --out DIR SHARD_OUT [SHARD_OUT ...]

Each ``SHARD_OUT`` is the ``OUT`` folder of one ``make grade-all ... SHARD=i/N`` (on one machine
of a cluster: a Kubernetes Indexed Job's pod, a Slurm array task). Every results file carries
the submission's name, its students and the digest of the grader zip that graded it
(``extra_data.batch``), so the merge needs nothing else: it copies every ``results/*.json``
into ``DIR/results/`` and writes ``DIR/scores.csv`` and ``DIR/report.html`` exactly as one
``make grade-all`` of the whole class would (same rows in the same order: submissions sorted by
name, as the batch discovers them).

It refuses, with a message, shards graded by different grader zips or chapters, a submission
present in two shards with different results, and folders without results.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tools.grade_all import (
    Submission,
    _write_json,
    item_names,
    problems,
    write_report,
    write_scores_csv,
)


class MergeError(ValueError):
    """The shards cannot be merged into one class; the message says why."""


def collect(shard_dirs: list[Path]) -> tuple[str, list[Submission], dict[str, dict]]:
    """(chapter, submissions sorted as a batch discovers them, results by key)."""
    results: dict[str, dict] = {}
    found_in: dict[str, Path] = {}
    stamps: set[tuple[str, str]] = set()
    for shard in shard_dirs:
        files = sorted((shard / "results").glob("*.json"))
        if not files:
            raise MergeError(f"{shard}: no results/*.json (is it the OUT of a grade-all run?)")
        for path in files:
            try:
                result = json.loads(path.read_text())
            except ValueError as exc:
                raise MergeError(f"{path}: not valid JSON ({exc})") from exc
            extra = result.get("extra_data", {}) if isinstance(result, dict) else {}
            batch = extra.get("batch") or {}
            if not batch.get("grader_sha256") or not batch.get("submission"):
                raise MergeError(f"{path}: no batch stamp (not written by make grade-all)")
            stamps.add((str(extra.get("chapter")), batch["grader_sha256"]))
            key = path.stem
            if key in results and results[key] != result:
                raise MergeError(
                    f"{key} was graded in {found_in[key]} and in {shard} with different "
                    f"results; grade each submission in one shard only (same N everywhere)"
                )
            results[key], found_in[key] = result, shard
    if len(stamps) != 1:
        described = ", ".join(f"{chapter} (zip {digest[:12]})" for chapter, digest in stamps)
        raise MergeError(f"the shards were graded by different graders: {described}")
    chapter = next(iter(stamps))[0]
    submissions = [
        Submission(
            key,
            Path(result["extra_data"]["batch"]["submission"]),
            tuple(result["extra_data"]["batch"].get("students") or ()),
        )
        for key, result in results.items()
    ]
    submissions.sort(key=lambda submission: (submission.path.name, submission.key))
    return chapter, submissions, results


def merge(shard_dirs: list[Path], out: Path) -> tuple[str, list[Submission], dict[str, dict]]:
    """Writes ``out``'s results, scores.csv and report.html; returns what ``collect`` found."""
    chapter, submissions, results = collect(shard_dirs)
    (out / "results").mkdir(parents=True, exist_ok=True)
    for key, result in results.items():
        _write_json(out / "results" / f"{key}.json", result)
    items = item_names(results[s.key] for s in submissions)
    write_scores_csv(out / "scores.csv", submissions, results, items)
    write_report(out / "report.html", chapter, submissions, results, items)
    return chapter, submissions, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("shards", type=Path, nargs="+", help="the OUT folder of each shard")
    args = parser.parse_args(argv)
    missing = [str(shard) for shard in args.shards if not shard.is_dir()]
    if missing:
        print(f"not a folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        chapter, submissions, results = merge(args.shards, args.out)
    except MergeError as exc:
        print(f"cannot merge: {exc}", file=sys.stderr)
        return 2
    scores = [results[s.key]["score"] for s in submissions]
    flagged = sum(1 for s in submissions if problems(results[s.key]))
    print(
        f"{chapter}: {len(submissions)} submissions from {len(args.shards)} shards; mean score "
        f"{sum(scores) / len(scores):.2f}; {flagged} need a look"
    )
    print(f"scores: {args.out / 'scores.csv'}\nreport: {args.out / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
