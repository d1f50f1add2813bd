"""Element-wise kernels: pykernels (1 thread and all threads) vs NumPy, PyTorch (if importable,
same thread count) and the book's naive loops (<= 1e5 elements only).

Parametrised over op x impl x size x dtype x variant ("out": results written into a preallocated
array, "new": a new array per call). Every impl's result is checked once against NumPy outside the
timed call. extra_info records the bytes each call must move (reads + writes), so report.py can
print GB/s.
"""

from __future__ import annotations

import numpy as np
import pytest
from naive import naive_add, naive_add_matrix_and_vector, naive_relu

import pykernels as pk

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

IMPLS = ["naive", "numpy", "pykernels-1t", "pykernels-all", "torch"]
DTYPES = {"f32": np.float32, "f64": np.float64}
NAIVE_MAX = 100_000  # the Python loops take ~20 ms per 1e5 elements, ~0.2 s per 1e6: small sizes only
D = 100  # columns of the 2-D operands: (N/D, D), and the bias length of (N,D)+(D,)

_inputs: dict = {}


def _rand(shape, dtype, seed):
    key = (shape, dtype, seed)
    if key not in _inputs:
        if len(_inputs) > 8:  # keep memory bounded (1e7 float64 = 80 MB per array)
            _inputs.clear()
        _inputs[key] = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return _inputs[key]


def _t(a):
    return torch.from_numpy(a)


def _case(op: str, size: int, dtype):
    """Inputs, NumPy reference, bytes moved and {impl: {variant: callable}} for one op."""
    rows = max(1, size // D)
    if op == "maximum_book":  # the book's broadcasting example
        x, y = _rand((64, 3, 32, 10), dtype, 1), _rand((32, 10), dtype, 2)
        out = np.empty_like(x)
        ref = np.maximum(x, y)
        fns = {
            "numpy": {"out": lambda: np.maximum(x, y, out=out), "new": lambda: np.maximum(x, y)},
            "pk": {"out": lambda: pk.maximum(x, y, out=out), "new": lambda: pk.maximum(x, y)},
        }
        if torch is not None:
            xt, yt, ot = _t(x), _t(y), _t(out)
            fns["torch"] = {"out": lambda: torch.maximum(xt, yt, out=ot), "new": lambda: torch.maximum(xt, yt)}
        return ref, 2 * x.nbytes + y.nbytes, fns, x.size
    x = _rand((rows, D), dtype, 1)
    out = np.empty_like(x)
    if op == "relu":
        ref = np.maximum(x, 0)
        nbytes = 2 * x.nbytes
        fns = {
            "numpy": {"out": lambda: np.maximum(x, 0, out=out), "new": lambda: np.maximum(x, 0)},
            "pk": {"out": lambda: pk.relu(x, out=out), "new": lambda: pk.relu(x)},
            "naive": {"new": lambda: naive_relu(x)},
        }
        if torch is not None:
            xt, ot = _t(x), _t(out)
            fns["torch"] = {"out": lambda: torch.clamp(xt, min=0, out=ot), "new": lambda: torch.relu(xt)}
    elif op in ("negative", "abs"):  # the unary ops: one read, one write
        npf, pkf = {"negative": (np.negative, pk.negative), "abs": (np.abs, pk.abs)}[op]
        ref = npf(x)
        nbytes = 2 * x.nbytes
        fns = {
            "numpy": {"out": lambda: npf(x, out=out), "new": lambda: npf(x)},
            "pk": {"out": lambda: pkf(x, out=out), "new": lambda: pkf(x)},
        }
        if torch is not None:
            xt, ot = _t(x), _t(out)
            tf = {"negative": torch.neg, "abs": torch.abs}[op]
            fns["torch"] = {"out": lambda: tf(xt, out=ot), "new": lambda: tf(xt)}
    elif op in ("exp", "log", "tanh", "sigmoid"):  # transcendental: compute-bound, within 1 ULP (not bitwise)
        xin = np.abs(x) + dtype(0.1) if op == "log" else x
        npf = {"exp": np.exp, "log": np.log, "tanh": np.tanh,
               "sigmoid": lambda v, out=None: np.divide(1, np.add(1, np.exp(np.negative(v)), out=out), out=out)}[op]
        pkf = getattr(pk, op)
        ref = npf(xin)
        nbytes = 2 * x.nbytes
        fns = {
            "numpy": {"out": lambda: npf(xin, out=out), "new": lambda: npf(xin)},
            "pk": {"out": lambda: pkf(xin, out=out), "new": lambda: pkf(xin)},
        }
        if torch is not None:
            xt, ot = _t(xin), _t(out)
            tf = {"exp": torch.exp, "log": torch.log, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[op]
            fns["torch"] = {"out": lambda: tf(xt, out=ot), "new": lambda: tf(xt)}
    elif op == "relu_backward":
        dy = _rand((rows, D), dtype, 3)
        ref = np.where(x > 0, dy, 0).astype(dtype)
        nbytes = 3 * x.nbytes
        fns = {
            "numpy": {"out": lambda: np.multiply(dy, x > 0, out=out), "new": lambda: dy * (x > 0)},
            "pk": {"out": lambda: pk.relu_backward(dy, x, out=out), "new": lambda: pk.relu_backward(dy, x)},
        }
        if torch is not None:
            dyt, xt, ot = _t(dy), _t(x), _t(out)
            tb = torch.ops.aten.threshold_backward
            fns["torch"] = {"out": lambda: tb.grad_input(dyt, xt, 0.0, grad_input=ot),
                            "new": lambda: tb(dyt, xt, 0.0)}
    elif op == "add":
        y = _rand((rows, D), dtype, 2)
        ref = x + y
        nbytes = 3 * x.nbytes
        fns = {
            "numpy": {"out": lambda: np.add(x, y, out=out), "new": lambda: np.add(x, y)},
            "pk": {"out": lambda: pk.add(x, y, out=out), "new": lambda: pk.add(x, y)},
            "naive": {"new": lambda: naive_add(x, y)},
        }
        if torch is not None:
            xt, yt, ot = _t(x), _t(y), _t(out)
            fns["torch"] = {"out": lambda: torch.add(xt, yt, out=ot), "new": lambda: torch.add(xt, yt)}
    elif op == "add_bias":  # (N,D) + (D,)
        b = _rand((D,), dtype, 2)
        ref = x + b
        nbytes = 2 * x.nbytes + b.nbytes
        fns = {
            "numpy": {"out": lambda: np.add(x, b, out=out), "new": lambda: np.add(x, b)},
            "pk": {"out": lambda: pk.add(x, b, out=out), "new": lambda: pk.add(x, b)},
            "naive": {"new": lambda: naive_add_matrix_and_vector(x, b)},
        }
        if torch is not None:
            xt, bt, ot = _t(x), _t(b), _t(out)
            fns["torch"] = {"out": lambda: torch.add(xt, bt, out=ot), "new": lambda: torch.add(xt, bt)}
    elif op == "sum_to":  # (N,D) -> (D,): the bias gradient
        ref = np.sum(x.astype(np.longdouble), axis=0).astype(np.float64)  # ~exact: see _checker
        nbytes = x.nbytes + x.itemsize * D
        fns = {
            "numpy": {"new": lambda: np.sum(x, axis=0)},
            "pk": {"new": lambda: pk.sum_to(x, (D,))},
        }
        if torch is not None:
            xt = _t(x)
            fns["torch"] = {"new": lambda: torch.sum(xt, dim=0)}
    else:  # pragma: no cover
        raise ValueError(op)
    return ref, nbytes, fns, x.size


def _checker(op, ref, dtype, fns):
    if op == "sum_to":
        ref64 = ref  # the sum in extended precision, rounded to float64
        np_err = float(np.max(np.abs(np.asarray(fns["numpy"]["new"](), np.float64) - ref64), initial=0.0))
        # no further from ref64 than twice np.sum's own error, plus a few ulps of rounding
        tol = 2 * np_err + 4 * float(np.finfo(dtype).eps) * float(np.max(np.abs(ref64), initial=1.0))

    def check(r):
        r = r.numpy() if torch is not None and isinstance(r, torch.Tensor) else np.asarray(r)
        assert r.shape == ref.shape and r.dtype == dtype, (r.shape, r.dtype)
        if op == "sum_to":
            assert float(np.max(np.abs(r.astype(np.float64) - ref64), initial=0.0)) <= tol
        elif op in _ULP_OPS:  # within a few ULPs of NumPy (NumPy's float32 loops are up to 3.5 ULP off;
            # its softmax rounds x - max, a relative error of |x - max| * eps in exp: up to ~20 eps here)
            ulps = 64 if op == "softmax" else 8
            np.testing.assert_allclose(r, ref, rtol=ulps * float(np.finfo(dtype).eps), atol=0)
        else:
            np.testing.assert_array_equal(r, ref)

    return check


_ULP_OPS = ("exp", "log", "tanh", "sigmoid", "softmax")


def _run(run_bench, op, impl, size, dtype_name, variant):
    dtype = DTYPES[dtype_name]
    if impl == "naive" and size > NAIVE_MAX:
        pytest.skip("naive loops only up to 1e5 elements")
    if impl == "torch" and torch is None:
        pytest.skip("torch not installed")
    ref, nbytes, fns, n = _case(op, size, dtype)
    key = "pk" if impl.startswith("pykernels") else impl
    if key not in fns or variant not in fns[key]:
        pytest.skip(f"{impl} has no {variant} form of {op}")
    run_bench(impl, fns[key][variant], _checker(op, ref, dtype, fns), op=op, dtype=dtype_name, size=n,
              variant=variant, bytes=nbytes)


@pytest.mark.parametrize("variant", ["out", "new"])
@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("op", ["relu", "relu_backward", "add", "add_bias", "negative", "abs", "exp", "log", "tanh",
                                "sigmoid"])
def test_elementwise(run_bench, op, impl, size, dtype_name, variant):
    _run(run_bench, op, impl, size, dtype_name, variant)


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("impl", IMPLS)
def test_sum_to(run_bench, impl, size, dtype_name):
    _run(run_bench, "sum_to", impl, size, dtype_name, "new")


@pytest.mark.parametrize("variant", ["out", "new"])
@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("impl", IMPLS)
def test_maximum_book(run_bench, impl, dtype_name, variant):
    """The book's broadcasting example: np.maximum of (64, 3, 32, 10) and (32, 10)."""
    _run(run_bench, "maximum_book", impl, 0, dtype_name, variant)


def _softmax_case(shape, dtype):
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype) * 3

    def five_pass():  # NumPy's max-shifted softmax: max, subtract, exp, sum, divide
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    fns = {"numpy": five_pass, "pk": lambda: pk.softmax(x)}
    if torch is not None:
        xt = _t(x)
        fns["torch"] = lambda: torch.softmax(xt, dim=-1)
    return x, five_pass(), fns


@pytest.mark.parametrize("shape", [(128, 10), (4096, 1000), (1_000_000, 10)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("impl", ["numpy", "pykernels-1t", "pykernels-all", "torch"])
def test_softmax(run_bench, impl, shape, dtype_name):
    """Row softmax (last axis) against NumPy's five-pass expression and torch.softmax."""
    dtype = DTYPES[dtype_name]
    if impl == "torch" and torch is None:
        pytest.skip("torch not installed")
    x, ref, fns = _softmax_case(shape, dtype)
    key = "pk" if impl.startswith("pykernels") else impl
    run_bench(impl, fns[key], _checker("softmax", ref, dtype, fns), op="softmax", dtype=dtype_name, size=x.size,
              variant="new", bytes=2 * x.nbytes)
