"""The CUDA kernels' logic, checked on the CPU through their emulation (same per-thread code), and
on a real device where one exists (skipped otherwise)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pykernels.cuda as pkc

REFS = {
    "add": np.add,
    "subtract": np.subtract,
    "multiply": np.multiply,
    "maximum": np.maximum,
    "relu_backward": lambda d, x: np.where(x > 0, d, np.zeros((), d.dtype)),
    "sigmoid_backward": lambda d, y: d * (y * (1 - y)),
    "tanh_backward": lambda d, y: d * (1 - y * y),
}


@st.composite
def broadcast_pair(draw):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=0, max_side=5))
    dt = draw(st.sampled_from([np.float32, np.float64]))
    arrs = []
    for shape in shapes.input_shapes:
        base = draw(hnp.arrays(dt, tuple(2 * s for s in shape), elements=st.floats(-10, 10, width=32)))
        # a strided, possibly reversed view of a bigger array
        steps = draw(st.lists(st.sampled_from([1, 2, -1, -2]), min_size=len(shape), max_size=len(shape)))
        idx = tuple(slice(None, s * abs(k), abs(k)) if k > 0 else slice(s * abs(k) - 1, None, k) if s else slice(0, 0)
                    for s, k in zip(shape, steps))
        v = base[idx]
        assert v.shape == shape
        arrs.append(v)
    return arrs


@given(broadcast_pair(), st.sampled_from(sorted(REFS)))
def test_emulated_elementwise_matches_numpy(pair, op):
    a, b = pair
    got = pkc.elementwise(op, a, b, emulate=True)
    np.testing.assert_array_equal(got, REFS[op](a, b))


@given(
    st.integers(0, 40), st.integers(0, 40), st.integers(0, 40),
    st.sampled_from([np.float32, np.float64]), st.booleans(), st.booleans(), st.sampled_from([None, "relu"]),
)
def test_emulated_dense_matches_numpy(m, k, n, dt, trans_x, with_bias, act):
    rng = np.random.default_rng(m * 10000 + k * 100 + n)
    x = rng.standard_normal((k, m)).astype(dt).T if trans_x else rng.standard_normal((m, k)).astype(dt)
    W = rng.standard_normal((k, 2 * n)).astype(dt)[:, ::2]  # strided columns
    b = rng.standard_normal(n).astype(dt) if with_bias else None
    ref = x.astype(np.float64) @ W.astype(np.float64) + (0 if b is None else b)
    if act == "relu":
        ref = np.maximum(ref, 0)
    got = pkc.dense(x, W, b, act, emulate=True)
    assert got.dtype == dt
    tol = 1e-4 if dt == np.float32 else 1e-12
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * max(1, k))


UNARY_REFS = {"negative": np.negative, "absolute": np.absolute}


@given(broadcast_pair(), st.sampled_from(sorted(UNARY_REFS)), st.sampled_from([0.0, -0.0, np.nan, -np.nan, np.inf]))
def test_emulated_unary_matches_numpy_bitwise(pair, op, special):
    """Strided/reversed views with a special value planted: every bit equal, NaN and zero signs too."""
    x = pair[0].copy() if pair[0].size else pair[0]
    if x.size:
        x.flat[0] = special
    got = pkc.elementwise(op, x, emulate=True)
    want = UNARY_REFS[op](x)
    assert got.dtype == want.dtype and got.shape == want.shape
    ints = {4: np.uint32, 8: np.uint64}[want.itemsize]
    np.testing.assert_array_equal(got.view(ints), np.ascontiguousarray(want).view(ints))


@given(broadcast_pair(), st.sampled_from(["exp", "log", "tanh", "sigmoid"]))
def test_emulated_transcendental_matches_host(pair, op):
    """The emulated device logic runs the host's scalar vmath functions, compiled like the generic
    ISA's loops: the bits of pykernels.<op> under that ISA (the FMA ISAs round some intermediates
    differently, the AVX-512 one has its own 16-lane functions; on a device, CUDA's own exp/log/tanh,
    within 2 ULP: csrc/include/pykernels/ops.hpp)."""
    import pykernels as pk
    from pykernels import _core

    x = pair[0]
    got = pkc.elementwise(op, x, emulate=True)
    old = _core._isa_active()
    _core._set_isa("generic")
    try:
        with np.errstate(all="ignore"):  # the inputs include log's x <= 0: NumPy's warnings
            want = np.asarray(getattr(pk, op)(x))
    finally:
        _core._set_isa(old)
    assert got.dtype == want.dtype and got.shape == want.shape
    ints = {4: np.uint32, 8: np.uint64}[want.itemsize]
    np.testing.assert_array_equal(got.view(ints), np.ascontiguousarray(want).view(ints))


def test_errors_are_clear():
    with pytest.raises(ValueError, match="unknown op"):
        pkc.elementwise("divide", np.ones(2), np.ones(2), emulate=True)
    with pytest.raises(TypeError, match="one operand"):
        pkc.elementwise("negative", np.ones(2), np.ones(2), emulate=True)
    with pytest.raises(TypeError, match="two operands"):
        pkc.elementwise("add", np.ones(2), emulate=True)
    with pytest.raises(TypeError, match="int64"):
        pkc.elementwise("add", np.ones(2, np.int64), np.ones(2, np.int64), emulate=True)
    with pytest.raises(ValueError, match="not aligned"):
        pkc.dense(np.ones((2, 3)), np.ones((4, 5)), emulate=True)
    if not pkc.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            pkc.elementwise("add", np.ones(2), np.ones(2))


@pytest.mark.skipif(not pkc.is_available(), reason="no CUDA device")
@given(broadcast_pair(), st.sampled_from(sorted(REFS)))
def test_device_elementwise_matches_numpy(pair, op):
    a, b = pair
    np.testing.assert_array_equal(pkc.elementwise(op, a, b), REFS[op](a, b))


@pytest.mark.skipif(not pkc.is_available(), reason="no CUDA device")
def test_device_dense_matches_emulation():
    rng = np.random.default_rng(0)
    x, W, b = rng.standard_normal((70, 33)), rng.standard_normal((33, 45)), rng.standard_normal(45)
    np.testing.assert_allclose(pkc.dense(x, W, b, "relu"), pkc.dense(x, W, b, "relu", emulate=True), rtol=1e-12)
