"""Thread control and build information."""

from __future__ import annotations

import contextlib
import os
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
        "platform": _platform(),
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
        "caches": _caches_text(),
        "output_cache": _output_cache(),
        "gemm_blocking": _gemm_blocking(),
        "cuda": "compiled" if _core._cuda_compiled() else "not compiled",
    }


def _platform() -> str:
    import platform  # ~1 ms of import: only when the configuration is asked for

    return platform.platform()


_SYSFS_CACHE = "/sys/devices/system/cpu/cpu0/cache"


def _parse_size(text: str) -> int | None:
    """sysfs cache sizes: '32K', '1024K', '32768K', '2M' (or plain bytes)."""
    t = text.strip().upper()
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(t[-1:], 1)
    digits = t[:-1] if t[-1:] in ("K", "M", "G") else t
    return int(digits) * mult if digits.isdigit() else None


def cache_sizes(sysfs: str = _SYSFS_CACHE) -> dict[str, int]:
    """The data caches cpu0 sees, in bytes: ``{"L1d": .., "L2": .., "L3": ..}``.

    Read from the kernel's cache topology (``<sysfs>/index*/{level,type,size}``, Linux) where it
    exists, else from ``sysconf`` (glibc), else empty. sysfs is preferred: on some virtual machines
    glibc's sysconf reports an L3 ten times the real one, and sysfs holds what the hypervisor
    exposes. Each level is one instance (an L3 shared by several cores is its whole size, as
    ``lscpu`` gives per instance)."""
    out: dict[str, int] = {}
    try:
        entries = sorted(e for e in os.listdir(sysfs) if e.startswith("index"))
    except OSError:
        entries = []
    for e in entries:
        try:
            with open(os.path.join(sysfs, e, "level")) as f:
                level = int(f.read())
            with open(os.path.join(sysfs, e, "type")) as f:
                kind = f.read().strip()
            with open(os.path.join(sysfs, e, "size")) as f:
                size = _parse_size(f.read())
        except (OSError, ValueError):
            continue
        if size is None or kind == "Instruction":
            continue
        out["L1d" if level == 1 else f"L{level}"] = size
    if out:
        return out
    names = {"L1d": "SC_LEVEL1_DCACHE_SIZE", "L2": "SC_LEVEL2_CACHE_SIZE", "L3": "SC_LEVEL3_CACHE_SIZE"}
    for key, name in names.items():
        try:
            v = os.sysconf(name)
        except (ValueError, OSError, AttributeError):
            continue
        if v and v > 0:
            out[key] = int(v)
    return out


def _fmt_bytes(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 and n % (1 << 20) == 0 else f"{n >> 10} KiB"


def _caches_text() -> str:
    c = cache_sizes()
    if not c:
        return "unknown"
    src = "sysfs" if os.path.isdir(_SYSFS_CACHE) else "sysconf"
    return ", ".join(f"{k} {_fmt_bytes(v)}" for k, v in c.items()) + f" (as seen by cpu0; from {src})"


def _gemm_blocking() -> str:
    g = _core._gemm_blocking()
    # The cache sizes printed are the ones read here (sysfs first), not the C++ library's own
    # sysconf reading, which can be wrong on virtual machines (see cache_sizes).
    c = cache_sizes()
    l1d = c.get("L1d", int(g["l1d_bytes"]))
    l2 = c.get("L2", int(g["l2_bytes"]))
    l3 = c.get("L3", int(g["l3_bytes"]))
    return (f"float32 tile {g['mr']}x{g['nr']}, KC <= {g['kc']}, MC <= {g['mc']}, packed B block "
            f"{int(g['b_block_bytes']) >> 10} KiB per thread (cpu: {g['vendor']}, L1d {l1d >> 10} KiB, "
            f"L2 {l2 >> 10} KiB, L3 {_fmt_bytes(l3)}; PYKERNELS_GEMM_B_BLOCK_KB)")


def _output_cache() -> str:
    p = _core._pool_stats()
    if p["cap_bytes"] == 0:
        return "off (PYKERNELS_POOL_MB=0)"
    return (f"up to {p['cap_bytes'] >> 20} MiB of freed results >= {p['min_bytes'] >> 20} MiB kept for reuse "
            f"(PYKERNELS_POOL_MB); {p['cached_bytes'] >> 20} MiB held now")


def show_config() -> None:
    """Print the version, compiler, OpenMP, threads, the SIMD path chosen and available, and the
    CPU caches (from sysfs where it exists).

    >>> import pykernels as pk
    >>> pk.show_config()  # doctest: +ELLIPSIS
           pykernels: ...
    ...
         simd_active: ...
    ...
    """
    for k, v in config().items():
        print(f"{k:>16}: {v}")
