"""The examples in the docstrings and in README.md run and give what they show."""

from __future__ import annotations

import doctest
import pathlib
import re
import sys
import types
import warnings

import pytest

import pykernels

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _public_objects():
    """The package, then every name in ``pykernels.__all__`` that has a docstring to hold examples:
    functions, classes and submodules (a module's own docstring; its members are not searched)."""
    yield "pykernels", pykernels
    for name in pykernels.__all__:
        obj = getattr(pykernels, name)
        if callable(obj) or isinstance(obj, types.ModuleType):
            yield f"pykernels.{name}", obj


def _run_examples(tests: list) -> doctest.DocTestRunner:
    """Runs the doctests with warnings as errors (a warning becomes the example's exception: a
    failure); the runner holds the counts."""
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for test in tests:
            runner.run(test)
    return runner


@pytest.mark.parametrize(("name", "obj"), list(_public_objects()), ids=lambda v: v if isinstance(v, str) else "")
def test_docstring_examples(name, obj):
    """Every example runs, without a warning, and prints what it shows. A public function or class
    without a docstring fails; one whose docstring has no example is skipped, with its name in the reason."""
    assert obj.__doc__, f"{name} has no docstring"
    finder = doctest.DocTestFinder(recurse=False)
    if isinstance(obj, types.ModuleType):
        module = obj
    else:
        module = sys.modules.get(getattr(obj, "__module__", None) or "", pykernels)
    globs = {**vars(pykernels), **vars(module)}  # what the docstring's module sees
    tests = [t for t in finder.find(obj, name, globs=globs) if t.examples]
    if not tests:
        pytest.skip(f"{name}: no example in its docstring")
    runner = _run_examples(tests)
    assert runner.tries == sum(len(t.examples) for t in tests) > 0
    assert runner.failures == 0


def _submodules():
    import pkgutil

    return [m.name for m in pkgutil.walk_packages(pykernels.__path__, "pykernels.")]


@pytest.mark.parametrize("modname", _submodules())
def test_module_docstring_examples(modname):
    """The examples in every submodule's own docstring (pykernels.activations, .losses, ...) run,
    without a warning, and print what they show; a module whose optional dependency is missing is
    skipped with its name."""
    import importlib

    try:
        module = importlib.import_module(modname)
    except ImportError as e:
        pytest.skip(f"{modname}: {e}")
    tests = [t for t in doctest.DocTestFinder(recurse=False).find(module, modname) if t.examples]
    if not tests:
        pytest.skip(f"{modname}: no example in its docstring")
    runner = _run_examples(tests)
    assert runner.tries > 0 and runner.failures == 0


def test_readme_python_examples_run():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "README.md has no python example"
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})
