"""pykernels.dense / dense_backward: the fused relu(x @ W + b) against NumPy's unfused expression,
its gradients against the hand-written NumPy backward and finite differences, preallocated
buffers, errors, threads and every ISA."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from linalg_util import LAYOUTS, assert_product_close, isa, make, numerical_grad, supported_isas

import pykernels as pk

DTYPES = (np.float32, np.float64)
side = st.sampled_from([0, 1, 2, 3, 7, 10, 13, 14, 15, 31, 32, 33, 70])


def dense_ref(x, W, b, act):
    y = x @ W
    if b is not None:
        y = y + b
    return np.maximum(y, 0) if act == "relu" else y


def dense_backward_ref(dy, x, W, y, act):
    """The hand-written NumPy backward (float64)."""
    dy, x, W = (np.asarray(v, np.float64) for v in (dy, x, W))
    if act == "relu":
        dy = np.where(np.asarray(y) > 0, dy, 0.0)
    return dy @ W.T, x.T @ dy, dy.sum(axis=0)


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


@pytest.mark.parametrize("name", supported_isas())
@pytest.mark.parametrize("dt", DTYPES)
def test_small_products_read_in_place_every_isa(name, dt):
    """B with contiguous rows, at most 64 KiB and wider than one vector: the path that packs nothing
    (full and partial column blocks, row remainders, bias contiguous or strided, relu, A transposed or
    reversed, and the accumulating form that matmul_backward uses to sum over a broadcast batch)."""
    rng = np.random.default_rng(26)
    with isa(name):
        for m, k, n in [(1, 3, 17), (13, 7, 33), (30, 64, 40), (61, 97, 100), (200, 16, 48), (12, 1, 64)]:
            W = make(rng, (k, n), dt)
            b = make(rng, (2 * n,), dt)[::2]
            for lx in ("c", "f", "neg"):
                x = make(rng, (m, k), dt, lx)
                for act in (None, "relu"):
                    np.testing.assert_allclose(pk.dense(x, W, b, activation=act), dense_ref(x, W, b, act),
                                               rtol=1e-4, atol=1e-4)
                assert_product_close(pk.dot(x, W), x, W, np.dot)
        a, w = make(rng, (10, 13, 7), dt)[::2], make(rng, (7, 33), dt)  # batch not foldable: C accumulates
        dout = make(rng, (5, 13, 33), dt)
        da, dw = pk.matmul_backward(dout, a, w)
        np.testing.assert_allclose(da, dout @ w.T, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(dw, np.einsum("bik,bij->kj", a, dout), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", supported_isas())
@pytest.mark.parametrize("dt", DTYPES)
def test_small_transposed_b_every_isa(name, dt):
    """B = W.T of a contiguous W with at most one vector of rows (K) and B <= 64 KiB, the layer-2
    backward dZ . W2.T: each thread copies B into row-major order (register transposes), then the
    path that packs nothing. K within and beyond one vector, partial tiles, bias, relu, 2 threads,
    and the accumulating form of a broadcast batch."""
    rng = np.random.default_rng(27)
    with isa(name):
        for m, k, n in [(128, 10, 512), (13, 7, 33), (61, 16, 100), (1, 3, 40), (200, 8, 17), (37, 17, 40)]:
            W = make(rng, (n, k), dt)  # used as W.T: (k, n) with contiguous columns
            b = make(rng, (n,), dt)
            x = make(rng, (m, k), dt)
            for t in (1, 2):
                with pk.threads(t):
                    assert_product_close(pk.dot(x, W.T), x, W.T, np.dot)
                    for act in (None, "relu"):
                        np.testing.assert_allclose(pk.dense(x, W.T, b, activation=act), dense_ref(x, W.T, b, act),
                                                   rtol=1e-4, atol=1e-4)
        a, w = make(rng, (10, 13, 40), dt)[::2], make(rng, (40, 9), dt)  # da = dout @ w.T, batch not foldable
        dout = make(rng, (5, 13, 9), dt)
        da, dw = pk.matmul_backward(dout, a, w)
        np.testing.assert_allclose(da, dout @ w.T, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(dw, np.einsum("bik,bij->kj", a, dout), rtol=1e-4, atol=1e-4)


@st.composite
def unpacked_case(draw):
    """A product on the path that packs nothing (B within 64 KiB, wider than one vector): B row-major,
    or B = W.T with K within one vector (copied by each thread for its columns of C). M and N span
    the shapes where threads split C's rows and those where they split its columns."""
    dt = draw(st.sampled_from(DTYPES))
    transposed = draw(st.booleans())
    lanes = 64 // np.dtype(dt).itemsize
    k = draw(st.integers(1, lanes if transposed else 40))
    n_max = (64 << 10) // (k * np.dtype(dt).itemsize)
    n = min(n_max, draw(st.sampled_from([lanes + 1, 33, 100, 255, 256, 300, 512, 700]) | st.integers(lanes + 1, 700)))
    m = draw(st.sampled_from([1, 5, 12, 13, 24, 25, 36, 61, 128, 130, 200]))
    return dt, m, k, n, transposed, draw(st.sampled_from([None, "relu"])), draw(st.booleans()), draw(
        st.integers(0, 2**32 - 1))


@settings(max_examples=40, deadline=None)
@given(unpacked_case())
# dZ . W2.T of the MNIST model and shapes whose 2-thread split is by columns (128 rows are 6 + 5 tiles
# of 12), with a bias, which each thread must read from its first column on.
@example((np.float32, 128, 10, 512, True, "relu", True, 0))
@example((np.float64, 128, 8, 512, True, None, True, 1))
@example((np.float32, 61, 40, 300, False, "relu", True, 2))
def test_unpacked_small_products_same_bits_for_every_thread_count(case):
    """Whichever way the threads split C (rows, or columns of a small B, each thread transposing only
    its own columns of W.T), every element is the same FMA chain: 1, 2 and 3 threads give the same
    bits, with and without bias and relu, and agree with NumPy, under every ISA."""
    dt, m, k, n, transposed, act, with_bias, seed = case
    rng = np.random.default_rng(seed)
    x = make(rng, (m, k), dt)
    W = make(rng, (n, k), dt).T if transposed else make(rng, (k, n), dt)
    b = make(rng, (n,), dt) if with_bias else None
    for name in supported_isas():
        with isa(name):
            runs = []
            for t in (1, 2, 3):
                with pk.threads(t):
                    runs.append((pk.dot(x, W), pk.dense(x, W, b, activation=act)))
        for prod, fused in runs[1:]:
            np.testing.assert_array_equal(prod, runs[0][0])
            np.testing.assert_array_equal(fused, runs[0][1])
        assert_product_close(runs[1][0], x, W, np.dot)
        np.testing.assert_allclose(runs[1][1], dense_ref(x, W, b, act), rtol=1e-4, atol=1e-4)


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


@pytest.mark.parametrize("name", supported_isas())
@pytest.mark.parametrize("dt", DTYPES)
def test_dense_transposed_output_every_isa(name, dt):
    """Shapes run as C^T = W^T x^T (N within one row tile, x column-major): the micro-kernel stores
    its tile transposed (one vector per column of C), with the bias per row of the transposed
    problem, relu, one or several K blocks, full and partial tiles."""
    rng = np.random.default_rng(26)
    with isa(name):
        for m, k, n in [(512, 128, 10), (37, 33, 12), (100, 600, 5), (33, 1000, 1 + 11), (64, 7, 3)]:
            x, W, b = make(rng, (m, k), dt, "f"), make(rng, (k, n), dt), make(rng, (n,), dt)
            for act in (None, "relu"):
                got = pk.dense(x, W, b, activation=act)
                np.testing.assert_allclose(got, dense_ref(x, W, b, act), rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(pk.dot(x, W), x @ W, rtol=1e-4, atol=1e-4)


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
