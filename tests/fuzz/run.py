"""Fuzz driver: ``python -m tests.fuzz --calls N --seed S`` (from the repository root).

Calls are generated independently from (seed, index) (tests/fuzz/calls.py) and run in a worker
process, each on a random ISA path (``_core._set_isa``) and thread count; the driver watches the
worker: a call that does not finish within ``--timeout`` seconds is a hang, a worker that dies
(segfault, abort, sanitizer report) is a crash. Every failure (crash, hang, sanitizer report,
unexpected exception, wrong answer, write outside ``out=``) is saved to ``--crash-dir`` as a
runnable Python snippet with the worker's last output (the sanitizer report) as a comment, and the
batch goes on from the next call. Exit status 1 when any call failed.

Options: --isa generic,avx2 (restrict the ISA paths), --only dot,matmul (restrict the functions),
--max-threads, --minutes (stop after a time budget: long campaigns), --start (first index).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

if __name__ == "__main__" and not __package__:  # python tests/fuzz/run.py ...
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from tests.fuzz.run import main

    raise SystemExit(main())

from . import ROOT  # noqa: E402


def _worker(args) -> int:
    import faulthandler

    from . import oracle
    from .calls import generate

    faulthandler.enable(all_threads=True)
    isas = args.isa.split(",")
    only = args.only.split(",") if args.only else None
    out = os.fdopen(args.fd, "w")
    # self-test of the driver (tests/fuzz/test_oracle.py): "crash:3,hang:5" crashes / hangs there
    selftest = dict(x.split(":")[::-1] for x in os.environ.get("PYKERNELS_FUZZ_SELFTEST", "").split(",") if x)
    for i in range(args.start, args.end):
        call = generate(args.seed, i, isas, args.max_threads, only)
        out.write(f"B {i}\n")
        out.flush()
        if selftest.get(str(i)) == "crash":
            faulthandler._sigsegv()
        elif selftest.get(str(i)) == "hang":
            time.sleep(3600)
        try:
            outcome, detail = oracle.run_call(call)
            out.write(f"E {i} {outcome} {json.dumps(detail[:200])}\n")
        except oracle.Failure as f:
            out.write(f"F {i} {f.kind} {json.dumps(str(f))}\n")
        except Exception:  # a bug of the fuzzer itself: reported, never hidden
            import traceback

            out.write(f"F {i} oracle-error {json.dumps(traceback.format_exc())}\n")
        out.flush()
    return 0


def _supported_isas() -> list[str]:
    from pykernels import _core

    order = ["generic", "avx2", "avx512"]
    best = order.index(_core._isa_detected())
    return [i for i in order[: best + 1] if i in _core._isa_compiled()]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--isa", default="")
    p.add_argument("--only", default="")
    p.add_argument("--max-threads", type=int, default=3)
    p.add_argument("--timeout", type=float, default=20.0, help="seconds per call before it counts as a hang")
    p.add_argument("--minutes", type=float, default=0.0, help="stop after this many minutes (0: no limit)")
    p.add_argument("--crash-dir", default=os.path.join(ROOT, "tests", "fuzz", "crashes"))
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--end", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--fd", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not args.isa:
        args.isa = ",".join(_supported_isas())
    if args.worker:
        return _worker(args)

    from . import oracle
    from .calls import generate

    end = args.start + args.calls
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else None
    os.makedirs(args.crash_dir, exist_ok=True)
    counts: collections.Counter = collections.Counter()
    failures: list[tuple[int, str, str, str]] = []
    t0 = time.monotonic()
    i = args.start
    isas = args.isa.split(",")
    only = args.only.split(",") if args.only else None

    def save(index: int, kind: str, detail: str) -> str:
        call = generate(args.seed, index, isas, args.max_threads, only)
        path = os.path.join(args.crash_dir, f"{kind}-{call['fn']}-s{args.seed}-c{index}.py")
        with open(path, "w") as f:
            f.write(oracle.reproducer(call, kind, detail))
        failures.append((index, kind, call["fn"], path))
        if not args.quiet:
            print(f"FAIL call {index} {kind}: {oracle.describe(call)}\n  -> {path}\n  {detail.strip().splitlines()[-1][:300] if detail.strip() else ''}",
                  flush=True)
        return path

    while i < end and (deadline is None or time.monotonic() < deadline):
        log = tempfile.TemporaryFile(mode="w+b")
        cmd = [sys.executable, "-m", "tests.fuzz.run", "--worker", "--seed", str(args.seed), "--start", str(i),
               "--end", str(end), "--isa", args.isa, "--max-threads", str(args.max_threads)]
        if args.only:
            cmd += ["--only", args.only]
        rfd, wfd = os.pipe()
        cmd += ["--fd", str(wfd)]
        w = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=log, start_new_session=True, pass_fds=(wfd,))
        os.close(wfd)
        status = os.fdopen(rfd, "rb", buffering=0)
        current, buf, last = None, b"", time.monotonic()
        while True:
            r, _, _ = select.select([status], [], [], 1.0)
            if r:
                chunk = os.read(rfd, 65536)
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    tag, idx, *rest = line.decode().split(" ", 3)
                    idx = int(idx)
                    if tag == "B":
                        current, last = idx, time.monotonic()
                        continue
                    current, i = None, idx + 1
                    counts["calls"] += 1
                    if tag == "E":
                        counts[rest[0]] += 1
                    else:
                        counts["failed"] += 1
                        save(idx, rest[0], json.loads(rest[1]))
                    if not args.quiet and counts["calls"] % 1000 == 0:
                        print(f"{counts['calls']} calls, {time.monotonic() - t0:.0f} s: {dict(counts)}", flush=True)
                if deadline is not None and time.monotonic() > deadline:
                    break
            if current is not None and time.monotonic() - last > args.timeout:
                os.killpg(w.pid, signal.SIGABRT)  # faulthandler prints the stuck Python stack
                time.sleep(1.0)
                os.killpg(w.pid, signal.SIGKILL)
                break
        if current is None:  # end of the batch: the worker is exiting
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        if w.poll() is None:
            try:
                os.killpg(w.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        rc = w.wait()
        status.close()
        log.seek(0)
        tail = log.read().decode(errors="replace")[-12000:]
        log.close()
        if current is not None:  # died or hung inside a call
            hung = time.monotonic() - last > args.timeout
            counts["calls"] += 1
            counts["failed"] += 1
            kind = "hang" if hung else "crash"
            save(current, kind, f"worker exit status {rc} ({'killed after ' + str(args.timeout) + ' s' if hung else 'died'})\n{tail}")
            i = current + 1
        elif rc != 0:
            print(f"worker failed outside a call (status {rc}):\n{tail}", file=sys.stderr)
            return 2
    dt = time.monotonic() - t0
    print(f"fuzz: seed {args.seed}, calls {args.start}..{i - 1}, {dt:.0f} s, ISAs {args.isa}: {dict(counts)}")
    for index, kind, fn, path in failures:
        print(f"  {kind:9s} {fn:32s} call {index}: {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
