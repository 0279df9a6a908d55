"""Grading beyond one machine (issue 29): shards of a class, their merge, and the job
definitions that run them on Kubernetes and Slurm."""
from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tools import grade_all, merge_grades
from tools.bench_class import make_class
from tools.build import ensure_built
from tools.chapter_package import REPO

CHAPTER = "01_mlp_backprop"
KUBERNETES_JOB = REPO / "deploy" / "kubernetes" / "grade-all-job.yaml"
SLURM_SCRIPT = REPO / "deploy" / "slurm" / "grade-all.sbatch"
DOCKERFILE = REPO / "deploy" / "Dockerfile"


def test_every_submission_lands_in_exactly_one_stable_shard():
    keys = [f"student{index:04d}.ipynb" for index in range(3000)]
    for shards in (1, 3, 8):
        assigned = [grade_all.shard_of(key, shards) for key in keys]
        assert assigned == [grade_all.shard_of(key, shards) for key in keys]
        counts = [assigned.count(index) for index in range(shards)]
        assert sum(counts) == len(keys) and min(counts) > 0.8 * len(keys) / shards, counts
    submissions = [grade_all.Submission(key, Path(key)) for key in keys[:50]]
    parts = [grade_all.in_shard(submissions, (index, 3)) for index in range(3)]
    assert sorted(s.key for part in parts for s in part) == sorted(s.key for s in submissions)
    # a submission's shard never depends on the rest of the class
    assert grade_all.in_shard(submissions[:1], (grade_all.shard_of(keys[0], 3), 3))


@pytest.mark.parametrize("text", ["3/3", "-1/3", "1", "a/b", "2/0", ""])
def test_a_bad_shard_is_refused_with_the_rule(text, capsys):
    with pytest.raises(ValueError, match="0 <= i < N"):
        grade_all.parse_shard(text)
    assert grade_all.parse_shard(" 2/3 ") == (2, 3)


def _items(results: dict) -> dict:
    return {test["name"]: (test["status"], test["score"], test["output"])
            for test in results["tests"]}


def test_three_slurm_shards_merged_equal_one_batch(tmp_path):
    """A mixed class (solutions, stubs, bug-zoo mutants, an endless loop, a memory bomb)
    graded once on one machine and once as a Slurm array of three tasks (the real script,
    with the variables Slurm sets), then merged: the same results item for item, the same
    scores.csv byte for byte, the same report."""
    ensure_built(CHAPTER)
    class_dir = tmp_path / "class"
    (class_dir / "submissions").mkdir(parents=True)
    mix = make_class(class_dir / "submissions", 16)
    assert mix["solution"] and mix["stub"] and mix["mutant"] and mix["hostile: endless loop"]
    single = tmp_path / "single"
    assert grade_all.main(["--chapter", CHAPTER, "--submissions",
                           str(class_dir / "submissions"), "--out", str(single),
                           "--jobs", "2"]) == 0
    tasks = []
    for task in range(3):
        environment = dict(os.environ, CHAPTER=CHAPTER, CLASS=str(class_dir), KIT=str(REPO),
                           SLURM_ARRAY_TASK_ID=str(task), SLURM_ARRAY_TASK_MIN="0",
                           SLURM_ARRAY_TASK_MAX="2", SLURM_CPUS_PER_TASK="1")
        tasks.append(subprocess.Popen(["bash", str(SLURM_SCRIPT)], env=environment,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    for process in tasks:
        output, _ = process.communicate(timeout=900)
        assert process.returncode == 0, output[-3000:]
    shards = sorted((class_dir / "graded" / CHAPTER).glob("shard-*"))
    assert [shard.name for shard in shards] == ["shard-0", "shard-1", "shard-2"]
    merged = tmp_path / "merged"
    assert merge_grades.main(["--out", str(merged), *map(str, shards)]) == 0
    assert (merged / "scores.csv").read_bytes() == (single / "scores.csv").read_bytes()
    assert (merged / "report.html").read_text() == (single / "report.html").read_text()
    single_files = sorted(path.name for path in (single / "results").glob("*.json"))
    assert single_files == sorted(path.name for path in (merged / "results").glob("*.json"))
    assert len(single_files) == sum(mix.values())
    for name in single_files:
        alone = json.loads((single / "results" / name).read_text())
        sharded = json.loads((merged / "results" / name).read_text())
        assert _items(alone) == _items(sharded) and alone["score"] == sharded["score"], name


def test_merge_refuses_shards_of_different_graders(tmp_path):
    for shard, digest in (("a", "1" * 64), ("b", "2" * 64)):
        (tmp_path / shard / "results").mkdir(parents=True)
        result = {"score": 0.0, "tests": [], "extra_data": {
            "chapter": CHAPTER, "batch": {"grader_sha256": digest, "submission": f"{shard}.py",
                                          "students": []}}}
        (tmp_path / shard / "results" / f"{shard}.json").write_text(json.dumps(result))
    with pytest.raises(merge_grades.MergeError, match="different graders"):
        merge_grades.collect([tmp_path / "a", tmp_path / "b"])
    (tmp_path / "empty" / "results").mkdir(parents=True)
    with pytest.raises(merge_grades.MergeError, match="no results"):
        merge_grades.collect([tmp_path / "empty"])


def test_the_slurm_script_refuses_to_run_outside_an_array_job(tmp_path):
    environment = {"PATH": os.environ["PATH"], "CHAPTER": CHAPTER, "CLASS": str(tmp_path)}
    completed = subprocess.run(["bash", str(SLURM_SCRIPT)], env=environment,
                               capture_output=True, text=True, check=False)
    assert completed.returncode != 0 and "array job" in completed.stderr


def test_the_kubernetes_job_is_a_valid_indexed_job():
    job = yaml.safe_load(KUBERNETES_JOB.read_text())
    kubernetes_validate.validate(job, kubernetes_validate.latest_version(), strict=True)
    spec = job["spec"]
    assert job["kind"] == "Job" and spec["completionMode"] == "Indexed"
    container = spec["template"]["spec"]["containers"][0]
    environment = {item["name"]: item["value"] for item in container["env"]}
    assert int(environment["SHARDS"]) == spec["completions"]
    command = " ".join(container["args"])
    assert '--shard "$JOB_COMPLETION_INDEX/$SHARDS"' in command
    assert "shard-$JOB_COMPLETION_INDEX" in command and "tools.grade_all" in command
    broken = copy.deepcopy(job)
    broken["spec"]["completionz"] = 4  # the validation can fail
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def test_the_image_holds_what_the_batch_tools_import(tmp_path):
    """The Dockerfile copies only some of the kit: those files must be enough for
    ``python -m tools.grade_all`` and ``tools.merge_grades`` to start."""
    copied = [line.split()[1:-1] for line in DOCKERFILE.read_text().splitlines()
              if line.startswith("COPY ")]
    assert ["dist/autograder/"] in copied and ["autograder/"] in copied
    for sources in copied:
        for source in sources:
            target = tmp_path / source
            if source.endswith("/") and not source.startswith("dist"):
                shutil.copytree(REPO / source, target)
            elif not source.endswith("/"):
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(REPO / source, target)
    for module in ("tools.grade_all", "tools.merge_grades", "autograder.prairielearn"):
        completed = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=tmp_path,
                                   env={"PATH": os.environ["PATH"]}, capture_output=True,
                                   text=True, check=False)
        assert completed.returncode == 0, (module, completed.stderr[-1500:])
    text = DOCKERFILE.read_text()
    assert text.startswith("#") and "FROM ubuntu:22.04" in text
    assert "uv python install 3.11.7" in text and "torch==2.13.0+cpu" in text
    assert "UV_COMPILE_BYTECODE=1" in text and "useradd --system" in text
