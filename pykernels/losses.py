"""Losses (Keras names): sparse / categorical cross-entropy and mean squared error.

Each loss is ``loss(y_true, y_pred) -> float`` (mean over the batch) and
``loss.backward(y_true, y_pred, out=None) -> d loss / d y_pred``.

A model trains with a *loss layer*: ``forward(x, t) -> loss`` on the last layer's output and
``backward(dout=1) -> d loss / d x`` (the DLFS ``SoftmaxWithLoss`` protocol). :func:`loss_layer` makes
one from a Keras loss; :class:`SoftmaxWithLoss` is one.

Cross-entropy on logits (``from_logits=True``) runs on the fused, numerically stable softmax +
cross-entropy kernel. On probabilities (``from_logits=False``, Keras's default, for a softmax output
layer) it is ``-mean(log(clip(p, 1e-7, 1 - 1e-7))[label])``; after a layer whose output is a softmax
:func:`loss_layer` does better: the layer hands its softmax to a :class:`SoftmaxWithLoss`, which
computes the loss and its gradient from the logits in one fused kernel (the same maths without the
clipping), as Keras does on its TensorFlow backend.

>>> import numpy as np
>>> from pykernels.losses import SparseCategoricalCrossentropy
>>> loss = SparseCategoricalCrossentropy(from_logits=True)
>>> round(loss(np.array([0, 1]), np.zeros((2, 2), np.float32)), 6)
0.693147
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ._kernels import get_backend
from .layers import Layer, SoftmaxWithLoss

__all__ = ["CategoricalCrossentropy", "Loss", "LossLayer", "MeanSquaredError", "SoftmaxWithLoss",
           "SparseCategoricalCrossentropy", "get", "loss_layer"]

_EPS = 1e-7  # Keras backend epsilon(), the clipping of probabilities


class Loss:
    """Base class. ``sparse`` tells whether ``y_true`` holds class indices."""

    name = "loss"
    sparse = False
    is_crossentropy = False

    def __init__(self) -> None:
        self._k: SimpleNamespace = get_backend("native")

    def set_backend(self, backend: str | SimpleNamespace) -> None:
        self._k = get_backend(backend) if isinstance(backend, str) else backend

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, y_true, y_pred, out=None) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _CrossEntropy(Loss):
    is_crossentropy = True

    def __init__(self, from_logits: bool = False) -> None:
        super().__init__()
        self.from_logits = bool(from_logits)

    def _check(self, y_true, y_pred):
        y_pred = np.asarray(y_pred)
        if y_pred.ndim != 2:
            raise ValueError(f"{self.name}: y_pred must be 2-d (batch, classes), got shape {y_pred.shape}")
        y_true = np.asarray(y_true)
        if self.sparse:
            if y_true.ndim == 2 and y_true.shape[1] == 1:
                y_true = y_true[:, 0]
            if y_true.ndim != 1 or y_true.shape[0] != y_pred.shape[0]:
                raise ValueError(f"{self.name}: y_true must be ({y_pred.shape[0]},) class indices, "
                                 f"got shape {y_true.shape}")
            if y_true.dtype.kind == "f":
                if not np.all(np.isfinite(y_true)) or np.any(y_true != np.round(y_true)):
                    raise ValueError(f"{self.name}: y_true must hold integer class indices")
                y_true = y_true.astype(np.int64)
        elif y_true.shape != y_pred.shape:
            raise ValueError(f"{self.name}: y_true must have the shape of y_pred {y_pred.shape}, "
                             f"got {y_true.shape}")
        elif y_true.dtype != y_pred.dtype:
            y_true = y_true.astype(y_pred.dtype)
        return y_true, y_pred

    def __call__(self, y_true, y_pred) -> float:
        y_true, y_pred = self._check(y_true, y_pred)
        if self.from_logits:
            return self._k.softmax_cross_entropy(y_pred, y_true)
        N, C = y_pred.shape
        p = np.clip(y_pred, _EPS, 1 - _EPS)
        if self.sparse:
            if y_true.size and (y_true.min() < 0 or y_true.max() >= C):
                raise ValueError(f"{self.name}: labels must be in [0, {C}), got values in "
                                 f"[{y_true.min()}, {y_true.max()}]")
            return float(-np.mean(np.log(p[np.arange(N), y_true].astype(np.float64))))
        return float(-np.mean(np.sum(y_true * np.log(p.astype(np.float64)), axis=1)))

    def backward(self, y_true, y_pred, out=None) -> np.ndarray:
        y_true, y_pred = self._check(y_true, y_pred)
        if self.from_logits:
            return self._k.softmax_cross_entropy_backward(y_pred, y_true, dlogits=out)
        N, C = y_pred.shape
        out = np.zeros_like(y_pred) if out is None else out
        inside = (y_pred > _EPS) & (y_pred < 1 - _EPS)  # the clip's gradient
        if self.sparse:
            out[...] = 0
            rows = np.arange(N)
            p = y_pred[rows, y_true]
            out[rows, y_true] = np.where(inside[rows, y_true], -1.0 / (N * p), 0.0)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                out[...] = np.where(inside, -y_true / (N * y_pred), 0.0)
        return out


class SparseCategoricalCrossentropy(_CrossEntropy):
    """Cross-entropy against class indices ``y_true`` (N,); ``from_logits`` as Keras."""

    name = "sparse_categorical_crossentropy"
    sparse = True


class CategoricalCrossentropy(_CrossEntropy):
    """Cross-entropy against one-hot / probability targets ``y_true`` (N, C); ``from_logits`` as Keras."""

    name = "categorical_crossentropy"
    sparse = False


class MeanSquaredError(Loss):
    """``mean((y_pred - y_true) ** 2)`` over all elements (Keras: mean over the last axis, then the batch)."""

    name = "mean_squared_error"

    def _pair(self, y_true, y_pred):
        y_true = np.asarray(y_true)
        y_pred = np.asarray(y_pred)
        if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1:] == (1,):
            y_true = y_true[..., None]  # Keras expands (n,) targets of a one-output model to (n, 1)
        if y_true.shape != y_pred.shape:
            raise ValueError(f"{self.name}: y_true has shape {y_true.shape} but y_pred has {y_pred.shape}")
        return y_true, y_pred

    def __call__(self, y_true, y_pred) -> float:
        y_true, y_pred = self._pair(y_true, y_pred)
        d = y_pred.astype(np.float64) - y_true
        return float(np.mean(d * d)) if d.size else float("nan")

    def backward(self, y_true, y_pred, out=None) -> np.ndarray:
        y_true, y_pred = self._pair(y_true, y_pred)
        out = np.empty_like(y_pred) if out is None else out
        np.subtract(y_pred, y_true, out=out)
        out *= y_pred.dtype.type(2.0 / max(y_pred.size, 1))
        return out


class LossLayer(Layer):
    """A :class:`Loss` as a loss layer: ``forward(x, t)`` is ``loss(t, x)``, ``backward(dout=1)`` is
    ``dout * loss.backward(t, x)``, computed into a buffer the layer reuses."""

    def __init__(self, loss: Loss, name: str | None = None) -> None:
        super().__init__(name or loss.name)
        self.loss = loss
        self.built = True
        self.x: np.ndarray | None = None
        self.t: np.ndarray | None = None

    def set_backend(self, backend: str | SimpleNamespace) -> None:
        super().set_backend(backend)
        self.loss.set_backend(self._k)

    def forward(self, x: np.ndarray, t: np.ndarray) -> float:  # type: ignore[override]
        self.x, self.t = x, t
        return self.loss(t, x)

    def backward(self, dout: float = 1.0) -> np.ndarray:  # type: ignore[override]
        x = self._saved(self.x, "input")
        dx = self.loss.backward(self.t, x, out=self._buf("dx", x.shape, x.dtype))
        if dout != 1.0:
            dx *= dx.dtype.type(dout)
        return dx

    def __repr__(self) -> str:
        return f"LossLayer({self.loss!r})"


def _is_loss_layer(obj) -> bool:
    return callable(getattr(obj, "forward", None)) and callable(getattr(obj, "backward", None))


def loss_layer(loss, last=None) -> tuple[object, bool]:
    """The loss layer that follows layer ``last``, and whether ``last`` handed its output softmax to it.

    ``loss``: a :class:`Loss` (or its name) or a loss layer (any object with ``forward(x, t)`` and
    ``backward(dout)``, used as it is). A cross-entropy on probabilities after a layer whose output
    is a softmax becomes :class:`SoftmaxWithLoss`, the layer handing it its softmax (see
    :meth:`~pykernels.layers.Layer.hand_softmax_to_loss`); a loss layer with ``applies_softmax`` true
    gets the softmax the same way; any other :class:`Loss` becomes a :class:`LossLayer`. ``last``
    takes back a softmax it handed over before, when the new loss does not apply one.
    """
    loss = get(loss)
    hand = getattr(last, "hand_softmax_to_loss", None)
    if isinstance(loss, Loss):
        fuse = loss.is_crossentropy and not loss.from_logits
        if fuse and hand is not None and hand(True):
            return SoftmaxWithLoss(), True
        if hand is not None:
            hand(False)
        return LossLayer(loss), False
    takes = bool(getattr(loss, "applies_softmax", False))
    handed = hand is not None and bool(hand(takes)) and takes
    return loss, handed


_BY_NAME = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
}


def get(loss):
    """A :class:`Loss` by Keras name; a Loss instance or a loss layer (an object with ``forward(x, t)``
    and ``backward(dout)``, as :class:`SoftmaxWithLoss`) as is."""
    if isinstance(loss, Loss) or _is_loss_layer(loss):
        return loss
    try:
        return _BY_NAME[loss]()
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {loss!r}; use one of {sorted(_BY_NAME)}, a Loss instance or a loss "
                         f"layer (forward(x, t), backward(dout))") from None
