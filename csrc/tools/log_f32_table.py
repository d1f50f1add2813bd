"""Prints the tables of the 16-lane float32 log (csrc/include/pykernels/vmath_avx512.hpp).

    python csrc/tools/log_f32_table.py     # needs numpy and mpmath

x = 2^k m with m in [0.75, 1.5) (vgetmantps), and the slot of m is bits(m) >> 18 mod 32: the low
exponent bit and the top 4 mantissa bits, so [1, 1.5) gives slots 0-15 (1/32 wide) and [0.75, 1)
slots 16-31 (1/64 wide). Per slot a reciprocal `inv` with 6 fractional bits (1 in slots 0 and 31,
which hold m near 1): r = m inv - 1 is then exact in one FMA (its bits span fewer than 24 places),
|r| <= 1/32. log x = k ln2 + T + log1p(r) with T = -log(inv) as a pair: T_hi on a 2^-17 grid, so that
k ln2_hi + T_hi is exact (both on the grid, |sum| < 128), and T_lo = T - T_hi rounded to float32.
"""

import mpmath as mp
import numpy as np

from cxx_table import print_rows

mp.mp.prec = 100


def table() -> tuple[list[float], list[float], list[float]]:
    inv, t_hi, t_lo = [], [], []
    for j in range(32):
        lo, width = (1 + j / 32, 1 / 32) if j < 16 else (0.75 + (j - 16) / 64, 1 / 64)
        iv = 1.0 if j in (0, 31) else round(64 / (lo + width / 2)) / 64
        t = -mp.log(mp.mpf(iv))
        th = round(float(t) * 2**17) / 2**17
        inv.append(iv)
        t_hi.append(th)
        t_lo.append(float(np.float32(float(t - mp.mpf(th)))))
    return inv, t_hi, t_lo


if __name__ == "__main__":
    print_rows(("inv", "T_hi", "T_lo"), table())
