"""pykernels.patch_numpy(): NumPy's float32/float64 loops of add, subtract, multiply, maximum, minimum and
matmul replaced by the kernels. Under the patch NumPy's results are unchanged (bit for bit for the
element-wise ops; matmul within the GEMM tolerance), reductions keep NumPy's order, errstate holds,
and patch/unpatch is reference-counted and thread-safe. NumPy's own test modules run under the patch
through tests/numpy_patch_plugin.py (.ci/run)."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pykernels as pk
from pykernels import _core

UFUNCS = [np.add, np.subtract, np.multiply, np.maximum, np.minimum]
BIG = 1 << 19  # above the element-wise grain: the kernels take the call


@pytest.fixture
def patched():
    with pk.patched_numpy():
        yield
    assert not pk.numpy_is_patched()


def _stats():
    return _core._numpy_patch_stats()


def _same(x, y):
    x, y = np.asarray(x), np.asarray(y)
    assert x.dtype == y.dtype and x.shape == y.shape
    assert x.tobytes() == y.tobytes(), (x, y)


def _unpatched(fn):
    assert not pk.numpy_is_patched()
    return fn()


# ---- state ----------------------------------------------------------------------------------------


def test_patch_unpatch_refcount_and_restore():
    loops = {u.__name__: u.types for u in UFUNCS}
    assert not pk.numpy_is_patched()
    pk.patch_numpy()
    pk.patch_numpy()
    assert pk.numpy_is_patched() and _core._numpy_patch_count() == 2
    pk.unpatch_numpy()
    assert pk.numpy_is_patched()
    pk.unpatch_numpy()
    assert not pk.numpy_is_patched() and _core._numpy_patch_count() == 0
    with pytest.raises(ValueError, match="not patched"):
        pk.unpatch_numpy()
    assert {u.__name__: u.types for u in UFUNCS} == loops
    # Restored exactly: a large add no longer reaches the kernels.
    a = np.ones(BIG, np.float32)
    s0 = _stats()
    a + a
    assert _stats() == s0


def test_context_manager_unpatches_on_error():
    with pytest.raises(RuntimeError), pk.patched_numpy():
        assert pk.numpy_is_patched()
        raise RuntimeError
    assert not pk.numpy_is_patched()


def test_patch_cycles_from_threads():
    a = np.random.default_rng(0).random(BIG)
    expected = a * a + a
    errors = []

    def work():
        try:
            for _ in range(30):
                with pk.patched_numpy():
                    assert pk.numpy_is_patched()
                    _same(a * a + a, expected)
                _same(a * a + a, expected)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert not pk.numpy_is_patched() and _core._numpy_patch_count() == 0


# ---- which calls the kernels take ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ufunc", UFUNCS, ids=lambda u: u.__name__)
def test_large_calls_run_on_the_kernels(patched, ufunc, dtype):
    rng = np.random.default_rng(1)
    a = (rng.standard_normal(BIG) * 1e3).astype(dtype)
    b = (rng.standard_normal(BIG) * 1e3).astype(dtype)
    a[::97] = np.nan
    b[::89] = -0.0
    s0 = _stats()
    got = ufunc(a, b)
    s1 = _stats()
    assert s1["taken"] == s0["taken"] + 1
    assert s1["matmul_taken"] == s0["matmul_taken"]
    pk.unpatch_numpy()
    try:
        _same(got, ufunc(a, b))
    finally:
        pk.patch_numpy()


def test_small_calls_and_reductions_stay_numpy(patched):
    a = np.random.default_rng(2).random(BIG).astype(np.float32)
    s0 = _stats()
    a[:100] + a[:100]
    a.sum()
    np.add.reduce(a)
    a.reshape(512, -1).sum(axis=0)
    s1 = _stats()
    assert s1["taken"] == s0["taken"]
    pk.unpatch_numpy()
    try:
        expected = (a.sum(), np.add.reduce(a), a.reshape(512, -1).sum(axis=0), np.add.accumulate(a))
    finally:
        pk.patch_numpy()
    _same(a.sum(), expected[0])
    _same(np.add.reduce(a), expected[1])
    _same(a.reshape(512, -1).sum(axis=0), expected[2])
    _same(np.add.accumulate(a), expected[3])  # out overlaps in1 one element behind: NumPy's loop


def test_matmul_on_the_kernels(patched):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((100, 784)).astype(np.float32)
    W = rng.standard_normal((784, 100)).astype(np.float32)
    s0 = _stats()
    got = x @ W
    s1 = _stats()
    assert s1["taken"] == s0["taken"] + 1
    assert s1["matmul_taken"] == s0["matmul_taken"] + 1
    np.testing.assert_allclose(got, pk.matmul(x, W), rtol=0, atol=0)
    stack = rng.standard_normal((5, 30, 40))
    np.testing.assert_allclose(np.matmul(stack, stack.transpose(0, 2, 1)),
                               pk.matmul(stack, stack.transpose(0, 2, 1)), rtol=1e-12)
    # 1-d operands, strided views, out=
    v = rng.standard_normal(784).astype(np.float32)
    np.testing.assert_allclose(v @ W, pk.matmul(v, W), rtol=1e-5, atol=1e-4)
    out = np.empty((100, 100), np.float32, order="F")
    np.matmul(x, W, out=out)
    np.testing.assert_allclose(out, pk.matmul(x, W), rtol=0, atol=0)
    xs = x[::2, ::2]
    Ws = W[::2, ::3]
    np.testing.assert_allclose(xs @ Ws, pk.matmul(xs, Ws), rtol=1e-5, atol=1e-4)


# ---- differential: NumPy patched vs unpatched on generated arrays ----------------------------------

_DTYPES = st.sampled_from([np.float32, np.float64, np.int32, np.int64, np.bool_, np.complex128, np.float16])


@st.composite
def _operands(draw):
    dtype_a = draw(_DTYPES)
    dtype_b = draw(st.one_of(st.just(dtype_a), _DTYPES))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6))
    bshape = draw(hnp.broadcastable_shapes(shape, min_dims=0, max_dims=3, min_side=0, max_side=6))
    elems = st.one_of(st.floats(-1e30, 1e30), st.sampled_from([np.nan, np.inf, -np.inf, -0.0, 1e-40]))

    def arr(dt, shp):
        x = draw(hnp.arrays(np.float64, shp, elements=elems))
        with np.errstate(all="ignore"):
            return x.astype(dt)

    a, b = arr(dtype_a, shape), arr(dtype_b, bshape)
    if draw(st.booleans()) and a.ndim:
        a = a[..., ::-1]
    return a, b


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=_operands(), ufunc=st.sampled_from(UFUNCS))
def test_differential_small(ops, ufunc):
    a, b = ops
    if ufunc is np.subtract and (a.dtype == np.bool_ and b.dtype == np.bool_):
        return  # NumPy refuses it either way
    with np.errstate(all="ignore"):
        expected = ufunc(a, b)
        with pk.patched_numpy():
            got = ufunc(a, b)
    _same(got, expected)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(dtype=st.sampled_from([np.float32, np.float64]), ufunc=st.sampled_from(UFUNCS),
       step=st.sampled_from([1, 2, -1, 3]), layout=st.sampled_from(["same", "bcast", "cast", "inplace", "2d"]),
       seed=st.integers(0, 2**16))
def test_differential_large(dtype, ufunc, step, layout, seed):
    rng = np.random.default_rng(seed)
    n = BIG
    a = (rng.standard_normal(n * abs(step)) * 1e30).astype(dtype)[::step]
    b = (rng.standard_normal(n * abs(step)) * 1e30).astype(dtype)[::step]
    a[rng.integers(0, n, 50)] = np.inf
    b[rng.integers(0, n, 50)] = np.nan
    if layout == "bcast":
        b = b[:1]
    elif layout == "cast":
        with np.errstate(all="ignore"):
            b = b.astype(np.float16 if dtype == np.float32 else np.float32)
    elif layout == "2d":
        a = a[: (n // 512) * 512].reshape(-1, 512)
        b = b[:512]

    def run():
        x = a.copy() if layout == "inplace" else a
        with np.errstate(all="ignore"):
            r = ufunc(x, b, out=x) if layout == "inplace" else ufunc(x, b)
            return r, np.add.reduce(r, axis=None)

    expected = run()
    with pk.patched_numpy():
        got = run()
    _same(got[0], expected[0])
    _same(got[1], expected[1])


@pytest.mark.parametrize("mode", ["ignore", "warn", "raise"])
@pytest.mark.parametrize("threads", [1, 2])
def test_errstate_under_patch(patched, mode, threads):
    a = np.ones(BIG, np.float32)
    a[-1] = 3e38
    with pk.threads(threads), np.errstate(all=mode), warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        if mode == "raise":
            with pytest.raises(FloatingPointError, match="overflow encountered in multiply"):
                a * a
        else:
            a * a
    assert [str(x.message) for x in w] == (["overflow encountered in multiply"] if mode == "warn" else [])
