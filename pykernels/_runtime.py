"""Thread control and build information."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from collections.abc import Iterator
from typing import Any

from . import _core


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """Run the kernels inside the ``with`` block on ``n`` threads.

    >>> import pykernels as pk
    >>> with pk.threads(1):
    ...     pk.get_num_threads()
    1
    """
    old = _core.get_num_threads()
    _core.set_num_threads(n)
    try:
        yield
    finally:
        _core.set_num_threads(old)


def config() -> dict[str, Any]:
    """Build and run-time configuration as a dict (what ``show_config`` prints)."""
    b = dict(_core._build_info)
    return {
        "pykernels": b["version"],
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "compiler": b["compiler"],
        "openmp": b["openmp"] if _core.openmp_enabled() else "not compiled in",
        "openmp_version": b["openmp_version"],
        "threads": _core.get_num_threads(),
        "cores": _core._max_hw_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "(unset)"),
        "simd_active": _core._isa_active(),
        "simd_detected": _core._isa_detected(),
        "simd_compiled": ", ".join(_core._isa_compiled()),
        "max_dims": b["max_dims"],
        "output_cache": _output_cache(),
        "gemm_blocking": _gemm_blocking(),
        "cuda": "compiled" if _core._cuda_compiled() else "not compiled",
    }


def _gemm_blocking() -> str:
    g = _core._gemm_blocking()
    return (f"float32 tile {g['mr']}x{g['nr']}, KC <= {g['kc']}, MC <= {g['mc']}, packed B block "
            f"{int(g['b_block_bytes']) >> 10} KiB per thread (cpu: {g['vendor']}, L1d {int(g['l1d_bytes']) >> 10} KiB, "
            f"L2 {int(g['l2_bytes']) >> 10} KiB, L3 {int(g['l3_bytes']) >> 20} MiB; PYKERNELS_GEMM_B_BLOCK_KB)")


def _output_cache() -> str:
    p = _core._pool_stats()
    if p["cap_bytes"] == 0:
        return "off (PYKERNELS_POOL_MB=0)"
    return (f"up to {p['cap_bytes'] >> 20} MiB of freed results >= {p['min_bytes'] >> 20} MiB kept for reuse "
            f"(PYKERNELS_POOL_MB); {p['cached_bytes'] >> 20} MiB held now")


def show_config() -> None:
    """Print the version, compiler, OpenMP, threads and the SIMD path chosen and available."""
    for k, v in config().items():
        print(f"{k:>16}: {v}")
