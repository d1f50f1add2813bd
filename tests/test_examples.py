"""The book's programs in examples/ run on pykernels and learn what the books say they learn."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _run(name: str, cwd) -> str:
    p = subprocess.run([sys.executable, str(EXAMPLES / name)], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout


def _last_float(pattern: str, text: str) -> float:
    found = re.findall(pattern, text)
    assert found, text[-2000:]
    return float(found[-1])


def test_spiral_trainer(tmp_path):
    out = _run("spiral_trainer.py", tmp_path)
    assert _last_float(r"train accuracy: ([0-9.]+)", out) >= 0.9


@pytest.mark.slow
def test_mnist_keras_style(tmp_path):
    out = _run("mnist_keras_style.py", tmp_path)
    assert _last_float(r"test_acc: ([0-9.]+)", out) >= 0.97


@pytest.mark.slow
def test_mnist_from_scratch(tmp_path):
    """The book's NaiveDense/NaiveSequential loop (SGD 1e-3, 10 epochs) reaches ~0.8 in the book."""
    out = _run("mnist_from_scratch.py", tmp_path)
    assert _last_float(r"accuracy: ([0-9.]+)", out) >= 0.75
