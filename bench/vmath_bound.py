"""Benchmark: the float32 transcendental kernels (exp, log, tanh, sigmoid) in elements/ns beside the
machine's FMA peak, and how close each comes to the bound its instruction count sets.

A vectorised exp is compute-bound: at 1e6 float32 elements it moves 8 MB in ~0.1 ms, far below the
memory bandwidth, so the limit is how fast the core issues its vector instructions. The bound used
here: the FMA probe's rate (vector FMAs per ns, measured in the same run) divided by the vector
instructions the AVX-512 loop spends per 16 elements. Instructions that run beside the FMAs (on
the add, shuffle or mask pipes) can take a kernel past 100% of that bound.

    python bench/vmath_bound.py                 # 1 thread and all threads, NumPy and PyTorch beside
    python bench/vmath_bound.py --write         # also the `vmath_bound` section of bench/RESULTS.md

The instruction counts (VECTOR_INSNS) are static counts of the contiguous loop of each op's AVX-512
build, which takes four vectors per iteration (the zmm instructions between the loop's label and its
backward jump, loads and stores included, divided by 4), re-derived from a build tree with

    objdump -d --no-show-raw-insn build/CMakeFiles/pk_kernels.dir/csrc/cpu/elementwise_loops_avx512.cpp.o

on the functions `lanes16_loop<Lanes16<pk::ops::Exp>>` etc. (GCC 12, -O3). They hold for the
AVX-512 path only; on another ISA path the bound columns are left empty.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

import pykernels as pk
from pykernels import _core

N = 10**6
OPS = ("exp", "log", "tanh", "sigmoid")
# zmm instructions per 16 float32 elements in the AVX-512 contiguous loop (module docstring).
VECTOR_INSNS = {"exp": 21, "log": 31, "tanh": 33, "sigmoid": 37}


def _inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(N).astype(np.float32) * 4
    return {op: (np.abs(x) + np.float32(0.1) if op == "log" else x) for op in OPS}


def _numpy(op: str):
    if op == "sigmoid":
        return lambda x, out: np.divide(1, np.add(1, np.exp(np.negative(x, out=out), out=out), out=out), out=out)
    return getattr(np, op)


def _median_ns(f, reps: int) -> float:
    f()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        f()
        ts.append(time.perf_counter_ns() - t0)
    return statistics.median(ts)


def _fma_probe(threads: int) -> float:
    """The FMA peak probe's best of 3 (GFLOP/s, float32)."""
    with pk.threads(threads):
        return max(_core._fma_peak_gflops(0.1, threads) for _ in range(3))


def measure(rounds: int, reps: int, threads: int) -> dict:
    # the peak before anything else ran: PyTorch's and OpenBLAS's idle threads spin on the other core
    # for a while after their calls, and a probe next to them reads half the 2-thread peak
    fma = {1: _fma_probe(1), threads: _fma_probe(threads)}
    xs = _inputs()
    out = np.empty(N, np.float32)
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):  # the implementations in turn, each round: a disturbance is shared
        for op in OPS:
            x = xs[op]
            cands = {"pk 1 thr": (1, lambda: getattr(pk, op)(x, out=out)),
                     "pk all": (threads, lambda: getattr(pk, op)(x, out=out)),
                     "numpy": (1, lambda: _numpy(op)(x, out))}
            if torch is not None:
                xt, ot = torch.from_numpy(x), torch.from_numpy(out)
                cands["torch"] = (threads, lambda: getattr(torch, op)(xt, out=ot))
            for name, (t, f) in cands.items():
                time.sleep(0.15)  # the other side's idle threads go to sleep before timing
                with pk.threads(t):
                    times.setdefault((op, name), []).append(_median_ns(f, reps))
    time.sleep(1.0)
    fma = {t: max(g, _fma_probe(t)) for t, g in fma.items()}  # and after, the best of both
    return {"times": {k: statistics.median(v) for k, v in times.items()}, "fma": fma,
            "threads": threads, "isa": _core._isa_active()}


def table(res: dict) -> str:
    thr = res["threads"]
    names = [n for n in ("pk 1 thr", "pk all", "numpy", "torch") if any(k[1] == n for k in res["times"])]
    head = ("| op | " + " | ".join(f"{n} el/ns" for n in names)
            + " | vector insns / 16 el | bound 1 thr / all el/ns | pk of bound 1 thr / all | pk all vs NumPy |")
    lines = [head, "|---" * (len(names) + 5) + "|"]
    for op in OPS:
        rate = {n: N / res["times"][(op, n)] for n in names}
        cells = [f"{rate[n]:.2f}" for n in names]
        if res["isa"] == "avx512":
            insns = VECTOR_INSNS[op]
            # FMA probe GFLOP/s -> vector FMAs per ns (2 flops x 16 lanes each) -> elements per ns
            b1 = res["fma"][1] / 32 * 16 / insns
            bn = res["fma"][thr] / 32 * 16 / insns
            bound = [str(insns), f"{b1:.2f} / {bn:.2f}", f"{rate['pk 1 thr'] / b1:.0%} / {rate['pk all'] / bn:.0%}"]
        else:
            bound = ["", "", ""]
        lines.append(f"| {op} | " + " | ".join(cells + bound) + f" | {rate['pk all'] / rate['numpy']:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=30, help="calls timed per implementation and round")
    ap.add_argument("--threads", type=int, default=0, help="threads of 'pk all' and PyTorch (default: all)")
    ap.add_argument("--write", action="store_true", help="update the vmath_bound section of bench/RESULTS.md")
    args = ap.parse_args(argv)
    threads = args.threads or len(os.sched_getaffinity(0))
    os.environ.pop("OPENBLAS_CORETYPE", None)
    load = os.getloadavg()[0]
    res = measure(args.rounds, args.reps, threads)
    t = table(res)
    note = (f"float32, {N:.0e} elements, out=; medians over {args.rounds} interleaved rounds of {args.reps} calls. "
            f"FMA probe: {res['fma'][1]:.0f} GFLOP/s on 1 thread, {res['fma'][threads]:.0f} on {threads}; "
            f"ISA path {res['isa']}. NumPy's sigmoid is 1/(1+np.exp(-x)); NumPy runs on one thread, PyTorch on "
            f"{threads}.")
    print(t + "\n" + note)
    if args.write:
        md = ["### Transcendental kernels against their instruction bound (bench/vmath_bound.py)", "",
              f"Command: `python bench/vmath_bound.py --rounds {args.rounds} --threads {threads} --write`. "
              f"Machine: {platform.machine()}, {os.cpu_count()} logical CPUs, NumPy {np.__version__}; load "
              f"average before {load:.2f} (1 min).", "", t, note, "",
              "el/ns: elements per nanosecond (higher is faster). The bound: the FMA probe's vector FMAs per ns "
              "times 16 over the loop's vector instructions per 16 elements; instructions on the other pipes "
              "(adds, shuffles, masks) can take a kernel past it."]
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from report import write_section

        write_section("vmath_bound", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
