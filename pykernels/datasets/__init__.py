"""Datasets: ``mnist`` (the real MNIST, Keras layout) and ``spiral`` (DLFS2's toy data)."""

from __future__ import annotations

from . import mnist, spiral

__all__ = ["mnist", "spiral"]
