"""The hostile suite: one row per bad submission, with the exact outcome the grader must give.

Each case names how its submission is built (files in ``submissions/``) and what must come out:
which items fail and a phrase their message must contain (every other item must pass, and the
score must be the sum of the passing items' points), phrases of the student-visible output,
and, where one is needed, an extra check. Rows 1-26 are the issue's table; rows E1-E3 are
further attacks found while hardening the engine.

``degraded`` is the outcome expected without root (no privilege drop): the same unless given;
``None`` where a degraded grader is knowingly open to the attack, and only the validity of
results.json and the report of the degraded mode are checked.
"""
from __future__ import annotations

import io
import pickle
import re
import shutil
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from tests.hostile.harness import (
    CHAPTER, NOTEBOOK_NAME, SUBMISSIONS, Builder, Run, RunContext, expand, notebook_cells,
    notebook_json, reference_source)

SAME = "same"


# ------------------------------------------------------------------------------------------
# Builders
# ------------------------------------------------------------------------------------------

def reference_plus(snippet: str | None = None) -> Builder:
    """A ``.py`` submission: the reference, then the hostile snippet (which may override a
    class with ``class Linear(Linear): ...``)."""
    def build(context: RunContext) -> None:
        text = reference_source()
        if snippet:
            text += "\n\n" + expand((SUBMISSIONS / snippet).read_text(), context.substitutions)
        (context.submission_dir / "submission.py").write_text(text)
    return build


def reference_free(snippet: str) -> Builder:
    """A ``.py`` submission that is only the hostile snippet (no implementation of its own)."""
    def build(context: RunContext) -> None:
        text = expand((SUBMISSIONS / snippet).read_text(), context.substitutions)
        (context.submission_dir / "submission.py").write_text(text)
    return build


def notebook(percent_file: str) -> Builder:
    """A notebook built from a percent-format file (``# %%`` cells)."""
    def build(context: RunContext) -> None:
        text = expand((SUBMISSIONS / percent_file).read_text(), context.substitutions)
        (context.submission_dir / NOTEBOOK_NAME).write_text(notebook_json(notebook_cells(text)))
    return build


def committed(file_name: str, as_name: str = NOTEBOOK_NAME) -> Builder:
    def build(context: RunContext) -> None:
        shutil.copy(SUBMISSIONS / file_name, context.submission_dir / as_name)
    return build


def raw(name: str, content: bytes) -> Builder:
    def build(context: RunContext) -> None:
        (context.submission_dir / name).write_bytes(content)
    return build


def zipped(name: str, members: Callable[[RunContext], Mapping[str, bytes]]) -> Builder:
    def build(context: RunContext) -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for member, data in members(context).items():
                archive.writestr(member, data)
        (context.submission_dir / name).write_bytes(buffer.getvalue())
    return build


class UnpicklingTripwire:
    """Pickles to a call that creates ``path``: if anything unpickles it, the file appears."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def otter_export(context: RunContext) -> dict[str, bytes]:
    """What Otter's export writes, with a crafted log: notebook, .OTTER_LOG, zip name, and an
    extra pickle for good measure."""
    cells = notebook_cells(expand((SUBMISSIONS / "case24_pickle_nb.py").read_text(),
                                  context.substitutions))
    tripwire = pickle.dumps(UnpicklingTripwire(context.marker("otter-log")))
    return {NOTEBOOK_NAME: notebook_json(cells).encode(), ".OTTER_LOG": tripwire,
            "__zip_filename__": b"01_mlp_backprop_2026_01_01T00_00_00_000000.zip",
            "answers.pkl": tripwire}


# ------------------------------------------------------------------------------------------
# The table
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Expect:
    """failing: item ("Linear: y"), all items of a check ("Linear: *") or every item ("*") ->
    a phrase of its message (case-insensitive). output: phrases of the visible output."""

    failing: Mapping[str, str] = field(default_factory=dict)
    output: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    id: str
    row: str
    what: str
    build: Builder
    expect: Expect
    degraded: Expect | None | str = SAME
    check: Callable[[Run, "Suite"], None] | None = None  # noqa: F821 - see test module
    runs: int = 1
    slow: bool = False
    reads_secrets: bool = False  # in degraded mode the canary may legitimately appear

    def expectation(self, full_protection: bool) -> Expect | None:
        if full_protection or self.degraded == SAME:
            return self.expect
        return self.degraded  # type: ignore[return-value]


# -- extra checks, one per case that needs more than the item table ---------------------

def hostile_lines(run: Run) -> dict[str, str]:
    """label -> REFUSED/DONE, from the lines the hostile helpers print."""
    return dict(re.findall(r"hostile: (.+?): (REFUSED|DONE)", run.output))


def nothing_read(run: Run, suite) -> None:
    if suite.full_protection or str(run.protections.get("files", "")).startswith("active"):
        assert "hostile: read 0 of 12 secrets" in run.output, run.output
    else:  # what the DEGRADED report says is true: the child reads what the grader can
        assert "hostile: read 0 of" not in run.output, run.output


def forged_results_ignored(run: Run, suite) -> None:
    assert "FORGED" not in run.results_text
    if suite.full_protection:
        assert hostile_lines(run).get("judge results") == "REFUSED", run.output


def killed_at_deadlines(run: Run, suite) -> None:
    # two checks of 10 s each, plus three child start-ups (a loaded 2-core machine: 15 s each)
    assert run.seconds < 2 * 10 + 3 * 15, run.seconds


def fork_bomb_refused(run: Run, suite) -> None:
    message = run.items()["Linear: y"]["output"]
    started = re.search(r"fork bomb: (\d+) processes started, then refused", message)
    assert started, message
    assert int(started.group(1)) < 32, message


def network_refused_at_once(run: Run, suite) -> None:
    """Every probe (TCP to 127.0.0.1 and 127.0.0.2, HTTP, DNS over UDP to 127.0.0.3: only
    listeners the suite opened) is refused at once, and none of the listeners saw anything.
    Where the network is reported unprotected, the probes reached loopback only."""
    lines = re.findall(r"hostile-net: (\w+): (.*?) in ([\d.]+) s", run.output)
    assert [label for label, _, _ in lines] == ["tcp1", "tcp2", "http", "dns"], run.output
    if not str(run.protections.get("network", "")).startswith(("network namespace", "blocked")):
        return  # reported as unprotected; nothing more to check
    for label, outcome, seconds in lines:
        assert outcome.startswith("refused"), (label, outcome)
        assert float(seconds) < 2.0, (label, seconds)
    assert suite.grader.listeners.arrivals() == [], "a probe reached a loopback listener"


PUBLIC_TEST = """
layer = Linear(3, 2)
layer.weight = torch.arange(6.0, dtype=torch.float64).reshape(3, 2)
layer.bias = torch.tensor([0.5, -0.5], dtype=torch.float64)
x = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
assert torch.allclose(layer.forward(x), x @ layer.weight + layer.bias)
dupstream = torch.ones(1, 2, dtype=torch.float64)
assert torch.allclose(layer.backward(dupstream), dupstream @ layer.weight.T)
"""


def passes_public_test(run: Run, suite) -> None:
    """The hard-coded notebook passes this (emulated) public test; the hidden checks fail it."""
    import json

    namespace: dict = {}
    notebook_file = run.run_dir / "submission" / NOTEBOOK_NAME
    for cell in json.loads(notebook_file.read_text())["cells"]:
        exec(compile(cell["source"], "<public>", "exec"), namespace)  # noqa: S102 - our file
    exec(compile(PUBLIC_TEST, "<public test>", "exec"), namespace)  # noqa: S102


def output_bounded(run: Run, suite) -> None:
    assert len(run.results_text) < 64 * 1024, len(run.results_text)
    assert len(run.output) <= 8000
    assert "flood-start" in run.output
    assert re.search(r"\[\.\.\. \d+ bytes of output left out \.\.\.\]", run.output)


def never_unpickled(run: Run, suite) -> None:
    for name in ("marker-unpickled", "marker-otter-log"):
        assert not (run.run_dir / name).exists(), f"{name}: something unpickled the submission"


def grader_files_untouched(run: Run, suite) -> None:
    if not suite.full_protection:
        return
    lines = hostile_lines(run)
    grader_labels = [label for label in lines if label.startswith("grader:")]
    assert len(grader_labels) == 8, lines
    assert all(lines[label] == "REFUSED" for label in grader_labels), lines
    assert suite.source_digest(run.run_dir / "source") == suite.pristine_digest
    assert (run.run_dir / "submission" / "submission.py").read_text().startswith('"""')
    assert not (run.run_dir / "planted.txt").exists()


def host_files_refused(run: Run, suite) -> None:
    """Issue 25: nothing of the host beyond the Python installation and its work folder."""
    if not str(run.protections.get("files", "")).startswith("active"):
        return  # reported as unconfined (DEGRADED); nothing more to check
    lines = hostile_lines(run)
    for label in ("reference in a checkout", "grader zip", "write a shared folder"):
        assert lines.get(label) == "REFUSED", (label, run.output)
    assert "stolen" not in run.output
    assert list((run.run_dir / "shared-writable").iterdir()) == []


def forged_events_ignored(run: Run, suite) -> None:
    assert "FORGED" not in run.results_text
    assert run.seconds < 40, "a forged check_start extended a deadline"


def daemon_did_not_outlive(run: Run, suite) -> None:
    time.sleep(1.0)
    assert "FORGED" not in run.results_text
    assert "FORGED" not in (run.run_dir / "results" / "results.json").read_text()
    heartbeats = list(run.run_dir.glob("sandbox/*/work/kit-hostile-heartbeat"))
    assert heartbeats, "the daemon never ran: the case tests nothing"
    for heartbeat in heartbeats:  # it ran; it must have stopped when grading ended
        assert heartbeat.stat().st_mtime < run.ended_at + 0.3, "the daemon outlived grading"


def identical_results(runs: list[Run]) -> None:
    """Identical but for the run's own time, folders and sandbox user."""
    def stable(run: Run) -> dict:
        results = {key: value for key, value in run.results.items() if key != "execution_time"}
        extra = results.pop("extra_data")
        return dict(results, chapter=extra["chapter"], max_score=extra["max_score"])

    assert stable(runs[0]) == stable(runs[1]) == stable(runs[2])


NOT_FOUND = "not found"
ENDED = "process ended"
TIME = "time limit"
MEMORY = "memory limit"

CASES: list[Case] = [
    Case("c01_reference", "1", "the reference solution, graded three times",
         reference_plus(), Expect(), runs=3),
    Case("c02_untouched_stubs", "2", "the notebook handed out, untouched",
         notebook("case02_stubs_nb.py"), Expect({"*": "not implemented"})),
    Case("c03_missing_names", "3", "ReLU misnamed, MSELoss missing",
         reference_plus("case03_missing_names.py"),
         Expect({"ReLU: *": "ReLU not found", "MSELoss: *": "MSELoss not found"})),
    Case("c04_broken_cells", "4", "a cell that raises, a cell that does not parse",
         notebook("case04_broken_cells_nb.py"),
         Expect({"Sigmoid: *": "Sigmoid not found"},
                output=("does not parse", "ZeroDivisionError", "this cell raises on purpose"))),
    Case("c05_invalid_json", "5", "a notebook that is not valid JSON",
         committed("case05_invalid_json.ipynb"), Expect({"*": "its JSON is malformed"})),
    Case("c05_empty_file", "5", "an empty file",
         raw(NOTEBOOK_NAME, b""), Expect({"*": "is empty"})),
    Case("c05_binary_file", "5", "a binary file",
         raw(NOTEBOOK_NAME, bytes(range(256)) * 64), Expect({"*": "is a binary file"})),
    Case("c05_zip_without_notebook", "5", "a zip with no notebook",
         zipped("submission.zip", lambda context: {"notes.txt": b"hello",
                                                   "layers.py": b"import torch\n"}),
         Expect({"*": "holds no notebook"})),
    Case("c06_broadcasting_shape", "6", "grad_bias of shape (out, 1) instead of (out,)",
         reference_plus("case06_broadcast_shape.py"),
         Expect({"Linear: grad_bias": "shapes broadcast against each other"})),
    Case("c07_dtype_numpy_device", "7", "float32, a numpy array, a tensor on another device",
         reference_plus("case07_dtype_numpy_device.py"),
         Expect({"Linear: y": "has dtype float32, expected float64",
                 "ReLU: y": "is a numpy.ndarray, expected a torch.Tensor",
                 "Tanh: y": "is on device meta; return CPU tensors"})),
    Case("c08_nan_inf", "8", "NaN in Sigmoid's output, an infinite loss",
         reference_plus("case08_nan_inf.py"),
         Expect({"Sigmoid: y": "contains NaN", "MSELoss: loss": "contains inf"})),
    Case("c09_tolerance", "9", "one ulp off (passes) versus a relative 1e-3 (fails)",
         reference_plus("case09_tolerance.py"), Expect({"Linear: dx": "is wrong in"})),
    Case("c10_lying_objects", "10", "__eq__ always True; a lying tensor subclass",
         reference_plus("case10_lying_objects.py"),
         Expect({"ReLU: y": "AlwaysEqual, expected a torch.Tensor",
                 "Tanh: y": "LyingTensor, expected a torch.Tensor"})),
    Case("c11_patched_comparisons", "11", "patches every comparison, Otter and unittest",
         reference_plus("case11_patch_comparisons.py"), Expect({"Linear: y": "is wrong in"})),
    Case("c12_reads_secrets", "12", "reads checks, reference, metadata; prints and raises them",
         reference_plus("case12_read_secrets.py"),
         Expect({"Linear: *": "", "Linear: y": "RuntimeError: stolen:"}, output=("REFUSED",)),
         check=nothing_read, reads_secrets=True),
    Case("c13_forges_results", "13", "writes a forged results.json, then os._exit(0)",
         reference_plus("case13_forge_results.py"),
         Expect({"Linear: *": ENDED}, output=("Process ended",)),
         check=forged_results_ignored, slow=True),
    Case("c14_ends_the_process", "14", "sys.exit, os._exit, SIGKILL at import and in methods",
         reference_plus("case14_process_exits.py"),
         Expect({"ReLU: *": ENDED, "Sigmoid: *": ENDED, "Tanh: *": ENDED},
                output=("sys.exit()", "Process ended")), slow=True),
    Case("c15_loop_at_import", "15", "an endless loop at import that swallows everything",
         reference_plus("case15a_loop_at_import.py"), Expect(output=("Time limit",)), slow=True),
    Case("c15_loops_in_methods", "15", "a spin loop; a loop ignoring SIGALRM and exceptions",
         reference_plus("case15b_loops_in_methods.py"),
         Expect({"Linear: *": TIME, "ReLU: *": TIME}), check=killed_at_deadlines, slow=True),
    Case("c16_memory", "16", "50 GB at once; memory growing by 10 MB steps",
         reference_plus("case16_memory.py"),
         Expect({"Linear: *": "", "Linear: y": MEMORY, "ReLU: *": "", "ReLU: y": MEMORY}),
         slow=True),
    Case("c17_fork_bomb", "17", "a fork bomb of at most 60 sleeping processes",
         reference_plus("case17_fork_bomb.py"),
         Expect({"Linear: *": "",
                 "Linear: y": "refused: [Errno 11] Resource temporarily unavailable"}),
         check=fork_bomb_refused, slow=True),
    Case("c18_network", "18", "TCP, HTTP and DNS probes of loopback listeners",
         reference_plus("case18_network.py"), Expect(output=("hostile-net",)),
         check=network_refused_at_once),
    Case("c19_forbidden_routes", "19", "library layers by every route, the trap switched off",
         reference_plus("case19_forbidden_routes.py"),
         Expect({"Linear: *": "torch.nn.functional.linear",
                 "Linear.init_params: *": "torch.nn.functional.linear",
                 "ReLU: *": "torch.nn.functional.relu",
                 "Sigmoid: *": "getattr(torch.nn.functional, <computed name>)",
                 "Tanh: *": "torch.ops.aten.tanh",
                 "LeakyReLU(0.1): *": "torch.nn.functional.leaky_relu",
                 "MSELoss: *": "torch._C._nn.mse_loss",
                 "CrossEntropyLoss: *": "operator.attrgetter"})),
    Case("c20_global_rng", "20", "seeds and consumes the global generators",
         reference_plus("case20_global_rng.py"), Expect()),
    Case("c21_in_place", "21", "modifies its input tensors in place",
         reference_plus("case21_in_place.py"),
         Expect({"ReLU: *": "changed its input x in place",
                 "Linear: dx": "changed its input dupstream in place",
                 "Linear: grad_weight": "changed its input dupstream in place",
                 "Linear: grad_bias": "changed its input dupstream in place"})),
    Case("c22_hardcoded_public_tests", "22", "hard-codes the public test's outputs",
         notebook("case22_hardcoded_nb.py"),
         Expect({"Linear: *": "is wrong in",
                 "Linear.init_params: *": "has no attribute 'init_params'"}),
         check=passes_public_test),
    Case("c23_floods_stdout", "23", "prints megabytes, binary included",
         reference_plus("case23_floods_stdout.py"), Expect(), check=output_bounded),
    Case("c24_crafted_pickles", "24", "an Otter export with a crafted .OTTER_LOG; pickled output",
         zipped("01_mlp_backprop.zip", otter_export),
         Expect({"Linear: y": "could not be read back"}), check=never_unpickled),
    Case("c25_writes_everywhere", "25", "writes to home, /tmp and every grader file",
         reference_plus("case25_writes_everywhere.py"), Expect(), degraded=None,
         check=grader_files_untouched),
    Case("c26_other_chapter", "26", "a notebook of chapter 02",
         committed("case26_other_chapter.ipynb"),
         Expect({"*": "chapter 02_cnn_from_scratch, but this assignment is chapter "
                      f"{CHAPTER}"})),
    Case("f1_host_files", "F1", "imports the reference from the checkout, reads dist/, "
         "/proc of others, writes a shared folder", reference_free("case27_host_files.py"),
         Expect({"*": NOT_FOUND}), check=host_files_refused),
    Case("e1_forged_protocol", "E1", "forged protocol events: protections, deadlines, reports",
         reference_plus("extra1_forged_protocol.py"),
         Expect({"Linear: *": TIME, "ReLU: y": "is wrong in"}), check=forged_events_ignored,
         slow=True),
    Case("e2_daemon", "E2", "a daemon that tries to outlive grading and rewrite results.json",
         reference_plus("extra2_daemon_outlives.py"), Expect(), check=daemon_did_not_outlive),
    Case("e3_links_to_expected", "E3", "outputs replaced by links to the expected data",
         reference_plus("extra3_output_links.py"),
         Expect({"Linear: dx": "could not be read back"})),
]
