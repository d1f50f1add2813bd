"""pykernels.patch_numpy(): unchanged NumPy code (``x @ W``, ``a + b``) with NumPy's loops replaced,
against calling pykernels directly (the target: within 10%) and against unpatched NumPy.

Cases: ``x @ W`` at the MNIST MLP's shapes (batch 100: (100,784)@(784,100), (100,100)@(100,10)) and
``a + b`` at 1e6 elements, float32, results into a preallocated ``out`` (so allocation is not timed)
and as new arrays. Run ``pytest bench/bench_patch.py`` (pytest-benchmark) or
``python bench/bench_patch.py`` for a quick table (median of repeated timings).
"""

from __future__ import annotations

import numpy as np
import pytest

import pykernels as pk

IMPLS = ["numpy", "numpy-patched", "pykernels"]


def _cases():
    rng = np.random.default_rng(0)
    f = np.float32
    x = rng.standard_normal((100, 784)).astype(f)
    W1 = rng.standard_normal((784, 100)).astype(f)
    h = rng.standard_normal((100, 100)).astype(f)
    W2 = rng.standard_normal((100, 10)).astype(f)
    a = rng.standard_normal(1_000_000).astype(f)
    b = rng.standard_normal(1_000_000).astype(f)
    return {
        "matmul 100x784 @ 784x100": (np.matmul, pk.matmul, x, W1),
        "matmul 100x100 @ 100x10": (np.matmul, pk.matmul, h, W2),
        "add 1e6": (np.add, pk.add, a, b),
        "multiply 1e6": (np.multiply, pk.multiply, a, b),
    }


CASES = _cases()


def _call(impl, case, out):
    npf, pkf, a, b = CASES[case]
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


def _median_time(fn, repeat=7, number=None):
    import timeit

    t = timeit.Timer(fn)
    if number is None:
        number, _ = t.autorange()
    return float(np.median(t.repeat(repeat, number))) / number


def main():
    print(f"threads: {pk.get_num_threads()}")
    print(f"{'case':28s} {'variant':7s} {'numpy':>10s} {'patched':>10s} {'pykernels':>10s}  patched/pk")
    for case in CASES:
        for variant in ("out", "new"):
            npf, _, a, b = CASES[case]
            out = np.empty_like(npf(a, b)) if variant == "out" else None
            t_np = _median_time(_call("numpy", case, out))
            t_pk = _median_time(_call("pykernels", case, out))
            with pk.patched_numpy():
                t_pa = _median_time(_call("numpy-patched", case, out))
            print(f"{case:28s} {variant:7s} {t_np * 1e6:8.1f}us {t_pa * 1e6:8.1f}us {t_pk * 1e6:8.1f}us  {t_pa / t_pk:6.2f}")


if __name__ == "__main__":
    main()
