"""``pykernels.numpy``: the NumPy namespace with the kernels where they apply.

Differential tests against NumPy through the namespace on generated arrays: float32/float64 in
every memory layout (the kernel path) and the dtypes the kernels do not take (ints, bool,
complex, float16: NumPy's own path), broadcasting, 0-d, 0-size, Python and NumPy scalars,
``out=``, reductions through ``sum`` with ``axis``/``keepdims``; which calls reach a kernel; the
ufunc attributes and methods; the namespace's completeness.
"""

from __future__ import annotations

import math
import pickle

import numpy
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pykernels.numpy as pnp
import strategies as S
from assertions import assert_identical, assert_sum_accurate, snapshot
from pykernels import _core

EXACT = ("add", "subtract", "multiply", "maximum", "minimum", "negative", "absolute")
TRANSCENDENTAL = ("exp", "log", "tanh")
UNARY = ("negative", "absolute", "exp", "log", "tanh")
BINARY = ("add", "subtract", "multiply", "maximum", "minimum")
FALLBACK_DTYPES = (numpy.int8, numpy.int32, numpy.int64, numpy.uint16, numpy.bool_, numpy.float16,
                   numpy.complex64, numpy.complex128)
ALL_DTYPES = S.FLOAT_DTYPES + FALLBACK_DTYPES


# ---- the namespace ----------------------------------------------------------------------------


def test_accelerated_names_are_the_kernels_the_extension_has():
    expect = {n for n in UNARY + BINARY + ("matmul", "dot", "sum") if hasattr(_core, n)}
    if "absolute" in expect:
        expect.add("abs")
    assert set(pnp.ACCELERATED) == expect
    # the names the namespace promises to run on the kernels
    assert {"add", "subtract", "multiply", "maximum", "dot", "matmul", "sum", "negative", "absolute",
            "abs"} <= expect
    assert pnp.abs is pnp.absolute


def test_every_public_numpy_name_is_there():
    names = [n for n in dir(numpy) if not n.startswith("_")]
    assert len(names) > 400
    for n in names:
        try:
            expected = getattr(numpy, n)
        except AttributeError:  # names NumPy lists but resolves lazily to an error
            continue
        got = getattr(pnp, n)
        if n not in pnp.ACCELERATED:
            assert got is expected, n
    for n in ("random", "linalg", "fft", "float32", "ndarray", "pi", "newaxis", "zeros_like", "argmax",
              "errstate", "ufunc", "__version__"):
        assert getattr(pnp, n) is getattr(numpy, n)
    assert set(names) <= set(dir(pnp))
    with pytest.raises(AttributeError, match="pykernels.numpy.*no_such_name"):
        pnp.no_such_name  # noqa: B018


def test_submodules_are_numpys_own():
    import importlib
    import sys

    import pykernels.numpy.linalg as la
    from pykernels.numpy.lib.stride_tricks import sliding_window_view
    from pykernels.numpy.random import default_rng

    assert la is numpy.linalg and pnp.linalg is numpy.linalg and pnp.fft is numpy.fft
    assert default_rng is numpy.random.default_rng
    assert sliding_window_view is numpy.lib.stride_tricks.sliding_window_view
    for name in ("linalg", "random", "lib", "lib.stride_tricks"):
        mod = sys.modules["numpy." + name]
        assert sys.modules["pykernels.numpy." + name] is mod
        assert mod.__name__ == mod.__spec__.name == "numpy." + name  # untouched, not loaded twice
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("pykernels.numpy.no_such_module")
    assert not hasattr(pnp, "__file__") or pnp.__file__.endswith("numpy.py")
    assert pnp.__path__ == []


def test_star_import():
    ns: dict = {}
    exec("from pykernels.numpy import *", ns)
    assert ns["add"] is pnp.add and ns["sum"] is pnp.sum and ns["zeros_like"] is numpy.zeros_like
    assert "annotations" not in ns and "_np" not in ns


@pytest.mark.parametrize("name", BINARY + UNARY + ("matmul",))
def test_ufunc_attributes_are_numpys(name):
    f, uf = getattr(pnp, name), getattr(numpy, name)
    for attr in ("nin", "nout", "nargs", "ntypes", "types", "identity", "signature", "__name__", "__doc__"):
        assert getattr(f, attr) == getattr(uf, attr), attr
    for method in ("at", "reduce", "accumulate", "outer", "reduceat"):
        assert callable(getattr(f, method))
    assert pickle.loads(pickle.dumps(f)) is f


def test_ufunc_methods_work():
    a = numpy.zeros(5)
    pnp.add.at(a, [0, 0, 3], 1.5)
    assert a.tolist() == [3.0, 0.0, 0.0, 1.5, 0.0]
    w = numpy.zeros((4, 3), numpy.float32)
    pnp.add.at(w, numpy.array([1, 1, 2]), numpy.ones((3, 3), numpy.float32))  # Embedding's backward
    assert w.sum(axis=1).tolist() == [0.0, 6.0, 3.0, 0.0]
    x = numpy.arange(12.0).reshape(3, 4)
    assert_identical(pnp.add.reduce(x, axis=1), numpy.add.reduce(x, axis=1))
    assert_identical(pnp.add.accumulate(x), numpy.add.accumulate(x))
    assert_identical(pnp.maximum.outer(x[0], x[1]), numpy.maximum.outer(x[0], x[1]))
    assert_identical(pnp.multiply.reduceat(x[0], [0, 2]), numpy.multiply.reduceat(x[0], [0, 2]))
    assert_identical(pnp.maximum.reduce(x), numpy.maximum.reduce(x))


def test_pickles_by_reference():
    for name in pnp.ACCELERATED:
        f = getattr(pnp, name)
        assert pickle.loads(pickle.dumps(f)) is f


def test_bool_sum_and_other_fallbacks():
    pred, t = numpy.array([0, 1, 2, 2]), numpy.array([0, 1, 1, 2])
    assert_identical(pnp.sum(pred == t), numpy.sum(pred == t))
    assert_identical(pnp.sum([1.5, 2.5]), numpy.sum([1.5, 2.5]))
    assert_identical(pnp.sum(numpy.arange(6).reshape(2, 3), axis=1), numpy.arange(6).reshape(2, 3).sum(axis=1))
    assert_identical(pnp.add(1, 2), numpy.add(1, 2))
    assert_identical(pnp.add(1.5, 2.5), numpy.add(1.5, 2.5))
    assert_identical(pnp.add([1.0, 2.0], 1.0), numpy.add([1.0, 2.0], 1.0))
    x = numpy.float32([1.0, -2.0, 3.0])
    assert_identical(pnp.add(x, 1, dtype=numpy.float64), numpy.add(x, 1, dtype=numpy.float64))
    out = numpy.full(3, 7.0)
    pnp.add(x, 1.0, out=out, where=x > 0)
    assert out.tolist() == [2.0, 7.0, 4.0]
    assert_identical(pnp.add(x, x, casting="no"), numpy.add(x, x, casting="no"))
    assert_identical(pnp.sum(x, dtype=numpy.float64), numpy.sum(x, dtype=numpy.float64))
    assert_identical(pnp.sum(x, initial=10.0), numpy.sum(x, initial=10.0))
    assert_identical(pnp.sum(x, where=x > 0), numpy.sum(x, where=x > 0))
    assert_identical(pnp.dot(numpy.float32(2.0), x), numpy.dot(numpy.float32(2.0), x))
    assert_identical(pnp.dot(x, 2.0), numpy.dot(x, 2.0))
    m = numpy.asmatrix(numpy.eye(2))
    for got, want in [(pnp.add(m, 1.0), numpy.add(m, 1.0)), (pnp.dot(m, m), numpy.dot(m, m)),
                      (pnp.matmul(m, m), numpy.matmul(m, m)), (pnp.sum(m, axis=0), numpy.sum(m, axis=0))]:
        assert type(got) is numpy.matrix
        assert_identical(numpy.asarray(got), numpy.asarray(want))
    ma = numpy.ma.masked_array([1.0, 2.0, 3.0], mask=[0, 1, 0])
    for got, want in [(pnp.add(ma, 1.0), numpy.add(ma, 1.0)), (pnp.exp(ma), numpy.exp(ma)),
                      (pnp.negative(ma), numpy.negative(ma))]:
        assert type(got) is numpy.ma.MaskedArray
        assert got.mask.tolist() == want.mask.tolist()
        assert got.filled(0).tolist() == want.filled(0).tolist()
    assert pnp.sum(ma) == numpy.sum(ma) == 4.0
    obj = numpy.array([1.0, 2.0], dtype=object)
    assert pnp.add(obj, 1.0).tolist() == [2.0, 3.0]


def test_errors_are_numpys():
    a, b = numpy.ones(3), numpy.ones(4)
    for f in (pnp.add, pnp.maximum, pnp.matmul, pnp.dot):
        with pytest.raises(ValueError):
            f(a, b)
    with pytest.raises(numpy.exceptions.AxisError):
        pnp.sum(a, axis=1)
    with pytest.raises(TypeError):
        pnp.add(a, a, out=numpy.empty(3, numpy.int64))
    with pytest.raises(OverflowError):
        pnp.add(numpy.ones(2, numpy.float32), 10**400)


# ---- dispatch: which calls reach the kernel ---------------------------------------------------


class _Spy:
    def __init__(self, real):
        self.real, self.calls = real, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.real(*args, **kwargs)


def _spied(kind, name):
    spy = _Spy(getattr(numpy, name))
    make = {"unary": pnp._unary, "binary": pnp._binary, "matmul": pnp._matmul}[kind]
    return make(getattr(numpy, name), spy, name), spy


F32, F64 = numpy.ones(4, numpy.float32), numpy.ones(4)


@pytest.mark.parametrize("args, kwargs, kernel", [
    ((F32, F32), {}, True),
    ((F32, F64), {}, True),
    ((F64, 2.0), {}, True),
    ((2, F32), {}, True),
    ((F32, numpy.float64(2.0)), {}, True),
    ((numpy.array(2.0), F32), {}, True),                         # 0-d array
    ((F64, F64), {"out": numpy.empty(4)}, True),
    ((F64, F64), {"out": numpy.empty(4, numpy.float32)}, True),  # same_kind cast, the kernel's rule too
    ((F64, F64), {"out": None}, True),
    ((F64, F64), {"out": (numpy.empty(4),)}, False),             # a tuple: NumPy's path
    ((F64, F64), {"out": numpy.empty(4, numpy.int64)}, False),   # NumPy's casting error
    ((F64, F64, numpy.empty(4)), {}, False),                      # positional out
    ((F64, True), {}, False),                                     # bool scalar
    ((F64, 1j), {}, False),
    ((F64, numpy.float16(1)), {}, False),
    ((F64, numpy.int64(1)), {}, False),
    ((numpy.arange(4), 1.0), {}, False),
    ((F64.astype(numpy.float16), 1.0), {}, False),
    ((F64.astype(">f8"), 1.0), {}, False),                        # byte-swapped
    ((F64.astype(numpy.complex128), F64), {}, False),
    (([1.0, 2.0, 3.0, 4.0], F64), {}, False),                     # a list
    ((1.0, 2.0), {}, False),                                      # no array
    ((numpy.asmatrix(F64), F64), {}, False),
    ((numpy.ma.masked_array(F64), F64), {}, False),
    ((F64, F64), {"dtype": numpy.float64}, False),
    ((F64, F64), {"where": True}, False),
    ((F64, F64), {"casting": "unsafe"}, False),
    ((F64, F64), {"order": "C"}, False),
    ((F64, F64), {"subok": False}, False),
    ((F64, F64), {"signature": "dd->d"}, False),
])
def test_binary_dispatch(args, kwargs, kernel):
    f, spy = _spied("binary", "add")
    result, err = _raises_like(f, *args, **kwargs)
    assert spy.calls == int(kernel)
    expected, exp_err = _raises_like(numpy.add, *args, **kwargs)
    assert err is exp_err
    assert type(result) is type(expected)
    numpy.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("x, kwargs, kernel", [
    (F32, {}, True),
    (F64, {"out": numpy.empty(4)}, True),
    (numpy.float64(1.0), {}, False),
    (1.0, {}, False),
    (numpy.arange(3), {}, False),
    (F64, {"where": F64 > 0, "out": numpy.zeros(4)}, False),
    (F64, {"dtype": numpy.float32}, False),
])
def test_unary_dispatch(x, kwargs, kernel):
    f, spy = _spied("unary", "negative")
    result = f(x, **kwargs)
    assert spy.calls == int(kernel)
    assert_identical(result, numpy.negative(x, **kwargs))


@pytest.mark.parametrize("a, b, kwargs, kernel", [
    (numpy.ones((2, 3)), numpy.ones((3, 2)), {}, True),
    (numpy.ones(3, numpy.float32), numpy.ones((3, 2)), {}, True),
    (numpy.ones((2, 3)), numpy.ones((3, 2)), {"out": numpy.empty((2, 2))}, True),
    (numpy.ones((2, 3)), numpy.ones((3, 2)), {"axes": [(0, 1), (0, 1), (0, 1)]}, False),
    (numpy.ones((2, 3), int), numpy.ones((3, 2)), {}, False),
    (numpy.ones((2, 3)), numpy.ones((3, 2)), {"dtype": numpy.float32}, False),
])
def test_matmul_dispatch(a, b, kwargs, kernel):
    f, spy = _spied("matmul", "matmul")
    result = f(a, b, **kwargs)
    assert spy.calls == int(kernel)
    assert_identical(result, numpy.matmul(a, b, **kwargs))


def test_dot_and_sum_reach_the_kernel(monkeypatch):
    calls = []

    def spy(real):
        def f(*a, **k):
            calls.append(real.__name__)
            return real(*a, **k)
        return f

    dot = pnp._make_dot(spy(_core.dot), numpy.dot)
    sum_ = pnp._make_sum(spy(_core.sum), numpy.sum)
    a = numpy.ones((3, 4))
    dot(a, a.T)
    dot(a, a.T, out=numpy.empty((3, 3)))
    sum_(a)
    sum_(a, axis=(0, 1), keepdims=True)
    sum_(a, 1, None, None, False)
    assert calls == ["dot", "dot", "sum", "sum", "sum"]
    for out in (numpy.empty((3, 3), numpy.float32), numpy.empty((3, 3), order="F")):
        with pytest.raises(ValueError, match="output array is not acceptable"):
            dot(a, a.T, out=out)  # np.dot's out must have the result's dtype and be C-contiguous
    dot(a, 2.0)
    dot(numpy.float64(2.0), a)
    sum_(a > 0)
    sum_(a, dtype=numpy.float32)
    sum_(a, out=numpy.empty(()))
    with pytest.raises(TypeError):
        sum_(a, axis=[0])  # a list: NumPy's rule (TypeError) is kept
    assert calls == ["dot", "dot", "sum", "sum", "sum"]


def _raises_like(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs), None
    except Exception as e:  # noqa: BLE001
        return None, type(e)


# ---- generated differential tests -------------------------------------------------------------


def _operand(data, shape, dtype, kind):
    if dtype in S.FLOAT_DTYPES:
        return data.draw(S.operands(tuple(shape), dtype, kind=kind), label="operand")
    arr = data.draw(hnp.arrays(dtype, tuple(shape)), label="operand")
    return numpy.asarray(arr, dtype=dtype)


@pytest.mark.parametrize("name", BINARY)
@given(data=st.data())
def test_binary_matches_numpy(name, data):
    shapes = data.draw(S.shape_pairs, label="shapes").input_shapes
    kind = data.draw(st.sampled_from(["finite", "special"]), label="kind")
    dts = [data.draw(st.sampled_from(ALL_DTYPES if i == 0 else S.FLOAT_DTYPES + FALLBACK_DTYPES[:3]),
                     label=f"dtype{i}") for i in range(2)]
    args = [_operand(data, s, dt, kind) for s, dt in zip(shapes, dts)]
    assume(not all(isinstance(a, int) for a in args))
    if data.draw(st.booleans(), label="swap"):
        args.reverse()
    copies = snapshot(args)
    expected, exp_err = _raises_like(getattr(numpy, name), *args)
    got, got_err = _raises_like(getattr(pnp, name), *args)
    assert got_err is exp_err
    if exp_err is None:
        _assert_ufunc_result(name, got, expected)
    assert_unmodified(args, copies)


@pytest.mark.parametrize("name", BINARY)
@given(data=st.data())
def test_binary_out_matches_numpy(name, data):
    shapes = data.draw(S.shape_pairs, label="shapes")
    dts = [data.draw(S.dtypes, label=f"dtype{i}") for i in range(2)]
    args = [data.draw(S.arrays(dt, tuple(s)), label=f"arg{i}") for i, (s, dt) in enumerate(zip(shapes.input_shapes, dts))]
    out_dt = data.draw(st.sampled_from(S.FLOAT_DTYPES), label="out dtype")
    out = data.draw(S.arrays(out_dt, tuple(shapes.result_shape), layouts=S.WRITABLE_LAYOUTS), label="out")
    out_np = out.copy()
    expected, exp_err = _raises_like(getattr(numpy, name), *args, out=out_np)
    got, got_err = _raises_like(getattr(pnp, name), *args, out=out)
    assert got_err is exp_err
    if exp_err is None:
        assert got is out
        assert_identical(out, out_np)


def assert_unmodified(args, copies) -> None:
    for a, c in zip(args, copies):
        if c is not None:
            assert numpy.array(a, copy=True).tobytes() == c.tobytes()


def _assert_same(got, expected):
    """NumPy's result exactly: bit-identical floats (assert_identical), the same bytes otherwise."""
    if numpy.result_type(expected) in S.FLOAT_DTYPES:
        assert_identical(got, expected)
        return
    assert type(got) is type(expected)
    g, e = numpy.asarray(got), numpy.asarray(expected)
    assert g.dtype == e.dtype and g.shape == e.shape
    assert g.tobytes() == e.tobytes()


def _assert_ufunc_result(name, got, expected, x=None):
    # NumPy's own function ran (and gave NumPy's bits) for an integer or bool x, whose float result
    # NumPy's float32 exp can leave 1.5 ULP off, so those compare bit for bit with NumPy.
    by_numpy = x is not None and numpy.asarray(x).dtype not in S.FLOAT_DTYPES
    if name in EXACT or numpy.result_type(expected) not in S.FLOAT_DTYPES or name not in pnp.ACCELERATED or by_numpy:
        _assert_same(got, expected)
        return
    assert type(got) is type(expected)
    g, e = numpy.asarray(got), numpy.asarray(expected)
    assert g.dtype == e.dtype and g.shape == e.shape
    _assert_within_ulp(g, numpy.asarray(x), name)


_LD = numpy.longdouble


def _assert_within_ulp(g, x, name, bound: float = 1.0):
    """exp/log/tanh on the kernels: within their 1-ULP bound of the true value (the activation
    kernels' bound; NumPy's own float32 log is 3.5 ULP off, so not "close to NumPy's bits"), measured
    against float64 maths for float32 and long double for float64; NaN and infinities where the
    true function has them."""
    if g.dtype == numpy.float64 and numpy.finfo(_LD).nmant < 63:
        pytest.skip("needs x87 80-bit long double for a float64 reference")
    h = x.astype(numpy.float64 if g.dtype == numpy.float32 else _LD)
    with numpy.errstate(all="ignore"):
        r = getattr(numpy, name)(h)
        fi = numpy.finfo(g.dtype)
        _, ex = numpy.frexp(r.astype(_LD))
        ulp = numpy.maximum(numpy.ldexp(_LD(1), (ex - (fi.nmant + 1)).astype(numpy.int32)), _LD(fi.smallest_subnormal))
        err = numpy.abs(g.astype(_LD) - r.astype(_LD)) / ulp
        rt = r.astype(g.dtype)
    numpy.testing.assert_array_equal(numpy.isnan(g), numpy.isnan(rt), err_msg=f"{name}: NaN positions")
    fin = numpy.isfinite(rt)
    numpy.testing.assert_array_equal(g[~fin], rt[~fin], err_msg=f"{name}: infinities")
    if fin.any():
        assert float(err[fin].max()) <= bound, (name, float(err[fin].max()))


@pytest.mark.parametrize("name", UNARY)
@given(data=st.data())
def test_unary_matches_numpy(name, data):
    shape = data.draw(S.shapes, label="shape")
    dt = data.draw(st.sampled_from(ALL_DTYPES), label="dtype")
    kind = data.draw(st.sampled_from(["finite", "special"]), label="kind")
    if dt in S.FLOAT_DTYPES:
        x = data.draw(S.arrays(dt, tuple(shape), kind=kind), label="x")
    else:
        x = numpy.asarray(data.draw(hnp.arrays(dt, tuple(shape)), label="x"), dtype=dt)
    copies = snapshot([x])
    with numpy.errstate(all="ignore"):
        expected, exp_err = _raises_like(getattr(numpy, name), x)
        got, got_err = _raises_like(getattr(pnp, name), x)
    assert got_err is exp_err
    if exp_err is None:
        _assert_ufunc_result(name, got, expected, x)
    assert_unmodified([x], copies)


@given(data=st.data())
def test_sum_matches_numpy(data):
    shape = data.draw(S.shapes, label="shape")
    dt = data.draw(st.sampled_from(ALL_DTYPES), label="dtype")
    if dt in S.FLOAT_DTYPES:
        x = data.draw(S.arrays(dt, tuple(shape), kind="finite"), label="x")
        x = numpy.clip(x, -1e30, 1e30).astype(dt) if x.size else x  # no overflow to inf in the sum
    else:
        x = numpy.asarray(data.draw(hnp.arrays(dt, tuple(shape)), label="x"), dtype=dt)
    nd = x.ndim
    axis = data.draw(st.one_of(
        st.none(),
        st.integers(-nd, nd - 1) if nd else st.none(),
        st.lists(st.integers(0, nd - 1), unique=True, max_size=nd).map(tuple) if nd else st.just(()),
    ), label="axis")
    keepdims = data.draw(st.sampled_from([None, False, True]), label="keepdims")
    kw = {} if keepdims is None else {"keepdims": keepdims}
    expected = numpy.sum(x, axis=axis, **kw)
    got = pnp.sum(x, axis, **kw)
    if dt in S.FLOAT_DTYPES:
        assert_sum_accurate(got, x, axis, keepdims=bool(keepdims))
    else:
        _assert_same(got, expected)


_MM_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)),
              ((5, 2, 3), (5, 3, 4)), ((1, 2, 3), (4, 3, 2)), ((0, 3), (3, 4)), ((2, 0), (0, 4)),
              ((2, 3, 4), (2, 1, 4, 2))]


def _assert_product_close(got, expected):
    assert type(got) is type(expected)
    g, e = numpy.asarray(got), numpy.asarray(expected)
    assert g.dtype == e.dtype and g.shape == e.shape
    if e.dtype == numpy.float32:
        numpy.testing.assert_allclose(g, e, rtol=2e-5, atol=2e-5)
    elif e.dtype == numpy.float64:
        numpy.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)
    else:
        _assert_same(got, expected)


@pytest.mark.parametrize("name", ["dot", "matmul"])
@pytest.mark.parametrize("shapes", _MM_SHAPES, ids=str)
@given(data=st.data())
def test_products_match_numpy(name, shapes, data):
    dts = [data.draw(st.sampled_from(S.FLOAT_DTYPES + (numpy.int64, numpy.complex128)), label=f"dt{i}")
           for i in range(2)]
    a_shape, b_shape = shapes  # valid for both: dot takes a's last axis with b's second-to-last
    args = []
    for s, dt in zip((a_shape, b_shape), dts):
        if dt in S.FLOAT_DTYPES:
            args.append(data.draw(S.arrays(dt, s, kind="finite", layouts=S.LAYOUTS), label="arg")
                        .clip(-1e3, 1e3).astype(dt))
        else:
            args.append(numpy.asarray(data.draw(hnp.arrays(dt, s, elements=st.integers(-100, 100))), dtype=dt))
    expected, exp_err = _raises_like(getattr(numpy, name), *args)
    got, got_err = _raises_like(getattr(pnp, name), *args)
    assert got_err is exp_err
    if exp_err is None:
        if expected.size and numpy.result_type(*args) in S.FLOAT_DTYPES:
            scale = max(1.0, max(float(numpy.abs(a).max()) if a.size else 1.0 for a in args)) ** 2
            k = a_shape[-1]
            g, e = numpy.asarray(got), numpy.asarray(expected)
            assert type(got) is type(expected) and g.dtype == e.dtype and g.shape == e.shape
            eps = numpy.finfo(e.dtype).eps
            numpy.testing.assert_allclose(g, e, rtol=0, atol=4 * eps * k * scale)
        else:
            _assert_product_close(got, expected)


@pytest.mark.parametrize("name", ["dot", "matmul"])
def test_products_out(name):
    rng = numpy.random.default_rng(0)
    a, b = rng.standard_normal((4, 5)), rng.standard_normal((5, 3))
    out = numpy.empty((4, 3))
    r = getattr(pnp, name)(a, b, out=out)
    assert r is out
    numpy.testing.assert_allclose(out, a @ b, rtol=1e-12)
    with pytest.raises(ValueError):
        getattr(pnp, name)(a, b, out=numpy.empty((4, 4)))


def test_sum_zero_size_and_0d():
    for x in (numpy.ones((0, 3)), numpy.ones((0, 3), numpy.float32), numpy.array(2.5), numpy.float32(2.5)):
        for axis in (None, 0, -1) if numpy.ndim(x) else (None,):
            assert_identical(pnp.sum(x, axis=axis), numpy.sum(x, axis=axis))
            assert_identical(pnp.sum(x, axis=axis, keepdims=True), numpy.sum(x, axis=axis, keepdims=True))
    assert math.isclose(pnp.sum(numpy.full(1000, 0.1)), 100.0, rel_tol=1e-12)
