"""Kernel calls under load: each call's time with a core kept busy by another process, against its
1-thread time on the idle machine, for pykernels, NumPy/OpenBLAS and PyTorch side by side.

    python bench/load.py                    # 1 busy process, 16 fresh processes per library
    python bench/load.py --procs 30 --write # more processes; the table into bench/RESULTS-load.md
    python bench/load.py --quick            # 4 processes, fewer cases: checks the tool, not figures

Protocol. Every figure comes from fresh interpreters (a new process places its threads anew, as a
user's program does), one per library in turn so that drift is shared:
  1. idle, 1 thread: ``--idle-procs`` processes per library time every case; the median per-call
     time is the case's *1-thread time*;
  2. idle, all threads: the same on the default thread count (context only);
  3. loaded: ``--busy-cores`` processes (``while True: pass``) started, then ``--procs`` processes
     per library on the default thread count time every case again.
Each process times every case in ``--batches`` batches of about ``--batch-ms`` ms (calls in a
batch: from a warm-up call's time), cases interleaved; a batch's time / its calls is one sample.
Loaded samples / the 1-thread time give the ratios quoted: median and 95th percentile over all
samples of all processes. The target: median <= 1.5x and p95 <= 3x for every pykernels case, and
no worse than the peers' ratios on the same case.

Threads are pinned for every library: pykernels by ``pk.threads``, OpenBLAS by
``OPENBLAS_NUM_THREADS`` (set before NumPy loads), PyTorch by ``torch.set_num_threads`` (and
``OMP_NUM_THREADS``). NumPy's element-wise ufuncs run on one thread whatever the setting.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "RESULTS-load.md")
SIZES = (1_000, 100_000, 1_000_000, 10_000_000)
TARGET_MEDIAN, TARGET_P95 = 1.5, 3.0


# ---- the cases: name -> builder(lib) returning a zero-argument callable ----------------------------

def _cases(quick: bool) -> list[str]:
    sizes = (1_000, 1_000_000) if quick else SIZES
    names = [f"{op} f32 {n:.0e}".replace("e+0", "e") for op in ("add", "relu") for n in sizes]
    names += ["sum_to (128,512)->(512,)", "sum_to (10000,100)->(100,)",
              "matmul (128,784)x(784,512)", "matmul (128,512)x(512,10)",
              "dense relu 784->512", "dense 512->10",
              "dense_backward relu 784->512", "dense_backward 512->10", "train step 784-512-10"]
    if quick:
        names = [n for n in names if "10000" not in n and "512->10" not in n]
    return names


def _build(case: str, lib: str):
    import numpy as np

    rng = np.random.default_rng(0)
    f32 = np.float32
    op = case.split()[0]
    if op in ("add", "relu"):
        n = int(float(case.split()[-1]))
        a, b, o = (rng.standard_normal(n).astype(f32) for _ in range(3))
        if lib == "pykernels":
            import pykernels as pk
            return (lambda: pk.add(a, b, out=o)) if op == "add" else (lambda: pk.relu(a, out=o))
        if lib == "numpy":
            return (lambda: np.add(a, b, out=o)) if op == "add" else (lambda: np.maximum(a, 0, out=o))
        import torch
        ta, tb, to = (torch.from_numpy(v) for v in (a, b, o))
        return (lambda: torch.add(ta, tb, out=to)) if op == "add" else (lambda: torch.clamp_min(ta, 0, out=to))
    if op == "sum_to":
        shape = (128, 512) if "128" in case else (10_000, 100)
        x = rng.standard_normal(shape).astype(f32)
        if lib == "pykernels":
            import pykernels as pk
            return lambda: pk.sum_to(x, (shape[1],))
        if lib == "numpy":
            return lambda: x.sum(axis=0)
        import torch
        tx = torch.from_numpy(x)
        return lambda: tx.sum(0)
    if op == "matmul":
        m, k, n = (128, 784, 512) if "784" in case else (128, 512, 10)
        a, b = rng.standard_normal((m, k)).astype(f32), rng.standard_normal((k, n)).astype(f32)
        o = np.empty((m, n), f32)
        if lib == "pykernels":
            import pykernels as pk
            return lambda: pk.matmul(a, b, out=o)
        if lib == "numpy":
            return lambda: np.matmul(a, b, out=o)
        import torch
        ta, tb, to = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(o)
        return lambda: torch.matmul(ta, tb, out=to)
    if op in ("dense", "dense_backward"):
        k, n = (784, 512) if "784" in case else (512, 10)
        relu = "relu" in case
        x = rng.random((128, k), dtype=f32)
        W = (rng.standard_normal((k, n)) * 0.05).astype(f32)
        b = rng.standard_normal(n).astype(f32) * f32(0.1)
        dy = rng.standard_normal((128, n)).astype(f32)
        act = "relu" if relu else None
        if lib == "pykernels":
            import pykernels as pk
            y = pk.dense(x, W, b, activation=act)
            if op == "dense":
                return lambda: pk.dense(x, W, b, activation=act)
            return lambda: pk.dense_backward(dy, x, W, y=y, activation=act, need_dx=not relu)
        if lib == "numpy":
            y = np.maximum(x @ W + b, 0) if relu else x @ W + b
            if op == "dense":
                return (lambda: np.maximum(x @ W + b, 0)) if relu else (lambda: x @ W + b)

            def back():
                g = np.where(y > 0, dy, 0) if relu else dy
                dW, db = x.T @ g, g.sum(axis=0)
                return (dW, db) if relu else (g @ W.T, dW, db)
            return back
        import torch
        tx, tW, tb, tdy = (torch.from_numpy(v) for v in (x, W, b, dy))
        tWt = tW.t().contiguous()  # torch.nn.functional.linear takes (out, in)
        ty = torch.nn.functional.linear(tx, tWt, tb)
        if relu:
            ty = torch.relu(ty)
        if op == "dense":
            return ((lambda: torch.relu(torch.nn.functional.linear(tx, tWt, tb))) if relu
                    else (lambda: torch.nn.functional.linear(tx, tWt, tb)))

        def tback():
            g = torch.where(ty > 0, tdy, 0) if relu else tdy
            dW, db = tx.t() @ g, g.sum(0)
            return (dW, db) if relu else (g @ tWt, dW, db)
        return tback
    if op == "train":
        x = rng.random((128, 784), dtype=f32)
        t = rng.integers(0, 10, 128)
        if lib in ("pykernels", "numpy"):
            import pykernels as pk
            from pykernels.layers import Dense
            m = pk.Sequential([Dense(512, activation="relu", input_shape=(784,)), Dense(10, activation="softmax")],
                              backend="native" if lib == "pykernels" else "numpy", seed=0)
            m.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
            return lambda: m.train_on_batch(x, t)
        import torch
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
        opt = torch.optim.RMSprop(net.parameters(), lr=1e-3)
        tx, tt = torch.from_numpy(x), torch.from_numpy(t)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(net(tx), tt)
            loss.backward()
            opt.step()
        return step
    raise ValueError(case)


# ---- one fresh process: time every case -----------------------------------------------------------

def _worker(lib: str, threads: int, quick: bool, batches: int, batch_ms: float) -> None:
    if lib == "torch":
        import torch
        torch.set_num_threads(threads)
    if lib == "pykernels":
        import pykernels as pk
        pk.set_num_threads(threads)
    names = _cases(quick)
    fns = {c: _build(c, lib) for c in names}
    calls = {}
    for c, f in fns.items():  # warm-up, then the calls per batch from the second call's time
        f()
        t0 = time.perf_counter()
        f()
        calls[c] = max(1, min(20_000, int(batch_ms * 1e-3 / max(time.perf_counter() - t0, 1e-7))))
    out: dict[str, list[float]] = {c: [] for c in names}
    for _ in range(batches):
        for c, f in fns.items():  # cases interleaved: a disturbance is shared, not one case's
            n = calls[c]
            t0 = time.perf_counter()
            for _ in range(n):
                f()
            out[c].append((time.perf_counter() - t0) / n)
    print("RESULT " + json.dumps(out))


def _spawn(lib: str, threads: int, args) -> dict[str, list[float]] | None:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), PYTHONSAFEPATH="1")
    env.pop("PYKERNELS_NUM_THREADS", None)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", lib, "--threads", str(threads),
           "--batches", str(args.batches), "--batch-ms", str(args.batch_ms)] + (["--quick"] if args.quick else [])
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=HERE)
    line = [s for s in p.stdout.splitlines() if s.startswith("RESULT ")]
    if p.returncode != 0 or not line:
        print(f"  {lib} ({threads} threads) failed:\n{p.stderr[-1500:]}", file=sys.stderr)
        return None
    return json.loads(line[0][7:])


def _collect(libs, threads: int, procs: int, args, label: str) -> dict[str, dict[str, list[float]]]:
    res: dict[str, dict[str, list[float]]] = {lib: {} for lib in libs}
    for i in range(procs):
        for lib in libs:
            r = _spawn(lib, threads, args)
            for c, v in (r or {}).items():
                res[lib].setdefault(c, []).extend(v)
        print(f"  {label}: {i + 1}/{procs} processes per library", flush=True)
    return res


def _pct(v: list[float], q: float) -> float:
    s = sorted(v)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def _fmt_t(s: float) -> str:
    return f"{s * 1e6:.1f} µs" if s < 1e-3 else f"{s * 1e3:.2f} ms"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--procs", type=int, default=16, help="fresh processes per library under load (default 16)")
    p.add_argument("--idle-procs", type=int, default=6, help="fresh processes per library for the idle figures")
    p.add_argument("--busy-cores", type=int, default=1, help="busy processes kept running (default 1)")
    p.add_argument("--threads", type=int, default=0, help="the default thread count (default: the CPUs this process may use)")
    p.add_argument("--batches", type=int, default=5)
    p.add_argument("--batch-ms", type=float, default=10.0)
    p.add_argument("--libs", default="pykernels,numpy,torch")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--write", action="store_true", help=f"write the tables to {os.path.relpath(RESULTS)}")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.procs, args.idle_procs, args.batches = min(args.procs, 4), min(args.idle_procs, 2), min(args.batches, 3)
    threads = args.threads or len(os.sched_getaffinity(0))
    if args.worker:
        _worker(args.worker, args.threads or 1, args.quick, args.batches, args.batch_ms)
        return 0

    import importlib.util
    libs = [lib for lib in args.libs.split(",") if lib != "torch" or importlib.util.find_spec("torch")]
    print(f"libraries: {', '.join(libs)}; {threads} threads; {args.busy_cores} busy process(es) in the loaded phase")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    idle1 = _collect(libs, 1, args.idle_procs, args, "idle, 1 thread")
    idleN = _collect(libs, threads, args.idle_procs, args, f"idle, {threads} threads")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy_cores)]
    try:
        time.sleep(0.5)
        loaded = _collect(libs, threads, args.procs, args, f"loaded, {threads} threads")
    finally:
        for b in busy:
            b.kill()
            b.wait()

    head = ["case", "library", "idle 1 thr", f"idle {threads} thr", f"loaded {threads} thr (median)",
            "loaded / 1 thr: median", "p95", "target met"]
    rows, misses, worse = [], [], []
    for case in _cases(args.quick):
        ratios = {}
        for lib in libs:
            if case not in idle1[lib] or case not in loaded[lib]:
                continue
            t1 = statistics.median(idle1[lib][case])
            lr = [v / t1 for v in loaded[lib][case]]
            med, p95 = statistics.median(lr), _pct(lr, 0.95)
            ratios[lib] = (med, p95)
            ok = med <= TARGET_MEDIAN and p95 <= TARGET_P95
            if lib == "pykernels" and not ok:
                misses.append(case)
            rows.append([case, lib, _fmt_t(t1), _fmt_t(statistics.median(idleN[lib][case])),
                         _fmt_t(statistics.median(loaded[lib][case])), f"{med:.2f}x", f"{p95:.2f}x",
                         "yes" if ok else "no"])
        if "pykernels" in ratios:
            peers = [r for lib, r in ratios.items() if lib != "pykernels"]
            if peers and ratios["pykernels"][0] > min(r[0] for r in peers) * 1.1 and ratios["pykernels"][0] > TARGET_MEDIAN:
                worse.append(case)
    table = "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] +
                      ["| " + " | ".join(r) + " |" for r in rows])
    n_samples = args.procs * args.batches
    summary = (f"pykernels cases meeting the target (median <= {TARGET_MEDIAN}x, p95 <= {TARGET_P95}x of the idle "
               f"1-thread time): {len(_cases(args.quick)) - len(misses)} of {len(_cases(args.quick))}"
               + (f"; not met: {', '.join(misses)}" if misses else "")
               + (f". Degrading more than a peer (median ratio > 1.1x the best peer's and above the target): "
                  f"{', '.join(worse)}" if worse else ". No case degrades more than its peers beyond the target."))
    print(table)
    print(summary)
    if args.write:
        import platform
        import numpy as np
        cpu = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as f:
                cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
        except (OSError, StopIteration):
            pass
        libs_v = [f"NumPy {np.__version__}"]
        if "torch" in libs:
            import torch
            libs_v.append(f"PyTorch {torch.__version__}")
        with open(RESULTS, "w") as f:
            f.write("# Kernel calls under load\n\n"
                    f"Generated by `python bench/{os.path.basename(__file__)} {' '.join(sys.argv[1:])}`; "
                    "the protocol is in that file's docstring.\n\n"
                    f"- machine: {cpu}, {os.cpu_count()} logical cores; {', '.join(libs_v)}\n"
                    f"- load: {args.busy_cores} busy process(es) (`while True: pass`) during the loaded phase; "
                    f"{threads} threads for every library\n"
                    f"- samples: {n_samples} loaded batches per case and library ({args.procs} fresh processes x "
                    f"{args.batches} batches of ~{args.batch_ms:g} ms), {args.idle_procs * args.batches} idle\n\n"
                    f"{summary}\n\n{table}\n")
        print(f"written: {os.path.relpath(RESULTS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
