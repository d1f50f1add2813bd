"""pytest-benchmark: one training step of the book's MNIST model (batch 128) on random data, native
kernels vs the NumPy reference backend. Napkin math: 2 GEMMs forward + 3 backward (the first layer
computes no dX): 2*128*(784*512*2 + 512*10*3) ~ 0.21 GFLOP per step."""

from __future__ import annotations

import numpy as np
import pytest

import pykernels as pk
from pykernels.layers import Dense

FLOP = 2 * 128 * (784 * 512 * 2 + 512 * 10 * 3)


@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_train_step(benchmark, backend):
    rng = np.random.default_rng(0)
    x = rng.random((128, 784), dtype=np.float32)
    y = rng.integers(0, 10, 128)

    def model(b):
        m = pk.Sequential([Dense(512, activation="relu", input_shape=(784,)), Dense(10, activation="softmax")],
                          backend=b, seed=0)
        m.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return m

    # correctness once, outside the timed call: one step agrees with the NumPy reference backend
    m, ref = model(backend), model("numpy")
    l1, _ = m.train_on_batch(x, y)
    l2, _ = ref.train_on_batch(x, y)
    assert abs(l1 - l2) < 1e-5 * max(1.0, abs(l2))
    for a, b in zip(m.params, ref.params):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    benchmark.extra_info["gflop_per_step"] = FLOP / 1e9
    benchmark(m.train_on_batch, x, y)
