"""pykernels: fast C++ tensor kernels for NumPy arrays.

The element-wise kernels are drop-in replacements for the NumPy expressions they name
(``add`` = ``np.add``, ``relu(x)`` = ``np.maximum(x, 0.0)``, ...), with NumPy's broadcasting,
dtype promotion (float32/float64) and ``out=`` rules, parallel with OpenMP.

>>> import numpy as np, pykernels as pk
>>> x = np.array([[-1.0, 2.0], [3.0, -4.0]], dtype=np.float32)
>>> pk.relu(pk.add(x, np.float32(1.0)))
array([[0., 3.],
       [4., 0.]], dtype=float32)

Matrix products (``dot``, ``matmul`` with NumPy's rules for every rank, their ``*_backward``
passes) run on pykernels' own packed GEMM; ``dense`` fuses ``relu(x @ W + b)`` into one GEMM:

>>> W = np.eye(2, dtype=np.float32)
>>> pk.dense(x, W, np.float32([0.5, 0.5]), activation="relu")
array([[0. , 2.5],
       [3.5, 0. ]], dtype=float32)
"""

from __future__ import annotations

from ._core import (
    add,
    add_backward,
    dense,
    dense_backward,
    dot,
    dot_backward,
    get_num_threads,
    matmul,
    matmul_backward,
    maximum,
    multiply,
    openmp_enabled,
    relu,
    relu_backward,
    set_num_threads,
    subtract,
    sum,
    sum_to,
)
from ._runtime import show_config, threads

__version__: str = "0.1.0"

__all__ = [
    "__version__",
    "add",
    "add_backward",
    "dense",
    "dense_backward",
    "dot",
    "dot_backward",
    "get_num_threads",
    "matmul",
    "matmul_backward",
    "maximum",
    "multiply",
    "openmp_enabled",
    "relu",
    "relu_backward",
    "set_num_threads",
    "show_config",
    "subtract",
    "sum",
    "sum_to",
    "threads",
]
