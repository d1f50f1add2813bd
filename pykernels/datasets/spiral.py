"""The spiral toy data of "Deep Learning from Scratch 2" (``dataset/spiral.py``): 3 classes x 100
points on interleaved spirals in 2-d, one-hot targets. ``load_data(seed=1984)`` reproduces the
book's values (same formula and the same legacy NumPy random stream).

>>> x, t = load_data()
>>> x.shape, t.shape, t.sum(axis=0).tolist()
((300, 2), (300, 3), [100, 100, 100])
"""

from __future__ import annotations

import numpy as np

__all__ = ["load_data"]


def load_data(seed: int = 1984, n_per_class: int = 100, n_classes: int = 3):
    """``(x (N, 2) float64, t (N, n_classes) int one-hot)`` with N = n_per_class * n_classes."""
    rs = np.random.RandomState(seed)  # the book calls np.random.seed(seed); same stream, no global state
    N, C = n_per_class, n_classes
    x = np.zeros((N * C, 2))
    t = np.zeros((N * C, C), dtype=np.int64)
    for j in range(C):
        for i in range(N):
            rate = i / N
            radius = 1.0 * rate
            theta = j * 4.0 + 4.0 * rate + rs.randn() * 0.2
            ix = N * j + i
            x[ix] = radius * np.sin(theta), radius * np.cos(theta)
            t[ix, j] = 1
    return x, t
