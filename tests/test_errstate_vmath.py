"""np.errstate and NumPy's FP warnings hold for the vector-math kernels called directly: pk.exp, pk.log
and pk.tanh raise the FloatingPointError / RuntimeWarning texts np.exp, np.log and np.tanh raise for
the same input, and pk.sigmoid never warns (it has no NumPy ufunc; scipy.special.expit never warns),
on every ISA the CPU has, for float32 and float64, in every layout and with 2 threads.

Their branch-free vector code raises flags NumPy's loops do not (invalid from a compare on a NaN,
underflow in a polynomial step) and misses some NumPy raises (its log(0) divides nothing by zero);
the loops replace them by the flags NumPy raises for the call's inputs (ops.hpp fp_ranges32/64,
cpu/elementwise_fp_loops.inc). The reference is the NumPy the tests run against, on a contiguous copy.

One deliberate difference: np.exp misses "underflow" for a few x whose tiny result its loop's final
scaling happens to give exactly (float32 x in (-103.97, -87.34], float64 x in (-745.2, -708.4));
pykernels reports it for every x whose exact result is below the smallest normal number (that result
is never exact), so the reference adds it there (``_expected``, ``test_exp_underflow_band``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pykernels as pk
from pykernels import _core

FUNCS = ("exp", "log", "tanh")
DTYPES = (np.float32, np.float64)
KINDS = (("divide", "divide by zero"), ("over", "overflow"), ("under", "underflow"), ("invalid", "invalid value"))
BIG = 1 << 18  # several chunks per thread with 2 threads (elementwise.cpp's grain)
UINT = {np.float32: np.uint32, np.float64: np.uint64}

# The first x whose exp overflows, and the largest x < 0 whose exp is below the smallest normal number.
EXP_OVER = {np.float32: np.float32(88.72283935546875),
            np.float64: np.float64(float.fromhex("0x1.62e42fefa39f0p+9"))}
EXP_TINY = {np.float32: np.float32(-87.3365478515625),
            np.float64: np.float64(float.fromhex("-0x1.6232bdd7abcd3p+9"))}


def _bits(dtype, *patterns):
    return np.array(patterns, UINT[dtype]).view(dtype)


def _nans(dtype):
    """Quiet NaNs of both signs and with a payload, signalling NaNs of both signs."""
    if dtype == np.float32:
        return _bits(dtype, 0x7FC00000, 0xFFC00000, 0x7FC01234, 0x7FA00000, 0xFFA00001, 0x7F800001)
    return _bits(dtype, 0x7FF8000000000000, 0xFFF8000000000000, 0x7FF8000000001234, 0x7FF4000000000000,
                 0xFFF4000000000001, 0x7FF0000000000001)


def edge_values(dtype) -> np.ndarray:
    """+-0, +-inf, NaNs, the extremes, subnormals, tiny normals, exp's overflow and underflow
    thresholds with their neighbours, negatives, ordinary values."""
    f = np.finfo(dtype)
    sub = float(f.smallest_subnormal)
    thresholds = []
    for t in (EXP_OVER[dtype], EXP_TINY[dtype], dtype(-103.97208404541015625), dtype(-745.2), dtype(709.79)):
        thresholds += [t, np.nextafter(t, dtype(np.inf)), np.nextafter(t, dtype(-np.inf))]
    plain = [0.0, -0.0, np.inf, -np.inf, 1.0, -1.0, 0.5, -2.0, 3.0, -50.0, 20.0, float(f.max), -float(f.max),
             float(f.tiny), -float(f.tiny), sub, -sub, float(f.tiny) / 2, -float(f.tiny) / 2, 1e-20, -1e-20,
             1e-38, -1e-38, 1e-300, -1e-300, -90.0, -100.0, -104.0, -110.0, -200.0, -708.5, -740.0, -800.0,
             88.0, 89.0, 100.0, 700.0, 710.0]
    vals = [np.array(plain, dtype), np.array(thresholds, dtype), _nans(dtype)]
    if dtype == np.float32:  # subnormals on both sides of np.exp's |x| * log2(e) < 2^-126 boundary
        vals.append(_bits(dtype, 0x0058B90B, 0x0058B90C, 0x8058B90B, 0x8058B90C))
    return np.concatenate(vals)


def raised(fn, *args, **kwargs) -> set[str]:
    """The FloatingPointError texts fn raises under np.errstate(<kind>="raise"), one kind at a time."""
    out = set()
    for key, _ in KINDS:
        with np.errstate(all="ignore", **{key: "raise"}):
            try:
                fn(*args, **kwargs)
            except FloatingPointError as e:
                out.add(str(e))
    return out


def _expected(fn: str, x) -> set[str]:
    """What pk.<fn>(x) must raise: np.<fn>'s texts on a contiguous copy, plus exp's underflow where an
    exact result is tiny (the module docstring)."""
    x = np.ascontiguousarray(x)
    want = raised(getattr(np, fn), x)
    if fn == "exp" and np.any(np.isfinite(x) & (np.nan_to_num(x, nan=0.0) <= EXP_TINY[x.dtype.type])):
        want.add("underflow encountered in exp")
    return want


def _first(texts: set[str]) -> str | None:
    """The text np.errstate(all="raise") raises: NumPy checks divide, over, under, invalid in turn."""
    for _, word in KINDS:
        for t in texts:
            if t.startswith(word):
                return t
    return None


def _ones_with(dtype, n, pos, v):
    x = np.ones(n, dtype)  # 1 raises no flag in any of the functions
    x[pos] = v
    return x


def _layout_calls(fn, dtype, v):
    """(name, callable running pk.<fn> on an array holding v among ones): every loop of the kernels."""
    f = getattr(pk, fn)
    n = 37  # not a multiple of 16: the AVX-512 loops' masked tail
    x = _ones_with(dtype, n, 5, v)
    big = _ones_with(dtype, 3 * n, 16, v)
    m = np.ones((9, 10), dtype)
    m[4, 3] = v

    def in_place():
        y = x.copy()
        return f(y, out=y)

    def in_place_strided():
        b = big.copy()
        return f(b[1::3], out=b[1::3])

    def rows_in_place():
        c = m.copy()
        return f(c[:, :7], out=c[:, :7])

    def streaming(a):  # the non-temporal-store loops, forced on a small array
        old = _core._stream_min_bytes()
        _core._set_stream_min_bytes(0)
        try:
            return f(a, out=np.empty(a.shape, dtype))
        finally:
            _core._set_stream_min_bytes(old)

    return [
        ("contiguous", lambda: f(x)),
        ("out", lambda: f(x, out=np.empty_like(x))),
        ("strided", lambda: f(big[1::3])),
        ("reversed", lambda: f(x[::-1])),
        ("in_place", in_place),
        ("in_place_strided", in_place_strided),
        ("rows", lambda: f(m[:, :7])),  # short non-contiguous rows: the 2-d loops
        ("rows_in_place", rows_in_place),
        ("transposed", lambda: f(m.T)),
        ("broadcast", lambda: f(np.broadcast_to(np.asarray(v, dtype), (n,)), out=np.empty(n, dtype))),
        ("streaming", lambda: streaming(x)),
        ("streaming_rows", lambda: streaming(m[:, :7])),
        ("scalar", lambda: f(np.asarray(v, dtype)[()])),
    ]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fn", FUNCS)
def test_edge_values_every_layout(fn, dtype, isa):
    """Each edge value alone among ones: NumPy's texts in every layout (contiguous, out=, strided,
    reversed, in place, 2-d rows, broadcast input, streaming stores, NumPy scalar)."""
    for v in edge_values(dtype):
        want = _expected(fn, np.asarray(v, dtype))
        for name, call in _layout_calls(fn, dtype, v):
            assert raised(call) == want, (isa, fn, np.dtype(dtype).name, hex(int(np.asarray(v).view(UINT[dtype]))),
                                          name)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fn", FUNCS)
def test_numpy_reports_what_the_docstrings_say(fn, dtype):
    """The NumPy behaviour the kernels reproduce (ops.hpp), pinned, so a NumPy that changes it shows
    here first: exp over/underflow thresholds, float32 exp's underflow for a subnormal x, log's divide
    by zero for +-0 and invalid for x < 0, -inf and a signalling NaN, nothing for a quiet NaN, tanh
    nothing at all."""
    over, under, div, inv = (f"{w} encountered in {fn}" for w in ("overflow", "underflow", "divide by zero",
                                                                   "invalid value"))
    qnan, snan = _nans(dtype)[0], _nans(dtype)[3]
    sub = np.finfo(dtype).smallest_subnormal
    cases = {
        "exp": [(EXP_OVER[dtype], {over}), (np.nextafter(EXP_OVER[dtype], dtype(0)), set()), (np.inf, set()),
                (-np.inf, set()), (qnan, set()), (-800.0, {under}), (np.nextafter(EXP_TINY[dtype], dtype(0)), set()),
                (sub, {under} if dtype == np.float32 else set()), (snan, {inv} if dtype == np.float32 else set())],
        "log": [(0.0, {div}), (-0.0, {div}), (-1.0, {inv}), (-np.inf, {inv}), (-sub, {inv}), (qnan, set()),
                (-qnan, set()), (snan, {inv}), (sub, set()), (np.inf, set())],
        "tanh": [(v, set()) for v in edge_values(dtype)],
    }[fn]
    for v, want in cases:
        assert raised(getattr(np, fn), np.array([v], dtype)) == want, (fn, v)


# ---- generated arrays ----------------------------------------------------------------------------
def _arrays(dtype):
    """Arrays of 0..80 elements drawn from the edge values, values around exp's thresholds and
    underflow band, and any float of the dtype (bit patterns, so signalling NaNs survive)."""
    w = np.dtype(dtype).itemsize * 8
    edge_bits = [int(b) for b in edge_values(dtype).view(UINT[dtype])]

    def bits_of(v):
        return int(np.asarray(v, dtype).view(UINT[dtype]))

    element = st.one_of(
        st.sampled_from(edge_bits),
        st.floats(width=w).map(bits_of),
        st.floats(min_value=-115.0 if dtype == np.float32 else -760.0, max_value=-80.0, width=w).map(bits_of),
        st.floats(min_value=80.0 if dtype == np.float32 else 700.0, max_value=95.0 if dtype == np.float32 else 720.0,
                  width=w).map(bits_of),
        st.floats(min_value=-(2.0**-100), max_value=2.0**-100, width=w).map(bits_of),
    )
    return st.lists(element, max_size=80).map(lambda b: np.array(b, UINT[dtype]).view(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fn", FUNCS)
def test_generated_arrays_raise_as_numpy(fn, dtype, isa):
    @given(x=_arrays(dtype), step=st.sampled_from([1, 2, -1]))
    def check(x, step):
        # NumPy's answer for the same values in a fresh array (a copy: a one-element view keeps its
        # negative stride): NumPy's float64 exp runs negative strides through libm, which raises
        # invalid for a signalling NaN where its SIMD loop does not; pykernels gives the SIMD loop's
        # flags in every layout.
        want = _expected(fn, x[::step].copy())
        f = getattr(pk, fn)
        assert raised(f, x[::step]) == want

        def in_place():
            y = x.copy()
            return f(y[::step], out=y[::step])

        assert raised(in_place) == want
        with np.errstate(all="raise"):  # the first kind NumPy checks is the one raised
            try:
                f(x[::step])
                got = None
            except FloatingPointError as e:
                got = str(e)
        assert got == _first(want)

    check()


@pytest.mark.parametrize("fn", FUNCS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_modes_ignore_and_warn(fn, dtype, isa):
    """errstate "ignore": nothing, no warning; the default ("warn" for all but underflow) and
    all="warn": NumPy's RuntimeWarnings, once each."""
    x = edge_values(dtype)
    f, g = getattr(pk, fn), getattr(np, fn)
    with warnings.catch_warnings(record=True) as w, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        f(x)
        f(x[::-1], out=np.empty_like(x))
    assert w == []
    for state in ({}, {"all": "warn"}):
        with warnings.catch_warnings(record=True) as got, np.errstate(**state):
            warnings.simplefilter("always")
            f(x)
        with warnings.catch_warnings(record=True) as want, np.errstate(**state):
            warnings.simplefilter("always")
            g(x)
        texts = sorted(str(m.message) for m in want)
        if fn == "exp" and state:  # the band's underflow (module docstring) is in x
            texts = sorted(set(texts) | {"underflow encountered in exp"})
        assert sorted(str(m.message) for m in got) == texts, state
        assert all(m.category is RuntimeWarning for m in got)


# ---- large arrays: every chunk and piece, the caller's and the workers' --------------------------
@pytest.mark.parametrize("nthreads", [1, 2], ids=lambda t: f"{t}thr")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fn", FUNCS)
def test_large_arrays_every_chunk(fn, dtype, nthreads, isa):
    """Arrays of 2^18 elements, one special value in the first, a middle or the last chunk (with 2
    threads, the caller's or a worker's; each thread's chunks are split into pieces the loops screen
    one by one): the flag is reported whichever thread and piece computed it, and survives the pieces
    and chunks computed after it (each loop call keeps the flags the thread had)."""
    specials = {"exp": [EXP_OVER[dtype], dtype(-800.0), np.finfo(dtype).smallest_subnormal, _nans(dtype)[3], -np.inf],
                "log": [0.0, -1.0, _nans(dtype)[3], _nans(dtype)[0]],
                "tanh": [_nans(dtype)[3], np.finfo(dtype).smallest_subnormal, -np.finfo(dtype).max]}[fn]
    f = getattr(pk, fn)
    before = _core._thread_pool_counters()
    with pk.threads(nthreads):
        for v in specials:
            want = _expected(fn, np.array([v], dtype))
            for pos in (0, BIG // 2 + 7, BIG - 1):
                x = _ones_with(dtype, BIG, pos, v)
                assert raised(f, x) == want, (fn, v, pos)
                assert raised(lambda: (lambda y: f(y, out=y))(x.copy())) == want, (fn, v, pos, "in place")
                s = _ones_with(dtype, 2 * BIG, 2 * pos + 1, v)
                assert raised(f, s[1::2]) == want, (fn, v, pos, "strided")
        x = np.ones(BIG, dtype)
        assert raised(f, x) == set()  # no flag left over from the calls above
    after = _core._thread_pool_counters()
    if nthreads == 2 and after["regions"] > before["regions"]:
        assert after["worker_chunks"] > before["worker_chunks"]


# ---- exp's underflow band ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_exp_underflow_band(dtype, isa, rng):
    """Every finite x whose exact exp is below the smallest normal number reports underflow, alone in
    its call, also where the vector code's final scaling is exact (no underflow flag of its own: half
    of the float32 inputs just below the threshold). NumPy reports it for most of them."""
    t = float(EXP_TINY[dtype])
    lo = -104.5 if dtype == np.float32 else -745.5
    xs = np.concatenate([rng.uniform(t - 0.2, t, 1500), rng.uniform(lo, t, 1500)]).astype(dtype)
    xs = np.concatenate([xs[xs <= EXP_TINY[dtype]], [EXP_TINY[dtype]]])
    numpy_hits = 0
    for x in xs:
        assert raised(pk.exp, np.array([x], dtype)) == {"underflow encountered in exp"}, repr(x)
        numpy_hits += bool(raised(np.exp, np.array([x], dtype)))
    assert numpy_hits > len(xs) // 3
    above = np.nextafter(EXP_TINY[dtype], dtype(0))
    assert raised(pk.exp, np.array([above], dtype)) == set()


# ---- sigmoid: never a warning ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_sigmoid_never_warns(dtype, isa):
    """No text for any input: no overflow (1 / (1 + np.exp(-x)) overflows for x < -88.7 in float32), no
    underflow where the result is subnormal or 0, no invalid for a NaN (as scipy.special.expit)."""
    x = np.concatenate([edge_values(dtype), -edge_values(dtype)])
    for name, call in _layout_calls("sigmoid", dtype, dtype(-100.0)):
        assert raised(call) == set(), name
    for v in x:
        assert raised(pk.sigmoid, np.array([v], dtype)) == set(), repr(v)
    with pk.threads(2):
        big = _ones_with(dtype, BIG, BIG - 1, -1000.0)
        big[BIG // 2] = _nans(dtype)[3]
        assert raised(pk.sigmoid, big) == set()
    with warnings.catch_warnings(), np.errstate(all="warn"):
        warnings.simplefilter("error")
        pk.sigmoid(x)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_sigmoid_generated_arrays_never_warn(dtype, isa):
    @given(x=_arrays(dtype))
    def check(x):
        with warnings.catch_warnings(), np.errstate(all="raise"):
            warnings.simplefilter("error")
            pk.sigmoid(x)
            pk.sigmoid(x[::-2], out=np.empty_like(x[::-2]))

    check()


# ---- softmax and log_softmax: no NumPy twin, no warnings --------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_rows_never_warn(fn, dtype, isa):
    """Rows of huge, tiny and -inf logits (exp of -1000 underflows inside): no warning."""
    f = np.finfo(dtype)
    x = np.array([[1000.0, -1000.0, 0.0, -np.inf], [f.max, -f.max, 1.0, 2.0], [-np.inf, 0.0, 0.0, -np.inf],
                  [1e-30, -1e-30, f.smallest_subnormal, 0.0], [-3000.0, -3000.5, -4000.0, -np.inf]], dtype)
    wide = np.concatenate([x, np.full((5, 5000), -1e4, dtype)], axis=1)  # rows longer than one block
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        for a in (x, wide, x.T):
            getattr(pk, fn)(a, axis=0 if a is x.T else -1)
