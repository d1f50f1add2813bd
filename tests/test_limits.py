"""Limits of the public and private entry points: ranks beyond the fixed shape arrays, extents whose
byte sizes wrap around, and private functions given arrays they cannot use. Each case must be a
Python exception raised before any buffer is touched, never a write out of bounds."""

from __future__ import annotations

import numpy as np
import pytest

import pykernels as pk
from pykernels import _core

MAX_DIMS = 32  # pykernels' documented rank limit (show_config()'s max_dims)


@pytest.mark.parametrize("na, nb", [(32, 32), (18, 18), (24, 24), (17, 18), (32, 3)])
def test_dot_result_rank_above_the_limit_raises(na, nb):
    # dot's result has na - 1 + nb - 1 dimensions: more than 32 cannot be held; NumPy returns it.
    a = np.ones((1,) * (na - 1) + (2,), np.float32)
    b = np.ones((1,) * (nb - 2) + (2, 2), np.float32)
    assert np.dot(a, b).ndim == na + nb - 2
    with pytest.raises(ValueError, match=rf"result would have {na + nb - 2} dimensions.*at most {MAX_DIMS}"):
        pk.dot(a, b)
    with pytest.raises(ValueError, match="at most 32"):
        pk.dot_backward(np.ones(np.dot(a, b).shape, np.float32), a, b)


@pytest.mark.parametrize("na, nb", [(16, 18), (31, 2), (1, 32), (32, 1)])
def test_dot_result_rank_at_the_limit_is_numpys(na, nb):
    a = np.arange(2.0 ** 1 * 1, dtype=np.float64)[:2].reshape((1,) * (na - 1) + (2,))
    b = np.full((1,) * max(nb - 2, 0) + ((2, 3) if nb >= 2 else (2,)), 1.5)
    want = np.dot(a, b)
    assert want.ndim <= MAX_DIMS
    np.testing.assert_array_equal(pk.dot(a, b), want)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_gemm_scratch_size_that_wraps_is_memory_error(dt):
    # K*NR*itemsize wraps size_t for K = 2**58; both operands are broadcasts and cost no memory.
    K = 2**58 if dt == np.float32 else 2**57
    a = np.broadcast_to(dt(1), (4, K))
    b = np.broadcast_to(dt(1), (K, 2))
    with pytest.raises(MemoryError):
        pk.dot(a, b)
    with pytest.raises(MemoryError):
        pk.dense(a, b)
    with pytest.raises(MemoryError):
        pk.matmul(a, b)


# ---- private CUDA entry points (and their CPU emulation) -------------------------------------------

EMU_BINARY = [_core._cuda_emu_binary, _core._cuda_binary]
EMU_GEMM = [_core._cuda_emu_gemm, _core._cuda_gemm]


@pytest.mark.parametrize("fn", EMU_BINARY)
def test_cuda_binary_entry_validates(fn):
    f4 = np.ones(4, np.float32)
    with pytest.raises(ValueError, match="shape"):
        fn("add", np.empty(8, np.float32), f4, f4)  # out larger than the inputs
    with pytest.raises(ValueError, match="shape"):
        fn("add", np.empty(4, np.float32), np.ones(2, np.float32), f4)
    with pytest.raises(TypeError, match="dtype"):
        fn("add", np.empty(4, np.float32), f4, np.ones(4))  # float64 beside float32
    with pytest.raises(TypeError, match="int32"):
        fn("add", np.empty(4, np.int32), f4, f4)
    ro = np.zeros(4, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fn("add", ro, f4, f4)
    assert not ro.any()
    with pytest.raises(TypeError):
        fn("add", [0.0] * 4, f4, f4)
    with pytest.raises(ValueError, match="unknown"):
        fn("divide", np.empty(4, np.float32), f4, f4)


@pytest.mark.parametrize("fn", [_core._cuda_emu_unary, _core._cuda_unary])
def test_cuda_unary_entry_validates(fn):
    f4 = np.ones(4, np.float32)
    with pytest.raises(ValueError, match="shape"):
        fn("negative", np.empty(8, np.float32), f4)
    with pytest.raises(TypeError, match="dtype"):
        fn("negative", np.empty(4, np.float32), np.ones(4))
    ro = np.zeros(4, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fn("negative", ro, f4)
    buf = np.zeros(5, np.float32)
    with pytest.raises(ValueError, match="overlaps"):
        fn("absolute", buf[1:], buf[:4])
    with pytest.raises(ValueError, match="unknown"):
        fn("add", np.empty(4, np.float32), f4)  # a binary op is not a unary one


def test_cuda_emu_binary_still_computes():
    a, b = np.arange(6.0).reshape(2, 3), np.full((2, 3), 2.0)
    out = np.empty((2, 3))
    _core._cuda_emu_binary("multiply", out, a, b)
    np.testing.assert_array_equal(out, a * b)


@pytest.mark.parametrize("fn", EMU_GEMM)
def test_cuda_gemm_entry_validates(fn):
    a, b = np.ones((3, 4), np.float32), np.ones((4, 5), np.float32)
    with pytest.raises(ValueError, match="shape"):
        fn(np.empty((3, 6), np.float32), a, b, None, False)
    with pytest.raises(ValueError, match="shape"):
        fn(np.empty((3, 5), np.float32), a, np.ones((5, 5), np.float32), None, False)
    with pytest.raises(ValueError, match="shape"):
        fn(np.empty((3, 5), np.float32), a, b, np.ones(4, np.float32), False)
    with pytest.raises(TypeError, match="dtype"):
        fn(np.empty((3, 5), np.float32), a.astype(np.float64), b, None, False)
    with pytest.raises(ValueError, match="2-d"):
        fn(np.empty(15, np.float32), a, b, None, False)
    with pytest.raises(ValueError, match="C-contiguous"):
        fn(np.empty((5, 3), np.float32).T, a, b, None, False)
    ro = np.zeros((3, 5), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fn(ro, a, b, None, False)
    sq = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match="overlaps"):
        fn(sq, sq, sq, None, False)


def test_cuda_emu_gemm_still_computes():
    rng = np.random.default_rng(0)
    a, b, bias = rng.standard_normal((5, 7)), rng.standard_normal((7, 3)), rng.standard_normal(3)
    out = np.empty((5, 3))
    _core._cuda_emu_gemm(out, a, b, bias, True)
    np.testing.assert_allclose(out, np.maximum(a @ b + bias, 0), rtol=1e-12, atol=1e-12)
