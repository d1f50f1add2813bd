"""pykernels.patch_numpy(): unchanged NumPy code (``x @ W``, ``a + b``) with NumPy's loops replaced,
against calling pykernels directly (the target: within 10%) and against unpatched NumPy.

Cases, float32: ``x @ W`` at the MNIST MLP's shapes (batch 128: (128,784)@(784,512),
(128,512)@(512,10); batch 100: (100,784)@(784,100), (100,100)@(100,10)) and ``a + b``, ``a * b`` at
1e6 elements, results into a preallocated ``out`` (so allocation is not timed) and as new arrays.
Run ``pytest bench/bench_patch.py`` (pytest-benchmark) or ``python bench/bench_patch.py`` for a
table: each of the three implementations timed in turn, several rounds interleaved, medians, and the
ratio patched / direct computed within each round (``--threads N`` to pin the thread count).

Where the patched call costs more than the direct one, the difference is NumPy's ufunc machinery
around the inner loop (argument parsing, dtype resolution, the gufunc's NpyIter, the FP-flag check),
which runs whatever the loop is. The table's last lines measure it: ``np.matmul`` and ``np.add`` on
1-element operands, where the loop does one multiply-add, against ``pk.matmul``/``pk.add`` on the
same (pykernels's own per-call cost); the patched call's excess over the direct one is about their
difference, so it matters only for products that take a few microseconds.
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest

import pykernels as pk

IMPLS = ["numpy", "numpy-patched", "pykernels"]


def _cases():
    rng = np.random.default_rng(0)
    f = np.float32

    def r(*shape):
        return rng.standard_normal(shape).astype(f)

    return {
        "matmul 128x784 @ 784x512": (np.matmul, pk.matmul, r(128, 784), r(784, 512)),
        "matmul 128x512 @ 512x10": (np.matmul, pk.matmul, r(128, 512), r(512, 10)),
        "matmul 100x784 @ 784x100": (np.matmul, pk.matmul, r(100, 784), r(784, 100)),
        "matmul 100x100 @ 100x10": (np.matmul, pk.matmul, r(100, 100), r(100, 10)),
        "add 1e6": (np.add, pk.add, r(1_000_000), r(1_000_000)),
        "multiply 1e6": (np.multiply, pk.multiply, r(1_000_000), r(1_000_000)),
    }


CASES = _cases()


def _call(impl, case, out, cases=CASES):
    npf, pkf, a, b = cases[case]
    f = pkf if impl == "pykernels" else npf
    if out is None:
        return lambda: f(a, b)
    return lambda: f(a, b, out=out)


@pytest.mark.parametrize("variant", ["out", "new"])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", list(CASES))
def test_patch(benchmark, case, impl, variant):
    npf, _, a, b = CASES[case]
    out = np.empty_like(npf(a, b)) if variant == "out" else None
    fn = _call(impl, case, out)
    benchmark.group = f"patch {case} ({variant})"
    if impl == "numpy-patched":
        with pk.patched_numpy():
            benchmark(fn)
    else:
        benchmark(fn)


def _time(fn, number, repeat=5):
    import timeit

    return float(np.median(timeit.Timer(fn).repeat(repeat, number))) / number


def _measure(case, variant, rounds, cases=CASES):
    """Median times (s) of numpy, patched, pykernels, and the median of the per-round ratios
    patched/pykernels: the three are timed in turn in each round, so load changes hit all three."""
    import timeit

    npf, _, a, b = cases[case]
    out = np.empty_like(npf(a, b)) if variant == "out" else None
    fns = {impl: _call(impl, case, out, cases) for impl in IMPLS}
    number, _ = timeit.Timer(fns["pykernels"]).autorange()
    number = max(1, number // 4)
    t = {impl: [] for impl in IMPLS}
    for _ in range(rounds):
        t["numpy"].append(_time(fns["numpy"], number))
        with pk.patched_numpy():
            t["numpy-patched"].append(_time(fns["numpy-patched"], number))
        t["pykernels"].append(_time(fns["pykernels"], number))
    ratios = [p / d for p, d in zip(t["numpy-patched"], t["pykernels"])]
    return {k: float(np.median(v)) for k, v in t.items()}, float(np.median(ratios))


def main(argv=None):
    import os

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds per case (default 7)")
    p.add_argument("--threads", type=int, default=None, help="pykernels threads (default: all cores)")
    args = p.parse_args(argv)
    if args.threads:
        pk.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"pykernels threads: {pk.get_num_threads()}, load average (1 min) at start: {load:.2f}")
    print(f"{'case':28s} {'variant':7s} {'numpy':>10s} {'patched':>10s} {'pykernels':>10s}  patched/pk")
    for case in CASES:
        for variant in ("out", "new"):
            m, ratio = _measure(case, variant, args.rounds)
            print(f"{case:28s} {variant:7s} {m['numpy'] * 1e6:8.1f}us {m['numpy-patched'] * 1e6:8.1f}us "
                  f"{m['pykernels'] * 1e6:8.1f}us  {ratio:6.3f}")
    # The per-call costs around the loop: 1-element operands (the patched loops forward these to
    # NumPy's, so "patched" is NumPy's own call here).
    one = np.ones((1, 1), np.float32)
    tiny = {"matmul 1x1 @ 1x1": (np.matmul, pk.matmul, one, one),
            "add 1": (np.add, pk.add, one.ravel(), one.ravel())}
    print("per-call cost (loop work ~0):")
    for case in tiny:
        m, _ = _measure(case, "out", args.rounds, tiny)
        print(f"{case:28s} {'out':7s} {m['numpy'] * 1e6:8.2f}us {'':>10s} {m['pykernels'] * 1e6:8.2f}us  "
              f"numpy - pykernels: {(m['numpy'] - m['pykernels']) * 1e6:.2f}us")


if __name__ == "__main__":
    main()
