"""pykernels.dask on a distributed.LocalCluster: 1 worker x 2 threads vs 2 workers x 1 thread.

Two workloads over a (rows, 784) float32 array held in the workers' memory (generated there and
persisted before timing): the dense layer ``relu(x @ W + b)`` (784 -> 512, ``pykernels.dask.dense``)
and an element-wise chain ``relu((x * x) - (x + 1))`` (``pykernels.dask`` ops, and the same chain as
Dask's own ``dask.array`` / NumPy code for comparison). Each configuration gets
``PykernelsPlugin(patch_numpy=False)`` (pykernels threads = cores // Dask threads on the host; NumPy
left unpatched, so that the ``dask.array`` chain measures NumPy). Reference points: 1
worker x 1 thread with pykernels on every core, and ``pykernels.dense`` called directly on the whole
array in this process (no Dask).

Run (about 3 minutes at 10^6 rows on 2 cores; the array is 3.1 GB, the dense output 2 GB):
    python bench/bench_dask.py --rows 1000000 --repeat 3
``pytest bench`` runs ``test_dask_scaling_smoke`` (a few thousand rows) so the script cannot rot.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

try:
    import dask.array as da
    import distributed
except ImportError:  # pragma: no cover - the optional extra
    da = distributed = None

K, N = 784, 512


def _fill(block_info=None):
    """One block of the input: standard normal values seeded by the block's position."""
    info = block_info[None]
    (r0, _), _ = info["array-location"]
    rng = np.random.default_rng(r0)
    return rng.standard_normal(info["chunk-shape"], dtype=np.float32)


def _workloads(x, W, b):
    import pykernels.dask as pkd

    return {
        "dense 784->512 relu (pykernels.dask.dense)": lambda: pkd.dense(x, W, b, activation="relu"),
        "chain relu(x*x - (x+1)) (pykernels.dask)": lambda: pkd.relu(pkd.subtract(pkd.multiply(x, x), pkd.add(x, 1.0))),
        "chain relu(x*x - (x+1)) (dask.array/NumPy)": lambda: da.maximum(x * x - (x + np.float32(1.0)), np.float32(0.0)),
    }


def _time(client, build, repeat: int, keep) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        y = build().persist()
        distributed.wait(y)
        out.append(time.perf_counter() - t)
        # release the result and wait until the scheduler has forgotten its keys: the next repeat
        # builds the same keys, which must be computed again, not found or cancelled
        keys = [k for k in dict(y.__dask_graph__()) if k not in keep]
        del y
        while client.run_on_scheduler(_any_key_held, keys=keys):
            time.sleep(0.05)
    return out


def _any_key_held(keys, dask_scheduler=None) -> bool:
    return any(k in dask_scheduler.tasks for k in keys)


def run_config(name: str, n_workers: int, threads: int, rows: int, chunk_rows: int, repeat: int,
               pk_threads: int | None = None) -> dict:
    import pykernels as pk
    import pykernels.dask as pkd

    if __name__ != "__main__":  # imported (pytest bench): the workers cannot import this file by name
        import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=threads, processes=True,
                                  host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster, \
            distributed.Client(cluster) as client:
        # patch_numpy=False: the dask.array chain is the NumPy reference, it must not run on the kernels
        client.register_plugin(pkd.PykernelsPlugin(threads=pk_threads, patch_numpy=False))
        pk_threads_seen = sorted(set(client.run(pk.get_num_threads).values()))
        x = da.map_blocks(_fill, chunks=((chunk_rows,) * (rows // chunk_rows) + ((rows % chunk_rows,) if rows % chunk_rows else ()), (K,)),
                          dtype=np.float32, meta=np.empty((0, 0), np.float32)).persist()
        distributed.wait(x)
        W = np.random.default_rng(0).standard_normal((K, N), dtype=np.float32) * np.float32(0.05)
        b = np.zeros(N, np.float32)
        results = {}
        for label, build in _workloads(x, W, b).items():
            keep = set(dict(x.__dask_graph__()))
            _time(client, build, 1, keep)  # warm-up: loads, first-touch of the workers' memory
            results[label] = _time(client, build, repeat, keep)
    return {"config": name, "pk_threads": pk_threads_seen, "results": results}


def run_direct(rows: int, repeat: int) -> dict:
    """pykernels.dense on the whole array in this process, all cores: the no-Dask reference."""
    import pykernels as pk

    x = np.random.default_rng(1).standard_normal((rows, K), dtype=np.float32)
    W = np.random.default_rng(0).standard_normal((K, N), dtype=np.float32) * np.float32(0.05)
    b = np.zeros(N, np.float32)
    out = np.empty((rows, N), np.float32)
    pk.dense(x, W, b, activation="relu", out=out)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        pk.dense(x, W, b, activation="relu", out=out)
        times.append(time.perf_counter() - t)
    chain = []
    for _ in range(repeat):
        t = time.perf_counter()
        pk.relu(pk.subtract(pk.multiply(x, x), pk.add(x, 1.0)))
        chain.append(time.perf_counter() - t)
    return {"config": f"no Dask, pykernels direct, {pk.get_num_threads()} threads", "pk_threads": [pk.get_num_threads()],
            "results": {"dense 784->512 relu (pykernels.dask.dense)": times,
                        "chain relu(x*x - (x+1)) (pykernels.dask)": chain}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--chunk-rows", type=int, default=50_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--no-direct", action="store_true", help="skip the no-Dask reference")
    args = p.parse_args(argv)
    if distributed is None:
        print("bench_dask: needs the extra: pip install \"pykernels[dask]\"", file=sys.stderr)
        return 2
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"rows={args.rows} x {K} float32 ({args.rows * K * 4 / 1e9:.2f} GB), chunks of {args.chunk_rows} rows, "
          f"{cores} cores, load average before: {os.getloadavg()[0]:.2f}, repeat {args.repeat} (after 1 warm-up)")
    runs = [
        run_config("1 worker x 2 threads", 1, 2, args.rows, args.chunk_rows, args.repeat),
        run_config("2 workers x 1 thread", 2, 1, args.rows, args.chunk_rows, args.repeat),
        run_config("1 worker x 1 thread, pykernels on all cores", 1, 1, args.rows, args.chunk_rows, args.repeat,
                   pk_threads=cores),
    ]
    if not args.no_direct:
        runs.append(run_direct(args.rows, args.repeat))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print("\n| workload | configuration | pykernels threads per task | median s | min s |")
    print("| --- | --- | ---: | ---: | ---: |")
    labels = list(runs[0]["results"])
    for label in labels:
        for r in runs:
            if label in r["results"]:
                t = r["results"][label]
                print(f"| {label} | {r['config']} | {','.join(map(str, r['pk_threads']))} | "
                      f"{statistics.median(t):.3f} | {min(t):.3f} |")
    return 0


def test_dask_scaling_smoke():
    """pytest bench: every configuration once on a few thousand rows (checks the script, not timings)."""
    import pytest

    if distributed is None:
        pytest.skip("the optional extra pykernels[dask] is not installed")
    assert main(["--rows", "3000", "--chunk-rows", "1000", "--repeat", "1", "--no-direct"]) == 0


if __name__ == "__main__":
    sys.exit(main())
