"""Reads a submission into a list of code cells, without executing or unpickling anything.

Accepted: a notebook (``.ipynb``), Otter's export zip (its notebook is used; ``.OTTER_LOG`` and
every other member are ignored, never unpickled), a ``.py`` file with the definitions, or a
folder holding one of these (Gradescope's ``/autograder/submission``). Notebook JSON is read
with the standard ``json`` module rather than ``nbformat`` so that the grader zip needs only
numpy and torch; the structure is checked here by hand.
"""

from __future__ import annotations

import ast
import json
import linecache
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

MAX_SUBMISSION_BYTES = 20 * 2**20
# Cells the grader never runs: experiments (training runs, plots) and the notebook's own setup
# cell (Colab install, bundle check), by tag or by a marker on the cell's first line. The
# markers are upper case only, so that an ordinary comment ("# setup the data") never hides a
# student's definitions from the grader.
NOT_GRADED_TAGS = ("experiment", "setup")
NOT_GRADED_MARKER = re.compile(r"^\s*#\s*(EXPERIMENT\b|SETUP \(not graded\))")
RUNNABLE_CELL_MAGICS = ("%%time", "%%timeit", "%%capture")
IGNORED_MEMBERS = re.compile(r"(^|/)(__MACOSX|\.ipynb_checkpoints)(/|$)")


CELL_PREFIX = "<code cell "
# The one "cell" of a .py submission: the whole file, named by its own line numbers.
SCRIPT_CELL = 0


def cell_filename(number: int) -> str:
    """The file name a cell's code is compiled under, shown in error locations."""
    return f"{CELL_PREFIX}{number}>"


def is_cell_filename(filename: str) -> bool:
    return filename.startswith(CELL_PREFIX)


def cell_number(filename: str) -> int:
    """The number of the cell compiled under ``filename`` (see :func:`cell_filename`)."""
    return int(filename.removeprefix(CELL_PREFIX).rstrip(">"))


def describe_location(number: int, lines: list[str], line: int, function: str = "") -> str:
    """Line ``line`` of code cell ``number`` (whose lines are ``lines``) named the way the
    student finds it: Jupyter shows no number that matches the grader's count of code cells,
    so a cell is named by its first line; a ``.py`` submission (:data:`SCRIPT_CELL`) by the
    file's own line number. ``function`` is the function or method the line belongs to."""
    inside = f"in {function}, " if function and not function.startswith("<") else ""
    return f"{inside}line {line} of {describe_cell(number, lines)}"


def describe_cell(number: int, lines: list[str]) -> str:
    """Code cell ``number`` (whose lines are ``lines``) named by its first line, or "your .py
    file" for a ``.py`` submission (see :func:`describe_location`)."""
    if number == SCRIPT_CELL:
        return "your .py file"
    first = next((text.strip() for text in lines if text.strip()), "")
    first = first if len(first) <= 60 else first[:57] + "..."
    return f'the code cell that begins "{first}"'


def compile_cell(source: str, number: int) -> list:
    """The top-level statements of code cell ``number``, each compiled alone, under a file
    name registered with ``linecache`` so that tracebacks show the offending line.

    Raises SyntaxError (or ValueError, RecursionError, MemoryError) when the cell does not
    parse.
    """
    filename = cell_filename(number)
    lines = [line + "\n" for line in source.splitlines()]
    linecache.cache[filename] = (len(source), None, lines, filename)  # mtime None: never stale
    tree = ast.parse(source, filename=filename)
    return [
        compile(ast.Module(body=[stmt], type_ignores=[]), filename, "exec") for stmt in tree.body
    ]


class SubmissionError(Exception):
    """The submission cannot be read; the message is shown to the student."""


@dataclass
class Submission:
    """Code cells to run (number, source), with what was skipped and why.

    Cells are numbered as the student counts them in Jupyter or Colab: the n-th code cell of
    the notebook from the top (markdown and raw cells are not counted; experiment and setup
    cells are counted, though not run). The numbers identify cells inside the grader; what
    students read names a cell by its first line (:func:`describe_location`). A ``.py``
    submission is the single cell :data:`SCRIPT_CELL`.
    """

    cells: list[tuple[int, str]]
    skipped: list[str]
    chapter: str | None
    source_name: str


def _choose_file(folder: Path, notebook_name: str) -> Path:
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not IGNORED_MEMBERS.search(p.relative_to(folder).as_posix())
    )
    for suffix in (".ipynb", ".zip", ".py"):
        candidates = [p for p in files if p.suffix.lower() == suffix]
        named = [p for p in candidates if p.name == notebook_name]
        if len(candidates) == 1:
            return candidates[0]
        if named:
            return named[0]
        if candidates:
            listed = ", ".join(p.name for p in candidates)
            raise SubmissionError(
                f"several {suffix} files were submitted ({listed}); submit only {notebook_name}"
            )
    listed = ", ".join(p.name for p in files[:10]) or "nothing"
    raise SubmissionError(
        f"no notebook (.ipynb), export zip or .py file was found in the "
        f"submission (found: {listed})"
    )


def _read_capped(path: Path) -> bytes:
    with open(path, "rb") as handle:
        data = handle.read(MAX_SUBMISSION_BYTES + 1)
    if len(data) > MAX_SUBMISSION_BYTES:
        raise SubmissionError(
            f"the submitted file is larger than "
            f"{MAX_SUBMISSION_BYTES // 2**20} MB; clear the outputs and retry"
        )
    return data


def _notebook_from_zip(data: bytes, path: Path, notebook_name: str) -> bytes:
    import io

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [
            info
            for info in archive.infolist()
            if not info.is_dir() and not IGNORED_MEMBERS.search(info.filename)
        ]
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise SubmissionError(f"{path.name} is not a readable zip file ({exc})") from None
    notebooks = [info for info in members if info.filename.lower().endswith(".ipynb")]
    if not notebooks:
        raise SubmissionError(
            f"the zip {path.name} holds no notebook (.ipynb); export with "
            f"the notebook's last cell or upload the .ipynb itself"
        )
    if len(notebooks) > 1:
        named = [info for info in notebooks if Path(info.filename).name == notebook_name]
        if not named:
            raise SubmissionError(
                f"the zip {path.name} holds several notebooks; it should hold only {notebook_name}"
            )
        notebooks = named
    info = notebooks[0]
    if info.file_size > MAX_SUBMISSION_BYTES:
        raise SubmissionError(f"the notebook in {path.name} is too large")
    with archive.open(info) as member:
        content = member.read(MAX_SUBMISSION_BYTES + 1)
    if len(content) > MAX_SUBMISSION_BYTES:
        raise SubmissionError(f"the notebook in {path.name} is too large")
    return content


def _cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        return "".join(source)
    if isinstance(source, str):
        return source
    raise SubmissionError("the notebook is malformed: a cell's source is not text")


def neutralize_ipython(source: str) -> str | None:
    """Replaces IPython-only lines with ``pass``; None when the whole cell cannot run."""
    lines = source.splitlines()
    first = next((line.strip() for line in lines if line.strip()), "")
    if first.startswith("%%"):
        if not first.startswith(RUNNABLE_CELL_MAGICS):
            return None
        lines = lines[lines.index(next(line for line in lines if line.strip())) + 1 :]
    cleaned = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            cleaned.append(line[: len(line) - len(stripped)] + "pass")
        else:
            cleaned.append(line)
    return "\n".join(cleaned)


def _is_not_graded(cell: dict, source: str) -> bool:
    metadata = cell.get("metadata")
    tags = metadata.get("tags", []) if isinstance(metadata, dict) else []
    first = next((line for line in source.splitlines() if line.strip()), "")
    tagged = isinstance(tags, list) and any(tag in NOT_GRADED_TAGS for tag in tags)
    return tagged or bool(NOT_GRADED_MARKER.match(first))


def _cells_from_notebook(data: bytes, name: str) -> tuple[list, list, str | None]:
    try:
        notebook = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise SubmissionError(f"{name} is not a notebook: it is not UTF-8 text") from None
    except (ValueError, RecursionError):
        raise SubmissionError(
            f"{name} is not a valid notebook: its JSON is malformed; open "
            f"it in Jupyter, save, and upload again"
        ) from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise SubmissionError(f"{name} is not a valid notebook: it has no list of cells")
    metadata = notebook.get("metadata")
    kit = metadata.get("kit") if isinstance(metadata, dict) else None
    chapter = kit.get("chapter") if isinstance(kit, dict) else None
    cells, skipped = [], []
    number = 0
    for cell in notebook["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        number += 1
        source = _cell_source(cell)
        if _is_not_graded(cell, source):
            continue
        runnable = neutralize_ipython(source)
        if runnable is None:
            skipped.append(
                f"{describe_cell(number, source.splitlines())} was skipped: its cell magic "
                f"is not Python"
            )
            continue
        cells.append((number, runnable))
    return cells, skipped, chapter if isinstance(chapter, str) else None


def load_submission(path: str | Path, notebook_name: str) -> Submission:
    """Reads ``path`` (file or folder) into a :class:`Submission`; raises SubmissionError."""
    path = Path(path)
    if path.is_dir():
        path = _choose_file(path, notebook_name)
    if not path.is_file():
        raise SubmissionError(f"no submission found at {path.name}")
    data = _read_capped(path)
    if not data.strip():
        raise SubmissionError(f"the submitted file {path.name} is empty")
    suffix = path.suffix.lower()
    if suffix == ".zip" or (suffix not in (".ipynb", ".py") and data[:2] == b"PK"):
        data = _notebook_from_zip(data, path, notebook_name)
        suffix = ".ipynb"
    if b"\x00" in data:  # text (JSON notebooks included) never holds a NUL byte
        raise SubmissionError(f"{path.name} is a binary file, not a notebook or Python file")
    if suffix == ".ipynb" or data.lstrip()[:1] == b"{":
        cells, skipped, chapter = _cells_from_notebook(data, path.name)
        return Submission(cells, skipped, chapter, path.name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SubmissionError(f"{path.name} is not UTF-8 text") from None
    runnable = neutralize_ipython(text)
    return Submission([(SCRIPT_CELL, runnable or "")], [], None, path.name)
