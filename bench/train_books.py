"""Benchmark: the sigmoid models of "Deep Learning from Scratch", native kernels against pykernels'
NumPy backend (plain NumPy), same weights, same batches, interleaved.

* spiral: DLFS2 ch. 1's two-layer net (Affine-Sigmoid-Affine-SoftmaxWithLoss, hidden 10, SGD
  learning rate 1.0, batch 30, 300 epochs on the 300-point spiral): overhead-bound (30x2 and 30x10
  matrices), so what it measures is the cost of a call. Time of the whole 300-epoch fit.
* mnist: a 784-1000-10 sigmoid net (sigmoid hidden layer, softmax output, SGD learning rate 0.1,
  batch 100) on MNIST's 60,000 training images: time per epoch.

    python bench/train_books.py                      # both, 5 repetitions, all threads
    python bench/train_books.py --models spiral --repeat 9 --threads 1
    python bench/train_books.py --write              # also the `train_books` section of bench/RESULTS.md

Each figure is the median over the repetitions; the native and NumPy runs alternate so that a
disturbance is shared. MNIST is downloaded on first use (pykernels.datasets.mnist).
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
from pykernels.layers import Dense
from pykernels.optimizers import SGD

BACKENDS = ("native", "numpy")


def _spiral():
    x, t = pk.datasets.spiral.load_data()
    return x.astype(np.float32), t.argmax(axis=1)


def _mnist():
    (xtr, ytr), _ = pk.datasets.mnist.load_data(verbose=False)
    return xtr.reshape(len(xtr), -1).astype(np.float32) / 255.0, ytr


MODELS = {
    # name: (data loader, hidden units, input dim, classes, learning rate, batch, epochs timed, unit)
    "spiral": (_spiral, 10, 2, 3, 1.0, 30, 300, "s per 300-epoch fit"),
    "mnist": (_mnist, 1000, 784, 10, 0.1, 100, 1, "s per epoch"),
}


def _model(name: str, backend: str) -> pk.Sequential:
    _, hidden, d, k, lr, *_ = MODELS[name]
    m = pk.Sequential([Dense(hidden, activation="sigmoid", input_shape=(d,)), Dense(k, activation="softmax")],
                      backend=backend, seed=0)
    m.compile(optimizer=SGD(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def _time_fit(name: str, backend: str, x, y) -> tuple[float, float]:
    *_, batch, epochs, _unit = MODELS[name]
    m = _model(name, backend)
    t0 = time.perf_counter()
    h = m.fit(x, y, epochs=epochs, batch_size=batch, verbose=0, shuffle=True)
    return time.perf_counter() - t0, h.history["loss"][-1]


def run(models, repeat: int, threads: int) -> list[tuple]:
    rows = []
    with pk.threads(threads):
        for name in models:
            x, y = MODELS[name][0]()
            _time_fit(name, "native", x[:300], y[:300])  # warm-up: first-call costs out of the figures
            times: dict[str, list[float]] = {b: [] for b in BACKENDS}
            losses: dict[str, float] = {}
            for r in range(repeat):
                for b in (BACKENDS if r % 2 == 0 else BACKENDS[::-1]):
                    t, loss = _time_fit(name, b, x, y)
                    times[b].append(t)
                    losses[b] = loss
                print(f"{name}: {r + 1}/{repeat}: " + ", ".join(f"{b} {times[b][-1]:.3f} s" for b in BACKENDS),
                      flush=True)
            med = {b: statistics.median(v) for b, v in times.items()}
            _, h, d, k, _, _, epochs, _ = MODELS[name]
            # the matrix products per fit: forward x.W1, h.W2; backward dW1, dW2 and dh (no dx)
            flops = float(len(x)) * epochs * (4 * d * h + 6 * h * k)
            rows.append((name, MODELS[name][-1], med["native"], med["numpy"], med["numpy"] / med["native"],
                         losses["native"], losses["numpy"], flops / med["native"] / 1e9, flops / med["numpy"] / 1e9))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="pykernels and BLAS threads (default: all)")
    ap.add_argument("--write", action="store_true", help="update the train_books section of bench/RESULTS.md")
    args = ap.parse_args(argv)
    threads = args.threads or len(os.sched_getaffinity(0))
    try:
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(threads, user_api="blas")
    except ImportError:
        limits = None
    load = os.getloadavg()[0]
    rows = run(args.models, args.repeat, threads)
    if limits is not None:
        limits.restore_original_limits()
    with pk.threads(threads):
        peak = max(pk._core._fma_peak_gflops(0.1, threads) for _ in range(3))
    lines = ["| model | figure | native | NumPy backend | speed-up | products GFLOP/s native / NumPy "
             "| last loss native / NumPy |",
             "|---|---|---:|---:|---:|---:|---|"]
    for name, unit, tn, tp, su, ln, lp, gn, gp in rows:
        lines.append(f"| {name} | {unit} | {tn:.3f} | {tp:.3f} | {su:.2f}x | {gn:.3g} / {gp:.3g} | {ln:.4f} / {lp:.4f} |")
    table = "\n".join(lines) + (
        f"\n\nThe FMA peak probe on {threads} thread(s): {peak:.0f} GFLOP/s (float32). The GFLOP/s column counts "
        "the matrix products alone (forward x.W1 and h.W2, backward dW1, dW2 and dh), so it bounds what any "
        "backend can gain: where the NumPy backend's products already run at more than half the peak, no "
        "backend can be 2x faster.")
    print(table)
    if args.write:
        md = ["### The sigmoid models of Deep Learning from Scratch (bench/train_books.py)", "",
              f"Command: `python bench/train_books.py --repeat {args.repeat} --threads {threads} --models "
              f"{' '.join(args.models)} --write`; median of {args.repeat} runs each, native and NumPy alternating.",
              f"Machine: {platform.machine()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, "
              f"NumPy {np.__version__}, {threads} thread(s); load average before {load:.2f} (1 min).", "", table]
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from report import write_section

        write_section("train_books", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
