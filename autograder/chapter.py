"""A chapter's grading package: what the judge knows about the checks, and the expected data.

Layout of a package folder (``chapter/`` in a grader zip; readable by root only there):

    chapter.json        chapter id, notebook name, forbidden API, checks and their outputs
    checks_source.py    the checks module with comments stripped; sent to the child
    expected/*.npy      reference outputs, one plain array per (check, case, output)

Written at build time by ``tools/chapter_package.py``; read here with numpy only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autograder.arrays import array_file_name


@dataclass(frozen=True)
class OutputSpec:
    name: str
    points: float
    rtol: float
    atol: float
    hint: str
    needs: tuple[str, ...] = ()
    public_gap: str = ""  # what the public checks do not test (see autograder.checks.Output)
    case_hints: tuple[tuple[dict, str], ...] = ()  # (settings, hint): see autograder.checks


@dataclass(frozen=True)
class CheckSpec:
    index: int
    name: str
    question: str
    uses: tuple[str, ...]
    timeout_s: float
    cases: tuple[str, ...]
    outputs: tuple[OutputSpec, ...]
    replaces: tuple[str, ...] = ()
    pattern_axes: tuple[str, ...] = ()
    error_hints: tuple[tuple[str, str], ...] = ()  # (regex, hint): see autograder.checks.Check


@dataclass
class ChapterPackage:
    root: Path
    chapter: str
    notebook_name: str
    forbidden: tuple[str, ...]
    checks: list[CheckSpec]

    @classmethod
    def load(cls, root: str | Path) -> ChapterPackage:
        root = Path(root)
        data = json.loads((root / "chapter.json").read_text())
        checks = [
            CheckSpec(
                index=c["index"],
                name=c["name"],
                question=c["question"],
                uses=tuple(c["uses"]),
                replaces=tuple(c.get("replaces", ())),
                pattern_axes=tuple(c.get("pattern_axes", ())),
                error_hints=tuple(
                    (str(pattern), str(hint)) for pattern, hint in c.get("error_hints", ())
                ),
                timeout_s=float(c["timeout_s"]),
                cases=tuple(c["cases"]),
                outputs=tuple(
                    OutputSpec(
                        **{
                            **o,
                            "needs": tuple(o.get("needs", ())),
                            "case_hints": tuple(
                                (dict(scope), str(hint)) for scope, hint in o.get("case_hints", ())
                            ),
                        }
                    )
                    for o in c["outputs"]
                ),
            )
            for c in data["checks"]
        ]
        return cls(root, data["chapter"], data["notebook"], tuple(data["forbidden"]), checks)

    @property
    def max_score(self) -> float:
        return sum(o.points for c in self.checks for o in c.outputs)

    @property
    def questions(self) -> list[str]:
        return sorted({c.question for c in self.checks})

    def check_source(self) -> str:
        return (self.root / "checks_source.py").read_text()

    def expected(self, check_index: int, case_index: int, output_name: str) -> np.ndarray:
        path = self.root / "expected" / array_file_name(check_index, case_index, output_name)
        return np.load(path, allow_pickle=False)
