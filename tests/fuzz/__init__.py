"""Hostile-input fuzzer for every public pykernels function (see README, "Sanitizers and fuzzing").

Run ``python -m tests.fuzz --calls N --seed S`` from the repository root; ``run.py`` documents the
options. Importing this package imports the *installed* pykernels even from the repository root,
where the source tree (without a compiled ``_core``) would otherwise shadow it.
"""

from __future__ import annotations

import glob
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))



def _source_tree(p: str) -> bool:
    """A directory holding a source pykernels/ without a compiled _core."""
    d = os.path.join(os.path.abspath(p or os.curdir), "pykernels")
    return os.path.isdir(d) and not any(glob.glob(os.path.join(d, pat)) for pat in ("_core*.so", "_core*.pyd"))


if "pykernels" not in sys.modules:
    _saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if not _source_tree(p)]
    try:
        import pykernels  # noqa: F401  (the installed package, cached in sys.modules)
    finally:
        sys.path[:] = _saved
