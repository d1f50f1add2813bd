"""Assertions shared by the kernel tests: bit-identical results, untouched inputs, sum accuracy.

The NumPy results themselves come from :mod:`pykernels.reference`; these helpers compare them.
"""

from __future__ import annotations

import math

import numpy as np


def _bits(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("="))
    return a.view(f"u{a.dtype.itemsize}")


def assert_identical(result, expected) -> None:
    """Bit-identical results: same Python type (NumPy scalar vs ndarray), dtype and shape, and every
    element with the same bits: -0.0 vs 0.0 counts, and so do a NaN's sign and payload (the
    generated data never lets two different NaNs meet: see strategies.special_floats)."""
    assert type(result) is type(expected), (type(result), type(expected))
    r, e = np.asarray(result), np.asarray(expected)
    np.testing.assert_array_equal(r, e, strict=True)
    r_nan, e_nan = np.isnan(r), np.isnan(e)
    np.testing.assert_array_equal(r_nan, e_nan, err_msg="NaN positions differ")
    r_c, e_c = np.ascontiguousarray(r), np.ascontiguousarray(e)
    np.testing.assert_array_equal(np.signbit(r_c[~r_nan]), np.signbit(e_c[~e_nan]), err_msg="signs differ")
    np.testing.assert_array_equal(_bits(r_c)[~r_nan], _bits(e_c)[~e_nan], err_msg="bits differ")
    np.testing.assert_array_equal(_bits(r_c)[r_nan], _bits(e_c)[e_nan], err_msg="NaN signs or payloads differ")


def snapshot(args) -> list:
    """Copies of the array arguments, to check afterwards that the kernel did not modify them."""
    return [np.array(a, copy=True) if isinstance(a, np.ndarray) else None for a in args]


def assert_unmodified(args, copies) -> None:
    for a, c in zip(args, copies):
        if c is not None:
            assert_identical(np.array(a, copy=True), c)


# ---- sums -------------------------------------------------------------------------------------
def normalize_axes(axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(sorted(a % ndim for a in axis))


def exact_sum(x: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(exact sums as float64 via math.fsum, sums of |x|) over `axes`, shape of the kept axes."""
    x = np.asarray(x, dtype=np.float64)
    kept = [i for i in range(x.ndim) if i not in axes]
    moved = np.transpose(x, kept + list(axes))
    kshape = tuple(x.shape[i] for i in kept)
    rows = moved.reshape(math.prod(kshape), -1) if moved.size else np.zeros((math.prod(kshape), 0))
    exact = np.array([math.fsum(r) for r in rows], dtype=np.float64).reshape(kshape)
    mag = np.abs(rows).sum(axis=1).reshape(kshape) if rows.size else np.zeros(kshape)
    return exact, mag


def assert_sum_accurate(result, x: np.ndarray, axis, keepdims: bool = False) -> None:
    """`result` (pykernels) has np.sum's type/dtype/shape, is within the dtype's rounding of the
    exact sum, and is at least as accurate as np.sum (up to the rounding slack of a float64
    accumulation, n * eps64 * sum|x|)."""
    x = np.asarray(x)
    expected_np = np.sum(x, axis=axis, keepdims=keepdims)
    assert type(result) is type(expected_np)
    r = np.asarray(result)
    assert r.dtype == x.dtype and r.shape == np.shape(expected_np)
    axes = normalize_axes(axis, x.ndim)
    exact, mag = exact_sum(x, axes)
    n = max(1, math.prod(x.shape[a] for a in axes))
    r_k = r.reshape(exact.shape).astype(np.float64)
    np_k = np.asarray(expected_np).reshape(exact.shape).astype(np.float64)
    err_pk = np.abs(r_k - exact)
    err_np = np.abs(np_k - exact)
    slack = n * np.finfo(np.float64).eps * mag
    if x.dtype == np.float32:
        # float32: rounding the exact sum to float32 costs at most half an ulp.
        half_ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64) / 2
        assert np.all(err_pk <= half_ulp + slack), (err_pk, half_ulp)
        assert np.all(err_pk <= err_np + slack), (err_pk, err_np)
    else:
        # float64: no worse than NumPy or than a pairwise-summation bound, whichever is larger.
        pairwise_bound = 2 * np.finfo(np.float64).eps * (math.log2(n) + 1) * mag
        assert np.all(err_pk <= np.maximum(err_np, pairwise_bound) + 1e-300), (err_pk, err_np)
