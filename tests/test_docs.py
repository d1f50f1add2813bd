"""The examples in the docstrings and in README.md run and give what they show."""

from __future__ import annotations

import doctest
import pathlib
import re
import sys

import pytest

import pykernels

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _public_objects():
    yield "pykernels", pykernels
    for name in pykernels.__all__:
        obj = getattr(pykernels, name)
        if callable(obj) and getattr(obj, "__doc__", None):
            yield f"pykernels.{name}", obj


@pytest.mark.parametrize(("name", "obj"), list(_public_objects()), ids=lambda v: v if isinstance(v, str) else "")
def test_docstring_examples(name, obj):
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    module = sys.modules.get(getattr(obj, "__module__", None) or "", pykernels)
    globs = {**vars(pykernels), **vars(module)}  # what the docstring's module sees
    for test in finder.find(obj, name, globs=globs):
        runner.run(test)
    assert runner.failures == 0


def test_readme_python_examples_run():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "README.md has no python example"
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})
