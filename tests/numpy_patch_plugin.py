"""pytest plugin: runs any test session with NumPy patched by pykernels.patch_numpy().

Used to run NumPy's and scikit-learn's test modules under the patch (.ci/numpy-patch)::

    PYTHONPATH=tests python -m pytest -p numpy_patch_plugin --pyargs numpy._core.tests.test_umath

The patch is applied before collection and removed at the end; the terminal summary says how many
loop calls the kernels took (and how many of them were matmul's) and how many went to NumPy's saved
loops, so a run that never reached the kernels is visible (.ci/numpy-patch fails on it).
"""

from __future__ import annotations

import pykernels as pk
from pykernels import _core


def pytest_configure(config):
    pk.patch_numpy()
    config._pk_stats0 = _core._numpy_patch_stats()


def pytest_unconfigure(config):
    if pk.numpy_is_patched():
        pk.unpatch_numpy()


def pytest_report_header(config):
    return f"pykernels: NumPy patched ({', '.join(_core._numpy_patch_ufuncs())})"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    s0, s1 = config._pk_stats0, _core._numpy_patch_stats()
    terminalreporter.write_line(
        "pykernels patch: {} loop calls ran on the kernels ({} of them matmul), {} went to NumPy's saved "
        "loops".format(s1["taken"] - s0["taken"], s1["matmul_taken"] - s0["matmul_taken"],
                       s1["forwarded"] - s0["forwarded"]))
