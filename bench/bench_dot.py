"""Matrix products: naive (the book's loops), NumPy/OpenBLAS, PyTorch (if installed) and pykernels,
each at 1 and 2 threads, parametrised by (case, impl, threads). benchmark.extra_info carries the
flop count, so the report can print GFLOP/s, the ratio to NumPy and the % of the measured FMA peak
(test_fma_peak). OpenBLAS (threadpoolctl) and PyTorch are pinned to the same thread count as
pykernels in each benchmark.

Run (on an otherwise idle machine; OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset for a fair NumPy):
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest bench/bench_dot.py --benchmark-json=out.json
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys

import numpy as np
import pytest

import pykernels as pk

sys.path.insert(0, os.path.dirname(__file__))
from conftest import warm  # noqa: E402
from naive_dot import naive_matrix_dot, naive_matrix_vector_dot, naive_vector_dot  # noqa: E402

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

HAVE_TORCH = importlib.util.find_spec("torch") is not None
THREADS = (1, 2)
F32 = np.float32


def _rng():
    return np.random.default_rng(0)


def _mat(shape, dt=F32, transpose=False):
    r = _rng().standard_normal(shape[::-1] if transpose else shape).astype(dt)
    return r.T if transpose else r


# name -> (a, b, flops, naive allowed)
def _cases():
    c = {}
    for n in (32, 64, 128, 256, 512, 1024, 2048):
        c[f"square{n}"] = (lambda n=n: (_mat((n, n)), _mat((n, n))), 2 * n**3, n <= 64)
    c["square1024_f64"] = (lambda: (_mat((1024, 1024), np.float64), _mat((1024, 1024), np.float64)), 2 * 1024**3, False)
    c["square2048_f64"] = (lambda: (_mat((2048, 2048), np.float64), _mat((2048, 2048), np.float64)), 2 * 2048**3, False)
    c["vecdot4096"] = (lambda: (_mat((4096,)), _mat((4096,))), 2 * 4096, True)
    for n in (256, 1024, 4096):
        c[f"matvec{n}"] = (lambda n=n: (_mat((n, n)), _mat((n,))), 2 * n * n, n <= 256)
    c["matvec784x512"] = (lambda: (_mat((784, 512)), _mat((512,))), 2 * 784 * 512, False)
    # The MNIST model's training products (batch 128, 784 -> 512 -> 10).
    c["mnist_X.W"] = (lambda: (_mat((128, 784)), _mat((784, 512))), 2 * 128 * 784 * 512, False)
    c["mnist_XT.dY"] = (lambda: (_mat((128, 784)).T, _mat((128, 512))), 2 * 128 * 784 * 512, False)
    c["mnist_dY.WT"] = (lambda: (_mat((128, 512)), _mat((784, 512)).T), 2 * 128 * 784 * 512, False)
    c["mnist_H.W2"] = (lambda: (_mat((128, 512)), _mat((512, 10))), 2 * 128 * 512 * 10, False)
    c["mnist_HT.dZ"] = (lambda: (_mat((128, 512)).T, _mat((128, 10))), 2 * 128 * 512 * 10, False)
    c["mnist_dZ.W2T"] = (lambda: (_mat((128, 10)), _mat((512, 10)).T), 2 * 128 * 512 * 10, False)
    return c


CASES = _cases()


@contextlib.contextmanager
def pinned(impl, threads):
    """Pin every library involved to `threads`."""
    stack = contextlib.ExitStack()
    with stack:
        if threadpool_limits is not None:
            stack.enter_context(threadpool_limits(limits=threads))
        stack.enter_context(pk.threads(threads))
        if impl == "torch":
            import torch

            old = torch.get_num_threads()
            torch.set_num_threads(threads)
            stack.callback(torch.set_num_threads, old)
        yield


def _one_blas_thread():
    """For the reference results computed next to a benchmark: a multi-threaded OpenBLAS call leaves
    its worker threads spinning for ~0.1 s (see conftest._settle), which would slow the benchmark
    that follows it on a 2-core machine."""
    return threadpool_limits(limits=1, user_api="blas") if threadpool_limits is not None else contextlib.nullcontext()


def _naive(a, b):
    if a.ndim == 1 and b.ndim == 1:
        return naive_vector_dot(a, b)
    if b.ndim == 1:
        return naive_matrix_vector_dot(a, b)
    return naive_matrix_dot(a, b)


def _fn(impl, a, b):
    if impl == "numpy":
        return lambda: np.dot(a, b)
    if impl == "pykernels":
        return lambda: pk.dot(a, b)
    if impl == "naive":
        return lambda: _naive(a, b)
    import torch

    ta, tb = torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(np.ascontiguousarray(b))
    if a.ndim == 2 and not a.flags.c_contiguous:
        ta = torch.from_numpy(np.ascontiguousarray(a.T)).T
    if b.ndim == 2 and not b.flags.c_contiguous:
        tb = torch.from_numpy(np.ascontiguousarray(b.T)).T
    return lambda: torch.matmul(ta, tb)


IMPLS = ["naive", "numpy", "pykernels"] + (["torch"] if HAVE_TORCH else [])


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", list(CASES))
def test_dot(benchmark, pytestconfig, case, impl, threads):
    make, flops, naive_ok = CASES[case]
    if impl == "naive" and (not naive_ok or threads != 1):
        pytest.skip("naive loops: small sizes, one thread only")
    a, b = make()
    f = _fn(impl, a, b)
    with _one_blas_thread():
        expect = np.dot(a.astype(np.float64), b.astype(np.float64))
    with pinned(impl, threads):
        got = np.asarray(f())
        tol = 1e-3 * np.sqrt(a.shape[-1]) if a.dtype == F32 else 1e-9 * np.sqrt(a.shape[-1])
        np.testing.assert_allclose(got, expect, rtol=tol, atol=tol)  # checked once, outside the timing
        benchmark.extra_info.update(flops=flops, threads=threads, impl=impl, case=case, dtype=str(a.dtype))
        warm(f, pytestconfig)
        benchmark(f)


# ---- fused dense layer vs NumPy's unfused expressions ------------------------------------------
DENSE = {"dense784x512": (128, 784, 512), "dense512x10": (128, 512, 10)}


def _dense_data(shape):
    m, k, n = shape
    x, W, b = _mat((m, k)), _mat((k, n)) * F32(0.05), _mat((n,))
    y = np.maximum(x @ W + b, 0)
    return x, W, b, y, _mat((m, n))


def _np_dense_backward(dy, x, W, y):
    dz = dy * (y > 0)
    return dz @ W.T, x.T @ dz, dz.sum(axis=0)


# "pk-bare": the GEMMs alone (pykernels, same threads), the yardstick of the fused kernels' epilogue
# and packing-time work: forward x @ W (no bias, no relu), backward x.T @ dz and dz @ W.T on a dz
# masked beforehand (no mask, no column sums).
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("impl", ["numpy", "pykernels", "pk-bare"])
@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("case", list(DENSE))
def test_dense(benchmark, pytestconfig, case, direction, impl, threads):
    m, k, n = DENSE[case]
    with _one_blas_thread():
        x, W, b, y, dy = _dense_data(DENSE[case])
    if direction == "forward":
        flops = 2 * m * k * n
        if impl == "numpy":
            f = lambda: np.maximum(x @ W + b, 0)  # noqa: E731
            ref = f
        elif impl == "pykernels":
            f = lambda: pk.dense(x, W, b, activation="relu")  # noqa: E731
            ref = lambda: np.maximum(x @ W + b, 0)  # noqa: E731
        else:
            f = lambda: pk.dot(x, W)  # noqa: E731
            ref = lambda: x @ W  # noqa: E731
    else:
        flops = 4 * m * k * n
        ref = lambda: _np_dense_backward(dy, x, W, y)  # noqa: E731
        bufs = dict(dx=np.empty((m, k), F32), dW=np.empty((k, n), F32), db=np.empty((n,), F32))
        if impl == "numpy":
            f = lambda: _np_dense_backward(dy, x, W, y)  # noqa: E731
        elif impl == "pykernels":
            f = lambda: pk.dense_backward(dy, x, W, y=y, activation="relu", **bufs)  # noqa: E731
        else:
            dz = dy * (y > 0)
            f = lambda: (pk.dot(dz, W.T, out=bufs["dx"]), pk.dot(x.T, dz, out=bufs["dW"]))  # noqa: E731
            ref = lambda: _np_dense_backward(dy, x, W, y)[:2]  # noqa: E731
    with _one_blas_thread():
        expect = ref()
    with pinned(impl, threads):
        got = f()
        if direction == "forward":
            got, expect = [got], [expect]
        for g, e in zip(got, expect):
            np.testing.assert_allclose(g, e, rtol=1e-3, atol=1e-3)
        benchmark.extra_info.update(flops=flops, threads=threads, impl=impl, case=f"{case}_{direction}", dtype="float32")
        warm(f, pytestconfig)
        benchmark(f)


@pytest.mark.parametrize("threads", THREADS)
def test_fma_peak(benchmark, threads):
    """The machine's float32 FMA peak on `threads` threads (independent FMA chains, widest ISA)."""
    with pk.threads(threads):
        gflops = benchmark.pedantic(lambda: pk._core._fma_peak_gflops(0.1, threads), rounds=3, iterations=1)
    benchmark.extra_info.update(peak_gflops=gflops, threads=threads, impl="fma_peak", isa=pk._core._isa_active())
    assert gflops > 0
