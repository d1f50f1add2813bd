"""Shared pytest configuration: hypothesis profiles, fixtures, ISA and thread-state hygiene.

Hypothesis profiles (REFERENCES.md C4):
  * ``dev`` (default locally): 50 examples, random, no deadline;
  * ``ci`` (default when the ``CI`` environment variable is set): derandomized, so every CI run
    checks the same examples, and failing examples are printed as reproduction blobs.
  * ``thorough``: 1000 examples per test, for bug hunts;
  * ``sanitize``: 10 derandomized examples per test, for the instrumented build (.ci/sanitize),
    which runs the suite once per ISA path.
Choose explicitly with ``HYPOTHESIS_PROFILE=dev|ci|thorough|sanitize``.
"""

from __future__ import annotations

import glob
import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# `python -m pytest` run from the repository root puts the root first on sys.path, and the source
# pykernels/ there (no compiled _core) would shadow the installed package: drop the root from
# sys.path unless the source tree holds a built _core (in-place build).
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if not any(glob.glob(os.path.join(_ROOT, "pykernels", pat)) for pat in ("_core*.so", "_core*.pyd")):
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _ROOT]
    # The same for the Python subprocesses the tests start (`python -c ...` puts its cwd first on
    # sys.path): Python >= 3.11 leaves the cwd and the script's folder out with PYTHONSAFEPATH.
    os.environ.setdefault("PYTHONSAFEPATH", "1")

import pykernels as pk
from pykernels import _core

# function_scoped_fixture: the `isa` / `rng` fixtures hold per-test (not per-example) state on
# purpose; the ISA stays fixed for all examples of one test.
_SUPPRESS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile("dev", max_examples=50, deadline=None, suppress_health_check=_SUPPRESS)
settings.register_profile(
    "ci",
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=_SUPPRESS,
)
# "thorough": for bug hunts and nightly runs (HYPOTHESIS_PROFILE=thorough), not for CI.
settings.register_profile("thorough", max_examples=1000, deadline=None, suppress_health_check=_SUPPRESS)
settings.register_profile(
    "sanitize",
    max_examples=10,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=_SUPPRESS,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# Instruction sets in dispatch order; the CPU supports a prefix of this list.
ALL_ISAS = ("generic", "avx2", "avx512")


def supported_isas() -> list[str]:
    """The ISAs this CPU can run (generic, then avx2, avx512 when detected)."""
    best = ALL_ISAS.index(_core._isa_detected())
    return [i for i in ALL_ISAS[: best + 1] if i in _core._isa_compiled()]


@pytest.fixture(params=supported_isas())
def isa(request: pytest.FixtureRequest):
    """Runs the test once per ISA the CPU supports, with that ISA's kernels forced; restores after."""
    old = _core._isa_active()
    _core._set_isa(request.param)
    try:
        assert _core._isa_active() == request.param
        yield request.param
    finally:
        _core._set_isa(old)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so failures are reproducible."""
    return np.random.default_rng(20261123)


@pytest.fixture(autouse=True)
def _restore_runtime_state():
    """No test may leak a changed thread count, ISA or streaming-store threshold into the next one."""
    threads, isa_, stream = pk.get_num_threads(), _core._isa_active(), _core._stream_min_bytes()
    yield
    pk.set_num_threads(threads)
    _core._set_isa(isa_)
    _core._set_stream_min_bytes(stream)


@pytest.fixture(scope="session")
def neutral_cwd(tmp_path_factory):
    """Working directory for `python -c` / `python -m` subprocesses: those put the cwd first on
    sys.path, and from the repository root the source pykernels/ (without the compiled _core)
    would shadow the installed package."""
    return tmp_path_factory.mktemp("cwd")
