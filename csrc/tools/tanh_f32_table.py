"""Prints the coefficient table of the 16-lane float32 tanh (csrc/include/pykernels/vmath_avx512.hpp).

    python csrc/tools/tanh_f32_table.py     # needs numpy and mpmath

|x| (clamped to 9.5, where tanh rounds to 1 from 9.0109) is split into 32 slots by its float bits:
slot = max(bits >> 21, 491) mod 32, so each binade from 2^-4 to 8 gives 4 slots of a quarter binade,
[8, 10) one more, and everything below 2^-4 lands in slot 11. Per slot, tanh(m + t) for t = |x| - m
(m the slot's centre, 0 for slot 11; the subtraction is exact) is the degree-5 polynomial
c0h + c0l + c1 t + ... + c5 t^5 with float32 coefficients: c0 as a pair, so that the constant's own
rounding does not add to the result's. Slot 11 is x + c3 x^3 + c5 x^5 (c0 = 0, c1 = 1, even terms 0).

Each polynomial is a minimax fit of the relative error (Lawson's iteration on a weighted least-squares
fit at Chebyshev nodes, against mpmath), its coefficients rounded to float32 from the highest degree
down, the lower ones refitted after each rounding. Rows of the table: m, c0h, c0l, c1 .. c5.
"""

import mpmath as mp
import numpy as np

from cxx_table import print_rows

mp.mp.prec = 80
DEG = 5
NODES = 400


def slots() -> dict[int, tuple[float, float, float]]:
    """slot -> (centre, lo, hi)."""
    out = {491 % 32: (0.0, 0.0, 2.0**-4)}
    for e in range(-4, 3):
        for q in range(4):
            lo, hi = 2.0**e * (1 + q / 4), 2.0**e * (1 + (q + 1) / 4)
            out[((127 + e) << 2 | q) % 32] = (lo + (hi - lo) / 2, lo, hi)
    out[(130 << 2) % 32] = (9.0, 8.0, 10.0)
    return out


def fit(m: float, lo: float, hi: float, fixed: dict[int, float]) -> dict[int, float]:
    """Coefficients of the relative minimax fit on [lo, min(hi, 9.5)], those in `fixed` held."""
    free = [j for j in range(DEG + 1) if j not in fixed]
    if not free:
        return dict(fixed)
    k = np.arange(NODES)
    x = np.clip((lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (k + 0.5) / NODES), lo, min(hi, 9.5))
    t = x - m
    y = np.array([float(mp.tanh(mp.mpf(v))) for v in x])
    w = 1 / np.abs(y)
    rhs = y - sum(c * t**j for j, c in fixed.items())
    a = np.stack([t**j for j in free], 1)
    lw = np.ones(NODES)
    for _ in range(60):  # Lawson: weights grow where the error is largest
        ww = w * np.sqrt(lw)
        sol = np.linalg.lstsq(a * ww[:, None], rhs * ww, rcond=None)[0]
        lw = lw * np.abs((a @ sol - rhs) * w)
        lw /= lw.sum()
    c = dict(fixed)
    c.update(zip(free, sol))
    return c


def table() -> np.ndarray:
    rows = np.zeros((DEG + 3, 32))
    for s, (m, lo, hi) in slots().items():
        fixed = {0: 0.0, 1: 1.0, 2: 0.0, 4: 0.0} if lo == 0 else {}
        c = fit(m, lo, hi, fixed)
        for j in range(DEG, 0, -1):
            if j not in fixed:
                fixed[j] = float(np.float32(c[j]))
                c = fit(m, lo, hi, fixed)
        c0h = float(np.float32(c[0]))
        rows[:, s] = [m, c0h, float(np.float32(c[0] - c0h))] + [fixed[j] for j in range(1, DEG + 1)]
    return rows


if __name__ == "__main__":
    print_rows(["m", "c0h", "c0l"] + [f"c{j}" for j in range(1, DEG + 1)], table())
