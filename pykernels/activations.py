"""softmax / log_softmax along any axis and their backward passes, on the C++ row kernels.

The row kernels (csrc/cpu/softmax_rows.inc: softmax_rows) take C-contiguous rows; this module moves
``axis`` last (a copy only when the rows are not already contiguous), checks dtypes and ``out=``, and
writes the result back. Element-wise activations (exp, log, tanh, sigmoid and the sigmoid/tanh
backward passes) are registry ops in :mod:`pykernels._core`.

    >>> import numpy as np, pykernels as pk
    >>> pk.softmax(np.float32([[0.0, np.log(3.0)]])).round(6)  # within 1 ULP of 0.25 and 0.75
    array([[0.25, 0.75]], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from . import _core

__all__ = ["log_softmax", "log_softmax_backward", "softmax", "softmax_backward"]


def _as_float(x, fn):
    if isinstance(x, np.ndarray):
        a = x
    elif isinstance(x, (bool, int)) or (isinstance(x, (list, tuple)) and not len(x) == 0 and
                                        np.asarray(x).dtype.kind in "biu"):
        raise TypeError(f"{fn}: float32 or float64 input only, got integers")
    else:
        a = np.asarray(x, dtype=np.float64) if not isinstance(x, np.generic) else np.asarray(x)
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{fn}: float32 or float64 input only, got dtype {a.dtype}")
    return a


def _axis(axis, ndim, fn):
    if ndim == 0:
        raise ValueError(f"{fn}: needs an array of at least 1 dimension")
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{fn}: axis must be an integer, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise np.exceptions.AxisError(axis, ndim)
    return int(axis) % ndim


def _check_out(out, shape, dtype, fn):
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{fn}: out must be a NumPy array")
    if out.shape != shape:
        raise ValueError(f"{fn}: out has shape {out.shape}, expected {shape}")
    if out.dtype != dtype:
        raise TypeError(f"{fn}: out has dtype {out.dtype}, expected {dtype}")
    if not out.flags.writeable:
        raise ValueError(f"{fn}: out is read-only")
    return out


def _rows(a, ax):
    """a with axis `ax` last, C-contiguous (a view when it already is)."""
    return np.ascontiguousarray(np.moveaxis(a, ax, -1) if ax != a.ndim - 1 else a)


def _finish(res_rows, out, ax, shape):
    res = np.moveaxis(res_rows, -1, ax) if ax != len(shape) - 1 else res_rows
    if out is None:
        return res
    if res is not out:
        np.copyto(out, res)
    return out


def _forward(x, axis, out, log, fn):
    a = _as_float(x, fn)
    ax = _axis(axis, a.ndim, fn)
    out = _check_out(out, a.shape, a.dtype, fn)
    xr = _rows(a, ax)
    # The kernel writes out directly when out is the C-contiguous rows themselves or does not overlap x
    # (in place, out=x, included); otherwise through a temporary.
    if out is not None and ax == a.ndim - 1 and out.flags.c_contiguous and (
            out.ctypes.data == xr.ctypes.data or not np.may_share_memory(out, xr)):
        dst = out
    else:
        dst = np.empty(xr.shape, a.dtype)
    _core._softmax_rows(xr, dst, log)
    return _finish(dst, out, ax, a.shape)


def softmax(x, axis=-1, out=None):
    """``exp(x - max) / sum(exp(x - max))`` along ``axis`` (default the last), float32 or float64.

    One fused kernel per block of rows (max, exp, sum, scale); float32 rows take x - max as an exact
    float pair, exp in float32 (within 1 ULP), sums in float64; rows sum to 1 within a few ULPs. A
    row of large or -inf logits gives no NaN unless every logit is -inf (or +inf, or NaN): then the
    row is NaN, as NumPy's formula gives. Results do not depend on the thread count. 0-size arrays
    give 0-size results.

    >>> import numpy as np, pykernels as pk
    >>> pk.softmax(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]))
    array([[0.09003057, 0.24472847, 0.66524096],
           [0.33333333, 0.33333333, 0.33333333]])
    >>> pk.softmax(np.array([1e30, 0.0, -np.inf], np.float32))  # no overflow, no NaN
    array([1., 0., 0.], dtype=float32)
    """
    return _forward(x, axis, out, False, "softmax")


def log_softmax(x, axis=-1, out=None):
    """``x - max - log(sum(exp(x - max)))`` along ``axis``; see :func:`softmax`.

    >>> import numpy as np, pykernels as pk
    >>> pk.log_softmax(np.array([0.0, 0.0]))
    array([-0.69314718, -0.69314718])
    """
    return _forward(x, axis, out, True, "log_softmax")


def _backward(dy, y, axis, out, log, fn):
    y = _as_float(y, fn)
    dy = _as_float(dy, fn)
    if dy.shape != y.shape:
        raise ValueError(f"{fn}: dy has shape {dy.shape}, y has {y.shape}")
    dt = np.result_type(dy.dtype, y.dtype)
    ax = _axis(axis, y.ndim, fn)
    out = _check_out(out, y.shape, dt, fn)
    yr = _rows(y.astype(dt, copy=False), ax)
    dyr = _rows(dy.astype(dt, copy=False), ax)
    dst = np.empty(yr.shape, dt)
    _core._softmax_backward_rows(dyr, yr, dst, log)
    return _finish(dst, out, ax, y.shape)


def softmax_backward(dy, y, axis=-1, out=None):
    """Gradient of :func:`softmax` from its output ``y``: ``y * (dy - sum(dy * y, axis, keepdims=True))``
    (row sums in float64).

    >>> import numpy as np, pykernels as pk
    >>> y = pk.softmax(np.array([0.0, 0.0]))
    >>> pk.softmax_backward(np.array([1.0, 0.0]), y)
    array([ 0.25, -0.25])
    """
    return _backward(dy, y, axis, out, False, "softmax_backward")


def log_softmax_backward(dy, y, axis=-1, out=None):
    """Gradient of :func:`log_softmax` from its output ``y``: ``dy - exp(y) * sum(dy, axis, keepdims=True)``.

    >>> import numpy as np, pykernels as pk
    >>> y = pk.log_softmax(np.array([0.0, 0.0]))
    >>> pk.log_softmax_backward(np.array([1.0, 0.0]), y)
    array([ 0.5, -0.5])
    """
    return _backward(dy, y, axis, out, True, "log_softmax_backward")
