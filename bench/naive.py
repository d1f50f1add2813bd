"""The book's naive element-wise loops (Deep Learning with Python, ch. 2 "tensor operations"):
the baseline the kernels are compared against. Pure Python loops over 2-D NumPy arrays, copied
faithfully (each works on a copy and never modifies its inputs)."""

from __future__ import annotations

import numpy as np


def naive_relu(x: np.ndarray) -> np.ndarray:
    assert len(x.shape) == 2  # x is a rank-2 NumPy tensor
    x = x.copy()  # avoid overwriting the input tensor
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            x[i, j] = max(x[i, j], 0)
    return x


def naive_add(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    assert len(x.shape) == 2  # x and y are rank-2 NumPy tensors
    assert x.shape == y.shape
    x = x.copy()  # avoid overwriting the input tensor
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            x[i, j] += y[i, j]
    return x


def naive_add_matrix_and_vector(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    assert len(x.shape) == 2  # x is a rank-2 NumPy tensor
    assert len(y.shape) == 1  # y is a NumPy vector
    assert x.shape[1] == y.shape[0]
    x = x.copy()  # avoid overwriting the input tensor
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            x[i, j] += y[j]
    return x
