"""Shared helpers for the dot / matmul / dense tests: operand layouts, error bounds, ISA switching,
finite differences."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

import pykernels as pk
from pykernels import _core
from nn_helpers import numerical_grad  # noqa: F401  (one central-difference helper for all tests)

LAYOUTS = ("c", "f", "neg", "step", "mixed")
_ORDER = ("generic", "avx2", "avx512")


def supported_isas() -> list[str]:
    """ISAs that are compiled in and that this CPU can run."""
    best = _ORDER.index(_core._isa_detected())
    return [i for i in _ORDER[: best + 1] if i in _core._isa_compiled()]


@contextlib.contextmanager
def isa(name: str) -> Iterator[None]:
    old = _core._isa_active()
    _core._set_isa(name)
    try:
        yield
    finally:
        _core._set_isa(old)


def make(rng: np.random.Generator, shape: tuple[int, ...], dtype, layout: str = "c", ints: bool = False) -> np.ndarray:
    """An array of `shape` with the given memory layout (values standard normal, or small integers)."""
    shape = tuple(shape)

    def values(s):
        if ints:
            return rng.integers(-4, 5, size=s).astype(dtype)
        return rng.standard_normal(s).astype(dtype)

    if layout == "c" or len(shape) == 0:
        return values(shape)
    if layout == "f":  # transposed: the C array of the reversed shape, seen through .T
        return values(shape[::-1]).T
    if layout == "neg":
        return values(shape)[(slice(None, None, -1),) * len(shape)]
    if layout == "step":
        big = values(tuple(2 * s for s in shape))
        return big[(slice(None, None, 2),) * len(shape)]
    if layout == "mixed":  # last two axes swapped, first axis reversed, steps elsewhere
        if len(shape) == 1:
            return values((3 * shape[0],))[::-3]
        perm = list(range(len(shape)))
        perm[-1], perm[-2] = perm[-2], perm[-1]
        base = values(tuple(shape[p] for p in perm)).transpose(perm)
        return base[::-1]
    raise ValueError(layout)


def assert_product_close(got, a, b, op, factor: float = 4.0) -> None:
    """`got` = op(a, b) within `factor` times NumPy/OpenBLAS's own error (both measured against op
    evaluated in float64 on the same inputs), plus a floor of one rounding of the magnitudes."""
    got = np.asarray(got)
    expect_np = np.asarray(op(a, b))
    assert got.shape == expect_np.shape
    assert got.dtype == expect_np.dtype
    if got.size == 0:
        return
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ref = np.asarray(op(a64, b64))
    mag = np.asarray(op(np.abs(a64), np.abs(b64)))
    eps = np.finfo(got.dtype).eps
    if got.dtype == np.float64:
        # OpenBLAS's float64 error cannot be measured against a float64 reference: use the
        # rigorous forward-error bound of any summation order, gamma_K * |a||b| (K = the summed length).
        k = max(1, np.asarray(a).shape[-1] if np.ndim(a) else 1)
        bound = 1.01 * (k + 1) * eps * mag + 1e-300
        err = np.abs(got - ref)
        assert np.all(err <= bound), f"max err {err.max()}, max bound {bound.max()}"
        return
    err_ours = float(np.max(np.abs(got.astype(np.float64) - ref)))
    err_np = float(np.max(np.abs(expect_np.astype(np.float64) - ref)))
    floor = float(eps * np.max(mag))
    assert err_ours <= factor * err_np + floor, f"ours {err_ours}, numpy {err_np}, floor {floor}"


def max_threads() -> int:
    return max(1, pk._core._max_hw_threads())
