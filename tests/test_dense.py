"""pykernels.dense / dense_backward: the fused relu(x @ W + b) against NumPy's unfused expression,
its gradients against pykernels.reference.dense_backward and finite differences, preallocated
buffers, errors, threads and every ISA. The GEMM paths under dense are driven in test_gemm.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from linalg_util import LAYOUTS, assert_product_close, isa, make, numerical_grad, supported_isas

import pykernels as pk
from pykernels import reference

DTYPES = (np.float32, np.float64)
side = st.sampled_from([0, 1, 2, 3, 7, 10, 13, 14, 15, 31, 32, 33, 70])


# The oracle: pykernels.reference.dense(x, W, b, activation), and its backward in float64.
dense_ref = reference.dense


def dense_backward_ref(dy, x, W, y, act):
    """reference.dense_backward on float64 copies of dy, x and W: (dx, dW, db)."""
    dy, x, W = (np.asarray(v, np.float64) for v in (dy, x, W))
    return reference.dense_backward(dy, x, W, y, act)


@st.composite
def dense_case(draw):
    return (draw(side), draw(side), draw(side), draw(st.sampled_from(DTYPES)), draw(st.sampled_from(LAYOUTS)),
            draw(st.sampled_from(LAYOUTS)), draw(st.booleans()), draw(st.sampled_from([None, "relu"])),
            draw(st.integers(0, 2**32 - 1)))


@settings(max_examples=80, deadline=None)
@given(dense_case())
def test_dense_matches_numpy(case):
    m, k, n, dt, lx, lw, has_b, act, seed = case
    rng = np.random.default_rng(seed)
    x, W = make(rng, (m, k), dt, lx), make(rng, (k, n), dt, lw)
    b = make(rng, (n,), dt, "neg") if has_b else None
    got = pk.dense(x, W, b, activation=act)
    assert got.dtype == dt and got.shape == (m, n)
    # The GEMM part within OpenBLAS's error; bias and relu are exact once the sum is the same.
    if b is None and act is None:
        assert_product_close(got, x, W, np.matmul)
    ref = dense_ref(x.astype(np.float64), W.astype(np.float64), None if b is None else b.astype(np.float64), act)
    tol = dict(rtol=1e-4, atol=1e-5 * (1 + k)) if dt == np.float32 else dict(rtol=1e-11, atol=1e-12 * (1 + k))
    np.testing.assert_allclose(got, ref, **tol)
    if act == "relu":
        assert np.all(got >= 0)


@settings(max_examples=40, deadline=None)
@given(dense_case())
def test_dense_exact_on_integers(case):
    m, k, n, dt, lx, lw, has_b, act, seed = case
    rng = np.random.default_rng(seed)
    x, W = make(rng, (m, k), dt, lx, ints=True), make(rng, (k, n), dt, lw, ints=True)
    b = make(rng, (n,), dt, "step", ints=True) if has_b else None
    np.testing.assert_array_equal(pk.dense(x, W, b, activation=act), dense_ref(x, W, b, act))


def test_dense_relu_nan_and_signed_zero():
    # relu is np.maximum(v, 0): NaN propagates, -0.0 and negatives become +0.0.
    x = np.array([[np.nan, 1.0], [-0.0, 0.0], [-2.0, 0.0], [np.inf, 0.0]], np.float32)
    W = np.eye(2, dtype=np.float32)[:, :1]
    got = pk.dense(x, W, activation="relu")
    expect = np.maximum(x @ W, 0)
    np.testing.assert_array_equal(got, expect)
    assert not np.signbit(got[1:3]).any()


@pytest.mark.parametrize("name", supported_isas())
@pytest.mark.parametrize("dt", DTYPES)
def test_dense_every_isa(name, dt):
    rng = np.random.default_rng(21)
    with isa(name):
        # n = 4, 6, 8, 10, 12: dW = x^T dZ computed as dZ^T x with n rows, one full register tile of
        # some ISA (generic 4, AVX2 6, AVX-512 10 or 12): the masked packing of dZ^T's columns.
        shapes = [(128, 78, 51), (13, 5, 10), (128, 51, 10), (1, 9, 33), (33, 9, 1), (128, 200, 10), (61, 97, 7),
                  (50, 33, 4), (50, 33, 6), (50, 33, 8), (50, 33, 12)]
        for m, k, n in shapes:
            x, W, b = make(rng, (m, k), dt), make(rng, (k, n), dt, "f"), make(rng, (n,), dt)
            y = pk.dense(x, W, b, activation="relu")
            np.testing.assert_allclose(y, dense_ref(x, W, b, "relu"), rtol=1e-4, atol=1e-4)
            dy = make(rng, (m, n), dt)
            dx, dW, db = pk.dense_backward(dy, x, W, y=y, activation="relu")
            for got, ref in zip((dx, dW, db), dense_backward_ref(dy, x, W, y, "relu")):
                np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


@settings(max_examples=60, deadline=None)
@given(dense_case())
def test_dense_backward_matches_numpy(case):
    m, k, n, dt, lx, lw, _, act, seed = case
    rng = np.random.default_rng(seed)
    x, W, b = make(rng, (m, k), dt, lx), make(rng, (k, n), dt, lw), make(rng, (n,), dt)
    y = pk.dense(x, W, b, activation=act)
    dy = make(rng, (m, n), dt, "step")
    dy0 = dy.copy()
    dx, dW, db = pk.dense_backward(dy, x, W, y=y if act else None, activation=act)
    np.testing.assert_array_equal(dy, dy0)  # the mask is applied while packing, dy is untouched
    rdx, rdW, rdb = dense_backward_ref(dy, x, W, y, act)
    tol = dict(rtol=1e-4, atol=1e-5 * (1 + max(m, n))) if dt == np.float32 else dict(rtol=1e-11, atol=1e-12 * (1 + m + n))
    for got, ref in ((dx, rdx), (dW, rdW), (db, rdb)):
        assert got.dtype == dt
        np.testing.assert_allclose(got, ref, **tol)
    _, dW2, db2 = pk.dense_backward(dy, x, W, y=y if act else None, activation=act, need_dx=False)
    assert _ is None
    np.testing.assert_array_equal(dW2, dW)
    np.testing.assert_array_equal(db2, db)


@pytest.mark.parametrize("act", [None, "relu"])
def test_dense_backward_finite_differences(act):
    rng = np.random.default_rng(22)
    x, W, b = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    w = rng.standard_normal((5, 3))
    y = pk.dense(x, W, b, activation=act)
    assert np.min(np.abs(x @ W + b)) > 1e-3  # away from relu's kink, so central differences are valid

    def loss():
        return float(np.sum(w * pk.dense(x, W, b, activation=act)))

    dx, dW, db = pk.dense_backward(w, x, W, y=y, activation=act)
    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dW, numerical_grad(loss, W), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(db, numerical_grad(loss, b), rtol=1e-5, atol=1e-7)


def test_dense_backward_preallocated_buffers_are_reused():
    rng = np.random.default_rng(23)
    x, W = rng.standard_normal((16, 8)).astype(np.float32), rng.standard_normal((8, 4)).astype(np.float32)
    y = pk.dense(x, W, activation="relu")
    dy = rng.standard_normal((16, 4)).astype(np.float32)
    dx, dW, db = (np.full(s, np.nan, np.float32) for s in ((16, 8), (8, 4), (4,)))
    r = pk.dense_backward(dy, x, W, y=y, activation="relu", dx=dx, dW=dW, db=db)
    assert r[0] is dx and r[1] is dW and r[2] is db
    for got, ref in zip(r, dense_backward_ref(dy, x, W, y, "relu")):
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_dense_errors():
    x, W = np.ones((4, 3)), np.ones((3, 2))
    with pytest.raises(ValueError, match=r"shapes \(4,3\) and \(4,2\) not aligned: 3 \(dim 1\) != 4 \(dim 0\)"):
        pk.dense(x, np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"b must have shape \(2,\)"):
        pk.dense(x, W, np.ones(3))
    with pytest.raises(ValueError, match="activation must be None or 'relu', got 'tanh'"):
        pk.dense(x, W, activation="tanh")
    with pytest.raises(ValueError, match="activation must be None or 'relu', got '\\\\ud800'"):
        pk.dense(x, W, activation="\ud800")  # a lone surrogate: no UTF-8 copy of it exists
    with pytest.raises(TypeError, match="activation must be None or 'relu', got int"):
        pk.dense(x, W, activation=1)
    with pytest.raises(TypeError, match=r"dense\(\) missing required argument 'W'"):
        pk.dense(x)
    with pytest.raises(TypeError, match="unexpected keyword argument 'bias'"):
        pk.dense(x, W, bias=np.ones(2))
    with pytest.raises(ValueError, match="x must be 2-d"):
        pk.dense(np.ones(3), W)
    with pytest.raises(TypeError, match="int64"):
        pk.dense(x.astype(np.int64), W)
    with pytest.raises(ValueError, match="needs the forward output y"):
        pk.dense_backward(np.ones((4, 2)), x, W, activation="relu")
    with pytest.raises(ValueError, match=r"dy has shape \(4,3\)"):
        pk.dense_backward(np.ones((4, 3)), x, W)
    with pytest.raises(ValueError, match=r"y has shape \(4,3\)"):
        pk.dense_backward(np.ones((4, 2)), x, W, y=np.ones((4, 3)), activation="relu")
    dy = np.ones((4, 2))
    with pytest.raises(TypeError, match="dW must be a numpy.ndarray"):
        pk.dense_backward(dy, x, W, dW=[[0.0, 0.0]] * 3)
    with pytest.raises(TypeError, match="dW has dtype float32, expected float64"):
        pk.dense_backward(dy, x, W, dW=np.empty((3, 2), np.float32))
    with pytest.raises(ValueError, match=r"db has shape \(3,\), expected \(2,\)"):
        pk.dense_backward(dy, x, W, db=np.empty(3))
    with pytest.raises(ValueError, match="dx must be C-contiguous"):
        pk.dense_backward(dy, x, W, dx=np.empty((3, 4)).T)
    ro = np.empty((3, 2))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="dW is read-only"):
        pk.dense_backward(dy, x, W, dW=ro)
    with pytest.raises(ValueError, match="overlaps the input 'x'"):
        pk.dense_backward(dy, x, W, dx=x)


def test_dense_out():
    rng = np.random.default_rng(24)
    x, W, b = rng.standard_normal((6, 5)), rng.standard_normal((5, 4)), rng.standard_normal(4)
    out = np.full((6, 4), np.nan)
    assert pk.dense(x, W, b, activation="relu", out=out) is out
    np.testing.assert_allclose(out, dense_ref(x, W, b, "relu"), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", [(128, 784, 512), (128, 512, 10), (300, 100, 200), (7, 3000, 9), (4000, 50, 70)])
def test_dense_bit_identical_across_threads(dt, shape):
    m, k, n = shape
    rng = np.random.default_rng(25)
    x, W, b = make(rng, (m, k), dt), make(rng, (k, n), dt), make(rng, (n,), dt)
    dy = make(rng, (m, n), dt)
    res = []
    for t in (1, 2):
        with pk.threads(t):
            y = pk.dense(x, W, b, activation="relu")
            res.append((y, *pk.dense_backward(dy, x, W, y=y, activation="relu")))
    for u, v in zip(*res):
        np.testing.assert_array_equal(u, v)


def test_dense_zero_sizes():
    for m, k, n in [(0, 3, 4), (3, 0, 4), (3, 4, 0), (0, 0, 0)]:
        x, W, b = np.ones((m, k)), np.ones((k, n)), np.full(n, -1.0)
        np.testing.assert_array_equal(pk.dense(x, W, b, activation="relu"), np.maximum(x @ W + b, 0))
        dx, dW, db = pk.dense_backward(np.ones((m, n)), x, W)
        np.testing.assert_array_equal(dx, np.ones((m, n)) @ W.T)
        np.testing.assert_array_equal(dW, x.T @ np.ones((m, n)))
        np.testing.assert_array_equal(db, np.ones((m, n)).sum(axis=0))


@pytest.mark.parametrize("name", ["dot", "matmul", "dot_backward", "matmul_backward", "dense", "dense_backward"])
def test_docstring_examples_run(name):
    import doctest

    fn = getattr(pk, name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = doctest.DocTestFinder().find(fn, name, globs={})
    assert tests and tests[0].examples, f"{name} has no example"
    for t in tests:
        runner.run(t)
    assert runner.failures == 0
