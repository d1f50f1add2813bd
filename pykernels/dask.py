"""pykernels on Dask arrays: the kernels as Dask graphs, and a worker plugin for ``dask.distributed``.

Needs the optional extra: ``pip install "pykernels[dask]"`` (``dask[array,distributed]``). Importing
``pykernels`` never imports Dask; ``import pykernels.dask`` does (and ``distributed`` only when
:class:`PykernelsPlugin` is first used).

>>> import dask.array as da, numpy as np, pykernels.dask as pkd
>>> x = da.from_array(np.array([[-1.0, 2.0], [3.0, -4.0]], np.float32), chunks=(1, 2))
>>> y = pkd.relu(pkd.add(x, np.float32(1.0)))     # lazy: a graph whose tasks call the kernels
>>> y.compute()
array([[0., 3.],
       [4., 0.]], dtype=float32)

Every function takes Dask arrays, NumPy arrays and scalars. When no argument is a Dask array the call
goes straight to the pykernels kernel (a NumPy result, computed at once); otherwise NumPy arrays are
wrapped as one-chunk Dask arrays and the result is a lazy Dask array: nothing is computed until
``.compute()`` / ``.persist()``. Each task calls a module-level function of this module
(``pykernels.dask._chunk_add``, ...) that calls the kernel on NumPy chunks, so graphs pickle by
reference and run on the threaded, multiprocessing and distributed schedulers.

* Element-wise: ``add subtract multiply maximum minimum relu relu_backward exp log tanh sigmoid
  sigmoid_backward tanh_backward negative abs absolute``, whichever of them the installed pykernels
  has (looked up when this module is imported). NumPy broadcasting between arrays of any chunking:
  the chunks are unified as ``da.add`` unifies them (a rechunk where they differ). Results are
  bit-identical to the kernel, and so to NumPy, on the computed array: an element-wise op does not
  depend on the chunking.
* Row-wise: ``softmax(x, axis=-1)``, ``log_softmax(x, axis=-1)``, ``softmax_backward(dy, y, axis=-1)``
  and ``log_softmax_backward(dy, y, axis=-1)``. The kernel needs every row (the 1-d slices along
  ``axis``) whole in one block, so an ``axis`` split across chunks is rechunked to one chunk first,
  as ``da.apply_along_axis`` does (the other axes keep their chunks; ``dy`` and ``y`` are unified).
  Each row is then computed by the same kernel as on the whole array: bit-identical results.
* ``dense(x, W, b=None, activation=None)``: ``x`` (M, K) is split by rows; ``W`` and ``b`` are each one
  block (rechunked to one if chunked) that every task reads (one copy per worker under
  ``distributed``). ``x`` chunked along K is first rechunked to whole rows (the relu cannot be
  applied to partial products). Each output block is one fused GEMM over whole rows, so the result
  equals ``pykernels.dense`` on the whole (C-contiguous) array bit for bit.
* ``matmul(a, b)`` (NumPy's ``@`` rules, stacks broadcast) and ``dot(a, b)`` (``np.dot`` for 1-d and
  2-d operands, N-d . 1-d, and a 0-d operand): the contraction as ``da.matmul`` does it: one
  ``pykernels.matmul`` per pair of blocks, keeping the K block index, then a tree sum of the partial
  products with ``pykernels.add`` (``split_every`` blocks at a time). Where the K chunks of ``a`` and
  ``b`` differ they are rechunked to common chunks, as ``da.matmul`` does, rather than refused.
  Accuracy: each block product is within the GEMM's bound; the tree adds at most one rounding per
  level, so the result is within ``(K + levels + 1) * eps * (|a| @ |b|)`` of the exact product
  (the same rigorous bound as any summation order; ``tests/test_dask.py`` checks it).
* ``sum(x, axis=None, keepdims=False)`` and ``sum_to(x, shape)``: ``da.reduction`` with
  ``pykernels.sum`` on every chunk and on every concatenation of partial sums (tree of
  ``split_every``). The partials are rounded to the array's dtype, so a float32 sum is within
  ``(levels + 1) * eps32 * sum|x|`` of the exact sum (NumPy's own float32 sum is within
  ``log2(n) * eps32 * sum|x|``), not within the half-ulp of a single ``pykernels.sum`` call.

Errors are raised while the graph is built, before any work is sent: a non-float dtype
(``TypeError``, the kernel's words), shapes that do not broadcast or align (``ValueError``, NumPy's
words), chunk sizes that are unknown (``nan``, e.g. after boolean indexing) where chunks must be
aligned or rows rechunked whole (``ValueError``: call ``.compute_chunk_sizes()`` first), an unknown
activation, a bad axis.
"""

from __future__ import annotations

import functools
import os

import numpy as np

try:
    import dask.array as da
    from dask.base import tokenize
except ImportError as _e:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "pykernels.dask needs Dask: install the extra with `pip install \"pykernels[dask]\"` "
        f"(dask[array,distributed] >= 2024.1); importing dask failed: {_e}"
    ) from _e

import pykernels as _pk

try:  # NumPy >= 2
    from numpy.lib.array_utils import normalize_axis_tuple as _normalize_axis_tuple
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.numeric import normalize_axis_tuple as _normalize_axis_tuple

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

# Element-wise kernels wrapped when the installed pykernels has them: name -> argument names.
_ELEMENTWISE = {
    "add": ("x1", "x2"),
    "subtract": ("x1", "x2"),
    "multiply": ("x1", "x2"),
    "maximum": ("x1", "x2"),
    "minimum": ("x1", "x2"),
    "relu_backward": ("dout", "x"),
    "sigmoid_backward": ("dy", "y"),
    "tanh_backward": ("dy", "y"),
    "relu": ("x",),
    "exp": ("x",),
    "log": ("x",),
    "tanh": ("x",),
    "sigmoid": ("x",),
    "negative": ("x",),
    "abs": ("x",),
    "absolute": ("x",),
}


# ---- checks -----------------------------------------------------------------------------------
def _is_dask(a) -> bool:
    return isinstance(a, da.Array)


def _check_dtype(fname: str, a, argname: str) -> None:
    dt = np.dtype(a.dtype)
    if dt not in _FLOATS:
        raise TypeError(
            f"pykernels.dask.{fname}: unsupported dtype {dt} for argument {argname!r} (supported: float32, float64)"
        )


def _check_known_chunks(fname: str, a, argname: str) -> None:
    if any(np.isnan(c) for cs in a.chunks for c in cs):
        raise ValueError(
            f"pykernels.dask.{fname}: argument {argname!r} has unknown chunk sizes (nan), so its chunks cannot be "
            "aligned with the other operand's; call .compute_chunk_sizes() on it first"
        )


def _shape_str(shape) -> str:
    return str(tuple(int(s) for s in shape)).replace(" ", "")


def _as_dask_operand(fname: str, a, argname: str, arrays_only: bool = False):
    """A Dask array for an array argument (NumPy arrays become one block); scalars stay scalars
    unless ``arrays_only``. Checks the dtype and that the chunk sizes are known."""
    if not _is_dask(a):
        if not arrays_only and (isinstance(a, (float, int, np.generic)) and not isinstance(a, bool)):
            if isinstance(a, np.generic):
                _check_dtype(fname, a, argname)
            return a
        a = np.asarray(a)
        _check_dtype(fname, a, argname)
        a = da.from_array(a, chunks=a.shape if a.ndim else ())
    _check_dtype(fname, a, argname)
    _check_known_chunks(fname, a, argname)
    return a


def _meta(dtype, ndim: int) -> np.ndarray:
    return np.empty((0,) * ndim, dtype=dtype)


def _ndarray(r) -> np.ndarray:
    # a 0-d kernel result is a NumPy scalar; Dask blocks are arrays
    return r if isinstance(r, np.ndarray) else np.asarray(r)


# ---- task functions (module level: they pickle by reference; the kernels themselves do not) ----
def _make_chunk_fn(name: str, kernel):
    def chunk_fn(*args, **kwargs):
        return _ndarray(kernel(*args, **kwargs))

    chunk_fn.__name__ = chunk_fn.__qualname__ = f"_chunk_{name}"
    chunk_fn.__module__ = __name__
    chunk_fn.__doc__ = f"One Dask task: ``pykernels.{name}`` on NumPy blocks."
    return chunk_fn


def _chunk_dense(x, W, b=None, activation=None):
    """One Dask task: ``pykernels.dense`` on a block of rows."""
    return _pk.dense(x, W, b, activation=activation)


def _chunk_matmul(a, b):
    """One Dask task: ``pykernels.matmul`` of two blocks, with the contracted block axis kept
    (size 1, second to last) for the tree sum that follows."""
    return _ndarray(_pk.matmul(a, b))[..., np.newaxis, :]


def _chunk_partial_sum(a, axis=None, keepdims=None, computing_meta=False):
    """One Dask task of the product tree: ``pykernels.add`` over partial products (a list) or the
    identity on one block; the kept axis is dropped at the end unless ``keepdims``."""
    out = functools.reduce(_pk.add, a) if isinstance(a, list) else a
    return out if keepdims else out.squeeze(axis[0])


def _chunk_sum(x, axis=None, keepdims=False, computing_meta=False):
    """One Dask task of a sum: ``pykernels.sum`` on a block (or a concatenation of partial sums)."""
    return _ndarray(_pk.sum(x, axis=axis, keepdims=keepdims))


# ---- element-wise -------------------------------------------------------------------------------
def _elementwise(name: str, chunk_fn, argnames, args):
    if not any(_is_dask(a) for a in args):
        return getattr(_pk, name)(*args)
    ops = [_as_dask_operand(name, a, n) for a, n in zip(args, argnames)]
    arrays = [a for a in ops if _is_dask(a)]
    try:
        out_shape = np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        raise ValueError(
            f"pykernels.dask.{name}: operands could not be broadcast together with shapes "
            + " ".join(_shape_str(a.shape) for a in arrays)
        ) from None
    ndim = len(out_shape)
    # the result dtype from the kernel itself (NEP 50 promotion with scalars), on empty arrays
    dtype = np.asarray(getattr(_pk, name)(*(_meta(a.dtype, a.ndim) if _is_dask(a) else a for a in ops))).dtype
    pairs = []
    for a in ops:
        pairs += [a, tuple(range(ndim - a.ndim, ndim))] if _is_dask(a) else [a, None]
    return da.blockwise(
        chunk_fn, tuple(range(ndim)), *pairs,
        name=f"pykernels-{name}-" + tokenize(name, *ops),
        dtype=dtype, meta=_meta(dtype, ndim), align_arrays=True,
    )


def _make_elementwise(name: str, argnames):
    chunk_fn = _make_chunk_fn(name, getattr(_pk, name))
    globals()[chunk_fn.__name__] = chunk_fn
    params = ", ".join(argnames)
    kernel_doc = (getattr(_pk, name).__doc__ or "").strip().split("\n")[0]

    def func(*args):
        if len(args) != len(argnames):
            raise TypeError(f"pykernels.dask.{name}() takes {len(argnames)} arguments ({params}), got {len(args)}")
        return _elementwise(name, chunk_fn, argnames, args)

    func.__name__ = func.__qualname__ = name
    func.__module__ = __name__
    func.__doc__ = (
        f"{name}({params}) on Dask arrays: a lazy graph of ``pykernels.{name}`` per block "
        f"(NumPy broadcasting, chunks unified); NumPy inputs go straight to the kernel.\n\n{kernel_doc}"
    )
    return func


__all__ = ["PykernelsPlugin", "dense", "dot", "log_softmax", "log_softmax_backward", "matmul", "softmax",
           "softmax_backward", "sum", "sum_to"]
for _name, _argnames in _ELEMENTWISE.items():
    if callable(getattr(_pk, _name, None)):
        globals()[_name] = _make_elementwise(_name, _argnames)
        __all__.append(_name)
del _name, _argnames


# ---- row-wise: softmax, log_softmax and their backward passes -----------------------------------
_ROWWISE = {"softmax": ("x",), "log_softmax": ("x",), "softmax_backward": ("dy", "y"),
            "log_softmax_backward": ("dy", "y")}
for _name in _ROWWISE:  # their task functions, _chunk_softmax etc.: whole rows per block, axis= passed on
    _fn = _make_chunk_fn(_name, getattr(_pk, _name))
    globals()[_fn.__name__] = _fn
del _name, _fn


def _whole_rows(fname: str, a, argname: str, axis: int):
    """``a`` with ``axis`` in one chunk (a rechunk where it spans several), as ``da.apply_along_axis``
    does: a row kernel needs every row whole in one block."""
    if a.numblocks[axis] == 1:
        return a
    if any(np.isnan(c) for c in a.chunks[axis]):
        raise ValueError(
            f"pykernels.dask.{fname}: argument {argname!r} has unknown chunk sizes (nan) along axis {axis}, so its "
            "rows cannot be rechunked whole; call .compute_chunk_sizes() on it first"
        )
    return a.rechunk({axis: -1})


def _rowwise(fname: str, args, axis):
    kernel, names, chunk_fn = getattr(_pk, fname), _ROWWISE[fname], globals()[f"_chunk_{fname}"]
    if not any(_is_dask(a) for a in args):
        return kernel(*args, axis)
    if len(args) == 1:
        # one operand: nothing to align, so unknown chunks matter only along the rows (_whole_rows)
        _check_dtype(fname, args[0], names[0])
        ops = [args[0]]
    else:
        ops = [_as_dask_operand(fname, a, n, arrays_only=True) for a, n in zip(args, names)]
        if ops[0].shape != ops[1].shape:
            raise ValueError(f"pykernels.dask.{fname}: {names[0]} has shape {_shape_str(ops[0].shape)}, "
                             f"{names[1]} has {_shape_str(ops[1].shape)}")
    ndim = ops[0].ndim
    # the dimension, axis and dtype checks and the result dtype from the kernel itself, on empty blocks
    meta = kernel(*(_meta(a.dtype, ndim) for a in ops), axis)
    ax = int(axis) % ndim
    ops = [_whole_rows(fname, a, n, ax) for a, n in zip(ops, names)]
    ind = tuple(range(ndim))
    pairs = [x for a in ops for x in (a, ind)]
    return da.blockwise(
        chunk_fn, ind, *pairs,
        name=f"pykernels-{fname}-" + tokenize(fname, *ops, ax),
        axis=ax, dtype=meta.dtype, meta=meta, align_arrays=True,
    )


def softmax(x, axis=-1):
    """``pykernels.softmax(x, axis)`` on a Dask array: the kernel on every block of whole rows.

    A row kernel needs each row (the 1-d slices along ``axis``) in one block, so where ``axis``
    spans several chunks it is first rechunked to one chunk, as ``da.apply_along_axis`` does (the
    other axes keep their chunks); each row is then computed by the same kernel as on the whole
    array, so the result equals ``pykernels.softmax`` bit for bit. A NumPy ``x`` goes straight to
    the kernel.

    >>> import dask.array as da, numpy as np, pykernels.dask as pkd
    >>> x = da.from_array(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]), chunks=(1, 2))  # rows cut
    >>> y = pkd.softmax(x)
    >>> y.chunks                                       # rows whole: one chunk along the last axis
    ((1, 1), (3,))
    >>> y.compute()
    array([[0.09003057, 0.24472847, 0.66524096],
           [0.33333333, 0.33333333, 0.33333333]])
    """
    return _rowwise("softmax", (x,), axis)


def log_softmax(x, axis=-1):
    """``pykernels.log_softmax(x, axis)`` on a Dask array, with whole rows per block as
    :func:`softmax` (``axis`` rechunked to one chunk where it spans several)."""
    return _rowwise("log_softmax", (x,), axis)


def softmax_backward(dy, y, axis=-1):
    """``pykernels.softmax_backward(dy, y, axis)`` on Dask arrays of the same shape: their chunks
    unified, ``axis`` rechunked to one chunk where it spans several (whole rows, as :func:`softmax`)."""
    return _rowwise("softmax_backward", (dy, y), axis)


def log_softmax_backward(dy, y, axis=-1):
    """``pykernels.log_softmax_backward(dy, y, axis)`` on Dask arrays of the same shape, with whole
    rows per block as :func:`softmax_backward`."""
    return _rowwise("log_softmax_backward", (dy, y), axis)


# ---- dense --------------------------------------------------------------------------------------
def dense(x, W, b=None, activation=None):
    """``pykernels.dense(x, W, b, activation)`` (``relu(x @ W + b)`` fused) on a Dask array of rows.

    ``x`` (M, K) is processed block of rows by block of rows; ``W`` (K, N) and ``b`` (N,) are one
    block each that every task reads. A ``x`` chunked along K is rechunked to whole rows first.
    """
    if not any(_is_dask(a) for a in (x, W, b)):
        return _pk.dense(x, W, b, activation=activation)
    x = _as_dask_operand("dense", x, "x", arrays_only=True)
    W = _as_dask_operand("dense", W, "W", arrays_only=True)
    if b is not None:
        b = _as_dask_operand("dense", b, "b", arrays_only=True)
    if x.ndim != 2 or W.ndim != 2:
        raise ValueError(f"pykernels.dask.dense: x and W must be 2-d, got shapes {_shape_str(x.shape)} and "
                         f"{_shape_str(W.shape)}")
    if x.shape[1] != W.shape[0]:
        raise ValueError(f"pykernels.dask.dense: shapes {_shape_str(x.shape)} and {_shape_str(W.shape)} not "
                         f"aligned: {x.shape[1]} (dim 1) != {W.shape[0]} (dim 0)")
    if b is not None and b.shape != (W.shape[1],):
        raise ValueError(f"pykernels.dask.dense: b must have shape ({W.shape[1]},) (W's columns), got "
                         f"{_shape_str(b.shape)}")
    # dtype and activation checked by the kernel itself on empty blocks
    meta = _pk.dense(_meta(x.dtype, 2), _meta(W.dtype, 2), None if b is None else _meta(b.dtype, 1),
                     activation=activation)
    if x.numblocks[1] > 1:
        x = x.rechunk({1: -1})
    # W and b: one block each, read by every task (a GEMM's rounding may depend on N's blocking)
    if W.npartitions > 1:
        W = W.rechunk(-1)
    if b is not None and b.npartitions > 1:
        b = b.rechunk(-1)
    args = [x, "ik", W, "kj"] + ([] if b is None else [b, "j"])
    return da.blockwise(
        _chunk_dense, "ij", *args,
        name="pykernels-dense-" + tokenize(x, W, b, activation),
        activation=activation, dtype=meta.dtype, meta=meta, concatenate=True, align_arrays=True,
    )


# ---- products -----------------------------------------------------------------------------------
def matmul(a, b):
    """``pykernels.matmul`` (NumPy's ``@``) on Dask arrays: blockwise products keeping the K block
    index, then a tree sum of the partial products (``da.matmul``'s structure). K chunks that differ
    between ``a`` and ``b`` are rechunked to common chunks, as ``da.matmul`` does."""
    if not (_is_dask(a) or _is_dask(b)):
        return _pk.matmul(a, b)
    a = _as_dask_operand("matmul", a, "a", arrays_only=True)
    b = _as_dask_operand("matmul", b, "b", arrays_only=True)
    sig = "(n?,k),(k,m?)->(n?,m?)"
    for i, op in enumerate((a, b)):
        if op.ndim == 0:
            raise ValueError(f"pykernels.dask.matmul: Input operand {i} does not have enough dimensions (has 0, "
                             f"gufunc core with signature {sig} requires 1)")
    ka, kb = a.shape[-1], b.shape[-2] if b.ndim > 1 else b.shape[0]
    if ka != kb:
        raise ValueError(f"pykernels.dask.matmul: Input operand 1 has a mismatch in its core dimension 0, with "
                         f"gufunc signature {sig} (size {kb} is different from {ka})")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"pykernels.dask.matmul: operands could not be broadcast together with remapped shapes "
                         f"[original->remapped]: {_shape_str(a.shape)} {_shape_str(b.shape)}") from None
    dtype = np.result_type(a.dtype, b.dtype)
    a_1d, b_1d = a.ndim == 1, b.ndim == 1
    if a_1d:
        a = a[np.newaxis, :]
    if b_1d:
        b = b[:, np.newaxis]
    if a.ndim < b.ndim:
        a = a[(b.ndim - a.ndim) * (np.newaxis,)]
    elif a.ndim > b.ndim:
        b = b[(a.ndim - b.ndim) * (np.newaxis,)]
    nd = a.ndim
    out_ind = tuple(range(nd + 1))
    lhs_ind = tuple(range(nd))
    rhs_ind = tuple(range(nd - 2)) + (lhs_ind[-1], nd)
    out = da.blockwise(
        _chunk_matmul, out_ind, a, lhs_ind, b, rhs_ind,
        name="pykernels-matmul-" + tokenize(a, b),
        adjust_chunks={lhs_ind[-1]: 1}, dtype=dtype, meta=_meta(dtype, nd + 1), concatenate=False,
        align_arrays=True,
    )
    if out.shape[-2] == 1:
        out = out.squeeze(-2)
    else:
        out = da.reduction(
            out, _chunk_partial_sum, _chunk_partial_sum, axis=-2, dtype=dtype, concatenate=False,
            meta=_meta(dtype, nd), name="pykernels-matmul-sum",
        )
    if a_1d:
        out = out.squeeze(-2)
    if b_1d:
        out = out.squeeze(-1)
    return out


def dot(a, b):
    """``pykernels.dot`` (``np.dot``) on Dask arrays, for 1-d and 2-d operands, N-d . 1-d and a 0-d
    operand (through :func:`matmul` and :func:`multiply`). N-d . M-d with M >= 2 and N + M > 4 is not
    implemented (use :func:`matmul`, or ``da.tensordot``)."""
    if not (_is_dask(a) or _is_dask(b)):
        return _pk.dot(a, b)
    a = _as_dask_operand("dot", a, "a")
    b = _as_dask_operand("dot", b, "b")
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return globals()["multiply"](a, b)
    ka, kb = a.shape[-1], b.shape[-2] if b.ndim > 1 else b.shape[0]
    if ka != kb:
        bdim = b.ndim - 2 if b.ndim > 1 else 0
        raise ValueError(f"pykernels.dask.dot: shapes {_shape_str(a.shape)} and {_shape_str(b.shape)} not aligned: "
                         f"{ka} (dim {a.ndim - 1}) != {kb} (dim {bdim})")
    if b.ndim >= 2 and a.ndim + b.ndim > 4 or b.ndim > 2:
        raise NotImplementedError(
            f"pykernels.dask.dot: N-d . M-d products with M >= 2 (here {a.ndim}-d . {b.ndim}-d) are not implemented "
            "on Dask arrays; use pykernels.dask.matmul (stacks of matrices) or da.tensordot"
        )
    return matmul(a, b)


# ---- sums ---------------------------------------------------------------------------------------
def sum(x, axis=None, keepdims=False, split_every=None):  # noqa: A001 - the pykernels name
    """``pykernels.sum`` on a Dask array: ``da.reduction`` with the kernel on every block and on
    every concatenation of partial sums (a tree of ``split_every`` blocks)."""
    if not _is_dask(x):
        return _pk.sum(x, axis=axis, keepdims=keepdims)
    _check_dtype("sum", x, "x")
    axes = tuple(range(x.ndim)) if axis is None else _normalize_axis_tuple(axis, x.ndim)
    return da.reduction(
        x, _chunk_sum, _chunk_sum, axis=axes, keepdims=keepdims, dtype=x.dtype, split_every=split_every,
        concatenate=True, meta=_meta(x.dtype, x.ndim if keepdims else x.ndim - len(axes)),
        name="pykernels-sum",
    )


def sum_to(x, shape, split_every=None):
    """``pykernels.sum_to(x, shape)`` (the backward of broadcasting) on a Dask array: :func:`sum`
    over the axes that broadcasting stretched, the result of exactly ``shape``."""
    if not _is_dask(x):
        return _pk.sum_to(x, shape)
    _check_dtype("sum_to", x, "x")
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(s) for s in shape)
    lead = x.ndim - len(shape)
    if lead < 0 or any(s not in (1, n) for s, n in zip(shape, x.shape[lead:])):
        raise ValueError(f"pykernels.dask.sum_to: cannot sum an array of shape {_shape_str(x.shape)} to shape "
                         f"{_shape_str(shape)} (the target shape must broadcast to {_shape_str(x.shape)})")
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and x.shape[lead + i] != 1)
    if not axes:
        return x
    out = sum(x, axis=axes, keepdims=True, split_every=split_every)
    return out[(0,) * lead] if lead else out


# ---- the distributed worker plugin ----------------------------------------------------------------
def threads_per_task(cores: int, dask_threads: int) -> int:
    """pykernels threads for each Dask thread: the cores shared out among the Dask threads that run
    on them, at least 1 (no oversubscription)."""
    return max(1, int(cores) // max(1, int(dask_threads)))


def _make_plugin_class():
    try:
        from distributed import WorkerPlugin
        from distributed.comm import get_address_host
    except ImportError as e:
        raise ImportError(
            "pykernels.dask.PykernelsPlugin needs dask.distributed: install the extra with "
            f"`pip install \"pykernels[dask]\"`; importing distributed failed: {e}"
        ) from e

    class PykernelsPlugin(WorkerPlugin):
        """A ``distributed`` WorkerPlugin that shares each worker's cores among its Dask threads.

        ``client.register_plugin(PykernelsPlugin())`` sets, on every worker (and on workers that join
        later), ``pykernels.set_num_threads(max(1, cores // dask_threads))``, where ``cores`` is the
        worker's ``cores`` or ``CPU`` resource if it declares one (then ``dask_threads`` is its own
        thread count), and otherwise the CPUs the process may run on (``os.sched_getaffinity``), with
        ``dask_threads`` the threads of all the workers the scheduler knows on the same host. So 1
        worker x 2 threads and 2 workers x 1 thread on 2 cores both run each kernel on 1 thread. A
        worker counts the workers present when it starts; workers started later do not re-tune the
        earlier ones (register the plugin after the cluster is up, or pass ``threads=``).

        ``threads=n`` sets exactly ``n`` threads. ``patch_numpy=True`` (the default) also calls
        ``pykernels.patch_numpy()`` on each worker, so that Dask's own array code (``da.matmul``,
        ``x + y``, ``da.maximum``) runs on the kernels too; ``patch_numpy=False`` leaves NumPy alone
        (the ``pykernels.dask`` functions call the kernels either way). The patch is process-wide and
        reference-counted: in-process workers (``LocalCluster(processes=False)``) patch the client's
        NumPy as well while the plugin is registered. ``teardown`` restores the thread count and
        undoes this plugin's patch.
        """

        name = "pykernels"
        idempotent = False

        def __init__(self, patch_numpy: bool = True, threads: int | None = None):
            if threads is not None and int(threads) < 1:
                raise ValueError(f"PykernelsPlugin: threads must be >= 1, got {threads}")
            self.patch_numpy = bool(patch_numpy)
            self.threads = None if threads is None else int(threads)
            self._saved_threads = None
            self._patched = False

        async def _host_dask_threads(self, worker) -> int:
            own = worker.state.nthreads
            try:
                info = await worker.scheduler.identity()
                host = get_address_host(worker.address)
                others = [w.get("nthreads", 0) for addr, w in info.get("workers", {}).items()
                          if addr != worker.address and get_address_host(addr) == host]
                return own + int(np.sum(others, dtype=np.int64))
            except Exception:  # noqa: BLE001 - an unreachable scheduler: count this worker alone
                return own

        async def setup(self, worker):
            if self.threads is not None:
                n = self.threads
            else:
                resources = dict(getattr(worker.state, "total_resources", None) or {})
                declared = next((resources[k] for k in ("cores", "CPU", "cpu") if k in resources), None)
                if declared is not None:
                    n = threads_per_task(declared, worker.state.nthreads)
                else:
                    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
                    n = threads_per_task(cores or 1, await self._host_dask_threads(worker))
            self._saved_threads = _pk.get_num_threads()
            _pk.set_num_threads(n)
            if self.patch_numpy:
                _pk.patch_numpy()
                self._patched = True

        def teardown(self, worker):
            if self._patched:
                _pk.unpatch_numpy()
                self._patched = False
            if self._saved_threads is not None:
                _pk.set_num_threads(self._saved_threads)
                self._saved_threads = None

    PykernelsPlugin.__module__ = __name__
    PykernelsPlugin.__qualname__ = "PykernelsPlugin"
    return PykernelsPlugin


def __getattr__(name: str):
    # PykernelsPlugin is built on first use, so that `import pykernels.dask` does not import distributed
    if name == "PykernelsPlugin":
        cls = _make_plugin_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
