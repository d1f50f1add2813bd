"""Keras-compatible weight initializers (keras/src/initializers/random_initializers.py).

``glorot_uniform``: U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)) (Keras's default for Dense);
``glorot_normal`` / ``he_normal``: truncated normal (cut at 2 stddev) with stddev
sqrt(2 / (fan_in + fan_out)) / 0.87962566103423978 resp. sqrt(2 / fan_in) / 0.8796...;
``he_uniform``: limit sqrt(6 / fan_in); ``zeros``, ``ones``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

# Keras divides by the stddev of a unit normal truncated to [-2, 2] so the result has the wanted stddev.
_TRUNC_STD = 0.87962566103423978


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    return shape[0], shape[1]


def _truncated_normal(rng: np.random.Generator, std: float, shape) -> np.ndarray:
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2.0
    while bad.any():  # resample outside 2 stddev, as tf.random.truncated_normal
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2.0
    return out * std


def glorot_uniform(shape, rng, dtype=np.float32):
    fan_in, fan_out = _fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def glorot_normal(shape, rng, dtype=np.float32):
    fan_in, fan_out = _fans(shape)
    return _truncated_normal(rng, np.sqrt(2.0 / (fan_in + fan_out)) / _TRUNC_STD, shape).astype(dtype)


def he_uniform(shape, rng, dtype=np.float32):
    fan_in, _ = _fans(shape)
    limit = np.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def he_normal(shape, rng, dtype=np.float32):
    fan_in, _ = _fans(shape)
    return _truncated_normal(rng, np.sqrt(2.0 / fan_in) / _TRUNC_STD, shape).astype(dtype)


def zeros(shape, rng=None, dtype=np.float32):
    return np.zeros(shape, dtype=dtype)


def ones(shape, rng=None, dtype=np.float32):
    return np.ones(shape, dtype=dtype)


_BY_NAME: dict[str, Callable] = {
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "zeros": zeros,
    "ones": ones,
}


def _takes_rng(f: Callable) -> bool:
    """True for pykernels' convention f(shape, rng, dtype); False for Keras's f(shape, dtype=None)."""
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):  # no signature to read (a builtin): assume ours
        return True
    if any(p.name == "rng" for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 3 or any(p.kind == p.VAR_POSITIONAL for p in params)


def get(init: str | Callable) -> Callable:
    """An initializer by Keras name, or a callable: ``f(shape, rng, dtype) -> ndarray`` (pykernels's
    convention, given the model's seeded generator) or Keras's ``f(shape, dtype=None)`` (a Keras
    initializer object or a function of that signature), whose result is converted to the dtype.

    >>> init = get(lambda shape, dtype=None: np.full(shape, 0.5))
    >>> init((2, 2), np.random.default_rng(0), np.float32).dtype
    dtype('float32')
    """
    if callable(init):
        if _takes_rng(init):
            return init
        keras_style = init
        return lambda shape, rng=None, dtype=np.float32: np.asarray(keras_style(shape, dtype=np.dtype(dtype).name),
                                                                    dtype=dtype)
    try:
        return _BY_NAME[init]
    except KeyError:
        raise ValueError(f"unknown initializer {init!r}; use one of {sorted(_BY_NAME)} or a callable") from None
