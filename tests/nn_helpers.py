"""Shared helpers of the nn tests: central finite differences (float64) and tolerances."""

from __future__ import annotations

import numpy as np

# PyTorch gradcheck defaults (STYLE.md C2/C3), for float64.
EPS, ATOL, RTOL = 1e-6, 1e-5, 1e-3


def numerical_grad(f, x: np.ndarray, eps: float = EPS) -> np.ndarray:
    """d f() / d x by central differences, perturbing x in place (restored afterwards)."""
    g = np.zeros(x.shape, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    for _ in it:
        i = it.multi_index
        old = x[i].copy()
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def assert_grad_close(analytic, numeric, what: str = "") -> None:
    np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=ATOL, err_msg=what)
