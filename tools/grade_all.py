"""``make grade-all``: grades a whole class locally, in parallel and resumably, with a report.

    python -m tools.grade_all --chapter CH --submissions DIR [--out DIR] [--jobs N] [--force]

``DIR`` is either Gradescope's "Export Submissions" archive, unpacked (one folder per submission
and a ``submission_metadata.yml`` naming the submitters), or a plain folder in which every
``.ipynb``/``.zip``/``.py`` file or subfolder is one submission, keyed by its name.

Each submission is graded exactly as Gradescope grades it: the grader zip is unpacked once, and
``--jobs`` workers (default: one per core) each run its entry point in batch mode
(``python -m autograder.gradescope --serve``: the same judge, sandbox and limits), one submission
at a time. As root each worker forks the sandboxed children from a fork server that imported
torch once, and has its own sandbox user (``kitsandbox-w1``, ``-w2``, ...), so gradings never
wait for each other's user lock and never share files or processes.

Nothing is lost, nothing is redone: each result is written, atomically, to
``OUT/results/<key>.json`` the moment it is known, stamped with the digest of the submission's
bytes and of the grader zip. Re-running the same command skips every submission whose result
carries the same two digests (``--force`` regrades all). A submission that hangs or crashes its
grading process still gets a valid results.json saying what happened, and the batch goes on.

Outputs in ``OUT`` (default ``graded/<chapter>``): ``results/*.json``, ``scores.csv`` (one row
per student, per-item scores as columns, ready for a gradebook) and ``report.html`` (score
histogram, items from the hardest, the most frequent failure messages per item, and the
submissions that crashed, timed out or used forbidden calls), plus a terminal summary.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import csv
import hashlib
import html
import io
import json
import os
import queue
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from autograder.confinement import host_files_warning
from autograder.sandbox import kill_processes_of
from tools.chapter_package import DIST

SUBMISSION_SUFFIXES = (".ipynb", ".zip", ".py")
# The engine caps one grading at 7 minutes; past this the grading process itself is stuck.
GRADING_DEADLINE_S = 8 * 60
METADATA_FILE = "submission_metadata.yml"


@dataclass(frozen=True)
class Submission:
    """One student's submission: where it is and who it belongs to."""

    key: str  # unique, file-name safe; names the results file
    path: Path
    students: tuple[dict[str, str], ...] = field(default_factory=tuple)

    @property
    def label(self) -> str:
        names = ", ".join(s.get("name", "") for s in self.students if s.get("name"))
        return names or self.path.name


def _safe_key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "submission"


def _gradescope_export(folder: Path) -> list[Submission]:
    """Gradescope's export: ``submission_metadata.yml`` maps each submission folder to its
    ``:submitters:`` (``:name:``, ``:email:``, ``:sid:``), as Otter's GradescopeParser reads it."""
    import yaml  # PyYAML comes with Otter; safe_load builds plain dicts and lists only

    metadata = yaml.safe_load((folder / METADATA_FILE).read_text())
    if not isinstance(metadata, dict):
        raise ValueError(f"{METADATA_FILE} is not a mapping of submission folders")
    submissions = []
    for name, record in sorted(metadata.items()):
        path = folder / str(name)
        if not path.exists():
            print(
                f"warning: {METADATA_FILE} names {name}, which is not in {folder}", file=sys.stderr
            )
            continue
        submitters = (record or {}).get(":submitters") or []
        students = tuple(
            {
                "name": str(s.get(":name", "")),
                "email": str(s.get(":email", "")),
                "sid": str(s.get(":sid", "") or ""),
            }
            for s in submitters
        )
        submissions.append(Submission(_safe_key(str(name)), path, students))
    return submissions


def discover(folder: Path) -> list[Submission]:
    """The submissions in ``folder`` (a Gradescope export or a plain folder), sorted."""
    if not folder.is_dir():
        raise ValueError(f"not a folder: {folder}")
    if (folder / METADATA_FILE).is_file():
        return _gradescope_export(folder)
    submissions, keys = [], set()
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or (path.is_file() and path.suffix not in SUBMISSION_SUFFIXES):
            continue
        key = _safe_key(path.name)
        while key in keys:
            key += "_"
        keys.add(key)
        submissions.append(Submission(key, path))
    return submissions


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` -> (i, N), with 0 <= i < N (Kubernetes' and Slurm's indices start at 0)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match or not 0 <= int(match.group(1)) < int(match.group(2)):
        raise ValueError(f"SHARD must be i/N with 0 <= i < N (e.g. 0/3, 1/3, 2/3), not {text!r}")
    return int(match.group(1)), int(match.group(2))


def shard_of(key: str, shards: int) -> int:
    """The shard (0 .. shards - 1) a submission belongs to: the first 8 bytes of the SHA-256
    of its key, modulo ``shards``. It depends on the key alone, so every machine and every
    rerun assigns each submission to the same shard, whatever else is in the class."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % shards


def in_shard(submissions: list[Submission], shard: tuple[int, int]) -> list[Submission]:
    index, shards = shard
    return [submission for submission in submissions if shard_of(submission.key, shards) == index]


def digest(path: Path) -> str:
    """sha256 of a file, or of a folder's relative names and bytes."""
    hasher = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        hasher.update(file.relative_to(path).as_posix().encode() if file != path else b"")
        hasher.update(b"\0")
        hasher.update(file.read_bytes())
    return hasher.hexdigest()


def _write_json(path: Path, data: dict) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=1))
    os.replace(temporary, path)


def _failed_grading(message: str) -> dict:
    """A valid results.json for a submission whose grading process itself did not finish."""
    return {
        "score": 0.0,
        "output": message,
        "output_format": "text",
        "tests": [],
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "execution_time": 0.0,
        "extra_data": {"batch_failure": message},
    }


class Worker:
    """One long-lived grading process, ``python -m autograder.gradescope --serve``, from the
    unpacked grader zip: it grades the submissions it is sent one at a time, each exactly as
    Gradescope would, and (as root) forks every sandboxed child from its own fork server, so
    torch is imported once per worker rather than once per submission. A worker that crashes
    or stops answering is killed with everything of its sandbox user, and replaced."""

    def __init__(self, source: Path, user: str | None):
        self.source = source
        self.user = user
        self.process: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        env = dict(os.environ)
        if self.user is not None:
            env["KIT_SANDBOX_USER"] = self.user
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "autograder.gradescope",
                "--serve",
                "--source",
                str(self.source),
            ],
            cwd=self.source,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def grade(self, submission: Path, results_path: Path, deadline_s: float) -> bool:
        """Whether the worker graded ``submission`` (wrote ``results_path``) in time."""
        if self.process is None or self.process.poll() is not None:
            self.stop()
            self.process = self._start()
        assert self.process.stdin is not None and self.process.stdout is not None
        request = {"submission": str(submission), "results": str(results_path)}
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
        except OSError:
            self.stop()
            return False
        answer = _read_line(self.process.stdout, time.monotonic() + deadline_s)
        try:
            done = json.loads(answer or b"{}").get("done") == str(results_path)
        except ValueError:
            done = False
        if not done:
            self.stop()
        return done

    def stop(self, gracefully: bool = False) -> None:
        """Ends the worker: ``gracefully`` by closing its input (it finishes and stops its fork
        server), else by SIGKILL to its session; then kills every process of its sandbox
        user."""
        process, self.process = self.process, None
        if process is not None:
            if gracefully and process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=10)
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        if self.user is not None:
            kill_processes_of(self.user)


def _read_line(stream: IO[bytes], deadline: float) -> bytes | None:
    """One line from a pipe, or None at end of file or past ``deadline`` (monotonic)."""
    fd = stream.fileno()
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        readable, _, _ = select.select([fd], [], [], left)
        if not readable:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        data += chunk
    return data.split(b"\n", 1)[0]


class Grader:
    """The unpacked grader zip and one worker per job slot (as root, each with its own sandbox
    user, so that gradings never wait for each other's user lock or share files and
    processes)."""

    def __init__(self, grader_zip: Path, workers: int):
        self.zip_digest = digest(grader_zip)
        self.folder = Path(tempfile.mkdtemp(prefix="kit-grade-all-"))
        os.chmod(self.folder, 0o755)
        self.source = self.folder / "source"
        with zipfile.ZipFile(grader_zip) as archive:
            archive.extractall(self.source)
        self.idle: queue.Queue[Worker] = queue.Queue()
        # Users of their own: kitsandbox-w1, -w2... or, where KIT_SANDBOX_USER names this
        # process's user (the test suite's workers), <that user>-w1... Two batches that share
        # users still grade correctly (gradings take turns on a user's lock), only slower.
        base = os.environ.get("KIT_SANDBOX_USER") or "kitsandbox"
        self.workers = [
            Worker(self.source, f"{base}-w{index + 1}" if os.geteuid() == 0 else None)
            for index in range(workers)
        ]
        for worker in self.workers:
            self.idle.put(worker)

    def close(self) -> None:
        for worker in self.workers:
            worker.stop(gracefully=True)
        shutil.rmtree(self.folder, ignore_errors=True)

    def grade(self, submission: Submission) -> dict:
        worker = self.idle.get()
        try:
            return self._grade_with(worker, submission)
        finally:
            self.idle.put(worker)

    def _grade_with(self, worker: Worker, submission: Submission) -> dict:
        results_path = self.folder / "results" / submission.key / "results.json"
        results_path.parent.mkdir(parents=True, exist_ok=True)
        if worker.grade(submission.path.resolve(), results_path, GRADING_DEADLINE_S):
            try:
                results = json.loads(results_path.read_text())
            except (OSError, ValueError) as exc:
                results = _failed_grading(
                    f"The grading process left no valid results.json ({type(exc).__name__})."
                )
        else:
            results = _failed_grading(
                f"The grading process crashed, or did not finish within {GRADING_DEADLINE_S} s, "
                f"and was stopped."
            )
        shutil.rmtree(results_path.parent, ignore_errors=True)
        return results


def grade_batch(
    chapter: str,
    submissions: list[Submission],
    out: Path,
    jobs: int,
    force: bool = False,
    progress: bool = True,
    grader_zip: Path | None = None,
) -> dict[str, dict]:
    """Grades what is not graded yet; returns every submission's results by key.
    ``grader_zip``: the built ``dist/autograder/<chapter>-autograder.zip`` unless given."""
    from tqdm.auto import tqdm

    grader_zip = grader_zip or DIST / "autograder" / f"{chapter}-autograder.zip"
    results_dir = out / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    grader = Grader(grader_zip, jobs)
    done: dict[str, dict] = {}
    todo: list[tuple[Submission, str]] = []
    try:
        for submission in submissions:
            content = digest(submission.path)
            path = results_dir / f"{submission.key}.json"
            if path.is_file() and not force:
                try:
                    previous = json.loads(path.read_text())
                    stamp = previous.get("extra_data", {}).get("batch", {})
                    if (
                        stamp.get("submission_sha256") == content
                        and stamp.get("grader_sha256") == grader.zip_digest
                    ):
                        done[submission.key] = previous
                        continue
                except ValueError:
                    pass  # a damaged file is regraded
            todo.append((submission, content))
        with (
            ThreadPoolExecutor(max_workers=jobs) as pool,
            tqdm(
                total=len(todo), desc=f"grading {chapter}", unit="sub", disable=not progress
            ) as bar,
        ):
            futures = {pool.submit(grader.grade, sub): (sub, content) for sub, content in todo}
            for future in as_completed(futures):
                submission, content = futures[future]
                results = future.result()
                results.setdefault("extra_data", {})["batch"] = {
                    "submission_sha256": content,
                    "grader_sha256": grader.zip_digest,
                    "submission": submission.path.name,
                    "students": list(submission.students),
                }
                _write_json(results_dir / f"{submission.key}.json", results)
                done[submission.key] = results
                bar.update(1)
    finally:
        grader.close()
    return done


# ------------------------------------------------------------------------------ outputs
def item_names(all_results: Iterable[dict]) -> list[str]:
    """Every graded item, in the order of the results (first complete results wins)."""
    names: list[str] = []
    for results in all_results:
        for test in results.get("tests", []):
            if test["name"] not in names:
                names.append(test["name"])
    return names


def write_scores_csv(
    path: Path, submissions: list[Submission], results: dict[str, dict], items: list[str]
) -> None:
    """One row per student (a group submission gives each member a row)."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "email", "sid", "submission", "score", "max_score", *items])
        for submission in submissions:
            result = results[submission.key]
            by_item = {t["name"]: t["score"] for t in result.get("tests", [])}
            maximum = result.get("extra_data", {}).get("max_score", "")
            row = [result["score"], maximum, *(by_item.get(item, 0.0) for item in items)]
            for student in submission.students or ({"name": "", "email": "", "sid": ""},):
                writer.writerow(
                    [
                        student.get("name") or submission.path.name,
                        student.get("email", ""),
                        student.get("sid", ""),
                        submission.path.name,
                        *row,
                    ]
                )


def _first_line(message: str) -> str:
    """A message with its case and its numbers taken out, so that the same mistake made by
    many students (on any case, by any amount) counts as one message."""
    line = message.strip().splitlines()[0] if message.strip() else "(no message)"
    line = re.sub(r"^(fails in .*?cases?|case \d+ of \d+)( \{.*?\})?: ", "", line)
    line = re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "#", line)
    return line[:140]


def problems(result: dict) -> list[str]:
    """Why a submission needs a human look: crash, time-out, forbidden call, no tests."""
    found = []
    if result.get("extra_data", {}).get("batch_failure"):
        found.append("grading crashed or hung")
    text = result.get("output", "") + " ".join(t.get("output", "") for t in result.get("tests", []))
    for patterns, label in (
        (("Time limit",), "time limit"),
        (("Memory limit",), "memory limit"),
        (("asks you to write yourself", "forbidden API"), "forbidden call"),
        (("Process ended",), "process ended"),
    ):
        if any(pattern.lower() in text.lower() for pattern in patterns):
            found.append(label)
    if not result.get("tests"):
        found.append("no item graded")
    return found


def class_statistics(results: dict[str, dict], items: list[str]) -> dict:
    failures: dict[str, int] = Counter()
    messages: dict[str, Counter] = defaultdict(Counter)
    # In the order of the submissions' keys, not of grading: equally frequent messages then
    # rank alike however the class was graded (one machine, or shards merged).
    for key in sorted(results):
        graded = {t["name"]: t for t in results[key].get("tests", [])}
        for item in items:
            test = graded.get(item)
            if test is None or test["status"] != "passed":
                failures[item] += 1
                messages[item][_first_line(test["output"]) if test else "not graded"] += 1
    hardest = sorted(items, key=lambda item: (-failures[item], items.index(item)))
    return {"failures": failures, "messages": messages, "hardest": hardest}


def _histogram_png(scores: list[float], maximum: float) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 2.8))
    axis.hist(
        scores,
        bins=min(20, max(5, int(maximum) + 1)),
        range=(0, maximum or 1),
        color="#4c72b0",
        edgecolor="white",
    )
    axis.set_xlabel("score")
    axis.set_ylabel("submissions")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def write_report(
    path: Path,
    chapter: str,
    submissions: list[Submission],
    results: dict[str, dict],
    items: list[str],
) -> dict:
    """A self-contained HTML report (the histogram is an embedded PNG); returns the stats."""
    stats = class_statistics(results, items)
    scores = [results[s.key]["score"] for s in submissions]
    maximum = max(
        (r.get("extra_data", {}).get("max_score", 0) for r in results.values()), default=0
    )
    count = len(submissions)
    esc = html.escape
    rows = []
    for item in stats["hardest"]:
        top = stats["messages"][item].most_common(3)
        common = "<br>".join(f"{n}&times; {esc(m)}" for m, n in top) or "&mdash;"
        rate = stats["failures"][item] / count if count else 0.0
        rows.append(f"<tr><td>{esc(item)}</td><td>{rate:.0%}</td><td>{common}</td></tr>")
    flagged = []
    for submission in submissions:
        found = problems(results[submission.key])
        if found:
            flagged.append(
                f"<tr><td>{esc(submission.label)}</td><td>{esc(submission.path.name)}"
                f"</td><td>{esc(', '.join(found))}</td></tr>"
            )
    mean = sum(scores) / count if count else 0.0
    histogram = _histogram_png(scores, maximum)
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>{esc(chapter)}: class report</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;
vertical-align:top;text-align:left}}</style></head><body>
<h1>{esc(chapter)}: class report</h1>
<p>{count} submissions; mean score {mean:.2f} / {maximum:g}; full marks:
{sum(1 for s in scores if maximum and s >= maximum)}; zero: {sum(1 for s in scores if s == 0)}.</p>
<h2>Scores</h2>
<img alt="score histogram" src="data:image/png;base64,{histogram}">
<h2>Items, hardest first</h2>
<table><tr><th>item</th><th>failed by</th><th>most frequent messages</th></tr>
{"".join(rows)}</table>
<h2>Submissions to look at</h2>
<table><tr><th>student</th><th>submission</th><th>why</th></tr>
{"".join(flagged) or '<tr><td colspan="3">none</td></tr>'}</table>
</body></html>
"""
    path.write_text(page)
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapter", required=True)
    parser.add_argument("--submissions", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--force", action="store_true", help="regrade everything")
    parser.add_argument(
        "--shard", help="i/N: grade only this machine's share (merge with tools.merge_grades)"
    )
    args = parser.parse_args(argv)
    grader_zip = DIST / "autograder" / f"{args.chapter}-autograder.zip"
    if not grader_zip.is_file():
        print(f"no grader zip for chapter {args.chapter!r}; run `make` first", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print("--jobs must be at least 1", file=sys.stderr)
        return 2
    try:
        submissions = discover(args.submissions)
    except (ValueError, OSError) as exc:
        print(f"cannot read the submissions: {exc}", file=sys.stderr)
        return 2
    if not submissions:
        print(
            f"no submissions (.ipynb, .zip, .py or folders) in {args.submissions}", file=sys.stderr
        )
        return 2
    if args.shard is not None:
        try:
            shard = parse_shard(args.shard)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        whole = len(submissions)
        submissions = in_shard(submissions, shard)
        print(f"shard {shard[0]}/{shard[1]}: {len(submissions)} of {whole} submissions")
        if not submissions:
            print("nothing to grade in this shard")
            return 0
    warning = host_files_warning()
    if warning:
        print(warning, file=sys.stderr)
    out = args.out or Path("graded") / args.chapter
    began = time.perf_counter()
    results = grade_batch(args.chapter, submissions, out, args.jobs, args.force)
    seconds = time.perf_counter() - began
    items = item_names(results[s.key] for s in submissions)
    write_scores_csv(out / "scores.csv", submissions, results, items)
    stats = write_report(out / "report.html", args.chapter, submissions, results, items)
    scores = [results[s.key]["score"] for s in submissions]
    print(
        f"\n{args.chapter}: {len(submissions)} submissions in {seconds:.1f} s "
        f"({args.jobs} workers); mean score {sum(scores) / len(scores):.2f}"
    )
    for item in stats["hardest"][:5]:
        if stats["failures"][item]:
            print(f"  {stats['failures'][item]:>5} failed  {item}")
    flagged = sum(1 for s in submissions if problems(results[s.key]))
    print(f"  {flagged} submissions need a look (crash, time-out, forbidden call)")
    print(f"scores: {out / 'scores.csv'}\nreport: {out / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
