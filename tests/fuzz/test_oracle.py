"""The fuzzer can fail: planted wrong answers, stray writes, odd exceptions, crashes and hangs are
each reported, with a reproducer that runs. (The fuzz batch itself runs in .ci/sanitize.)"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import pykernels as pk

from . import ROOT, oracle
from .calls import FUNCTIONS, generate

ISAS = ["generic"]


def _add_call(**kw):
    call = {"fn": "add", "args": [("arr", "f8", (3, 4), "step", "normal", 1), ("arr", "f8", (4,), "c", "normal", 2)],
            "kwargs": {}, "isa": "generic", "threads": 2, "stream": -1, "seed": 0, "index": 0}
    call.update(kw)
    return call


def test_a_correct_call_passes():
    assert oracle.run_call(_add_call()) == ("ok", "")


@pytest.mark.parametrize("planted, kind", [
    (lambda a, b, out=None: np.subtract(a, b), "wrong"),
    (lambda a, b, out=None: np.add(a, b).astype(np.float32), "wrong"),
    (lambda a, b, out=None: np.add(a, b)[:1], "wrong"),
    (lambda a, b, out=None: (a.__setitem__((0, 0), 7.0), np.add(a, b))[1], "write"),
    (lambda a, b, out=None: (a.base.__setitem__(0, a.base[0] ^ 1), np.add(a, b))[1], "write"),  # a guard byte
    (lambda a, b, out=None: (_ for _ in ()).throw(RuntimeError("Unable to cast")), "exception"),
])
def test_planted_bugs_are_caught(monkeypatch, planted, kind):
    monkeypatch.setattr(oracle, "_fn", lambda name: planted)
    with pytest.raises(oracle.Failure) as e:
        oracle.run_call(_add_call())
    assert e.value.kind == kind


def test_returning_where_numpy_refuses_is_caught(monkeypatch):
    monkeypatch.setattr(oracle, "_fn", lambda name: lambda a, b, out=None: np.zeros(5))
    call = _add_call(args=[("arr", "f8", (3,), "c", "normal", 1), ("arr", "f8", (4,), "c", "normal", 2)])
    with pytest.raises(oracle.Failure, match="accepts"):
        oracle.run_call(call)


def test_generation_is_deterministic_and_reproducers_are_literals():
    for i in range(200):
        c = generate(5, i, ISAS, 2)
        assert c["fn"] in FUNCTIONS
        assert oracle.literal(c) == oracle.literal(generate(5, i, ISAS, 2))
        assert oracle.literal(eval(oracle.literal(c), {"np": np})) == oracle.literal(c)


def test_driver_reports_crashes_and_hangs_with_runnable_reproducers(tmp_path):
    env = dict(os.environ, PYKERNELS_FUZZ_SELFTEST="crash:3,hang:5")
    env.pop("PYTHONSAFEPATH", None)  # `-m tests.fuzz` needs the repository root on sys.path
    p = subprocess.run([sys.executable, "-m", "tests.fuzz", "--calls", "8", "--seed", "1", "--isa", "generic",
                        "--timeout", "3", "--crash-dir", str(tmp_path), "--quiet"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 1, p.stdout + p.stderr
    files = sorted(f.name for f in tmp_path.iterdir())
    assert [f.split("-")[0] for f in files] == ["crash", "hang"], files
    assert "'calls': 8" in p.stdout
    crash = next(tmp_path.glob("crash-*"))
    assert "Segmentation fault" in crash.read_text()
    # the reproducer runs the same call again (here it passes: the crash was planted by the driver)
    r = subprocess.run([sys.executable, str(crash)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert pk.get_num_threads() >= 1


# A float32 product written to a float64 out= (a fuzz find: the oracle once held it to float64's
# tolerance, and NumPy's OpenBLAS sums such a product in another order than pykernels).
_MATMUL_F4_INTO_F8 = {
    "fn": "matmul", "kwargs": {"out": ("arr", "f8", (31, 1, 17), "packed", "normal", 1502175549)},
    "args": [("arr", "f4", (31, 1, 7), "c", "normal", 1908660961), ("arr", "f4", (31, 7, 17), "c", "normal", 33123366)],
    "isa": "generic", "threads": 3, "stream": -1, "seed": 20261206, "index": 12377}


def test_float32_product_into_float64_out_is_held_to_float32_rounding(monkeypatch):
    """NumPy rounds np.matmul(f4, f4, out=f8) as float32 before the cast, so does pykernels: the
    tolerance is float32's; an error beyond it is still caught."""
    assert oracle.run_call(_MATMUL_F4_INTO_F8) == ("ok", "")

    def off(a, b, out=None):  # 1e-4 relative: above float32's bound for 7 terms, far below a wrong sum
        pk.matmul(a, b, out=out)
        out *= 1 + 1e-4
        return out

    monkeypatch.setattr(oracle, "_fn", lambda name: off)
    with pytest.raises(oracle.Failure) as e:
        oracle.run_call(_MATMUL_F4_INTO_F8)
    assert e.value.kind == "wrong"
