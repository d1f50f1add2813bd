"""``patch_numpy()``: NumPy's own float32/float64 loops of ``np.add``, ``np.subtract``,
``np.multiply``, ``np.maximum``, ``np.minimum`` and the ``np.matmul`` gufunc replaced with pykernels's, so ``a + b``,
``x @ W`` and ``np.maximum(x, 0)`` in unchanged code run on the kernels.

The replacement goes through NumPy's public C API (``PyUFunc_ReplaceLoopBySignature``) and is
reference-counted: every :func:`patch_numpy` needs its :func:`unpatch_numpy`, and the last one puts
NumPy's saved loops back exactly. A loop call that is a reduction (``np.sum``, ``np.add.reduce``:
NumPy's pairwise order is kept), shorter than the kernels' parallel grain, an accumulation, or on
odd strides is passed to NumPy's own loop, so results are NumPy's bit for bit (matmul: within the
GEMM's documented tolerance) and small calls cost one comparison. NumPy hands a loop 8192-element
chunks when it buffers (dtype casts, misaligned or byte-swapped inputs; ``np.setbufsize``): those
calls stay NumPy's. Floating-point flags raised in pykernels's worker threads are merged into the
calling thread's, so ``np.errstate`` warnings and errors are the unpatched ones.

Not reachable this way: ``np.dot``/``ndarray.dot`` (NumPy calls BLAS directly), ``np.add.at``,
``einsum`` and NumPy scalar arithmetic.

>>> import numpy as np, pykernels as pk
>>> with pk.patched_numpy():
...     pk.numpy_is_patched()
True
>>> pk.numpy_is_patched()
False
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from . import _core

__all__ = ["numpy_is_patched", "patch_numpy", "patched_numpy", "unpatch_numpy"]


def patch_numpy() -> None:
    """Replace NumPy's float32/float64 loops of add, subtract, multiply, maximum, minimum and matmul with
    pykernels's (reference-counted: call :func:`unpatch_numpy` once per call). Thread-safe.

    >>> import numpy as np, pykernels as pk
    >>> pk.patch_numpy()
    >>> pk.numpy_is_patched()
    True
    >>> np.ones((2, 3), np.float32) @ np.ones((3, 2), np.float32)  # on pykernels's GEMM
    array([[3., 3.],
           [3., 3.]], dtype=float32)
    >>> pk.unpatch_numpy()
    >>> pk.numpy_is_patched()
    False
    """
    _core._patch_numpy()


def unpatch_numpy() -> None:
    """Undo one :func:`patch_numpy`; the last one restores NumPy's own loops exactly.
    Raises ValueError when NumPy is not patched.

    >>> import pykernels as pk
    >>> pk.patch_numpy(); pk.patch_numpy()
    >>> pk.unpatch_numpy(); pk.numpy_is_patched()  # one patch_numpy() still holds
    True
    >>> pk.unpatch_numpy(); pk.numpy_is_patched()
    False
    """
    _core._unpatch_numpy()


def numpy_is_patched() -> bool:
    """True while NumPy's loops are pykernels's (at least one :func:`patch_numpy` not undone).

    >>> import pykernels as pk
    >>> pk.numpy_is_patched()
    False
    """
    return bool(_core._numpy_is_patched())


@contextlib.contextmanager
def patched_numpy() -> Iterator[None]:
    """``with pykernels.patched_numpy(): ...`` runs the block with NumPy patched (nested and
    concurrent uses are counted) and unpatches on exit, also on an exception.

    >>> import numpy as np, pykernels as pk
    >>> a = np.arange(4.0)
    >>> with pk.patched_numpy():
    ...     print(pk.numpy_is_patched(), a + a)
    True [0. 2. 4. 6.]
    >>> pk.numpy_is_patched()
    False
    """
    patch_numpy()
    try:
        yield
    finally:
        unpatch_numpy()
