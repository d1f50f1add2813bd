"""The oracle: one call of pykernels against NumPy's answer, on two independent copies of the
arguments (``gen.build_call``).

A call passes when pykernels
  * returns NumPy's answer (bit for bit for the element-wise ops, within the rounding of the
    summation order for products and sums: ``(n + 2) * eps * |terms|``, the bound tests/linalg_util
    uses), or
  * raises TypeError / ValueError / MemoryError / OverflowError / IndexError (or the exception an
    argument's own ``__array__`` / ``__index__`` raised),
and leaves every byte of every argument's buffer (and the guard bytes around it) unchanged except
the elements of its outputs (``out=``, the optimizer state, ...). Returning an answer where NumPy
raises is a failure for the functions whose NumPy twin is exact (FAITHFUL).
"""

from __future__ import annotations

import math
import traceback

import numpy as np

import pykernels as pk
from pykernels import _core
from pykernels import reference as pkref

from .calls import ELEMENTWISE2, OPTIMIZERS, dot_shape, matmul_shape
from .gen import build_call

OK_EXCEPTIONS = (TypeError, ValueError, MemoryError, OverflowError, IndexError)
OWN_MESSAGES = ("BadArray.__array__", "BadIndex.__index__")

# outputs: positions and keyword names whose elements the call may write
OUTPUTS = {name: ["out"] for name in ELEMENTWISE2 + ["relu", "dot", "matmul", "dense"]}
OUTPUTS.update({
    "dense_backward": ["dx", "dW", "db"],
    "softmax_cross_entropy": ["probs", "dlogits"],
    "softmax_cross_entropy_backward": ["dlogits"],
    "sgd_update": [0, "velocity"],
    "rmsprop_update": [0, 2, "momentums"],
    "adam_update": [0, 2, 3, "vhat"],
    "adagrad_update": [0, 2],
    "_cuda_emu_binary": [1],
    "_cuda_emu_gemm": [0],
})
EXACT = set(ELEMENTWISE2) | {"relu", "_cuda_emu_binary"}
FAITHFUL = set(ELEMENTWISE2) | {"relu", "sum", "sum_to", "dot", "matmul"}


class NoOracle(Exception):
    """The NumPy twin has no answer for these arguments (e.g. Python scalars in a backward pass,
    whose gradient dtype NumPy does not define): the call only has to return or raise."""


class Failure(AssertionError):
    def __init__(self, kind: str, msg: str):
        super().__init__(f"{kind}: {msg}")
        self.kind = kind


def _fn(name):
    return getattr(pk, name, None) or getattr(_core, name)


# ---- NumPy twins ----------------------------------------------------------------------------------

def _sum_to(x, shape):
    x = np.asarray(x)
    shape = tuple(int(s) for s in shape) if np.ndim(shape) else (int(shape),)
    if any(s < 0 for s in shape) or len(shape) > x.ndim or np.broadcast_shapes(shape, x.shape) != x.shape:
        raise ValueError(f"cannot sum {x.shape} to {shape}")
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and x.shape[lead + i] != 1)
    return np.sum(x, axis=axes, keepdims=True).reshape(shape)


def _relu_backward(dout, x, out=None):
    # Python scalars stay weak (NEP 50); anything else NumPy would convert is converted
    dout, x = (v if isinstance(v, (np.ndarray, np.generic, float, int, bool)) else np.asarray(v) for v in (dout, x))
    dt = np.result_type(dout, x)
    r = np.where(np.asarray(x) > 0, np.asarray(dout, dtype=dt), dt.type(0)).astype(dt, copy=False)
    if out is None:
        return r[()] if r.ndim == 0 else r
    o = out[0] if isinstance(out, tuple) else out
    if o.flags.writeable:  # as a ufunc: the inputs broadcast to out's shape
        np.copyto(o, np.broadcast_to(r, o.shape), casting="same_kind")
    else:
        raise ValueError("read-only")
    return o


def _arrays_only(*args):
    if not all(isinstance(v, np.ndarray) and v.dtype.kind == "f" for v in args):
        raise NoOracle()


def _dot_backward(dout, a, b):
    _arrays_only(dout, a, b)
    a, b, dout = np.asarray(a), np.asarray(b), np.asarray(dout)
    if dout.shape != dot_shape(a.shape, b.shape):
        raise ValueError("dout shape")
    if a.ndim == 0 or b.ndim == 0:
        return _sum_to(dout * b, a.shape), _sum_to(dout * a, b.shape)
    K = a.shape[-1]
    if K != b.shape[-2 if b.ndim >= 2 else 0]:
        raise ValueError("K")
    N = 1 if b.ndim == 1 else b.shape[-1]
    a2, b3 = a.reshape(-1, K), b.reshape(-1, K, N)
    d3 = dout.reshape(a2.shape[0], b3.shape[0], N)
    return (np.einsum("ipn,pkn->ik", d3, b3).reshape(a.shape), np.einsum("ik,ipn->pkn", a2, d3).reshape(b.shape))


def _matmul_backward(dout, a, b):
    _arrays_only(dout, a, b)
    a, b, dout = np.asarray(a), np.asarray(b), np.asarray(dout)
    if a.ndim == 0 or b.ndim == 0 or dout.shape != matmul_shape(a.shape, b.shape):
        raise ValueError("shapes")
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    d2 = dout
    if a.ndim == 1 and b.ndim == 1:
        d2 = dout.reshape(1, 1)
    elif a.ndim == 1:
        d2 = np.expand_dims(dout, -2)
    elif b.ndim == 1:
        d2 = np.expand_dims(dout, -1)
    da = _sum_to(d2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
    db = _sum_to(np.swapaxes(a2, -1, -2) @ d2, b2.shape).reshape(b.shape)
    return da, db


def _cuda_binary(op, out, a, b):
    f = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply, "maximum": np.maximum}[op]
    r = f(a, b)
    if out.shape != r.shape:
        raise ValueError("out shape")
    np.copyto(out, r)


def _cuda_gemm(c, a, b, bias, relu):
    r = np.matmul(a, b)
    if bias is not None:
        r = r + bias
    if relu:
        r = np.maximum(r, 0)
    if c.shape != r.shape:
        raise ValueError("c shape")
    np.copyto(c, r)


TWINS = {
    "add": np.add, "subtract": np.subtract, "multiply": np.multiply, "maximum": np.maximum,
    "relu": lambda x, out=None: np.maximum(x, 0.0) if out is None else np.maximum(x, 0.0, out=out),
    "relu_backward": _relu_backward,
    "sum": np.sum, "sum_to": _sum_to,
    "add_backward": lambda dout, xs, ys: (_sum_to(dout, xs), _sum_to(dout, ys))
    if np.broadcast_shapes(tuple(xs), tuple(ys)) == np.shape(dout) else (_ for _ in ()).throw(ValueError("shapes")),
    # np.dot with a 0-d operand is documented as np.multiply, but NumPy's BLAS path gives 0 for
    # 0 * inf; pykernels follows multiply (NaN)
    "dot": lambda a, b, out=None: np.multiply(np.asarray(a), np.asarray(b), out=out) if 0 in (np.ndim(a), np.ndim(b)) else np.dot(a, b, out=out),
    "matmul": np.matmul, "dot_backward": _dot_backward, "matmul_backward": _matmul_backward,
    "dense": pkref.dense, "dense_backward": pkref.dense_backward,
    "softmax_cross_entropy": pkref.softmax_cross_entropy,
    "softmax_cross_entropy_backward": pkref.softmax_cross_entropy_backward,
    "sgd_update": pkref.sgd_update, "rmsprop_update": pkref.rmsprop_update, "adam_update": pkref.adam_update,
    "adagrad_update": pkref.adagrad_update,
    "_cuda_emu_binary": _cuda_binary, "_cuda_emu_gemm": _cuda_gemm,
    "_gemm_naive": lambda a, b: np.matmul(a, b) if np.ndim(a) == 2 and np.ndim(b) == 2 else 1 / 0,
}


# ---- byte checks ------------------------------------------------------------------------------------

def _element_bytes(v: np.ndarray, base: np.ndarray):
    """Byte offsets in ``base`` of every element of ``v`` (None when v is not inside base)."""
    start = v.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    o = np.array([start], dtype=np.int64)
    for n, st in zip(v.shape, v.strides):
        o = (o[:, None] + np.arange(n, dtype=np.int64)[None, :] * st).reshape(-1)
    o = (o[:, None] + np.arange(v.dtype.itemsize, dtype=np.int64)[None, :]).reshape(-1)
    if o.size and (o.min() < 0 or o.max() >= base.size):
        return None
    return o


def _outputs(call, built):
    outs = []
    for key in OUTPUTS.get(call["fn"], []):
        v = built.args[key] if isinstance(key, int) and key < len(built.args) else built.kwargs.get(key)
        if isinstance(v, tuple) and len(v) == 1:
            v = v[0]
        if isinstance(v, np.ndarray):
            outs.append(v)
    return outs


def _allowed_masks(call, built):
    masks = []
    outs = _outputs(call, built)
    for base, _ in built.bases:
        m = np.zeros(base.size, bool)
        for o in outs:
            if o.size > (1 << 22) and np.shares_memory(o, base):
                m[:] = True  # a zero-stride view of a small buffer: all of it
            elif o.size and np.shares_memory(o, base):
                idx = _element_bytes(o, base)
                if idx is not None:
                    m[idx] = True
        masks.append(m)
    return masks


# ---- value comparison -------------------------------------------------------------------------------

def _close(got, want, mag, n: int, what: str, exact: bool = False, nan_ok=None, calc=None):
    """``calc``: the dtype the result was computed in, where it is coarser than the result's (a
    float32 product written to a float64 out= is rounded as float32, by NumPy too)."""
    got_a, want_a = np.asarray(got), np.asarray(want)
    if got_a.shape != want_a.shape:
        raise Failure("wrong", f"{what}: shape {got_a.shape} != NumPy's {want_a.shape}")
    if got_a.dtype.newbyteorder("=") != want_a.dtype.newbyteorder("="):
        raise Failure("wrong", f"{what}: dtype {got_a.dtype} != NumPy's {want_a.dtype}")
    if got_a.dtype.kind not in "fc":
        if not np.array_equal(got_a, want_a):
            raise Failure("wrong", f"{what}: values differ")
        return
    g64, w64 = got_a.astype(np.complex128 if got_a.dtype.kind == "c" else np.float64), want_a.astype(np.float64 if want_a.dtype.kind == "f" else np.complex128)
    gn, wn = np.isnan(g64), np.isnan(w64)
    if exact:
        bad = (gn != wn) | (~gn & ~wn & ((g64 != w64) | (np.signbit(np.real(g64)) != np.signbit(np.real(w64)))))
    else:
        mag = np.broadcast_to(np.asarray(mag, dtype=np.float64), g64.shape)
        fi = np.finfo(got_a.dtype)
        if calc is not None and np.dtype(calc).kind == "f" and np.finfo(calc).eps > fi.eps:
            fi = np.finfo(calc)
        eps = fi.eps
        with np.errstate(all="ignore"):
            bound = 2.0 * (n + 2) * eps * mag + 4 * fi.tiny
            err = np.abs(g64 - w64)
            # terms NumPy could sum past the dtype's range in another order: no comparison
            fin = np.isfinite(mag) & (mag <= np.finfo(got_a.dtype).max / 4)
            bad = fin & ((gn != wn) | (~gn & (err > bound)))
            bad |= np.isnan(mag) & ~gn  # a NaN among the terms must give NaN
            if nan_ok is not None:  # NumPy's BLAS skips zero terms: 0 * inf is no NaN there
                bad &= ~(gn & np.broadcast_to(nan_ok, g64.shape))
    if np.any(bad):
        i = tuple(int(j) for j in np.argwhere(bad)[0]) if g64.ndim else ()
        raise Failure("wrong", f"{what}: at {i} got {g64[i]!r}, NumPy {w64[i]!r} ({int(bad.sum())} elements differ)")


def _abs64(v):
    if isinstance(v, np.ndarray) and v.dtype.kind in "fiub":
        return np.abs(np.asarray(v).astype(np.float64))
    return v


def _terms(name, a):
    """(magnitude of the terms of each result, number of terms) for the tolerance."""
    if name in ("dot", "matmul", "_gemm_naive", "dense", "_cuda_emu_gemm"):
        x, y = (a[1], a[2]) if name == "_cuda_emu_gemm" else (a[0], a[1])
        x, y = _abs64(np.asarray(x)), _abs64(np.asarray(y))
        f = np.dot if name == "dot" else np.matmul
        with np.errstate(all="ignore"):
            m = f(x, y)
        return m, max(np.shape(x)[-1:] or (1,))


def _nan_terms(name, a):
    """Where a product has a NaN term in IEEE arithmetic (NaN, or 0 times inf)."""
    x, y = (a[1], a[2]) if name == "_cuda_emu_gemm" else (a[0], a[1])
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind != "f" or y.dtype.kind != "f":
        return None
    f = np.dot if name == "dot" else np.matmul
    ind = lambda c: c.astype(np.float64)  # noqa: E731
    with np.errstate(all="ignore"):
        t = f(ind((x == 0) | np.isnan(x)), ind(np.isinf(y) | np.isnan(y)))
        t = t + f(ind(np.isinf(x) | np.isnan(x)), ind((y == 0) | np.isnan(y)))
    return t > 0
    return None, 1


def _same_kind(got, want):
    """A NumPy scalar where NumPy returns one, an ndarray where NumPy returns an array (an ndarray
    subclass NumPy's ufuncs would keep, pykernels returns as a plain ndarray)."""
    if isinstance(want, np.ndarray) and type(want) is not np.ndarray:
        return  # a subclass kept by NumPy (0-d included): pykernels returns plain arrays / scalars
    if isinstance(want, np.ndarray) != isinstance(got, np.ndarray) or (
            not isinstance(want, np.ndarray) and type(got) is not type(want)):
        raise Failure("wrong", f"returned {type(got).__name__}, NumPy {type(want).__name__}")


def compare(call, pk_built, np_built, got, want, pre):
    """``pre``: a third copy of the arguments, untouched (inputs may alias an output)."""
    name = call["fn"]
    if np.asarray(want if not isinstance(want, tuple) else 0).dtype == object:
        return  # NumPy computed with Python objects (an int beyond int64): pykernels in float64
    if isinstance(want, (float, int)) and not isinstance(want, np.generic):
        return  # the same, reduced to a Python object
    kw_out = pk_built.kwargs.get("out")
    if name in EXACT and name != "_cuda_emu_binary":
        if kw_out is not None:
            o = kw_out[0] if isinstance(kw_out, tuple) else kw_out
            if got is not o:
                raise Failure("wrong", "out= given but not returned")
            _close(got, np_built.kwargs["out"][0] if isinstance(np_built.kwargs["out"], tuple) else np_built.kwargs["out"], None, 0, "out", exact=True)
        else:
            _same_kind(got, want)
            _close(got, want, None, 0, "result", exact=True)
        return
    if name == "_cuda_emu_binary":
        _close(pk_built.args[1], np_built.args[1], None, 0, "out", exact=True)
        return
    if name in ("dot", "matmul", "_gemm_naive"):
        mag, n = _terms(name, pre.args)
        ok = _nan_terms(name, pre.args)
        if kw_out is not None:
            calc = np.result_type(*(np.asarray(v).dtype for v in pre.args[:2]))
            _close(got, np.asarray(want), mag, n, "out", nan_ok=ok, calc=calc)
        else:
            _same_kind(got, want)
            _close(got, want, mag, n, "result", nan_ok=ok)
        return
    if name in ("sum", "sum_to", "add_backward"):
        x = pre.args[0]
        xa = _abs64(np.asarray(x))
        n = max(np.size(x), 1)
        with np.errstate(all="ignore"):
            if name == "sum":
                mag = np.sum(xa, **{k: v for k, v in np_built.kwargs.items()})
                _same_kind(got, want)
                _close(got, want, mag, n, "sum")
            elif name == "sum_to":
                _close(got, want, _sum_to(xa, np_built.args[1]), n, "sum_to")
            else:
                _close(got[0], want[0], _sum_to(xa, np_built.args[1]), n, "dx")
                _close(got[1], want[1], _sum_to(xa, np_built.args[2]), n, "dy")
        return
    # the rest: products, softmax and optimizers. Tolerance from the largest magnitude involved.
    arrays = [v for v in list(pre.args) + list(pre.kwargs.values()) if isinstance(v, np.ndarray)]
    n = max([v.size for v in arrays] + [1])
    with np.errstate(all="ignore"):
        mags = [np.abs(np.asarray(v).astype(np.float64)) for v in arrays if v.size and v.dtype.kind in "fiub"]
        for w in (want if isinstance(want, tuple) else (want,)):
            if w is not None and np.asarray(w).dtype.kind in "fiub":
                mags.append(np.abs(np.asarray(w, dtype=np.float64)))
        big = max([float(np.max(m[np.isfinite(m)], initial=0.0)) for m in mags] + [1.0])
    big = big * big if name in ("dot_backward", "matmul_backward", "dense", "dense_backward", "_cuda_emu_gemm") else big
    if name in OPTIMIZERS or name.startswith("softmax"):
        n = 16  # element-wise formulas (softmax: a row's sum): a few roundings each
        if name.startswith("softmax"):
            n = max([v.shape[-1] for v in arrays if v.ndim == 2] + [1]) + 16
    pairs = []
    if name in ("dot_backward", "matmul_backward"):
        pairs = [(got[0], want[0], "da"), (got[1], want[1], "db")]
    elif name == "dense":
        mag, k = _terms(name, pre.args)
        b = pre.kwargs.get("b")
        if isinstance(b, np.ndarray) and b.dtype.kind in "fiu":
            with np.errstate(all="ignore"):
                mag = mag + _abs64(b)
        _close(got, want, mag, k + 1, "y", nan_ok=_nan_terms(name, pre.args))
    elif name == "dense_backward":
        pairs = [(g, w, k) for g, w, k in zip(got, want, ("dx", "dW", "db")) if not (g is None and w is None)]
    elif name == "_cuda_emu_gemm":
        mag, k = _terms(name, pre.args)
        b = pre.args[3]
        if isinstance(b, np.ndarray) and b.dtype.kind in "fiu":
            with np.errstate(all="ignore"):
                mag = mag + _abs64(b)
        _close(pk_built.args[0], np_built.args[0], mag, k + 1, "c", nan_ok=_nan_terms(name, pre.args))
    elif name == "softmax_cross_entropy_backward":
        pairs = [(got, want, "dlogits")]
    elif name == "softmax_cross_entropy":
        if not (isinstance(got, float) and isinstance(want, float)):
            raise Failure("wrong", f"loss is {type(got).__name__}, not float")
        pairs = [(np.float64(got), np.float64(want), "loss")]
        for k in ("probs", "dlogits"):
            if isinstance(pk_built.kwargs.get(k), np.ndarray):
                pairs.append((pk_built.kwargs[k], np_built.kwargs[k], k))
    elif name in OPTIMIZERS:
        for key in OUTPUTS[name]:
            gv = pk_built.args[key] if isinstance(key, int) else pk_built.kwargs.get(key)
            wv = np_built.args[key] if isinstance(key, int) else np_built.kwargs.get(key)
            if isinstance(gv, np.ndarray):
                pairs.append((gv, wv, str(key)))
    for g, w, what in pairs:
        if (g is None) != (w is None):
            raise Failure("wrong", f"{what}: {g is None and 'None' or 'array'} where NumPy's is {w is None and 'None' or 'array'}")
        if g is not None:
            w = np.asarray(w)
            _close(g, w, big, n, what)


# ---- one call -------------------------------------------------------------------------------------------

def set_runtime(call):
    _core._set_isa(call["isa"])
    pk.set_num_threads(call["threads"])
    if call.get("stream", -1) >= 0:
        _core._set_stream_min_bytes(call["stream"])


def run_call(call: dict) -> tuple[str, str]:
    """Runs one call and checks it: returns (outcome, detail); raises Failure on a failure."""
    name = call["fn"]
    try:
        pk_built = build_call(call)
        np_built = build_call(call)
        pre = build_call(call)
    except Exception as e:  # NumPy refused to build the arguments (e.g. a too-big broadcast)
        return "skip", f"build: {type(e).__name__}: {e}"
    snaps = [base.copy() for base, _ in pk_built.bases]
    masks = _allowed_masks(call, pk_built)
    threads0 = pk.get_num_threads()
    stream0 = _core._stream_min_bytes()
    set_runtime(call)
    fn = _fn(name)
    pk_exc = None
    try:
        got = fn(*pk_built.args, **pk_built.kwargs)
    except OK_EXCEPTIONS as e:
        pk_exc = e
    except Exception as e:
        if not any(m in str(e) for m in OWN_MESSAGES):
            raise Failure("exception", f"{type(e).__name__}: {e}\n{traceback.format_exc()}") from None
        pk_exc = e
    finally:
        if name == "set_num_threads":
            if pk.get_num_threads() < 1:
                raise Failure("wrong", f"get_num_threads() is {pk.get_num_threads()} after set_num_threads")
        pk.set_num_threads(threads0)
        _core._set_stream_min_bytes(stream0)
    for (base, view), snap, allowed in zip(pk_built.bases, snaps, masks):
        changed = np.flatnonzero((base != snap) & ~allowed)
        if changed.size:
            raise Failure("write", f"{changed.size} bytes changed outside the outputs (first at byte {int(changed[0])} "
                                   f"of a buffer holding an array of shape {view.shape} dtype {view.dtype})")
    twin = TWINS.get(name)
    if twin is None or pk_built.huge:
        return ("raised", type(pk_exc).__name__) if pk_exc is not None else ("returned", "")
    np_exc = None
    try:
        with np.errstate(all="ignore"):
            want = twin(*np_built.args, **np_built.kwargs)
    except NoOracle:
        return ("raised", type(pk_exc).__name__) if pk_exc is not None else ("returned", "no oracle")
    except Exception as e:
        np_exc = e
    if pk_exc is not None:
        return "raised", type(pk_exc).__name__ + ("" if np_exc is not None else " (NumPy returned)")
    if np_exc is not None:
        # NumPy 2 refuses a numpy.bool keepdims ("cannot be interpreted as an integer"); pykernels
        # takes any bool-like flag: a leniency, not a wrong answer.
        lenient = name == "sum" and "numpy.bool" in str(np_exc)
        # np.ma's own ufunc path refuses some calls with a masked out= that NumPy itself takes
        vals = list(np_built.args) + list(np_built.kwargs.values())
        vals += [x for v in vals if isinstance(v, tuple) for x in v]
        lenient |= any(isinstance(v, np.ma.MaskedArray) for v in vals)
        if name in FAITHFUL and isinstance(np_exc, (TypeError, ValueError)) and not lenient:
            raise Failure("accepts", f"returned {type(got).__name__} where NumPy raised {type(np_exc).__name__}: {np_exc}")
        return "returned", "NumPy raised"
    compare(call, pk_built, np_built, got, want, pre)
    return "ok", ""


# ---- reproducers ---------------------------------------------------------------------------------------

def literal(v) -> str:
    """Python source for a recipe literal (floats nan/inf, numpy scalars, nested containers)."""
    if isinstance(v, float):
        if math.isnan(v):
            return "float('nan')"
        if math.isinf(v):
            return "float('inf')" if v > 0 else "-float('inf')"
        return repr(v)
    if isinstance(v, np.generic):
        return f"np.{type(v).__name__}({literal(v.item())})"
    if isinstance(v, tuple):
        return "(" + "".join(literal(x) + ", " for x in v) + ")"
    if isinstance(v, list):
        return "[" + ", ".join(literal(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(x)}" for k, x in v.items()) + "}"
    return repr(v)


def describe(call: dict) -> str:
    """A one-line description of the arguments (dtype/shape/layout of each)."""
    def d(r):
        if isinstance(r, tuple) and r and r[0] in ("arr", "bcast"):
            return f"{r[0]}({r[1]},{r[2] if r[0] == 'arr' else r[3]},{r[3] if r[0] == 'arr' else 'zero-stride'})"
        return literal(r)[:60]
    a = ", ".join(d(r) for r in call["args"])
    k = ", ".join(f"{key}={d(r)}" for key, r in call["kwargs"].items())
    return f"{call['fn']}({a}{', ' if a and k else ''}{k}) isa={call['isa']} threads={call['threads']}"


def reproducer(call: dict, kind: str, detail: str) -> str:
    comment = "\n".join("# " + line for line in detail.strip().splitlines()[-60:])
    return f'''"""Fuzz failure ({kind}): {describe(call)}
Run from the repository root: python <this file>
"""
import os, sys
import numpy as np  # noqa: F401  (recipes may hold numpy scalars)
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), *[".."] * 3)))
sys.path.insert(0, os.getcwd())
from tests.fuzz import oracle

CALL = {literal(call)}

{comment}
if __name__ == "__main__":
    print(oracle.run_call(CALL))
'''
