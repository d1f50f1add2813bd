"""`python -m pykernels info` and pykernels.show_config(): version, compiler, OpenMP, threads, SIMD."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import pykernels as pk
from pykernels import _core

ISAS = ("generic", "avx2", "avx512")


def _fields(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def _check_fields(f: dict[str, str], threads: int) -> None:
    assert f["pykernels"] == pk.__version__
    assert re.match(r"(GNU|Clang|AppleClang|IntelLLVM|MSVC) \d+\.\d+", f["compiler"]), f["compiler"]
    if pk.openmp_enabled():
        assert re.match(r"\d+\.\d+", f["openmp"]), f["openmp"]
        assert int(f["openmp_version"]) >= 200805
    else:
        assert f["openmp"] == "not compiled in"
    assert int(f["threads"]) == threads
    assert int(f["cores"]) >= 1
    assert f["simd_active"] in ISAS
    assert f["simd_detected"] in ISAS
    assert ISAS.index(f["simd_active"]) <= ISAS.index(f["simd_detected"])
    assert set(f["simd_compiled"].split(", ")) <= set(ISAS) and "generic" in f["simd_compiled"]
    assert int(f["max_dims"]) == 32


def test_show_config(capsys):
    pk.show_config()
    _check_fields(_fields(capsys.readouterr().out), pk.get_num_threads())


def test_show_config_follows_runtime_state(capsys):
    with pk.threads(1):
        _core._set_isa("generic")
        pk.show_config()
    f = _fields(capsys.readouterr().out)
    assert f["threads"] == "1"
    assert f["simd_active"] == "generic"


@pytest.mark.parametrize("argv", [["-m", "pykernels", "info"]])
def test_cli_info(argv, neutral_cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=60, env=env, cwd=neutral_cwd)
    assert p.returncode == 0, p.stderr
    f = _fields(p.stdout)
    _check_fields(f, threads=1)
    assert f["OMP_NUM_THREADS"] == "1"


def test_cli_env_isa_override(neutral_cwd):
    env = dict(os.environ, PYKERNELS_ISA="generic")
    p = subprocess.run([sys.executable, "-m", "pykernels", "info"], capture_output=True, text=True, timeout=60,
                       env=env, cwd=neutral_cwd)
    assert p.returncode == 0, p.stderr
    assert _fields(p.stdout)["simd_active"] == "generic"


def test_cli_usage_errors(neutral_cwd):
    p = subprocess.run([sys.executable, "-m", "pykernels"], capture_output=True, text=True, timeout=60, cwd=neutral_cwd)
    assert p.returncode == 2 and "usage: pykernels" in p.stderr
    p = subprocess.run([sys.executable, "-m", "pykernels", "bogus"], capture_output=True, text=True, timeout=60,
                       cwd=neutral_cwd)
    assert p.returncode == 2 and "invalid choice" in p.stderr


def test_set_isa_validation():
    with pytest.raises(ValueError, match="unknown instruction set 'sse9'"):
        _core._set_isa("sse9")
    detected = _core._isa_detected()
    for name in ISAS[ISAS.index(detected) + 1 :]:
        with pytest.raises(ValueError, match="not supported by this CPU"):
            _core._set_isa(name)
