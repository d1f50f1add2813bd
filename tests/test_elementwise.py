"""Differential tests of the element-wise kernels against NumPy: bit-identical results.

Every op is a row of pykernels.reference.OPS; the tests below are parametrised over that table. Exact ops
(add, subtract, multiply, maximum, relu, relu_backward) must match NumPy bit for bit, including
NaN positions, infinities and the sign of zero, for every broadcast pair, memory layout, dtype mix
and instruction set.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pykernels as pk
import strategies as S
from pykernels import _core
from assertions import assert_identical, assert_unmodified, snapshot
from pykernels.reference import BINARY_OPS, OPS

# ---- helpers ----------------------------------------------------------------------------------


def _draw_args(data, op, kind="finite", layouts=S.LAYOUTS, allow_scalars=True):
    if op.nargs == 1:
        shapes = [data.draw(S.shapes, label="shape")]
    else:
        shapes = list(data.draw(S.shape_pairs, label="shapes").input_shapes)
    dts = [data.draw(S.dtypes, label=f"dtype{i}") for i in range(op.nargs)]
    args = [
        data.draw(S.operands(tuple(s), dt, kind=kind, layouts=layouts, allow_scalars=allow_scalars),
                  label=f"arg{i}")
        for i, (s, dt) in enumerate(zip(shapes, dts))
    ]
    # Only Python ints/bools: NumPy computes in int64, pykernels (float-only) in float64.
    assume(not all(isinstance(a, int) for a in args))
    return args


def _check_call(op, args):
    copies = snapshot(args)
    expected = op.reference(*args)
    result = op.pk_fn(*args)
    assert_identical(result, expected)
    assert_unmodified(args, copies)
    return result


# ---- generated differential tests -------------------------------------------------------------


@pytest.mark.parametrize("op", OPS, ids=str)
@given(data=st.data())
def test_matches_numpy(op, isa, data):
    """Generated broadcast pairs x layouts x dtype mixes x scalars, finite values, every ISA."""
    _check_call(op, _draw_args(data, op))


@pytest.mark.parametrize("op", OPS, ids=str)
@given(data=st.data())
def test_special_values_match_numpy(op, data):
    """NaN, +-inf, -0.0, subnormals and the extremes propagate exactly as in NumPy."""
    _check_call(op, _draw_args(data, op, kind="special"))


@pytest.mark.parametrize("op", BINARY_OPS, ids=str)
@given(data=st.data())
def test_basic_index_views(op, data):
    """One operand is base[idx] with idx from hnp.basic_indices; the other broadcasts to it."""
    dt = data.draw(S.dtypes)
    x = data.draw(S.basic_index_views(dt))
    yshape = data.draw(hnp.broadcastable_shapes(x.shape, min_side=0, max_dims=x.ndim + 1).filter(
        lambda s: S.nelem(np.broadcast_shapes(s, x.shape)) <= S.MAX_ELEMS))
    y = data.draw(S.arrays(data.draw(S.dtypes), yshape))
    args = [x, y] if data.draw(st.booleans()) else [y, x]
    _check_call(op, args)


@pytest.mark.parametrize("op", OPS, ids=str)
@given(data=st.data())
def test_streaming_stores_match_numpy(op, isa, data):
    """The non-temporal-store loops (outputs of 16 MiB and more) forced onto generated inputs."""
    _core._set_stream_min_bytes(0)
    _check_call(op, _draw_args(data, op))


def test_stream_threshold_setter_refuses_negative():
    with pytest.raises(ValueError, match="bytes must be >= 0"):
        _core._set_stream_min_bytes(-1)
    _core._set_stream_min_bytes(12345)
    assert _core._stream_min_bytes() == 12345


@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
@pytest.mark.parametrize("shape, bshape", [
    ((3000, 100), (100,)),        # rows shorter than a block (the bias add), lines across row ends
    ((7, 5000), (5000,)),         # rows longer than a block
    ((40, 3, 129), (3, 1)),       # 3-d, a broadcast column
    ((600, 33), (600, 1)),        # a column broadcast along short rows
    ((20000,), ()),               # 1-d against a scalar
])
@pytest.mark.parametrize("offset", [0, 1, 3])  # out (and a) start off a 64-byte boundary
@pytest.mark.parametrize("threads", [1, 2])
def test_streaming_stores_across_rows_and_blocks(dtype, shape, bshape, offset, threads, isa, rng):
    """Streaming blocks cross row ends and thread ranges; heads and tails off line boundaries."""
    _core._set_stream_min_bytes(0)
    pk.set_num_threads(threads)
    n = int(np.prod(shape))
    a = rng.standard_normal(n + offset).astype(dtype)[offset:].reshape(shape)
    b = rng.standard_normal(bshape).astype(dtype)
    out = np.full(n + offset, np.nan, dtype)[offset:].reshape(shape)
    for name in ("add", "multiply", "maximum", "relu_backward"):
        ref = np.where(b > 0, a, 0).astype(dtype) if name == "relu_backward" else getattr(np, name)(a, b)
        res = getattr(pk, name)(a, b, out=out)
        assert res is out
        assert_identical(out, ref)
        assert_identical(getattr(pk, name)(a, b), ref)


# ---- fixed cases: NaN semantics, OpInfo samples -----------------------------------------------

SPECIALS = np.array([np.nan, -np.inf, np.inf, -0.0, 0.0, -1.5, 2.5, 1e-45], dtype=np.float64)


@pytest.mark.parametrize("op", OPS, ids=str)
@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
def test_special_value_table(op, dtype, isa):
    """All pairs of [nan, -inf, inf, -0.0, 0.0, ...] (incl. relu(nan) = nan, relu(-0.0))."""
    v = SPECIALS.astype(dtype)
    if op.nargs == 1:
        args = [v]
    else:
        a, b = np.meshgrid(v, v, indexing="ij")
        args = [a.copy(), b.copy()]
    _check_call(op, args)


def test_relu_nan_and_signed_zero_pinned():
    """The decision (REFERENCES C1): relu = np.maximum(x, 0.0): NaN stays NaN, relu(-0.0) = +0.0."""
    r = pk.relu(np.array([np.nan, -0.0, 0.0, -np.inf, np.inf], np.float32))
    assert np.isnan(r[0])
    assert not np.signbit(r[1]) and not np.signbit(r[2])
    np.testing.assert_array_equal(r[3:], [0.0, np.inf])
    g = pk.relu_backward(np.array([5.0, np.nan, 7.0, 3.0]), np.array([np.nan, 1.0, 0.0, -0.0]))
    np.testing.assert_array_equal(g, [0.0, np.nan, 0.0, 0.0])  # relu'(0) = 0, NaN mask -> 0


# PyTorch OpInfo's elementwise binary sample shapes (REFERENCES.md C2).
OPINFO_SHAPES = [(0,), (1, 0, 3), (), (20,), (812,), (1029, 917)]
OPINFO_PAIRS = [
    ((1,), ()), ((2,), ()), ((1,), (2,)), ((2, 1), (2,)), ((1, 2), (2,)), ((3, 2), (2,)),
    ((1, 3, 2), (2,)), ((1, 3, 2), (3, 2)), ((3, 1, 2), (3, 2)), ((2, 3, 2), ()), ((3, 1, 2), (1, 3, 2)),
]
# (shape, element strides, storage offset) read from a buffer of 500 elements: overlapping and
# zero-stride inputs.
OPINFO_AS_STRIDED = [
    ((5, 6, 2), (1, 1, 7), 2), ((5, 5, 4), (1, 1, 7), 2), ((5, 5, 2), (4, 5, 7), 3),
    ((5, 5, 2), (5, 5, 7), 3), ((5, 5, 2), (5, 5, 5), 3), ((9, 5, 2), (0, 1, 7), 3),
]


def _noncontiguous(a: np.ndarray) -> np.ndarray:
    """The same values in a non-contiguous layout (every other element of a doubled buffer)."""
    buf = np.empty(a.shape + (2,), a.dtype)
    buf[..., 0] = a
    buf[..., 1] = np.nan
    return buf[..., 0]


@pytest.mark.parametrize("op", BINARY_OPS, ids=str)
@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
@pytest.mark.parametrize("noncontig", [False, True])
def test_opinfo_samples(op, dtype, noncontig, rng):
    cases = [(s, s) for s in OPINFO_SHAPES] + OPINFO_PAIRS + [(b, a) for a, b in OPINFO_PAIRS]
    for sa, sb in cases:
        a = rng.standard_normal(sa).astype(dtype)
        b = rng.standard_normal(sb).astype(dtype)
        if noncontig:
            a, b = _noncontiguous(a), _noncontiguous(b)
        _check_call(op, [a, b])


@pytest.mark.parametrize("op", OPS, ids=str)
@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
def test_opinfo_as_strided(op, dtype, rng):
    buf = rng.standard_normal(500).astype(dtype)
    isz = buf.itemsize
    views = [
        np.lib.stride_tricks.as_strided(buf[off:], shape, [s * isz for s in st_], writeable=False)
        for shape, st_, off in OPINFO_AS_STRIDED
    ]
    for v in views:
        if op.nargs == 1:
            _check_call(op, [v])
        else:
            _check_call(op, [v, np.flip(v)])
            _check_call(op, [v, v.copy()])
            _check_call(op, [v[0], v])


# ---- SIMD tails: sizes 1 .. 2W+1 around the vector widths, every ISA --------------------------

# W = 16 float32 lanes (AVX-512); sizes up to 2W+1 and around a few multiples of 4W (unrolling).
TAIL_SIZES = list(range(1, 34)) + [63, 64, 65, 127, 128, 129, 255, 257, 1023, 1025]
TAIL_VARIANTS = ["contig", "scalar_a", "scalar_b", "inplace_a", "inplace_b", "strided", "reversed",
                 "unaligned"]


@pytest.mark.parametrize("op", OPS, ids=str)
@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
@pytest.mark.parametrize("variant", TAIL_VARIANTS)
def test_vector_tails(op, dtype, variant, isa, rng):
    for i, n in enumerate(TAIL_SIZES):
        # sprinkle special values so each lane position sees NaN/inf/-0.0 at some size; one NaN
        # flavor (+, -, payload) per size, so its sign and payload must come through exactly
        specials = S.special_values(dtype, S.NAN_FLAVORS[i % len(S.NAN_FLAVORS)])
        vals = rng.standard_normal((2, 2 * n + 1)).astype(dtype)
        mask = rng.random(vals.shape) < 0.15
        vals[mask] = rng.choice(specials, int(mask.sum()))
        a, b = vals[0, :n].copy(), vals[1, :n].copy()
        if op.nargs == 1:
            b = None
        out = None
        if variant == "scalar_a" and b is not None:
            a = vals[0, :1].copy().reshape(())
        elif variant == "scalar_b":
            if b is None:
                continue
            b = vals[1, :1].copy().reshape(())
        elif variant == "strided":
            a = vals[0, : 2 * n : 2]
            b = None if b is None else vals[1, 1 : 2 * n : 2]
        elif variant == "reversed":
            a = vals[0, n - 1 :: -1] if n > 0 else vals[0, :0]
            b = None if b is None else vals[1, :n][::-1]
        elif variant == "unaligned":
            a = vals[0, 1 : n + 1]
            b = None if b is None else vals[1, 1 : n + 1]
        args = [a] if b is None else [a, b]
        expected = op.reference(*args)
        if variant == "inplace_a":
            out = args[0]
        elif variant == "inplace_b":
            if b is None:
                continue
            out = args[1]
        elif variant == "unaligned":
            out = np.full(n + 1, np.nan, dtype)[1:]
        if out is None:
            assert_identical(op.pk_fn(*args), expected)
        else:
            r = op.pk_fn(*args, out=out)
            assert r is out
            assert_identical(out, expected)


# ---- dtype promotion, scalars and return types (NumPy 2 / NEP 50) -------------------------------

f32, f64 = np.float32, np.float64
PROMOTION_CASES = [
    # (x1, x2, expected result type, expected dtype)
    (np.ones(3, f32), 2.5, np.ndarray, f32),  # Python float is weak
    (np.ones(3, f32), 3, np.ndarray, f32),  # Python int is weak
    (np.ones(3, f32), True, np.ndarray, f32),
    (np.ones(3, f32), f64(2.5), np.ndarray, f64),  # NumPy float64 scalar is strong
    (np.ones(3, f32), np.array(2.5), np.ndarray, f64),  # 0-d float64 array is strong
    (np.ones(3, f32), np.ones(3, f64), np.ndarray, f64),
    (np.ones(3, f64), f32(2.5), np.ndarray, f64),
    (f32(1.5), 2.5, f32, f32),  # 0-d results are NumPy scalars
    (f32(1.5), f64(2.5), f64, f64),
    (2.5, 1.5, f64, f64),
    (np.array(1.5, f32), np.array(2.5, f32), f32, f32),
    (np.array(1.5, f32), 1e-3, f32, f32),
    (np.ones((1, 1), f32), 2.0, np.ndarray, f32),
]


@pytest.mark.parametrize("op", BINARY_OPS, ids=str)
@pytest.mark.parametrize(("x1", "x2", "rtype", "rdtype"), PROMOTION_CASES)
def test_promotion_and_return_types(op, x1, x2, rtype, rdtype):
    for a, b in ((x1, x2), (x2, x1)):
        r = _check_call(op, [a, b])
        assert type(r) is rtype
        assert r.dtype == rdtype


def test_relu_return_types():
    assert type(pk.relu(f32(-2))) is f32
    assert type(pk.relu(np.array(-2.0))) is f64
    assert type(pk.relu(-2.0)) is f64
    assert isinstance(pk.relu(np.ones((1,), f32)), np.ndarray)


# ---- out= --------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", OPS, ids=str)
@given(data=st.data())
def test_out_written_and_returned(op, data):
    """out= (any writable layout, NaN garbage inside) is overwritten and returned, never a scalar."""
    args = _draw_args(data, op)
    expected = np.asarray(op.reference(*args))
    out = data.draw(S.arrays(expected.dtype.type, expected.shape, layouts=S.WRITABLE_LAYOUTS), label="out")
    out[...] = np.nan  # garbage: must never leak (beta = 0)
    copies = snapshot(args)
    r = op.pk_fn(*args, out=out)
    assert r is out
    assert_identical(out, expected)
    assert_unmodified(args, copies)


@st.composite
def _out_shapes(draw, shape):
    """Shapes that `shape` broadcasts to (extra leading dims, size-1 dims stretched)."""
    lead = draw(st.lists(st.integers(0, 3), max_size=2))
    body = [draw(st.integers(0, 3)) if d == 1 else d for d in shape]
    return tuple(lead) + tuple(body)


@pytest.mark.parametrize("op", OPS, ids=str)
@given(data=st.data())
def test_out_inputs_broadcast_to_out(op, data):
    """NumPy lets the inputs broadcast up to out's shape: add(ones(3), 1, out=empty((2, 3)))."""
    args = _draw_args(data, op)
    rshape = np.asarray(op.reference(*args)).shape
    oshape = data.draw(_out_shapes(rshape).filter(lambda s: S.nelem(s) <= 4 * S.MAX_ELEMS))
    dt = np.asarray(op.reference(*args)).dtype
    out = np.full(oshape, np.nan, dt)
    expected = np.empty(oshape, dt)
    with np.errstate(all="ignore"):
        expected[...] = op.reference(*args)
    assert op.pk_fn(*args, out=out) is out
    assert_identical(out, expected)


def test_out_broadcast_example():
    out = np.empty((2, 3))
    assert pk.add(np.ones(3), 1, out=out) is out
    np.testing.assert_array_equal(out, np.full((2, 3), 2.0))
    out0 = np.empty(())
    assert pk.add(1.0, 2.0, out=out0) is out0  # 0-d out: the array itself comes back
    assert out0[()] == 3.0


@pytest.mark.parametrize("op", OPS, ids=str)
@given(data=st.data())
def test_out_is_an_input(op, data):
    """In place: out is exactly x1 (or x2), in any writable layout."""
    dt = data.draw(S.dtypes)
    shape = tuple(data.draw(S.shapes))
    x = data.draw(S.arrays(dt, shape, layouts=S.WRITABLE_LAYOUTS))
    if op.nargs == 1:
        args, which = [x], 0
    else:
        yshape = data.draw(hnp.broadcastable_shapes(shape, min_side=0).filter(
            lambda s: np.broadcast_shapes(s, shape) == shape))
        y = data.draw(S.operands(tuple(yshape), dt))
        which = data.draw(st.integers(0, 1))
        args = [x, y] if which == 0 else [y, x]
    before = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    expected = op.reference(*before)
    r = op.pk_fn(*args, out=args[which])
    assert r is args[which]
    assert_identical(np.asarray(r), np.asarray(expected).astype(dt))


# ---- memory overlap (NumPy test_mem_overlap.py::test_binary_ufunc_1d_manual) ----------------------


def _overlap_indices(n=1000, k=10):
    idx = []
    for p in (1, 2):
        idx += [np.index_exp[: p * n : p], np.index_exp[k : k + p * n : p],
                np.index_exp[p * n - 1 :: -p], np.index_exp[k + p * n - 1 : k - 1 : -p]]
    return idx


@pytest.mark.parametrize("op", [o for o in BINARY_OPS if o.name in ("add", "subtract", "maximum",
                                                                      "relu_backward")],
                         ids=lambda o: o.name)
@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
def test_mem_overlap_exhaustive(op, dtype):
    """All 8^3 (x, y, out) combinations of forward/reversed, step 1/2 views of one buffer, plus the
    scalar cases. Oracle: the whole buffer after the call equals the buffer with NumPy's result
    (computed into a fresh array) written into out's positions -- nothing else may change."""
    n = 1000
    indices = _overlap_indices(n)
    for xi, yi, zi in itertools.product(indices, indices, indices):
        for xs, ys in [(None, None), ("first", None), ("last", None), ("first0d", None),
                       ("last0d", None), (None, "first"), (None, "last"), (None, "first0d"),
                       (None, "last0d")]:
            v = (np.arange(6 * n) - 2500).astype(dtype)
            x, y, z = v[xi], v[yi], v[zi]
            x = _scalar_case(x, xs)
            y = _scalar_case(y, ys)
            expected_v = v.copy()
            expected_v[zi] = op.reference(x.copy(), y.copy())
            assert op.pk_fn(x, y, out=z) is z
            assert_identical(v, expected_v)


def _scalar_case(a, how):
    if how is None:
        return a
    if how == "first":
        return a[:1]
    if how == "last":
        return a[-1:]
    if how == "first0d":
        return a[:1].reshape([])
    return a[-1:].reshape([])


@pytest.mark.parametrize("op", OPS, ids=str)
def test_partial_overlap_2d(op, rng):
    """2-d partial overlaps: out shifted by one row / one column / transposed against an input."""
    for dtype in S.FLOAT_DTYPES:
        base = rng.standard_normal((9, 9)).astype(dtype)
        cases = [
            (lambda v: v[:-1, :-1], lambda v: v[1:, 1:]),
            (lambda v: v[1:, :-1], lambda v: v[:-1, 1:]),
            (lambda v: v[:8, :8], lambda v: v[:8, :8].T),
            (lambda v: v[::-1, ::-1][:8, :8], lambda v: v[:8, :8]),
        ]
        for fin, fout in cases:
            v = base.copy()
            x, out = fin(v), fout(v)
            args = [x] if op.nargs == 1 else [x, x[::-1]]
            expected = op.reference(*[a.copy() for a in args])
            assert op.pk_fn(*args, out=out) is out
            assert_identical(out, np.asarray(expected))


# ---- many dimensions ----------------------------------------------------------------------------


@pytest.mark.parametrize("ndim", [17, 24, 32])
@pytest.mark.parametrize("op", OPS, ids=str)
def test_many_dims(op, ndim, rng):
    shape = [1] * ndim
    for i in rng.choice(ndim, 9, replace=False):
        shape[i] = 2
    x = rng.standard_normal(shape)
    y = rng.standard_normal([1 if rng.random() < 0.5 else s for s in shape][3:])
    args = [x] if op.nargs == 1 else [x, y]
    _check_call(op, args)
    _check_call(op, [a.transpose(rng.permutation(a.ndim)) for a in args] if op.nargs == 1 else
                [x.transpose(rng.permutation(ndim)), y])


@pytest.mark.parametrize("op", OPS, ids=str)
def test_33_dims_raise(op):
    x = np.ones((1,) * 33)
    args = [x] if op.nargs == 1 else [x, 1.0]
    with pytest.raises(ValueError, match=r"at most 32 dimensions, got 33"):
        op.pk_fn(*args)
    if op.nargs == 2:
        with pytest.raises(ValueError, match=r"at most 32 dimensions, got 33"):
            op.pk_fn(np.ones(2), np.ones((1,) * 33))


# ---- unusual memory: byte-swapped, unaligned, packed struct fields ----------------------------------




@pytest.mark.parametrize("op", OPS, ids=str)
@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
@pytest.mark.parametrize("how", list(S.ODD_MEMORY))
def test_odd_memory_inputs_and_out(op, dtype, how, rng):
    make = S.ODD_MEMORY[how]
    for shape in [(0,), (7,), (3, 5), (40, 33)]:
        a = rng.standard_normal(shape).astype(dtype)
        b = rng.standard_normal(shape[-1:]).astype(dtype)
        args = [a, b][: op.nargs]
        expected = op.reference(*args)
        odd = [make(x) for x in args]
        _check_call(op, odd)  # inputs
        _check_call(op, [odd[0], *args[1:]])
        out = make(np.full(shape, np.nan, dtype))  # out
        assert op.pk_fn(*args, out=out) is out
        assert_identical(np.asarray(out, dtype=dtype), expected)
        if how != "byteswapped":  # in place on odd memory
            x = make(a)
            assert op.pk_fn(x, *args[1:], out=x) is x
            assert_identical(np.asarray(x, dtype=dtype), expected)


def test_input_broadcast_into_its_own_out():
    """out is the 2-d array whose first row is the (broadcast) input: NumPy's result, via a copy."""
    for dtype in S.FLOAT_DTYPES:
        v = np.arange(6, dtype=dtype).reshape(2, 3)
        expected = np.add(v[0].copy(), 1.0) + np.zeros((2, 3), dtype)
        assert pk.add(v[0], 1.0, out=v) is v
        assert_identical(v, expected)
        v = np.arange(6, dtype=dtype).reshape(2, 3)
        assert pk.relu_backward(v, v[:, :1], out=v) is v


# ---- unary ops: negative, absolute --------------------------------------------------------------

UNARY_OPS = [op for op in OPS if op.nargs == 1 and op.name != "relu"]


def test_abs_is_absolute():
    """As in NumPy, pk.abs is pk.absolute (one function, two names)."""
    assert pk.abs is pk.absolute
    assert pk.absolute.__name__ == "absolute"


@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
def test_unary_sign_bits_pinned(dtype, isa):
    """negative flips the sign bit of every value, absolute clears it: -0.0, +-NaN, +-inf."""
    x = np.array([0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, -1.5], dtype)
    sign = np.signbit
    np.testing.assert_array_equal(sign(pk.negative(x)), ~sign(x))
    assert not sign(pk.absolute(x)).any()
    for op in UNARY_OPS:
        assert_identical(op.pk_fn(x), op.reference(x))


@pytest.mark.parametrize("op", UNARY_OPS, ids=str)
def test_unary_return_types_and_scalars(op):
    """0-d inputs give NumPy scalars of the input's dtype; a Python float gives float64; Python ints
    and bools (NumPy keeps them integer) are refused."""
    for x in (f32(-2.5), np.array(-2.5, f32), f64(-0.0), np.array(-2.5), -2.5):
        assert_identical(op.pk_fn(x), op.reference(x))
    assert type(op.pk_fn(f32(-2))) is f32
    for bad in (3, True):
        with pytest.raises(TypeError, match="Python int or bool"):
            op.pk_fn(bad)
    with pytest.raises(TypeError, match="int64"):
        op.pk_fn(np.arange(3))


@pytest.mark.parametrize("op", UNARY_OPS, ids=str)
def test_unary_out_rules(op, rng):
    """out= as for NumPy's ufuncs: same_kind casting into another float dtype, broadcasting the input
    up to out's shape, wrong shape, read-only and integer outs refused."""
    x = rng.standard_normal((3, 4)).astype(f32)
    out64 = np.full((3, 4), np.nan)
    assert op.pk_fn(x, out=out64) is out64
    assert_identical(out64, op.reference(x).astype(f64))
    big = np.full((2, 3, 4), np.nan, f32)
    assert op.pk_fn(x, out=big) is big
    assert_identical(big, np.broadcast_to(op.reference(x), big.shape).copy())
    assert op.pk_fn(x, out=(big,)) is big  # a 1-tuple, as ufuncs take it
    with pytest.raises(ValueError, match="non-broadcastable output"):
        op.pk_fn(x, out=np.empty((4, 3), f32))
    ro = np.zeros((3, 4), f32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        op.pk_fn(x, out=ro)
    with pytest.raises(TypeError):
        op.pk_fn(x, out=np.empty((3, 4), np.int32))
    empty = np.empty((0, 4), f32)
    assert_identical(op.pk_fn(empty), op.reference(empty))
