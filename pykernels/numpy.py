"""``import pykernels.numpy as np``: the NumPy namespace, with pykernels' kernels where they apply.

Every public name of :mod:`numpy` is here (functions, dtypes, constants, ``random``, ``linalg``,
``fft``, ...): a name this module does not define is looked up in NumPy at each access (PEP 562
``__getattr__``), so names of newer NumPy versions work too. NumPy's submodules import under this name too
(``import pykernels.numpy.linalg``, ``from pykernels.numpy.random import default_rng``: NumPy's
module objects themselves). Code written against NumPy switches backend with its import line
only, as code written for CuPy does::

    import pykernels.numpy as np

    h = np.maximum(np.dot(x, W1) + b1, 0)      # pykernels' GEMM and maximum
    np.add.at(dW, idx, dout)                   # NumPy's ufunc method
    acc = np.sum(np.argmax(h, axis=1) == t)    # bool: NumPy's own sum

The names pykernels accelerates -- the ufuncs ``add subtract multiply maximum minimum negative
absolute abs exp log tanh`` (those of them the compiled extension has: ``ACCELERATED`` lists the
active ones), ``matmul``, and the functions ``dot`` and ``sum`` -- call the kernel when every
argument is one the kernel takes:

* the array arguments are exactly ``numpy.ndarray`` (no subclass: not ``np.matrix``, not a masked
  array) of dtype float32 or float64; Python floats and ints and NumPy float32/float64 scalars
  may stand beside them (NumPy's promotion rules, NEP 50, are the kernels' too);
* no keyword beyond ``out=`` (an ndarray of float32/float64), and for ``sum`` only ``axis`` and
  ``keepdims``; ``dot``/``matmul`` take arrays of at least one dimension;

and NumPy's own function otherwise (integer, bool, complex, float16, object arrays, lists,
``dtype=``, ``where=``, ``casting=``, ``order=``, ``subok=``, ``signature=``, ``axes=``,
``initial=``, objects with ``__array_ufunc__``/``__array_function__``, ...). When a kernel refuses
arguments that passed these checks, NumPy's function runs instead and gives its own result or
error. The results are NumPy's: bit-identical for the element-wise add, subtract, multiply,
maximum, minimum, negative and absolute; exp/log/tanh within the kernels' documented ULP bound;
``dot``/``matmul``/``sum`` within the kernels' documented tolerance (another summation order).

The accelerated ufuncs are Python functions that carry the NumPy ufunc's public attributes
(``.at``, ``.reduce``, ``.accumulate``, ``.outer``, ``.reduceat``, ``.nin``, ``.types``,
``.identity``, ...: NumPy's own, copied when this module is imported; ``.ufunc`` and
``__wrapped__`` are the ufunc itself), so ``np.add.at(dW, idx, dout)`` and ``np.maximum.outer``
are NumPy's. They are not ``numpy.ufunc`` instances (``isinstance(np.add, numpy.ufunc)`` is
False) -- a function, not a wrapper object with ``__call__``, because a Python-level ``__call__``
costs several times the type checks on every call. They pickle by reference. Array methods and
operators (``a.sum()``, ``a + b``, ``x @ W``) are NumPy's own here.
"""

import numpy as _np

from . import _core

_ndarray = _np.ndarray
# dtype identity (the builtin native-order float32/float64 descriptors are singletons): cheaper
# than hashing a dtype; a float dtype that is not the singleton (metadata, byte order) falls back
_F32 = _np.dtype(_np.float32)
_F64 = _np.dtype(_np.float64)
# scalars the kernels promote as NumPy does: weak Python float and int (not bool: `type(x) is int`),
# strong NumPy float32/float64
_f32 = _np.float32
_f64 = _np.float64
_NoValue = _np._NoValue

_UNARY = ("negative", "absolute", "exp", "log", "tanh")
_BINARY = ("add", "subtract", "multiply", "maximum", "minimum")


def _out_ok(kwargs) -> bool:
    """The keywords are only ``out=None`` or ``out=<float32/float64 ndarray>``."""
    if len(kwargs) != 1:
        return False
    out = kwargs.get("out", _np)  # a sentinel: any other keyword -> not ok
    return out is None or (type(out) is _ndarray and ((d := out.dtype) is _F64 or d is _F32))


def _as_ufunc(fn, ufunc, name: str):
    """Give the dispatching function the ufunc's face: its public attributes (``at``, ``reduce``,
    ``accumulate``, ``outer``, ``reduceat``, ``nin``, ``nout``, ``nargs``, ``types``, ``identity``,
    ``signature``, ... as this NumPy has them), name, docstring, and ``__wrapped__``."""
    for attr in dir(ufunc):
        if not attr.startswith("_"):
            try:
                setattr(fn, attr, getattr(ufunc, attr))
            except AttributeError:
                pass
    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = __name__
    fn.__doc__ = ufunc.__doc__
    fn.__wrapped__ = ufunc
    fn.ufunc = ufunc
    return fn


def _unary(ufunc, kernel, name):
    def f(x, /, *args, **kwargs):
        if not args and type(x) is _ndarray and ((d := x.dtype) is _F64 or d is _F32):
            try:
                if not kwargs:
                    return kernel(x)
                if _out_ok(kwargs):
                    return kernel(x, **kwargs)
            except (TypeError, ValueError):
                pass
        return ufunc(x, *args, **kwargs)

    return _as_ufunc(f, ufunc, name)


def _binary(ufunc, kernel, name):
    # The checks in the order of the common cases, by identity (no hashing): array-array first,
    # then array-scalar and scalar-array.
    def f(x1, x2, /, *args, **kwargs):
        if not args:
            t1 = type(x1)
            t2 = type(x2)
            if t1 is _ndarray:
                if (d := x1.dtype) is _F64 or d is _F32:
                    if t2 is _ndarray:
                        ok = (d := x2.dtype) is _F64 or d is _F32
                    else:
                        ok = t2 is float or t2 is int or t2 is _f64 or t2 is _f32
                else:
                    ok = False
            elif t2 is _ndarray:
                ok = ((d := x2.dtype) is _F64 or d is _F32) and (
                    t1 is float or t1 is int or t1 is _f64 or t1 is _f32)
            else:
                ok = False
            if ok:
                try:
                    if not kwargs:
                        return kernel(x1, x2)
                    if _out_ok(kwargs):
                        return kernel(x1, x2, **kwargs)
                except (TypeError, ValueError, OverflowError):
                    pass
        return ufunc(x1, x2, *args, **kwargs)

    return _as_ufunc(f, ufunc, name)


def _matmul(ufunc, kernel, name):
    def f(x1, x2, /, *args, **kwargs):
        if (not args and type(x1) is _ndarray and type(x2) is _ndarray
                and ((d := x1.dtype) is _F64 or d is _F32) and ((d := x2.dtype) is _F64 or d is _F32)
                and x1.ndim and x2.ndim):
            try:
                if not kwargs:
                    return kernel(x1, x2)
                if _out_ok(kwargs):
                    return kernel(x1, x2, **kwargs)
            except (TypeError, ValueError):
                pass
        return ufunc(x1, x2, *args, **kwargs)

    return _as_ufunc(f, ufunc, name)


def _wrap_function(fn, npfn):
    fn.__doc__ = npfn.__doc__
    fn.__wrapped__ = npfn
    return fn


def _make_dot(kernel, npdot):
    def dot(a, b, out=None):
        if (type(a) is _ndarray and type(b) is _ndarray and ((d := a.dtype) is _F64 or d is _F32)
                and ((d := b.dtype) is _F64 or d is _F32) and a.ndim and b.ndim):
            # np.dot's out= must be C-contiguous and of exactly the result's dtype
            if out is None:
                try:
                    return kernel(a, b)
                except (TypeError, ValueError):
                    pass
            elif (type(out) is _ndarray and out.flags.c_contiguous
                  and out.dtype is (a.dtype if a.dtype is b.dtype else _F64)):
                try:
                    return kernel(a, b, out=out)
                except (TypeError, ValueError):
                    pass
        return npdot(a, b, out)

    return _wrap_function(dot, npdot)


def _make_sum(kernel, npsum):
    def sum(a, axis=None, dtype=None, out=None, keepdims=_NoValue, initial=_NoValue, where=_NoValue):  # noqa: A001
        if (type(a) is _ndarray and ((d := a.dtype) is _F64 or d is _F32) and dtype is None and out is None
                and initial is _NoValue and where is _NoValue
                and (axis is None or type(axis) is int or type(axis) is tuple)):
            try:
                if keepdims is _NoValue:
                    return kernel(a, axis)
                return kernel(a, axis, bool(keepdims))
            except (TypeError, ValueError, IndexError):
                pass
        return npsum(a, axis=axis, dtype=dtype, out=out, keepdims=keepdims, initial=initial, where=where)

    return _wrap_function(sum, npsum)


def _build() -> dict:
    """The accelerated names whose kernel the compiled extension has (looked up by name, so
    kernels added to pykernels later are picked up)."""
    ns: dict = {}
    for name in _UNARY:
        k = getattr(_core, name, None)
        if k is not None:
            ns[name] = _unary(getattr(_np, name), k, name)
    for name in _BINARY:
        k = getattr(_core, name, None)
        if k is not None:
            ns[name] = _binary(getattr(_np, name), k, name)
    if "absolute" in ns:
        ns["abs"] = ns["absolute"]  # np.abs is np.absolute
    if getattr(_core, "matmul", None) is not None:
        ns["matmul"] = _matmul(_np.matmul, _core.matmul, "matmul")
    if getattr(_core, "dot", None) is not None:
        ns["dot"] = _make_dot(_core.dot, _np.dot)
    if getattr(_core, "sum", None) is not None:
        ns["sum"] = _make_sum(_core.sum, _np.sum)
    for v in ns.values():
        v.__module__ = __name__
        v.__qualname__ = v.__name__
    return ns


globals().update(_build())

#: The names of this namespace that call pykernels' kernels (the others are NumPy's own).
ACCELERATED: tuple[str, ...] = tuple(sorted(n for n in _UNARY + _BINARY + ("abs", "matmul", "dot", "sum")
                                            if n in globals()))

# `from pykernels.numpy import *`: NumPy's names, the accelerated ones from here
__all__ = sorted(set(getattr(_np, "__all__", ())) | set(ACCELERATED) | {"ACCELERATED"})


# module machinery that must stay this module's own (numpy's __path__ would make the import system
# load numpy's submodules a second time under pykernels.numpy.*)
_OWN = frozenset(("__path__", "__file__", "__spec__", "__loader__", "__package__", "__cached__", "__builtins__"))


def __getattr__(name: str):
    if name not in _OWN:
        try:
            return getattr(_np, name)
        except AttributeError:
            pass
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _SubmoduleFinder:
    """``import pykernels.numpy.linalg``, ``from pykernels.numpy.random import default_rng``: a
    submodule name under this module is NumPy's submodule itself (the same module object, imported
    as ``numpy.<name>``), never a second copy."""

    prefix = __name__ + "."

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if not name.startswith(cls.prefix):
            return None
        from importlib.machinery import ModuleSpec
        from importlib.util import find_spec

        real = "numpy." + name[len(cls.prefix):]
        try:
            if find_spec(real) is None:
                return None
        except ImportError:
            return None
        return ModuleSpec(name, _SubmoduleLoader(real))


class _SubmoduleLoader:
    def __init__(self, real: str):
        self.real = real

    def create_module(self, spec):
        import importlib

        module = importlib.import_module(self.real)
        self.spec = module.__spec__
        return module

    def exec_module(self, module):
        # NumPy's module, already executed; the import system has just set its __spec__ to ours
        module.__spec__ = self.spec


# A package for the import system (submodules are found by _SubmoduleFinder alone: no directory)
__path__: list = []


def _install_finder() -> None:
    import sys

    if not any(f is _SubmoduleFinder for f in sys.meta_path):
        sys.meta_path.insert(0, _SubmoduleFinder)


_install_finder()


def __dir__() -> list[str]:
    return sorted(set(dir(_np)) | set(__all__))
