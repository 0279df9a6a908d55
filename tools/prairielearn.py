"""PrairieLearn question folders, one per chapter, from the built grader zips (run by ``make``).

    python -m tools.prairielearn [CHAPTER ...]

Writes ``dist/prairielearn/<chapter>/`` from ``dist/autograder/<chapter>-autograder.zip``:

* ``info.json``: ``gradingMethod: External`` with the grader image (``deploy/Dockerfile``,
  ``make image``; the name is ``KIT_GRADER_IMAGE`` or :data:`DEFAULT_IMAGE`), the entry point
  and a timeout above the engine's own 7-minute cap;
* ``question.html``: a file upload for the notebook, and the grader's results;
* ``tests/``: the grader zip unpacked (the engine and the chapter package with its expected
  data; PrairieLearn copies it to ``/grade/tests`` for each job and never shows it to
  students), plus ``run_prairielearn``, the entry point.

Copy ``dist/prairielearn/<chapter>`` into the course's ``questions/`` folder. The UUID is derived
from the chapter's name, so rebuilding never makes PrairieLearn see a new question.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
import zipfile
from pathlib import Path

from tools.build import chapters
from tools.chapter_package import DIST

DEFAULT_IMAGE = "course-kit-grader:latest"
UUID_NAMESPACE = uuid.UUID("6f1c9e52-3b1d-4c38-9a51-0f2b7d3c9e10")  # the kit's own, fixed
TIMEOUT_S = 450  # the engine stops itself at 420 s; PrairieLearn allows at most 600
RUN_PRAIRIELEARN = """#!/bin/sh
# PrairieLearn's entry point (info.json): grades /grade/student with the same judge and
# sandbox as Gradescope and writes /grade/results/results.json. The image (deploy/Dockerfile)
# has the grader's Python in /opt/kit-venv; the kit's tests set the two variables.
cd "$(dirname "$0")" || exit 1
exec "${KIT_PYTHON:-/opt/kit-venv/bin/python}" -m autograder.prairielearn \\
    --base "${KIT_GRADE_BASE:-/grade}"
"""
QUESTION_HTML = """<pl-question-panel>
  <p><strong>{chapter}</strong>: upload your completed notebook <code>{chapter}.ipynb</code>
  (work in the notebook of the chapter's bundle; its public checks run in Jupyter or Colab).</p>
  <p>Each graded item is compared with a reference on many inputs; the results list every item
  with the input case that failed and the likely mistake.</p>
  <pl-file-upload file-names="{chapter}.ipynb"></pl-file-upload>
</pl-question-panel>

<pl-submission-panel>
  <pl-external-grader-results></pl-external-grader-results>
  <pl-file-preview></pl-file-preview>
</pl-submission-panel>
"""


def question_info(chapter: str, image: str) -> dict:
    return {
        "uuid": str(uuid.uuid5(UUID_NAMESPACE, chapter)),
        "title": chapter.split("_", 1)[1].replace("_", " ").capitalize(),
        "topic": "Deep learning",
        "tags": ["course-kit", chapter],
        "type": "v3",
        "singleVariant": True,
        "gradingMethod": "External",
        "externalGradingOptions": {
            "enabled": True,
            "image": image,
            "entrypoint": "/grade/tests/run_prairielearn",
            "timeout": TIMEOUT_S,
        },
    }


def build_question(chapter: str, image: str | None = None) -> Path:
    """Writes ``dist/prairielearn/<chapter>/``; returns it."""
    grader_zip = DIST / "autograder" / f"{chapter}-autograder.zip"
    if not grader_zip.is_file():
        raise FileNotFoundError(f"no grader zip for {chapter}: run `make` first")
    folder = DIST / "prairielearn" / chapter
    shutil.rmtree(folder, ignore_errors=True)
    tests = folder / "tests"
    with zipfile.ZipFile(grader_zip) as archive:
        for member in archive.namelist():
            if member not in ("setup.sh", "run_autograder", "requirements.txt"):
                archive.extract(member, tests)
    entry = tests / "run_prairielearn"
    entry.write_text(RUN_PRAIRIELEARN)
    entry.chmod(0o755)
    image = image or os.environ.get("KIT_GRADER_IMAGE") or DEFAULT_IMAGE
    (folder / "info.json").write_text(json.dumps(question_info(chapter, image), indent=2) + "\n")
    (folder / "question.html").write_text(QUESTION_HTML.format(chapter=chapter))
    return folder


def main(argv: list[str] | None = None) -> int:
    chosen = (argv if argv is not None else sys.argv[1:]) or chapters()
    for chapter in chosen:
        build_question(chapter)
    print(f"PrairieLearn questions: {DIST / 'prairielearn'} ({len(chosen)} chapters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
