"""What `bench/run.py` says at the end: the machine and its measured limits, whether the run was
disturbed, a verdict per family, the plots, and bench/RESULTS.md.

Inputs are the pytest-benchmark JSON files of the suites (bench_elementwise.py, bench_dot.py,
test_bench_train_step.py) plus a ``run`` record written by run.py: the STREAM table, the probes
taken before, between and after the suites, and the CPU time other processes used meanwhile.

    python bench/summary.py DIR          # verdict of the run kept with `run.py --keep DIR`
    python bench/summary.py DIR --write  # ... and regenerate RESULTS.md and the plots from it
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import report  # noqa: E402

FAMILIES = ["element-wise", "reductions", "GEMM", "fused dense", "training step"]
# A probe that varies by more than this between the checks of one run, or other processes using
# more than this share of the machine's CPU time, makes the run "disturbed".
PROBE_SPREAD = 0.15
OTHERS_SHARE = 0.05
LOAD_AT_START = 0.5  # 1-minute load average per core before the run starts


# ---- the comparisons ---------------------------------------------------------------------------


def _median(v: list[float]) -> float | None:
    v = sorted(x for x in v if x is not None and math.isfinite(x))
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def fma_peaks(dot: dict | None, run: dict | None) -> dict[int, float]:
    """{threads: GFLOP/s}: the best FMA-probe figure of the run (suite and run.py's checks). The
    best, because a probe slowed by another process understates the machine, not the other way."""
    peak: dict[int, float] = {}
    for b in (dot or {}).get("benchmarks", []):
        e = b.get("extra_info", {})
        if e.get("impl") == "fma_peak":
            t = int(e["threads"])
            peak[t] = max(peak.get(t, 0.0), float(e["peak_gflops"]))
    for p in (run or {}).get("probes", []):
        for t, g in (p.get("fma_gflops") or {}).items():
            peak[int(t)] = max(peak.get(int(t), 0.0), float(g))
    return peak


def comparisons(ew: dict | None, dot: dict | None, train: dict | None, stream: list | None,
                peak: dict[int, float]) -> list[dict]:
    """One record per benchmarked case: family, label, pykernels' median and the references'
    (NumPy, PyTorch), and the fraction of the machine's limit pykernels reached (``limit``: STREAM
    bandwidth for the element-wise families, the FMA peak at the same threads for the others)."""
    out: list[dict] = []
    for (op, dt, size, var), impls in sorted(report.rows_from(ew or {}).items()):
        pk = impls.get("pykernels-all")
        if not pk:
            continue
        pk_t, nbytes = pk
        gbs = nbytes / pk_t / 1e9 if nbytes else None
        roof = report.stream_peak(stream, size * (4 if dt == "f32" else 8))
        out.append({
            "family": "reductions" if op == "sum_to" else "element-wise",
            "label": f"{report.OP_LABEL.get(op, op)} {dt} {size:.0e}".replace("e+0", "e") + (" out=" if var == "out" else ""),
            "op": op, "size": size, "dtype": dt, "variant": var, "pk": pk_t,
            "numpy": impls.get("numpy", (None,))[0], "torch": impls.get("torch", (None,))[0],
            "gbps": gbs, "limit": gbs / roof if gbs and roof else None, "limit_name": "STREAM",
            "roof": roof,
        })
    rows: dict = {}
    for b in (dot or {}).get("benchmarks", []):
        e = b.get("extra_info", {})
        if "flops" not in e or "case" not in e:
            continue
        key = (e["case"], e.get("dtype", "float32"), int(e["threads"]))
        rows.setdefault(key, {"flops": float(e["flops"])})[e["impl"]] = b["stats"]["median"]
    top = max((k[2] for k in rows), default=1)
    for (case, dt, t), r in rows.items():
        if t != top or "pykernels" not in r:
            continue
        gf = r["flops"] / r["pykernels"] / 1e9
        out.append({
            "family": "fused dense" if case.startswith("dense") else "GEMM",
            "label": case + ("" if dt == "float32" else f" {dt}"), "case": case, "dtype": dt, "threads": t,
            "pk": r["pykernels"], "numpy": r.get("numpy"), "torch": r.get("torch"), "gflops": gf,
            "limit": gf / peak[t] if peak.get(t) else None, "limit_name": "FMA peak", "roof": peak.get(t),
        })
    tr: dict = {}
    for b in (train or {}).get("benchmarks", []):
        name = b.get("name", "")
        for backend in ("native", "numpy", "torch"):
            if name.endswith(f"[{backend}]"):
                tr[backend] = (b["stats"]["median"], b.get("extra_info", {}).get("gflop_per_step"))
    if "native" in tr:
        t_pk, gflop = tr["native"]
        threads = (train or {}).get("machine_info", {}).get("bench_threads") or top
        gf = gflop / t_pk if gflop else None
        out.append({
            "family": "training step", "label": "MNIST model, batch 128", "pk": t_pk,
            "numpy": tr.get("numpy", (None,))[0], "torch": tr.get("torch", (None,))[0], "gflops": gf,
            "threads": threads, "limit": gf / peak[threads] if gf and peak.get(threads) else None,
            "limit_name": "FMA peak", "roof": peak.get(threads),
        })
    for r in out:
        r["vs_numpy"] = r["numpy"] / r["pk"] if r.get("numpy") else None
        r["vs_torch"] = r["torch"] / r["pk"] if r.get("torch") else None
    return out


def verdict(recs: list[dict]) -> list[dict]:
    """Per family: median speed-up over NumPy and PyTorch, and the median fraction of the limit
    (element-wise families: only arrays of >= 1e6 elements, where memory bandwidth is the limit;
    smaller calls are bounded by the call overhead)."""
    out = []
    for fam in FAMILIES:
        rs = [r for r in recs if r["family"] == fam]
        if not rs:
            continue
        lim = rs
        if fam in ("element-wise", "reductions"):
            big = [r for r in rs if r.get("size", 0) >= 1_000_000]
            lim = big or rs
        limits = [r["limit"] for r in lim if r.get("limit") is not None]
        out.append({
            "family": fam, "cases": len(rs),
            "vs_numpy": _median([r["vs_numpy"] for r in rs if r["vs_numpy"]]),
            "vs_torch": _median([r["vs_torch"] for r in rs if r["vs_torch"]]),
            "min_vs_numpy": min((r["vs_numpy"] for r in rs if r["vs_numpy"]), default=None),
            "max_vs_numpy": max((r["vs_numpy"] for r in rs if r["vs_numpy"]), default=None),
            "limit": _median(limits), "best_limit": max(limits, default=None),
            "limit_name": rs[0]["limit_name"], "over_limit": sum(1 for x in limits if x > 1.05),
            "limit_scope": ">= 1e6 elements" if lim is not rs else "all cases",
        })
    return out


# ---- was the run disturbed? ---------------------------------------------------------------------


def disturbance(run: dict | None, fam: list[dict] | None = None) -> dict:
    """{'disturbed': bool, 'reasons': [...], 'facts': [...]} from run.py's checks."""
    run = run or {}
    reasons, facts = [], []
    cores = run.get("cores") or 1
    busy = run.get("busy_cores") or 0
    if busy:
        facts.append(f"{busy} busy process{'es' if busy > 1 else ''} kept running on purpose (--busy-cores)")
    load = run.get("loadavg_start")
    if load:
        facts.append(f"load average before the run {load[0]:.2f} (1 min) on {cores} cores")
        if load[0] > LOAD_AT_START * cores:
            reasons.append(f"the 1-minute load average was {load[0]:.2f} before the run started")
    probes = run.get("probes") or []
    for key, unit, what in (("fma_gflops", "GFLOP/s", "FMA probe"), ("stream_gbps", "GB/s", "STREAM triad probe")):
        by_t: dict = {}
        for p in probes:
            v = p.get(key)
            if isinstance(v, dict):
                for t, g in v.items():
                    by_t.setdefault(int(t), []).append(g)
            elif v:
                by_t.setdefault(0, []).append(v)
        for t, vs in sorted(by_t.items()):
            if len(vs) < 2:
                continue
            lo, hi = min(vs), max(vs)
            tt = f" on {t} thread{'s' if t > 1 else ''}" if t else ""
            facts.append(f"{what}{tt}: {lo:.0f}-{hi:.0f} {unit} over {len(vs)} checks")
            if lo < (1 - PROBE_SPREAD) * hi and not busy:
                reasons.append(f"the {what}{tt} varied from {lo:.0f} to {hi:.0f} {unit} between checks "
                               f"({100 * (1 - lo / hi):.0f}% below its best)")
    acct = run.get("cpu")
    if acct and acct.get("wall"):
        machine = acct["wall"] * cores
        others = max(0.0, acct.get("others", 0.0) - busy * acct["wall"])  # the load asked for is not a disturbance
        steal = max(0.0, acct.get("steal", 0.0))
        facts.append(f"other processes used {others / acct['wall']:.2f} of the {cores} cores during the run "
                     f"({100 * others / machine:.0f}% of the CPU time); steal {100 * steal / machine:.0f}%")
        if others > OTHERS_SHARE * machine:
            reasons.append(f"other processes used {others / acct['wall']:.2f} of the {cores} cores "
                           f"({100 * others / machine:.0f}% of the machine's CPU time) while the benchmarks ran")
        if steal > OTHERS_SHARE * machine:
            reasons.append(f"the hypervisor took {100 * steal / machine:.0f}% of the CPU time (steal)")
    over = sum(f.get("over_limit", 0) for f in fam or [])
    if over and not busy:
        reasons.append(f"{over} figure(s) exceed the measured limit (a probe slowed by other work understates it)")
    return {"disturbed": bool(reasons), "reasons": reasons, "facts": facts, "busy_cores": busy}


# ---- text ---------------------------------------------------------------------------------------


def _x(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.0f}x" if v >= 100 else f"{v:.2f}x"


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.0f}%"


def verdict_lines(fam: list[dict], dist: dict, torch_installed: bool, markdown: bool = False) -> list[str]:
    head = ("family", "vs NumPy (median, range)", "vs PyTorch", "of this machine's limit (median, best)")
    rows = []
    for f in fam:
        rng = f"{_x(f['min_vs_numpy'])}-{_x(f['max_vs_numpy'])}" if f["cases"] > 1 and f["min_vs_numpy"] else ""
        scope = f", {f['limit_scope']}" if f["limit_scope"] != "all cases" else ""
        lim = (f"{_pct(f['limit'])}, {_pct(f['best_limit'])} of {f['limit_name']}{scope}"
               if f["limit"] is not None else "n/a")
        torch_cell = _x(f["vs_torch"]) if f["vs_torch"] else ("n/a" if torch_installed else "not installed")
        rows.append((f["family"], f"{_x(f['vs_numpy'])}" + (f" ({rng})" if rng else ""), torch_cell, lim))
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|---|---:|---:|---|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
    else:
        w = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
        out = ["  ".join(c.ljust(w[i]) for i, c in enumerate(head)).rstrip()]
        out += ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    out.append("")
    out.append("Speed-up = the reference's median time / pykernels' (all threads; > 1x: pykernels faster). "
               "Limits measured on this machine in the same run.")
    busy = dist.get("busy_cores", 0)
    if busy:
        out.append("")
        out.append(f"LOADED RUN: {busy} busy process{'es' if busy > 1 else ''} kept running on purpose "
                   "(--busy-cores): the figures show pykernels, NumPy and PyTorch sharing the machine with it.")
    if dist["disturbed"]:
        out.append("")
        out.append(("**" if markdown else "") + "DISTURBED RUN: these figures do not show what this machine can do."
                   + ("**" if markdown else "") + " Another process on the cores slows whichever benchmark it "
                   "overlaps (multi-thread ones most: a parallel region waits for its descheduled thread), so rows "
                   "can read 0.1x or exceed 100% of a limit. Re-run on an idle machine. What the checks found:")
        out += [f"- {r}" for r in dist["reasons"]]
    return out


def machine_lines(run: dict | None, stream: list | None, peak: dict[int, float]) -> list[str]:
    run = run or {}
    m = run.get("machine", {})
    caches = m.get("caches") or {}
    cache_txt = ", ".join(f"{k} {v >> 20} MiB" if v >= 1 << 20 else f"{k} {v >> 10} KiB" for k, v in caches.items())
    lines = [f"- CPU: {m.get('cpu_model', '?')}, {m.get('cores', '?')} logical cores"
             + (f"; caches (per cpu0, from {m.get('caches_source', 'sysfs')}): {cache_txt}" if cache_txt else "")]
    lines.append(f"- software: Python {m.get('python', '?')}, NumPy {m.get('numpy', '?')} ({m.get('blas', 'BLAS ?')}), "
                 f"PyTorch {m.get('torch') or 'not installed'}, pykernels {m.get('pykernels', '?')} "
                 f"(SIMD {m.get('simd', '?')}, {m.get('compiler', '?')})")
    if stream:
        best: dict = {}
        for r in stream:
            best[r["array_mb"]] = max(best.get(r["array_mb"], 0.0), r["GBps"])
        lines.append("- STREAM-style bandwidth (best of Copy/Scale/Add/Triad, float64): "
                     + ", ".join(f"{best[mb]:.1f} GB/s at {mb} MB per array" for mb in sorted(best)))
    if peak:
        lines.append("- FMA peak (float32, independent FMA chains, widest SIMD): "
                     + ", ".join(f"{peak[t]:.0f} GFLOP/s on {t} thread{'s' if t > 1 else ''}" for t in sorted(peak)))
    return lines


# ---- plots --------------------------------------------------------------------------------------


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 12, "axes.titlesize": 14, "axes.labelsize": 12, "legend.fontsize": 11,
                         "figure.dpi": 100, "savefig.bbox": "tight"})
    return plt


COLORS = {"numpy": "#1f77b4", "torch": "#d62728"}


def _speedup_ticks(ax) -> None:
    """Plain "0.5x, 1x, 2x, 5x" labels on a log speed-up axis (instead of matplotlib's 6x10^0 minor
    labels), only the ticks inside the data's range."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    lo, hi = ax.get_ylim()
    ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500) if lo <= t <= hi]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_minor_formatter(NullFormatter())


def plot_summary(fam: list[dict], recs: list[dict], path: str, title: str, disturbed: bool) -> str:
    """Bars: median speed-up per family over NumPy and PyTorch; dots: each case."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 5.6))
    names = [f["family"] for f in fam]
    refs = [("numpy", "vs NumPy")] + ([("torch", "vs PyTorch")] if any(f["vs_torch"] for f in fam) else [])
    width = 0.8 / len(refs)
    for j, (ref, lab) in enumerate(refs):
        xs = [i + (j - (len(refs) - 1) / 2) * width for i in range(len(names))]
        vals = [f[f"vs_{ref}"] or float("nan") for f in fam]
        # bars from 1x (as fast as the reference) up to a speed-up or down to a slow-down
        ax.bar(xs, [v - 1 for v in vals], width * 0.9, bottom=1, color=COLORS[ref], alpha=0.75,
               label=f"{lab} (median)")
        for x, v in zip(xs, vals):
            if math.isfinite(v):
                ax.annotate(_x(v), (x, v), ha="center", va="bottom" if v >= 1 else "top", fontsize=11,
                            xytext=(0, 3 if v >= 1 else -3), textcoords="offset points", zorder=4,
                            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
        for i, f in enumerate(fam):
            pts = [r[f"vs_{ref}"] for r in recs if r["family"] == f["family"] and r[f"vs_{ref}"]]
            ax.scatter([xs[i]] * len(pts), pts, s=12, color="black", alpha=0.5, zorder=3,
                       label="single cases" if i == 0 and j == 0 else None)
    ax.axhline(1.0, color="gray", lw=1, ls="--")
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names)
    ax.set_ylabel("speed-up of pykernels (log scale; > 1x = faster)")
    _speedup_ticks(ax)
    ax.set_title(title + ("\n(DISTURBED RUN: see the run's checks in RESULTS.md)" if disturbed else ""))
    ax.legend(loc="best")
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_elementwise(recs: list[dict], path: str, title: str, disturbed: bool) -> str | None:
    """Lines per op: speed-up over NumPy (solid) and PyTorch (dashed) against the array size
    (median over dtypes and out=/new-array forms)."""
    rs = [r for r in recs if r["family"] in ("element-wise", "reductions")]
    if not rs:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 5.6))
    ops = [o for o in report.OP_ORDER if any(r["op"] == o for r in rs)]
    cmap = plt.get_cmap("tab10")
    for i, op in enumerate(ops):
        for ref, ls in (("numpy", "-"), ("torch", "--")):
            pts: dict = {}
            for r in rs:
                if r["op"] == op and r[f"vs_{ref}"]:
                    pts.setdefault(r["size"], []).append(r[f"vs_{ref}"])
            if not pts:
                continue
            xs = sorted(pts)
            ax.plot(xs, [_median(pts[x]) for x in xs], ls, marker="o", color=cmap(i),
                    label=f"{report.OP_LABEL.get(op, op)} vs {'NumPy' if ref == 'numpy' else 'PyTorch'}")
    ax.axhline(1.0, color="gray", lw=1, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("elements per array")
    ax.set_ylabel("speed-up of pykernels (log scale; > 1x = faster)")
    _speedup_ticks(ax)
    ax.set_title(title + ("\n(DISTURBED RUN)" if disturbed else ""))
    # beside the axes, not over the lines
    ax.legend(fontsize=9, ncol=1, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.grid(which="both", alpha=0.3)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_matrix(recs: list[dict], path: str, title: str, disturbed: bool) -> str | None:
    """Horizontal bars per matrix case (GEMM, fused dense, training step): speed-up over NumPy and PyTorch."""
    rs = [r for r in recs if r["family"] in ("GEMM", "fused dense", "training step")]
    if not rs:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(rs) + 1.8))
    refs = [("numpy", "vs NumPy")] + ([("torch", "vs PyTorch")] if any(r["vs_torch"] for r in rs) else [])
    h = 0.8 / len(refs)
    labels = [f"{r['family']}: {r['label']}" for r in rs]
    for j, (ref, lab) in enumerate(refs):
        ys = [i + (j - (len(refs) - 1) / 2) * h for i in range(len(rs))]
        vals = [r[f"vs_{ref}"] or float("nan") for r in rs]
        ax.barh(ys, [v - 1 for v in vals], h * 0.9, left=1, color=COLORS[ref], alpha=0.8, label=lab)
        for y, v in zip(ys, vals):
            if math.isfinite(v):
                ax.annotate(_x(v), (v, y), va="center", ha="left" if v >= 1 else "right", fontsize=9,
                            xytext=(3 if v >= 1 else -3, 0), textcoords="offset points")
    ax.axvline(1.0, color="gray", lw=1, ls="--")
    ax.set_xscale("log")
    ax.set_yticks(range(len(rs)))
    ax.set_yticklabels(labels, fontsize=10)
    ax.invert_yaxis()
    ax.set_xlabel("speed-up of pykernels (x, log scale; > 1 = faster)")
    ax.set_title(title + ("\n(DISTURBED RUN)" if disturbed else ""))
    ax.legend(loc="lower right")
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_limits(recs: list[dict], stream: list | None, peak: dict[int, float], path: str, title: str,
                disturbed: bool) -> str | None:
    """Roofline-style: achieved GB/s of the element-wise kernels against the STREAM figures (left),
    achieved GFLOP/s of the matrix cases against the FMA peak (right)."""
    ew = [r for r in recs if r.get("gbps")]
    mx = [r for r in recs if r.get("gflops")]
    if not ew and not mx:
        return None
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(17, 7), gridspec_kw={"width_ratios": [1, 1.1], "wspace": 0.55})
    cmap = plt.get_cmap("tab10")
    if stream:
        best: dict = {}
        for r in stream:
            best[r["array_mb"]] = max(best.get(r["array_mb"], 0.0), r["GBps"])
        xs = sorted(best)
        a1.plot([mb * 2**20 for mb in xs], [best[m] for m in xs], "k-", marker="D", lw=2.5, ms=7,
                label="STREAM, this machine (best kernel)")
    ops = [o for o in report.OP_ORDER if any(r.get("op") == o for r in ew)]
    for i, op in enumerate(ops):
        for dt, mk in (("f32", "o"), ("f64", "s")):
            pts = sorted((r["size"] * (4 if dt == "f32" else 8), r["gbps"]) for r in ew
                         if r["op"] == op and r["dtype"] == dt)
            if pts:
                a1.plot([p[0] for p in pts], [p[1] for p in pts], ls=":", marker=mk, color=cmap(i), ms=6, alpha=0.85,
                        label=f"{report.OP_LABEL.get(op, op)} {dt}")
    a1.set_xscale("log")
    a1.set_yscale("log")
    a1.set_xlabel("bytes per array operand (log)")
    a1.set_ylabel("GB/s achieved by pykernels (log)")
    a1.set_title("element-wise: memory bandwidth")
    a1.legend(fontsize=9, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.13))
    a1.grid(which="both", alpha=0.3)
    if mx:
        ys = list(range(len(mx)))
        a2.barh(ys, [r["gflops"] for r in mx], 0.7, color=[cmap(FAMILIES.index(r["family"])) for r in mx], alpha=0.8)
        for y, r in zip(ys, mx):
            if r.get("limit") is not None:
                a2.annotate(_pct(r["limit"]), (r["gflops"], y), va="center", fontsize=9, xytext=(3, 0),
                            textcoords="offset points")
        a2.set_yticks(ys)
        a2.set_yticklabels([f"{r['family']}: {r['label']}" for r in mx], fontsize=9)
        a2.invert_yaxis()
        for j, t in enumerate(sorted(peak)):
            a2.axvline(peak[t], color="black", ls="-" if j == len(peak) - 1 else ":", lw=1.5,
                       label=f"FMA peak, {t} thread{'s' if t > 1 else ''}: {peak[t]:.0f} GFLOP/s")
        a2.set_xlabel("GFLOP/s achieved by pykernels (all threads); % = share of the FMA peak")
        a2.set_title("matrix products: compute")
        if peak:
            a2.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.13))
        a2.grid(axis="x", alpha=0.3)
    else:
        a2.set_axis_off()
    fig.suptitle(title + (" (DISTURBED RUN)" if disturbed else ""))
    fig.savefig(path)
    plt.close(fig)
    return path


def make_plots(recs, fam, stream, peak, out_dir: str, machine: str, disturbed: bool) -> list[str]:
    """The PNG files beside the tables; [] when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return []
    os.makedirs(out_dir, exist_ok=True)
    paths = [
        plot_summary(fam, recs, os.path.join(out_dir, "speedup.png"), f"pykernels speed-up per family, {machine}",
                     disturbed),
        plot_elementwise(recs, os.path.join(out_dir, "speedup_elementwise.png"),
                         f"element-wise kernels and sum_to, {machine}", disturbed),
        plot_matrix(recs, os.path.join(out_dir, "speedup_matrix.png"),
                    f"GEMM, fused dense, training step, {machine}", disturbed),
        plot_limits(recs, stream, peak, os.path.join(out_dir, "limits.png"),
                    f"pykernels against this machine's measured limits, {machine}", disturbed),
    ]
    return [p for p in paths if p]


# ---- the whole report ---------------------------------------------------------------------------


def load_dir(d: str) -> dict:
    """The files run.py keeps: run.json, elementwise-N.json, dot-N.json, train-N.json."""
    def runs(prefix):
        fs = sorted(f for f in os.listdir(d) if f.startswith(prefix + "-") and f.endswith(".json"))
        return [report.load(os.path.join(d, f)) for f in fs]

    out = {"run": report.load(os.path.join(d, "run.json")) if os.path.exists(os.path.join(d, "run.json")) else {}}
    for k in ("elementwise", "dot", "train"):
        datas = runs(k)
        out[k] = report.merge(datas) if datas else None
    return out


def build(data: dict, out_dir: str | None = None) -> dict:
    """Everything the report says, from load_dir()'s dict; plots written to out_dir when given."""
    run = data.get("run") or {}
    stream = run.get("stream") or (data.get("elementwise") or {}).get("stream")
    peak = fma_peaks(data.get("dot"), run)
    recs = comparisons(data.get("elementwise"), data.get("dot"), data.get("train"), stream, peak)
    fam = verdict(recs)
    dist = disturbance(run, fam)
    m = run.get("machine", {})
    short = f"{m.get('cpu_model', 'this CPU')}, {run.get('threads', m.get('cores', '?'))} threads"
    plots = make_plots(recs, fam, stream, peak, out_dir, short, dist["disturbed"]) if out_dir else []
    return {"run": run, "stream": stream, "peak": peak, "recs": recs, "families": fam, "disturbance": dist,
            "plots": plots, "torch": bool(m.get("torch")), "short": short}


def console_text(res: dict, tables_where: str) -> str:
    lines = ["", "=" * 78, f"Verdict: {res['short']}"]
    lines += machine_lines(res["run"], res["stream"], res["peak"])
    lines.append("- machine check: " + ("; ".join(res["disturbance"]["facts"]) or "none recorded"))
    lines.append("")
    lines += verdict_lines(res["families"], res["disturbance"], res["torch"])
    lines.append("")
    lines.append(f"Full tables: {tables_where}")
    if res["plots"]:
        lines.append("Plots: " + ", ".join(os.path.relpath(p) for p in res["plots"]))
    lines.append("=" * 78)
    return "\n".join(lines)


def train_table(train: dict | None) -> str:
    if not train:
        return ""
    rows = {}
    for b in train.get("benchmarks", []):
        name = b.get("name", "")
        for be in ("native", "numpy", "torch"):
            if name.endswith(f"[{be}]"):
                rows[be] = (b["stats"]["median"], b.get("extra_info", {}).get("gflop_per_step"))
    if not rows:
        return ""
    out = ["| backend | time per step (median) | GFLOP/s | vs NumPy backend |", "|---|---:|---:|---:|"]
    np_t = rows.get("numpy", (None,))[0]
    for be, (t, gflop) in rows.items():
        name = {"native": "pykernels (C++ kernels)", "numpy": "NumPy backend", "torch": "PyTorch"}[be]
        out.append(f"| {name} | {report.fmt_time(t)} | {gflop / t:.1f} | {report.fmt_ratio(np_t / t) if np_t else ''} |"
                   if gflop else f"| {name} | {report.fmt_time(t)} | | |")
    return "\n".join(out) + "\n"


def results_markdown(res: dict, data: dict, results_path: str) -> str:
    run = res["run"]
    rel = lambda p: os.path.relpath(p, os.path.dirname(os.path.abspath(results_path)))  # noqa: E731
    out = ["# Benchmark results", "",
           "Generated by `bench/run.py --write` from one run of the benchmark suites on the machine below; "
           "the figures depend on the CPU. Run `python bench/run.py` to measure yours.", "",
           "## Machine", ""]
    out += machine_lines(run, res["stream"], res["peak"])
    out += ["", "## Run", "",
            f"- command: `{run.get('command', 'python bench/run.py --write')}`"
            + (" (a --quick run: few sizes and cases, short timings; for checking the tools, not for figures)"
               if run.get("mode") == "quick" else ""),
            f"- date: {run.get('date', '?')}",
            f"- threads: pykernels and PyTorch {run.get('threads', '?')}, NumPy's BLAS the same (threadpoolctl); "
            "NumPy's element-wise ufuncs run on one thread",
            "- each figure: the median of pytest-benchmark's rounds"
            + (f", then the median over {run.get('repeat')} runs of each suite" if (run.get("repeat") or 1) > 1 else ""),
            "- machine check: " + ("; ".join(res["disturbance"]["facts"]) or "none recorded"), "",
            "## Verdict", ""]
    out += verdict_lines(res["families"], res["disturbance"], res["torch"], markdown=True)
    if res["plots"]:
        out += ["", "## Plots", ""]
        for p in res["plots"]:
            name = os.path.splitext(os.path.basename(p))[0].replace("_", " ")
            out.append(f"![{name}]({rel(p)})")
            out.append("")
    out += ["## Tables", ""]
    if data.get("elementwise"):
        out.append(report.render(data["elementwise"], "", machine=False, stream=res["stream"]).rstrip("\n"))
        out.append("")
    if data.get("dot"):
        out.append(report.render_dot(data["dot"], "", machine=False, fma_peak=res["peak"]).rstrip("\n"))
        out.append("")
    t = train_table(data.get("train"))
    if t:
        out += ["### One training step of the MNIST model (bench/test_bench_train_step.py)", "", t.rstrip("\n"), ""]
    scaling = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scaling.md")
    if os.path.exists(scaling):  # measured by hand with the commands it gives (Dask, MPI), and projected
        with open(scaling) as f:
            out += [f.read().rstrip("\n"), ""]
    out += ["The end-to-end MNIST training time (s/epoch) is measured by `python bench/train_mnist.py --epochs 5 "
            "--seeds 0 1 2 --threads 2 1`, which appends its table below.", ""]
    return "\n".join(out)


def write_results(path: str, text: str) -> None:
    """Writes RESULTS.md, keeping the sections other scripts add to it (train_books.py,
    train_mnist.py: <!-- BEGIN name --> ... <!-- END name -->, each with its own command and machine
    line) instead of dropping them."""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
        for m in re.finditer(r"<!-- BEGIN (\S+) -->.*?<!-- END \1 -->", old, flags=re.S):
            if m.group(0) not in text:
                text = text.rstrip("\n") + "\n\n" + m.group(0) + "\n"
    with open(path, "w") as f:
        f.write(text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dir", help="a directory kept with `bench/run.py --keep DIR`")
    p.add_argument("--write", action="store_true", help="write RESULTS.md and the plots")
    p.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    p.add_argument("--plots", default=os.path.join(HERE, "results"))
    args = p.parse_args(argv)
    data = load_dir(args.dir)
    res = build(data, args.plots if args.write else None)
    if args.write:
        write_results(args.results, results_markdown(res, data, args.results))
    print(console_text(res, args.results if args.write else "(not written; add --write)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
