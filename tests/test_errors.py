"""Bad input gives a clear Python exception (NumPy's words where NumPy has them), never a crash, a
silent wrong answer or a modified input."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

import pykernels as pk
from assertions import assert_identical
from pykernels.reference import BINARY_OPS, OPS

BAD_DTYPES = [np.int64, np.int32, np.int8, np.uint8, np.bool_, np.float16, np.complex64, np.complex128,
              np.object_, "datetime64[s]", "U3"]


def _call(op, args, **kw):
    return op.pk_fn(*args[: op.nargs], **kw)


@pytest.mark.parametrize("op", OPS, ids=str)
@pytest.mark.parametrize("bad", BAD_DTYPES, ids=str)
def test_unsupported_dtype_is_type_error(op, bad):
    dt = np.dtype(bad)
    x = np.zeros(3, dtype=dt)
    good = np.ones(3)
    with pytest.raises(TypeError, match=rf"unsupported dtype {re.escape(str(dt))} for argument '(x1?|dout|dy)'.*float32, float64"):
        _call(op, [x, good])
    if op.nargs == 2:
        with pytest.raises(TypeError, match=rf"unsupported dtype {re.escape(str(dt))} for argument '(x2|x|y)'"):
            op.pk_fn(good, x)


@pytest.mark.parametrize("fn", [lambda x: pk.sum(x), lambda x: pk.sum_to(x, (1,)),
                                lambda x: pk.add_backward(x, (3,), (1,))], ids=["sum", "sum_to", "add_backward"])
@pytest.mark.parametrize("bad", [np.int64, np.bool_, np.complex128, np.object_], ids=str)
def test_unsupported_dtype_reductions(fn, bad):
    with pytest.raises(TypeError, match=rf"unsupported dtype {np.dtype(bad)}"):
        fn(np.zeros(3, dtype=bad))


@pytest.mark.parametrize("op", OPS, ids=str)
def test_lists_work_like_numpy(op):
    args = [[[1.5, -2.0, 0.0], [3.0, -0.5, 2.0]], [0.25, -1.0, 4.0]]
    expected = op.reference(*[np.asarray(a) for a in args[: op.nargs]])
    assert_identical(_call(op, args), expected)
    assert_identical(pk.sum(args[0], axis=0), np.sum(np.asarray(args[0]), axis=0))
    assert_identical(pk.sum_to(args[0], (3,)), np.sum(np.asarray(args[0]), axis=0))


def test_ragged_and_none_inputs():
    with pytest.raises(ValueError, match="inhomogeneous"):
        pk.add([[1.0], [1.0, 2.0]], 1.0)
    with pytest.raises(TypeError, match="'x1' is None"):
        pk.add(None, 1.0)
    with pytest.raises(TypeError, match="unsupported dtype"):
        pk.relu("abc")


@pytest.mark.parametrize("op", OPS, ids=str)
def test_readonly_out(op):
    out = np.zeros(3)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="^output array is read-only$"):
        _call(op, [np.ones(3), np.ones(3)], out=out)
    bview = np.broadcast_to(np.zeros(3), (2, 3))
    with pytest.raises(ValueError, match="read-only"):
        _call(op, [np.ones((2, 3)), np.ones(3)], out=bview)
    np.testing.assert_array_equal(out, 0.0)


@pytest.mark.parametrize("op", OPS, ids=str)
def test_out_of_another_dtype_follows_numpys_same_kind_rule(op):
    """As a ufunc: computed in the inputs' dtype, then cast into a float out of another precision
    (float16/32/64); an integer out is NumPy's TypeError and stays untouched."""
    rng = np.random.default_rng(0)
    for out_dt, in_dt in ((np.float32, np.float64), (np.float64, np.float32), (np.float16, np.float32)):
        args = [rng.standard_normal(7).astype(in_dt) for _ in range(op.nargs)]
        out, expected_out = np.full(7, np.nan, out_dt), np.full(7, np.nan, out_dt)
        assert _call(op, args, out=out) is out
        expected = op.reference(*args)
        np.copyto(expected_out, expected)
        np.testing.assert_array_equal(out, expected_out)
    out = np.zeros(3, np.int64)
    with pytest.raises(TypeError, match=r"Cannot cast ufunc output from dtype\('float64'\) to dtype\('int64'\) "
                                        r"with casting rule 'same_kind'"):
        _call(op, [np.ones(3), np.ones(3)], out=out)
    np.testing.assert_array_equal(out, 0)


@pytest.mark.parametrize("op", OPS, ids=str)
def test_wrong_shape_out(op):
    cases = [((3,), (2,)), ((2, 3), (3,)), ((2, 3), (3, 2)), ((3,), ()), ((2, 3), (1, 3))]
    for in_shape, out_shape in cases:
        out = np.zeros(out_shape)
        with pytest.raises(ValueError, match=r"non-broadcastable output operand with shape \(.*\) doesn't match the "
                                             r"broadcast shape \(.*\)"):
            _call(op, [np.ones(in_shape), np.ones(in_shape)], out=out)


def test_wrong_shape_out_message_exactly():
    with pytest.raises(ValueError, match=r"^non-broadcastable output operand with shape \(2,\) doesn't match "
                                         r"the broadcast shape \(3,\)$"):
        pk.add(np.ones(3), 1.0, out=np.empty(2))


@pytest.mark.parametrize("op", OPS, ids=str)
def test_out_not_an_array(op):
    for bad in ([0.0, 0.0, 0.0], 1.0, "x", object()):
        with pytest.raises(TypeError, match="return arrays must be of ArrayType"):
            _call(op, [np.ones(3), np.ones(3)], out=bad)


def test_out_tuple_form_and_internal_overlap():
    out = np.empty(3)
    assert pk.add(np.ones(3), 1.0, out=(out,)) is out
    with pytest.raises(ValueError, match="1-tuple"):
        pk.add(np.ones(3), 1.0, out=(out, out))
    overl = np.lib.stride_tricks.as_strided(np.zeros(3), (3,), (0,))  # writeable, zero stride
    with pytest.raises(ValueError, match="internal overlap"):
        pk.add(np.ones(3), 1.0, out=overl)


def test_bad_arguments_are_type_errors():
    with pytest.raises(TypeError):
        pk.add(np.ones(3))  # missing argument
    with pytest.raises(TypeError):
        pk.relu(np.ones(3), np.ones(3), np.ones(3))
    with pytest.raises(TypeError, match="cannot be interpreted as an integer"):
        pk.sum_to(np.ones(3), (1.5,))
    with pytest.raises(TypeError):
        pk.sum_to(np.ones(3), None)


def test_inputs_unmodified_after_errors():
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    c = x.copy()
    for call in (lambda: pk.add(x, np.ones(4)), lambda: pk.add(x, x, out=np.empty(5)),
                 lambda: pk.sum(x, axis=3), lambda: pk.sum_to(x, (4,))):
        with pytest.raises((ValueError, TypeError)):
            call()
    np.testing.assert_array_equal(x, c)


def test_nothing_crashes_on_a_bad_input_barrage(neutral_cwd):
    """Many bad calls in a subprocess: it must exit normally (no segfault/abort)."""
    script = r"""
import numpy as np, pykernels as pk
bad = [None, "s", b"b", object(), [1, "a"], np.zeros(3, int), np.zeros((2, 0)), np.zeros(()),
       np.zeros(3, complex), np.ones((1,) * 33), {"a": 1}, 1j, float("nan"), 10**400, [[1.0], [2.0, 3.0]]]
fns = [pk.add, pk.subtract, pk.multiply, pk.maximum, pk.relu_backward]
n = 0
for f in fns:
    for a in bad:
        for b in bad + [1.0, np.ones(3)]:
            for out in (None, np.empty(3), np.empty(3, np.float32), "x"):
                try:
                    f(a, b, out=out)
                except (TypeError, ValueError, OverflowError):
                    n += 1
for a in bad:
    for f in (pk.relu, pk.sum, lambda v: pk.sum_to(v, (1,)), lambda v: pk.add_backward(v, (1,), (1,))):
        try:
            f(a)
        except (TypeError, ValueError, OverflowError):
            n += 1
print("ok", n)
"""
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=neutral_cwd)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.startswith("ok")


@pytest.mark.parametrize("op", BINARY_OPS, ids=str)
def test_python_int_overflow(op):
    with pytest.raises(OverflowError):
        op.pk_fn(np.ones(2), 10**400)


def test_two_python_ints_raise_instead_of_changing_the_dtype():
    """np.add(1, 2) is an int64; pykernels computes in floats only, so it says so rather than
    silently returning float64 3.0. A float on either side is fine (NumPy gives float64 too)."""
    with pytest.raises(TypeError, match="Python ints"):
        pk.add(1, 2)
    with pytest.raises(TypeError, match="Python ints"):
        pk.maximum(True, 3)
    r = pk.add(1, 2.0)
    assert r == np.add(1, 2.0) and type(r) is type(np.add(1, 2.0))


def test_results_too_big_to_address_or_allocate():
    """Broadcasts of zero-stride views can describe results of any size: a size whose byte count
    overflows is NumPy's ValueError (before any allocation: a wrapped size would be a heap overrun),
    one that merely does not fit is NumPy's MemoryError message, not an empty one or 'std::bad_alloc'."""
    huge = np.broadcast_to(np.float64(1.0), (2**40,))
    with pytest.raises(ValueError, match=r"array is too big"):
        pk.add(huge[:, None], huge)  # (2**40, 2**40): 2**83 bytes
    with pytest.raises(ValueError, match=r"array is too big"):
        pk.matmul(np.broadcast_to(np.ones((1, 1, 1)), (2**62, 1, 1)), np.ones((1, 4)))
    with pytest.raises(MemoryError, match=r"Unable to allocate 256 TiB for an array with shape \(35184372088832,\) "
                                          r"and data type float64"):
        pk.add(np.broadcast_to(np.float64(1.0), (2**45,)), 1.0)
    with pytest.raises(MemoryError, match=r"Unable to allocate 8 TiB .* shape \(1099511627776,1,1\)"):
        pk.matmul(np.broadcast_to(np.ones((1, 1)), (2**40, 1, 1)), np.ones((1, 1)))


def test_flag_and_shape_arguments_take_what_numpy_takes():
    x = np.ones((4, 3))
    with pytest.raises(TypeError, match=r"need_dx must be a bool, got NoneType"):
        pk.dense_backward(np.ones((4, 2)), x, np.ones((3, 2)), need_dx=None)
    assert pk.dense_backward(np.ones((4, 2)), x, np.ones((3, 2)), need_dx=np.False_)[0] is None
    # a shape may be any integer NumPy takes as a shape (np.zeros(np.int64(3)))
    np.testing.assert_array_equal(pk.sum_to(np.ones((2, 3)), np.int64(3)), np.sum(np.ones((2, 3)), axis=0))
    np.testing.assert_array_equal(pk.sum_to(np.ones((2, 3)), (np.int32(1), 3)), np.full((1, 3), 2.0))


@pytest.mark.parametrize("call", [
    lambda m: pk.add(m, 1.0), lambda m: pk.relu(m), lambda m: pk.relu_backward(m, m), lambda m: pk.sum(m),
    lambda m: pk.sum_to(m, (1,)), lambda m: pk.dot(m, m), lambda m: pk.matmul(m, m),
], ids=["add", "relu", "relu_backward", "sum", "sum_to", "dot", "matmul"])
def test_masked_arrays_are_refused_not_unmasked(call):
    """Reading a masked array as its raw data would drop the mask: np.sum skips masked values, so
    pk.sum would silently disagree. A TypeError that says so instead."""
    m = np.ma.masked_array([1.0, 2.0], mask=[False, True])
    with pytest.raises(TypeError, match=r"numpy.ma.MaskedArray; .* would ignore its mask"):
        call(m)



def test_other_ndarray_subclasses_are_read_as_arrays():
    class Sub(np.ndarray):
        pass

    np.testing.assert_array_equal(pk.add(np.array([1.0, 2.0]).view(Sub), 1.0), [2.0, 3.0])


def test_masked_arrays_are_refused_by_the_training_kernels():
    m = np.ma.masked_array(np.zeros((2, 3)), mask=False)
    with pytest.raises(TypeError, match="MaskedArray"):
        pk.softmax_cross_entropy(m, np.array([0, 1]))
    with pytest.raises(TypeError, match="MaskedArray"):
        pk.softmax_cross_entropy(np.zeros((2, 3)), np.ma.masked_array([0, 1], mask=[0, 1]))
    with pytest.raises(TypeError, match="MaskedArray"):
        pk.sgd_update(np.zeros(3), np.ma.masked_array(np.ones(3)), learning_rate=0.1)
    with pytest.raises(TypeError, match="MaskedArray"):
        pk.sgd_update(np.ma.masked_array(np.zeros(3)), np.ones(3), learning_rate=0.1)
