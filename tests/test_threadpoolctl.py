"""threadpoolctl lists and limits pykernels' thread pool (pykernels/_threadpoolctl.py): in this
process, and in fresh interpreters for both import orders (threadpoolctl before or after pykernels)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import textwrap

import pytest

import pykernels as pk
from pykernels import _core, _threadpoolctl

threadpoolctl = pytest.importorskip("threadpoolctl", minversion="3.5")


def _pk_entries(info):
    return [i for i in info if i["internal_api"] == "pykernels"]


def test_extension_exports_a_check_symbol():
    """The controller recognises pykernels' _core by an exported symbol; a build that hides them
    all would make threadpoolctl silently skip pykernels."""
    lib = ctypes.CDLL(_core.__file__, mode=getattr(os, "RTLD_NOLOAD", 0) | ctypes.RTLD_GLOBAL)
    assert [s for s in _threadpoolctl.CHECK_SYMBOLS if hasattr(lib, s)]


def test_threadpool_info_lists_pykernels():
    pk.set_num_threads(2)
    entries = _pk_entries(threadpoolctl.threadpool_info())
    assert len(entries) == 1, entries
    e = entries[0]
    assert e["user_api"] == "openmp" and e["num_threads"] == 2 and e["prefix"] == "_core"
    assert os.path.realpath(e["filepath"]) == os.path.realpath(_core.__file__)
    assert e["version"] == pk.__version__


@pytest.mark.parametrize("kwargs", [{}, {"user_api": "openmp"}], ids=["all", "openmp"])
def test_threadpool_limits_limits_and_restores(kwargs):
    pk.set_num_threads(3)
    with threadpoolctl.threadpool_limits(1, **kwargs):
        assert pk.get_num_threads() == 1
        assert _pk_entries(threadpoolctl.threadpool_info())[0]["num_threads"] == 1
    assert pk.get_num_threads() == 3
    limiter = threadpoolctl.threadpool_limits(2, **kwargs)  # the function form, restored explicitly
    assert pk.get_num_threads() == 2
    limiter.restore_original_limits()
    assert pk.get_num_threads() == 3


def test_blas_limit_leaves_pykernels_alone():
    pk.set_num_threads(2)
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        assert pk.get_num_threads() == 2


def test_select_by_internal_api():
    pk.set_num_threads(2)
    ctl = threadpoolctl.ThreadpoolController().select(internal_api="pykernels")
    assert [i["internal_api"] for i in ctl.info()] == ["pykernels"]
    with ctl.limit(limits=1):
        assert pk.get_num_threads() == 1
    assert pk.get_num_threads() == 2


def test_restored_on_exception():
    pk.set_num_threads(2)
    with pytest.raises(ZeroDivisionError), threadpoolctl.threadpool_limits(1):
        1 / 0  # noqa: B018
    assert pk.get_num_threads() == 2


_SCRIPT = """
    import sys
    {imports}
    import pykernels as pk
    from threadpoolctl import threadpool_info, threadpool_limits
    pk.set_num_threads(2)
    print([i["num_threads"] for i in threadpool_info() if i["internal_api"] == "pykernels"])
    with threadpool_limits(1, user_api="openmp"):
        print(pk.get_num_threads())
    print(pk.get_num_threads())
    print(pk._threadpoolctl._ThreadpoolctlHook in sys.meta_path)
"""


@pytest.mark.parametrize("imports", ["import pykernels, threadpoolctl", "import threadpoolctl, pykernels"],
                         ids=["pykernels-first", "threadpoolctl-first"])
def test_either_import_order_registers(imports, neutral_cwd):
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(_SCRIPT.format(imports=imports))],
                       capture_output=True, text=True, timeout=60, cwd=neutral_cwd, env=env)
    assert p.returncode == 0, p.stderr
    # listed once with 2 threads; 1 inside the limit; 2 again after; the import hook is gone
    assert p.stdout.split() == ["[2]", "1", "2", "False"], p.stdout + p.stderr


def test_import_pykernels_does_not_import_threadpoolctl(neutral_cwd):
    code = "import sys, pykernels; print('threadpoolctl' in sys.modules)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=neutral_cwd)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "False"


def test_hook_keeps_threadpoolctl_module_intact(neutral_cwd):
    """Imported through the hook, threadpoolctl is the ordinary module (source, file, reload)."""
    code = textwrap.dedent("""
        import importlib, inspect, pykernels, threadpoolctl
        assert threadpoolctl.__file__.endswith("threadpoolctl.py")
        assert "def threadpool_info" in inspect.getsource(threadpoolctl)
        assert any(i["internal_api"] == "pykernels" for i in threadpoolctl.threadpool_info())
        print("ok")
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=neutral_cwd)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "ok"
