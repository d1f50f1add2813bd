"""Optional CUDA offload of the kernels.

Built only with ``PYKERNELS_CUDA=ON pip install .`` (nvcc and the CUDA toolkit needed). Each call
copies the operands to the GPU, runs the kernel and copies the result back: the same kernels as the
CPU ones (element-wise ops with broadcasting, dense = act(x @ W + b)), useful to check a GPU build,
not yet a device-resident tensor API.

>>> import pykernels.cuda as pkc
>>> pkc.is_compiled() in (True, False)
True

``emulate=True`` runs the very same per-thread code on the CPU (csrc/cpu/cuda_emulation.cpp): that
is how the CUDA kernels' logic is tested on machines without a GPU.
"""

from __future__ import annotations

import numpy as np

from . import _core

__all__ = ["is_available", "is_compiled", "elementwise", "dense"]

# The ops of the registry (csrc/include/pykernels/ops.hpp).
_BINARY_OPS = tuple(_core._binary_ops)
_UNARY_OPS = tuple(_core._unary_ops)


def is_compiled() -> bool:
    """True when the extension was built with CUDA."""
    return bool(_core._cuda_compiled())


def is_available() -> bool:
    """True when CUDA is compiled in and a CUDA device is present."""
    return is_compiled() and _core._cuda_device_count() > 0


def _require(emulate: bool) -> None:
    if emulate:
        return
    if not is_compiled():
        raise RuntimeError("pykernels was built without CUDA: reinstall with PYKERNELS_CUDA=ON (needs nvcc)")
    if not is_available():
        raise RuntimeError("pykernels has CUDA compiled in, but no CUDA device is available")


def _float_dtype(*xs: object) -> np.dtype:
    dt = np.result_type(*xs)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"unsupported dtype {dt} (supported: float32, float64)")
    return dt


def elementwise(op: str, x1: object, x2: object = None, *, emulate: bool = False) -> np.ndarray:
    """``op`` on the GPU with NumPy broadcasting: a binary op (add, subtract, multiply, maximum,
    relu_backward) of ``x1`` and ``x2``, or a unary op (negative, absolute) of ``x1``."""
    if op not in _BINARY_OPS + _UNARY_OPS:
        raise ValueError(f"unknown op {op!r}; choose one of {', '.join(_BINARY_OPS + _UNARY_OPS)}")
    unary = op in _UNARY_OPS
    if unary != (x2 is None):
        raise TypeError(f"{op} takes {'one operand' if unary else 'two operands'}")
    _require(emulate)
    if unary:
        dt = _float_dtype(x1)
        x = np.asarray(x1, dtype=dt)
        out = np.empty(x.shape, dtype=dt)
        (_core._cuda_emu_unary if emulate else _core._cuda_unary)(op, out, x)
        return out
    dt = _float_dtype(x1, x2)
    a, b = (np.asarray(v, dtype=dt) for v in (x1, x2))
    a, b = np.broadcast_arrays(a, b)
    out = np.empty(a.shape, dtype=dt)
    (_core._cuda_emu_binary if emulate else _core._cuda_binary)(op, out, a, b)
    return out


def dense(x: np.ndarray, W: np.ndarray, b: np.ndarray | None = None, activation: str | None = None,
          *, emulate: bool = False) -> np.ndarray:
    """``act(x @ W + b)`` on the GPU with a tiled GEMM and the bias/relu epilogue."""
    if activation not in (None, "relu"):
        raise ValueError(f"activation must be None or 'relu', got {activation!r}")
    _require(emulate)
    dt = _float_dtype(x, W) if b is None else _float_dtype(x, W, b)
    x, W = np.asarray(x, dtype=dt), np.asarray(W, dtype=dt)
    if x.ndim != 2 or W.ndim != 2 or x.shape[1] != W.shape[0]:
        raise ValueError(f"dense: shapes {x.shape} and {W.shape} not aligned")
    bias = None if b is None else np.asarray(b, dtype=dt)
    if bias is not None and bias.shape != (W.shape[1],):
        raise ValueError(f"dense: bias has shape {bias.shape}, expected ({W.shape[1]},)")
    out = np.empty((x.shape[0], W.shape[1]), dtype=dt)
    (_core._cuda_emu_gemm if emulate else _core._cuda_gemm)(out, x, W, bias, activation == "relu")
    return out
