"""Regression tests for hostile inputs found by the fuzzer (tests/fuzz). Failures that crash the
interpreter are not here (they would end the run): see the fuzz reproducers instead."""

from __future__ import annotations

import numpy as np
import pytest

import pykernels as pk
from pykernels import _core

@pytest.mark.xfail(strict=True, reason="_cuda_emu_gemm reads bias as contiguous, ignoring its strides")
def test_cuda_emu_gemm_reads_a_strided_bias_through_its_strides():
    buf = np.arange(32.0)
    bias = buf[16:8:-1]  # stride -8; reading it forward stays inside buf (no out-of-bounds read here)
    a, b = np.ones((2, 3)), np.ones((3, 8))
    c = np.zeros((2, 8))
    _core._cuda_emu_gemm(c, a, b, bias, False)
    np.testing.assert_array_equal(c, a @ b + bias)

@pytest.mark.xfail(strict=True, raises=MemoryError,
                   reason="a zero-stride float32 operand mixed with float64 is converted by a full copy of its "
                          "broadcast shape before the result's size is checked")
def test_mixed_dtype_broadcast_result_too_big_is_refused_before_any_copy():
    # (2**40, 1) x (1, 2**40): 2**80 elements, NumPy's "array is too big". At (2**31, 1) x (1, 2**31)
    # the same conversion allocates and fills 16 GiB first (minutes, or the OOM killer).

    a = np.broadcast_to(np.float32(1.0), (2**40, 1))
    b = np.broadcast_to(np.float64(1.0), (1, 2**40))
    with pytest.raises(ValueError, match="too big"):
        pk.add(a, b)
