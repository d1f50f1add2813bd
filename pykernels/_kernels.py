"""The one import point of the kernels the layers and optimizers call, per backend.

``native``: the C++ kernels of :mod:`pykernels._core`; ``numpy``: :mod:`pykernels.reference`.
"""

from __future__ import annotations

from types import SimpleNamespace

from . import _core, activations, reference

from ._core import dense, dense_backward, matmul

__all__ = ["BACKENDS", "get_backend"]

_NATIVE = SimpleNamespace(
    name="native",
    dense=dense,
    dense_backward=dense_backward,
    matmul=matmul,
    relu=_core.relu,
    relu_backward=_core.relu_backward,
    sigmoid=_core.sigmoid,
    sigmoid_backward=_core.sigmoid_backward,
    tanh=_core.tanh,
    tanh_backward=_core.tanh_backward,
    softmax=activations.softmax,
    softmax_backward=activations.softmax_backward,
    softmax_cross_entropy=_core.softmax_cross_entropy,
    softmax_cross_entropy_backward=_core.softmax_cross_entropy_backward,
    sgd_update=_core.sgd_update,
    rmsprop_update=_core.rmsprop_update,
    adam_update=_core.adam_update,
    adagrad_update=_core.adagrad_update,
)

_NUMPY = SimpleNamespace(
    name="numpy",
    **{k: getattr(reference, k) for k in vars(_NATIVE) if k != "name"},
)

BACKENDS = {"native": _NATIVE, "numpy": _NUMPY}


def get_backend(name: str) -> SimpleNamespace:
    """The kernel namespace for ``"native"`` (C++) or ``"numpy"`` (the NumPy reference)."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"backend must be 'native' or 'numpy', got {name!r}") from None
