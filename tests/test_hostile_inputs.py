"""Regression tests for hostile inputs found by the fuzzer (tests/fuzz). Failures that crash the
interpreter are not here (they would end the run): see the fuzz reproducers instead."""

from __future__ import annotations

import numpy as np
import pytest

import pykernels as pk
from pykernels import _core

def test_cuda_emu_gemm_reads_a_strided_bias_through_its_strides():
    buf = np.arange(32.0)
    bias = buf[16:8:-1]  # stride -8; reading it forward stays inside buf (no out-of-bounds read here)
    a, b = np.ones((2, 3)), np.ones((3, 8))
    c = np.zeros((2, 8))
    _core._cuda_emu_gemm(c, a, b, bias, False)
    np.testing.assert_array_equal(c, a @ b + bias)

def test_mixed_dtype_broadcast_result_too_big_is_refused_before_any_copy():
    # (2**40, 1) x (1, 2**40): 2**80 elements, NumPy's "array is too big". The float32 operand is
    # converted without materialising its broadcast shape (at (2**31, 1) x (1, 2**31) a full copy
    # would fill 16 GiB first).

    a = np.broadcast_to(np.float32(1.0), (2**40, 1))
    b = np.broadcast_to(np.float64(1.0), (1, 2**40))
    with pytest.raises(ValueError, match="too big"):
        pk.add(a, b)


@pytest.mark.parametrize("op", [pk.add, pk.maximum, pk.relu_backward])
def test_mixed_dtype_broadcast_converts_only_distinct_elements(op):
    a = np.broadcast_to(np.float32(1.5), (3, 2**20))  # 12 MiB if materialised as float64
    b = np.linspace(-1, 1, 2**20)
    got = op(a, b)
    want = op(np.ascontiguousarray(a).astype(np.float64), b)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("fn", [pk.dot, pk.matmul])
def test_product_over_an_unmaterialisable_broadcast_is_memory_error_not_a_hang(fn):
    # K = 2**40 zero-stride operands: days of multiply-adds; NumPy's dot copies and fails to allocate.
    a = np.broadcast_to(1.0, (33, 2**40))
    b = np.broadcast_to(1.0, (2**40, 16))
    with pytest.raises(MemoryError, match="Unable to allocate"):
        fn(a, b)
    with pytest.raises(MemoryError, match="Unable to allocate"):
        pk.dense(a, b)


@pytest.mark.parametrize("value", [2**63, 5, True])
def test_sum_of_a_python_int_is_refused_not_a_float(value):
    # NumPy keeps the integer type (np.sum(2**63) is uint64): pykernels computes in floats only
    with pytest.raises(TypeError, match="Python int or bool"):
        pk.sum(value)
    assert float(pk.sum(2.5)) == 2.5
