"""Builds every chapter's distributions and proves them by grading.

    python -m tools.build [CHAPTER ...]

For each chapter in ``assignments/`` (or those named):

1. ``master.py`` (jupytext percent format) -> notebook -> ``otter assign`` (authoring, public
   tests, solution stripping);
2. ``dist/student/<chapter>/`` (notebook, public tests, the ``student`` package) and a zip;
3. ``dist/solutions/<chapter>-solution.ipynb`` (Otter's solution notebook, markers removed);
4. ``dist/autograder/<chapter>-autograder.zip`` (the kit's engine, the chapter package with
   expected data, ``setup.sh``, ``run_autograder``), byte-for-byte reproducible;
5. proof: the solution notebook and the untouched student notebook are graded by the real
   grader (the zip, unpacked, run through its Gradescope entry point), and the student bundle
   is scanned for leaks. The build fails unless the solution scores full marks, the stub zero,
   and the scan finds nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Collection
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat

from autograder.checks import ChapterChecks, load_checks_namespace
from autograder.forbidden import RULES_MARKER, describe_rules
from tools.chapter_package import DIST, REPO, build_package
from tools.figures import embed_figures
from tools.leaks import scan_for_leaks
from tools.public_tests import rewrite_public_tests, rules_check_source

BUILD = REPO / "build"
FIXED_DATE = (2024, 1, 1, 0, 0, 0)
MARKER_LINE = re.compile(r"^\s*(# (BEGIN|END) SOLUTION.*|\"\"\" # (BEGIN|END) PROMPT)\s*$")
GRADER_REQUIREMENTS = "numpy==2.4.6\n"
# The grader's own modules that the public checks' forbidden-API scan imports
# (student/rules.py): the same code as the grader's, shipped unchanged.
STUDENT_ENGINE_MODULES = ("__init__.py", "forbidden.py", "submission.py")
STUDENT_PACKAGES = ("numpy", "otter-grader", "ipykernel", "scikit-learn", "matplotlib", "tqdm")
UV_VERSION = "0.13.9"
PYTHON_VERSION = "3.11.7"  # the version the kit is developed and measured with
SANDBOX_USER = "kitsandbox"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
SETUP_SH = f"""#!/usr/bin/env bash
# Gradescope setup for the course kit's grader, run once when Gradescope builds the image:
# Python {PYTHON_VERSION} with CPU-only torch and numpy, nothing else (no Miniforge, no browser,
# no CUDA wheels), bytecode precompiled, and the sandbox user created.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# Python goes where every user may read it: uv's default, /root/.local/share/uv/python, is
# closed to the sandbox user (/root is mode 0700), which then cannot import the standard library.
export UV_PYTHON_INSTALL_DIR=/opt/kit-python
# .pyc files now: the grader's child runs with -B and would compile torch on every grading.
export UV_COMPILE_BYTECODE=1
apt-get update -qq
apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
python3 -m pip install -q uv=={UV_VERSION}
uv python install {PYTHON_VERSION}
uv venv --python {PYTHON_VERSION} /autograder/venv
# torch and its dependencies from PyTorch's CPU index alone (it serves them all), pinned to the
# +cpu build: a CUDA build can never be chosen. numpy (requirements.txt) comes from PyPI.
uv pip install -q --python /autograder/venv/bin/python \\
    --index-url {TORCH_CPU_INDEX} torch==2.13.0+cpu
uv pip install -q --python /autograder/venv/bin/python -r /autograder/source/requirements.txt
# The standard library and the grader's own modules, precompiled as well (a few of the
# standard library's test files do not compile on purpose, hence `|| true`).
/autograder/venv/bin/python -m compileall -q -j 0 /opt/kit-python /autograder/source || true
chmod -R a+rX /opt/kit-python /autograder/venv
# The unprivileged user that runs submissions, created now so that a running container never
# edits /etc/passwd (absolute path: PATH may lack sbin).
id -u {SANDBOX_USER} >/dev/null 2>&1 || \\
    /usr/sbin/useradd --system --no-create-home --shell /usr/sbin/nologin {SANDBOX_USER}
"""
# The first two code cells of every notebook, added by the build (after the title cell) so
# that the masters do not repeat them: Colab setup, then Otter's grader object.
SETUP_CELL = """# SETUP (not graded). In Google Colab: upload {chapter}.zip to the Files pane
# first; this cell installs Otter and unpacks the bundle. Elsewhere it checks that the
# notebook sits in the unzipped bundle folder, beside student/ and tests/.
import importlib.util
import os
import sys
import zipfile

if "google.colab" in sys.modules:
    if importlib.util.find_spec("otter") is None:
        %pip install -q otter-grader==7.0.0
    if not os.path.isdir("student"):
        zipfile.ZipFile("{chapter}.zip").extractall(".")
        os.chdir("{chapter}")
elif not (os.path.isdir("student") and os.path.isdir("tests")):
    raise FileNotFoundError(
        "This notebook needs the student/ and tests/ folders of {chapter}.zip beside it: "
        "unzip {chapter}.zip and open the notebook (or the solution notebook) inside the "
        "{chapter}/ folder it creates.")

import torch

# One thread: the course's tensors are small, so a second thread mostly waits on the first;
# on a 2-core laptop or Colab one thread was as fast or faster, and far steadier under load.
torch.set_num_threads(1)"""
# The last cell of the student notebook (it replaces Otter's, which re-ran the whole notebook in
# a second kernel): a one-screen summary of the public checks, then the zip, nothing re-run.
EXPORT_CELL = """# SETUP (not graded). Save the notebook first (File > Save): the zip holds the
# saved file.
from student.submit import export_submission
export_submission(grader, globals())"""
OTTER_CELL = """import otter
grader = otter.Notebook("{chapter}.ipynb")"""
RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this once per submission, as root; it always writes
# <base>/results/results.json. The base folder is /autograder unless KIT_AUTOGRADER_BASE says
# otherwise (the kit's own tests build the same layout elsewhere).
base="${KIT_AUTOGRADER_BASE:-/autograder}"
cd "$base/source"
exec "$base/venv/bin/python" -m autograder.gradescope --base "$base"
"""


def chapters() -> list[str]:
    return sorted(p.name for p in (REPO / "assignments").iterdir() if (p / "master.py").is_file())


def chapter_checks(chapter: str) -> ChapterChecks:
    """The chapter's checks module (the grader's own source), executed."""
    path = REPO / "assignments" / chapter / "checks.py"
    return load_checks_namespace(path.read_text(), str(path))


def chapter_forbidden(chapter: str) -> tuple[str, ...]:
    """The chapter's ``FORBIDDEN``, read from its checks module (the grader's own source)."""
    return chapter_checks(chapter).forbidden


def public_rules(chapter: str) -> dict[str, str]:
    """Question -> the forbidden-API scan its public check runs first (the same module and
    ``FORBIDDEN`` as the grader's, for the names the question's hidden checks use)."""
    definitions = chapter_checks(chapter)
    per_question: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {}
    for check in definitions.checks:
        scanned = per_question.setdefault(check.question, [])
        if (check.uses, check.replaces) not in scanned:
            scanned.append((check.uses, check.replaces))
    return {
        question: rules_check_source(definitions.forbidden, checks)
        for question, checks in per_question.items()
    }


def ship_rule_modules(student_dir: Path) -> None:
    """The engine modules the public checks' forbidden-API scan runs (no checks, no data)."""
    engine = student_dir / "autograder"
    engine.mkdir()
    for name in STUDENT_ENGINE_MODULES:
        shutil.copy(REPO / "autograder" / name, engine / name)


def write_zip(
    path: Path, files: dict[str, bytes], executable: Collection[str] = frozenset()
) -> None:
    """A zip with sorted members, fixed dates and modes: the same input gives the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o755 if name in executable else 0o644) << 16
            archive.writestr(info, files[name])


def tree_files(root: Path, prefix: str = "") -> dict[str, bytes]:
    return {
        prefix + p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def normalize_notebook(path: Path, chapter: str, strip_markers: bool = False) -> None:
    """Stable cell ids, kit metadata, no jupytext leftovers; optionally drop Otter markers."""
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata.pop("jupytext", None)
    notebook.metadata["kit"] = {"chapter": chapter}
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index:03d}"
        cell.metadata.pop("lines_to_next_cell", None)
        if strip_markers and cell.cell_type == "code":
            lines = cell.source.split("\n")
            cell.source = "\n".join(line for line in lines if not MARKER_LINE.match(line))
    nbformat.write(notebook, path)


def student_requirements() -> str:
    """The bundle's requirements.txt: CPU-only torch from PyTorch's index (on Linux a plain
    ``pip install torch`` pulls a 6 GB CUDA build) and the kit's own pins for the rest."""
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        if version and not line.startswith("#"):
            pins[name.strip().lower()] = line.strip()
    torch_version = pins["torch"].partition("==")[2]
    lines = [
        "# Everything the notebook needs, pinned as the course kit pins it. Install with",
        "#   python -m pip install -r requirements.txt",
        "# PyTorch's CPU index serves the CPU-only torch (about 200 MB instead of 6 GB of",
        "# CUDA libraries on Linux); everything else comes from PyPI.",
        "--extra-index-url https://download.pytorch.org/whl/cpu",
        f'torch=={torch_version}+cpu ; sys_platform == "linux" or sys_platform == "win32"',
        f'torch=={torch_version} ; sys_platform == "darwin"',
    ]
    lines += [pins[name] for name in STUDENT_PACKAGES]
    return "\n".join(lines) + "\n"


def replace_export_cell(path: Path) -> None:
    """Otter's export cell re-runs the notebook in a second kernel (slow, and it prints a
    'Kernel is running over TCP' warning); ours summarises the public checks and zips."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code" and "grader.export(" in cell.source:
            cell.source = EXPORT_CELL
    nbformat.write(notebook, path)


def remove_student_only_parts(path: Path) -> None:
    """Turns Otter's autograder notebook into the released solution: deletes the student-only
    ``raise NotImplementedError`` prompt blocks, and Otter's export cell with the markdown cell
    before it (exporting would package the student notebook beside it, not this one), and drops
    trailing blank cells."""
    notebook = nbformat.read(path, as_version=4)
    block = re.compile(r'\n[ \t]*""" # BEGIN PROMPT\n.*?\n[ \t]*""" # END PROMPT', re.S)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.source = block.sub("", cell.source)
    exports = [
        i
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and "grader.export(" in cell.source
    ]
    dropped = {
        j
        for i in exports
        for j in (i - 1, i)
        if j == i or notebook.cells[j].cell_type == "markdown"
    }
    notebook.cells = [cell for i, cell in enumerate(notebook.cells) if i not in dropped]
    while notebook.cells and not notebook.cells[-1].source.strip():
        notebook.cells.pop()
    nbformat.write(notebook, path)


def add_setup_cells(master: Path, chapter: str) -> None:
    """Inserts the Colab setup and Otter cells after the notebook's title (markdown) cell, and
    writes the grader's rules (from the chapter's ``FORBIDDEN``) where the master says
    ``{{FORBIDDEN_RULES}}``."""
    notebook = nbformat.read(master, as_version=4)
    rules = describe_rules(chapter_forbidden(chapter))
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and RULES_MARKER in cell.source:
            cell.source = cell.source.replace(RULES_MARKER, rules)
    embed_figures(notebook)
    title = next(i for i, cell in enumerate(notebook.cells) if cell.cell_type == "markdown")
    cells = [
        nbformat.v4.new_code_cell(template.format(chapter=chapter))
        for template in (SETUP_CELL, OTTER_CELL)
    ]
    notebook.cells[title + 1 : title + 1] = cells
    nbformat.write(notebook, master)


def run(command: list[str], cwd: Path | None = None) -> None:
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def build_chapter(chapter: str) -> dict:
    source_dir = REPO / "assignments" / chapter
    work = BUILD / chapter
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    bin_dir = Path(sys.executable).parent
    master = work / f"{chapter}.ipynb"
    run(
        [
            str(bin_dir / "jupytext"),
            "--quiet",
            "--to",
            "ipynb",
            "--set-kernel",
            "python3",
            str(source_dir / "master.py"),
            "-o",
            str(master),
        ]
    )
    add_setup_cells(master, chapter)
    run([str(bin_dir / "otter"), "assign", str(master), str(work / "otter")])

    student_dir = DIST / "student" / chapter
    shutil.rmtree(student_dir, ignore_errors=True)
    shutil.copytree(work / "otter" / "student", student_dir)
    shutil.copytree(
        REPO / "student", student_dir / "student", ignore=shutil.ignore_patterns("__pycache__")
    )
    ship_rule_modules(student_dir)
    rewrite_public_tests(student_dir / "tests", public_rules(chapter))
    (student_dir / "requirements.txt").write_text(student_requirements())
    replace_export_cell(student_dir / f"{chapter}.ipynb")
    normalize_notebook(student_dir / f"{chapter}.ipynb", chapter)
    write_zip(DIST / "student" / f"{chapter}.zip", tree_files(student_dir, f"{chapter}/"))

    solution = DIST / "solutions" / f"{chapter}-solution.ipynb"
    solution.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(work / "otter" / "autograder" / f"{chapter}.ipynb", solution)
    remove_student_only_parts(solution)
    normalize_notebook(solution, chapter, strip_markers=True)

    package = work / "package"
    config = build_package(chapter, package)
    files = tree_files(package, "chapter/")
    files.update(tree_files(REPO / "autograder", "autograder/"))
    files.update(
        {
            "setup.sh": SETUP_SH.encode(),
            "run_autograder": RUN_AUTOGRADER.encode(),
            "requirements.txt": GRADER_REQUIREMENTS.encode(),
        }
    )
    grader_zip = DIST / "autograder" / f"{chapter}-autograder.zip"
    write_zip(grader_zip, files, executable={"setup.sh", "run_autograder"})
    return config


def ensure_built(chapter: str) -> None:
    """Builds ``chapter`` unless its grader zip, solution and student notebooks exist."""
    needed = [
        DIST / "autograder" / f"{chapter}-autograder.zip",
        DIST / "solutions" / f"{chapter}-solution.ipynb",
        DIST / "student" / chapter / f"{chapter}.ipynb",
    ]
    if not all(path.exists() for path in needed):
        build_chapter(chapter)


def grade_with_zip(grader_zip: Path, submission: Path) -> dict:
    """Grades like Gradescope: the zip unpacked as the source folder, its entry point run."""
    with tempfile.TemporaryDirectory(prefix="kit-grade-") as tmp:
        source = Path(tmp) / "source"
        with zipfile.ZipFile(grader_zip) as archive:
            archive.extractall(source)
        results = Path(tmp) / "results" / "results.json"
        subprocess.run(
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
            check=True,
        )
        return json.loads(results.read_text())


def prove_chapter(chapter: str) -> dict:
    grader_zip = DIST / "autograder" / f"{chapter}-autograder.zip"
    solution = grade_with_zip(grader_zip, DIST / "solutions" / f"{chapter}-solution.ipynb")
    stub = grade_with_zip(grader_zip, DIST / "student" / chapter / f"{chapter}.ipynb")
    leaks = scan_for_leaks(chapter, DIST / "student")
    return {
        "chapter": chapter,
        "questions": len({t["name"].split()[0] for t in solution["tests"]}),
        "points": solution["extra_data"]["max_score"],
        "solution": solution["score"],
        "stub": stub["score"],
        "leaks": leaks,
    }


def build_and_prove(chapter: str) -> dict:
    print(f"building {chapter} ...", flush=True)
    build_chapter(chapter)
    return prove_chapter(chapter)


def main(argv: list[str]) -> int:
    selected = argv or chapters()
    # Chapters build independently (each in build/<chapter>/): one process per core, since
    # Otter Assign and the proof gradings each use a single core.
    jobs = min(len(selected), os.cpu_count() or 1)
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            rows = list(pool.map(build_and_prove, selected))
    else:
        rows = [build_and_prove(chapter) for chapter in selected]
    print(f"\n{'chapter':<32}{'questions':>10}{'points':>8}{'solution':>10}{'stub':>7}  leaks")
    failed = False
    for row in rows:
        ok = row["solution"] == row["points"] and row["stub"] == 0 and not row["leaks"]
        failed |= not ok
        print(
            f"{row['chapter']:<32}{row['questions']:>10}{row['points']:>8g}"
            f"{row['solution']:>10g}{row['stub']:>7g}  {len(row['leaks'])}"
            f"{'' if ok else '   <-- FAILED'}"
        )
        for leak in row["leaks"][:10]:
            print(f"    leak: {leak}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
