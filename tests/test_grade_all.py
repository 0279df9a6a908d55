"""``make grade-all`` (tools.grade_all): parallel results equal one-at-a-time results, resume
after a kill, hanging and crashing submissions, Gradescope's export layout, the CSV and the
report."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import notebook_with_extra_cell
from tools import grade_all
from tools.bench_class import ENDLESS_LOOP, MEMORY_BOMB
from tools.build import DIST, REPO, grade_with_zip

CHAPTER = "01_mlp_backprop"
SOLUTION = DIST / "solutions" / f"{CHAPTER}-solution.ipynb"
STUB = DIST / "student" / CHAPTER / f"{CHAPTER}.ipynb"
FULL = 17  # chapter 01's points (tests/test_chapters.py proves the solution earns them all)

MUTANT = """
class ReLU(ReLU):
    def backward(self, dupstream):
        return dupstream
"""
HANGS_IN_ONE_METHOD = ENDLESS_LOOP
ENDS_THE_PROCESS = """
import os
class Sigmoid(Sigmoid):
    def forward(self, x):
        os._exit(3)
"""


def class_folder(folder: Path) -> Path:
    """A realistic mix: full marks, untouched stub, a bug, a hang, a crash, a memory bomb, and
    a file that is no submission."""
    folder.mkdir()
    (folder / "ada.ipynb").write_bytes(SOLUTION.read_bytes())
    (folder / "bob.ipynb").write_bytes(STUB.read_bytes())
    notebook_with_extra_cell(CHAPTER, MUTANT, folder / "cy.ipynb")
    notebook_with_extra_cell(CHAPTER, HANGS_IN_ONE_METHOD, folder / "dee.ipynb")
    notebook_with_extra_cell(CHAPTER, ENDS_THE_PROCESS, folder / "eve.ipynb")
    notebook_with_extra_cell(CHAPTER, MEMORY_BOMB, folder / "fay.ipynb")
    (folder / "notes.txt").write_text("not a submission")
    return folder


def item_outcomes(results: dict) -> dict[str, tuple[str, float]]:
    return {test["name"]: (test["status"], test["score"]) for test in results["tests"]}


def test_parallel_batch_equals_one_at_a_time_grading(tmp_path):
    folder = class_folder(tmp_path / "class")
    submissions = grade_all.discover(folder)
    assert [s.path.name for s in submissions] == ["ada.ipynb", "bob.ipynb", "cy.ipynb",
                                                  "dee.ipynb", "eve.ipynb", "fay.ipynb"]
    batch = grade_all.grade_batch(CHAPTER, submissions, tmp_path / "out", jobs=2,
                                  progress=False)
    grader_zip = DIST / "autograder" / f"{CHAPTER}-autograder.zip"
    for submission in submissions:
        alone = grade_with_zip(grader_zip, submission.path)
        assert item_outcomes(batch[submission.key]) == item_outcomes(alone), submission.key
        assert batch[submission.key]["score"] == alone["score"]
    scores = {key: results["score"] for key, results in batch.items()}
    assert scores["ada.ipynb"] == FULL and scores["bob.ipynb"] == 0
    assert 0 < scores["dee.ipynb"] < FULL and 0 < scores["eve.ipynb"] < FULL
    assert "Time limit" in json.dumps(batch["dee.ipynb"]["tests"])
    assert "Memory limit" in json.dumps(batch["fay.ipynb"]["tests"])
    assert "Process ended" in json.dumps(batch["eve.ipynb"]["tests"])


def test_resume_after_a_kill_loses_nothing_and_redoes_nothing(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    for index in range(4):
        (folder / f"s{index}.ipynb").write_bytes(SOLUTION.read_bytes())
    out = tmp_path / "out"
    command = [sys.executable, "-m", "tools.grade_all", "--chapter", CHAPTER, "--submissions",
               str(folder), "--out", str(out), "--jobs", "1"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not list((out / "results").glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # like Ctrl-C on the whole batch, or a dead machine
    process.wait()
    first = {p.name: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}
    assert 1 <= len(first) < 4, first
    assert grade_all.main(command[3:]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}
    assert set(after) == {f"s{i}.ipynb.json" for i in range(4)}
    assert all(after[name] == stamp for name, stamp in first.items()), "graded twice"
    for path in (out / "results").glob("*.json"):
        assert json.loads(path.read_text())["score"] == FULL
    (folder / "s0.ipynb").write_bytes(STUB.read_bytes())  # a changed submission is regraded
    assert grade_all.main(command[3:]) == 0
    assert json.loads((out / "results" / "s0.ipynb.json").read_text())["score"] == 0


def test_a_stuck_grading_process_gets_a_valid_result_and_the_batch_goes_on(tmp_path,
                                                                            monkeypatch):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "slow.ipynb").write_bytes(SOLUTION.read_bytes())
    (folder / "fine.py").write_text("x = 1\n")
    monkeypatch.setattr(grade_all, "GRADING_DEADLINE_S", 0.05)
    results = grade_all.grade_batch(CHAPTER, grade_all.discover(folder), tmp_path / "out",
                                    jobs=2, progress=False)
    assert set(results) == {"slow.ipynb", "fine.py"}
    for result in results.values():
        assert result["score"] == 0 and "did not finish" in result["output"]
        assert grade_all.problems(result)[0] == "grading crashed or hung"


def _servers_left(source: Path) -> list[str]:
    """Fork servers (``child.py serve``) of the grader unpacked in ``source`` still running."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in command and str(source).encode() in command:
            found.append(pid)
    return found


def test_a_worker_that_crashes_or_stops_answering_is_replaced(tmp_path, monkeypatch):
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("a_crashes", "b_fine", "c_hangs", "d_fine"):
        (folder / f"{name}.ipynb").write_bytes(SOLUTION.read_bytes())
    real_grade, real_init = grade_all.Worker.grade, grade_all.Worker.__init__
    sources: list[Path] = []
    servers_seen: list[str] = []

    def recorded_init(worker, source, user):
        sources.append(source)
        real_init(worker, source, user)

    def sabotaged(worker, submission, results_path, deadline_s):
        if "_fine" not in submission.name:
            if worker.process is None or worker.process.poll() is not None:
                worker.process = worker._start()
            # the judge process itself dies (say, killed by the machine) or freezes
            crashes = "crashes" in submission.name
            if not crashes:  # the worker that graded b_fine has its server running
                servers_seen.extend(_servers_left(sources[0]))
            os.kill(worker.process.pid, signal.SIGKILL if crashes else signal.SIGSTOP)
            deadline_s = 3.0
        return real_grade(worker, submission, results_path, deadline_s)

    monkeypatch.setattr(grade_all.Worker, "grade", sabotaged)
    monkeypatch.setattr(grade_all.Worker, "__init__", recorded_init)
    results = grade_all.grade_batch(CHAPTER, grade_all.discover(folder), tmp_path / "out",
                                    jobs=1, progress=False)
    for key in ("a_crashes.ipynb", "c_hangs.ipynb"):
        assert results[key]["score"] == 0 and "crashed, or did not finish" in results[key]["output"]
        assert grade_all.problems(results[key])[0] == "grading crashed or hung"
    for key in ("b_fine.ipynb", "d_fine.ipynb"):
        assert results[key]["score"] == FULL, results[key]["output"]
    assert servers_seen, "the test must see a server while it runs"
    deadline = time.monotonic() + 10
    while _servers_left(sources[0]) and time.monotonic() < deadline:
        time.sleep(0.1)  # a server whose worker was killed exits when it reads end of file
    assert not _servers_left(sources[0]), "a fork server outlived its batch"


def gradescope_export(root: Path) -> Path:
    root.mkdir()
    for name, source in (("submission_101", SOLUTION), ("submission_102", STUB)):
        (root / name).mkdir()
        (root / name / f"{CHAPTER}.ipynb").write_bytes(source.read_bytes())
    (root / "submission_metadata.yml").write_text("""\
submission_101:
  :submitters:
  - :name: Ada Lovelace
    :email: ada@example.edu
    :sid: '1815'
  :created_at: 2026-11-20 10:00:00.000000000 Z
  :score: 0.0
submission_102:
  :submitters:
  - :name: Bob Stub
    :email: bob@example.edu
    :sid: '2002'
  - :name: Cy Partner
    :email: cy@example.edu
    :sid: '2003'
  :created_at: 2026-11-21 10:00:00.000000000 Z
""")
    return root


def test_gradescope_export_is_keyed_by_student_with_csv_and_report(tmp_path, capsys):
    export = gradescope_export(tmp_path / "export")
    out = tmp_path / "graded"
    assert grade_all.main(["--chapter", CHAPTER, "--submissions", str(export), "--out", str(out),
                           "--jobs", "2"]) == 0
    with open(out / "scores.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    assert header[:6] == ["student", "email", "sid", "submission", "score", "max_score"]
    assert "q1 Linear: y" in header and len(header) > 10
    by_student = {row[0]: row for row in rows[1:]}
    assert set(by_student) == {"Ada Lovelace", "Bob Stub", "Cy Partner"}
    assert by_student["Ada Lovelace"][1:6] == ["ada@example.edu", "1815", "submission_101",
                                               f"{FULL:.1f}", f"{FULL:.1f}"]
    assert by_student["Cy Partner"][4] == "0.0"
    column = header.index("q1 Linear: y")
    assert by_student["Ada Lovelace"][column] == "1.0" and by_student["Bob Stub"][column] == "0.0"
    report = (out / "report.html").read_text()
    hardest = grade_all.class_statistics(
        {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")},
        header[6:])["hardest"][0]
    assert hardest in report and "data:image/png;base64," in report
    assert report.index("Items, hardest first") < report.index(hardest)
    assert "2 submissions" in capsys.readouterr().out


@pytest.mark.parametrize("arguments,message", [
    (["--submissions", "/nonexistent/folder"], "cannot read the submissions"),
    (["--jobs", "0"], "--jobs must be at least 1"),
])
def test_bad_input_gets_a_clear_message(arguments, message, tmp_path, capsys):
    base = {"--submissions": str(tmp_path), "--jobs": "1"}
    base.update(dict(zip(arguments[::2], arguments[1::2])))
    argv = ["--chapter", CHAPTER] + [x for pair in base.items() for x in pair]
    assert grade_all.main(argv) == 2
    assert message in capsys.readouterr().err


def test_two_batches_sharing_sandbox_users_never_kill_each_others_gradings(tmp_path):
    """A batch that ends kills what is left of its sandbox users: it must wait for another
    batch's grading that uses the same user (two instructors, or two test workers) instead of
    killing it."""
    slow = tmp_path / "slow"
    slow.mkdir()
    notebook_with_extra_cell(CHAPTER, HANGS_IN_ONE_METHOD, slow / "loops.ipynb")
    results: dict[str, dict] = {}

    def run_slow() -> None:
        results.update(grade_all.grade_batch(CHAPTER, grade_all.discover(slow),
                                             tmp_path / "out-slow", jobs=1, progress=False))

    thread = threading.Thread(target=run_slow)
    thread.start()
    user = f"{os.environ.get('KIT_SANDBOX_USER') or 'kitsandbox'}-w1"
    deadline = time.monotonic() + 120
    while _cpu_seconds(_user_processes(user)) < 1.0 and time.monotonic() < deadline:
        time.sleep(0.1)  # until the slow batch's child spins in the check of Tanh
    assert _user_processes(user), "the slow batch never started its child"
    # another batch with the same users and nothing to grade starts and ends meanwhile
    assert grade_all.grade_batch(CHAPTER, [], tmp_path / "out-empty", jobs=1,
                                 progress=False) == {}
    thread.join()
    failed = {t["name"]: t["output"] for t in results["loops.ipynb"]["tests"]
              if t["status"] != "passed"}
    assert failed and all(name.startswith("q2 Tanh") for name in failed), failed
    assert all("Time limit" in message for message in failed.values()), failed


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _user_processes(user: str) -> list[int]:
    import pwd

    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return []
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        line = next(x for x in status.splitlines() if x.startswith("Uid:"))
        if int(line.split()[1]) == uid:
            found.append(int(pid))
    return found
