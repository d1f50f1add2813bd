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

import os as _os

# libgomp's idle threads spin for 300000 iterations (milliseconds) after every parallel region
# before they sleep; on a busy or shared machine they take the cores from other threads (OpenBLAS,
# other processes, the next kernel's own team). Too short a spin costs a sleeping thread's wake-up
# (tens of microseconds on a VM) at every parallel region. Measured (bench/RESULTS.md): MNIST epoch
# with 2 busy processes on the 2 cores 1.19 s (default) / 0.66 s (30000) / 0.64 s (1000); on the idle
# machine a (128,784)x(784,512) product on 2 threads 248 us / 259 us / 551 us. libgomp reads this
# when it is loaded (with _core below), so it only applies when nothing loaded libgomp earlier; an
# explicit GOMP_SPINCOUNT or OMP_WAIT_POLICY from the user always wins.
if "GOMP_SPINCOUNT" not in _os.environ and "OMP_WAIT_POLICY" not in _os.environ:
    _os.environ["GOMP_SPINCOUNT"] = "30000"

from ._core import (
    adagrad_update,
    adam_update,
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
    rmsprop_update,
    set_num_threads,
    sgd_update,
    softmax_cross_entropy,
    softmax_cross_entropy_backward,
    subtract,
    sum,
    sum_to,
)
from ._runtime import show_config, threads

# The layer / optimizer / model API (imported after _core: it builds on the kernels above).
from . import datasets, layers, losses, optimizers, reference, utils  # noqa: E402
from .models import History, Sequential  # noqa: E402
from .trainer import Trainer  # noqa: E402
from .utils import to_categorical  # noqa: E402

__version__: str = "0.1.0"

__all__ = [
    "History",
    "Sequential",
    "Trainer",
    "__version__",
    "adagrad_update",
    "adam_update",
    "add",
    "add_backward",
    "datasets",
    "dense",
    "dense_backward",
    "dot",
    "dot_backward",
    "get_num_threads",
    "layers",
    "losses",
    "matmul",
    "matmul_backward",
    "maximum",
    "multiply",
    "openmp_enabled",
    "optimizers",
    "reference",
    "relu",
    "relu_backward",
    "rmsprop_update",
    "set_num_threads",
    "sgd_update",
    "show_config",
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
    "subtract",
    "sum",
    "sum_to",
    "threads",
    "to_categorical",
    "utils",
]
