"""Entry point run by Gradescope (``run_autograder``) and by ``make grade``.

    python -m autograder.gradescope [--base DIR] [--source DIR] [--submission PATH]
                                    [--results PATH]

Defaults follow Gradescope's layout under the base folder (``--base``, else the environment
variable ``KIT_AUTOGRADER_BASE``, else ``/autograder``): the zip unpacked in ``source/``, the
submission in ``submission/``, results in ``results/results.json``. As root it first locks
the grader's own files, the results folder and the submission metadata
(``<base>/submission_metadata.json``, or the one beside ``--source``) away from the sandbox
user. A results.json is written whatever happens: a provisional one (score 0, "grading did
not finish") before grading starts, so that even a judge killed from outside leaves a valid
file, then the real one, atomically, when grading ends or the judge itself fails.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import traceback
from pathlib import Path

from autograder.chapter import ChapterPackage
from autograder.judge import grade
from autograder.results import summary
from autograder.sandbox import ForkServer, SandboxConfig, adopt_orphans

DEFAULT_BASE = Path("/autograder")


def lock_down(source: Path, results_dir: Path, base: Path = DEFAULT_BASE) -> list[str]:
    """Makes the grader's files, results and student metadata unreadable to other users."""
    done = []
    for path in (
        source,
        results_dir,
        base / "submission_metadata.json",
        source.resolve().parent / "submission_metadata.json",
        base / "results",
    ):
        if not path.exists() or str(path) in done:
            continue
        if path.is_dir() and (_is_shared_folder(path) or path.resolve() == Path("/")):
            continue  # e.g. --results /tmp/r.json: never lock a folder others rely on
        os.chmod(path, 0o700 if path.is_dir() else 0o600)
        done.append(str(path))
    return done


def _is_shared_folder(path: Path) -> bool:
    """A sticky or world-writable folder (``/tmp``, ``/var/tmp``, ``/dev/shm``...)."""
    mode = path.stat().st_mode
    return bool(mode & (stat.S_ISVTX | stat.S_IWOTH))


def _fallback_results(message: str) -> dict:
    return {
        "score": 0.0,
        "output": message,
        "output_format": "text",
        "stdout_visibility": "hidden",
        "visibility": "visible",
        "tests": [],
        "execution_time": 0.0,
    }


def _write_results(path: Path, results: dict) -> None:
    """Replaces ``path`` atomically: a reader never sees a half-written results.json."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(results, indent=1))
    os.replace(temporary, path)


def grade_one(
    source: Path,
    submission: Path,
    results_path: Path,
    base: Path,
    config: SandboxConfig | None = None,
) -> dict:
    """Grades one submission and writes its results.json (always, even if the grader fails)."""
    results_path.parent.mkdir(parents=True, exist_ok=True)
    _write_results(
        results_path,
        _fallback_results(
            "Grading did not finish (the grader was stopped before the end). Please tell your "
            "instructor."
        ),
    )
    try:
        locked = lock_down(source, results_path.parent, base) if os.geteuid() == 0 else []
        package = ChapterPackage.load(source / "chapter")
        results = grade(package, submission, config)
        results["extra_data"]["locked_down"] = locked
    except Exception:  # noqa: BLE001 - the student must still get a valid results.json
        traceback.print_exc()
        results = _fallback_results(
            "The grader itself failed on this submission; your "
            "instructor has been shown the error. Please tell them."
        )
    try:
        _write_results(results_path, results)
    except OSError:  # e.g. the disk is full: the provisional results.json stays
        traceback.print_exc()
    return results


def serve(source: Path, base: Path) -> int:
    """Batch mode (``--serve``, used by ``make grade-all``): grades one submission per line
    of stdin, ``{"submission": PATH, "results": PATH}``, each exactly as a single grading
    would, and answers each with one line, ``{"done": RESULTS_PATH}``, once its results.json
    is written. As root, children are forked from one fork server (torch imported once per
    worker, see ``docs/security_model.md``); otherwise each child is a fresh process, since a
    child that runs as the grader's own user could tamper with a long-lived server."""
    config = SandboxConfig()
    server = None
    if os.geteuid() == 0 and config.drop_privileges:
        try:
            server = ForkServer(config)
        except RuntimeError as exc:  # e.g. a library left a thread running after its import
            print(f"warning: {exc}; every child will be a fresh process", file=sys.stderr)
    config.fork_server = server
    try:
        for line in sys.stdin:
            request = json.loads(line)
            results_path = Path(request["results"])
            grade_one(source, Path(request["submission"]), results_path, base, config)
            print(json.dumps({"done": str(results_path)}), flush=True)
    finally:
        if server is not None:
            server.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base",
        default=os.environ.get("KIT_AUTOGRADER_BASE") or str(DEFAULT_BASE),
        help="Gradescope's /autograder folder",
    )
    parser.add_argument("--source", help="default: <base>/source")
    parser.add_argument("--submission", help="default: <base>/submission")
    parser.add_argument("--results", help="default: <base>/results/results.json")
    parser.add_argument("--quiet", action="store_true", help="do not print the summary")
    parser.add_argument(
        "--serve",
        action="store_true",
        help="batch mode: grade the submissions named on stdin, one JSON request per line",
    )
    args = parser.parse_args(argv)
    base = Path(args.base)
    args.source = args.source or str(base / "source")
    args.submission = args.submission or str(base / "submission")
    results_path = Path(args.results or base / "results" / "results.json")
    adopt_orphans()  # this process only grades: whatever outlives the child is re-parented here
    if args.serve:
        return serve(Path(args.source), base)
    results = grade_one(Path(args.source), Path(args.submission), results_path, base)
    if not args.quiet:
        protections = results.get("extra_data", {}).get("protections") or {}
        if str(protections.get("mode", "")).startswith("DEGRADED"):
            print(f"WARNING: {protections['mode']}", file=sys.stderr)
        print(f"Protections: {json.dumps(protections)}")
        if results.get("tests"):
            print(summary(results))
        else:
            print(results["output"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
