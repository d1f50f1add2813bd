"""Resident memory stays flat over many calls: 200,000 calls of each kernel, with and without out=,
grow the process by at most 4 MiB (a leak of 24 bytes a call would show as 4.6 MiB), and the
caches behind the kernels (the output pool, the GEMM's per-thread scratch) stay within their bounds
across thread counts and sizes. Small operands keep each loop to a fraction of a second."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import pykernels as pk
from pykernels import _core

CALLS = 200_000
SLACK_MIB = 4.0


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def _cases():
    r = np.random.default_rng(0)
    f = np.float32
    a, b = r.standard_normal((4, 8)).astype(f), r.standard_normal((4, 8)).astype(f)
    x, W, bias = r.standard_normal((4, 6)).astype(f), r.standard_normal((6, 3)).astype(f), np.zeros(3, f)
    y = pk.dense(x, W, bias, activation="relu")
    logits, labels = r.standard_normal((4, 5)).astype(f), np.array([0, 1, 2, 3])
    o8, o3 = np.empty((4, 8), f), np.empty((4, 3), f)
    p, g = r.standard_normal(16).astype(f), r.standard_normal(16).astype(f)
    m, v, vel = np.zeros(16, f), np.zeros(16, f), np.zeros(16, f)
    yield "add", lambda: pk.add(a, b), lambda: pk.add(a, b, out=o8)
    yield "multiply", lambda: pk.multiply(a, 2.0), lambda: pk.multiply(a, 2.0, out=o8)
    yield "maximum", lambda: pk.maximum(a, b[0]), lambda: pk.maximum(a, b[0], out=o8)
    yield "relu", lambda: pk.relu(a), lambda: pk.relu(a, out=o8)
    yield "relu_backward", lambda: pk.relu_backward(a, b), lambda: pk.relu_backward(a, b, out=o8)
    yield "sum", lambda: pk.sum(a, axis=0), None
    yield "sum_to", lambda: pk.sum_to(a, (1, 8)), None
    yield "add_backward", lambda: pk.add_backward(a, (4, 8), (8,)), None
    yield "dot", lambda: pk.dot(x, W), lambda: pk.dot(x, W, out=o3)
    yield "matmul", lambda: pk.matmul(x, W), lambda: pk.matmul(x, W, out=o3)
    yield "dense", lambda: pk.dense(x, W, bias, activation="relu"), lambda: pk.dense(x, W, bias, out=o3)
    dx, dW, db = np.empty_like(x), np.empty_like(W), np.empty_like(bias)
    yield ("dense_backward", lambda: pk.dense_backward(y, x, W, y=y, activation="relu"),
           lambda: pk.dense_backward(y, x, W, y=y, activation="relu", dx=dx, dW=dW, db=db))
    yield "dot_backward", lambda: pk.dot_backward(y, x, W), None
    yield "matmul_backward", lambda: pk.matmul_backward(y, x, W), None
    dl = np.empty_like(logits)
    yield ("softmax_cross_entropy", lambda: pk.softmax_cross_entropy(logits, labels),
           lambda: pk.softmax_cross_entropy(logits, labels, dlogits=dl))
    yield "softmax_cross_entropy_backward", lambda: pk.softmax_cross_entropy_backward(logits, labels), None
    yield "sgd_update", None, lambda: pk.sgd_update(p, g, learning_rate=0.0, momentum=0.9, velocity=vel)
    yield "adam_update", None, lambda: pk.adam_update(p, g, m, v, alpha=0.0)
    yield "rmsprop_update", None, lambda: pk.rmsprop_update(p, g, v, learning_rate=0.0)
    # errors raised and caught must not leak either (message strings, exception objects)
    yield "dot error", lambda: _raises(lambda: pk.dot(x, x)), None


def _raises(fn):
    try:
        fn()
    except ValueError:
        return
    raise AssertionError("no error")


CASES = list(_cases())


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_rss_flat_over_many_calls(case):
    name, no_out, with_out = case
    for call in (no_out, with_out):
        if call is None:
            continue
        for _ in range(2000):  # warm: caches, interned strings, the allocator's arenas
            call()
        gc.collect()
        before = rss_mib()
        for _ in range(CALLS):
            call()
        gc.collect()
        grown = rss_mib() - before
        assert grown <= SLACK_MIB, f"{name}: RSS grew {grown:.1f} MiB over {CALLS} calls"


@pytest.mark.slow
def test_caches_stay_bounded_across_thread_counts_and_sizes():
    # Large results (pooled) of changing sizes on 1, 2 and 3 threads: the pool keeps at most its cap,
    # and the process does not keep growing from one round to the next.
    rng = np.random.default_rng(1)
    sizes = [4_500_000, 6_000_000, 9_000_000]  # float32: 18-36 MB results, above the pooling threshold
    xs = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    A = rng.standard_normal((300, 700)).astype(np.float32)
    B = rng.standard_normal((700, 500)).astype(np.float32)
    cap = _core._pool_stats()["cap_bytes"]

    def round_():
        for t in (1, 2, 3):
            with pk.threads(t):
                for x in xs:
                    r = pk.add(x, x)
                    del r
                pk.dot(A, B)
                pk.dot(A[:, :10], B[:10, :])
        gc.collect()

    round_()
    first = rss_mib()
    for _ in range(4):
        round_()
        assert _core._pool_stats()["cached_bytes"] <= cap
    assert rss_mib() - first <= 2 * SLACK_MIB
