"""The kit's one comparison rule, applied in the judge to plain arrays.

An output passes when, in this order:

1. it is a plain ``torch.Tensor`` (not a subclass, not a numpy array, not a Python number);
2. it lives on the CPU;
3. its shape equals the expected shape exactly (no broadcasting: ``(N, 1)`` is not ``(N,)``);
4. its dtype follows the policy: a floating result must have the expected floating dtype (the
   checks run in float64, so a float32 result means the code lost precision somewhere); an
   integer or boolean result must be of the same kind and is compared exactly;
5. it is finite wherever the expectation is;
6. every element satisfies ``|actual - expected| <= atol + rtol * |expected|``, the rule of
   ``torch.testing.assert_close``, with the output's own rtol and atol.

Messages name the output, the case, the worst index and the error as a multiple of the
tolerance, plus a diagnosis when the pattern is recognisable (opposite sign, a constant
factor, transposed). They never contain an expected value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Verdict:
    passed: bool
    message: str = ""


def _kind(dtype: np.dtype) -> str:
    if dtype == np.bool_:
        return "bool"
    if np.issubdtype(dtype, np.integer):
        return "integer"
    if np.issubdtype(dtype, np.floating):
        return "floating"
    return "other"


def _shape(shape) -> str:
    return "(" + ", ".join(str(int(n)) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _diagnose(actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> str:
    def close(a: np.ndarray) -> bool:
        return bool(np.all(np.abs(a - expected) <= atol + rtol * np.abs(expected)))

    if expected.size < 4 or not np.any(expected):  # too few elements for a pattern to mean much
        return ""
    if close(-actual):
        return " It has the opposite sign of the expected result."
    if (
        actual.ndim == 2
        and actual.shape[0] == actual.shape[1]
        and actual.shape[0] > 1
        and close(actual.T)
    ):
        return " It matches the expected result transposed."
    factor = float(np.vdot(actual, expected) / np.vdot(expected, expected))
    if (
        np.isfinite(factor)
        and abs(factor - 1) > 1e-3
        and abs(factor) > 1e-12
        and close(actual / factor)
    ):
        return (
            f" It is the expected result times a constant factor {factor:.4g} "
            f"(a missing or extra division, e.g. by the batch size?)."
        )
    return ""


def compare_output(
    expected: np.ndarray, meta: dict, actual: np.ndarray | None, rtol: float, atol: float
) -> Verdict:
    """Applies the comparison rule to one output of one case.

    Args:
        expected: the reference array (from the trusted build).
        meta: what the child reported about the value (its Python type, dtype, device).
        actual: the array the child saved, or None if it could not be read back.
        rtol, atol: the output's tolerances.
    """
    kind = meta.get("kind")
    if kind == "missing":
        return Verdict(False, "was not produced")
    if kind == "not_tensor":
        found = str(meta.get("type", "?"))[:120]
        return Verdict(
            False,
            f"is a {found}, expected a torch.Tensor (return tensors, not "
            f"numpy arrays, Python numbers or tensor subclasses)",
        )
    if kind == "too_large":
        return Verdict(False, "is far larger than expected")
    if kind != "tensor":
        return Verdict(False, f"could not be saved ({str(meta.get('error', kind))[:200]})")
    if meta.get("device") != "cpu":
        return Verdict(False, f"is on device {str(meta.get('device'))[:40]}; return CPU tensors")
    if actual is None:
        return Verdict(False, "could not be read back from the sandbox")
    if actual.shape != expected.shape:
        note = ""
        try:
            np.broadcast_shapes(actual.shape, expected.shape)
            note = (
                " The two shapes broadcast against each other, which would hide this bug "
                "in a loose comparison: check for a missing or extra dimension of size 1."
            )
        except ValueError:
            pass
        return Verdict(
            False, f"has shape {_shape(actual.shape)} but expected {_shape(expected.shape)}.{note}"
        )
    reported_dtype = str(meta.get("dtype", actual.dtype))
    expected_kind, actual_kind = _kind(expected.dtype), _kind(actual.dtype)
    if expected_kind == "floating" and reported_dtype != str(expected.dtype):
        return Verdict(
            False,
            f"has dtype {reported_dtype[:20]}, expected {expected.dtype}: "
            f"compute in the dtype of the inputs (torch.zeros(...) and "
            f"torch.tensor(...) default to float32 unless given dtype=)",
        )
    if expected_kind in ("integer", "bool") and actual_kind != expected_kind:
        return Verdict(False, f"has dtype {reported_dtype[:20]}, expected a {expected_kind} tensor")
    if expected_kind != "floating":
        wrong = actual != expected
        if np.any(wrong):
            index = tuple(int(i) for i in np.argwhere(wrong)[0])
            return Verdict(
                False,
                f"differs in {int(wrong.sum())} of {wrong.size} elements (first at index {index})",
            )
        return Verdict(True)
    actual64 = actual.astype(np.float64)
    expected64 = expected.astype(np.float64)
    not_finite = ~np.isfinite(actual64) & np.isfinite(expected64)
    if np.any(not_finite):
        index = tuple(int(i) for i in np.argwhere(not_finite)[0])
        what = "NaN" if np.isnan(actual64[index]) else "inf"
        return Verdict(
            False,
            f"contains {what} at index {index} ({int(not_finite.sum())} of "
            f"{not_finite.size} elements are not finite; look for overflow "
            f"in exp, log of zero, or division by zero)",
        )
    error = np.abs(actual64 - expected64)
    tolerance = atol + rtol * np.abs(expected64)
    bad = ~(error <= tolerance) & np.isfinite(expected64)
    if not np.any(bad):
        return Verdict(True)
    # an element whose tolerance is 0 (an exact item: counts, indices) is off by its error
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(bad, error / tolerance, 0.0)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(ratio)), ratio.shape))
    how_far = (
        f"off by {float(error[worst]):.3g} where it must match exactly"
        if tolerance[worst] == 0
        else f"off by {float(ratio[worst]):.3g} times the tolerance"
    )
    return Verdict(
        False,
        f"is wrong in {int(bad.sum())} of {bad.size} elements; worst at "
        f"index {worst}, {how_far}.{_diagnose(actual64, expected64, rtol, atol)}",
    )
