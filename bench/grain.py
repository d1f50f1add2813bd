"""Measure where two threads start to beat one for the element-wise kernels.

The answer sets ``kElementwiseGrain`` in csrc/include/pykernels/elementwise.hpp (below it a kernel
runs on one thread). Run on a quiet machine:

    python bench/grain.py

It sets PYKERNELS_ELEMENTWISE_GRAIN=1 (so every size may run threaded), times relu with
``pk.threads(1)`` and ``pk.threads(2)`` interleaved (medians of many calls), and prints the speed-up
per size: the grain is the first size where two threads win clearly.
"""

from __future__ import annotations

import os
import time

os.environ["PYKERNELS_ELEMENTWISE_GRAIN"] = "1"

import numpy as np

import pykernels as pk


def median_time(f, reps: int = 400) -> float:
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def main() -> None:
    print(f"{'n':>9} {'1 thread us':>12} {'2 threads us':>13} {'speed-up':>9}")
    for n in sorted({int(k * (1 << e)) for e in range(12, 21) for k in (1, 1.5)}):
        x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
        y = np.empty_like(x)
        t1, t2 = [], []
        for _ in range(5):  # interleave the two settings
            with pk.threads(1):
                t1.append(median_time(lambda: pk.relu(x, out=y), 100))
            with pk.threads(2):
                t2.append(median_time(lambda: pk.relu(x, out=y), 100))
        a, b = np.median(t1), np.median(t2)
        print(f"{n:>9} {a * 1e6:>12.2f} {b * 1e6:>13.2f} {a / b:>9.2f}")


if __name__ == "__main__":
    main()
