"""Leak scan: nothing hidden may reach the student bundle.

Looks in every file under the student distribution for: Otter solution markers; the hidden
check module's or the reference module's distinctive lines; solution-block lines of the master;
files that belong to the grader (expected data, chapter packages, the reference module).
"""

from __future__ import annotations

import re
from pathlib import Path

from tools.chapter_package import REPO

MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "SOLUTION NO PROMPT", "# HIDDEN")
FORBIDDEN_FILES = re.compile(r"(checks(_source)?\.py|chapter\.json|\.npy|ch\d\d_\w+\.py)$")
MIN_LINE = 28  # shorter lines (e.g. "return x") occur in stubs and prose legitimately


def _distinctive_lines(text: str) -> set[str]:
    lines = set()
    for line in text.splitlines():
        stripped = line.strip()
        if (
            len(stripped) >= MIN_LINE
            and not stripped.startswith(("#", '"""', "def ", "class ", "from ", "import "))
            and "NotImplementedError" not in stripped
            and not stripped.startswith("assert")
        ):
            lines.add(stripped)
    return lines


def _solution_block_lines(master: str) -> tuple[set[str], set[str]]:
    """(lines inside solution blocks, lines of the master outside them: public text)."""
    inside, lines, public = False, set(), set()
    for line in master.splitlines():
        if line.startswith("# # "):  # a raw-cell delimiter (question level), not a code block
            continue
        if "# BEGIN SOLUTION" in line:
            inside = True
        elif "# END SOLUTION" in line:
            inside = False
        elif inside and len(line.strip()) >= 12:
            lines.add(line.strip())
        elif not inside:
            public.add(line.strip())
            if line.startswith("# "):  # a markdown line in the percent format
                public.add(line[2:].strip())
    return lines, public


def scan_for_leaks(chapter: str, student_root: Path) -> list[str]:
    """Every leak found in ``student_root`` (the bundle folder and its zip), as text."""
    chapter_dir = REPO / "assignments" / chapter
    secret_lines = _distinctive_lines((chapter_dir / "checks.py").read_text())
    secret_lines |= _distinctive_lines((REPO / "solutions" / f"ch{chapter}.py").read_text())
    solution_lines, public_lines = _solution_block_lines((chapter_dir / "master.py").read_text())
    # Scaffolding the students are given (e.g. ``self.in_features = in_features``) may equal
    # a line of the reference: public text of the master is never a leak.
    secret_lines = (secret_lines | solution_lines) - public_lines
    # The shipped student/ package is public by definition: a line it shares with a hidden
    # module (``if isinstance(value, torch.Tensor):``) is common Python, not a leak.
    for shipped in sorted((REPO / "student").rglob("*.py")):
        secret_lines -= {line.strip() for line in shipped.read_text().splitlines()}
    found = []
    bundle = student_root / chapter
    files = [p for p in bundle.rglob("*") if p.is_file()]
    for path in files:
        relative = path.relative_to(student_root).as_posix()
        if FORBIDDEN_FILES.search(path.name):
            found.append(f"{relative}: grader-only file")
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".ipynb":  # compare the cells' code, not its JSON-quoted lines
            import nbformat

            text += "\n" + "\n".join(
                cell.source for cell in nbformat.reads(text, as_version=4).cells
            )
        for marker in MARKERS:
            if marker in text:
                found.append(f"{relative}: contains '{marker}'")
        content_lines = {line.strip() for line in text.splitlines()}
        for line in sorted(secret_lines & content_lines):
            found.append(f"{relative}: contains hidden line '{line[:60]}'")
    import zipfile

    archive = student_root / f"{chapter}.zip"
    if archive.exists():
        with zipfile.ZipFile(archive) as handle:
            names = sorted(handle.namelist())
        expected = sorted(f"{chapter}/{p.relative_to(bundle).as_posix()}" for p in files)
        if names != expected:
            found.append(f"{archive.name}: members differ from the bundle folder")
    return found
