"""The cache of large results (csrc/include/pykernels/pool.hpp): freed results of 16 MiB and more are
kept (up to PYKERNELS_POOL_MB) and handed out again, so a new big array per call does not pay for
fresh, page-faulted memory. The arrays must behave like any NumPy result."""

from __future__ import annotations

import gc
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import pykernels as pk
from pykernels import _core

N = 5_000_000  # float32: 20 MB, above the 16 MiB threshold


def _addr(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


@pytest.fixture
def pool():
    old = _core._pool_stats()["cap_bytes"]
    _core._pool_set_cap(0)  # start empty
    _core._pool_set_cap(128 << 20)
    yield
    _core._pool_set_cap(0)
    _core._pool_set_cap(old)


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).standard_normal(N).astype(np.float32)


def test_large_result_is_an_ordinary_array_and_its_block_is_reused(pool, x):
    r = pk.relu(x)
    np.testing.assert_array_equal(r, np.maximum(x, 0))
    assert r.flags.c_contiguous and r.flags.aligned and r.flags.writeable and r.dtype == np.float32
    assert r.base is not None and not r.flags.owndata  # the block's owner
    r[:3] = 7.0  # writable like any result
    first = _addr(r)
    del r
    before = _core._pool_stats()
    assert before["cached_blocks"] == 1 and before["cached_bytes"] >= N * 4
    r2 = pk.add(x, x)  # same size: the same block, overwritten completely
    assert _addr(r2) == first
    np.testing.assert_array_equal(r2, x + x)
    assert _core._pool_stats()["hits"] == before["hits"] + 1


def test_a_view_keeps_its_block(pool, x):
    v = pk.relu(x)[::2]
    gc.collect()
    other = pk.multiply(x, 3.0)  # must not get v's block
    assert not np.shares_memory(v, other)
    np.testing.assert_array_equal(v, np.maximum(x, 0)[::2])
    del other
    del v
    gc.collect()
    assert _core._pool_stats()["cached_blocks"] >= 1


def test_small_results_are_not_pooled(pool):
    r = pk.relu(np.ones(1000, np.float32))
    assert r.flags.owndata and r.base is None


def test_cap_bounds_what_is_kept(pool):
    _core._pool_set_cap(64 << 20)
    for n in (5_000_000, 6_000_000, 10_000_000, 4_500_000, 12_000_000):
        r = pk.relu(np.ones(n, np.float32))
        assert float(r[-1]) == 1.0
        del r
        assert _core._pool_stats()["cached_bytes"] <= 64 << 20
    _core._pool_set_cap(0)
    st = _core._pool_stats()
    assert st["cached_blocks"] == 0 and st["cached_bytes"] == 0
    r = pk.relu(np.ones(N, np.float32))
    assert r.flags.owndata  # cache off: NumPy's own allocation


def test_pooled_results_pickle_copy_and_outlive_the_call(pool, x):
    r = pk.dot(x[:4096].reshape(64, 64), np.eye(64, dtype=np.float32))  # small: not pooled
    assert r.flags.owndata
    big = pk.subtract(x, 1.0)
    back = pickle.loads(pickle.dumps(big))
    np.testing.assert_array_equal(back, x - 1.0)
    c = big.copy()
    assert c.flags.owndata
    np.testing.assert_array_equal(c, big)


def test_env_var_turns_the_cache_off(tmp_path):
    code = ("import numpy as np, pykernels as pk; from pykernels import _core;"
            "r = pk.relu(np.ones(5_000_000, np.float32));"
            "print(_core._pool_stats()['cap_bytes'], r.flags.owndata, pk._runtime.config()['output_cache'])")
    env = dict(os.environ, PYKERNELS_POOL_MB="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                         check=True, timeout=120).stdout.split(maxsplit=2)
    assert out[0] == "0" and out[1] == "True" and out[2].startswith("off")


def test_pooled_results_of_broadcast_strided_float64_operands(pool):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50_000, 100))[::-2]  # float64, negative row stride: 25000 x 100 = 20 MB
    b = rng.standard_normal(200)[::2]  # broadcast along rows, strided
    for _ in range(2):  # the second call reuses the first result's block
        r = pk.add(x, b)
        np.testing.assert_array_equal(r, x + b)
        assert not r.flags.owndata
        del r
    assert _core._pool_stats()["hits"] >= 1


def test_negative_cap_is_an_error():
    with pytest.raises(ValueError, match="bytes must be >= 0"):
        _core._pool_set_cap(-1)
