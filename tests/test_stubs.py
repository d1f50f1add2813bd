"""pykernels/_core.pyi lists exactly what the compiled module exports, with the same parameters."""

from __future__ import annotations

import ast
import inspect
import pathlib

import pykernels
from pykernels import _core

STUB = pathlib.Path(__file__).resolve().parents[1] / "pykernels" / "_core.pyi"


def _stub_functions() -> dict[str, list[str]]:
    tree = ast.parse(STUB.read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            names = [a.arg for a in node.args.args]
            if node.args.kwonlyargs:
                names += ["*"] + [a.arg for a in node.args.kwonlyargs]
            out[node.name] = names
    return out


def test_stub_matches_module_exports():
    stub = _stub_functions()
    exported = {n for n in dir(_core) if callable(getattr(_core, n)) and not n.startswith("__")}
    assert exported == set(stub), (exported ^ set(stub))


def _doc_params(name: str, doc: str) -> list[str]:
    """Parameter names from pybind11's first docstring line, e.g. ``f(x: float, n: int = 2) -> None``."""
    line = doc.strip().splitlines()[0]
    assert line.startswith(name + "("), line
    inner, depth, parts, cur = line[len(name) + 1 :], 0, [], ""
    for ch in inner:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            if depth == 0:
                break
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.split(":")[0].split("=")[0].strip() for p in parts if p.strip()]


def test_stub_parameters_match_the_module():
    stub = _stub_functions()
    for name, params in stub.items():
        fn = getattr(_core, name)
        try:
            actual = []
            for p in inspect.signature(fn).parameters.values():
                if p.kind is p.KEYWORD_ONLY and "*" not in actual:
                    actual.append("*")  # as the stub lists a bare * (see _stub_functions)
                actual.append(p.name)
        except (TypeError, ValueError):  # pybind11 functions: the signature is the docstring's first line
            actual = _doc_params(name, fn.__doc__)
        assert actual == params, name


def test_package_is_typed():
    assert (pathlib.Path(pykernels.__file__).parent / "py.typed").exists()
