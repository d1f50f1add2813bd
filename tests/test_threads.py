"""Threads: thread-count control, bit-identical results for every thread count, OMP_NUM_THREADS,
fork safety (libgomp + fork, GCC bug 60035) and concurrent calls from several Python threads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import pykernels as pk
import strategies as S
from assertions import assert_identical
from pykernels.reference import OPS

# Big enough to go parallel: the element-wise grain is 2**16 elements per thread.
BIG = 1 << 20

requires_openmp = pytest.mark.skipif(not pk.openmp_enabled(), reason="built without OpenMP")


def _env(**kw):
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    env.update(kw)
    return env


def _run(script: str, cwd, timeout: float = 60, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=timeout, env=_env(**env), cwd=cwd)


# ---- control ----------------------------------------------------------------------------------


def test_set_get_num_threads():
    old = pk.get_num_threads()
    assert old >= 1
    pk.set_num_threads(1)
    assert pk.get_num_threads() == 1
    pk.set_num_threads(3)  # more than the cores is allowed (oversubscription is the user's call)
    assert pk.get_num_threads() == 3
    pk.set_num_threads(old)
    assert pk.get_num_threads() == old


def test_threads_context_manager_restores():
    old = pk.get_num_threads()
    with pk.threads(1):
        assert pk.get_num_threads() == 1
        with pk.threads(2):
            assert pk.get_num_threads() == 2
        assert pk.get_num_threads() == 1
    assert pk.get_num_threads() == old
    with pytest.raises(RuntimeError), pk.threads(1):  # restored on exceptions too
        raise RuntimeError
    assert pk.get_num_threads() == old


@pytest.mark.parametrize("bad", [0, -1, -8])
def test_invalid_thread_counts(bad):
    old = pk.get_num_threads()
    with pytest.raises(ValueError, match=r"n must be >= 1"):
        pk.set_num_threads(bad)
    with pytest.raises(ValueError, match=r"n must be >= 1"), pk.threads(bad):
        pass
    assert pk.get_num_threads() == old
    with pytest.raises(TypeError):
        pk.set_num_threads(1.5)
    with pytest.raises(TypeError):
        pk.set_num_threads("2")


# ---- determinism -------------------------------------------------------------------------------


def _big_args(op, dtype, rng, layout):
    a = rng.standard_normal(BIG).astype(dtype)
    b = rng.standard_normal(BIG).astype(dtype)
    a[::97] = np.nan
    b[::89] = -0.0
    if layout == "contiguous":
        args = [a, b]
    elif layout == "broadcast":
        args = [a.reshape(1024, 1024), b[:1024]]
    elif layout == "transposed":
        args = [a.reshape(1024, 1024).T, b.reshape(1024, 1024)]
    else:  # strided, reversed
        args = [a[::-2], b[1::2]]
    return args[: op.nargs]


@requires_openmp
@pytest.mark.parametrize("op", OPS, ids=str)
@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
@pytest.mark.parametrize("layout", ["contiguous", "broadcast", "transposed", "strided"])
def test_elementwise_bit_identical_across_thread_counts(op, dtype, layout, rng):
    args = _big_args(op, dtype, rng, layout)
    expected = op.reference(*args)
    results = []
    for n in (1, 2, 3):
        with pk.threads(n):
            results.append(op.pk_fn(*args))
            out = np.full(np.shape(expected), np.nan, dtype)
            assert op.pk_fn(*args, out=out) is out
            assert_identical(out, expected)
    for r in results:
        assert_identical(r, expected)


def test_omp_num_threads_honoured(neutral_cwd):
    p = _run("import pykernels as pk; print(pk.get_num_threads())", neutral_cwd, OMP_NUM_THREADS="1")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "1"
    if pk.openmp_enabled():
        p = _run("import pykernels as pk; print(pk.get_num_threads())", neutral_cwd, OMP_NUM_THREADS="3")
        assert p.stdout.strip() == "3"


# ---- fork --------------------------------------------------------------------------------------

FORK_SCRIPT = """
import multiprocessing as mp
import numpy as np
import pykernels as pk

N = 1 << 22

def child(q):
    x = np.arange(N, dtype=np.float32)
    r = pk.add(x, x)                        # big: would enter a parallel region in the parent
    s = pk.sum(x.reshape(-1, 4), axis=0)
    q.put((pk.get_num_threads(), pk._core._in_forked_child(), bool(np.array_equal(r, 2 * x)),
           bool(np.array_equal(s, np.sum(x.reshape(-1, 4), axis=0, dtype=np.float64).astype(np.float32)))))

if __name__ == "__main__":
    pk.set_num_threads(2)
    x = np.arange(N, dtype=np.float32)
    for _ in range(3):
        assert np.array_equal(pk.add(x, x), 2 * x)   # the parent uses its OpenMP pool
        pk.sum(x)
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=child, args=(q,))
    p.start()
    res = q.get(timeout=50)
    p.join(timeout=50)
    print("child", res, p.exitcode)
    assert pk.get_num_threads() == 2 and not pk._core._in_forked_child()
    assert np.array_equal(pk.add(x, x), 2 * x)   # the parent still works after forking
    print("parent ok")
"""


@requires_openmp
def test_fork_after_parallel_region_does_not_hang(tmp_path):
    script = tmp_path / "fork_check.py"
    script.write_text(FORK_SCRIPT)
    try:
        p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                           env=_env(), cwd=tmp_path)
    except subprocess.TimeoutExpired:  # pragma: no cover - the failure mode being tested
        pytest.fail("forked child hung (libgomp after fork)")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "child (1, True, True, True) 0" in p.stdout, p.stdout
    assert "parent ok" in p.stdout


# ---- concurrent Python threads -------------------------------------------------------------------


@pytest.mark.parametrize("nthreads", [1, 2])
def test_concurrent_calls_from_python_threads(nthreads, rng):
    xs = [rng.standard_normal((300, 700)).astype(dt) for dt in (np.float32, np.float64) for _ in range(4)]
    ys = [rng.standard_normal(700).astype(x.dtype) for x in xs]

    def work(i):
        x, y = xs[i % len(xs)], ys[i % len(ys)]
        out = np.empty_like(x)
        pk.add(x, y, out=out)
        checks = [
            np.array_equal(out, x + y),
            np.array_equal(pk.relu(x), np.maximum(x, 0.0)),
            np.array_equal(pk.relu_backward(x, out), np.where(out > 0, x, 0).astype(x.dtype)),
            np.array_equal(pk.sum_to(x, (700,)), pk.sum(x, axis=0)),
        ]
        return all(checks)

    with pk.threads(nthreads), ThreadPoolExecutor(max_workers=4) as ex:
        assert all(ex.map(work, range(48)))


@requires_openmp
def test_threadpoolctl_lists_openmp_runtime(neutral_cwd):
    """After a parallel op, threadpoolctl sees pykernels' OpenMP runtime (so threadpool_limits works)."""
    script = """
        import numpy as np, pykernels as pk
        from threadpoolctl import threadpool_info
        pk.set_num_threads(2)
        pk.add(np.ones(1 << 20), 1.0)
        print(sorted({i["user_api"] for i in threadpool_info()}))
        print([i["internal_api"] for i in threadpool_info() if i["user_api"] == "openmp"])
    """
    pytest.importorskip("threadpoolctl")
    p = _run(script, neutral_cwd)
    assert p.returncode == 0, p.stderr
    assert "'openmp'" in p.stdout.splitlines()[0], p.stdout
