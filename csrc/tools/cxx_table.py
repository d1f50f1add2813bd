"""Printing float32 tables as C++ initialisers, for the table generators beside this file."""

import numpy as np


def hexf(v: float) -> str:
    """A float32 as a C++ hex literal, the mantissa's trailing zeros dropped: 0x1.2p+1f."""
    mant, exp = float(np.float32(v)).hex().split("p")
    mant = mant.rstrip("0").rstrip(".")
    return f"{mant}p{exp}f"


def print_rows(names, rows) -> None:
    """One brace-enclosed row of 32 per name, 4 values to a line."""
    for name, row in zip(names, rows):
        print(f"    {{  // {name}")
        for i in range(0, 32, 4):
            print("        " + ", ".join(hexf(v) for v in row[i : i + 4]) + ",")
        print("    },")
