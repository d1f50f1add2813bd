"""Benchmark: the book's MNIST model (Dense 512 relu, Dense 10 softmax, RMSprop Keras settings, sparse
categorical cross-entropy, batch 128) trained with pykernels (native), pykernels' NumPy backend (plain
NumPy) and, when installed, PyTorch - same initial weights (Keras glorot_uniform, zero biases, drawn
once per seed), same batches (one permutation per epoch from the same generator), same thread count.

Each (implementation, seed) runs in its own subprocess so that its peak RSS (ru_maxrss) is its own.
Prints a table and updates the ``train_mnist`` section of bench/RESULTS.md (``--out``).

    python bench/train_mnist.py                       # 5 epochs, seeds 0 1 2, 2 threads
    python bench/train_mnist.py --epochs 1 --seeds 0 --impl pykernels torch

PyTorch's RMSprop adds eps outside the square root (w -= lr*g/(sqrt(v)+eps)); Keras inside
(w -= lr*g/sqrt(v+1e-7)). We use alpha=0.9 and eps=sqrt(1e-7), which equals Keras's denominator at v=0
and approaches it for v >> 1e-7 (at most a factor sqrt(2) apart, at v=1e-7).
The environment variables OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are removed for the workers (they
slow down NumPy's OpenBLAS where they are set for an older OpenBLAS).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

IMPLS = ("pykernels", "numpy", "torch")


def _data():
    import numpy as np

    from pykernels.datasets import mnist

    (xtr, ytr), (xte, yte) = mnist.load_data(verbose=False)
    # The book's preprocessing (reshape to 784, float32 / 255), without a second float32 temporary.
    x_train = xtr.reshape(60000, 784).astype(np.float32)
    x_train /= 255
    x_test = xte.reshape(10000, 784).astype(np.float32)
    x_test /= 255
    del xtr, xte
    return x_train, ytr.astype(np.int64), x_test, yte.astype(np.int64)


def _init(seed):
    import numpy as np

    from pykernels import initializers

    rng = np.random.default_rng(seed)
    W1 = initializers.glorot_uniform((784, 512), rng)
    W2 = initializers.glorot_uniform((512, 10), rng)
    return W1, np.zeros(512, np.float32), W2, np.zeros(10, np.float32)


def _worker(impl: str, seed: int, threads: int, epochs: int, batch_size: int) -> dict:
    import numpy as np

    x_train, y_train, x_test, y_test = _data()
    W1, b1, W2, b2 = _init(seed)
    shuffle_seed = seed + 1000  # the same batches in every implementation
    epoch_times: list[float] = []
    if impl in ("pykernels", "numpy"):
        import pykernels as pk
        from pykernels.layers import Dense

        pk.set_num_threads(threads)
        model = pk.Sequential([Dense(512, activation="relu", input_shape=(784,)), Dense(10, activation="softmax")],
                              backend="native" if impl == "pykernels" else "numpy")
        model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        for p, v in zip(model.params, (W1, b1, W2, b2)):
            p[...] = v
        model.rng = np.random.default_rng(shuffle_seed)  # fit draws one permutation(n) per epoch from it
        hist = model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=0)
        epoch_times = hist.epoch_times
        acc = model.evaluate(x_test, y_test, batch_size=1000)[1]
        note = ""
    elif impl == "torch":
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
        with torch.no_grad():
            net[0].weight.copy_(torch.from_numpy(W1.T.copy()))
            net[0].bias.copy_(torch.from_numpy(b1))
            net[2].weight.copy_(torch.from_numpy(W2.T.copy()))
            net[2].bias.copy_(torch.from_numpy(b2))
        opt = torch.optim.RMSprop(net.parameters(), lr=1e-3, alpha=0.9, eps=1e-7**0.5)
        lossf = torch.nn.CrossEntropyLoss()
        X = torch.from_numpy(x_train)
        Y = torch.from_numpy(y_train)
        rng = np.random.default_rng(shuffle_seed)
        for _ in range(epochs):
            t0 = time.perf_counter()
            perm = torch.from_numpy(rng.permutation(len(X)))
            for a in range(0, len(X), batch_size):
                idx = perm[a:a + batch_size]
                opt.zero_grad(set_to_none=False)
                loss = lossf(net(X[idx]), Y[idx])
                loss.backward()
                opt.step()
            epoch_times.append(time.perf_counter() - t0)
        with torch.no_grad():
            acc = float((net(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean())
        note = f"torch {torch.__version__}"
    else:
        raise ValueError(impl)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {"impl": impl, "seed": seed, "threads": threads, "epoch_times": epoch_times, "test_acc": acc,
            "peak_rss_mib": rss_mib, "note": note}


def _available(impl: str) -> bool:
    if impl != "torch":
        return True
    try:
        import importlib.util

        return importlib.util.find_spec("torch") is not None
    except Exception:  # noqa: BLE001
        return False


def _run_table(args, impls, threads):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env.update(OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    results: dict[str, list[dict]] = {i: [] for i in impls}
    for seed in args.seeds:  # interleaved: every seed runs every implementation, so load drift is shared
        for impl in impls:
            cmd = [sys.executable, __file__, "--worker", impl, str(seed), "--threads", str(threads),
                   "--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
            p = subprocess.run(cmd, env=env, capture_output=True, text=True)
            line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
            if p.returncode != 0 or not line:
                print(f"{impl} seed {seed} failed:\n{p.stderr[-2000:]}", file=sys.stderr)
                return None, None
            r = json.loads(line[0][7:])
            results[impl].append(r)
            print(f"[{threads} thr] {impl:>9} seed {seed}: {statistics.median(r['epoch_times']):.3f} s/epoch "
                  f"(median), test acc {r['test_acc']:.4f}, peak RSS {r['peak_rss_mib']:.0f} MiB {r['note']}",
                  flush=True)
    rows = []
    for impl in impls:
        rs = results[impl]
        spe = statistics.median([statistics.median(r["epoch_times"]) for r in rs])
        acc = statistics.mean(r["test_acc"] for r in rs)
        rss = max(r["peak_rss_mib"] for r in rs)
        rows.append((impl, spe, acc, rss, rs[0]["note"]))
    ref = next((spe for impl, spe, *_ in rows if impl == "torch"), None)
    lines = ["| implementation | s/epoch (median) | vs PyTorch | test acc (mean of seeds) | peak RSS MiB (max) | note |",
             "|---|---|---|---|---|---|"]
    for impl, spe, acc, rss, note in rows:
        ratio = f"{spe / ref:.2f}x" if ref else "n/a"
        lines.append(f"| {impl} | {spe:.3f} | {ratio} | {acc * 100:.2f}% | {rss:.0f} | {note} |")
    table = "\n".join(lines)
    print(table, flush=True)
    per_run = [f"- {impl} seed {r['seed']}: " + ", ".join(f"{t:.3f}" for t in r["epoch_times"])
               + f"; test acc {r['test_acc']:.4f}; peak RSS {r['peak_rss_mib']:.0f} MiB"
               for impl in impls for r in results[impl]]
    return table, per_run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, nargs="+", default=[2], help="one table per thread count")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--impl", nargs="+", default=list(IMPLS), choices=IMPLS)
    ap.add_argument("--out", default=str(Path(__file__).with_name("RESULTS.md")))
    ap.add_argument("--worker", nargs=2, metavar=("IMPL", "SEED"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        r = _worker(args.worker[0], int(args.worker[1]), args.threads[0], args.epochs, args.batch_size)
        print("RESULT " + json.dumps(r), flush=True)
        return 0

    impls = [i for i in args.impl if _available(i)]
    skipped = [i for i in args.impl if i not in impls]
    import numpy as np

    md = [
        "### Training the book's MNIST model (bench/train_mnist.py)",
        "",
        f"Command: `python bench/train_mnist.py --epochs {args.epochs} --threads "
        f"{' '.join(map(str, args.threads))} --seeds {' '.join(map(str, args.seeds))} --impl {' '.join(args.impl)}`",
        f"Machine: {platform.machine()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, "
        f"NumPy {np.__version__}; run on {time.strftime('%Y-%m-%d', time.gmtime())}, load average before "
        f"{os.getloadavg()[0]:.2f} (1 min).",
    ]
    for threads in args.threads:
        table, per_run = _run_table(args, impls, threads)
        if table is None:
            return 1
        md += ["", f"#### {threads} thread(s)", "", table, "", "Per run (seconds per epoch):", "", *per_run]
    if skipped:
        md += ["", f"Not installed, skipped: {', '.join(skipped)}"]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from report import write_section

    write_section("train_mnist", md, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
