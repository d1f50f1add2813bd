"""The main job's report (bench/run.py, bench/summary.py) on small synthetic pytest-benchmark JSON:
the verdict per family, the disturbance notice, the plots and RESULTS.md. No benchmark is run."""

from __future__ import annotations

import json
import pathlib
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))
summary = pytest.importorskip("summary")


def _b(name, median, **extra):
    return {"name": name, "stats": {"median": median}, "extra_info": extra}


def _ew(scale_pk=1.0):
    bs = []
    for op in ("relu", "add", "sum_to"):
        for size in (1000, 1_000_000):
            nbytes = 8 * size
            bs.append(_b(f"{op}-np-{size}", 2e-9 * size + 1e-6, op=op, dtype="f32", size=size, variant="new",
                         impl="numpy", bytes=nbytes))
            bs.append(_b(f"{op}-pk-{size}", scale_pk * (1e-9 * size + 0.5e-6), op=op, dtype="f32", size=size,
                         variant="new", impl="pykernels-all", bytes=nbytes))
            bs.append(_b(f"{op}-pk1-{size}", 1e-9 * size + 0.5e-6, op=op, dtype="f32", size=size, variant="new",
                         impl="pykernels-1t", bytes=nbytes))
    return {"machine_info": {"bench_threads": 2}, "datetime": "x", "benchmarks": bs}


def _dot():
    bs = []
    for case, flops in (("square1024", 2 * 1024**3), ("mnist_X.W", 2 * 128 * 784 * 512), ("dense784x512_forward", 1e8)):
        for t in (1, 2):
            bs.append(_b(f"{case}-np-{t}", flops / (50e9 * t), flops=flops, threads=t, impl="numpy", case=case,
                         dtype="float32"))
            bs.append(_b(f"{case}-pk-{t}", flops / (80e9 * t), flops=flops, threads=t, impl="pykernels", case=case,
                         dtype="float32"))
    bs.append(_b("fma1", 0.1, impl="fma_peak", threads=1, peak_gflops=100.0))
    bs.append(_b("fma2", 0.1, impl="fma_peak", threads=2, peak_gflops=200.0))
    return {"machine_info": {"bench_threads": 2}, "datetime": "x", "benchmarks": bs}


def _train():
    return {"machine_info": {"bench_threads": 2}, "datetime": "x",
            "benchmarks": [_b("test_train_step[native]", 2e-3, gflop_per_step=0.21),
                           _b("test_train_step[numpy]", 5e-3, gflop_per_step=0.21)]}


STREAM = [{"kernel": "triad", "impl": "pykernels", "threads": 2, "array_mb": mb, "bytes": 1, "seconds": 1,
           "GBps": g} for mb, g in ((4, 100.0), (40, 40.0))]


def _run(quiet=True):
    fma = {"1": 100.0, "2": 200.0}
    probes = [{"fma_gflops": fma, "stream_gbps": 40.0, "loadavg": [0.1, 0.1, 0.1]}] * 3
    if not quiet:
        probes = probes[:2] + [{"fma_gflops": {"1": 60.0, "2": 90.0}, "stream_gbps": 20.0, "loadavg": [3, 1, 1]}]
    return {"command": "python bench/run.py --quick", "mode": "quick", "repeat": 1, "threads": 2, "cores": 2,
            "date": "2030-01-01T00:00+00:00", "loadavg_start": [0.1 if quiet else 3.0, 0.1, 0.1],
            "machine": {"cpu_model": "Test CPU 9000", "cores": 2, "caches": {"L1d": 32 << 10, "L2": 1 << 20,
                                                                             "L3": 32 << 20}},
            "stream": STREAM, "probes": probes,
            "cpu": {"wall": 10.0, "others": 0.1 if quiet else 12.0, "steal": 0.0}}


def _write_dir(d: pathlib.Path, quiet=True):
    for name, data in (("run.json", _run(quiet)), ("elementwise-1.json", _ew()), ("dot-1.json", _dot()),
                       ("train-1.json", _train())):
        (d / name).write_text(json.dumps(data))
    return d


def test_verdict_per_family(tmp_path):
    res = summary.build(summary.load_dir(str(_write_dir(tmp_path))))
    fam = {f["family"]: f for f in res["families"]}
    assert list(fam) == summary.FAMILIES
    assert fam["GEMM"]["vs_numpy"] == pytest.approx(1.6)
    assert fam["training step"]["vs_numpy"] == pytest.approx(2.5)
    assert fam["GEMM"]["limit"] == pytest.approx(0.8)  # 160 GFLOP/s of 200 on 2 threads
    assert fam["training step"]["limit"] == pytest.approx(0.21 / 2e-3 / 200)
    # element-wise at 1e6 elements: 8 MB moved in 1 ms + 0.5 us -> ~8 GB/s of the 4 MB STREAM figure (100)
    assert fam["element-wise"]["limit"] == pytest.approx(8e6 / (1e-3 + 0.5e-6) / 1e9 / 100, rel=1e-6)
    assert fam["element-wise"]["limit_scope"] == ">= 1e6 elements"
    assert fam["GEMM"]["vs_torch"] is None
    assert not res["disturbance"]["disturbed"], res["disturbance"]
    text = summary.console_text(res, "somewhere.md")
    for f in summary.FAMILIES:
        assert f in text
    assert "1.60x" in text and "80%" in text and "DISTURBED" not in text and "somewhere.md" in text
    assert len(text.splitlines()) < 30  # read in ten seconds


def test_disturbed_run_says_so(tmp_path):
    res = summary.build(summary.load_dir(str(_write_dir(tmp_path, quiet=False))))
    d = res["disturbance"]
    assert d["disturbed"]
    joined = " ".join(d["reasons"])
    assert "load average" in joined and "FMA probe" in joined and "other processes used 1.20 of the 2 cores" in joined
    assert "DISTURBED RUN" in summary.console_text(res, "x")
    # the limit is the best probe, not the disturbed one
    assert res["peak"] == {1: 100.0, 2: 200.0}


def test_results_markdown_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    (tmp_path / "run").mkdir()
    d = _write_dir(tmp_path / "run")
    data = summary.load_dir(str(d))
    res = summary.build(data, str(tmp_path / "plots"))
    names = sorted(pathlib.Path(p).name for p in res["plots"])
    assert names == ["limits.png", "speedup.png", "speedup_elementwise.png", "speedup_matrix.png"]
    for p in res["plots"]:
        assert pathlib.Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = tmp_path / "RESULTS.md"
    md = summary.results_markdown(res, data, str(results))
    lines = md.splitlines()
    assert lines[0] == "# Benchmark results"
    order = [md.index(s) for s in ("## Machine", "Test CPU 9000", "## Run", "python bench/run.py --quick",
                                   "2030-01-01", "## Verdict", "## Plots", "## Tables")]
    assert order == sorted(order)
    assert "L3 32 MiB" in md and "--quick run" in md
    assert "](plots/speedup.png)" in md
    assert len(lines) < 300


def test_write_results_keeps_the_appended_sections(tmp_path):
    """Regenerating RESULTS.md keeps what train_books.py / train_mnist.py added (marked sections),
    replaces everything else, and adds nothing twice."""
    results = tmp_path / "RESULTS.md"
    block = "<!-- BEGIN train_books -->\nthe books' table\n<!-- END train_books -->"
    results.write_text(f"# Benchmark results\nold figures\n\n{block}\n")
    summary.write_results(str(results), "# Benchmark results\nnew figures\n")
    text = results.read_text()
    assert "old figures" not in text and "new figures" in text and text.count(block) == 1
    summary.write_results(str(results), text)
    assert results.read_text().count(block) == 1


def test_progress_lines_give_the_time_left_in_all():
    """run.py's progress line: the suite's label, bench/conftest.py's line, and the whole run's time
    left (the mean per benchmark so far times the benchmarks left in this and the later suites)."""
    import run

    eta = run._RunEta([10, 5, 5])
    eta.start_suite(0)
    t0 = eta.t0
    assert eta.left(0) is None  # nothing timed yet
    assert eta.left(5, now=t0 + 10) == pytest.approx(10 / 5 * 15)
    eta.start_suite(1)
    assert eta.left(2, now=t0 + 24) == pytest.approx(24 / 12 * 8)
    line = "[ 7/150] 1:40 left  bench_dot.py::test_dot[square256-numpy-1]  0.41 s"
    text = run.progress_text("suite 2/3 dot", line, 155.0)
    assert text == "suite 2/3 dot [7/150] 1:40 left in the suite, 2:35 in all  bench_dot.py::test_dot[square256-numpy-1]  0.41 s"
    assert run.progress_text("suite 2/3 dot", line, None) == "suite 2/3 dot " + line
    assert run.progress_text("s", "[0/3] collected 3 benchmarks", 1.0) == "s [0/3] collected 3 benchmarks"


def test_collect_count_counts_the_benchmarks_a_suite_runs():
    import run

    args = ["bench_elementwise.py", "--bench-sizes=1000", "-k", "relu and f32 and numpy"]
    n = run.collect_counts({"a": args, "b": args[:-1] + ["no_such_case"]}, {})
    assert n["a"] >= 2 and n["b"] == 0


def test_mnist_cli_trains_and_plots(tmp_path, monkeypatch, capsys):
    """`pykernels mnist --plot`, end to end on a small stand-in for MNIST (the real one is a download):
    it trains, evaluates, prints the figures and writes the PNG of its History."""
    pytest.importorskip("matplotlib")
    import numpy as np

    from pykernels.__main__ import main
    from pykernels.datasets import mnist

    rng = np.random.default_rng(0)
    y_train, y_test = rng.integers(0, 10, 512).astype(np.uint8), rng.integers(0, 10, 128).astype(np.uint8)
    # images that give their label away (a bright row per class), so that training must learn
    def images(y):
        x = rng.integers(0, 40, (len(y), 28, 28)).astype(np.uint8)
        x[np.arange(len(y)), 2 * y + 4, :] = 255
        return x

    data = (images(y_train), y_train), (images(y_test), y_test)
    monkeypatch.setattr(mnist, "load_data", lambda *a, **k: data)
    png = tmp_path / "history.png"
    assert main(["mnist", "--epochs", "3", "--batch-size", "64", "--threads", "1", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot: {png}" in out and "time per epoch" in out
    acc = float(out.split("test_acc: ")[1].split()[0])
    assert acc > 0.9  # the bright row is learnt: the run trained the model it reports on


def test_vmath_bound_table():
    """bench/vmath_bound.py's table: elements/ns per implementation, and the bound its instruction
    count sets at the FMA probe's rate (AVX-512 only)."""
    import vmath_bound as vb

    times = {(op, n): t for op in vb.OPS for n, t in
             (("pk 1 thr", 400e3), ("pk all", 200e3), ("numpy", 500e3), ("torch", 250e3))}
    res = {"times": times, "fma": {1: 256.0, 2: 512.0}, "threads": 2, "isa": "avx512"}
    rows = {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:-1]] for r in vb.table(res).splitlines()[2:]}
    assert set(rows) == set(vb.OPS)
    # 1e6 elements in 200 us = 5 el/ns; exp's bound on 2 threads: 512/32 vector FMAs per ns x 16 / 21
    assert rows["exp"][1] == "5.00" and rows["exp"][5] == f"{256 / 32 * 16 / 21:.2f} / {512 / 32 * 16 / 21:.2f}"
    assert rows["exp"][-1] == "2.50x"
    assert vb.table(dict(res, isa="avx2")).splitlines()[2].count("|  |") >= 1  # no bound off AVX-512


def test_run_py_cpu_accounting():
    import run

    a = {"busy": 100.0, "steal": 1.0, "own": 5.0, "wall": 0.0}
    b = {"busy": 130.0, "steal": 2.0, "own": 25.0, "wall": 10.0}
    assert run.cpu_delta(a, b) == {"wall": 10.0, "others": 10.0, "steal": 1.0}
    assert run.cpu_delta({"own": 0, "wall": 0.0}, {"own": 1, "wall": 2.0}) == {"wall": 2.0}
    t = run.cpu_times()
    assert t["own"] >= 0 and "wall" in t


def test_mnist_plot_history(tmp_path):
    pytest.importorskip("matplotlib")
    from pykernels import History
    from pykernels.__main__ import main, plot_history

    h = History()
    for e, (loss, acc, vl, va) in enumerate([(0.3, 0.91, 0.15, 0.95), (0.12, 0.96, 0.1, 0.97), (0.08, 0.98, 0.08, 0.975)]):
        h._append(e, {"loss": loss, "accuracy": acc, "val_loss": vl, "val_accuracy": va}, 1.0)
    out = plot_history(h, str(tmp_path / "h.png"), "test")
    assert pathlib.Path(out).read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit):
        main(["mnist", "--help"])
