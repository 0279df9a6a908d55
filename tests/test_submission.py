"""Reading submissions: formats, experiment cells, IPython lines."""
from __future__ import annotations

import io
import json
import zipfile

import pytest

from autograder.submission import SubmissionError, load_submission, neutralize_ipython

NAME = "01_mlp_backprop.ipynb"


def notebook(*cells, chapter=None):
    metadata = {"kit": {"chapter": chapter}} if chapter else {}
    return json.dumps({"cells": list(cells), "metadata": metadata, "nbformat": 4,
                       "nbformat_minor": 5})


def code(source, tags=()):
    return {"cell_type": "code", "source": source, "metadata": {"tags": list(tags)},
            "outputs": [], "execution_count": None}


def test_notebook_cells_keep_numbers_and_skip_experiments(tmp_path):
    path = tmp_path / NAME
    path.write_text(notebook({"cell_type": "markdown", "source": "# hi", "metadata": {}},
                             code("x = 1"), code("train()", tags=["experiment"]),
                             code("# EXPERIMENT: not run\ntrain()"), code(["y = ", "2"]),
                             code("# SETUP (not graded)\nraise FileNotFoundError"),
                             code("install()", tags=["setup"]),
                             code("# Setup the data; experiment later\nz = 3"),
                             chapter="01_mlp_backprop"))
    submission = load_submission(path, NAME)
    # numbered as the student counts code cells in Jupyter: markdown cells are not counted
    assert submission.cells == [(1, "x = 1"), (4, "y = 2"),
                                (7, "# Setup the data; experiment later\nz = 3")]
    assert submission.chapter == "01_mlp_backprop"


def test_export_zip_uses_the_notebook_and_ignores_everything_else(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(NAME, notebook(code("z = 3")))
        archive.writestr(".OTTER_LOG", b"\x80\x04not json, a pickle")
        archive.writestr("__MACOSX/._x.ipynb", b"junk")
    path = tmp_path / "export.zip"
    path.write_bytes(buffer.getvalue())
    assert load_submission(path, NAME).cells == [(1, "z = 3")]


def test_folder_picks_the_notebook(tmp_path):
    (tmp_path / NAME).write_text(notebook(code("a = 1")))
    (tmp_path / "notes.txt").write_text("hello")
    assert load_submission(tmp_path, NAME).source_name == NAME


def test_python_file_is_one_cell_named_by_its_own_line_numbers(tmp_path):
    from autograder.submission import SCRIPT_CELL

    path = tmp_path / "answers.py"
    path.write_text("class Linear:\n    pass\n")
    assert load_submission(path, NAME).cells == [(SCRIPT_CELL, "class Linear:\n    pass")]


@pytest.mark.parametrize("content,message", [
    (b"", "is empty"),
    (b"{not json", "malformed"),
    (b"\x00\x01\x02\xff" * 10, "binary"),
    (b'{"cells": 3}', "no list of cells"),
])
def test_unreadable_files_raise_a_clear_message(tmp_path, content, message):
    path = tmp_path / "sub.ipynb" if content.startswith(b"{") else tmp_path / "sub.bin"
    path.write_bytes(content)
    with pytest.raises(SubmissionError, match=message):
        load_submission(path, NAME)


def test_zip_without_notebook(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "nothing here")
    path = tmp_path / "export.zip"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(SubmissionError, match="holds no notebook"):
        load_submission(path, NAME)


@pytest.mark.parametrize("source,expected", [
    ("%pip install x\nimport torch", "pass\nimport torch"),
    ("if True:\n    !ls\n    y = 1", "if True:\n    pass\n    y = 1"),
    ("%%time\nx = 1", "x = 1"),
    ("%%bash\nls", None),
])
def test_ipython_lines_are_neutralized(source, expected):
    assert neutralize_ipython(source) == expected
