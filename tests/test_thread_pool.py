"""The worker pool behind every parallel kernel (csrc/cpu/parallel.cpp): chunks claimed by whoever
is free, the caller waiting only for claimed chunks, one region at a time with other callers running
theirs on their own thread, exceptions carried back to the caller. Speed under load is measured by
the benchmarks (bench/run.py --busy-cores 1), not here."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

import pykernels as pk
from pykernels import _core


def test_regions_use_the_pool_and_the_caller_works_too():
    pk.set_num_threads(2)
    a = np.arange(4_000_000, dtype=np.float32)
    before = _core._thread_pool_counters()
    for _ in range(20):
        out = pk.add(a, a)
    after = _core._thread_pool_counters()
    np.testing.assert_array_equal(out, a + a)
    ran = (after["regions"] - before["regions"]) + (after["serial_regions"] - before["serial_regions"])
    assert ran == 20
    # the caller claims chunks itself in every region it runs in parallel
    if after["regions"] > before["regions"]:
        assert after["caller_chunks"] > before["caller_chunks"]


def test_one_thread_never_enters_the_pool():
    a = np.ones(4_000_000, np.float32)
    with pk.threads(1):
        before = _core._thread_pool_counters()
        pk.multiply(a, a)
        assert _core._thread_pool_counters() == before


def test_concurrent_callers_get_numpys_results():
    # Several Python threads (the GIL is released in the kernels) share one pool: one region at a
    # time, the others run theirs on their own thread; every result is the same bits.
    pk.set_num_threads(2)
    rng = np.random.default_rng(0)
    a = rng.standard_normal(3_000_000).astype(np.float32)
    X = rng.standard_normal((256, 300)).astype(np.float64)
    W = rng.standard_normal((300, 200)).astype(np.float64)
    want_add, want_dot = a * a, pk.dot(X, W)
    errors = []

    def work():
        try:
            for _ in range(15):
                assert np.array_equal(pk.multiply(a, a), want_add)
                assert np.array_equal(pk.dot(X, W), want_dot)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    np.testing.assert_allclose(want_dot, X @ W, rtol=1e-12, atol=1e-12)


def test_exception_in_a_chunk_reaches_the_caller_and_the_pool_recovers():
    # A region of 1e6 items whose item `bad` throws, on 2 threads: the caller gets the exception
    # wherever the chunk ran, every other chunk still ran, and the pool takes the next region.
    pk.set_num_threads(2)
    for bad in (0, 499_999, 999_999):
        with pytest.raises(ValueError, match=f"item {bad} failed"):
            _core._parallel_raise(1_000_000, 1000, bad)
    assert _core._parallel_raise(1_000_000, 1000, -1) == 1_000_000
    x = np.arange(2_000_000, dtype=np.float32)
    np.testing.assert_array_equal(pk.add(x, 1.0), x + 1.0)


def test_spin_setting():
    old = _core._spin_us()
    try:
        _core._set_spin_us(0)  # workers sleep at once: regions still complete
        x = np.arange(2_000_000, dtype=np.float64)
        for _ in range(5):
            np.testing.assert_array_equal(pk.maximum(x, 3.0), np.maximum(x, 3.0))
        with pytest.raises(ValueError):
            _core._set_spin_us(-1)
    finally:
        _core._set_spin_us(old)


def _allowed_cpus(tid) -> str:
    with open(f"/proc/self/task/{tid}/status") as f:
        return next(line.split(":")[1].strip() for line in f if line.startswith("Cpus_allowed_list"))


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2
                    or not os.path.exists("/proc/self/task"), reason="needs Linux and 2 CPUs")
def test_a_woken_worker_is_kept_off_the_callers_cpu_and_then_freed():
    """A region that wakes a sleeping worker first takes the caller's CPU out of the worker's set
    (else the scheduler may queue it behind the caller: one core's speed); the worker restores its
    set when it goes back to sleep."""
    old = _core._spin_us()
    a = np.ones(2_000_000, np.float32)
    try:
        _core._set_spin_us(0)  # idle workers sleep at once
        with pk.threads(2):
            pk.add(a, a)
            time.sleep(0.05)
            before = _core._thread_pool_counters()["steered"]
            np.testing.assert_array_equal(pk.add(a, a), a + a)
            assert _core._thread_pool_counters()["steered"] > before  # every sleeping worker
    finally:
        _core._set_spin_us(old)
    main = _allowed_cpus(threading.get_native_id())
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        narrowed = [t for t in os.listdir("/proc/self/task") if _allowed_cpus(t) != main]
        if not narrowed:
            break
        time.sleep(0.01)
    assert narrowed == []


_NEEDS_2_CPUS = pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2
                                   or not os.path.exists("/proc/self/task"), reason="needs Linux and 2 CPUs")


def _pool_threads(me):
    return [int(t) for t in os.listdir("/proc/self/task") if int(t) != me]


@_NEEDS_2_CPUS
def test_an_active_worker_follows_the_caller_off_its_new_cpu():
    """While regions keep coming, a worker's set excludes the caller's CPU; when the caller moves to
    another CPU, the worker leaves that one instead, and gets its set back when it sleeps."""
    old_spin, full = _core._spin_us(), os.sched_getaffinity(0)
    me = threading.get_native_id()
    cpu_a, cpu_b = sorted(full)[:2]
    a = np.ones(2_000_000, np.float32)
    try:
        with pk.threads(2):
            _core._set_spin_us(0)
            pk.add(a, a)
            time.sleep(0.05)  # the worker sleeps with its own set
            _core._set_spin_us(1_000_000)  # and, once woken, stays awake between the regions below
            os.sched_setaffinity(0, {cpu_a})
            pk.add(a, a)  # wakes it off cpu_a
            os.sched_setaffinity(0, {cpu_b})
            before = _core._thread_pool_counters()["moved"]
            _core._fma_peak_gflops(0.05, 2)  # the caller now on cpu_b
            narrowed = [t for t in _pool_threads(me) if os.sched_getaffinity(t) == full - {cpu_b}]
            assert narrowed, "no worker left the caller's new CPU out of its set"
            if len(full) == 2:  # its only CPU was the caller's new one: it moved
                assert _core._thread_pool_counters()["moved"] > before
    finally:
        os.sched_setaffinity(0, full)
        _core._set_spin_us(old_spin)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and any(os.sched_getaffinity(t) != full for t in narrowed):
        time.sleep(0.02)
    assert all(os.sched_getaffinity(t) == full for t in narrowed), "a sleeping worker kept a narrowed set"


@_NEEDS_2_CPUS
def test_a_worker_pinned_by_the_user_stays_pinned():
    """A one-CPU set (the user's pinning) is never changed, even on the caller's CPU."""
    old_spin, full = _core._spin_us(), os.sched_getaffinity(0)
    me, cpu = threading.get_native_id(), min(full)
    saved = {int(t): os.sched_getaffinity(int(t)) for t in os.listdir("/proc/self/task")}
    try:
        with pk.threads(2):
            _core._set_spin_us(0)
            _core._fma_peak_gflops(0.01, 2)  # the worker exists
            saved.update({int(t): os.sched_getaffinity(int(t)) for t in os.listdir("/proc/self/task")})
            for tid in saved:
                os.sched_setaffinity(tid, {cpu})
            time.sleep(0.05)
            before = _core._thread_pool_counters()
            _core._fma_peak_gflops(0.05, 2)
            after = _core._thread_pool_counters()
            assert after["moved"] == before["moved"] and after["steered"] == before["steered"]
            assert all(os.sched_getaffinity(t) == {cpu} for t in _pool_threads(me) if t in saved)
    finally:
        for tid, cpus in saved.items():
            try:
                os.sched_setaffinity(tid, cpus)
            except OSError:  # a thread that has ended
                pass
        _core._set_spin_us(old_spin)
