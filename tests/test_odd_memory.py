"""Byte-swapped ('>f4' on this little-endian machine), unaligned and packed-field (stride = itemsize + 1)
arrays, in every role they can take outside the element-wise ops (test_elementwise covers those).

Inputs are read through a native copy, so the result is the one of the native array, bit for bit.
An output the kernels cannot address is written through a temporary where NumPy writes it
(``np.matmul(..., out=)``), and is a ValueError that leaves it untouched where NumPy refuses it
(``np.dot(..., out=)``) or where the array must be updated in place (dense/dense_backward buffers,
optimizer state, softmax buffers): never a result silently returned in a new array, never a
'>f8' buffer read as native doubles.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pykernels as pk
import strategies as S

KINDS = list(S.ODD_MEMORY)


def _same(got, expected):
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got.astype(expected.dtype), expected)


def _assert_refused_like_numpy(np_call, pk_call, out):
    """np_call raises ValueError, so must pk_call, and `out` keeps its contents."""
    before = np.array(out, copy=True)
    with pytest.raises(ValueError):
        np_call()
    with pytest.raises(ValueError, match=r"output array is not acceptable|aligned and in native byte order"):
        pk_call()
    np.testing.assert_array_equal(out, before)


@settings(max_examples=30, deadline=None)
@given(
    m=st.integers(0, 9), k=st.integers(0, 9), n=st.integers(0, 9), dtype=S.dtypes, kind=st.sampled_from(KINDS),
    stack=st.sampled_from([(), (2,)]),
)
def test_matmul_out_of_odd_memory_is_written_like_numpy(m, k, n, dtype, kind, stack):
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a = rng.standard_normal((*stack, m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    make = S.ODD_MEMORY[kind]
    out, np_out = make(np.full((*stack, m, n), np.nan, dtype)), make(np.full((*stack, m, n), np.nan, dtype))
    assert pk.matmul(a, b, out=out) is out
    assert np.matmul(a, b, out=np_out) is np_out
    assert out.dtype == np_out.dtype and out.strides == np_out.strides  # still the caller's odd array
    # The bits of pk's own result for native operands (the odd out only changes where it is written) ...
    _same(out, pk.matmul(a, b))
    assert np.isfinite(np.asarray(out)).all()
    # ... and NumPy's values, within the rounding of a K-term sum in either order (OpenBLAS's differs).
    got, want = np.asarray(out).astype(dtype), np.asarray(np_out).astype(dtype)
    bound = 2 * (k + 1) * np.finfo(dtype).eps * (np.abs(a) @ np.abs(b)).astype(np.float64)
    assert np.all(np.abs(got.astype(np.float64) - want) <= bound), np.max(np.abs(got - want))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
def test_dot_refuses_odd_out_like_numpy(kind, dtype):
    make = S.ODD_MEMORY[kind]
    a, b = np.ones((2, 3), dtype), np.ones((3, 4), dtype)
    out = make(np.full((2, 4), 7.0, dtype))
    _assert_refused_like_numpy(lambda: np.dot(a, b, out=out), lambda: pk.dot(a, b, out=out), out)
    # a 0-d operand (np.dot's element-wise product): the same rule
    v = make(np.full(4, 7.0, dtype))
    _assert_refused_like_numpy(lambda: np.dot(dtype(2.0), b[0], out=v), lambda: pk.dot(dtype(2.0), b[0], out=v), v)
    _assert_refused_like_numpy(lambda: np.dot(2.0, b[0], out=v),
                               lambda: pk.dot(2.0, b[0], out=v), v)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
def test_dense_refuses_odd_out(kind, dtype):
    x, w, bias = np.ones((2, 3), dtype), np.ones((3, 4), dtype), np.ones(4, dtype)
    out = S.ODD_MEMORY[kind](np.full((2, 4), 7.0, dtype))
    _assert_refused_like_numpy(lambda: np.dot(x, w, out=out), lambda: pk.dense(x, w, bias, "relu", out=out), out)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("which", ["dx", "dW", "db"])
def test_dense_backward_refuses_odd_buffers(kind, which):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((5, 3)), rng.standard_normal((3, 4))
    dy = rng.standard_normal((5, 4))
    shapes = {"dx": x.shape, "dW": w.shape, "db": (4,)}
    buf = S.ODD_MEMORY[kind](np.full(shapes[which], 7.0))
    before = np.array(buf, copy=True)
    with pytest.raises(ValueError, match=rf"{which} must be (C-contiguous|aligned and in native byte order)"):
        pk.dense_backward(dy, x, w, **{which: buf})
    np.testing.assert_array_equal(buf, before)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
def test_products_read_odd_inputs_as_their_values(kind, dtype):
    rng = np.random.default_rng(2)
    make = S.ODD_MEMORY[kind]
    x, w, bias = (rng.standard_normal(s).astype(dtype) for s in [(6, 5), (5, 4), (4,)])
    dy, v = rng.standard_normal((6, 4)).astype(dtype), rng.standard_normal(5).astype(dtype)
    ox, ow, ob, ody, ov = map(make, (x, w, bias, dy, v))
    _same(pk.dot(ox, ow), pk.dot(x, w))
    _same(pk.dot(ox, ov), pk.dot(x, v))
    _same(pk.dot(ov, ov), pk.dot(v, v))
    _same(pk.matmul(ox, ow), pk.matmul(x, w))
    y = pk.dense(x, w, bias, "relu")
    _same(pk.dense(ox, ow, ob, "relu"), y)
    for got, exp in zip(pk.dot_backward(ody, ox, ow), pk.dot_backward(dy, x, w)):
        _same(got, exp)
    for got, exp in zip(pk.matmul_backward(ody, ox, ow), pk.matmul_backward(dy, x, w)):
        _same(got, exp)
    for got, exp in zip(pk.dense_backward(ody, ox, ow, y=make(y), activation="relu"),
                        pk.dense_backward(dy, x, w, y=y, activation="relu")):
        _same(got, exp)
    # and the values are the right ones: NumPy on the native arrays
    np.testing.assert_allclose(pk.dot(ox, ow), x @ w, rtol=1e-5 if dtype == np.float32 else 1e-12)


def _int_odd(labels: np.ndarray, kind: str) -> np.ndarray:
    return S.ODD_MEMORY[kind](labels)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
def test_softmax_cross_entropy_reads_odd_inputs(kind, dtype):
    rng = np.random.default_rng(3)
    make = S.ODD_MEMORY[kind]
    logits = rng.standard_normal((7, 4)).astype(dtype)
    labels = rng.integers(0, 4, 7)
    onehot = np.eye(4, dtype=dtype)[labels]
    ref = pk.reference.softmax_cross_entropy(logits.astype(np.float64), labels)
    for lg, lb in [(make(logits), labels), (logits, _int_odd(labels, kind)), (make(logits), make(onehot))]:
        loss = pk.softmax_cross_entropy(lg, lb)
        assert loss == pk.softmax_cross_entropy(logits, labels if lb.ndim == 1 else onehot)
        assert loss == pytest.approx(ref, rel=1e-5)
        _same(pk.softmax_cross_entropy_backward(lg, lb), pk.softmax_cross_entropy_backward(logits, labels))


@pytest.mark.parametrize("kind", KINDS)
def test_softmax_cross_entropy_refuses_odd_buffers(kind):
    logits, labels = np.zeros((3, 4)), np.array([0, 1, 2])
    for name in ("probs", "dlogits"):
        buf = S.ODD_MEMORY[kind](np.full((3, 4), 7.0))
        with pytest.raises(ValueError, match=rf"'{name}' must be (C-contiguous|aligned and in native byte order)"):
            pk.softmax_cross_entropy(logits, labels, **{name: buf})
        np.testing.assert_array_equal(buf, 7.0)
    buf = S.ODD_MEMORY[kind](np.full((3, 4), 7.0))
    with pytest.raises(ValueError, match=r"'dlogits' must be"):
        pk.softmax_cross_entropy_backward(logits, labels, dlogits=buf)
    np.testing.assert_array_equal(buf, 7.0)


def test_uint64_labels_beyond_int64_are_reported_with_their_value():
    labels = np.array([1, 2**63 + 5, 0], np.uint64)
    with pytest.raises(ValueError, match=r"label 9223372036854775813 at index 1 is out of range for 3 classes"):
        pk.softmax_cross_entropy(np.zeros((3, 3)), labels)


UPDATES = {
    "sgd": (lambda p, g, s: pk.sgd_update(p, g, learning_rate=0.1, momentum=0.9, velocity=s[0]), 1),
    "rmsprop": (lambda p, g, s: pk.rmsprop_update(p, g, s[0], learning_rate=0.1), 1),
    "adam": (lambda p, g, s: pk.adam_update(p, g, s[0], s[1], alpha=0.1), 2),
    "adagrad": (lambda p, g, s: pk.adagrad_update(p, g, s[0], learning_rate=0.1), 1),
}


@pytest.mark.parametrize("name", list(UPDATES))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
def test_optimizer_updates_with_odd_memory(name, kind, dtype):
    update, nstate = UPDATES[name]
    make = S.ODD_MEMORY[kind]
    rng = np.random.default_rng(4)
    p0, g = rng.standard_normal(9).astype(dtype), rng.standard_normal(9).astype(dtype)
    state0 = [np.abs(rng.standard_normal(9)).astype(dtype) for _ in range(nstate)]
    p, state = p0.copy(), [s.copy() for s in state0]
    update(p, g, state)
    # an odd gradient is read as its values
    p2, state2 = p0.copy(), [s.copy() for s in state0]
    update(p2, make(g), state2)
    _same(p2, p)
    for s2, s in zip(state2, state):
        _same(s2, s)
    # an odd parameter or state array cannot be updated in place: an error, nothing written
    for i in range(nstate + 1):
        arrays = [p0.copy()] + [s.copy() for s in state0]
        arrays[i] = make(arrays[i])
        snaps = [np.array(a, copy=True) for a in arrays]
        with pytest.raises(ValueError, match=r"must be (C-contiguous|aligned and in native byte order)"):
            update(arrays[0], g, arrays[1:])
        for a, s in zip(arrays, snaps):
            np.testing.assert_array_equal(a, s)


@pytest.mark.parametrize("tdtype", [np.float16, np.float32, np.float64, ">f4", ">f8"])
@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
def test_softmax_cross_entropy_converts_dense_targets_of_any_float_dtype(tdtype, dtype):
    """Dense targets are converted to the logits' dtype: a float16 array was once passed through as
    if it held doubles (a loss of 2e-309 for 2.24)."""
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((4, 3)).astype(dtype)
    targets = rng.dirichlet(np.ones(3), 4).astype(tdtype)
    ref = pk.reference.softmax_cross_entropy(logits.astype(np.float64), targets.astype(np.float64))
    assert pk.softmax_cross_entropy(logits, targets) == pytest.approx(ref, rel=1e-3)
    expected = pk.reference.softmax_cross_entropy_backward(logits.astype(np.float64), targets.astype(np.float64))
    np.testing.assert_allclose(pk.softmax_cross_entropy_backward(logits, targets), expected, rtol=2e-3, atol=1e-4)
