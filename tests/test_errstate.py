"""np.errstate and NumPy's FP warnings hold for the element-wise kernels called directly: the same
warnings, errors, callbacks and log lines as the NumPy twin, whichever thread computed the element
(the workers' FP flags are merged into the caller's, parallel.cpp)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import pykernels as pk
from pykernels import _core
from pykernels.reference import OPS as _ALL_OPS

# The ops whose twin's flags are IEEE arithmetic or compares (bind_elementwise.cpp, reports_fp_errors):
# add, subtract, multiply report; the compares and sign-bit ops report nothing, as NumPy's twins.
# The vector-math ops (exp, log, tanh, sigmoid): tests/test_errstate_vmath.py.
OPS = [op for op in _ALL_OPS
       if op.name in ("add", "subtract", "multiply", "maximum", "relu", "relu_backward", "negative", "absolute")]

# Big enough that 2 threads split it into several chunks: an element in any chunk may be a worker's.
BIG = 1 << 19
THREADS = [1, 2]

F32 = np.finfo(np.float32)
F64 = np.finfo(np.float64)


def _specials(dtype):
    f = np.finfo(dtype)
    # (x1, x2) pairs: overflow in + - *, inf - inf / 0 * inf (invalid), underflow in *, NaN (quiet),
    # and plain values.
    return [(f.max, f.max), (f.max, -f.max), (np.inf, -np.inf), (0.0, np.inf), (f.tiny, f.tiny),
            (np.nan, 1.0), (1.0, np.nan), (2.0, 3.0), (-0.0, 0.0), (np.inf, np.inf)]


def _arrays(dtype, pair, n, pos):
    a = np.ones(n, dtype)
    b = np.ones(n, dtype)
    a[pos] = pair[0]
    b[pos] = pair[1]
    return a, b


def _numpy_args(op, a, b):
    return (a, b) if op.nargs == 2 else (a,)


def _outcome(fn, args, mode):
    """What np.errstate(all=mode) makes of fn(*args): warnings, the error, calls or log lines."""
    calls = []

    class Log:
        def write(self, s):
            calls.append(s)

    handler = (lambda kind, flag: calls.append((kind, flag))) if mode == "call" else Log()
    with warnings.catch_warnings(record=True) as w, np.errstate(all=mode, call=handler):
        warnings.simplefilter("always")
        try:
            res = fn(*args)
            err = None
        except FloatingPointError as e:
            res, err = None, str(e)
    return [(x.category, str(x.message)) for x in w], err, calls, res


@pytest.fixture(params=THREADS, ids=lambda t: f"{t}thr")
def threads(request):
    with pk.threads(request.param):
        yield request.param


@pytest.mark.parametrize("mode", ["ignore", "warn", "raise", "call", "log"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("op", OPS, ids=lambda o: o.name)
def test_errstate_matches_numpy(op, dtype, mode, threads):
    n = BIG
    for pair in _specials(dtype):
        for pos in (0, n // 3, n - 1):  # the first, a middle and the last chunk
            a, b = _arrays(dtype, pair, n, pos)
            args = _numpy_args(op, a, b)
            expected = _outcome(op.ref, args, mode)
            got = _outcome(op.pk_fn, args, mode)
            assert got[:3] == expected[:3], (op.name, pair, pos, got[:3], expected[:3])


def test_overflow_computed_by_a_worker_is_reported():
    """With 2 threads, an overflow in each chunk in turn: every run warns, and workers ran chunks."""
    x = np.ones(BIG, np.float32)
    before = _core._thread_pool_counters()
    with pk.threads(2):
        for pos in range(0, BIG, BIG // 16):
            x[:] = 1
            x[pos] = F32.max
            with pytest.warns(RuntimeWarning, match="^overflow encountered in multiply$"):
                pk.multiply(x, x)
            with np.errstate(over="raise"), pytest.raises(FloatingPointError, match="overflow encountered in multiply"):
                pk.multiply(x, x)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                x[pos] = 1
                pk.multiply(x, x)  # no stale flag from the previous call
    after = _core._thread_pool_counters()
    if pk.get_num_threads() and after["regions"] > before["regions"]:
        assert after["worker_chunks"] >= before["worker_chunks"]


def test_no_warning_when_numpy_gives_none():
    x = np.full(BIG, np.nan, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pk.maximum(x, 0.0)
        pk.relu(x)
        pk.relu_backward(x, x)
        pk.add(x, x)


def test_out_and_scalar_paths():
    x = np.full(10, F64.max)
    out = np.empty(10)
    with pytest.warns(RuntimeWarning, match="overflow encountered in add"):
        pk.add(x, x, out=out)
    with pytest.warns(RuntimeWarning, match="overflow encountered in multiply"):
        pk.multiply(F64.max, x[0])
    with np.errstate(over="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        pk.multiply(x, x)


def test_flags_of_the_caller_are_not_reported_twice():
    # A flag left over from earlier work is cleared before the kernel, as NumPy clears before its loop.
    with np.errstate(over="ignore"):
        np.float64(F64.max) * 2  # sets the flag in this thread, ignored
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pk.add(np.ones(4), np.ones(4))
