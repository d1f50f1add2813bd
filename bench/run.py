"""The main job: benchmark pykernels against NumPy (and PyTorch when installed) on this machine,
check that nothing else was running, and say what it found.

    python bench/run.py --quick      # under a minute: a few sizes and cases, to see that it works
    python bench/run.py              # element-wise at 1e3..1e6 elements, the main matrix cases (~5 min)
    python bench/run.py --full       # also 1e7 elements and every matrix case (~10 min)
    python bench/run.py --full --repeat 3 --write   # what bench/RESULTS.md holds: median of 3 runs
    python bench/run.py --busy-cores 1               # the same under load: one busy process kept running

It prints one line per benchmark (suite, case, time left in the suite and in the whole run), checks the machine before, between and
after the suites (load average, FMA and STREAM probes, the CPU time other processes took) and ends
with a verdict per family: median speed-up over NumPy and PyTorch, and the share of this machine's
measured limits (STREAM bandwidth, FMA peak) reached. Tables, plots (PNG, needs matplotlib) and the
raw pytest-benchmark JSON go to bench/results/local/; with --write the tables go to
bench/RESULTS.md and the plots to bench/results/. `python bench/summary.py DIR --write` regenerates
them from a kept directory.

Threads: pykernels, OpenBLAS and PyTorch are pinned per benchmark (bench/conftest.py, threadpoolctl);
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are removed from the environment of the benchmark run so that
NumPy uses the OpenBLAS kernel it would pick by itself (they are a workaround for old OpenBLAS builds).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LOCAL = os.path.join(HERE, "results", "local")

DOT_MAIN = "square256 or square1024 or matvec4096 or mnist or dense"
MODES = {
    # suite options per mode; est: rough minutes on a 2-core machine
    "quick": {
        "ew": ["--bench-sizes=1000,1000000", "-k", "f32 and not naive"],
        "dot": ["-k", "(square256 or square1024 or mnist_X.W or mnist_H.W2 or dense) and not naive and not f64 "
                      "and not pk-bare or fma_peak"],
        "timing": ["--benchmark-min-rounds=3", "--benchmark-max-time=0.05"],
        "env": {"PK_BENCH_WARM": "0.03", "PK_BENCH_SETTLE": "0.05"},
        "stream_mb": (4, 40), "est": 1,
    },
    "default": {
        "ew": ["--bench-sizes=1000,100000,1000000"],
        "dot": ["-k", f"({DOT_MAIN}) or fma_peak"],
        "timing": ["--benchmark-min-rounds=5", "--benchmark-max-time=0.2"],
        "env": {}, "stream_mb": (4, 16, 40, 128), "est": 5,
    },
    "full": {
        "ew": ["--bench-sizes=1000,100000,1000000,10000000"],
        "dot": [],
        "timing": ["--benchmark-min-rounds=5", "--benchmark-max-time=0.2"],
        "env": {}, "stream_mb": (4, 16, 40, 128), "est": 10,
    },
}
SUITES = [("elementwise", "bench_elementwise.py"), ("dot", "bench_dot.py"), ("train", "test_bench_train_step.py")]


# ---- machine checks -----------------------------------------------------------------------------


def _cpu_model() -> str:
    """The model name of /proc/cpuinfo, with the CPU family and model numbers when the name alone
    does not tell the generation (some virtual machines say only "AMD EPYC")."""
    info: dict = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                k, _, v = line.partition(":")
                info[k.strip()] = v.strip()
    except OSError:
        pass
    if info.get("model name"):
        name = info["model name"]
        if "cpu family" in info and "model" in info and not any(ch.isdigit() for ch in name):
            name += f" (family {info['cpu family']}, model {info['model']})"
        return name
    import platform

    return platform.processor() or platform.machine()


def machine_info() -> dict:
    import importlib.metadata as md

    import numpy as np

    import pykernels as pk
    from pykernels import _core, _runtime

    try:
        torch = md.version("torch")
    except md.PackageNotFoundError:
        torch = None
    blas = "BLAS ?"
    try:
        from threadpoolctl import threadpool_info

        b = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if b:
            blas = f"{b[0].get('internal_api')} {b[0].get('version')}"
    except ImportError:
        pass
    return {
        "cpu_model": _cpu_model(), "cores": _core._max_hw_threads(), "caches": _runtime.cache_sizes(),
        "caches_source": "sysfs" if os.path.isdir(_runtime._SYSFS_CACHE) else "sysconf",
        "python": sys.version.split()[0], "numpy": np.__version__, "blas": blas, "torch": torch,
        "pykernels": pk.__version__, "simd": _core._isa_active(), "compiler": _core._build_info["compiler"],
    }


def cpu_times() -> dict:
    """Machine-wide busy and steal seconds (/proc/stat) and this process tree's own CPU seconds."""
    own = sum(os.times()[:4])
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return {"own": own, "wall": time.perf_counter()}
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq = v[:7]
    steal = v[7] if len(v) > 7 else 0
    return {"busy": (user + nice + system + irq + softirq) / hz, "steal": steal / hz, "own": own,
            "wall": time.perf_counter()}


def cpu_delta(a: dict, b: dict) -> dict:
    """{'wall', 'others', 'steal'} seconds between two cpu_times(): 'others' is the CPU time that
    processes other than this one and its benchmark children used meanwhile."""
    out = {"wall": b["wall"] - a["wall"]}
    if "busy" in a and "busy" in b:
        out["others"] = max(0.0, (b["busy"] - a["busy"]) - (b["own"] - a["own"]))
        out["steal"] = b["steal"] - a["steal"]
    return out


def probe(threads: int) -> dict:
    """A short check of the machine: FMA peak on 1 and `threads` threads (0.05 s each), STREAM
    triad on 40 MB float64 arrays with pykernels on `threads` threads (best of 25), load average."""
    import numpy as np

    import pykernels as pk
    from pykernels import _core

    # best of 3 short runs: a peak is what the machine can do, and one run can lose its second core
    # for a moment (a thread woken on the caller's CPU, the hypervisor)
    fma = {1: max(_core._fma_peak_gflops(0.03, 1) for _ in range(3))}
    if threads > 1:
        fma[threads] = max(_core._fma_peak_gflops(0.03, threads) for _ in range(3))
    n = 40 * (1 << 20) // 8
    a, b, c = np.full(n, 1.0), np.full(n, 2.0), np.full(n, 0.5)
    best = float("inf")
    # best of 25: at 40 MB per array (beyond a 32 MB L3) the best of 6 calls varied by 17% between
    # checks a second apart on an idle 2-core AMD EPYC, the best of 25 by 13%
    with pk.threads(threads):
        for _ in range(25):
            t0 = time.perf_counter()
            pk.add(b, pk.multiply(c, 3.0, out=a), out=a)
            best = min(best, time.perf_counter() - t0)
    del a, b, c
    # two passes: a = 3c reads c and writes a, a = b + a reads b and a and writes a: five arrays moved
    return {"fma_gflops": fma, "stream_gbps": 5 * n * 8 / best / 1e9, "loadavg": list(os.getloadavg()),
            "at": time.strftime("%H:%M:%S")}


def _probe_line(p: dict) -> str:
    fma = ", ".join(f"{g:.0f} GFLOP/s on {t} thr" for t, g in p["fma_gflops"].items())
    return f"FMA {fma}; STREAM triad 40 MB {p['stream_gbps']:.1f} GB/s; load {p['loadavg'][0]:.2f}"


# ---- running a suite ----------------------------------------------------------------------------


class _Printer:
    """Progress lines: rewritten in place on a terminal, one per line otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.open = False

    def progress(self, line: str) -> None:
        if self.tty:
            cols = shutil.get_terminal_size((100, 20)).columns
            sys.stdout.write("\r\033[K" + line[: cols - 1])
            sys.stdout.flush()
            self.open = True
        else:
            print(line, flush=True)

    def say(self, line: str) -> None:
        if self.open:
            sys.stdout.write("\r\033[K")
            self.open = False
        print(line, flush=True)


def _mmss(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 60}:{s % 60:02d}"


class _RunEta:
    """The time left for the whole run: the mean time per benchmark so far times the benchmarks
    left in this suite and in the suites after it (counted by pytest --collect-only before the first
    suite starts). The suites' own lines give the time left in the suite alone."""

    def __init__(self, totals: list[int]) -> None:
        self.totals = totals  # benchmarks per suite run, in order
        self.suite = 0  # the suite running
        self.t0: float | None = None
        self.done_before = 0  # benchmarks of the suites already finished

    def start_suite(self, k: int) -> None:
        self.suite = k
        self.done_before = sum(self.totals[:k])
        if self.t0 is None:
            self.t0 = time.perf_counter()

    def left(self, done_in_suite: int, now: float | None = None) -> float | None:
        done = self.done_before + done_in_suite
        if self.t0 is None or done == 0:
            return None
        now = time.perf_counter() if now is None else now
        return (now - self.t0) / done * (sum(self.totals) - done)


_PROGRESS = re.compile(r"^\[\s*(\d+)/(\d+)\] (\d+:\d\d) left  ")


def progress_text(label: str, line: str, run_left: float | None) -> str:
    """One progress line: the suite's label, then the suite's own line (bench/conftest.py's
    ``[ 12/150] 0:14 left  name  0.41 s``) with the whole run's time left added to its estimate."""
    if run_left is not None:
        line = _PROGRESS.sub(lambda m: f"[{m.group(1)}/{m.group(2)}] {m.group(3)} left in the suite, "
                                       f"{_mmss(run_left)} in all  ", line, count=1)
    return f"{label} {line}"


def collect_counts(suites: dict[str, list[str]], extra_env: dict) -> dict[str, int]:
    """How many benchmarks pytest would run for each suite's arguments (--collect-only, the suites
    collected side by side: each collection is mostly imports)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env.update(extra_env)
    procs = {name: subprocess.Popen([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                                     *args], cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    text=True)
             for name, args in suites.items()}
    return {name: sum(1 for line in p.communicate()[0].splitlines() if "::" in line) for name, p in procs.items()}


def run_suite(printer: _Printer, label: str, args: list[str], json_path: str, log_path: str, extra_env: dict,
              eta: _RunEta | None = None) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env.update(extra_env)
    r, w = os.pipe()
    env["PK_BENCH_PROGRESS_FD"] = str(w)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--benchmark-json", json_path,
           "--benchmark-sort=name", "--benchmark-columns=median", "--benchmark-quiet", "--bench-no-stream",
           "--bench-progress", *args]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=HERE, stdout=log, stderr=subprocess.STDOUT, pass_fds=(w,))
    os.close(w)

    def reader():
        with os.fdopen(r, "r", errors="replace") as f:
            for line in f:
                m = _PROGRESS.match(line)
                run_left = eta.left(int(m.group(1))) if eta is not None and m else None
                printer.progress(progress_text(label, line.rstrip(), run_left))

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    rc = proc.wait()
    t.join()
    if rc != 0:
        printer.say(f"benchmark run failed (exit {rc}): {' '.join(cmd)}")
        with open(log_path) as f:
            tail = f.read()[-4000:]
        printer.say(tail)
        raise SystemExit(rc)


# ---- the job ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="a few sizes and cases, short timings (under a minute)")
    g.add_argument("--full", action="store_true", help="all sizes and cases (slow)")
    p.add_argument("--write", action="store_true", help="write bench/RESULTS.md and the plots in bench/results/")
    p.add_argument("--repeat", type=int, default=1,
                   help="run the suites this many times, alternating, and report the median over the runs")
    p.add_argument("--busy-cores", type=int, default=0, metavar="N",
                   help="keep N busy processes running during the suites (a laptop with a browser open, a shared "
                        "CI runner); pykernels, NumPy and PyTorch run under the same load. With --write the "
                        "results go to bench/RESULTS-loaded.md")
    p.add_argument("--keep", metavar="DIR", default=None,
                   help=f"where the JSON files, the log and (without --write) the tables and plots go (default {LOCAL})")
    args = p.parse_args(argv)
    mode = "quick" if args.quick else "full" if args.full else "default"
    cfg = MODES[mode]
    sys.path.insert(0, HERE)
    import stream as stream_mod
    import summary

    from pykernels import _core

    busy = max(0, args.busy_cores)
    out_dir = os.path.abspath(args.keep or (LOCAL + "-loaded" if busy else LOCAL))
    os.makedirs(out_dir, exist_ok=True)
    for f in os.listdir(out_dir):  # the files of an earlier run in the same place
        if f == "run.json" or (f.split("-")[0] in dict(SUITES) and f.endswith((".json", ".log"))):
            os.remove(os.path.join(out_dir, f))
    printer = _Printer()
    threads = _core._max_hw_threads()
    est = cfg["est"] * args.repeat
    printer.say(f"pykernels benchmarks ({mode}{f', {args.repeat} runs' if args.repeat > 1 else ''}): about {est} "
                f"min on a 2-core machine; {threads} threads; output in {os.path.relpath(out_dir)}")

    run = {"command": "python bench/run.py" + ("".join(f" {a}" for a in argv)), "mode": mode,
           "repeat": args.repeat, "threads": threads, "machine": machine_info(), "probes": [],
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes")}
    run["cores"] = run["machine"]["cores"]
    run["loadavg_start"] = list(os.getloadavg())
    printer.say(f"machine: {run['machine']['cpu_model']}, {run['cores']} cores; load average "
                f"{run['loadavg_start'][0]:.2f} (1 min)")
    if run["loadavg_start"][0] > summary.LOAD_AT_START * run["cores"]:
        printer.say("  warning: the machine is busy before the run starts; the figures will be disturbed")

    run["probes"].append(probe(threads))
    printer.say("check before: " + _probe_line(run["probes"][-1]))
    run["busy_cores"] = busy
    loaders = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    if busy:
        printer.say(f"{busy} busy process{'es' if busy > 1 else ''} started: every figure below is taken under load")
    try:
        _suites(printer, run, cfg, args, out_dir, threads, stream_mod, summary)
    finally:
        for ld in loaders:
            ld.kill()
            ld.wait()
    with open(os.path.join(out_dir, "run.json"), "w") as f:
        json.dump(run, f, indent=1)

    data = summary.load_dir(out_dir)
    if args.write:
        results = os.path.join(HERE, "RESULTS-loaded.md" if busy else "RESULTS.md")
        plots = os.path.join(HERE, "results", "loaded") if busy else os.path.join(HERE, "results")
        os.makedirs(plots, exist_ok=True)
    else:
        results, plots = os.path.join(out_dir, "RESULTS.md"), out_dir
    res = summary.build(data, plots)
    summary.write_results(results, summary.results_markdown(res, data, results))
    printer.say(summary.console_text(res, os.path.relpath(results)))
    return 0


def _suites(printer, run, cfg, args, out_dir, threads, stream_mod, summary) -> None:
    printer.say(f"STREAM-style bandwidth ({', '.join(f'{m} MB' for m in cfg['stream_mb'])} arrays) ...")
    run["stream"] = stream_mod.measure(threads=threads, sizes_mb=cfg["stream_mb"], reps=5 if run["mode"] == "quick" else 10)

    suite_args = {name: [file, *{"elementwise": cfg["ew"], "dot": cfg["dot"], "train": []}[name], *cfg["timing"]]
                  for name, file in SUITES}
    counts = collect_counts(suite_args, cfg["env"])
    eta = _RunEta([counts[name] for _ in range(args.repeat) for name, _ in SUITES])
    c0 = cpu_times()
    n_suites = len(SUITES) * args.repeat
    k = 0
    for i in range(args.repeat):
        for name, file in SUITES:
            eta.start_suite(k)
            k += 1
            label = f"suite {k}/{n_suites} {name}"
            s0 = cpu_times()
            run_suite(printer, label, suite_args[name], os.path.join(out_dir, f"{name}-{i + 1}.json"),
                      os.path.join(out_dir, f"{name}-{i + 1}.log"), cfg["env"], eta)
            d = cpu_delta(s0, cpu_times())
            run["probes"].append(probe(threads))
            msg = f"{label} done in {d['wall']:.0f} s; check: {_probe_line(run['probes'][-1])}"
            if "others" in d:
                msg += f"; other processes used {d['others'] / d['wall']:.2f} cores meanwhile"
            printer.say(msg)
            expected = run["busy_cores"] * d["wall"]  # the load asked for with --busy-cores
            if d.get("others", 0.0) - expected > summary.OTHERS_SHARE * d["wall"] * run["cores"]:
                printer.say("  warning: another process shared the cores during this suite: its figures are disturbed")
    run["cpu"] = cpu_delta(c0, cpu_times())


if __name__ == "__main__":
    raise SystemExit(main())
