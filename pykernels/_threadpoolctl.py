"""threadpoolctl support: pykernels' thread pool as a library threadpoolctl lists and limits.

With threadpoolctl >= 3.5 (``threadpoolctl.register``), ``threadpool_info()`` lists pykernels::

    {"user_api": "openmp", "internal_api": "pykernels", "num_threads": 2, "prefix": "_core",
     "filepath": ".../pykernels/_core....so", "version": "0.1.0"}

and ``threadpool_limits(n)`` sets ``pykernels.set_num_threads(n)`` for the ``with`` block and
restores the previous count afterwards. The user API is ``"openmp"``: pykernels' pool takes its
initial size from ``OMP_NUM_THREADS`` like an OpenMP runtime, and code that limits OpenMP
(``threadpool_limits(1, user_api="openmp")``, scikit-learn's and joblib's nested-parallelism
guards) then limits pykernels too. To limit pykernels alone, select it by its internal API:
``threadpoolctl.ThreadpoolController().select(internal_api="pykernels").limit(limits=n)``.

The controller is registered when both are loaded, whichever comes first: ``import pykernels``
registers it at once if threadpoolctl is already imported, and otherwise leaves a one-shot import
hook that registers it right after ``import threadpoolctl`` runs. threadpoolctl itself is never
imported by ``import pykernels``.

threadpoolctl finds libraries by file name prefix (here ``_core``, which many extension modules
share) and then by exported symbols: the controller only matches an ``_core`` library that exports
one of ``CHECK_SYMBOLS``, the kernels' own thread-count functions.
"""

from __future__ import annotations

import sys

__all__ = ["CHECK_SYMBOLS", "controller_class", "install", "register"]

# Exported symbols of pykernels/_core*.so that identify it among the "_core*" libraries: a C-linkage
# marker if the extension has one, else the C++ runtime functions behind get/set_num_threads
# (pk::num_threads(), pk::set_num_threads(int); Itanium C++ ABI names, as `nm -D` lists them).
CHECK_SYMBOLS = ("pykernels_threadpool_marker", "_ZN2pk11num_threadsEv", "_ZN2pk15set_num_threadsEi")

_registered = False
_controller = None


def _core():
    from . import _core as core

    return core


def controller_class():
    """The ``threadpoolctl.LibController`` subclass for pykernels (imports threadpoolctl)."""
    global _controller
    if _controller is not None:
        return _controller
    from threadpoolctl import LibController

    class PykernelsController(LibController):
        """pykernels' thread pool (``pykernels.get_num_threads`` / ``set_num_threads``)."""

        user_api = "openmp"
        internal_api = "pykernels"
        filename_prefixes = ("_core",)
        check_symbols = CHECK_SYMBOLS

        def get_num_threads(self):
            return _core().get_num_threads()

        def set_num_threads(self, num_threads):
            # threadpoolctl passes the limit (an int >= 1) or, when restoring, the count read before
            return _core().set_num_threads(max(1, int(num_threads)))

        def get_version(self):
            return getattr(_core(), "__version__", None)

    PykernelsController.__module__ = __name__
    _controller = PykernelsController
    return _controller


def register() -> bool:
    """Register the controller with threadpoolctl (once). False when threadpoolctl is older than
    3.5 (no ``register``) or cannot be imported."""
    global _registered
    if _registered:
        return True
    try:
        import threadpoolctl
    except ImportError:
        return False
    reg = getattr(threadpoolctl, "register", None)
    if reg is None:
        return False
    _registered = True
    reg(controller_class())
    return True


class _RegisteringLoader:
    """Wraps threadpoolctl's own loader: runs the module, then registers the controller."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        # the module is complete here; `register` re-imports it from sys.modules
        try:
            register()
        except Exception:  # never break `import threadpoolctl` because of pykernels
            pass

    def __getattr__(self, name):  # get_source, get_filename, is_package, ... of the real loader
        return getattr(self._loader, name)


class _ThreadpoolctlHook:
    """A meta path finder that answers only for ``threadpoolctl``, once: it finds the real spec
    with the finders after it and wraps the loader so the controller is registered on import."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "threadpoolctl":
            return None
        _remove_hook()
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _RegisteringLoader(spec.loader)
                return spec
        return None


def _remove_hook() -> None:
    try:
        sys.meta_path.remove(_ThreadpoolctlHook)
    except ValueError:
        pass


def install() -> None:
    """Called by ``import pykernels``: register now if threadpoolctl is loaded, else on its import."""
    if "threadpoolctl" in sys.modules:
        try:
            register()
        except Exception:
            pass
    elif _ThreadpoolctlHook not in sys.meta_path:
        sys.meta_path.insert(0, _ThreadpoolctlHook)
