"""pykernels.dask: the kernels on Dask arrays, checked against NumPy / the kernels on whole arrays.

Differential tests on generated shapes (0-size dims included), uneven chunkings (a different one per
operand, so the chunks must be unified), broadcasting, float32/float64; laziness (nothing runs
before .compute(), the tasks call this package's task functions); errors raised while the graph is
built; and a 2-process distributed.LocalCluster on 127.0.0.1 with PykernelsPlugin.
Skipped without the optional extra (`pip install ".[dask]"`).
"""

from __future__ import annotations

import math
import subprocess
import sys
import types

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

da = pytest.importorskip("dask.array", reason="the optional extra pykernels[dask] is not installed")
import dask  # noqa: E402

import pykernels as pk  # noqa: E402
import pykernels.dask as pkd  # noqa: E402
from assertions import assert_identical  # noqa: E402
from strategies import LAYOUTS, arrays, dtypes, operands, shape_pairs  # noqa: E402

BINARY = [n for n in ("add", "subtract", "multiply", "maximum", "minimum", "relu_backward", "sigmoid_backward",
                      "tanh_backward") if hasattr(pk, n)]
ROWWISE = ["softmax", "log_softmax", "softmax_backward", "log_softmax_backward"]
UNARY = [n for n in ("relu", "exp", "log", "tanh", "sigmoid", "negative", "abs", "absolute") if hasattr(pk, n)]
NUMPY_EQUIVALENT = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply, "maximum": np.maximum,
                    "minimum": np.minimum, "negative": np.negative, "abs": np.abs, "absolute": np.abs,
                    "relu": lambda x: np.maximum(x, 0.0)}


@pytest.fixture(autouse=True)
def _threaded_scheduler():
    with dask.config.set(scheduler="threads"):
        yield


# ---- strategies ---------------------------------------------------------------------------------
@st.composite
def chunks_for(draw, shape) -> tuple[tuple[int, ...], ...]:
    """Uneven chunks: every dimension cut at up to 3 random places."""
    out = []
    for n in shape:
        if n <= 1:
            out.append((n,))
            continue
        cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=3)))
        pts = [0, *cuts, n]
        out.append(tuple(b - a for a, b in zip(pts, pts[1:])))
    return tuple(out)


@st.composite
def dask_operand(draw, shape, dtype, kind="finite", allow_scalars=True):
    """(dask-or-scalar operand, its NumPy value)."""
    v = draw(operands(shape, dtype, kind=kind, allow_scalars=allow_scalars))
    if not isinstance(v, np.ndarray):
        return v, v
    if draw(st.booleans()) and v.ndim and allow_scalars:  # sometimes a NumPy array mixed with Dask arrays
        return v, v
    return da.from_array(v, chunks=draw(chunks_for(v.shape))), v


@st.composite
def moderate_arrays(draw, dtype, shape, layouts=("contiguous",)):
    """Arrays of values in [-1e3, 1e3] (no overflow in products and sums; zeros and subnormals
    included); layouts from strategies.arrays."""
    a = draw(arrays(dtype, shape, layouts=layouts))
    return np.clip(np.nan_to_num(a), -1e3, 1e3).astype(dtype) if a.size else a


def levels(nblocks: int) -> int:
    """An upper bound on the levels of a Dask reduction tree over `nblocks` blocks (split_every >= 2)."""
    return math.ceil(math.log2(max(2, nblocks)))


# ---- element-wise --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", BINARY)
@given(data=st.data(), pair=shape_pairs, dtype_a=dtypes, dtype_b=dtypes)
def test_binary_bit_identical(name, data, pair, dtype_a, dtype_b):
    (sa, sb) = pair.input_shapes
    xa, a = data.draw(dask_operand(sa, dtype_a, kind="special"))
    xb, b = data.draw(dask_operand(sb, dtype_b, kind="special"))
    assume(isinstance(a, np.ndarray) or isinstance(b, np.ndarray) or isinstance(a, float) or isinstance(b, float))
    expected = getattr(pk, name)(a, b)
    result = getattr(pkd, name)(xa, xb)
    if not isinstance(xa, da.Array) and not isinstance(xb, da.Array):
        assert_identical(result, expected)  # NumPy in, the kernel's own result out
        return
    assert isinstance(result, da.Array)
    assert result.dtype == np.asarray(expected).dtype and result.shape == np.shape(expected)
    assert_identical(np.asarray(result.compute()), np.asarray(expected))
    if name in NUMPY_EQUIVALENT:
        with np.errstate(all="ignore"):
            assert_identical(np.asarray(result.compute()), np.asarray(NUMPY_EQUIVALENT[name](a, b)))


@pytest.mark.parametrize("name", UNARY)
@given(data=st.data(), dtype=dtypes)
def test_unary_bit_identical(name, data, dtype):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=7))
    a = data.draw(arrays(dtype, shape, kind="special"))
    x = da.from_array(a, chunks=data.draw(chunks_for(shape)))
    result = getattr(pkd, name)(x)
    assert result.dtype == dtype and result.shape == shape
    assert_identical(np.asarray(result.compute()), np.asarray(getattr(pk, name)(a)))
    if name in NUMPY_EQUIVALENT:
        with np.errstate(all="ignore"):
            assert_identical(np.asarray(result.compute()), np.asarray(NUMPY_EQUIVALENT[name](a)))


def test_elementwise_names_follow_pykernels():
    for name in BINARY + UNARY:
        assert callable(getattr(pkd, name)) and name in pkd.__all__
    for name in ("minimum", "exp", "log", "tanh", "sigmoid", "sigmoid_backward", "tanh_backward"):
        assert hasattr(pkd, name) == hasattr(pk, name)
    for name in ROWWISE:
        assert callable(getattr(pkd, name)) and name in pkd.__all__


def test_numpy_inputs_pass_through():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert type(pkd.add(a, a)) is np.ndarray
    assert_identical(pkd.relu(a - 2), pk.relu(a - 2))
    assert_identical(pkd.dense(a, np.eye(3, dtype=np.float32)), pk.dense(a, np.eye(3, dtype=np.float32)))
    assert_identical(pkd.sum(a, axis=0), pk.sum(a, axis=0))
    assert_identical(pkd.sum_to(a, (3,)), pk.sum_to(a, (3,)))
    assert_identical(pkd.dot(a, a.T), pk.dot(a, a.T))
    y = pk.softmax(a, axis=0)
    assert type(pkd.softmax(a)) is np.ndarray
    assert_identical(pkd.softmax(a, axis=0), y)
    assert_identical(pkd.log_softmax(a, 0), pk.log_softmax(a, 0))
    assert_identical(pkd.softmax_backward(a, y, axis=0), pk.softmax_backward(a, y, axis=0))
    assert_identical(pkd.log_softmax_backward(a, y, 0), pk.log_softmax_backward(a, y, 0))
    assert_identical(pkd.sigmoid_backward(a, y), pk.sigmoid_backward(a, y))
    assert_identical(pkd.tanh_backward(a, np.float32(0.5)), pk.tanh_backward(a, np.float32(0.5)))


# ---- row-wise: softmax, log_softmax and their backward passes ----------------------------------------
def assert_rows_whole(result, chunked, axis):
    """The reduced axis in one block; every other axis keeps the input's chunks."""
    ax = axis % chunked.ndim
    assert result.numblocks[ax] == 1
    assert all(result.chunks[i] == chunked.chunks[i] for i in range(chunked.ndim) if i != ax)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(data=st.data(), dtype=dtypes)
def test_rowwise_forward_bit_identical(name, data, dtype):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=9))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    a = data.draw(arrays(dtype, shape, kind="special"))
    x = da.from_array(a, chunks=data.draw(chunks_for(shape)))  # the reduced axis often cut
    result = getattr(pkd, name)(x, axis=axis)
    assert isinstance(result, da.Array) and result.dtype == dtype and result.shape == shape
    assert_rows_whole(result, x, axis)
    # each row computed by the same kernel as on the whole array: the same bits
    assert_identical(result.compute(), getattr(pk, name)(a, axis=axis))


@pytest.mark.parametrize("name", ["softmax_backward", "log_softmax_backward"])
@given(data=st.data(), dtype_dy=dtypes, dtype_y=dtypes)
def test_rowwise_backward_bit_identical(name, data, dtype_dy, dtype_y):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=9))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    forward = getattr(pk, name.removesuffix("_backward"))
    y = forward(data.draw(moderate_arrays(dtype_y, shape)), axis=axis)
    dy = data.draw(arrays(dtype_dy, shape))
    # dy and y chunked independently (unified, then the reduced axis made whole); sometimes one is NumPy
    xdy = da.from_array(dy, chunks=data.draw(chunks_for(shape)))
    xy = da.from_array(y, chunks=data.draw(chunks_for(shape)))
    which = data.draw(st.sampled_from(["both", "dy", "y"]))
    result = getattr(pkd, name)(xdy if which != "y" else dy, xy if which != "dy" else y, axis=axis)
    expected = getattr(pk, name)(dy, y, axis=axis)
    assert isinstance(result, da.Array) and result.dtype == expected.dtype and result.shape == shape
    assert result.numblocks[axis % len(shape)] == 1
    assert_identical(result.compute(), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rowwise_reduced_axis_split_across_chunks(dtype):
    # rows of 1000 in 7 chunks (axis -1) and of 6 in 2 (axis 0): wrong values if a kernel saw part of a row
    rng = np.random.default_rng(5)
    a = (rng.standard_normal((6, 1000)) * 30).astype(dtype)
    dy = rng.standard_normal((6, 1000)).astype(dtype)
    x = da.from_array(a, chunks=(4, 150))
    for axis in (-1, 0):
        assert x.numblocks[axis] > 1
        for name in ("softmax", "log_softmax"):
            r = getattr(pkd, name)(x, axis=axis)
            assert_rows_whole(r, x, axis)
            assert_identical(r.compute(), getattr(pk, name)(a, axis=axis))
            y = getattr(pk, name)(a, axis=axis)
            xdy, xy = da.from_array(dy, chunks=(3, 200)), da.from_array(y, chunks=(4, 150))
            rb = getattr(pkd, name + "_backward")(xdy, xy, axis=axis)
            assert_identical(rb.compute(), getattr(pk, name + "_backward")(dy, y, axis=axis))
    np.testing.assert_allclose(pkd.softmax(x).sum(axis=-1).compute(), 1.0, rtol=1e-5 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("shape", [(0,), (0, 5), (4, 0), (3, 0, 2)])
@pytest.mark.parametrize("name", ROWWISE)
def test_rowwise_zero_size(name, shape):
    a = np.zeros(shape, np.float32)
    args = (a,) if name in ("softmax", "log_softmax") else (a, a)
    for axis in range(-len(shape), len(shape)):
        r = getattr(pkd, name)(*(da.from_array(v, chunks=2) for v in args), axis=axis)
        assert r.shape == shape and r.dtype == np.float32
        assert_identical(r.compute(), getattr(pk, name)(*args, axis=axis))


def test_rowwise_lazy_and_tasks_call_pykernels():
    import pickle

    calls = []

    def counted(block):
        calls.append(block.shape)
        return block

    a = np.random.default_rng(6).standard_normal((8, 10))
    x = da.from_array(a, chunks=(4, 3)).map_blocks(counted, meta=np.empty((0, 0)))
    y = pkd.softmax(x)
    g = pkd.log_softmax_backward(x, pkd.log_softmax(x, axis=0), axis=0)
    assert calls == []
    funcs = {t.func for arr in (y, g) for t in dict(arr.__dask_graph__()).values() if getattr(t, "func", None)}
    names = {f.__name__ for f in funcs if getattr(f, "__module__", "") == "pykernels.dask"}
    assert {"_chunk_softmax", "_chunk_log_softmax", "_chunk_log_softmax_backward"} <= names
    for f in funcs:
        if getattr(f, "__module__", "") == "pykernels.dask":
            assert pickle.loads(pickle.dumps(f)) is f
    assert_identical(y.compute(), pk.softmax(a))
    assert len(calls) > 0


# ---- dense -----------------------------------------------------------------------------------------
@given(data=st.data(), dtype=dtypes, m=st.integers(0, 40), k=st.integers(0, 9), n=st.integers(0, 7),
       bias=st.booleans(), activation=st.sampled_from([None, "relu"]))
def test_dense_matches_whole_array_kernel(data, dtype, m, k, n, bias, activation):
    # C-contiguous inputs: the GEMM's rounding may depend on the input layout, and Dask hands the
    # tasks C-contiguous blocks
    x = data.draw(moderate_arrays(dtype, (m, k)))
    W = data.draw(moderate_arrays(dtype, (k, n)))
    b = data.draw(moderate_arrays(dtype, (n,))) if bias else None
    xd = da.from_array(x, chunks=(data.draw(chunks_for((m,)))[0], data.draw(st.sampled_from([k, max(1, k // 2)]))))
    Wd = da.from_array(W, chunks=data.draw(chunks_for((k, n)))) if data.draw(st.booleans()) else W
    result = pkd.dense(xd, Wd, b, activation=activation)
    assert isinstance(result, da.Array) and result.shape == (m, n) and result.dtype == dtype
    # every output row comes from one GEMM over the whole K: the same bits as the kernel on all rows
    assert_identical(result.compute(), pk.dense(x, W, b, activation=activation))


# ---- products --------------------------------------------------------------------------------------
def assert_product_within_bound(got, a, b, nblocks_k: int) -> None:
    """|got - exact| <= (K + levels + 2) (eps (|a| @ |b|) + the smallest subnormal): the rigorous bound
    of any summation order, with a rounding per level of the tree sum."""
    got = np.asarray(got)
    expected = np.matmul(a, b)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    if got.size == 0:
        return
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    exact = np.matmul(a64, b64)
    mag = np.matmul(np.abs(a64), np.abs(b64))
    k = np.shape(a)[-1]
    # + an underflow term: each product may round to the subnormal grid
    fi = np.finfo(got.dtype)
    bound = (k + levels(nblocks_k) + 2) * (fi.eps * mag + fi.smallest_subnormal)
    err = np.abs(got.astype(np.float64) - exact)
    assert np.all(err <= bound), f"max err {err.max()}, bound there {bound.flat[np.argmax(err)]}"


@given(data=st.data(), dtype_a=dtypes, dtype_b=dtypes,
       shapes=hnp.mutually_broadcastable_shapes(signature="(m?,k),(k,n?)->(m?,n?)", max_dims=4, min_side=0,
                                                max_side=9))
def test_matmul_within_tolerance(data, dtype_a, dtype_b, shapes):
    sa, sb = shapes.input_shapes
    a = data.draw(moderate_arrays(dtype_a, sa, layouts=LAYOUTS))
    b = data.draw(moderate_arrays(dtype_b, sb, layouts=LAYOUTS))
    # a and b chunked independently: the K chunks usually differ and are unified (rechunked)
    xa = da.from_array(a, chunks=data.draw(chunks_for(sa)))
    xb = da.from_array(b, chunks=data.draw(chunks_for(sb)))
    result = pkd.matmul(xa, xb)
    assert isinstance(result, da.Array)
    nk = len(xa.chunks[-1]) + len(xb.chunks[-2] if xb.ndim > 1 else xb.chunks[0])  # >= the unified count
    assert_product_within_bound(result.compute(), a, b, nblocks_k=nk)


@given(data=st.data(), dtype=dtypes, m=st.integers(0, 12), k=st.integers(0, 12), n=st.integers(0, 12),
       nd=st.sampled_from([(2, 2), (1, 2), (2, 1), (1, 1), (0, 2), (2, 0)]))
def test_dot_within_tolerance(data, dtype, m, k, n, nd):
    sa = {0: (), 1: (k,), 2: (m, k)}[nd[0]]
    sb = {0: (), 1: (k,), 2: (k, n)}[nd[1]]
    a, b = data.draw(moderate_arrays(dtype, sa, layouts=LAYOUTS)), data.draw(moderate_arrays(dtype, sb, layouts=LAYOUTS))
    xa = da.from_array(a, chunks=data.draw(chunks_for(sa)))
    xb = da.from_array(b, chunks=data.draw(chunks_for(sb)))
    got = np.asarray(pkd.dot(xa, xb).compute())
    expected = np.dot(a, b)
    if 0 in nd:
        assert_identical(got, np.asarray(pk.dot(a, b)))  # a 0-d operand multiplies element-wise
    else:
        assert_product_within_bound(got, a, b, nblocks_k=2 * (k + 1))
    assert got.shape == np.shape(expected)


def test_matmul_tree_sums_over_k_blocks():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((30, 64)).astype(np.float32)
    b = rng.standard_normal((64, 20)).astype(np.float32)
    r = pkd.matmul(da.from_array(a, chunks=(10, 8)), da.from_array(b, chunks=(16, 20)))
    names = {k[0] if isinstance(k, tuple) else k for k in dict(r.__dask_graph__())}
    assert any(n.startswith("pykernels-matmul-sum") for n in names), names  # the tree sum layer
    assert_product_within_bound(r.compute(), a, b, nblocks_k=8)


# ---- sums ---------------------------------------------------------------------------------------------
def assert_sum_within_bound(got, x, axis, keepdims, nblocks):
    expected = np.sum(x, axis=axis, keepdims=keepdims)
    got = np.asarray(got)
    assert got.shape == np.shape(expected) and got.dtype == x.dtype
    exact = np.sum(x.astype(np.float64), axis=axis, keepdims=keepdims)  # float32 in: exact to ~1e-16
    mag = np.sum(np.abs(x.astype(np.float64)), axis=axis, keepdims=keepdims)
    eps = np.finfo(x.dtype).eps
    n = max(1, x.size // max(1, np.size(expected)))
    if x.dtype == np.float32:
        bound = (levels(nblocks) + 1) * eps * mag + 2 * n * np.finfo(np.float64).eps * mag
    else:
        bound = 2 * eps * (math.log2(n) + levels(nblocks) + 2) * mag
    err = np.abs(got.astype(np.float64) - exact)
    assert np.all(err <= bound + 1e-300), (err, bound)


@given(data=st.data(), dtype=dtypes, keepdims=st.booleans())
def test_sum_within_tolerance(data, dtype, keepdims):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=9))
    x = data.draw(moderate_arrays(dtype, shape, layouts=LAYOUTS))
    xd = da.from_array(x, chunks=data.draw(chunks_for(shape)))
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1),
                               st.lists(st.integers(0, len(shape) - 1), unique=True).map(tuple)))
    result = pkd.sum(xd, axis=axis, keepdims=keepdims, split_every=data.draw(st.sampled_from([None, 2, 3])))
    assert isinstance(result, da.Array)
    assert_sum_within_bound(result.compute(), x, axis, keepdims, xd.npartitions)


@given(data=st.data(), dtype=dtypes, pair=shape_pairs)
def test_sum_to_within_tolerance(data, dtype, pair):
    # sum_to(broadcast result, an input shape): the backward of that broadcast
    target, full = pair.input_shapes[0], pair.result_shape
    x = data.draw(moderate_arrays(dtype, full, layouts=LAYOUTS))
    xd = da.from_array(x, chunks=data.draw(chunks_for(full)))
    result = pkd.sum_to(xd, target)
    assert result.shape == target
    expected = pk.sum_to(x, target)
    lead = len(full) - len(target)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(target) if s == 1 and full[lead + i] != 1)
    got = np.asarray(result.compute())
    assert got.shape == expected.shape and got.dtype == expected.dtype
    kept = np.sum(x, axis=axes, keepdims=True) if axes else x
    assert_sum_within_bound(got.reshape(kept.shape), x, axes, True, xd.npartitions)


# ---- laziness and the tasks' functions ----------------------------------------------------------
def test_lazy_until_compute_and_tasks_call_pykernels():
    calls = []

    def counted(block):
        calls.append(block.shape)
        return block

    rng = np.random.default_rng(2)
    a = rng.standard_normal((40, 12)).astype(np.float32)
    W = rng.standard_normal((12, 5)).astype(np.float32)
    x = da.from_array(a, chunks=(10, 12)).map_blocks(counted, meta=np.empty((0, 0), np.float32))
    y = pkd.sum(pkd.relu(pkd.add(pkd.dense(x, W, np.ones(5, np.float32), "relu"), 1.0)), axis=0)
    z = pkd.matmul(x, W)
    assert calls == []  # graphs built, nothing computed
    funcs = set()
    for arr in (y, z):
        for task in dict(arr.__dask_graph__()).values():
            if getattr(task, "func", None) is not None:
                funcs.add(task.func)
    names = {(f.__module__, f.__name__) for f in funcs if getattr(f, "__module__", "") == "pykernels.dask"}
    assert {"_chunk_dense", "_chunk_add", "_chunk_relu", "_chunk_sum", "_chunk_matmul"} <= {n for _, n in names}
    import pickle

    for f in funcs:
        if f.__module__ == "pykernels.dask":
            assert pickle.loads(pickle.dumps(f)) is f  # by reference: what distributed sends
    np.testing.assert_allclose(y.compute(), np.maximum(np.maximum(a @ W + 1, 0) + 1, 0).sum(0), rtol=1e-5)
    assert len(calls) >= 4


# ---- errors, raised while the graph is built ------------------------------------------------------
def _int_dask():
    return da.arange(12, chunks=5).reshape(3, 4)


@pytest.mark.parametrize("call", [
    lambda x, f: pkd.add(x, f), lambda x, f: pkd.add(f, x), lambda x, f: pkd.relu(x),
    lambda x, f: pkd.dense(x, f.T), lambda x, f: pkd.dot(x, f.T), lambda x, f: pkd.matmul(f, x.T),
    lambda x, f: pkd.sum(x), lambda x, f: pkd.sum_to(x, (4,)),
    lambda x, f: pkd.softmax(x), lambda x, f: pkd.log_softmax(x, axis=0),
    lambda x, f: pkd.softmax_backward(f, x), lambda x, f: pkd.log_softmax_backward(x, f),
    lambda x, f: pkd.softmax_backward(f.compute(), x), lambda x, f: pkd.sigmoid_backward(x, f),
    lambda x, f: pkd.tanh_backward(f, x),
], ids=["add_x1", "add_x2", "relu", "dense", "dot", "matmul", "sum", "sum_to", "softmax", "log_softmax",
        "softmax_backward_y", "log_softmax_backward_dy", "softmax_backward_numpy_dy", "sigmoid_backward",
        "tanh_backward"])
def test_int_dtype_refused(call):
    f = da.ones((3, 4), chunks=2, dtype=np.float32)
    with pytest.raises(TypeError, match=r"unsupported dtype int64 for argument"):
        call(_int_dask(), f)


def test_shape_errors_in_numpys_words():
    x = da.ones((3, 4), chunks=2)
    with pytest.raises(ValueError, match=r"could not be broadcast together with shapes \(3,4\) \(5,\)"):
        pkd.add(x, da.ones(5))
    with pytest.raises(ValueError, match=r"shapes \(3,4\) and \(3,4\) not aligned: 4 \(dim 1\) != 3 \(dim 0\)"):
        pkd.dot(x, x)
    with pytest.raises(ValueError, match=r"mismatch in its core dimension 0"):
        pkd.matmul(x, x)
    with pytest.raises(ValueError, match="not aligned"):
        pkd.dense(x, np.ones((3, 2)))
    with pytest.raises(ValueError, match="activation"):
        pkd.dense(x, np.ones((4, 2)), activation="gelu")
    with pytest.raises(ValueError, match=r"b must have shape \(2,\)"):
        pkd.dense(x, np.ones((4, 2)), np.ones(3))
    with pytest.raises(ValueError, match="cannot sum an array of shape"):
        pkd.sum_to(x, (2,))
    with pytest.raises(np.exceptions.AxisError if hasattr(np, "exceptions") else np.AxisError):
        pkd.sum(x, axis=2)
    with pytest.raises(NotImplementedError, match="use pykernels.dask.matmul"):
        pkd.dot(da.ones((2, 3, 4)), da.ones((2, 4, 3)))


@pytest.mark.parametrize("name", ROWWISE)
def test_rowwise_errors_while_building(name):
    # dimension and axis checks are the kernel's own (run on empty blocks), so the words are its words
    n_args = 2 if name.endswith("_backward") else 1
    f = getattr(pkd, name)
    x = da.ones((3, 4), chunks=2)
    with pytest.raises(ValueError, match="at least 1 dimension"):
        f(*[da.ones(())] * n_args)
    with pytest.raises(np.exceptions.AxisError if hasattr(np, "exceptions") else np.AxisError):
        f(*[x] * n_args, axis=2)
    with pytest.raises(TypeError, match="axis must be an integer"):
        f(*[x] * n_args, axis=(0, 1))
    if n_args == 2:
        with pytest.raises(ValueError, match=rf"pykernels.dask.{name}: dy has shape \(3,4\), y has \(3,5\)"):
            f(x, da.ones((3, 5), chunks=2))
        with pytest.raises(ValueError, match=r"dy has shape \(3,4\), y has \(4,\)"):
            f(x, np.ones(4))  # no broadcasting, as the kernel


def test_unknown_chunks_refused_where_chunks_must_align():
    x = da.from_array(np.arange(10.0), chunks=3)
    masked = x[x > 4]  # chunk sizes unknown (nan)
    for call in (lambda: pkd.add(masked, x[:5]), lambda: pkd.matmul(masked, masked),
                 lambda: pkd.dense(masked[:, None], np.ones((1, 2))), lambda: pkd.softmax(masked),
                 lambda: pkd.softmax_backward(masked, masked), lambda: pkd.tanh_backward(masked, x[:5])):
        with pytest.raises(ValueError, match=r"unknown chunk sizes \(nan\).*compute_chunk_sizes"):
            call()
    # rows already whole in one block: unknown sizes along the other axes need no rechunk
    a = np.arange(20.0).reshape(10, 2)
    m = da.from_array(a, chunks=(3, 2))
    m = m[m[:, 0] > 4]
    assert_identical(pkd.log_softmax(m, axis=1).compute(), pk.log_softmax(a[a[:, 0] > 4], axis=1))
    with pytest.raises(ValueError, match=r"unknown chunk sizes \(nan\) along axis 0, so its rows cannot be rechunked"):
        pkd.log_softmax(m, axis=0)


def test_misaligned_k_chunks_are_rechunked_like_da_matmul():
    # documented choice: K chunked (3,3,2) in a and (4,4) in b is unified, as da.matmul does, not refused
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((5, 8)), rng.standard_normal((8, 6))
    r = pkd.dot(da.from_array(a, chunks=(5, 3)), da.from_array(b, chunks=(4, 6)))
    assert_product_within_bound(r.compute(), a, b, nblocks_k=4)
    r = pkd.add(da.from_array(a, chunks=(2, 3)), da.from_array(a, chunks=(5, 4)))
    assert_identical(r.compute(), a + a)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_pykernels_does_not_import_dask_and_missing_extra_is_named(neutral_cwd):
    out = subprocess.run([sys.executable, "-c", "import sys, pykernels; print('dask' in sys.modules)"],
                         capture_output=True, text=True, cwd=neutral_cwd, check=True).stdout.strip()
    assert out == "False"
    out = subprocess.run([sys.executable, "-c", "import sys, pykernels.dask; print('distributed' in sys.modules)"],
                         capture_output=True, text=True, cwd=neutral_cwd, check=True).stdout.strip()
    assert out == "False"  # distributed loads only with PykernelsPlugin
    r = subprocess.run([sys.executable, "-c", "import sys; sys.modules['dask'] = None; import pykernels.dask"],
                       capture_output=True, text=True, cwd=neutral_cwd)
    assert r.returncode != 0 and 'pip install "pykernels[dask]"' in r.stderr, r.stderr[-2000:]


# ---- the worker plugin ------------------------------------------------------------------------------
def test_threads_per_task():
    assert pkd.threads_per_task(2, 2) == 1
    assert pkd.threads_per_task(2, 1) == 2
    assert pkd.threads_per_task(8, 3) == 2
    assert pkd.threads_per_task(2, 4) == 1
    assert pkd.threads_per_task(4, 0) == 4


def _fake_worker(nthreads, resources=None):
    state = types.SimpleNamespace(nthreads=nthreads, total_resources=resources or {})

    class _Scheduler:
        async def identity(self):
            return {"workers": {}}

    return types.SimpleNamespace(state=state, address="tcp://127.0.0.1:1", scheduler=_Scheduler())


def _setup(plugin, worker):
    import asyncio

    asyncio.run(plugin.setup(worker))


def test_plugin_defaults_and_resources():
    pytest.importorskip("distributed", reason="the optional extra pykernels[dask] is not installed")
    assert not pk.numpy_is_patched()
    plugin = pkd.PykernelsPlugin()
    assert plugin.patch_numpy is True and plugin.name == "pykernels"
    before = pk.get_num_threads()
    w = _fake_worker(1, {"CPU": 3})
    _setup(plugin, w)
    try:
        assert pk.get_num_threads() == 3
        assert pk.numpy_is_patched()  # patch_numpy=True by default
    finally:
        plugin.teardown(w)
    assert pk.get_num_threads() == before and not pk.numpy_is_patched()
    opt_out, w = pkd.PykernelsPlugin(patch_numpy=False, threads=2), _fake_worker(4)
    _setup(opt_out, w)
    try:
        assert pk.get_num_threads() == 2
        assert not pk.numpy_is_patched()
    finally:
        opt_out.teardown(w)
    assert pk.get_num_threads() == before
    with pytest.raises(ValueError, match="threads must be >= 1"):
        pkd.PykernelsPlugin(threads=0)


def test_plugin_teardown_undoes_only_its_own_patch():
    # the patch is reference-counted: a worker's teardown leaves a patch taken by someone else in place
    pytest.importorskip("distributed", reason="the optional extra pykernels[dask] is not installed")
    with pk.patched_numpy():
        plugin, w = pkd.PykernelsPlugin(), _fake_worker(1)
        _setup(plugin, w)
        plugin.teardown(w)
        assert pk.numpy_is_patched()
    assert not pk.numpy_is_patched()


def _maximum_operands(block_info=None):
    """A (2, rows, 1024) float32 block: two operands with NaNs (each its own places) and a 0.0 / -0.0
    pair, the same values for the same rows wherever it is made."""
    start, stop = block_info[None]["array-location"][1]
    b = np.random.default_rng(start).standard_normal((2, stop - start, 1024)).astype(np.float32)
    b[0, ::7, ::5], b[1, ::11, ::3], b[0, 1::9, 2::4], b[1, 1::9, 2::4] = np.nan, np.nan, 0.0, -0.0
    return b


@pytest.mark.timeout(90)
def test_local_cluster_two_processes_on_loopback():
    distributed = pytest.importorskip("distributed", reason="the optional extra pykernels[dask] is not installed")
    rng = np.random.default_rng(4)
    a = rng.standard_normal((1000, 64)).astype(np.float32)
    W = rng.standard_normal((64, 16)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    # OMP_NUM_THREADS=3 in the workers: the plugin, not the Nanny's default of 1, must set the count
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0", env={"OMP_NUM_THREADS": "3"}) as cluster, \
            distributed.Client(cluster) as client:
        assert set(client.run(pk.get_num_threads).values()) == {3}
        client.register_plugin(pkd.PykernelsPlugin(patch_numpy=False))
        import os

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        assert set(client.run(pk.get_num_threads).values()) == {max(1, cores // 2)}
        x = da.from_array(a, chunks=(300, 64))
        y = pkd.dense(x, W, b, activation="relu")
        z = pkd.dot(da.from_array(a, chunks=(250, 20)), da.from_array(W, chunks=(16, 8)))
        got_y, got_z = client.compute([y, z], sync=True)
        assert_identical(got_y, pk.dense(a, W, b, activation="relu"))
        assert_product_within_bound(got_z, a, W, nblocks_k=8)
        # the default, patch_numpy=True: Dask's own array code (da.matmul, x + y, da.maximum) runs on
        # the kernels in the workers
        assert set(client.run(pk.numpy_is_patched).values()) == {False}
        client.register_plugin(pkd.PykernelsPlugin(), name="pykernels-patched")
        assert set(client.run(pk.numpy_is_patched).values()) == {True}
        big = rng.standard_normal((512, 300)).astype(np.float32)
        xb = da.from_array(big, chunks=(128, 300))
        got_mm, got_add = client.compute([da.matmul(xb, da.from_array(big.T.copy(), chunks=(300, 512))),
                                          xb + xb], sync=True)
        np.testing.assert_array_equal(got_add, big + big)
        np.testing.assert_allclose(got_mm, big @ big.T, rtol=2e-5, atol=2e-4)
        stats = client.run(lambda: pk._core._numpy_patch_stats())
        # the 4 block products on the kernels' GEMM (whichever workers ran them)
        assert np.sum([s["matmul_taken"] for s in stats.values()]) >= 4, stats
        # da.maximum and x + y each alone, on blocks of 2^18 elements (smaller loop calls stay NumPy's,
        # below the kernels' parallel grain): every block call taken by the kernels, with np.maximum's
        # NaN and -0.0 rules. The operands are made in the workers, both in one block: a block sent
        # between processes may arrive misaligned, and NumPy then hands the loop buffered 8192-element
        # pieces that stay NumPy's.
        pq = da.map_blocks(_maximum_operands, chunks=((2,), (256,) * 4, (1024,)), dtype=np.float32)
        p, q = client.compute(pq, sync=True)
        for dask_expr, expected in ((da.maximum(pq[0], pq[1]), np.maximum(p, q)), (pq[0] + pq[1], p + q)):
            before = client.run(lambda: pk._core._numpy_patch_stats())
            assert_identical(client.compute(dask_expr, sync=True), expected)
            after = client.run(lambda: pk._core._numpy_patch_stats())
            assert np.sum([after[w]["taken"] - before[w]["taken"] for w in after]) >= 4, (before, after)
        client.unregister_worker_plugin("pykernels-patched")
        assert set(client.run(pk.numpy_is_patched).values()) == {False}


def test_module_docstring_example():
    import doctest

    result = doctest.testmod(pkd, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
