"""sum / sum_to / add_backward against exact (math.fsum) references and np.sum.

Accuracy contract (at least as accurate as NumPy's pairwise summation): float32 results
are within float32 rounding of the exact sum and never further from it than np.sum's; float64
results are no worse than np.sum or a pairwise bound. See assertions.assert_sum_accurate.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.exceptions import AxisError

import pykernels as pk
import strategies as S
from assertions import assert_identical, assert_sum_accurate, assert_unmodified, snapshot

# Moderate magnitudes: accuracy is measured against an exact sum that must not overflow.
moderate = {np.float32: st.floats(-1e4, 1e4, width=32), np.float64: st.floats(-1e8, 1e8)}


@st.composite
def sum_cases(draw, layouts=S.LAYOUTS):
    dt = draw(S.dtypes)
    shape = tuple(draw(S.shapes))
    x = draw(S.arrays(dt, shape, layouts=layouts))
    # rescale to moderate magnitudes (keep the drawn sign pattern / zeros / layout)
    with np.errstate(all="ignore"):
        vals = np.nan_to_num(np.asarray(x, np.float64))
        scale = draw(st.sampled_from([1.0, 1e-3, 1e3]))
        x2 = (np.sign(vals) * (np.abs(vals) % 997.0 + draw(st.floats(0, 1))) * scale).astype(dt)
    if x.flags.writeable:
        x[...] = x2
    else:
        x = np.broadcast_to(x2, shape) if draw(st.booleans()) else x2
    nd = x.ndim
    axis = draw(st.one_of(
        st.none(),
        st.integers(-nd, nd - 1) if nd else st.none(),
        hnp.valid_tuple_axes(nd, min_size=0),  # includes negative axes
    ))
    return x, axis, draw(st.booleans())


@given(sum_cases())
def test_sum_matches_reference(case):
    x, axis, keepdims = case
    copies = snapshot([x])
    r = pk.sum(x, axis=axis, keepdims=keepdims)
    assert_sum_accurate(r, x, axis, keepdims)
    assert_unmodified([x], copies)


@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 4, 2), (2, 0, 3)])
def test_sum_empty_axes_are_zero(dtype, shape):
    x = np.empty(shape, dtype)
    for axis in [None, 0, -1, tuple(range(len(shape)))]:
        for keepdims in (False, True):
            assert_identical(pk.sum(x, axis=axis, keepdims=keepdims), np.sum(x, axis=axis, keepdims=keepdims))


@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
def test_sum_zero_d_and_scalars(dtype):
    x = np.array(2.5, dtype)
    assert_identical(pk.sum(x), np.sum(x))
    assert_identical(pk.sum(x, axis=()), np.sum(x, axis=()))
    assert_identical(pk.sum(x, keepdims=True), np.sum(x, keepdims=True))
    assert_identical(pk.sum(dtype(1.5)), np.sum(dtype(1.5)))
    assert_identical(pk.sum(1.5), np.sum(1.5))


def test_sum_nan_inf_propagate(rng):
    for dt in S.FLOAT_DTYPES:
        x = rng.standard_normal((6, 40)).astype(dt)
        x[1, 3] = np.nan
        x[2, 5] = np.inf
        x[3, 7], x[3, 8] = np.inf, -np.inf
        x[4, 0] = -np.inf
        for axis in (1, None):
            with np.errstate(invalid="ignore"):
                r, e = pk.sum(x, axis=axis), np.sum(x, axis=axis)
            np.testing.assert_array_equal(np.isnan(r), np.isnan(e))
            np.testing.assert_array_equal(np.isinf(r), np.isinf(e))
            np.testing.assert_array_equal(np.asarray(r)[np.isinf(r)], np.asarray(e)[np.isinf(e)])


def test_sum_axis_errors():
    x = np.ones((2, 3))
    for bad in (2, -3, (0, 2), (5,)):
        with pytest.raises(AxisError, match=r"axis -?\d is out of bounds for array of dimension 2"):
            pk.sum(x, axis=bad)
    with pytest.raises(AxisError, match="axis 1 is out of bounds for array of dimension 0"):
        pk.sum(np.float64(1.0), axis=1)
    for dup in ((0, 0), (1, -1)):
        with pytest.raises(ValueError, match=r"duplicate value in 'axis'"):
            pk.sum(x, axis=dup)
    with pytest.raises(TypeError, match="cannot be interpreted as an integer"):
        pk.sum(x, axis=1.5)


# np.sum's argument rules, each compared with NumPy itself: same exception type, or the same value.
_AXIS_CASES = [
    ((2, 3), True), ((2, 3), [0, 1]), ((2, 3), [0]), ((2, 3), (True,)), ((2, 3), np.int64(1)), ((2, 3), ()),
    ((5, 5, 1), (1, -2, -4)), ((5, 5, 1), (0, 0, 7)), ((), 0), ((), -1), ((), 1), ((), (0,)), ((), ()),
]


@pytest.mark.parametrize("shape,axis", _AXIS_CASES, ids=[f"{s}-{a!r}" for s, a in _AXIS_CASES])
def test_sum_axis_argument_like_numpy(shape, axis):
    x = np.arange(float(np.prod(shape))).reshape(shape)
    try:
        expected = np.sum(x, axis=axis)
    except Exception as e:  # noqa: BLE001 - the exception type NumPy raises is the expectation
        with pytest.raises(type(e)):
            pk.sum(x, axis=axis)
        return
    np.testing.assert_array_equal(pk.sum(x, axis=axis), expected)


@pytest.mark.parametrize("keepdims", [True, False, 1, 0, None, "yes", 1.0])
def test_sum_keepdims_argument_like_numpy(keepdims):
    x = np.ones((2, 3))
    try:
        expected = np.sum(x, axis=0, keepdims=keepdims)
    except Exception as e:  # noqa: BLE001
        with pytest.raises(type(e)):
            pk.sum(x, axis=0, keepdims=keepdims)
        return
    got = pk.sum(x, axis=0, keepdims=keepdims)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_float32_sum_beats_naive_accumulation():
    """A float32 accumulator would drift far from the exact sum here; pk must stay within rounding."""
    x = np.full(1 << 20, 0.1, np.float32)
    assert_sum_accurate(pk.sum(x), x, None)
    y = np.full((1 << 18, 3), 0.1, np.float32)  # rows accumulated into a (3,) result
    assert_sum_accurate(pk.sum(y, axis=0), y, 0)
    assert_sum_accurate(pk.sum(y.T, axis=1), y.T, 1)


# ---- sum_to -----------------------------------------------------------------------------------


@st.composite
def sum_to_cases(draw):
    """(x, target): x has a shape the target broadcasts to (extra leading dims, stretched 1s)."""
    target = tuple(draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)))
    lead = tuple(draw(st.lists(st.integers(0, 4), max_size=2)))
    body = tuple(draw(st.integers(0, 4)) if t == 1 else t for t in target)
    xshape = lead + body
    if S.nelem(xshape) > S.MAX_ELEMS:
        xshape, target = body, target
    dt = draw(S.dtypes)
    x = draw(S.arrays(dt, xshape, layouts=S.LAYOUTS))
    with np.errstate(all="ignore"):
        x = (np.nan_to_num(np.asarray(x, np.float64)) % 1000).astype(dt)
    if draw(st.booleans()):
        x = np.flip(x)
    return x, target


def _sum_to_axes(xshape, target):
    lead = len(xshape) - len(target)
    return tuple(range(lead)) + tuple(
        lead + i for i, t in enumerate(target) if t == 1 and xshape[lead + i] != 1)


@given(sum_to_cases())
def test_sum_to_matches_reference(case):
    x, target = case
    copies = snapshot([x])
    r = pk.sum_to(x, target)
    assert isinstance(r, np.ndarray) and r.shape == target and r.dtype == x.dtype
    axes = _sum_to_axes(x.shape, target)
    expected = np.sum(x, axis=axes, keepdims=True).reshape(target)
    np.testing.assert_array_equal(r.shape, expected.shape)
    # accuracy: the same contract as sum over those axes (keepdims form, reshaped)
    assert_sum_accurate(pk.sum(x, axis=axes, keepdims=True), x, axes, keepdims=True)
    np.testing.assert_array_equal(r, pk.sum(x, axis=axes, keepdims=True).reshape(target), strict=True)
    assert_unmodified([x], copies)


def test_sum_to_examples():
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    np.testing.assert_array_equal(pk.sum_to(x, (3,)), x.sum(0))
    np.testing.assert_array_equal(pk.sum_to(x, (4, 1)), x.sum(1, keepdims=True))
    np.testing.assert_array_equal(pk.sum_to(x, (1, 1)), x.sum(keepdims=True))
    np.testing.assert_array_equal(pk.sum_to(x, ()), x.sum())
    assert isinstance(pk.sum_to(x, ()), np.ndarray)  # always an array of exactly `shape`
    np.testing.assert_array_equal(pk.sum_to(x, (4, 3)), x)
    np.testing.assert_array_equal(pk.sum_to(x, [4, 3]), x)
    with pytest.raises(ValueError, match=r"cannot sum an array of shape \(4,3\) to shape \(2,3\)"):
        pk.sum_to(x, (2, 3))
    with pytest.raises(ValueError, match=r"to shape \(1,4,3\)"):
        pk.sum_to(x, (1, 4, 3))
    with pytest.raises(ValueError, match="negative dimensions"):
        pk.sum_to(x, (-1, 3))


# ---- add_backward -----------------------------------------------------------------------------


@given(S.shape_pairs, S.dtypes, st.data())
def test_add_backward_matches_sum_to(bs, dt, data):
    xs, ys = bs.input_shapes
    dout = data.draw(S.arrays(dt, bs.result_shape))
    with np.errstate(all="ignore"):
        dout = (np.nan_to_num(np.asarray(dout, np.float64)) % 100).astype(dt)
    dx, dy = pk.add_backward(dout, xs, ys)
    assert dx.shape == tuple(xs) and dy.shape == tuple(ys)
    assert dx.dtype == dt and dy.dtype == dt
    for g, s in ((dx, xs), (dy, ys)):
        axes = _sum_to_axes(dout.shape, tuple(s))
        ref = np.sum(dout.astype(np.float64), axis=axes, keepdims=True).reshape(s)
        tol = 1e-5 if dt == np.float32 else 1e-12
        np.testing.assert_allclose(g, ref, rtol=tol, atol=tol * 100 * max(1, dout.size))
        np.testing.assert_array_equal(g, pk.sum_to(dout, s), strict=True)


def test_add_backward_is_the_gradient_of_add(rng):
    """<dout, d(x+y)> = <dx, dx_dir> + <dy, dy_dir>: the adjoint identity of broadcasting."""
    x, y = rng.standard_normal((5, 1, 3)), rng.standard_normal((4, 1))
    dout = rng.standard_normal(np.broadcast_shapes(x.shape, y.shape))
    dx, dy = pk.add_backward(dout, x.shape, y.shape)
    u, v = rng.standard_normal(x.shape), rng.standard_normal(y.shape)
    lhs = np.sum(dout * (u + v))  # directional derivative of <dout, x + y> along (u, v)
    assert math.isclose(lhs, np.sum(dx * u) + np.sum(dy * v), rel_tol=1e-12)
    with pytest.raises(ValueError, match=r"dout has shape \(2,2\) but x_shape and y_shape broadcast to \(5,4,3\)"):
        pk.add_backward(np.ones((2, 2)), x.shape, y.shape)
    with pytest.raises(ValueError, match="operands could not be broadcast together"):
        pk.add_backward(np.ones((2, 2)), (2, 3), (4,))


# ---- layouts and thread-count determinism on big arrays ----------------------------------------

BIG_CASES = [
    # (shape, axis): > 2**17 elements, few outputs -> the chunked paths in reduce.cpp
    ((1 << 18,), None),
    ((300_000, 3), 0),  # loop order B, chunked
    ((3, 300_000), 1),  # loop order A, chunked
    ((300_000, 8), 0),
    ((1 << 17, 2, 2), (0, 2)),
    ((512, 600), 0),  # many outputs: parallel over tiles
    ((600, 512), 1),
    ((64, 64, 64), (0, 2)),
]


def _layouts(x):
    yield "c", x
    yield "transposed", np.ascontiguousarray(x.T).T
    yield "reversed", np.flip(np.flip(x).copy())
    yield "strided", np.repeat(x[..., None], 2, axis=-1)[..., 0]


@pytest.mark.parametrize(("shape", "axis"), BIG_CASES)
@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
def test_big_sums_thread_count_invariant(shape, axis, dtype, rng):
    x = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape)).astype(dtype)
    for name, v in _layouts(x):
        with pk.threads(1):
            r1 = pk.sum(v, axis=axis)
        with pk.threads(2):
            r2 = pk.sum(v, axis=axis)
        assert_identical(r2, r1)  # bitwise, for every layout
        if name == "c":
            assert_sum_accurate(r2, v, axis)
        else:
            np.testing.assert_allclose(r2, pk.sum(x, axis=axis), rtol=1e-5 if dtype == np.float32 else 1e-12,
                                       atol=1e-3, err_msg=name)


@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
def test_big_sum_to_thread_count_invariant(dtype, rng):
    dout = rng.standard_normal((200_000, 10)).astype(dtype)
    with pk.threads(1):
        a = pk.sum_to(dout, (10,))
        dx1, dy1 = pk.add_backward(dout, (200_000, 10), (1, 10))
    with pk.threads(2):
        b = pk.sum_to(dout, (10,))
        dx2, dy2 = pk.add_backward(dout, (200_000, 10), (1, 10))
    assert_identical(a, b)
    assert_identical(dy1, dy2)
    assert_identical(dx1, dout)
    assert_identical(dx2, dout)
    np.testing.assert_array_equal(dy2.reshape(10), b)
    assert_sum_accurate(pk.sum(dout, axis=0), dout, 0)


@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
def test_sums_of_byteswapped_and_unaligned_inputs(dtype, rng):
    x = rng.standard_normal((30, 7)).astype(dtype)
    swapped = x.astype(x.dtype.newbyteorder())
    buf = np.zeros(x.nbytes + 1, np.uint8)
    unaligned = buf[1:].view(dtype).reshape(x.shape)
    unaligned[...] = x
    for v in (swapped, unaligned):
        for axis in (None, 0, 1):
            assert_identical(pk.sum(v, axis=axis), pk.sum(x, axis=axis))
        assert_identical(pk.sum_to(v, (7,)), pk.sum_to(x, (7,)))
        dx, dy = pk.add_backward(v, (30, 1), (7,))
        assert_identical(dy, pk.sum_to(x, (7,)))
    assert_sum_accurate(pk.sum(swapped, axis=0), x, 0)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_sum_of_single_negative_zero_is_positive_zero_like_numpy(dt):
    x = np.array([-0.0], dt)
    for got, ref in ((pk.sum(x), np.sum(x)), (pk.sum(x.reshape(1, 1), axis=0), np.sum(x.reshape(1, 1), axis=0))):
        np.testing.assert_array_equal(np.signbit(got), np.signbit(ref))
