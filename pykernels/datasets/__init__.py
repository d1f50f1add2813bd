"""Datasets: ``mnist`` (the real MNIST, Keras layout) and ``spiral`` (DLFS2's toy data).

Each submodule is imported on first use (``pykernels.datasets.mnist``). ``mnist.load_data()``
downloads the files once (then reads its cache); ``spiral`` is generated:

>>> from pykernels import datasets
>>> x, t = datasets.spiral.load_data()
>>> x.shape, t.shape, t.sum(axis=0).tolist()
((300, 2), (300, 3), [100, 100, 100])
"""

import importlib as _importlib

__all__ = ["mnist", "spiral"]


def __getattr__(name: str):
    if name in __all__:
        module = _importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(__all__)
