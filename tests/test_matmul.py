"""pykernels.matmul / matmul_backward against np.matmul: broadcast stacks, 1-d promotion, strides,
errors, gradients (finite differences) with the broadcast axes summed back, threads, every ISA.
The GEMM paths under matmul are driven in test_gemm.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from linalg_util import LAYOUTS, assert_product_close, isa, make, numerical_grad, supported_isas

import pykernels as pk

DTYPES = (np.float32, np.float64)
side = st.sampled_from([0, 1, 2, 3, 5, 13, 14, 15, 17, 33, 47, 65])


@st.composite
def matmul_case(draw):
    """Broadcastable stacks (rank <= 2, sizes 0..3) + core dims from the tile-edge set, 1-d or 2-d cores."""
    stacks = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, min_side=0, max_side=3))
    sa, sb = stacks.input_shapes
    a1, b1 = draw(st.booleans()), draw(st.booleans())  # 1-d operands (no stack)
    k = draw(side)
    a_shape = (k,) if a1 else sa + (draw(side), k)
    b_shape = (k,) if b1 else sb + (k, draw(side))
    return (a_shape, b_shape, draw(st.sampled_from(DTYPES)), draw(st.sampled_from(LAYOUTS)),
            draw(st.sampled_from(LAYOUTS)), draw(st.integers(0, 2**32 - 1)))


@settings(max_examples=80, deadline=None)
@given(matmul_case())
def test_matmul_matches_numpy(case):
    a_shape, b_shape, dt, la, lb, seed = case
    rng = np.random.default_rng(seed)
    a, b = make(rng, a_shape, dt, la), make(rng, b_shape, dt, lb)
    got = pk.matmul(a, b)
    assert type(got) is type(np.matmul(a, b))
    assert_product_close(got, a, b, np.matmul)


@settings(max_examples=40, deadline=None)
@given(matmul_case())
def test_matmul_exact_on_integers(case):
    a_shape, b_shape, dt, la, lb, seed = case
    rng = np.random.default_rng(seed)
    a, b = make(rng, a_shape, dt, la, ints=True), make(rng, b_shape, dt, lb, ints=True)
    np.testing.assert_array_equal(pk.matmul(a, b), np.matmul(a, b))


@pytest.mark.parametrize("name", supported_isas())
def test_matmul_stacks_every_isa(name):
    rng = np.random.default_rng(11)
    cases = [((5, 17, 33), (33, 15)), ((2, 1, 14, 9), (3, 9, 32)), ((7,), (4, 7, 3)), ((4, 3, 7), (7,)),
             ((1, 15, 31), (6, 31, 17))]
    with isa(name):
        for dt in DTYPES:
            for a_shape, b_shape in cases:
                a, b = make(rng, a_shape, dt, "mixed"), make(rng, b_shape, dt, "step")
                assert_product_close(pk.matmul(a, b), a, b, np.matmul)


def test_matmul_errors():
    sig = r"\(n\?,k\),\(k,m\?\)->\(n\?,m\?\)"
    with pytest.raises(ValueError, match=r"matmul: Input operand 0 does not have enough dimensions \(has 0, gufunc core "
                                         r"with signature " + sig + r" requires 1\)"):
        pk.matmul(np.float64(1.0), np.ones(3))
    with pytest.raises(ValueError, match="matmul: Input operand 1 does not have enough dimensions"):
        pk.matmul(np.ones(3), 2.0)
    with pytest.raises(ValueError, match=r"matmul: Input operand 1 has a mismatch in its core dimension 0, with gufunc "
                                         r"signature " + sig + r" \(size 4 is different from 3\)"):
        pk.matmul(np.ones((2, 3)), np.ones((4, 5)))
    with pytest.raises(ValueError, match="could not be broadcast together"):
        pk.matmul(np.ones((2, 3, 4)), np.ones((3, 4, 5)))
    with pytest.raises(TypeError, match="int8"):
        pk.matmul(np.ones((2, 2), np.int8), np.ones((2, 2)))


def test_matmul_out_and_scalar():
    rng = np.random.default_rng(12)
    a, b = rng.standard_normal((3, 4, 5)), rng.standard_normal((5, 6))
    out = np.full((3, 4, 6), np.nan)
    assert pk.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-12)
    r = pk.matmul(np.ones(3, np.float32), np.ones(3, np.float32))
    assert isinstance(r, np.float32) and r == 3
    with pytest.raises(ValueError, match="shape"):
        pk.matmul(a, b, out=np.empty((3, 4, 5)))
    sq = rng.standard_normal((2, 9, 9))
    expect = sq @ sq
    pk.matmul(sq, sq, out=sq)  # overlapping out: temporary, then copy
    np.testing.assert_allclose(sq, expect, rtol=1e-12, atol=1e-12)


OUT_LAYOUTS = ("c", "f", "neg", "step", "mixed")


@settings(max_examples=60, deadline=None)
@given(matmul_case(), st.sampled_from(OUT_LAYOUTS))
def test_matmul_out_any_layout(case, out_layout):
    """out= of any layout, as np.matmul takes it: Fortran order makes the micro-kernel store its tiles
    transposed; views and reversed axes go through the general strides."""
    a_shape, b_shape, dt, la, lb, seed = case
    rng = np.random.default_rng(seed)
    a, b = make(rng, a_shape, dt, la), make(rng, b_shape, dt, lb)
    shape = np.matmul(a, b).shape
    out = np.full((), np.nan, dt) if len(shape) == 0 else make(rng, shape, dt, out_layout)  # 0-d: a 0-d out
    out[...] = np.nan
    assert pk.matmul(a, b, out=out) is out
    assert_product_close(out, a, b, np.matmul)


def test_matmul_out_errors():
    """out= of any layout and of any float dtype is taken (np.matmul's same_kind casting), but not
    an integer one, another shape or a read-only one (also a broadcast view), nor a non-array:
    NumPy's words where NumPy has them."""
    a, b = np.ones((2, 3)), np.ones((3, 4))
    for dt in (np.float32, np.float16):
        out, expected = np.full((4, 2), np.nan, dt).T, np.full((4, 2), np.nan, dt).T
        assert pk.matmul(a * 0.1, b, out=out) is out
        np.testing.assert_array_equal(out, np.matmul(a * 0.1, b, out=expected))
    with pytest.raises(TypeError):
        np.matmul(a, b, out=np.empty((2, 4), np.int64))
    with pytest.raises(TypeError, match=r"Cannot cast ufunc output from dtype\('float64'\) to dtype\('int64'\)"):
        pk.matmul(a, b, out=np.empty((2, 4), np.int64))
    with pytest.raises(ValueError, match=r"non-broadcastable output operand with shape \(2,5\)"):
        pk.matmul(a, b, out=np.empty((2, 5)))
    ro = np.empty((4, 2)).T
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="^output array is read-only$"):
        pk.matmul(a, b, out=ro)
    with pytest.raises(ValueError, match="read-only"):
        pk.matmul(a, b, out=np.broadcast_to(np.zeros(4), (2, 4)))
    with pytest.raises(TypeError, match="out must be a numpy.ndarray"):
        pk.matmul(a, b, out=[[0.0] * 4] * 2)
    with pytest.raises(ValueError, match="C-Array"):  # np.dot's rule is kept for dot
        pk.dot(a, b, out=np.empty((4, 2)).T)


def test_matmul_out_overlapping_itself():
    """A writeable out whose zero stride makes its elements share memory: computed into a
    temporary and copied, like an out that overlaps an input (no sum over the aliased axis)."""
    a, b = np.ones((3, 2)), np.ones((2, 4))
    base = np.zeros(4)
    out = np.lib.stride_tricks.as_strided(base, shape=(3, 4), strides=(0, 8), writeable=True)
    pk.matmul(a, b, out=out)
    np.testing.assert_array_equal(base, np.full(4, 2.0))


# ---- matmul_backward --------------------------------------------------------------------------
def matmul_backward_reference(dout, a, b):
    a, b, dout = (np.asarray(x, np.float64) for x in (a, b, dout))
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    d2 = dout
    if a.ndim == 1:
        d2 = np.expand_dims(d2, -2 if b.ndim >= 2 else -1)
    if b.ndim == 1:
        d2 = d2[..., None]
    da = d2 @ np.swapaxes(b2, -1, -2)
    db = np.swapaxes(a2, -1, -2) @ d2

    def sum_to(g, shape):
        while g.ndim > len(shape):
            g = g.sum(axis=0)
        for i, s in enumerate(shape):
            if s == 1 and g.shape[i] != 1:
                g = g.sum(axis=i, keepdims=True)
        return g

    da = sum_to(da, a2.shape).reshape(a.shape)
    db = sum_to(db, b2.shape).reshape(b.shape)
    return da, db


@settings(max_examples=50, deadline=None)
@given(matmul_case())
def test_matmul_backward_matches_formula(case):
    a_shape, b_shape, dt, la, lb, seed = case
    rng = np.random.default_rng(seed)
    a, b = make(rng, a_shape, dt, la), make(rng, b_shape, dt, lb)
    dout = make(rng, np.shape(np.matmul(a, b)), dt, "neg")
    da, db = pk.matmul_backward(dout, a, b)
    rda, rdb = matmul_backward_reference(dout, a, b)
    assert np.shape(da) == a.shape and np.shape(db) == b.shape
    tol = dict(rtol=2e-4, atol=1e-3 * (1 + max(a_shape + b_shape))) if dt == np.float32 else dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(da, rda, **tol)
    np.testing.assert_allclose(db, rdb, **tol)


@pytest.mark.parametrize(
    "a_shape,b_shape",
    [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)), ((2, 3), (3, 4)), ((2, 2, 3), (3, 2)), ((3,), (2, 3, 2)),
     ((2, 1, 2, 3), (3, 3, 2)), ((1, 2, 3), (2, 3, 2)), ((2, 2, 3), (3,))],
)
def test_matmul_backward_finite_differences(a_shape, b_shape):
    rng = np.random.default_rng(13)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    w = rng.standard_normal(np.shape(np.matmul(a, b)))

    def loss():
        return float(np.sum(w * pk.matmul(a, b)))

    da, db = pk.matmul_backward(w, a, b)
    np.testing.assert_allclose(da, numerical_grad(loss, a), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(db, numerical_grad(loss, b), rtol=1e-5, atol=1e-6)


def test_matmul_backward_empty_stack_gives_zero_grads():
    a, b = np.ones((1, 2, 3)), np.ones((0, 3, 4))
    da, db = pk.matmul_backward(np.ones((0, 2, 4)), a, b)
    np.testing.assert_array_equal(da, np.zeros((1, 2, 3)))
    assert db.shape == (0, 3, 4)


def test_matmul_backward_errors():
    with pytest.raises(ValueError, match=r"dout has shape \(3,4\) but matmul\(a, b\) has shape \(2,4\)"):
        pk.matmul_backward(np.ones((3, 4)), np.ones((2, 3)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="mismatch in its core dimension"):
        pk.matmul_backward(np.ones((2, 4)), np.ones((2, 3)), np.ones((2, 4)))


def test_matmul_bit_identical_across_threads():
    rng = np.random.default_rng(14)
    a, b = rng.standard_normal((4, 100, 300)).astype(np.float32), rng.standard_normal((300, 200)).astype(np.float32)
    d = rng.standard_normal((4, 100, 200)).astype(np.float32)
    with pk.threads(1):
        r1, g1 = pk.matmul(a, b), pk.matmul_backward(d, a, b)
    with pk.threads(2):
        r2, g2 = pk.matmul(a, b), pk.matmul_backward(d, a, b)
    np.testing.assert_array_equal(r1, r2)
    for x, y in zip(g1, g2):
        np.testing.assert_array_equal(x, y)


def test_matmul_empty_results():
    for a_shape, b_shape in [((0, 0, 2, 3), (3, 4)), ((2, 0, 2, 3), (1, 3, 4)), ((0, 3), (3, 2))]:
        a, b = np.ones(a_shape), np.ones(b_shape)
        r = pk.matmul(a, b)
        assert r.shape == np.matmul(a, b).shape
        da, db = pk.matmul_backward(np.ones(r.shape), a, b)
        np.testing.assert_array_equal(da, np.zeros(a_shape))
        np.testing.assert_array_equal(db, np.zeros(b_shape))


def test_matmul_out_one_tuple_and_dot_zero_d_out_like_numpy():
    o = np.zeros((2, 2))
    assert pk.matmul(np.ones((2, 3)), np.ones((3, 2)), out=(o,)) is o
    np.testing.assert_array_equal(o, 3.0)
    with pytest.raises(ValueError, match="1-tuple"):
        pk.matmul(np.ones((2, 3)), np.ones((3, 2)), out=(o, o))
    # np.dot(v, v, out=0-d) fills out and returns a NumPy scalar (not out)
    for a, b in [(np.ones(3), np.ones(3)), (np.array(2.0), np.array(3.0))]:  # vector . vector, 0-d . 0-d
        o0, e0 = np.zeros(()), np.zeros(())
        r, e = pk.dot(a, b, out=o0), np.dot(a, b, out=e0)
        assert type(r) is type(e) and r == e == o0 == e0
