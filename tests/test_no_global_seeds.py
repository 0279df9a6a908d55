"""The kit's decision "seeded torch.Generators, never global seeds", enforced: no file of the
kit seeds a global generator for good. Models whose layers draw from the global generator are
built inside ``student.seeding.seeded(seed)``, which restores the global state afterwards.
A line may seed on purpose (to imitate a student) when it says so with ``# global seed on
purpose``."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GLOBAL_SEED = re.compile(
    r"(?<![\w.])(torch\.manual_seed|torch\.random\.manual_seed|torch\.cuda\.manual_seed(_all)?"
    r"|np\.random\.seed|numpy\.random\.seed|random\.seed)\(\s*[^)\s]")
ALLOWED = {REPO / "student" / "seeding.py", Path(__file__).resolve()}
FOLDERS = ("assignments", "solutions", "student", "autograder", "tools", "tests")


def kit_files() -> list[Path]:
    return sorted(path for folder in FOLDERS for path in (REPO / folder).rglob("*.py")
                  if path not in ALLOWED and "hostile/submissions" not in path.as_posix())


def global_seeds(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()
            if GLOBAL_SEED.search(line) and "# global seed on purpose" not in line]


@pytest.mark.parametrize("line,found", [
    ("torch.manual_seed(0)", True),
    ("    np.random.seed(seed)", True),
    ("random.seed(1)", True),
    ("rng = torch.Generator().manual_seed(0)", False),
    ("numpy.random.seed()  # fresh entropy", False),
    ("torch.manual_seed(seed)  # global seed on purpose: imitates a student", False),
])
def test_the_scan_tells_global_seeds_from_generators(line, found):
    assert bool(global_seeds(line)) is found


def test_no_file_of_the_kit_seeds_a_global_generator():
    offenders = [f"{path.relative_to(REPO)}: {line}" for path in kit_files()
                 for line in global_seeds(path.read_text())]
    assert not offenders, "seed a torch.Generator, or build inside student.seeding.seeded:\n" + \
        "\n".join(offenders)
