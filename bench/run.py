"""The main job: benchmark pykernels against NumPy (and PyTorch when installed) on this machine and
print the tables.

    python bench/run.py              # element-wise kernels at 1e3..1e6 elements + matrix products (~3 min)
    python bench/run.py --full       # also 1e7 elements and every matrix case (what bench/RESULTS.md holds)
    python bench/run.py --write      # also update bench/RESULTS.md with the tables of this run
    python bench/run.py --full --repeat 3 --write   # what bench/RESULTS.md holds: median of 3 runs

Threads: pykernels, OpenBLAS and PyTorch are pinned per benchmark (bench/conftest.py, threadpoolctl);
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are removed from the environment of the benchmark run so that
NumPy uses the OpenBLAS kernel it would pick by itself (they are a workaround for old OpenBLAS builds).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
QUICK_DOT_CASES = "square256 or square1024 or matvec4096 or mnist or dense"


def run_pytest(args: list[str], json_path: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--benchmark-json", json_path,
           "--benchmark-sort=name", "--benchmark-columns=median", *args]
    print("+", " ".join(cmd), flush=True)
    rc = subprocess.call(cmd, env=env, cwd=HERE, stdout=subprocess.DEVNULL)
    if rc != 0:
        raise SystemExit(f"benchmark run failed (exit {rc}): {' '.join(cmd)}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true", help="all sizes and cases (slow)")
    p.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    p.add_argument("--repeat", type=int, default=1,
                   help="run both suites this many times, alternating, and report the median over the runs")
    p.add_argument("--keep", metavar="DIR", help="also keep the pytest-benchmark JSON files in DIR")
    args = p.parse_args(argv)
    sys.path.insert(0, HERE)
    import report

    with tempfile.TemporaryDirectory() as tmp:
        out_dir = args.keep or tmp
        os.makedirs(out_dir, exist_ok=True)
        ews, dots = [], []
        sizes = "1000,100000,1000000,10000000" if args.full else "1000,100000,1000000"
        sel = [] if args.full else ["-k", f"({QUICK_DOT_CASES}) or fma_peak"]
        for i in range(args.repeat):
            ews.append(os.path.join(out_dir, f"elementwise-{i + 1}.json"))
            run_pytest(["bench_elementwise.py", f"--bench-sizes={sizes}", "--benchmark-min-rounds=5",
                        "--benchmark-max-time=0.2"], ews[-1])
            dots.append(os.path.join(out_dir, f"dot-{i + 1}.json"))
            run_pytest(["bench_dot.py", "--benchmark-min-rounds=5", "--benchmark-max-time=0.2", *sel], dots[-1])
        for paths, section in ((ews, "elementwise"), (dots, "dot")):
            argv2 = [*paths, "--section", section] + ([] if args.write else ["--stdout"])
            report.main(argv2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
