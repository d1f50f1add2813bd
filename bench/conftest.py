"""pytest-benchmark setup for bench/: pinned threads, machine info, size selection, result checks.

Run (real timings; unset the old-OpenBLAS workaround variables for the command only):
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 \\
        python -m pytest bench --benchmark-json=bench/elementwise.json
    python bench/report.py bench/elementwise.json        # -> bench/RESULTS.md
Smoke mode (CI): ``python -m pytest bench --benchmark-disable -q`` runs every benchmark once, on
small sizes only (1e3, 1e5) unless --bench-sizes is given.

Options: --bench-sizes=1e3,1e6 (or env PK_BENCH_SIZES), --bench-threads=N (or env
PK_BENCH_THREADS; default: all cores), --bench-no-stream (skip the STREAM-style measurement that is
otherwise printed at the end and stored in the JSON). PK_BENCH_SETTLE: seconds of pause when the
implementation changes between two benchmarks (default 0.25; see _settle).
"""

from __future__ import annotations

import glob
import os
import platform
import sys
import time

import numpy as np
import pytest

# `python -m pytest` run from the repository root puts the root first on sys.path, and the source
# pykernels/ there (no compiled _core) would shadow the installed package: drop the root from
# sys.path unless the source tree holds a built _core (in-place build).
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if not any(glob.glob(os.path.join(_ROOT, "pykernels", pat)) for pat in ("_core*.so", "_core*.pyd")):
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _ROOT]

import pykernels as pk

sys.path.insert(0, os.path.dirname(__file__))

DEFAULT_SIZES = "1e3,1e5,1e6,1e7"
SMOKE_SIZES = "1e3,1e5"

try:  # optional second reference
    import torch
except ImportError:  # pragma: no cover
    torch = None


def pytest_addoption(parser):
    g = parser.getgroup("pykernels benchmarks")
    g.addoption("--bench-sizes", default=None, help=f"comma-separated element counts (default {DEFAULT_SIZES})")
    g.addoption("--bench-threads", type=int, default=None, help="threads for 'all' (default: all cores)")
    g.addoption("--bench-no-stream", action="store_true", help="skip the STREAM-style bandwidth measurement")
    g.addoption("--bench-progress", action="store_true",
                help="one line per benchmark: count, name, time taken and an estimate of the time left "
                     "(to the file descriptor in PK_BENCH_PROGRESS_FD when set, else to the terminal)")


def bench_sizes(config) -> list[int]:
    s = config.getoption("--bench-sizes") or os.environ.get("PK_BENCH_SIZES")
    if not s:
        s = SMOKE_SIZES if config.getoption("benchmark_disable") else DEFAULT_SIZES
    return [int(float(v)) for v in s.split(",") if v.strip()]


def bench_threads(config) -> int:
    n = config.getoption("--bench-threads") or os.environ.get("PK_BENCH_THREADS")
    return int(n) if n else max(1, pk._core._max_hw_threads())


def pytest_generate_tests(metafunc):
    if "size" in metafunc.fixturenames:
        sizes = bench_sizes(metafunc.config)
        metafunc.parametrize("size", sizes, ids=[f"{s:.0e}".replace("+0", "") for s in sizes])


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas_info() -> list[dict]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{k: i.get(k) for k in ("user_api", "internal_api", "version", "num_threads", "filepath")}
            for i in threadpool_info()]


@pytest.fixture(scope="session")
def nthreads(pytestconfig) -> int:
    return bench_threads(pytestconfig)


@pytest.fixture(scope="session", autouse=True)
def _pinned_threads(nthreads):
    """BLAS pools (OpenBLAS via threadpoolctl), pykernels and torch all get the same thread count."""
    limits = None
    try:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(limits=nthreads, user_api="blas")
    except ImportError:  # pragma: no cover
        pass
    old = pk.get_num_threads()
    pk.set_num_threads(nthreads)
    if torch is not None:
        torch.set_num_threads(nthreads)
    yield
    pk.set_num_threads(old)
    if limits is not None:
        limits.restore_original_limits()


# Pause when the implementation changes from one benchmark to the next. OpenBLAS's idle worker
# threads keep spinning (sched_yield) for about 0.1 s after a call (its THREAD_TIMEOUT), so on a
# 2-core machine they take a core from whatever runs next: measured here, pykernels' 2-thread
# (512,1024)x(1024,1024) product took 6.5 ms for ~0.1 s after NumPy's 2-thread products and 2.5 ms
# once they had parked (bench/RESULTS.md). Each library is timed without another library's
# threads spinning on the cores, as a program that uses one of them would see it.
SETTLE_SECONDS = float(os.environ.get("PK_BENCH_SETTLE", "0.25"))
_last_impl: list = [None]


WARM_SECONDS = float(os.environ.get("PK_BENCH_WARM", "0.15"))


def warm(fn, config) -> None:
    """Call fn repeatedly for WARM_SECONDS before it is timed. The first ~0.1 s of 2-thread calls
    after a pause (or after 1-thread benchmarks) can run slower on a virtual machine (the idle vCPU is
    woken and its worker thread rescheduled): (128,512)x(512,10) dense, 2 threads, median of a 0.2 s
    benchmark 12.0 us without this, 7.4 us with it, and 7.7 us when timed for 2 s."""
    if config.getoption("benchmark_disable"):
        return
    end = time.perf_counter() + WARM_SECONDS
    while time.perf_counter() < end:
        fn()


@pytest.fixture(autouse=True)
def _settle(request):
    callspec = getattr(request.node, "callspec", None)
    impl = callspec.params.get("impl") if callspec is not None else None
    if (
        impl is not None
        and _last_impl[0] is not None
        and impl != _last_impl[0]
        and not request.config.getoption("benchmark_disable")
    ):
        time.sleep(SETTLE_SECONDS)
    _last_impl[0] = impl
    yield


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


_LOAD_AT_START = _loadavg()


def pytest_benchmark_update_machine_info(config, machine_info):
    n = bench_threads(config)
    machine_info["loadavg_start"] = _LOAD_AT_START  # 1/5/15-min load: other processes add noise
    machine_info["cpu_model"] = _cpu_model()
    machine_info["cores"] = pk._core._max_hw_threads()
    machine_info["bench_threads"] = n
    machine_info["numpy"] = np.__version__
    machine_info["pykernels"] = pk.__version__
    machine_info["pykernels_simd"] = pk._core._isa_active()
    machine_info["pykernels_openmp"] = pk.openmp_enabled()
    machine_info["torch"] = torch.__version__ if torch is not None else None
    machine_info["torch_threads"] = torch.get_num_threads() if torch is not None else None
    machine_info["thread_pools"] = _blas_info()
    machine_info["env"] = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                          "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "PYKERNELS_ISA")}


# ---- progress: one line per benchmark ------------------------------------------------------------


class _Progress:
    """Prints ``[ 12/150] 0:14 left  bench_dot.py::test_dot[square256-numpy-1]  0.41 s`` after each
    benchmark. The estimate of the time left is the mean time per benchmark so far times the number
    left (skipped cases count as done, so it falls back as they pass)."""

    def __init__(self, config):
        self.config = config
        self.total = 0
        self.done = 0
        self.t0 = None
        self.item_start = None
        fd = os.environ.get("PK_BENCH_PROGRESS_FD")
        self.fd = int(fd) if fd else None

    def _write(self, line: str) -> None:
        if self.fd is not None:
            try:
                os.write(self.fd, (line + "\n").encode())
                return
            except OSError:
                self.fd = None
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line(line)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session):
        self.total = len(session.items)
        self.t0 = time.perf_counter()
        self._write(f"[{0:>{len(str(self.total))}}/{self.total}] collected {self.total} benchmarks")

    def pytest_runtest_logstart(self, nodeid, location):
        self.item_start = time.perf_counter()

    def pytest_runtest_logfinish(self, nodeid, location):
        self.done += 1
        now = time.perf_counter()
        took = now - (self.item_start or now)
        left = (now - self.t0) / self.done * (self.total - self.done) if self.t0 else 0.0
        w = len(str(self.total))
        name = nodeid.split("::", 1)[-1] if "::" in nodeid else nodeid
        self._write(f"[{self.done:>{w}}/{self.total}] {int(left) // 60}:{int(left) % 60:02d} left  "
                    f"{os.path.basename(nodeid.split('::', 1)[0])}::{name}  {took:.2f} s")


def pytest_configure(config):
    if config.getoption("--bench-progress", default=False):
        config.pluginmanager.register(_Progress(config), "pk-bench-progress")


# ---- STREAM-style bandwidth, measured once per pytest run after the benchmarks ----------------------


def _stream(config):
    if config.getoption("--bench-no-stream") or config.getoption("benchmark_disable"):
        return None
    if not hasattr(config, "_pk_stream"):
        import stream

        config._pk_stream = stream.measure(threads=bench_threads(config))
    return config._pk_stream


def pytest_benchmark_update_json(config, benchmarks, output_json):
    # The raw per-round timings of sub-microsecond calls run to millions of numbers (hundreds of
    # MB of JSON); report.py needs only the summary statistics.
    for b in output_json.get("benchmarks", []):
        b.get("stats", {}).pop("data", None)
    output_json["machine_info"]["loadavg_end"] = _loadavg()
    res = _stream(config)
    if res is not None:
        output_json["stream"] = res


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    res = _stream(config)
    if res is not None:
        import stream

        terminalreporter.write_sep("-", "STREAM-style bandwidth (best of several runs)")
        terminalreporter.write_line(stream.format_table(res))


# ---- the helper every benchmark uses ------------------------------------------------------------


@pytest.fixture
def run_bench(benchmark, nthreads, pytestconfig):
    """run_bench(impl, fn, check, **info): checks fn() once with `check` (outside the timed call),
    then times it with the impl's thread count, recording `info` (+ threads) in extra_info."""

    def run(impl: str, fn, check, **info):
        threads = 1 if impl in ("pykernels-1t", "numpy", "naive") else nthreads
        with pk.threads(1 if impl == "pykernels-1t" else nthreads):
            check(fn())
            benchmark.extra_info.update(info, impl=impl, threads=threads)
            benchmark.group = "{op} {dtype} {size} {variant}".format(**info)
            warm(fn, pytestconfig)
            benchmark(fn)

    return run
