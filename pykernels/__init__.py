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

from ._core import (  # noqa: E402
    abs,
    absolute,
    adagrad_update,
    adam_update,
    add,
    add_backward,
    dense,
    dense_backward,
    dot,
    dot_backward,
    exp,
    get_num_threads,
    log,
    matmul,
    matmul_backward,
    maximum,
    minimum,
    multiply,
    negative,
    openmp_enabled,
    relu,
    relu_backward,
    rmsprop_update,
    set_num_threads,
    sgd_update,
    sigmoid,
    sigmoid_backward,
    softmax_cross_entropy,
    softmax_cross_entropy_backward,
    subtract,
    sum,
    sum_to,
    tanh,
    tanh_backward,
)
from .activations import log_softmax, log_softmax_backward, softmax, softmax_backward  # noqa: E402
from ._patch import numpy_is_patched, patch_numpy, patched_numpy, unpatch_numpy  # noqa: E402
from ._runtime import show_config, threads  # noqa: E402
from ._threadpoolctl import install as _install_threadpoolctl  # noqa: E402

# threadpoolctl lists and limits pykernels' pool: registered now if threadpoolctl is loaded, else
# when it is imported (a one-shot import hook; threadpoolctl is not imported here)
_install_threadpoolctl()
del _install_threadpoolctl

__version__: str = "0.1.0"

# The layer / optimizer / model API and the datasets load on first use (PEP 562): ``import
# pykernels`` then costs the compiled kernels only, and the MNIST loader's urllib/subprocess
# imports are paid by the programs that load MNIST.
_LAZY_MODULES = frozenset({"datasets", "initializers", "layers", "losses", "models", "optimizers",
                           "reference", "trainer", "utils"})
_LAZY_NAMES = {"History": "models", "Sequential": "models", "Trainer": "trainer", "to_categorical": "utils"}


def __getattr__(name: str):
    import importlib

    if name in _LAZY_MODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    elif name in _LAZY_NAMES:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY_NAMES[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "History",
    "Sequential",
    "Trainer",
    "__version__",
    "abs",
    "absolute",
    "adagrad_update",
    "adam_update",
    "add",
    "add_backward",
    "datasets",
    "dense",
    "dense_backward",
    "dot",
    "dot_backward",
    "exp",
    "get_num_threads",
    "layers",
    "log",
    "log_softmax",
    "log_softmax_backward",
    "losses",
    "matmul",
    "matmul_backward",
    "maximum",
    "minimum",
    "multiply",
    "negative",
    "numpy_is_patched",
    "openmp_enabled",
    "optimizers",
    "patch_numpy",
    "patched_numpy",
    "reference",
    "relu",
    "relu_backward",
    "rmsprop_update",
    "set_num_threads",
    "sgd_update",
    "show_config",
    "sigmoid",
    "sigmoid_backward",
    "softmax",
    "softmax_backward",
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
    "subtract",
    "sum",
    "sum_to",
    "tanh",
    "tanh_backward",
    "threads",
    "to_categorical",
    "unpatch_numpy",
    "utils",
]
