"""Every public kernel is a plain module function: it pickles by reference (so multiprocessing,
concurrent.futures and dask.distributed can ship it), help() and __doc__ open with its signature and
a one-line summary, inspect.signature works, and NumPy keywords the kernel does not take get an error
naming them and pykernels.numpy."""

from __future__ import annotations

import inspect
import pickle
import pydoc
import subprocess
import sys

import numpy as np
import pytest

import pykernels as pk
from pykernels import _core

# Every public kernel: the C++ functions pykernels exports (builtins of pykernels._core).
KERNELS = sorted(n for n in pk.__all__ if isinstance(getattr(pk, n, None), type(len))
                 and getattr(pk, n).__module__ == "pykernels._core")
# The kernels parsed by fastcall.hpp that have a NumPy function of the same name.
NUMPY_TWINS = sorted(n for n in KERNELS if hasattr(np, n) and n not in ("set_num_threads",))


def test_the_kernel_list_is_complete():
    assert {"add", "dot", "matmul", "sum", "sum_to", "softmax_cross_entropy", "adam_update", "dense"} <= set(KERNELS)


@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickles_by_reference(name, protocol):
    f = getattr(pk, name)
    data = pickle.dumps(f, protocol=protocol)
    assert b"PyCapsule" not in data
    assert pickle.loads(data) is f


def test_unpickled_in_another_process_computes():
    data = pickle.dumps((pk.add, pk.dot, pk.sum, np.arange(4.0)))
    code = ("import pickle, sys; add, dot, s, x = pickle.loads(sys.stdin.buffer.read()); "
            "print(float(dot(add(x, x), x)), float(s(x)))")
    r = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().split() == ["28.0", "6.0"]


@pytest.mark.parametrize("name", KERNELS)
def test_signature_and_help(name):
    f = getattr(pk, name)
    sig = inspect.signature(f)  # raises ValueError for a builtin without __text_signature__
    assert f.__text_signature__ == str(sig)
    assert f.__self__ is _core  # a module function, not a method of a capsule or a pybind11 record
    first, *rest = f.__doc__.splitlines()
    assert first and not first.startswith(name + "("), "__doc__ opens with the summary"
    assert "arg0" not in f.__doc__ and "-> object" not in f.__doc__ and "Overloaded" not in f.__doc__
    text = pydoc.render_doc(f, renderer=pydoc.plaintext)
    assert "PyCapsule" not in text and "method of" not in text
    lines = text.splitlines()
    assert lines[2] == f"{f.__name__}{sig}", lines[:4]  # "Python Library Documentation: ...", "", signature
    assert lines[3].strip() == first


def test_signature_parameters():
    assert str(inspect.signature(pk.dot)) == "(a, b, out=None)"
    assert str(inspect.signature(pk.sum)) == "(x, axis=None, keepdims=False)"
    assert str(inspect.signature(pk.sgd_update)) == (
        "(param, grad, *, learning_rate, momentum=0.0, velocity=None, nesterov=False)")


@pytest.mark.parametrize("keyword", ["dtype", "where", "casting", "order"])
@pytest.mark.parametrize("name", NUMPY_TWINS)
def test_numpy_keyword_error_names_it(name, keyword):
    f = getattr(pk, name)
    x = np.ones(3)
    nargs = sum(p.default is inspect.Parameter.empty for p in inspect.signature(f).parameters.values())
    with pytest.raises(TypeError) as e:
        f(*[x] * nargs, **{keyword: None})
    msg = str(e.value)
    assert f"unexpected keyword argument '{keyword}'" in msg
    assert f"pykernels.numpy.{f.__name__} accepts {keyword}=" in msg


def test_sum_dtype_message():
    with pytest.raises(TypeError, match=r"sum\(\) got an unexpected keyword argument 'dtype': .*pykernels\.numpy\.sum"):
        pk.sum(np.ones(3, np.float32), dtype=np.float64)


def test_other_unknown_keywords_plain():
    with pytest.raises(TypeError, match=r"^add\(\) got an unexpected keyword argument 'bogus'$"):
        pk.add(1.0, 2.0, bogus=1)
    # dense has no NumPy twin: no pointer to pykernels.numpy
    with pytest.raises(TypeError, match=r"^dense\(\) got an unexpected keyword argument 'dtype'$"):
        pk.dense(np.ones((2, 2)), np.ones((2, 2)), dtype=None)
