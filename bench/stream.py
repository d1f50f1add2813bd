"""A small STREAM-style memory-bandwidth measurement (McCalpin's Copy/Scale/Add/Triad on float64),
with NumPy (one thread) and with pykernels kernels (all threads), for arrays from L3-resident
(4 MB) to well beyond L3 (128 MB per array). It gives the ceiling the element-wise kernels are
compared against ("% of STREAM" in bench/RESULTS.md).

Bytes are counted STREAM's way: Copy/Scale 2 arrays, Add/Triad 3 arrays, per element 8 bytes (the
write-allocate traffic of stores is not counted). Best time of `reps` runs.

    python bench/stream.py [--threads 2] [--json stream.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import pykernels as pk

SIZES_MB = (4, 16, 40, 128)  # per array


def _best(fn, reps: int) -> float:
    fn()  # warm-up: page faults, caches
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure(threads: int = 2, sizes_mb=SIZES_MB, reps: int = 10) -> list[dict]:
    """Returns one record per (kernel, impl, size): bytes, best seconds and GB/s."""
    results = []
    s = 3.0
    for mb in sizes_mb:
        n = mb * (1 << 20) // 8
        a = np.full(n, 1.0)
        b = np.full(n, 2.0)
        c = np.full(n, 0.5)
        kernels = {
            # name: (arrays moved, numpy version, pykernels version)
            "copy": (2, lambda: np.copyto(c, a), lambda: pk.multiply(a, 1.0, out=c)),
            "scale": (2, lambda: np.multiply(c, s, out=b), lambda: pk.multiply(c, s, out=b)),
            "add": (3, lambda: np.add(a, b, out=c), lambda: pk.add(a, b, out=c)),
            "triad": (3, lambda: np.add(b, np.multiply(c, s, out=a), out=a),
                      lambda: pk.add(b, pk.multiply(c, s, out=a), out=a)),
        }
        r = max(3, reps * 16 // mb) if mb < 40 else reps
        for name, (arrays, np_fn, pk_fn) in kernels.items():
            nbytes = arrays * n * 8
            t = _best(np_fn, r)
            results.append({"kernel": name, "impl": "numpy", "threads": 1, "array_mb": mb, "bytes": nbytes,
                            "seconds": t, "GBps": nbytes / t / 1e9})
            with pk.threads(threads):
                t = _best(pk_fn, r)
            results.append({"kernel": name, "impl": "pykernels", "threads": threads, "array_mb": mb,
                            "bytes": nbytes, "seconds": t, "GBps": nbytes / t / 1e9})
        del a, b, c
    return results


def format_table(results: list[dict]) -> str:
    sizes = sorted({r["array_mb"] for r in results})
    lines = ["| kernel | impl (threads) | " + " | ".join(f"{m} MB" for m in sizes) + " |",
             "|---|---|" + "---:|" * len(sizes)]
    keys = []
    for r in results:
        k = (r["kernel"], r["impl"], r["threads"])
        if k not in keys:
            keys.append(k)
    for k in keys:
        cells = []
        for m in sizes:
            rec = [r for r in results if (r["kernel"], r["impl"], r["threads"]) == k and r["array_mb"] == m]
            cells.append(f"{rec[0]['GBps']:.1f} GB/s" if rec else "")
        lines.append(f"| {k[0]} | {k[1]} ({k[2]}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=pk._core._max_hw_threads())
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--json", help="also write the records to this JSON file")
    args = p.parse_args(argv)
    res = measure(args.threads, reps=args.reps)
    print(format_table(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
