"""pykernels.dot / dot_backward against np.dot: every rank combination, both dtypes, strided,
transposed and negative-stride operands, scalars, out=, errors, gradients and threads. The GEMM
paths under dot (tile edges, large K, every ISA) are driven in test_gemm.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from linalg_util import LAYOUTS, assert_product_close, make, numerical_grad

import pykernels as pk

SETTINGS = settings(max_examples=60, deadline=None)
DTYPES = (np.float32, np.float64)
side = st.sampled_from([0, 1, 2, 3, 5, 7, 13, 14, 15, 17, 31, 33, 47, 65])


@st.composite
def dot_case(draw, max_rank=4):
    """Shapes of a and b aligned for np.dot (ranks 1..max_rank), dtype, layouts, seed."""
    ra = draw(st.integers(1, max_rank))
    rb = draw(st.integers(1, max_rank))
    k = draw(side)
    small = st.integers(0, 3)
    a_shape = tuple(draw(small) for _ in range(ra - 2)) + ((draw(side),) if ra >= 2 else ()) + (k,)
    b_shape = tuple(draw(small) for _ in range(rb - 2)) + (k,) + ((draw(side),) if rb >= 2 else ())
    return (a_shape, b_shape, draw(st.sampled_from(DTYPES)), draw(st.sampled_from(LAYOUTS)),
            draw(st.sampled_from(LAYOUTS)), draw(st.integers(0, 2**32 - 1)))


@SETTINGS
@given(dot_case())
def test_dot_matches_numpy(case):
    a_shape, b_shape, dt, la, lb, seed = case
    rng = np.random.default_rng(seed)
    a, b = make(rng, a_shape, dt, la), make(rng, b_shape, dt, lb)
    a0, b0 = a.copy(), b.copy()
    got = pk.dot(a, b)
    assert type(got) is type(np.dot(a, b))
    assert_product_close(got, a, b, np.dot)
    np.testing.assert_array_equal(a, a0)  # inputs untouched
    np.testing.assert_array_equal(b, b0)


@SETTINGS
@given(dot_case(max_rank=3))
def test_dot_exact_on_integers(case):
    # Small integer values: every product and partial sum is exact in float32 and float64, so the
    # result must equal NumPy's bit for bit whatever the summation order.
    a_shape, b_shape, dt, la, lb, seed = case
    rng = np.random.default_rng(seed)
    a, b = make(rng, a_shape, dt, la, ints=True), make(rng, b_shape, dt, lb, ints=True)
    np.testing.assert_array_equal(pk.dot(a, b), np.dot(a, b))


def test_dot_scalar_and_zero_d():
    a = np.array([1.0, 2.0, 3.0], np.float32)
    r = pk.dot(a, a)
    assert isinstance(r, np.float32) and r == np.float32(14.0)
    assert isinstance(pk.dot(a.astype(np.float64), a.astype(np.float64)), np.float64)
    np.testing.assert_array_equal(pk.dot(np.float32(2.0), np.ones((2, 3), np.float32)), np.full((2, 3), 2, np.float32))
    np.testing.assert_array_equal(pk.dot(np.ones((2, 3)), 3.0), np.full((2, 3), 3.0))
    assert pk.dot(np.ones(0), np.ones(0)) == 0.0
    np.testing.assert_array_equal(pk.dot(np.ones((3, 0)), np.ones((0, 4))), np.zeros((3, 4)))


def test_dot_mixed_dtypes_promote():
    a = np.ones((3, 4), np.float32)
    b = np.ones((4, 2), np.float64)
    assert pk.dot(a, b).dtype == np.float64
    assert pk.dot([[1.0, 2.0]], [[3.0], [4.0]]).dtype == np.float64


_F32 = np.ones(3, np.float32)


@pytest.mark.parametrize("args", [
    (_F32, 2.0), (2.0, _F32), (_F32, 2), (_F32, True), (2.0, 3.0), (np.float32(2), _F32),
    (_F32, np.array(2.0, np.float32)), (_F32, np.float64(2.0)), (_F32.astype(np.float64), 2.5),
], ids=repr)
def test_dot_scalars_promote_like_np_dot(args):
    """np.dot is not a ufunc: a Python float or int is a float64 (int64) array before promotion, so
    float32 . 2.0 is float64 (np.multiply would keep float32); a bool stays float32."""
    r, e = pk.dot(*args), np.dot(*args)
    assert type(r) is type(e) and r.dtype == e.dtype
    np.testing.assert_array_equal(r, e)


def test_dot_book_examples():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((2, 3, 4, 5))
    v = rng.standard_normal(5)
    assert pk.dot(a, v).shape == (2, 3, 4)
    assert_product_close(pk.dot(a, v), a, v, np.dot)
    b = rng.standard_normal((5, 6))
    assert pk.dot(a, b).shape == (2, 3, 4, 6)
    assert_product_close(pk.dot(a, b), a, b, np.dot)
    c = rng.standard_normal((3, 5, 2))
    r = pk.dot(a, c)
    assert r.shape == (2, 3, 4, 3, 2)
    np.testing.assert_allclose(r[1, 2, 3, 2, 1], np.sum(a[1, 2, 3, :] * c[2, :, 1]), rtol=1e-12)


@pytest.mark.parametrize("dt", DTYPES)
def test_dot_out(dt):
    rng = np.random.default_rng(5)
    a, b = make(rng, (20, 30), dt), make(rng, (30, 40), dt)
    out = np.full((20, 40), np.nan, dt)  # garbage in out must not leak (beta = 0)
    r = pk.dot(a, b, out=out)
    assert r is out
    assert_product_close(out, a, b, np.dot)
    # out aliasing an input: computed into a temporary first
    sq = make(rng, (33, 33), dt)
    expect = np.dot(sq, sq)
    pk.dot(sq, sq, out=sq)
    np.testing.assert_allclose(sq, expect, rtol=1e-4 if dt == np.float32 else 1e-12, atol=1e-4)
    x = make(rng, (40,), dt)
    wrong = np.empty((20, 40), np.float32 if dt == np.float64 else np.float64)
    with pytest.raises(ValueError, match="not acceptable"):  # np.dot's error for an out of another dtype
        np.dot(a, b, out=wrong)
    with pytest.raises(ValueError, match=r"not acceptable .*: out has dtype float\d+, the result float\d+"):
        pk.dot(a, b, out=wrong)
    with pytest.raises(ValueError, match="shape"):
        pk.dot(a, b, out=np.empty((20, 41), dt))
    with pytest.raises(ValueError, match="C-Array"):
        pk.dot(a, b, out=np.empty((40, 20), dt).T)
    ro = np.empty((20, 40), dt)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        pk.dot(a, b, out=ro)
    with pytest.raises(TypeError):
        pk.dot(a, b, out=[[0.0] * 40] * 20)
    assert pk.dot(b, x).shape == (30,)


def test_dot_errors():
    with pytest.raises(ValueError, match=r"^shapes \(2,3\) and \(4,5\) not aligned: 3 \(dim 1\) != 4 \(dim 0\)$"):
        pk.dot(np.ones((2, 3)), np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"shapes \(2,3,4\) and \(5,6,7\) not aligned: 4 \(dim 2\) != 6 \(dim 1\)"):
        pk.dot(np.ones((2, 3, 4)), np.ones((5, 6, 7)))
    with pytest.raises(ValueError, match=r"shapes \(3,\) and \(4,\) not aligned"):
        pk.dot(np.ones(3), np.ones(4))
    with pytest.raises(TypeError, match="int64"):
        pk.dot(np.ones((2, 2), np.int64), np.ones((2, 2)))
    with pytest.raises(TypeError, match="complex128"):
        pk.dot(np.ones((2, 2)), np.ones((2, 2), np.complex128))
    with pytest.raises(TypeError, match="float16"):
        pk.dot(np.ones((2, 2), np.float16), np.ones((2, 2), np.float32))


# ---- dot_backward ------------------------------------------------------------------------------
def dot_backward_reference(dout, a, b):
    """NumPy formula for the gradients of dot(a, b) (tensordot over the right axes)."""
    a, b, dout = (np.asarray(x, np.float64) for x in (a, b, dout))
    if a.ndim == 0:
        return np.sum(dout * b), a * dout
    if b.ndim == 0:
        return b * dout, np.sum(dout * a)
    la = a.ndim - 1
    if b.ndim == 1:
        da = dout[..., None] * b
        db = np.tensordot(a, dout, axes=(list(range(la)), list(range(la))))
        return da, db
    lb = b.ndim - 2  # dout axes: a[:-1] (la), b lead (lb), N
    # da[..., k] = sum over b lead and n of dout[..., q, n] * b[q, k, n]
    bl = list(range(lb))
    da = np.tensordot(dout, b, axes=(list(range(la, la + lb)) + [la + lb], bl + [lb + 1]))
    # db[q, k, n] = sum over a lead of a[..., k] * dout[..., q, n]
    db = np.tensordot(a, dout, axes=(list(range(la)), list(range(la))))  # (k, q..., n)
    db = np.moveaxis(db, 0, lb)
    return da, db


@settings(max_examples=40, deadline=None)
@given(dot_case(max_rank=3))
def test_dot_backward_matches_formula(case):
    a_shape, b_shape, dt, la, lb, seed = case
    rng = np.random.default_rng(seed)
    a, b = make(rng, a_shape, dt, la), make(rng, b_shape, dt, lb)
    dout = make(rng, np.dot(a, b).shape, dt, "neg")
    da, db = pk.dot_backward(dout, a, b)
    rda, rdb = dot_backward_reference(dout, a, b)
    assert np.shape(da) == a.shape and np.shape(db) == b.shape
    assert np.asarray(da).dtype == dt and np.asarray(db).dtype == dt
    tol = dict(rtol=2e-4, atol=2e-4 * (1 + max(a_shape + b_shape))) if dt == np.float32 else dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(da, rda, **tol)
    np.testing.assert_allclose(db, rdb, **tol)


@pytest.mark.parametrize(
    "a_shape,b_shape",
    [((4,), (4,)), ((3, 4), (4,)), ((4,), (4, 3)), ((3, 4), (4, 5)), ((2, 3, 4), (4,)), ((2, 3, 4), (4, 2)),
     ((2, 3, 4), (2, 4, 3)), ((), (3, 2)), ((3, 2), ()), ((2, 1, 3), (2, 3, 1))],
)
def test_dot_backward_finite_differences(a_shape, b_shape):
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    w = rng.standard_normal(np.shape(np.dot(a, b)))  # loss = sum(w * dot(a, b))

    def loss():
        return float(np.sum(w * pk.dot(a, b)))

    da, db = pk.dot_backward(w, a, b)
    np.testing.assert_allclose(da, numerical_grad(loss, a), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(db, numerical_grad(loss, b), rtol=1e-5, atol=1e-6)


def test_dot_backward_errors():
    with pytest.raises(ValueError, match=r"dout has shape \(2,5\) but dot\(a, b\) has shape \(2,4\)"):
        pk.dot_backward(np.ones((2, 5)), np.ones((2, 3)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="not aligned"):
        pk.dot_backward(np.ones((2, 4)), np.ones((2, 3)), np.ones((5, 4)))
    with pytest.raises(TypeError, match="int32"):
        pk.dot_backward(np.ones((2, 4), np.int32), np.ones((2, 3)), np.ones((3, 4)))


def test_dot_backward_bit_identical_across_threads():
    rng = np.random.default_rng(8)
    for m, k, n in [(128, 784, 512), (128, 512, 10), (300, 100, 200)]:
        a, b, d = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(
            np.float32), rng.standard_normal((m, n)).astype(np.float32)
        with pk.threads(1):
            g1 = pk.dot_backward(d, a, b)
        with pk.threads(2):
            g2 = pk.dot_backward(d, a, b)
        for x, y in zip(g1, g2):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("a_shape,b_shape", [((0, 0, 3), (3, 2)), ((2, 0, 3), (3, 4)), ((0, 2, 3), (5, 3, 0)),
                                             ((3,), (0, 0, 3, 2)), ((2, 0, 3), (3,))])
def test_dot_empty_results(a_shape, b_shape):
    # Empty results (whose C-contiguous strides can be 0 on non-empty dims) are never written.
    a, b = np.ones(a_shape), np.ones(b_shape)
    r = pk.dot(a, b)
    assert r.shape == np.dot(a, b).shape
    da, db = pk.dot_backward(np.ones(r.shape), a, b)
    np.testing.assert_array_equal(da, np.zeros(a_shape))
    np.testing.assert_array_equal(db, np.zeros(b_shape))
