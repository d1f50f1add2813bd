"""Argument recipes: plain Python literals that describe hostile arguments, and ``build`` to make them.

A call is ``{"fn": name, "args": [recipe, ...], "kwargs": {name: recipe}, "isa": str, "threads": int,
"stream": int}``. Recipes are literals (tuples, dicts, numbers, strings), so a failing call is saved
as a runnable snippet that rebuilds exactly the same arguments, and ``build`` can make a second,
independent copy of every argument for the NumPy oracle (aliasing between arguments included).

Array recipes ``("arr", dtype, shape, layout, fill, seed)`` place the array inside a larger uint8
buffer with random guard bytes around it (``Built.bases``), so the oracle can check every byte of
the buffer, not only the array's elements. Layouts: c, f, rev (negative strides), step, mixed
(permuted, some reversed), unaligned, swapped (non-native byte order), packed (stride itemsize+1),
overlap (writeable zero stride), readonly, sub (ndarray subclass), masked (np.ma).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

GUARD = 64
MAX_ELEMENTS = 1 << 21

# Every dtype NumPy has (by kind), float32/float64 drawn far more often by the generator.
ALL_DTYPES = ["?", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8", "g", "c8", "c16", "G",
              "M8[s]", "m8[ns]", "U3", "S4", "V8", "O", "f4,i4"]
LAYOUTS = ["c", "f", "rev", "step", "mixed", "unaligned", "swapped", "packed", "overlap", "readonly", "sub",
           "masked"]


class Sub(np.ndarray):
    """An ndarray subclass (must be read as an array)."""


class ArrayLike:
    """Not an array, but has ``__array__`` (NumPy converts it)."""

    def __init__(self, a):
        self._a = a

    def __array__(self, dtype=None, copy=None):
        return self._a if dtype is None else self._a.astype(dtype)

    def __repr__(self):
        return f"ArrayLike({self._a!r})"


class BadArray:
    """``__array__`` raises: the error must come back as a Python exception."""

    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("BadArray.__array__")


class BadIndex:
    """``__index__`` raises."""

    def __index__(self):
        raise ZeroDivisionError("BadIndex.__index__")


OBJECTS = {
    "object": object,
    "dict": lambda: {"a": 1},
    "bad_array": BadArray,
    "bad_index": BadIndex,
    "bytes": lambda: b"\x00\x01",
    "bytearray": lambda: bytearray(8),
    "memoryview": lambda: memoryview(bytearray(16)).cast("f"),
    "ellipsis": lambda: Ellipsis,
    "slice": lambda: slice(None),
    "set": lambda: {1.0},
    "generator": lambda: (float(i) for i in range(3)),
}


@dataclass
class Built:
    args: list
    kwargs: dict
    # (base uint8 buffer, view) for every array built from a recipe, to check all bytes afterwards
    bases: list = field(default_factory=list)
    # argument positions / keyword names whose recipe is an output (may be written)
    huge: bool = False


def _values(rng: np.random.Generator, n: int, fill: str) -> np.ndarray:
    if fill == "zeros":
        return np.zeros(n)
    if fill == "ints":
        return rng.integers(-2, 12, n).astype(np.float64)
    if fill == "special":
        pool = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, 1e-310, 1.4e-45, 1e-40, 3.4028235e38, 3.5e38,
                         1.7976931348623157e308, -1.7976931348623157e308, 1.0, -1.0, 0.5, 65504.0, 2.0**63, -2.0**63,
                         np.float64(np.float32(np.nan)) * -1, 255.0, -129.0])
        v = rng.standard_normal(n)
        pick = rng.random(n) < 0.5
        v[pick] = rng.choice(pool, int(pick.sum()))
        return v
    return rng.standard_normal(n) * rng.choice([1.0, 1e-3, 1e3])


def _fill(a: np.ndarray, vals: np.ndarray) -> None:
    dt = a.dtype
    if dt.names is not None or dt.kind == "V":
        return  # raw bytes from the guard filler
    with np.errstate(all="ignore"):
        if dt.kind in "US":
            a[...] = vals.astype(str).astype(dt) if a.size else a
        elif dt.kind in "Mm":
            a[...] = np.nan_to_num(vals, nan=0, posinf=0, neginf=0).astype(np.int64).astype(dt)
        else:
            a[...] = vals.reshape(a.shape).astype(dt)


def c_strides(shape, itemsize: int) -> list[int]:
    st, s = [], itemsize
    for n in reversed(shape):
        st.append(s)
        s *= max(n, 1)
    return st[::-1]


def make_array(dtype: str, shape, layout: str, fill: str, seed: int, bases: list | None = None):
    """The array a ``("arr", ...)`` recipe describes, inside a guarded uint8 buffer."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in shape)
    dt = np.dtype(dtype)
    size = math.prod(shape)
    if size > MAX_ELEMENTS:  # real memory (huge shapes are zero-stride "bcast" recipes)
        raise ValueError(f"{shape}: more elements than the fuzzer allocates")
    if dt.kind == "O" or layout == "masked":
        base = np.empty(shape, dt)
        _fill(base, _values(rng, size, fill))
        if dt.kind == "O":
            return base
        return np.ma.masked_array(base, mask=rng.random(shape) < 0.3)
    if layout == "swapped":
        dt = dt.newbyteorder()
    s = dt.itemsize
    nd = len(shape)
    strides = c_strides(shape, s)
    if layout == "f":
        strides = c_strides(shape[::-1], s)[::-1]
    elif layout == "rev":
        strides = [-x for x in strides]
    elif layout == "step":
        strides = [2 * x for x in c_strides(shape[:-1] + (2 * shape[-1],), s)] if nd else []
    elif layout == "mixed" and nd:
        perm = rng.permutation(nd)
        cs = c_strides(tuple(shape[p] for p in perm), s)
        strides = [0] * nd
        for i, p in enumerate(perm):
            strides[p] = cs[i] * (-1 if rng.random() < 0.3 else 1)
    elif layout == "packed" and nd:
        strides = c_strides(shape, s)
        strides[-1] = s + 1
        for i in range(nd - 2, -1, -1):
            strides[i] = strides[i + 1] * max(shape[i + 1], 1)
    elif layout == "overlap" and nd:
        strides[-1] = 0
    lo = sum((n - 1) * st for n, st in zip(shape, strides) if st < 0 and n > 0)
    hi = sum((n - 1) * st for n, st in zip(shape, strides) if st > 0 and n > 0) + s
    if size == 0:
        lo, hi = 0, 0
    mis = 1 if layout in ("unaligned", "packed") else 0
    nbytes = hi - lo + 2 * GUARD + 16
    base = rng.integers(0, 256, nbytes, dtype=np.uint8)
    off = GUARD + mis - lo
    a = np.ndarray(shape, dt, buffer=base, offset=off, strides=strides)
    if size:
        if layout == "overlap":
            # a zero stride: the value of the last write survives; fill the distinct memory instead
            _fill(np.ndarray(shape[:-1] + (1,), dt, buffer=base, offset=off, strides=strides), _values(rng, size // max(shape[-1], 1), fill))
        else:
            _fill(a, _values(rng, size, fill))
    if layout == "readonly":
        a.flags.writeable = False
    if layout == "sub":
        a = a.view(Sub)
    if bases is not None:
        bases.append((base, a))
    return a


def build(recipe: Any, built: Built | None = None, _cache: dict | None = None):
    """The Python object a recipe describes (one fresh copy per call of ``build_call``)."""
    if not isinstance(recipe, tuple) or not recipe or not isinstance(recipe[0], str):
        return recipe  # a plain literal
    tag = recipe[0]
    bases = built.bases if built is not None else None
    if tag == "arr":
        _, dtype, shape, layout, fill, seed = recipe
        return make_array(dtype, shape, layout, fill, seed, bases)
    if tag == "bcast":  # a zero-stride view: any shape, read-only
        _, dtype, base_shape, shape, fill, seed = recipe
        if built is not None:
            built.huge = built.huge or math.prod(shape) > 10**7
        return np.broadcast_to(make_array(dtype, base_shape, "c", fill, seed, bases), tuple(shape))
    if tag == "list":
        _, dtype, shape, fill, seed = recipe
        return make_array(dtype, shape, "c", fill, seed).tolist()
    if tag == "arraylike":
        return ArrayLike(build(recipe[1], built))
    if tag == "npscalar":
        _, dtype, value = recipe
        with np.errstate(all="ignore"):
            return np.array(value).astype(dtype)[()]
    if tag == "obj":
        return OBJECTS[recipe[1]]()
    if tag == "lit":
        return recipe[1]
    if tag == "tuple":
        return tuple(build(r, built) for r in recipe[1])
    if tag == "bigint":
        return int(recipe[1]) ** int(recipe[2]) * int(recipe[3])
    raise ValueError(f"unknown recipe {recipe!r}")


def build_call(call: dict) -> Built:
    """All arguments of a call, fresh; ``("alias", key, how)`` recipes become views of an earlier
    argument's memory (key: an int position or a keyword name)."""
    built = Built([], {})
    objs: dict = {}

    def one(key, r):
        if isinstance(r, tuple) and r and r[0] == "alias":
            _, target, how = r
            t = objs.get(target)
            if not isinstance(t, np.ndarray):
                return None
            if how == "same":
                return t
            if how == "flat" and t.ndim and t.size:
                return t.reshape(-1)[::-1].reshape(t.shape) if t.flags.c_contiguous or t.flags.f_contiguous else t
            return t[...]
        return build(r, built)

    for i, r in enumerate(call["args"]):
        objs[i] = one(i, r)
        built.args.append(objs[i])
    for k, r in call["kwargs"].items():
        objs[k] = one(k, r)
        built.kwargs[k] = objs[k]
    return built
