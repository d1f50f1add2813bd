"""TEMPORARY shim: NumPy ``dense`` / ``dense_backward`` / ``matmul`` for builds whose ``_core`` does not
have the GEMM kernels yet (they come from the ``gemm`` branch). Imported only by
:mod:`pykernels._kernels`; delete this file once ``_core`` provides the three functions.
"""

from __future__ import annotations

from .reference import dense, dense_backward, matmul

__all__ = ["dense", "dense_backward", "matmul"]
