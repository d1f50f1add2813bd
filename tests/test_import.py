"""`import pykernels` is cheap and tidy: heavy modules load on first use, dir() is the public API,
and show_config() reports the cache sizes the kernel's sysfs topology gives."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

import pykernels as pk
from pykernels import _runtime

HEAVY = ("urllib.request", "subprocess", "http.client", "matplotlib", "tqdm", "zipfile", "pykernels.datasets",
         "pykernels.models", "pykernels.layers")


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args, "-c", code], capture_output=True, text=True, check=True)


def test_import_loads_no_heavy_module():
    code = ("import sys, numpy; before = set(sys.modules); import pykernels; "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules and m not in before))")
    out = _run(code).stdout.strip()
    assert out == "[]", out


def test_lazy_attributes_resolve():
    assert pk.Sequential.__module__ == "pykernels.models"
    assert pk.Trainer.__module__ == "pykernels.trainer"
    assert pk.History.__name__ == "History"
    assert callable(pk.to_categorical)
    assert pk.datasets.mnist.load_data and pk.datasets.spiral.load_data
    for name in ("layers", "losses", "optimizers", "reference", "utils"):
        assert getattr(pk, name).__name__ == f"pykernels.{name}"
    from pykernels import Sequential  # noqa: F401  (PEP 562 serves from-imports too)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        pk.nope  # noqa: B018


def test_dir_is_the_public_api():
    names = dir(pk)
    assert names == sorted(pk.__all__)
    assert "annotations" not in names
    assert not [n for n in names if n.startswith("_") and n != "__version__"]
    for n in pk.__all__:
        assert getattr(pk, n) is not None


def _write_cache(root, entries):
    for i, (level, kind, size) in enumerate(entries):
        d = root / f"index{i}"
        d.mkdir(parents=True)
        (d / "level").write_text(f"{level}\n")
        (d / "type").write_text(f"{kind}\n")
        (d / "size").write_text(f"{size}\n")


def test_cache_sizes_from_sysfs(tmp_path):
    _write_cache(tmp_path, [(1, "Data", "48K"), (1, "Instruction", "32K"), (2, "Unified", "2048K"),
                            (3, "Unified", "32768K")])
    assert _runtime.cache_sizes(str(tmp_path)) == {"L1d": 48 << 10, "L2": 2 << 20, "L3": 32 << 20}


def test_cache_sizes_fall_back_to_sysconf(tmp_path):
    got = _runtime.cache_sizes(str(tmp_path / "absent"))
    for k in got:
        assert k in ("L1d", "L2", "L3") and got[k] > 0


def _lscpu_l3() -> int | None:
    if shutil.which("lscpu") is None:
        return None
    out = subprocess.run(["lscpu", "-B"], capture_output=True, text=True).stdout
    m = re.search(r"^L3 cache:\s+(\d+)(?: B)?(?: \((\d+) instances?\))?", out, flags=re.M)
    if not m:
        return None
    total, inst = int(m.group(1)), int(m.group(2) or 1)
    return total // inst


@pytest.mark.skipif(not os.path.isdir("/sys/devices/system/cpu/cpu0/cache"), reason="no sysfs cache topology")
def test_show_config_l3_matches_lscpu(capsys):
    expect = _lscpu_l3()
    if expect is None:
        pytest.skip("lscpu gives no L3")
    assert _runtime.cache_sizes()["L3"] == expect
    pk.show_config()
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("caches:"))
    mib = expect >> 20
    assert f"L3 {mib} MiB" in line, line
    assert f"L3 {mib} MiB" in next(ln for ln in out.splitlines() if "gemm_blocking" in ln)
