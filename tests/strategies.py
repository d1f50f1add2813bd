"""Hypothesis strategies: broadcast shape pairs, float arrays in many memory layouts, scalar operands.

Recipe from REFERENCES.md C4 (zero-size dims need ``min_side=0``; element counts are capped so the
suite stays fast) and C2 (PyTorch OpInfo's noncontiguous and ``as_strided`` cases, reproduced with
read-only NumPy views).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

FLOAT_DTYPES = (np.float32, np.float64)
MAX_ELEMS = 2048  # cap on the broadcast result size of generated cases

dtypes = st.sampled_from(FLOAT_DTYPES)


def nelem(shape: Sequence[int]) -> int:
    return math.prod(shape)


# Pairs of mutually broadcastable shapes (0-d, size-0 and size-1 dims included).
shape_pairs = hnp.mutually_broadcastable_shapes(
    num_shapes=2, min_dims=0, max_dims=5, min_side=0, max_side=5
).filter(lambda b: nelem(b.result_shape) <= MAX_ELEMS)

shapes = hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=6).filter(
    lambda s: nelem(s) <= MAX_ELEMS
)


# ---- element values ---------------------------------------------------------------------------
def finite_floats(dtype) -> st.SearchStrategy[float]:
    """Any finite value of the dtype (subnormals and huge magnitudes included; no NaN/inf)."""
    return st.floats(
        width=np.dtype(dtype).itemsize * 8, allow_nan=False, allow_infinity=False
    )


# A quiet NaN with payload bits, as a Python float: the float32 NaN 0xFFC01234 widened, so a float32
# and a float64 operand holding it carry the same NaN after promotion.
PAYLOAD_NAN = float(np.array(0xFFC01234, np.uint32).view(np.float32)[()])
NAN_FLAVORS = (math.nan, -math.nan, PAYLOAD_NAN)


def special_values(dtype, nan: float = math.nan) -> list[float]:
    """`nan`, +-inf, +-0.0, the extremes and subnormals of the dtype, and a few ordinary values."""
    fi = np.finfo(dtype)
    tiny_sub = float(np.nextafter(dtype(0), dtype(1)))
    return [
        nan, math.inf, -math.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -2.0,
        float(fi.max), -float(fi.max), float(fi.tiny), -float(fi.tiny), tiny_sub, -tiny_sub,
    ]


def special_floats(dtype) -> st.SearchStrategy[float]:
    """Mostly special values (NaN, inf, -0.0, ...) mixed with arbitrary finite ones. The NaN is one
    of NAN_FLAVORS (+NaN, -NaN, a payload NaN), the same one for every array of a generated example
    (st.shared): a result's NaN sign and payload are then those of NumPy bit for bit, and the one
    case where they are not specified, two different NaNs meeting in add or multiply (which one
    propagates depends on the operand order the compiler picked; NumPy's own loops differ), does
    not arise."""
    flavor = st.shared(st.sampled_from(range(len(NAN_FLAVORS))), key="nan_flavor")
    return flavor.flatmap(
        lambda i: st.one_of(st.sampled_from(special_values(dtype, NAN_FLAVORS[i])), finite_floats(dtype)))


ELEMENT_KINDS = {"finite": finite_floats, "special": special_floats}


# ---- arrays in many layouts -------------------------------------------------------------------
LAYOUTS = ("contiguous", "transpose", "strided", "flip", "broadcast_to", "as_strided", "offset")
WRITABLE_LAYOUTS = ("contiguous", "transpose", "strided", "flip", "offset")


def _values(draw, dtype, shape, kind: str) -> np.ndarray:
    # np.asarray: hnp.arrays gives a NumPy scalar for shape ()
    return np.asarray(draw(hnp.arrays(dtype, shape, elements=ELEMENT_KINDS[kind](dtype))), dtype=dtype)


@st.composite
def arrays(draw, dtype, shape: tuple[int, ...], kind: str = "finite", layouts=LAYOUTS) -> np.ndarray:
    """A float array of exactly `shape` and `dtype` whose memory layout is drawn from `layouts`:

    contiguous; transposed (a permutation of a C array, transposed back); strided (steps of +-1..3
    and start offsets into a bigger base, so negative strides too); np.flip of random axes;
    np.broadcast_to of a smaller array (zero strides, read-only); as_strided read-only views with
    arbitrary element strides in -3..3 (overlapping memory, zero and negative strides); offset (one
    element into a buffer, so not 64-byte aligned).
    """
    shape = tuple(shape)
    nd = len(shape)
    layout = draw(st.sampled_from(layouts))
    if layout == "contiguous":
        return _values(draw, dtype, shape, kind)
    if layout == "transpose":
        perm = draw(st.permutations(range(nd))) if nd else []
        base = _values(draw, dtype, tuple(shape[p] for p in perm), kind)
        arr = base.transpose(np.argsort(perm)) if nd else base
    elif layout == "strided":
        steps = draw(st.lists(st.sampled_from([-3, -2, -1, 1, 2, 3]), min_size=nd, max_size=nd))
        starts = draw(st.lists(st.integers(0, 2), min_size=nd, max_size=nd))
        base_shape = tuple(o + n * abs(s) + 1 for n, s, o in zip(shape, steps, starts))
        base = _values(draw, dtype, base_shape, kind)
        idx = []
        for n, s, o in zip(shape, steps, starts):
            if n == 0:
                idx.append(slice(0, 0))
            elif s > 0:
                idx.append(slice(o, o + n * s, s))
            else:
                first = o + (n - 1) * -s
                stop = first + n * s
                idx.append(slice(first, stop if stop >= 0 else None, s))
        arr = base[tuple(idx)] if nd else base[...]
    elif layout == "flip":
        base = _values(draw, dtype, shape, kind)
        axes = draw(st.lists(st.integers(0, nd - 1), unique=True)) if nd else []
        arr = np.flip(base, axis=tuple(axes)) if axes else base
    elif layout == "broadcast_to":
        ones = draw(st.lists(st.booleans(), min_size=nd, max_size=nd))
        drop = draw(st.integers(0, nd))  # leading dims absent in the source
        src_shape = tuple(1 if o else n for o, n in zip(ones, shape))[drop:]
        src = _values(draw, dtype, src_shape, kind)
        arr = np.broadcast_to(src, shape)
    elif layout == "as_strided":
        strides = draw(st.lists(st.integers(-3, 3), min_size=nd, max_size=nd))
        lo = sum((n - 1) * s for n, s in zip(shape, strides) if s < 0 and n > 0)
        hi = sum((n - 1) * s for n, s in zip(shape, strides) if s > 0 and n > 0)
        buf = _values(draw, dtype, (hi - lo + 1,), kind)
        itemsize = np.dtype(dtype).itemsize
        arr = np.lib.stride_tricks.as_strided(
            buf[-lo:], shape=shape, strides=[s * itemsize for s in strides], writeable=False
        )
    elif layout == "offset":
        flat = _values(draw, dtype, (nelem(shape) + 1,), kind)
        arr = flat[1:].reshape(shape)
    else:  # pragma: no cover
        raise AssertionError(layout)
    assert isinstance(arr, np.ndarray) and arr.shape == shape and arr.dtype == dtype, (arr, shape, layout)
    return arr


@st.composite
def basic_index_views(draw, dtype, kind: str = "finite") -> np.ndarray:
    """A view `base[idx]` of a bigger C array with idx from hnp.basic_indices (steps, negative
    steps, integer indices dropping dims, np.newaxis)."""
    base_shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=8))
    base = _values(draw, dtype, base_shape, kind)
    idx = draw(hnp.basic_indices(base_shape, allow_newaxis=True, allow_ellipsis=True))
    view = base[idx]
    return view if isinstance(view, np.ndarray) else np.asarray(view)


# ---- operands: arrays, 0-d arrays, Python scalars (weak), NumPy scalars (strong) ---------------
SCALAR_KINDS = ("py_float", "py_int", "np_scalar", "zero_d")


@st.composite
def operands(draw, shape, dtype, kind: str = "finite", layouts=LAYOUTS, allow_scalars: bool = True):
    """An operand of `shape`: an array in some layout, or -- when shape is () -- possibly a Python
    float/int (weak, NEP 50), a NumPy scalar of `dtype` (strong) or a 0-d array."""
    if shape == () and allow_scalars:
        how = draw(st.sampled_from(("array",) + SCALAR_KINDS))
        if how == "py_float":
            return draw(ELEMENT_KINDS[kind](np.float32))  # representable in both dtypes
        if how == "py_int":
            return draw(st.one_of(st.integers(-(2**24), 2**24), st.integers(-(2**120), 2**120)))
        if how == "np_scalar":
            return dtype(draw(ELEMENT_KINDS[kind](dtype)))
        if how == "zero_d":
            return np.array(draw(ELEMENT_KINDS[kind](dtype)), dtype=dtype)
    return draw(arrays(dtype, shape, kind=kind, layouts=layouts))


# ---- unusual memory: byte-swapped, unaligned, packed struct fields ----------------------------------


def unaligned(a: np.ndarray) -> np.ndarray:
    """The same values in memory one byte off the dtype's alignment."""
    buf = np.zeros(a.nbytes + 1, np.uint8)
    u = buf[1:].view(a.dtype).reshape(a.shape)
    u[...] = a
    assert not u.flags.aligned or a.size == 0
    return u


def packed_field(a: np.ndarray) -> np.ndarray:
    """The values as a field of a packed structured array: stride = itemsize + 1 (NumPy's
    test_ufunc_noncontiguous case)."""
    s = np.zeros(a.shape, dtype=[("v", a.dtype), ("pad", np.uint8)])
    s["v"] = a
    return s["v"]


def byteswapped(a: np.ndarray) -> np.ndarray:
    return a.astype(a.dtype.newbyteorder())


ODD_MEMORY = {"unaligned": unaligned, "packed_field": packed_field, "byteswapped": byteswapped}
