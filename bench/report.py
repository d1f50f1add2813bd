"""Turn pytest-benchmark JSON (``--benchmark-json=...``) into the Markdown tables of bench/RESULTS.md.

    python bench/report.py bench/elementwise.json [--results bench/RESULTS.md] [--section elementwise]
    python bench/report.py bench/elementwise.json --stdout        # print only

One row per (op, dtype, N, variant): the median time of each implementation, the speed-up of
pykernels (all threads) over NumPy and over PyTorch in the same run, and pykernels' bandwidth in
GB/s (bytes each call must move / median) and as a % of the STREAM-style measurement (bench/stream.py)
stored in the same JSON, taken at the STREAM array size closest to the benchmark's array size.
The tables replace the text between ``<!-- BEGIN <section> -->`` and ``<!-- END <section> -->`` in
the results file (appended when the markers are absent); the rest of the file is left alone.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

IMPL_ORDER = ["numpy", "pykernels-1t", "pykernels-all", "torch", "naive"]
OP_ORDER = ["relu", "relu_backward", "add", "add_bias", "maximum_book", "sum_to"]
OP_LABEL = {
    "relu": "relu",
    "relu_backward": "relu_backward",
    "add": "add (same shape)",
    "add_bias": "add (N,100)+(100,)",
    "maximum_book": "maximum((64,3,32,10),(32,10))",
    "sum_to": "sum_to (N,100)->(100,)",
}


def fmt_time(s: float | None) -> str:
    if s is None:
        return ""
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return ""
    return f"{r:.0f}x" if r >= 100 else f"{r:.2f}x"


def load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def _median(v: list[float]) -> float:
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def merge(datas: list[dict]) -> dict:
    """Several runs of the same suite as one: each benchmark's median becomes the median over the
    runs of its per-run medians (a slow period of the machine in one run then moves no figure),
    the FMA peak and each STREAM figure (a best of several repetitions within its run) likewise."""
    if len(datas) == 1:
        return datas[0]
    out = dict(datas[0])
    by_name: dict = {}
    for d in datas:
        for b in d.get("benchmarks", []):
            by_name.setdefault(b["name"], []).append(b)
    merged = []
    for name, bs in by_name.items():
        b = json.loads(json.dumps(bs[0]))
        b["stats"]["median"] = _median([x["stats"]["median"] for x in bs])
        b["stats"]["runs"] = len(bs)
        if "peak_gflops" in b.get("extra_info", {}):
            b["extra_info"]["peak_gflops"] = _median([x["extra_info"]["peak_gflops"] for x in bs])
        merged.append(b)
    out["benchmarks"] = merged
    mi = dict(datas[0].get("machine_info", {}))
    mi["loadavg_end"] = datas[-1].get("machine_info", {}).get("loadavg_end")
    out["machine_info"] = mi
    out["runs"] = [d.get("datetime", "?") for d in datas]
    streams = [d["stream"] for d in datas if d.get("stream")]
    if streams:
        recs: dict = {}
        for st in streams:
            for r in st:
                recs.setdefault((r.get("kernel"), r.get("impl"), r.get("threads"), r.get("array_mb")), []).append(r)
        out["stream"] = []
        for rs in recs.values():
            r = dict(rs[0])
            r["GBps"] = _median([x["GBps"] for x in rs])
            out["stream"].append(r)
    return out


def rows_from(data: dict) -> dict:
    """{(op, dtype, size, variant): {impl: (median_s, bytes)}}"""
    table: dict = {}
    for b in data.get("benchmarks", []):
        e = b.get("extra_info", {})
        if "op" not in e or "impl" not in e:
            continue
        key = (e["op"], e["dtype"], int(e["size"]), e["variant"])
        table.setdefault(key, {})[e["impl"]] = (b["stats"]["median"], e.get("bytes"))
    return table


def stream_peak(stream: list[dict] | None, array_bytes: float | None) -> float | None:
    """Best STREAM GB/s (any kernel, any impl) at the STREAM array size closest (log scale) to the
    benchmark's array size (elements x itemsize): L2/L3-resident arrays are compared with the
    L2/L3 STREAM figure, 40-80 MB arrays with the 40 or 128 MB one."""
    if not stream or not array_bytes:
        return None
    by_size: dict = {}
    for r in stream:
        by_size.setdefault(r["array_mb"], []).append(r["GBps"])
    sizes = sorted(by_size)
    mb = min(sizes, key=lambda m: abs(math.log(array_bytes / (m * 2**20))))
    return max(by_size[mb])


def machine_block(data: dict, json_path: str) -> list[str]:
    m = data.get("machine_info", {})
    pools = m.get("thread_pools") or []
    blas = ", ".join(f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} thr)"
                     for p in pools if p.get("user_api") == "blas") or "n/a"
    omp = ", ".join(f"{p.get('internal_api')} ({p.get('num_threads')} thr)"
                    for p in pools if p.get("user_api") == "openmp") or "n/a"
    env = m.get("env") or {}
    lines = [
        f"- machine: {m.get('cpu_model', m.get('cpu', {}).get('brand_raw', '?'))}, {m.get('cores', '?')} cores; "
        f"python {m.get('python_version', '?')}",
        f"- threads: pykernels-all / torch = {m.get('bench_threads', '?')}, pykernels-1t = 1, NumPy element-wise = 1; "
        f"BLAS: {blas}; OpenMP pools: {omp}",
        f"- versions: pykernels {m.get('pykernels', '?')} (SIMD {m.get('pykernels_simd', '?')}), "
        f"numpy {m.get('numpy', '?')}, torch {m.get('torch') or 'not installed'}",
        "- env: " + ", ".join(f"{k}={v}" for k, v in env.items() if v is not None) if any(env.values())
        else "- env: OMP_NUM_THREADS/OPENBLAS_* unset",
        f"- load average (1/5/15 min) at start {m.get('loadavg_start')}, at end {m.get('loadavg_end')} "
        f"(the benchmark itself adds ~1-2; more means other processes shared the {m.get('cores', '?')} cores "
        "and multi-thread timings are noisy)",
        (f"- run: {data.get('datetime', '?')}, source `{os.path.basename(json_path)}`; medians of pytest-benchmark "
         "rounds; 'vs NumPy' = NumPy median / pykernels-all median (>1 = faster), same run")
        if "runs" not in data else
        (f"- {len(data['runs'])} runs ({data['runs'][0]} to {data['runs'][-1]}), each suite run whole, one after the "
         "other; every figure is the median over the runs of that benchmark's median (pytest-benchmark rounds); "
         "ratios are computed from those medians (>1 = pykernels faster)"),
    ]
    return lines


def render(data: dict, json_path: str, machine: bool = True, stream: list | None = None) -> str:
    """The element-wise table (and the STREAM table). ``machine=False``: without the machine lines
    (bench/summary.py puts them once at the top of RESULTS.md); ``stream``: the STREAM records to
    compare with (default: the ones stored in the JSON)."""
    table = rows_from(data)
    stream = stream if stream is not None else data.get("stream")
    out = ["### Element-wise kernels", ""]
    if machine:
        out += machine_block(data, json_path) + [""]
    out += ["Median time per call of each implementation (`pk 1 thr`, `pk all`: pykernels on one thread and "
            "on all); `pk vs X`: X's time / pykernels' on all threads (> 1: pykernels faster); `pk GB/s`: bytes "
            "each call must move / time, and as a share of the STREAM figure at the closest array size.", "",
            "| op | dtype | N | out= | NumPy | pk 1 thr | pk all | torch | naive | pk vs NumPy | "
                "pk vs torch | pk vs naive | pk GB/s | % STREAM |",
            "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def sort_key(k):
        op, dt, size, var = k
        return (OP_ORDER.index(op) if op in OP_ORDER else 99, op, dt, size, var != "out")

    for key in sorted(table, key=sort_key):
        op, dt, size, var = key
        impls = table[key]
        med = {i: impls[i][0] for i in impls}
        nbytes = next((b for _, b in impls.values() if b), None)
        pk_all = med.get("pykernels-all")
        vs_np = med["numpy"] / pk_all if pk_all and "numpy" in med else None
        vs_t = med["torch"] / pk_all if pk_all and "torch" in med else None
        vs_naive = med["naive"] / pk_all if pk_all and "naive" in med else None
        gbs = nbytes / pk_all / 1e9 if pk_all and nbytes else None
        peak = stream_peak(stream, size * (4 if dt == "f32" else 8))
        pct = f"{100 * gbs / peak:.0f}%" if gbs and peak else ""
        out.append(
            f"| {OP_LABEL.get(op, op)} | {dt} | {f'{size:.0e}'.replace('e+0', 'e')} | {'yes' if var == 'out' else 'no'} | "
            + " | ".join(fmt_time(med.get(i)) for i in IMPL_ORDER)
            + f" | {fmt_ratio(vs_np)} | {fmt_ratio(vs_t)} | {fmt_ratio(vs_naive)} | {'' if gbs is None else f'{gbs:.1f}'} | {pct} |"
        )
    if stream:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import stream as stream_mod

        out += ["", "STREAM-style bandwidth measured in the same run (float64, best of several repetitions"
                + ("; the median of that over the runs" if "runs" in data else "") + "; "
                "bytes counted as in STREAM, bench/stream.py):", "", stream_mod.format_table(stream)]
    return "\n".join(out) + "\n"


def render_dot(data: dict, json_path: str, machine: bool = True, fma_peak: dict | None = None) -> str:
    """Matrix products (bench_dot.py): GFLOP/s per implementation and thread count, the ratio to
    NumPy/OpenBLAS at the same thread count, and pykernels' share of the FMA peak measured in the
    same run (test_fma_peak)."""
    peak: dict = {}
    rows: dict = {}
    for b in data.get("benchmarks", []):
        e = b.get("extra_info", {})
        if e.get("impl") == "fma_peak":
            peak[int(e["threads"])] = float(e["peak_gflops"])
            continue
        if "flops" not in e or "case" not in e:
            continue
        key = (e["case"], e.get("dtype", "float32"))
        rows.setdefault(key, {})[(e["impl"], int(e["threads"]))] = b["stats"]["median"]
    if not rows:
        return ""
    flops_of = {}
    for b in data.get("benchmarks", []):
        e = b.get("extra_info", {})
        if "flops" in e and "case" in e:
            flops_of[(e["case"], e.get("dtype", "float32"))] = float(e["flops"])
    threads = sorted({t for r in rows.values() for (_, t) in r})
    impls = [i for i in ("numpy", "pykernels", "pk-bare", "torch", "naive")
             if any(i == k[0] for r in rows.values() for k in r)]
    bare = "pk-bare" in impls
    if fma_peak:
        peak = dict(fma_peak)
    out = ["### Matrix products (dot, matmul, fused dense)", ""]
    if machine:
        out += machine_block(data, json_path)[:1] + machine_block(data, json_path)[2:]
    if peak:
        out.append(f"- FMA peak measured in the same run{'s (median)' if 'runs' in data else ''} (independent FMA "
                   "chains, `_core._fma_peak_gflops`): "
                   + ", ".join(f"{peak[t]:.0f} GFLOP/s on {t} thread{'s' if t > 1 else ''}" for t in sorted(peak)))
    head = "| case | dtype | " + " | ".join(f"{i} {t}t" for t in threads for i in impls)
    head += " | " + " | ".join(f"pk/NumPy {t}t" for t in threads) + " | " + " | ".join(f"pk % peak {t}t" for t in threads)
    if bare:
        head += " | " + " | ".join(f"pk time / bare {t}t" for t in threads)
    head += " |"
    ncols = len(threads) * len(impls) + (3 if bare else 2) * len(threads)
    out += ["", "GFLOP/s of each implementation at each thread count (`1t`, `2t`), median time in parentheses; "
            "`pk/NumPy`: NumPy's time / pykernels' (> 1: pykernels faster); `pk % peak`: pykernels' GFLOP/s as a "
            "share of the FMA peak"
            + ("; `pk-bare`: the fused layer's GEMMs alone in pykernels, and `pk time / bare` the fused layer's "
               "time over theirs (1.00: the bias, activation and column sums cost nothing)" if bare else "") + ":", "",
            head, "|---|---|" + "---:|" * ncols]
    for key in sorted(rows, key=lambda k: (list(rows).index(k))):
        r, fl = rows[key], flops_of[key]
        cells = []
        for t in threads:
            for i in impls:
                m = r.get((i, t))
                cells.append("" if m is None else f"{fl / m / 1e9:.1f} ({fmt_time(m)})")
        ratios = [fmt_ratio(r[("numpy", t)] / r[("pykernels", t)]) if ("numpy", t) in r and ("pykernels", t) in r
                  else "" for t in threads]
        pct = [f"{100 * fl / r[('pykernels', t)] / 1e9 / peak[t]:.0f}%" if ("pykernels", t) in r and t in peak
               else "" for t in threads]
        if bare:
            pct += [f"{r[('pykernels', t)] / r[('pk-bare', t)]:.2f}" if ("pykernels", t) in r and ("pk-bare", t) in r
                    else "" for t in threads]
        out.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells + ratios + pct) + " |")
    return "\n".join(out) + "\n"


def update_section(path: str, section: str, body: str) -> None:
    begin, end = f"<!-- BEGIN {section} -->", f"<!-- END {section} -->"
    text = ""
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    block = f"{begin}\n<!-- generated by bench/report.py; do not edit by hand -->\n{body}{end}"
    if begin in text and end in text:
        pre, rest = text.split(begin, 1)
        _, post = rest.split(end, 1)
        text = pre + block + post
    else:
        if not text:
            text = "# Benchmark results\n\nGenerated from real runs by `bench/report.py`.\n"
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def write_section(section: str, lines: list[str], path: str | None = None) -> str:
    """The scripts' ``--write``: ``lines`` become the marked section of bench/RESULTS.md (or ``path``),
    which ``run.py --write`` keeps when it regenerates the rest. Returns the file's path."""
    path = path or os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
    update_section(path, section, "\n".join(lines) + "\n")
    print(f"updated section '{section}' of {path}")
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json", nargs="+", help="pytest-benchmark JSON file(s); several runs are merged (see merge)")
    p.add_argument("--results", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md"))
    p.add_argument("--section", default="elementwise", help="elementwise or dot (the table format)")
    p.add_argument("--stdout", action="store_true", help="print the tables instead of updating the file")
    args = p.parse_args(argv)
    data = merge([load(j) for j in args.json])
    src = ", ".join(os.path.basename(j) for j in args.json)
    body = render_dot(data, src) if args.section == "dot" else render(data, src)
    if args.stdout:
        print(body)
    else:
        update_section(args.results, args.section, body)
        print(f"updated section '{args.section}' of {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
