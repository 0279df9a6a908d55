"""The language in which chapters define their hidden checks, and the code that runs one.

A chapter's ``assignments/<chapter>/checks.py`` builds a list ``CHECKS`` of :class:`Check`.
Each check exercises one part of the chapter's API (say ``Linear``) on seeded inputs and
records named outputs (``y``, ``dx``, ``grad_weight`` ...). Every output is a graded item.

The same :func:`run_check` runs a check twice:

* at build time, in a trusted process, against the reference in ``solutions/``; the outputs
  are saved as the expected data shipped (readable by root only) in the grader zip;
* at grading time, in the sandboxed child, against the student's namespace; the outputs are
  saved as plain ``.npy`` files that the judge loads with ``allow_pickle=False``.

This module is imported by the child before it drops privileges, so it must not import
anything from ``solutions/`` or from a chapter, and it must stay small.
"""

from __future__ import annotations

import contextlib
import linecache
import re
import traceback
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from autograder.arrays import array_file_name  # noqa: F401 - part of this module's API
from autograder.submission import cell_number, describe_location, is_cell_filename

# Payload limit for one output: a check that produces more is broken, not a student.
MAX_OUTPUT_ELEMENTS = 5_000_000


@dataclass(frozen=True)
class Output:
    """One named, graded output of a check.

    Attributes:
        name: key the exercise stores the tensor under (``out["dx"] = ...``).
        points: points for this item.
        rtol, atol: closeness, as in ``torch.testing.assert_close``: |a - e| <= atol + rtol |e|.
        hint: the likely bug when only this output is wrong; shown to the student on failure
            (never after an exception: then the exception is the message). Required.
        needs: earlier outputs of the same check this one is computed from (``dx`` from what
            ``forward`` cached: ``needs=("y",)``), or items of earlier checks that run the same
            code ("GCNLayer: out" for "GCNLayer at scale"). When one of them fails (an output
            of the same check: in the same cases), the message tells the student to fix that
            one first, and no hint is shown: the hints assume their upstream items pass.
        case_hints: ``(settings, hint)`` pairs for failure modes that show only in some cases
            (``({"extreme": True}, "do not clamp logvar")``): when every failing case has the
            settings, that hint is shown instead of ``hint``, never otherwise.
        public_gap: what the public checks of the question do not test about this output
            ("they check the shapes and that each node's attention sums to 1, not the
            attention values"); a failure's message then says so, so a student whose public
            checks were green learns why. Empty: the check's ``public_gap``.
    """

    name: str
    points: float = 1.0
    rtol: float = 1e-7
    atol: float = 1e-7
    hint: str = ""
    needs: tuple[str, ...] = ()
    public_gap: str = ""
    case_hints: tuple[tuple[Mapping[str, Any], str], ...] = ()


@dataclass(frozen=True)
class Check:
    """A hidden check: one exercise of the API, run on every case, producing graded outputs.

    Attributes:
        name: what is exercised, e.g. ``"Linear"``; items are named ``"<name>: <output>"``.
        question: the Otter question (``"q1"``) the items belong to.
        uses: the names the submission must define (``("Linear",)``).
        exercise: ``exercise(api, case, rng, out)``; ``api.Linear`` is the implementation under
            test, ``case`` one dict of ``cases``, ``rng`` a seeded ``torch.Generator`` private to
            this (check, case), ``out`` a :class:`Recorder`.
        cases: input configurations, shown to the student in failure messages.
        outputs: the graded outputs.
        timeout_s: wall-clock seconds the child gets for all cases of this check.
        replaces: names of the submission that the exercise swaps for the grader's own
            (``kit.substituted``) whenever it runs the student's code: the forbidden-API scan
            does not follow them from ``uses``, so a forbidden call inside one costs that
            name's own items, not this check's. (Calls that still reach the student's version
            are caught by the run-time trap.)
        pattern_axes: the case parameters the case table varies on purpose (the settings the
            cases were added for). When given, a failure pattern ("fails whenever heads > 1")
            may name only one of them, and only when exactly one of them separates the failing
            cases; other parameters that happen to separate them too (N, a shape) are ignored.
            Empty: any parameter, when exactly one separates the failing cases.
        public_gap: the default of its outputs' ``public_gap`` (see :class:`Output`).
        error_hints: ``(regex, hint)`` pairs for exceptions this check's code is known to
            raise when a particular bug is present (a shape error from a head split without
            the transpose): when an item failed with an exception whose text matches, the hint
            follows the error. Tried before the kit's general table (``judge.ERROR_HINTS``).
    """

    name: str
    question: str
    uses: tuple[str, ...]
    exercise: Callable[..., None]
    cases: tuple[Mapping[str, Any], ...]
    outputs: tuple[Output, ...]
    timeout_s: float = 10.0
    replaces: tuple[str, ...] = ()
    pattern_axes: tuple[str, ...] = ()
    public_gap: str = ""
    error_hints: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if set(self.replaces) & set(self.uses):
            raise ValueError(f"check bug: {self.name} replaces a name it uses")
        seen: list[str] = []
        for output in self.outputs:
            unknown = [name for name in output.needs if name not in seen and ": " not in name]
            if unknown:
                raise ValueError(
                    f"check bug: {self.name}: {output.name} needs {unknown}, "
                    f"which are not earlier outputs of the check"
                )
            seen.append(output.name)
        for pattern, _ in self.error_hints:
            re.compile(pattern)  # a typo in a pattern fails the build, not a grading
        parameters = {key for case in self.cases for key in case}
        for output in self.outputs:
            for scope, _ in output.case_hints:
                if set(scope) - parameters:
                    raise ValueError(
                        f"check bug: {self.name}: {output.name}: case_hints name "
                        f"{sorted(set(scope) - parameters)}, which are not case parameters"
                    )
        if set(self.pattern_axes) - parameters:
            raise ValueError(
                f"check bug: {self.name}: pattern_axes "
                f"{sorted(set(self.pattern_axes) - parameters)} are not case parameters"
            )

    def item_name(self, output: Output) -> str:
        return f"{self.name}: {output.name}"

    def public_gap_of(self, output: Output) -> str:
        """What the public checks do not test about ``output`` ("" when they do)."""
        return output.public_gap or self.public_gap


class Recorder:
    """What an exercise writes its outputs into.

    ``out["y"] = y`` records a copy of ``y`` (later in-place changes do not alter it).
    ``out.watch(x=x)`` remembers inputs; an output recorded after the implementation changed
    one of them in place fails with a message naming the input (outputs recorded before the
    change are graded normally, which localises the bug to the method that did it).

    ``with out.part("dx", "grad_weight"):`` is the default way to write an exercise: the
    block holds the calls that produce those outputs. If it raises, the exercise goes on with
    the next part, and each output of the failed part is reported with the exception (values
    it recorded, or stale attributes, are discarded), so one broken method costs only its own
    items. A part may be entered several times (the same method called again); the first
    exception of an output is kept.

    ``out.fail("reset_params", "after reset_params(0.5) ...")`` fails an output with an
    explanation in the student's terms, for outputs the exercise judges itself (calls made on
    trusted probe layers); the message must not reveal a hidden reference value.
    """

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.modified_at: dict[str, list[str]] = {}
        self.errors: dict[str, str] = {}
        self.explained: dict[str, str] = {}
        self._watched: dict[str, torch.Tensor] = {}
        self._originals: dict[str, torch.Tensor] = {}

    @contextlib.contextmanager
    def part(self, *names: str) -> Iterator[None]:
        """Runs the block; an exception fails exactly the outputs ``names`` (see the class)."""
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - student code may raise anything
            message = short_error(exc)
            for name in names:
                self.values.pop(name, None)
                self.errors.setdefault(name, message)

    def fail(self, name: str, message: str) -> None:
        """Fails output ``name`` with ``message`` (the first explanation is kept)."""
        self.explained.setdefault(name, message)

    def __setitem__(self, name: str, value: Any) -> None:
        if type(value) is torch.Tensor:
            value = value.detach().clone()
        self.values[name] = value
        try:
            self.modified_at[name] = self.modified_inputs()
        except Exception:  # noqa: BLE001 - a broken tensor in an input slot
            self.modified_at[name] = ["(an input could not be compared)"]

    def attributes(self, obj: Any, *names: str) -> None:
        """Records ``obj.<name>`` for each name the object has (use in a ``finally:`` so that
        gradients set before a later mistake still count)."""
        for name in names:
            try:
                value = getattr(obj, name)
            except Exception:  # noqa: BLE001 - a missing attribute is reported as missing
                continue
            self[name] = value

    def watch(self, **tensors: torch.Tensor) -> None:
        for name, tensor in tensors.items():
            self._watched[name] = tensor
            self._originals[name] = tensor.detach().clone()

    def modified_inputs(self) -> list[str]:
        changed = []
        for name, tensor in self._watched.items():
            original = self._originals[name]
            same = tensor.shape == original.shape and torch.equal(tensor.detach(), original)
            if not same:
                changed.append(name)
        return changed


class MissingName(Exception):
    """The submission does not define a name a check uses."""


class Namespace:
    """Attribute access onto the implementation under test, limited to the check's ``uses``."""

    def __init__(self, source: Mapping[str, Any] | Any, allowed: tuple[str, ...]):
        self._source = source
        self._allowed = allowed

    def __getattr__(self, name: str) -> Any:
        if name not in self._allowed:
            raise AttributeError(f"check bug: {name!r} is not listed in the check's uses")
        if isinstance(self._source, Mapping):
            if name not in self._source:
                raise MissingName(name)
            return self._source[name]
        if not hasattr(self._source, name):
            raise MissingName(name)
        return getattr(self._source, name)


def case_seed(check_name: str, case_index: int) -> int:
    """A seed that depends only on the check and the case, stable across runs and machines."""
    return zlib.crc32(f"{check_name}#{case_index}".encode()) & 0x7FFFFFFF


# ----------------------------------------------------------------------------------------
# Running a check and saving its outputs as plain arrays
# ----------------------------------------------------------------------------------------


def describe_value(value: Any) -> dict[str, Any]:
    """Metadata of one recorded output, as the judge's comparison rule needs it."""
    if type(value) is not torch.Tensor:
        kind = type(value)
        return {"kind": "not_tensor", "type": f"{kind.__module__}.{kind.__qualname__}"}
    return {
        "kind": "tensor",
        "dtype": str(value.dtype).removeprefix("torch."),
        "shape": list(value.shape),
        "device": str(value.device),
    }


def to_plain_array(value: torch.Tensor) -> np.ndarray:
    """A numpy copy of a plain CPU tensor; exotic dtypes are widened so numpy can hold them."""
    tensor = value.detach()
    if tensor.dtype in (torch.bfloat16, torch.float16):
        tensor = tensor.to(torch.float32)
    if tensor.is_complex():
        raise TypeError("complex outputs are not supported")
    return np.ascontiguousarray(tensor.cpu().numpy())


def short_error(exc: BaseException) -> str:
    """One line naming the exception and where in the submission it was raised."""
    if isinstance(exc, NotImplementedError):
        what = str(exc) or "a stub"
        return f"not implemented: {what} still raises NotImplementedError"
    if isinstance(exc, MissingName):
        return f"{exc.args[0]} not found: define it with exactly this name"
    if isinstance(exc, SystemExit):
        return "your code called sys.exit() / exit(); the process ended for this item"
    message = str(exc).splitlines()[0][:300] if str(exc) else ""
    return f"{type(exc).__name__}: {message}{error_location(exc)}"


def error_location(exc: BaseException) -> str:
    """The innermost place in the submission that ``exc`` passed through, as
    `` (in Tanh.backward, line 3 of the code cell that begins ...; the line: ...)``; "" when
    it passed through none."""
    for frame, line_number in reversed(list(traceback.walk_tb(exc.__traceback__))):
        filename = frame.f_code.co_filename
        if is_cell_filename(filename):
            lines = linecache.getlines(filename)
            line = linecache.getline(filename, line_number).strip()[:160]
            shown = f"; the line: {line}" if line else ""
            where = describe_location(
                cell_number(filename), lines, line_number, frame.f_code.co_qualname
            )
            return f" ({where}{shown})"
    return ""


def run_check(
    check: Check,
    implementation: Mapping[str, Any] | Any,
    save: Callable[[int, str, np.ndarray], None],
) -> dict[str, Any]:
    """Runs ``check`` on every case against ``implementation`` and saves each output.

    Args:
        check: the check.
        implementation: the student's globals (a dict) or the reference module.
        save: ``save(case_index, output_name, array)`` stores one output's data.

    Returns:
        A JSON-able report: ``{"cases": [{"outputs": {name: meta}, "error": str|None,
        "modified": [input names]}]}``. A missing output's meta is ``{"kind": "missing"}``;
        one whose part raised is ``{"kind": "raised", "error": str}``; one the exercise failed
        with an explanation is ``{"kind": "explained", "message": str}``.
    """
    api = Namespace(implementation, check.uses)
    cases = []
    for case_index, case in enumerate(check.cases):
        rng = torch.Generator().manual_seed(case_seed(check.name, case_index))
        out = Recorder()
        error = None
        try:
            for name in check.uses:
                getattr(api, name)
            check.exercise(api, case, rng, out)
        except BaseException as exc:  # noqa: BLE001 - student code may raise anything
            error = short_error(exc)
        metas: dict[str, Any] = {}
        for output in check.outputs:
            if output.name in out.errors:
                metas[output.name] = {"kind": "raised", "error": out.errors[output.name]}
                continue
            if output.name in out.explained:
                metas[output.name] = {
                    "kind": "explained",
                    "message": out.explained[output.name][:600],
                }
                continue
            if output.name not in out.values:
                metas[output.name] = {"kind": "missing"}
                continue
            value = out.values[output.name]
            meta = describe_value(value)
            if meta["kind"] == "tensor":
                if meta["device"] != "cpu":
                    pass  # not saved (a meta tensor has no data); the judge rejects the device
                elif value.numel() > MAX_OUTPUT_ELEMENTS:
                    meta = {"kind": "too_large", "numel": int(value.numel())}
                else:
                    try:
                        save(case_index, output.name, to_plain_array(value))
                    except Exception as exc:  # noqa: BLE001
                        meta = {"kind": "unsaveable", "error": short_error(exc)}
            if out.modified_at.get(output.name):
                meta["modified"] = out.modified_at[output.name]
            metas[output.name] = meta
        try:
            modified = out.modified_inputs()
        except Exception:  # noqa: BLE001 - a broken tensor in the input slot
            modified = ["(an input could not be compared)"]
        cases.append({"outputs": metas, "error": error, "modified": modified})
    return {"cases": cases}


@dataclass
class ChapterChecks:
    """What a chapter's checks module provides (see ``assignments/*/checks.py``)."""

    checks: list[Check]
    forbidden: tuple[str, ...] = ()
    scope_note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def load_checks_namespace(source: str, filename: str = "<checks>") -> ChapterChecks:
    """Executes a checks module's source and returns what it defines."""
    namespace: dict[str, Any] = {"__name__": "chapter_checks"}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - trusted or child-side
    return ChapterChecks(
        checks=list(namespace["CHECKS"]),
        forbidden=tuple(namespace.get("FORBIDDEN", ())),
    )
