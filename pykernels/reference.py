"""NumPy reference of the element-wise and training kernels (the tests' oracle and ``backend="numpy"``).

Each function has the signature of its C++ counterpart in :mod:`pykernels._core` (same argument
names, same ``out=``-style buffers, same in-place contract), written in plain NumPy so that a model
runs unchanged on either backend::

    >>> import numpy as np
    >>> from pykernels import reference as ref
    >>> x = np.array([[1.0, -2.0]], np.float32); W = np.eye(2, dtype=np.float32)
    >>> ref.dense(x, W, np.zeros(2, np.float32), activation="relu")
    array([[1., 0.]], dtype=float32)

The element-wise kernels are listed once, in :data:`OPS`: one :class:`OpInfo` row per kernel with
the NumPy expression it must reproduce bit for bit (broadcasting, NEP 50 dtype promotion, ``out=``)::

    >>> [op.name for op in ref.OPS]
    ['add', 'subtract', 'multiply', 'maximum', 'relu', 'relu_backward', 'negative', 'absolute', 'sigmoid_backward', 'tanh_backward', 'minimum']
    >>> op = ref.OPS[4]
    >>> op.reference(np.float32([-1.5, 2.0]))
    array([0., 2.], dtype=float32)

The optimizer updates transcribe Keras 3 (keras/src/optimizers/{sgd,rmsprop,adam,adagrad}.py)
operation by operation, in the parameter's dtype (Python floats are weak scalars under NEP 50, so
float32 stays float32).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _core

__all__ = [
    "BINARY_OPS",
    "OPS",
    "OpInfo",
    "adagrad_update",
    "adam_alpha",
    "adam_update",
    "absolute",
    "add",
    "exp",
    "log",
    "log_softmax",
    "log_softmax_backward",
    "tanh",
    "tanh_backward",
    "dense",
    "dense_backward",
    "matmul",
    "maximum",
    "minimum",
    "multiply",
    "negative",
    "relu",
    "relu_backward",
    "rmsprop_update",
    "sgd_update",
    "sigmoid",
    "sigmoid_backward",
    "softmax",
    "softmax_backward",
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
    "subtract",
]

# ---- element-wise -----------------------------------------------------------------------------------
# The binary kernels are the NumPy ufuncs themselves: same broadcasting, promotion and out= rules.
add = np.add
subtract = np.subtract
multiply = np.multiply
maximum = np.maximum
minimum = np.minimum
negative = np.negative  # flips the sign bit, NaN included
absolute = np.absolute  # clears the sign bit, NaN included


def relu(x, out=None):
    """``np.maximum(x, 0.0)``: NaN propagates, -0.0 becomes +0.0, a float32 input stays float32."""
    return np.maximum(x, 0.0, out=out)


def relu_backward(dout, x, out=None):
    """``dout`` where ``x > 0``, else +0.0 (NaN in ``dout`` is dropped where ``x <= 0``), with the
    broadcasting and dtype promotion of a binary ufunc; a NumPy scalar for 0-d operands."""
    dt = np.result_type(dout, x)
    r = np.where(np.asarray(x) > 0, np.asarray(dout, dtype=dt), dt.type(0)).astype(dt, copy=False)
    if out is not None:
        np.copyto(out, r, casting="same_kind")
        return out
    return r[()] if r.ndim == 0 else r


@dataclass(frozen=True)
class OpInfo:
    """One element-wise kernel: its name, the native function, the NumPy reference it must match
    bit for bit, and its number of array arguments."""

    name: str
    pk_fn: Callable[..., Any]
    ref: Callable[..., Any]
    nargs: int

    def __repr__(self) -> str:
        return self.name

    def reference(self, *args):
        """The reference result, without NumPy's floating-point warnings (overflow, NaN, ...)."""
        with np.errstate(all="ignore"):
            return self.ref(*args)


#: Every element-wise kernel, one row each.
OPS = [
    OpInfo("add", _core.add, add, 2),
    OpInfo("subtract", _core.subtract, subtract, 2),
    OpInfo("multiply", _core.multiply, multiply, 2),
    OpInfo("maximum", _core.maximum, maximum, 2),
    OpInfo("relu", _core.relu, relu, 1),
    OpInfo("relu_backward", _core.relu_backward, relu_backward, 2),
    OpInfo("negative", _core.negative, negative, 1),
    OpInfo("absolute", _core.absolute, absolute, 1),
    OpInfo("sigmoid_backward", _core.sigmoid_backward, lambda dy, y: sigmoid_backward(dy, y), 2),
    OpInfo("tanh_backward", _core.tanh_backward, lambda dy, y: tanh_backward(dy, y), 2),
    OpInfo("minimum", _core.minimum, minimum, 2),
]
#: The rows of :data:`OPS` with two array arguments.
BINARY_OPS = [op for op in OPS if op.nargs == 2]


# ---- matrix products and layers ---------------------------------------------------------------------
_ACTIVATIONS = (None, "relu")


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` (2-d), into ``out`` when given."""
    return np.matmul(a, b, out=out)


def dense(x, W, b=None, activation=None, out=None):
    """``activation(x @ W + b)`` with activation None or ``"relu"``; x (M,K), W (K,N), b (N,)."""
    if activation not in _ACTIVATIONS:
        raise ValueError(f"dense: activation must be None or 'relu', got {activation!r}")
    y = np.matmul(x, W, out=out)
    if b is not None:
        np.add(y, b, out=y)
    if activation == "relu":
        np.maximum(y, 0, out=y)
    return y


def dense_backward(dy, x, W, y=None, activation=None, need_dx=True, dx=None, dW=None, db=None):
    """Backward of :func:`dense`: returns ``(dx, dW, db)`` (dx None when ``need_dx`` is False).

    With ``activation="relu"``, ``y`` (the forward output) gives the mask (relu'(0) = 0).
    dW = x.T @ dz, db = dz.sum(0), dx = dz @ W.T, where dz = dy masked. Outputs are overwritten.
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(f"dense_backward: activation must be None or 'relu', got {activation!r}")
    if activation == "relu":
        if y is None:
            raise ValueError("dense_backward: activation='relu' needs y (the forward output)")
        dz = np.where(y > 0, dy, dy.dtype.type(0))
    else:
        dz = dy
    dW = np.matmul(x.T, dz, out=dW)
    db = np.sum(dz, axis=0, out=db)
    dxr = np.matmul(dz, W.T, out=dx) if need_dx else None
    return dxr, dW, db


def exp(x, out=None):
    """``np.exp`` (the twin of :func:`pykernels.exp`, which is within 1 ULP of the exact result)."""
    return np.exp(x, out=out)


def log(x, out=None):
    """``np.log``."""
    return np.log(x, out=out)


def tanh(x, out=None):
    """``np.tanh``."""
    return np.tanh(x, out=out)


def _in_result_type(dout, y):
    dt = np.result_type(dout, y)
    return np.asarray(dout, dtype=dt), np.asarray(y, dtype=dt), dt


def _finish(r, out):
    if out is not None:
        np.copyto(out, r, casting="same_kind")
        return out
    return r[()] if r.ndim == 0 else r


def tanh_backward(dout, y, out=None):
    """``dout * (1 - y * y)`` with ``y`` the tanh output, in the promoted dtype (a binary ufunc's
    broadcasting and promotion; a NumPy scalar for 0-d operands)."""
    d, t, dt = _in_result_type(dout, y)
    return _finish(np.asarray(d * (dt.type(1) - t * t)), out)


def sigmoid(x, out=None):
    """``1 / (1 + exp(-x))``, evaluated without overflow warnings for large |x|."""
    out = np.empty_like(x) if out is None else out
    pos = x >= 0
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(x))
    np.divide(np.where(pos, 1, e), 1 + e, out=out)
    return out


def sigmoid_backward(dout, y, out=None):
    """``dout * (y * (1 - y))`` with ``y`` the sigmoid output, in the promoted dtype (as
    :func:`tanh_backward`)."""
    d, t, dt = _in_result_type(dout, y)
    return _finish(np.asarray(d * (t * (dt.type(1) - t))), out)


def softmax(x, axis=-1, out=None):
    """Softmax along ``axis`` (max-shifted): NumPy's five passes (max, subtract, exp, sum, divide).
    An all -inf row gives NaN."""
    with np.errstate(invalid="ignore"):
        m = x.max(axis=axis, keepdims=True) if x.size else 0
        out = np.subtract(x, m, out=out)
        np.exp(out, out=out)
        out /= out.sum(axis=axis, keepdims=True)
    return out


def log_softmax(x, axis=-1, out=None):
    """``x - max - log(sum(exp(x - max)))`` along ``axis``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        m = x.max(axis=axis, keepdims=True) if x.size else 0
        out = np.subtract(x, m, out=out)
        out -= np.log(np.exp(out).sum(axis=axis, keepdims=True))
    return out


def softmax_backward(dout, y, axis=-1, out=None):
    """Backward of the softmax along ``axis``: ``y * (dout - sum(dout*y, axis))``."""
    s = np.sum(dout * y, axis=axis, keepdims=True)
    out = np.subtract(dout, s, out=out)
    out *= y
    return out


def log_softmax_backward(dout, y, axis=-1, out=None):
    """Backward of the log-softmax from its output ``y``: ``dout - exp(y) * sum(dout, axis)``."""
    s = np.sum(dout, axis=axis, keepdims=True)
    return np.subtract(dout, np.exp(y) * s, out=out)


def _targets(labels, N, C, fn):
    labels = np.asarray(labels)
    if labels.ndim == 1:
        if labels.dtype.kind not in "iu":
            raise TypeError(f"{fn}: sparse labels must be integers (class indices), got dtype {labels.dtype}")
        if labels.shape[0] != N:
            raise ValueError(f"{fn}: labels has shape {labels.shape} but logits has {N} rows")
        bad = np.flatnonzero((labels < 0) | (labels >= C))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"label {int(labels[i])} at index {i} is out of range for {C} classes "
                f"(expected 0 <= label < {C})"
            )
        return labels, None
    if labels.ndim == 2:
        if labels.shape != (N, C):
            raise ValueError(f"{fn}: targets have shape {labels.shape} but logits has shape {(N, C)}")
        return None, labels
    raise ValueError(f"{fn}: labels must be (N,) class indices or (N, C) targets, got shape {labels.shape}")


def _log_softmax64(logits):
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def softmax_cross_entropy(logits, labels, *, probs=None, dlogits=None, dloss=1.0) -> float:
    """Mean softmax cross-entropy (float64 maths); writes softmax(logits) into ``probs`` and the
    gradient ``dloss * (softmax - onehot) / N`` into ``dlogits`` when given."""
    logits = np.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"softmax_cross_entropy: logits must be 2-d (N, C), got shape {logits.shape}")
    N, C = logits.shape
    sparse, dense_t = _targets(labels, N, C, "softmax_cross_entropy")
    ls = _log_softmax64(logits)
    if probs is not None:
        probs[...] = np.exp(ls)
    if dlogits is not None:
        g = np.exp(ls)
        if sparse is not None:
            g[np.arange(N), sparse] -= 1.0
        else:
            g -= dense_t
        g *= dloss / max(N, 1)
        dlogits[...] = g  # after every read of logits: dlogits may be logits itself
    if N == 0:
        return float("nan")
    if sparse is not None:
        return float(-ls[np.arange(N), sparse].mean())
    return float(-(dense_t.astype(np.float64) * ls).sum(axis=1).mean())


def softmax_cross_entropy_backward(logits, labels, *, dloss=1.0, dlogits=None):
    """``dloss * (softmax(logits) - onehot) / N`` (float64 maths, cast to the logits' dtype)."""
    logits = np.asarray(logits)
    N, C = logits.shape
    sparse, dense_t = _targets(labels, N, C, "softmax_cross_entropy_backward")
    p = np.exp(_log_softmax64(logits))
    if sparse is not None:
        p[np.arange(N), sparse] -= 1.0
    else:
        p -= dense_t
    p *= dloss / max(N, 1)
    if dlogits is None:
        return p.astype(logits.dtype)
    dlogits[...] = p
    return dlogits


# ---- optimizers: Keras 3 formulas, in place ---------------------------------------------------------


def sgd_update(param, grad, *, learning_rate, momentum=0.0, velocity=None, nesterov=False) -> None:
    """keras/src/optimizers/sgd.py: ``m = momentum*m - lr*g; w += m`` (nesterov ``w += momentum*m - lr*g``)."""
    t = param.dtype.type
    lr, mo = t(learning_rate), t(momentum)
    if momentum == 0:
        param -= lr * grad
        return
    velocity[...] = velocity * mo - grad * lr
    if nesterov:
        param += velocity * mo - grad * lr
    else:
        param += velocity


def rmsprop_update(param, grad, velocity, *, learning_rate=1e-3, rho=0.9, epsilon=1e-7, momentum=0.0,
                   momentums=None) -> None:
    """keras/src/optimizers/rmsprop.py: ``v = rho*v + (1-rho)*g**2; w -= lr*g/sqrt(v + eps)``."""
    t = param.dtype.type
    lr, r, eps = t(learning_rate), t(rho), t(epsilon)
    velocity[...] = r * velocity + t(1 - rho) * np.square(grad)
    increment = (lr * grad) / np.sqrt(velocity + eps)
    if momentum > 0:
        momentums[...] = t(momentum) * momentums + increment
        param -= momentums
    else:
        param -= increment


def adam_update(param, grad, m, v, *, alpha, beta_1=0.9, beta_2=0.999, epsilon=1e-7, vhat=None) -> None:
    """keras/src/optimizers/adam.py: ``m += (g-m)*(1-b1); v += (g**2-v)*(1-b2); w -= m*alpha/(sqrt(v)+eps)``."""
    t = param.dtype.type
    m += (grad - m) * t(1 - beta_1)
    v += (np.square(grad) - v) * t(1 - beta_2)
    vv = v
    if vhat is not None:
        np.maximum(vhat, v, out=vhat)
        vv = vhat
    param -= (m * t(alpha)) / (np.sqrt(vv) + t(epsilon))


def adam_alpha(learning_rate: float, beta_1: float, beta_2: float, step: int) -> float:
    """Keras's bias-corrected step size for step ``step`` (1-based): ``lr*sqrt(1-b2**t)/(1-b1**t)``."""
    return learning_rate * np.sqrt(1 - beta_2**step) / (1 - beta_1**step)


def adagrad_update(param, grad, accumulator, *, learning_rate=1e-3, epsilon=1e-7) -> None:
    """keras/src/optimizers/adagrad.py: ``acc += g**2; w -= lr*g / sqrt(acc + eps)``."""
    t = param.dtype.type
    accumulator += np.square(grad)
    param -= (t(learning_rate) * grad) / np.sqrt(accumulator + t(epsilon))
