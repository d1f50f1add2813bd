"""Max ULP error of pykernels' float32 exp, log, tanh and sigmoid over every float32 input.

Re-derives the exhaustive figures quoted in csrc/include/pykernels/vmath.hpp and vmath_avx512.hpp:
every finite float32 bit pattern of the function's domain goes through the kernel in chunks of 2^24,
against NumPy's float64 function of the same input (float64 is within ~2^-29 of a float32 ULP), and
the maximum is kept separately where the exact result is a normal and where it is a subnormal float32;
where the rounded result is infinite or NaN the kernel's must be the same.

    python csrc/tools/exhaustive_ulp.py sigmoid          # ~1 min per function on 2 cores
    python csrc/tools/exhaustive_ulp.py exp log tanh sigmoid --isa avx512
"""

from __future__ import annotations

import argparse

import numpy as np

import pykernels as pk
from pykernels import _core

CHUNK = 1 << 24
TINY = float(np.finfo(np.float32).tiny)
SUB = float(np.finfo(np.float32).smallest_subnormal)
REF = {
    "exp": np.exp,
    "log": np.log,
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
}
# The bit-pattern ranges each function is measured on: log on the positive floats (its negatives
# give NaN), the others on both signs.
POS = (0x00000000, 0x7F800000)
NEG = (0x80000000, 0xFF800000)
RANGES = {"exp": (POS, NEG), "log": (POS,), "tanh": (POS, NEG), "sigmoid": (POS, NEG)}


def max_ulp(fn: str) -> tuple[float, float, float, float]:
    """(max ULP where the result is normal, its input, max ULP where it is subnormal, its input)."""
    kernel, ref = getattr(pk, fn), REF[fn]
    best = [0.0, 0.0, 0.0, 0.0]
    out = np.empty(CHUNK, np.float32)
    for lo, hi in RANGES[fn]:
        for start in range(lo, hi, CHUNK):
            bits = np.arange(start, min(start + CHUNK, hi), dtype=np.uint64).astype(np.uint32)
            x = bits.view(np.float32)
            with np.errstate(all="ignore"):
                y = kernel(x, out=out[: x.size])
                r = ref(x.astype(np.float64))
                r32 = r.astype(np.float32)
            # where the rounded result is infinite or NaN, the kernel must give exactly that
            odd = ~np.isfinite(r32)
            same = (y[odd] == r32[odd]) | (np.isnan(y[odd]) & np.isnan(r32[odd]))
            if not same.all():
                raise AssertionError(f"{fn}: wrong inf/NaN at x = {x[odd][~same][:4]!r}")
            ok = ~odd
            r, y64, xs = r[ok], y[ok].astype(np.float64), x[ok]
            _, ex = np.frexp(r)
            ulp = np.maximum(np.ldexp(1.0, ex - 24), SUB)
            err = np.abs(y64 - r) / ulp
            sub = np.abs(r) < TINY
            for k, mask in ((0, ~sub), (2, sub)):
                if mask.any():
                    i = int(np.argmax(np.where(mask, err, -1.0)))
                    if err[i] > best[k]:
                        best[k], best[k + 1] = float(err[i]), float(xs[i])
    return best[0], best[1], best[2], best[3]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fns", nargs="+", choices=sorted(REF))
    ap.add_argument("--isa", help="run on this ISA path (avx512, avx2, generic)")
    args = ap.parse_args()
    if args.isa:
        _core._set_isa(args.isa)
    print(f"ISA path: {_core._isa_active()}")
    for fn in args.fns:
        n, xn, s, xs = max_ulp(fn)
        sub = f"; subnormal results {s:.3f} ULP at x = {xs!r}" if s else ""
        print(f"{fn:8s} max {n:.3f} ULP at x = {xn!r} (normal results){sub}")


if __name__ == "__main__":
    main()
