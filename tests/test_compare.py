"""The comparison rule, case by case (a table, minitorch style)."""
from __future__ import annotations

import numpy as np
import pytest

from autograder.compare import compare_output

EXPECTED = np.linspace(-2.0, 3.0, 12).reshape(3, 4)
TENSOR = {"kind": "tensor", "dtype": "float64", "device": "cpu"}

CASES = [
    # name, meta, actual, passes, substring of the message
    ("identical", TENSOR, EXPECTED.copy(), True, ""),
    ("float rounding only", TENSOR, EXPECTED * (1 + 1e-12), True, ""),
    ("off by relative 1e-3", TENSOR, EXPECTED * (1 + 1e-3), False, "times the tolerance"),
    ("broadcastable wrong shape", TENSOR, EXPECTED[:, :1], False, "broadcast"),
    ("missing dimension", TENSOR, EXPECTED.reshape(12), False, "has shape (12,) but expected (3, 4)"),
    ("float32 result", dict(TENSOR, dtype="float32"), EXPECTED.astype(np.float32), False, "dtype float32"),
    ("numpy array instead of tensor", {"kind": "not_tensor", "type": "numpy.ndarray"}, None, False, "numpy.ndarray"),
    ("tensor subclass", {"kind": "not_tensor", "type": "__main__.LyingTensor"}, None, False, "expected a torch.Tensor"),
    ("wrong device", dict(TENSOR, device="meta"), EXPECTED, False, "device meta"),
    ("NaN", TENSOR, np.where(EXPECTED > 2.5, np.nan, EXPECTED), False, "NaN"),
    ("inf", TENSOR, np.where(EXPECTED > 2.5, np.inf, EXPECTED), False, "inf"),
    ("opposite sign", TENSOR, -EXPECTED, False, "opposite sign"),
    ("scaled by a constant", TENSOR, EXPECTED / 3, False, "constant factor 0.3333"),
    ("transposed", TENSOR, None, False, "transposed"),
    ("missing", {"kind": "missing"}, None, False, "not produced"),
    ("unreadable", TENSOR, None, False, "could not be read back"),
]


@pytest.mark.parametrize("name,meta,actual,passes,message", CASES, ids=[c[0] for c in CASES])
def test_comparison_rule(name, meta, actual, passes, message):
    expected = EXPECTED
    if name == "transposed":
        expected = np.arange(16.0).reshape(4, 4) ** 1.5
        actual = expected.T.copy()
    verdict = compare_output(expected, meta, actual, rtol=1e-7, atol=1e-7)
    assert verdict.passed is passes
    assert message in verdict.message


def test_messages_never_contain_expected_values():
    expected = np.array([[1234.5678, 8765.4321]])
    for actual in (expected * 2, expected + 1, np.zeros_like(expected)):
        message = compare_output(expected, TENSOR, actual, 1e-7, 1e-7).message
        assert "1234" not in message and "8765" not in message, message


def test_integers_compare_exactly_and_need_an_integer_dtype():
    expected = np.array([3, 1, 2])
    meta = {"kind": "tensor", "dtype": "int64", "device": "cpu"}
    assert compare_output(expected, meta, np.array([3, 1, 2]), 1e-7, 1e-7).passed
    assert not compare_output(expected, meta, np.array([3, 1, 1]), 1e-7, 1e-7).passed
    as_float = compare_output(expected, dict(meta, dtype="float64"), np.array([3.0, 1.0, 2.0]),
                              1e-7, 1e-7)
    assert not as_float.passed and "integer" in as_float.message


def test_an_exact_item_is_off_by_its_error_not_by_infinite_tolerances():
    import warnings

    expected = np.array([1.0, 2.0, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by a zero tolerance
        verdict = compare_output(expected, TENSOR, np.array([1.0, 2.0, 5.0]), 0.0, 0.0)
    assert not verdict.passed
    assert "off by 2 where it must match exactly" in verdict.message, verdict.message
    assert "inf" not in verdict.message
