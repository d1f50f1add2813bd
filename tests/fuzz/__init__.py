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

if "pykernels" not in sys.modules and not any(
        glob.glob(os.path.join(ROOT, "pykernels", pat)) for pat in ("_core*.so", "_core*.pyd")):
    _saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != ROOT]
    try:
        import pykernels  # noqa: F401  (the installed package, cached in sys.modules)
    finally:
        sys.path[:] = _saved
