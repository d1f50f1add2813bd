"""Accuracy and semantics of exp, log, tanh, sigmoid, softmax, log_softmax and their backward passes.

ULP errors are measured against a higher-precision reference: float32 results against float64 math,
float64 results against np.longdouble (x87 80-bit, 64-bit mantissa: its own error is ~2^-11 of a
float64 ULP). Inputs: 10^6 per function and dtype, half log-uniform over the whole finite range
(both signs, subnormals included), half uniform over the range where the function is not constant
(dense near the overflow/underflow thresholds), plus every edge case.

Measured max ULP on these inputs (AVX-512 build; generic/AVX2 within the same bound; re-derive with
``python -m pytest tests/test_activations.py -k max_ulp -s``):

    function   dtype    pykernels   NumPy 2.4.6 (same inputs)
    exp        float32  0.754 (*)   2.33
    log        float32  0.514       3.45
    tanh       float32  0.685       1.36
    sigmoid    float32  0.753 (*)   2.1e6 (1/(1+np.exp(-x)) is 0 below x = -88.7, not subnormal)
    exp        float64  0.748 (*)   0.69
    log        float64  0.793       0.60
    tanh       float64  0.500       1.16
    sigmoid    float64  0.748 (*)   1.1e15 (the same formula's underflow below x = -709.8)

(*) in the subnormal range (results below 2^-126 / 2^-1022 are rounded twice: to 24 / 53 bits, then
to the subnormal grid); above it float32 exp 0.545 and sigmoid 0.583 (AVX-512, over every float32
input; the generic and AVX2 builds' scalar functions 0.63 and 0.62), float64 0.502. float32 is computed in float32 arithmetic:
every error but the final rounding is compensated, hence the bound below.
"""

from __future__ import annotations

import numpy as np
import pytest

import pykernels as pk
from pykernels import _core
from pykernels import reference as ref

LD = np.longdouble
FUNCS = ("exp", "log", "tanh", "sigmoid")
DTYPES = (np.float32, np.float64)
N = 1_000_000

pytestmark = pytest.mark.skipif(np.finfo(LD).nmant < 63, reason="needs x87 80-bit long double")


def _high(fn, x):
    """The function in higher precision: float64 for float32 input (the float64 maths error, ~1e-16, is
    far below a float32 ULP), long double for float64 input."""
    h = x.astype(np.float64 if x.dtype == np.float32 else LD)
    with np.errstate(all="ignore"):
        if fn == "sigmoid":
            e = np.exp(-np.abs(h))
            return np.where(h >= 0, 1 / (1 + e), e / (1 + e))
        return getattr(np, fn)(h)


def ulp_error(y, r, dtype):
    """|y - r| in ULPs of dtype at r (the spacing of dtype's numbers in r's binade; subnormal spacing
    below the normal range). 0 where both are the same infinity or both NaN."""
    fi = np.finfo(dtype)
    r = r.astype(LD)
    _, e = np.frexp(r)
    ulp = np.maximum(np.ldexp(LD(1), (e - (fi.nmant + 1)).astype(np.int32)), LD(fi.smallest_subnormal))
    with np.errstate(all="ignore"):
        err = np.abs(y.astype(LD) - r) / ulp
    with np.errstate(over="ignore"):
        rt = r.astype(dtype)
    same = ((y == rt) & ~np.isfinite(rt)) | (np.isnan(y) & np.isnan(r))
    return np.where(same, 0, err).astype(np.float64)


def _inputs(fn, dtype, n=N, seed=0):
    rng = np.random.default_rng(seed)
    fi = np.finfo(dtype)
    lo, hi = np.log2(float(fi.smallest_subnormal)), np.log2(float(fi.max))
    a = np.exp2(rng.uniform(lo, hi, n // 2)) * rng.choice([-1.0, 1.0], n // 2)
    if fn == "log":
        a = np.abs(a)
        b = np.exp2(rng.uniform(-3, 3, n - n // 2))  # near 1: the cancellation region
    else:
        lim = {"exp": (90, 746), "tanh": (10, 20), "sigmoid": (105, 746)}[fn][dtype == np.float64]
        b = rng.uniform(-lim, lim, n - n // 2)
    with np.errstate(over="ignore"):
        x = np.concatenate([a, b]).astype(dtype)
    return x[np.isfinite(x)]


def _edges(dtype):
    fi = np.finfo(dtype)
    t = np.float32 if dtype == np.float32 else np.float64
    tiny = [fi.smallest_subnormal, fi.smallest_subnormal * 3, fi.tiny, fi.tiny * (1 - fi.eps)]
    thr = ([88.72283935546875, 88.7228317, 88.72284, -87.33654, -103.27893, -103.97208, -104.0, 9.01, 9.02, 17.33]
           if dtype == np.float32 else
           [709.782712893384, 709.7827128933841, -708.3964185322641, -745.1332191019411, -744.4400719213812,
            -745.1332191019412, 19.06, 36.7, 37.5, 2.0**-28, 2.0**-27])
    if dtype == np.float32:  # the AVX-512 tanh's slot boundaries (a quarter binade each) and clamp
        thr += [2.0**e * (1 + q / 4) for e in range(-4, 4) for q in range(4)] + [9.5, 10.0]
    base = np.array(tiny + thr + [0.0, 1.0, 2.0, 0.5, fi.max, fi.eps, 1 - fi.epsneg, 1 + fi.eps, np.log(2.0)], t)
    with np.errstate(over="ignore"):
        around = np.concatenate([np.nextafter(base, t(np.inf)), np.nextafter(base, t(-np.inf))])
    v = np.concatenate([base, around])
    return np.concatenate([v, -v]).astype(dtype)


_REF_CACHE: dict = {}


def _case(fn, dtype):
    key = (fn, dtype)
    if key not in _REF_CACHE:
        x = np.concatenate([_inputs(fn, dtype), _edges(dtype)])
        _REF_CACHE[key] = (x, _high(fn, x))
    return _REF_CACHE[key]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fn", FUNCS)
def test_within_one_ulp(fn, dtype, isa):
    """<= 1 ULP on 10^6 inputs over the whole range plus the edge cases, every ISA; and as accurate
    as the bound says: 0.8 everywhere, float32 0.7 where the result is normal (one rounding)."""
    x, r = _case(fn, dtype)
    with np.errstate(all="ignore"):  # NumPy's warnings for the edge cases (tests/test_errstate_vmath.py)
        y = getattr(pk, fn)(x)
    assert y.dtype == dtype and y.shape == x.shape
    e = ulp_error(y, r, dtype)
    i = int(np.argmax(e))
    assert e.max() <= 0.8, (fn, x[i], y[i], r[i], e[i])
    if dtype == np.float32:
        normal = np.abs(r) >= np.finfo(dtype).tiny
        i = int(np.argmax(np.where(normal, e, 0)))
        assert e[i] <= 0.7, (fn, x[i], y[i], r[i], e[i])


def test_max_ulp_report():
    """Prints the measured max ULP of pykernels and of NumPy on the same inputs (the table above)."""
    for dtype in DTYPES:
        for fn in FUNCS:
            x, r = _case(fn, dtype)
            with np.errstate(all="ignore"):
                y_np = 1 / (1 + np.exp(-x)) if fn == "sigmoid" else getattr(np, fn)(x)
                y_pk = getattr(pk, fn)(x)
            print(f"{fn:8s} {np.dtype(dtype).name}: pykernels {ulp_error(y_pk, r, dtype).max():.3f}"
                  f"  numpy {ulp_error(y_np, r, dtype).max():.3f}")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fn", FUNCS)
def test_isas_agree_within_bound(fn, dtype):
    """The generic, AVX2 and AVX-512 builds (FMA or not in the Horner steps) differ by at most 1 ULP."""
    x, _ = _case(fn, dtype)
    x = x[:200_000]
    old = _core._isa_active()
    outs = []
    for name in ("generic", "avx2", "avx512"):
        try:
            _core._set_isa(name)
        except ValueError:
            continue
        with np.errstate(all="ignore"):
            outs.append(getattr(pk, fn)(x))
    _core._set_isa(old)
    for o in outs[1:]:
        fin = np.isfinite(outs[0])
        np.testing.assert_array_equal(np.isnan(o), np.isnan(outs[0]))
        assert np.all(np.abs(o[fin].astype(LD) - outs[0][fin]) <= np.spacing(np.abs(outs[0][fin])).astype(LD))


def _bits(a):
    return np.ascontiguousarray(a).view({4: np.uint32, 8: np.uint64}[a.itemsize])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fn", FUNCS)
def test_special_values_as_numpy(fn, dtype, isa):
    """+-0, +-inf, NaNs with payloads and both signs, log of negatives: NumPy's bits (float32 NaN
    results are the canonical +NaN, float64 exp/log keep the input NaN, tanh gives +NaN, sigmoid the
    NaN of -x, log(x < 0) the negative default NaN)."""
    it = np.uint32 if dtype == np.float32 else np.uint64
    nans = (np.array([0x7FC00001, 0xFFC00001, 0x7F800001, 0xFF800001], it) if dtype == np.float32 else
            np.array([0x7FF8000000000001, 0xFFF8000000000001, 0x7FF0000000000001, 0xFFF0000000000001], it))
    fi = np.finfo(dtype)
    x = np.concatenate([nans.view(dtype), np.array([0.0, -0.0, np.inf, -np.inf, -fi.smallest_subnormal, -fi.max]
                                                   + ([-1.0, -fi.tiny] if fn == "log" else []), dtype)])
    with np.errstate(all="ignore"):
        want = 1 / (1 + np.exp(-x)) if fn == "sigmoid" else getattr(np, fn)(x)
        got = getattr(pk, fn)(x)
    np.testing.assert_array_equal(_bits(got), _bits(want))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_exp_overflow_threshold_as_numpy(dtype):
    t = 88.72283935546875 if dtype == np.float32 else 709.782712893384
    x = np.array([t, np.nextafter(dtype(t), dtype(0)), np.nextafter(dtype(t), dtype(1000))], dtype)
    with np.errstate(over="ignore"):
        want = np.exp(x)
        got = pk.exp(x)
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    assert np.isinf(got[2]) and np.isfinite(got[1])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_sigmoid_never_overflows_and_has_exact_limits(dtype):
    x = np.array([-1e30, -800, -100, 0, 100, 800, 1e30, np.inf, -np.inf], dtype)
    with np.errstate(all="raise"):
        y = pk.sigmoid(x)  # never warns (tests/test_errstate_vmath.py)
    assert y[0] == 0 and y[-1] == 0 and y[3] == 0.5 and y[4] == 1 and y[-2] == 1
    assert np.all((y >= 0) & (y <= 1))


@pytest.mark.parametrize("fn", ["exp", "log", "tanh", "sigmoid"])
def test_layouts_out_and_threads(fn, rng):
    """Strided, reversed, 0-d, 0-size inputs, out= (in place too): the contiguous results, for 1 and 2
    threads."""
    x = rng.standard_normal((300, 257)).astype(np.float32) * 5
    if fn == "log":
        x = np.abs(x)
    f = getattr(pk, fn)
    full = f(x)
    np.testing.assert_array_equal(f(x[::-2, 1::3]), full[::-2, 1::3])
    np.testing.assert_array_equal(f(x.T), full.T)
    assert f(np.float32(2.0)) == full.dtype.type(f(np.array([2.0], np.float32))[0])
    assert f(np.zeros((0, 3), np.float32)).shape == (0, 3)
    out = np.empty_like(x)
    assert f(x, out=out) is out
    np.testing.assert_array_equal(out, full)
    y = x.copy()
    f(y, out=y)
    np.testing.assert_array_equal(y, full)
    big = np.tile(x, (8, 1))
    pk.set_num_threads(1)
    one = f(big)
    pk.set_num_threads(2)
    np.testing.assert_array_equal(f(big), one)
    with pytest.raises(TypeError):
        f(np.arange(3))


# ---- softmax / log_softmax -----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape, axis", [((128, 10), -1), ((7, 1000), 1), ((5, 6, 7), 0), ((5, 6, 7), 1),
                                         ((3, 5000), -1), ((4, 9000), 1), ((10,), 0), ((2, 1), -1),
                                         ((9, 127), -1), ((9, 128), -1), ((6, 131), -1), ((3, 4096), -1)])
def test_softmax_matches_reference(dtype, shape, axis, rng):
    x = (rng.standard_normal(shape) * 10).astype(dtype)
    tol = 2e-6 if dtype == np.float32 else 1e-14
    y = pk.softmax(x, axis=axis)
    np.testing.assert_allclose(y, ref.softmax(x.astype(np.float64), axis=axis), rtol=tol, atol=tol * 1e-3)
    s = y.astype(np.float64).sum(axis=axis)
    assert np.all(np.abs(s - 1) <= 4 * np.finfo(dtype).eps * max(1, np.sqrt(shape[axis])))
    ls = pk.log_softmax(x, axis=axis)
    np.testing.assert_allclose(ls, ref.log_softmax(x.astype(np.float64), axis=axis), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("width", [3, 131], ids=["short rows", "long rows"])
def test_softmax_extreme_logits(dtype, width, isa):
    fmax = np.finfo(dtype).max
    x = np.full((6, width), -np.inf, dtype)  # long rows: the same logits, the rest -inf (weight 0)
    x[:, :3] = np.array([[fmax, fmax, 0.0], [-np.inf, 0.0, -np.inf], [1e30, -1e30, 0], [-np.inf] * 3,
                         [1000.0, 1000.0, -np.inf], [0.0, np.nan, 0.0]], dtype)
    y = pk.softmax(x)
    np.testing.assert_array_equal(y[0, :3], dtype([0.5, 0.5, 0]))
    np.testing.assert_array_equal(y[1, :3], dtype([0, 1, 0]))
    np.testing.assert_array_equal(y[2, :3], dtype([1, 0, 0]))
    assert np.all(np.isnan(y[3]))  # all -inf: NaN, as NumPy's x - x.max() formula gives
    np.testing.assert_array_equal(y[4, :3], dtype([0.5, 0.5, 0]))
    assert np.all(np.isnan(y[5]))  # a NaN anywhere: the row is NaN
    assert np.all(y[[0, 1, 2, 4], 3:] == 0)
    ls = pk.log_softmax(x)
    assert ls[1, 1] == 0 and ls[1, 0] == -np.inf and np.all(np.isnan(ls[3])) and np.all(np.isnan(ls[5]))


def test_softmax_zero_size_and_errors():
    assert pk.softmax(np.zeros((0, 5), np.float32)).shape == (0, 5)
    assert pk.softmax(np.zeros((5, 0))).shape == (5, 0)
    with pytest.raises(TypeError):
        pk.softmax(np.arange(4))
    with pytest.raises(np.exceptions.AxisError):
        pk.softmax(np.ones((2, 3)), axis=2)
    with pytest.raises(ValueError):
        pk.softmax(np.ones((2, 3)), out=np.empty((3, 2)))


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_out_and_in_place(axis, rng):
    x = rng.standard_normal((64, 33))
    want = pk.softmax(x, axis=axis)
    out = np.empty_like(x)
    assert pk.softmax(x, axis=axis, out=out) is out
    np.testing.assert_array_equal(out, want)
    y = x.copy()
    assert pk.softmax(y, axis=axis, out=y) is y
    np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("shape", [(20000, 37), (3000, 200)])
def test_softmax_thread_count_invariant(shape, rng, isa):
    x = rng.standard_normal(shape).astype(np.float32) * 20
    pk.set_num_threads(1)
    a, la = pk.softmax(x), pk.log_softmax(x)
    pk.set_num_threads(2)
    np.testing.assert_array_equal(pk.softmax(x), a)
    np.testing.assert_array_equal(pk.log_softmax(x), la)


# ---- backward: finite differences in float64 ------------------------------------------------------
def _fd_check(f, fb, x, rng, axis=None):
    dy = rng.standard_normal(x.shape)
    y = f(x) if axis is None else f(x, axis=axis)
    dx = fb(dy, y) if axis is None else fb(dy, y, axis=axis)
    h = 1e-6
    for _ in range(6):
        v = rng.standard_normal(x.shape)
        fp = f(x + h * v) if axis is None else f(x + h * v, axis=axis)
        fm = f(x - h * v) if axis is None else f(x - h * v, axis=axis)
        num = np.sum(dy * (fp - fm)) / (2 * h)
        assert abs(num - np.sum(dx * v)) <= 1e-6 * max(1.0, abs(num)), (num, np.sum(dx * v))


def test_sigmoid_tanh_backward_finite_differences(rng):
    x = rng.standard_normal((13, 7)) * 3
    _fd_check(pk.sigmoid, pk.sigmoid_backward, x, rng)
    _fd_check(pk.tanh, pk.tanh_backward, x, rng)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_backward_finite_differences(axis, rng):
    x = rng.standard_normal((6, 9, 5)) * 2
    _fd_check(pk.softmax, pk.softmax_backward, x, rng, axis=axis)
    _fd_check(pk.log_softmax, pk.log_softmax_backward, x, rng, axis=axis)


def test_backward_match_reference(rng):
    x = rng.standard_normal((50, 20))
    dy = rng.standard_normal((50, 20))
    for axis in (-1, 0):
        y = pk.softmax(x, axis=axis)
        np.testing.assert_allclose(pk.softmax_backward(dy, y, axis=axis), ref.softmax_backward(dy, y, axis=axis),
                                   rtol=1e-12, atol=1e-15)
        ly = pk.log_softmax(x, axis=axis)
        np.testing.assert_allclose(pk.log_softmax_backward(dy, ly, axis=axis),
                                   ref.log_softmax_backward(dy, ly, axis=axis), rtol=1e-12, atol=1e-14)
    y = pk.sigmoid(x)
    np.testing.assert_array_equal(pk.sigmoid_backward(dy, y), ref.sigmoid_backward(dy, y))
    t = pk.tanh(x)
    np.testing.assert_array_equal(pk.tanh_backward(dy, t), ref.tanh_backward(dy, t))


# ---- layers on the native backend -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["Sigmoid", "Tanh", "Softmax"])
def test_layers_native_match_numpy_backend(name, rng):
    from pykernels import layers

    x = rng.standard_normal((32, 10))
    dout = rng.standard_normal((32, 10))
    nat, ref_layer = getattr(layers, name)(), getattr(layers, name)()
    ref_layer.set_backend("numpy")
    np.testing.assert_allclose(nat.forward(x), ref_layer.forward(x), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(nat.backward(dout), ref_layer.backward(dout), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "softmax"])
def test_dense_activation_native_matches_numpy(act, rng):
    from pykernels.layers import Dense

    x = rng.standard_normal((16, 5))
    a, b = Dense(4, activation=act, input_shape=(5,)), Dense(4, activation=act, input_shape=(5,))
    a.build(5, dtype=np.float64) if not a.built else None
    b.build(5, dtype=np.float64) if not b.built else None
    b.set_weights(a.get_weights())
    b.set_backend("numpy")
    np.testing.assert_allclose(a.forward(x), b.forward(x), rtol=1e-12, atol=1e-14)
    d = rng.standard_normal((16, 4))
    np.testing.assert_allclose(a.backward(d), b.backward(d), rtol=1e-10, atol=1e-12)


# ---- generated shapes and layouts: 0-d, 0-size, strided and reversed views, out=, both dtypes -----
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402


@settings(deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("fn", FUNCS)
def test_generated_shapes_and_layouts_within_bound(fn, data):
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=7), label="shape")
    # a parent twice as long on every axis, read with step 2 and possibly reversed
    parent = data.draw(hnp.arrays(dtype, tuple(2 * s for s in shape),
                                  elements=st.floats(-100, 100, width=np.dtype(dtype).itemsize * 8)), label="x")
    rev = data.draw(st.booleans(), label="reversed")
    view = parent[tuple(slice(None, None, -2) if rev else slice(None, None, 2) for _ in shape)]
    before = parent.copy()
    with np.errstate(all="ignore"):  # exp(100) overflows in float32, log(x <= 0): NumPy's warnings
        got = getattr(pk, fn)(view)
    np.testing.assert_array_equal(parent, before)  # the input is never written
    want = _high(fn, np.asarray(view))
    assert np.shape(got) == view.shape and np.asarray(got).dtype == dtype
    if view.size:
        assert ulp_error(np.asarray(got).reshape(-1), np.asarray(want).reshape(-1), dtype).max() <= 1.0
    out = np.full(view.shape, np.nan, dtype)
    with np.errstate(all="ignore"):
        res = getattr(pk, fn)(view, out=out)
    assert res is out
    np.testing.assert_array_equal(out, np.asarray(got))
