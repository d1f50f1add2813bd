"""Keras-style ``Sequential`` model on the pykernels kernels, and the ``History`` that ``fit`` returns.

>>> import numpy as np
>>> from pykernels import Sequential
>>> from pykernels.layers import Dense
>>> model = Sequential([Dense(16, activation="relu", input_shape=(4,)), Dense(3, activation="softmax")], seed=0)
>>> model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
>>> x = np.random.default_rng(0).random((64, 4), dtype=np.float32); y = (x[:, 0] * 3).astype(np.int64)
>>> hist = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
>>> sorted(hist.history), len(hist.history["loss"])
(['accuracy', 'loss'], 2)
>>> model.predict(x[:2]).shape
(2, 3)

A model is a list of layers and a loss layer, which talk only through the DLFS2 protocol: each
layer's ``forward(x)`` / ``backward(dout)`` (plus ``params`` and ``grads``), the loss layer's
``forward(x, t) -> loss`` / ``backward() -> dx`` (see :func:`pykernels.losses.loss_layer`). Training
step: forward through the layers (each writes into its reused buffer), the loss layer's forward,
its backward and the layers' backward in reverse order (grads written in place; the first layer
computes no input gradient), then one fused optimizer pass per parameter. A NaN or infinite loss
ends the step before any backward pass, so that step's update is never applied (``fit`` then raises
``FloatingPointError``). With a softmax output and a cross-entropy loss on probabilities (the book's
model), ``compile`` has the last layer hand its softmax to a
:class:`~pykernels.layers.SoftmaxWithLoss`, which computes the loss and d loss / d logits in one
fused kernel pass, as Keras does on its TensorFlow backend: the loss equals Keras's up to Keras's
clipping of probabilities to [1e-7, 1-1e-7]; ``predict`` applies the softmax to the logits.

Any object with ``forward(x)`` and ``backward(dout)`` is a layer (optional: ``params``/``grads``,
``build``, ``output_dim(input_dim)`` — the default keeps the width —, ``set_backend``, ``name``);
any object with ``forward(x, t)`` and ``backward(dout)`` can be given to ``compile`` as the loss.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from . import losses as losses_mod
from . import optimizers as optimizers_mod
from ._kernels import get_backend
from .layers import assign_weights
from .utils import Progbar

__all__ = ["History", "Sequential"]


class History:
    """What ``fit`` returns: ``history`` (dict of per-epoch lists: loss, metrics, val_*), ``epoch``,
    ``epoch_times`` (seconds per epoch, training only) and ``params`` (fit settings).

    >>> import numpy as np, pykernels as pk
    >>> from pykernels.layers import Dense
    >>> model = pk.Sequential([Dense(2, activation="softmax")], seed=0)
    >>> model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    >>> h = model.fit(np.eye(2, dtype=np.float32), np.array([0, 1]), epochs=3, verbose=0)
    >>> h.epoch, len(h.history["loss"]), len(h.epoch_times), h.params["epochs"]
    ([0, 1, 2], 3, 3, 3)
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.epoch_times: list[float] = []
        self.params: dict = {}

    def _append(self, epoch: int, logs: dict[str, float], seconds: float) -> None:
        self.epoch.append(epoch)
        self.epoch_times.append(seconds)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(float(v))

    def __repr__(self) -> str:
        last = {k: round(v[-1], 4) for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epoch)}, last={last})"


def _first_nonfinite_row(a: np.ndarray) -> int | None:
    """Index of the first row of float ``a`` holding NaN or infinity, or None: one pass over ``a``, in
    row blocks (no full-size boolean temporary: that would be 47 MB for MNIST)."""
    step = 8192
    for r in range(0, len(a), step):
        finite = np.isfinite(a[r:r + step])
        if not finite.all():
            return r + int(np.argwhere(~finite)[0][0])
    return None


def _check_finite(a: np.ndarray, orig: np.ndarray, who: str, what: str, plural: bool = False) -> None:
    """ValueError naming the first sample of ``a`` (``orig`` converted) with NaN or infinity; a value
    that was finite in ``orig`` and overflowed in the conversion is reported as such."""
    if a.dtype.kind != "f":
        return
    r = _first_nonfinite_row(a)
    if r is None:
        return
    if orig.dtype.kind == "f" and np.isfinite(orig[r]).all():
        v = orig[r].ravel()[int(np.argwhere(~np.isfinite(a[r].ravel()))[0][0])]
        raise ValueError(f"{who}: {what} {'hold' if plural else 'holds'} {v.item()!r} at sample {r}, which "
                         f"overflows {a.dtype} (the model's dtype); rescale the data")
    raise ValueError(f"{who}: {what} {'contain' if plural else 'contains'} NaN or infinity (first at sample {r})")


def _as_float_features(x, dtype, who: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{who}: x must be numeric, got dtype {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{who}: x must be 2-d (samples, features), got shape {x.shape}; "
                         f"reshape it, e.g. x.reshape(len(x), -1)")
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, as a ValueError
        xc = np.ascontiguousarray(x, dtype=dtype)  # one conversion per call, never per batch
    _check_finite(xc, x, who, "x")
    return xc


def _params(layer) -> list[np.ndarray]:
    return getattr(layer, "params", None) or []


def _grads(layer) -> list[np.ndarray]:
    return getattr(layer, "grads", None) or []


def _output_dim(layer, input_dim):
    f = getattr(layer, "output_dim", None)
    return f(input_dim) if f is not None else input_dim


def _fit_batch_size(epochs, batch_size) -> int:
    """fit's batch size (None is 32), after checking it and ``epochs``."""
    batch_size = 32 if batch_size is None else batch_size
    if int(epochs) < 0 or int(batch_size) <= 0:
        raise ValueError(f"fit: epochs must be >= 0 and batch_size > 0, got {epochs} and {batch_size}")
    return int(batch_size)


def _nan_loss_error(loss: float, epoch: int, step: int, hist) -> FloatingPointError:
    """fit's error for a loss that is not finite (the step was not applied); carries the History."""
    err = FloatingPointError(f"fit: the loss became {loss} at epoch {epoch + 1}, step {step + 1} (that step was "
                             f"not applied); lower the learning rate or check the data")
    err.history = hist
    return err


def _layer_name(layer) -> str:
    return getattr(layer, "name", None) or type(layer).__name__.lower()


class Sequential:
    """A linear stack of layers with Keras's ``compile`` / ``fit`` / ``evaluate`` / ``predict``.

    ``backend="native"`` runs the C++ kernels, ``"numpy"`` the same model on :mod:`pykernels.reference`
    (for comparison). ``dtype`` float32 (default) or float64; ``seed`` fixes initialisation and shuffling.

    >>> import numpy as np, pykernels as pk
    >>> from pykernels.layers import Dense
    >>> x, t = pk.datasets.spiral.load_data()
    >>> model = pk.Sequential([Dense(10, activation="sigmoid"), Dense(3, activation="softmax")], seed=0)
    >>> model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    >>> history = model.fit(x.astype(np.float32), t.argmax(axis=1), epochs=2, batch_size=30, verbose=0)
    >>> sorted(history.history), history.epoch
    (['accuracy', 'loss'], [0, 1])
    >>> model.predict(x[:4].astype(np.float32)).shape
    (4, 3)
    """

    def __init__(self, layers: Sequence[Layer] | None = None, *, backend: str = "native", dtype="float32",
                 seed: int | None = None, name: str = "sequential") -> None:
        self.name = name
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"Sequential: dtype must be float32 or float64, got {self.dtype}")
        self.backend = get_backend(backend).name
        self._k: SimpleNamespace = get_backend(backend)
        self.rng = np.random.default_rng(seed)
        self.layers: list = []
        self.optimizer: optimizers_mod.Optimizer | None = None
        self.loss = None  # what compile was given: a losses.Loss or a loss layer
        self._loss_layer = None  # what the model trains with (losses.loss_layer)
        self._softmax_in_loss = False  # the last layer handed its output softmax to the loss layer
        self._loss_ready = False  # forward(x, t) ran: backward() may follow
        self.metrics: list[str] = []
        self.built = False
        self._added_after_compile = False
        for layer in layers or []:
            self.add(layer)

    # -- construction ---------------------------------------------------------------------------
    def add(self, layer) -> None:
        """Append ``layer``: any object with ``forward(x)`` and ``backward(dout)``."""
        if not (callable(getattr(layer, "forward", None)) and callable(getattr(layer, "backward", None))):
            raise TypeError(f"Sequential.add: expected a layer (an object with forward(x) and backward(dout)), "
                            f"got {type(layer).__name__}")
        base = _layer_name(layer)
        names = {_layer_name(l) for l in self.layers}
        if base in names and hasattr(layer, "name"):
            i = 1
            while f"{base}_{i}" in names:
                i += 1
            layer.name = f"{base}_{i}"
        set_backend = getattr(layer, "set_backend", None)
        if set_backend is not None:
            set_backend(self._k)
        self.layers.append(layer)
        self.built = False
        self._added_after_compile = self.optimizer is not None
        if self.loss is not None:
            self._bind_loss()  # the new last layer, not the old one, meets the loss
        if self.input_dim is not None:
            self.build()  # as Keras: a model whose input size is known has its weights at once

    @property
    def input_dim(self) -> int | None:
        if not self.layers:
            return None
        first = self.layers[0]
        if getattr(first, "input_dim", None) is not None:
            return first.input_dim
        if _params(first):
            return _params(first)[0].shape[0]
        return None

    def build(self, input_dim: int | None = None) -> None:
        """Create the weights (Keras initialisers) for ``input_dim`` input features."""
        if not self.layers:
            raise ValueError("Sequential: the model has no layers")
        d = input_dim if input_dim is not None else self.input_dim
        if d is None:
            raise ValueError("Sequential: unknown input size; give the first layer input_shape=(features,) "
                             "or call fit/predict on data")
        for i, layer in enumerate(self.layers):
            if not getattr(layer, "built", True):
                layer.build(d, self.rng, self.dtype)
            if hasattr(layer, "need_input_grad"):
                layer.need_input_grad = i > 0
            d = _output_dim(layer, d)
        self.built = True

    @property
    def params(self) -> list[np.ndarray]:
        return [p for l in self.layers for p in _params(l)]

    @property
    def grads(self) -> list[np.ndarray]:
        return [g for l in self.layers for g in _grads(l)]

    @property
    def output_dim(self) -> int:
        d = self.input_dim
        for l in self.layers:
            d = _output_dim(l, d)
        return d

    def compile(self, optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                metrics: Sequence[str] | None = None) -> None:
        """Set the optimizer (name or instance), loss and metrics (``["accuracy"]``). ``loss``: a Keras
        name, a :class:`~pykernels.losses.Loss`, or a loss layer (``forward(x, t)``, ``backward(dout)``,
        as :class:`~pykernels.layers.SoftmaxWithLoss`); see :func:`pykernels.losses.loss_layer`."""
        if not self.built and self.layers and self.input_dim is not None:
            self.build()  # as Keras: a model whose input size is known gets its weights at compile
        self._added_after_compile = False
        self.optimizer = optimizers_mod.get(optimizer)
        self.optimizer.set_backend(self._k)
        self.loss = losses_mod.get(loss)
        self._bind_loss()
        self.metrics = []
        for m in metrics or []:
            if m not in ("accuracy", "acc"):
                raise ValueError(f"unknown metric {m!r}; supported: 'accuracy'")
            if self.metrics:
                raise ValueError(f"accuracy given twice in metrics={list(metrics)!r}")
            self.metrics.append(m)  # the history key is the name given, as in Keras ("acc" -> "acc")

    # -- internals ------------------------------------------------------------------------------
    def _bind_loss(self) -> None:
        """The loss layer for the loss compile was given, after the current last layer (the layers
        before it take back any softmax they handed to an earlier loss)."""
        for layer in self.layers[:-1]:
            hand = getattr(layer, "hand_softmax_to_loss", None)
            if hand is not None:
                hand(False)
        self._loss_layer, self._softmax_in_loss = losses_mod.loss_layer(
            self.loss, self.layers[-1] if self.layers else None)
        set_backend = getattr(self._loss_layer, "set_backend", None)
        if set_backend is not None:
            set_backend(self._k)
        self._loss_ready = False

    def _require_compiled(self, who: str) -> None:
        if self.optimizer is None or self.loss is None:
            raise RuntimeError(f"{who}: call model.compile(optimizer=..., loss=...) first")
        if who == "fit" and self._added_after_compile:
            raise RuntimeError("fit: layers were added after compile(); call model.compile(...) again (the "
                               "optimizer's state belongs to the old list of parameters)")

    def _prepare_x(self, x, who: str, *, build: bool = True, input_dim: int | None = None) -> np.ndarray:
        """``x`` as a contiguous array of the model's dtype, checked (numeric, 2-d, finite, the model's
        number of features, or ``input_dim`` for a model not built yet). ``build=False`` leaves an
        unbuilt model unbuilt (``fit`` builds only once every argument has been checked)."""
        x = _as_float_features(x, self.dtype, who)
        d = self.input_dim if self.input_dim is not None else input_dim
        if d is not None and x.shape[1] != d:
            raise ValueError(f"{who}: the model expects {d} input features, got {x.shape[1]} (x shape {x.shape})")
        if build and not self.built:
            self.build(x.shape[1])
        return x

    def _output_dim_for(self, input_dim: int) -> int:
        d = self.input_dim if self.input_dim is not None else input_dim
        for l in self.layers:
            d = _output_dim(l, d)
        return d

    def _prepare_y(self, y, n: int, who: str, input_dim: int | None = None) -> np.ndarray:
        """Labels (int64 class indices in [0, outputs)) or targets ((n, outputs), the model's dtype,
        finite) for ``n`` samples; ``input_dim`` stands in for an unbuilt model's input size."""
        y = np.asarray(y)
        if y.shape[:1] != (n,):
            raise ValueError(f"{who}: x and y have different lengths: {n} samples in x, "
                             f"{y.shape[0] if y.ndim else 'scalar'} in y")
        sparse = getattr(self.loss, "sparse", None)
        if sparse is None:  # a loss layer of the user's: its targets are its business, but finite
            if y.dtype.kind == "f":
                r = _first_nonfinite_row(y)
                if r is not None:
                    raise ValueError(f"{who}: targets contain NaN or infinity (first at sample {r})")
            return np.ascontiguousarray(y)
        C = self._output_dim_for(input_dim) if input_dim is not None else self.output_dim
        if sparse:
            if y.ndim == 2 and y.shape[1] == 1:
                y = y[:, 0]
            if y.ndim != 1:
                raise ValueError(f"{who}: sparse labels must be 1-d class indices, got shape {y.shape} "
                                 f"(use loss='categorical_crossentropy' for one-hot labels)")
            if y.dtype.kind == "f":
                r = _first_nonfinite_row(y)
                if r is not None:
                    raise ValueError(f"{who}: labels contain NaN or infinity (first at index {r}: {y[r].item()})")
                frac = np.flatnonzero(y != np.round(y))
                if frac.size:
                    i = int(frac[0])
                    raise ValueError(f"{who}: labels must be integer class indices, got {y[i].item()!r} "
                                     f"at index {i}")
            elif y.dtype.kind not in "iub":
                raise TypeError(f"{who}: labels must be integer class indices, got dtype {y.dtype}")
            if y.size:
                # in the labels' own dtype: a uint64 label >= 2**63 (or a float one beyond int64) would
                # wrap to a negative number in int64
                bad = np.flatnonzero((y >= C) if y.dtype.kind in "ub" else (y < 0) | (y >= C))
                if bad.size:
                    i = int(bad[0])
                    v = y[i].item()  # a Python int or float: exact, whatever the dtype
                    v = int(v) if abs(v) < 2**64 else v
                    raise ValueError(f"{who}: label {v} at index {i} is out of range for the model's "
                                     f"{C} outputs (expected 0 <= label < {C})")
            return np.ascontiguousarray(y, dtype=np.int64)
        if y.ndim == 1 and C == 1:
            y = y[:, None]  # Keras expands (n,) targets of a one-output model to (n, 1)
        if y.ndim != 2 or y.shape[1] != C:
            raise ValueError(f"{who}: targets must have shape ({n}, {C}), got {y.shape}")
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{who}: targets must be numeric, got dtype {y.dtype}")
        with np.errstate(over="ignore", invalid="ignore"):
            yc = np.ascontiguousarray(y, dtype=self.dtype)
        _check_finite(yc, y, who, "targets", plural=True)
        return yc

    def _forward(self, x: np.ndarray) -> np.ndarray:
        """The last layer's output: the logits when it handed its softmax to the loss layer."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def _predict_batch(self, x: np.ndarray) -> np.ndarray:
        """The model's output: the last layer's, with the softmax it handed to the loss layer (if it
        did, at compile) applied."""
        z = self._forward(x)
        return self._loss_layer.output(z) if self._softmax_in_loss else z

    def _backward(self, dout) -> None:
        d = self._loss_layer.backward(dout)
        for layer in reversed(self.layers):
            d = layer.backward(d)

    def _correct(self, z: np.ndarray, t: np.ndarray) -> int:
        if z.shape[1] == 1:  # binary (sigmoid output)
            pred = z[:, 0] > 0.5
            tt = t.reshape(-1) > 0.5 if t.ndim == 2 else t > 0
            return int(np.count_nonzero(pred == tt))
        pred = z.argmax(axis=1)
        tt = t if t.ndim == 1 else t.argmax(axis=1)
        return int(np.count_nonzero(pred == tt))

    def _train_step(self, x: np.ndarray, t: np.ndarray) -> tuple[float, int]:
        """Forward, loss, and (only if the loss is finite) backward and the optimizer's update.
        Returns (loss, #correct); with a NaN or infinite loss nothing is changed: no parameter
        gradient is computed and the weights and the optimizer's state stay as they were."""
        z = self._forward(x)
        loss = self._loss_layer.forward(z, t)
        if not math.isfinite(loss):  # one scalar test per step, before any grads are written
            return loss, 0
        correct = self._correct(z, t) if self.metrics else 0
        self._backward(1.0)
        self.optimizer.update(self.params, self.grads)
        return loss, correct

    def train_on_batch(self, x: np.ndarray, t: np.ndarray) -> tuple[float, int]:
        """One training step on a prepared batch (float, contiguous; int64 labels). Returns (loss, #correct).
        A NaN or infinite loss raises ``FloatingPointError`` and the step is not applied."""
        loss, correct = self._train_step(x, t)
        if not math.isfinite(loss):
            raise FloatingPointError(f"train_on_batch: the loss is {loss}; the step was not applied")
        return loss, correct

    # -- DLFS2 model protocol (Trainer) ---------------------------------------------------------
    def forward(self, x: np.ndarray, t: np.ndarray | None = None):
        """Without ``t``: the model output (like predict, no copy). With ``t``: the loss (for ``backward``)."""
        x = self._prepare_x(x, "forward")
        if t is None:
            return self._predict_batch(x)
        self._require_compiled("forward")
        t = self._prepare_y(t, len(x), "forward")
        self._loss_ready = False
        loss = self._loss_layer.forward(self._forward(x), t)
        self._loss_ready = True
        return loss

    def backward(self, dout: float = 1.0) -> None:
        """Gradients of ``dout`` times the loss of the last ``forward(x, t)``, written into ``grads``."""
        if not self._loss_ready:
            raise RuntimeError("backward: call forward(x, t) first")
        self._backward(dout)

    # -- Keras API ------------------------------------------------------------------------------
    def fit(self, x, y, epochs: int = 1, batch_size: int | None = None, validation_data=None,
            validation_split: float = 0.0, shuffle: bool = True, verbose: int = 1, comm=None) -> History:
        """Train for ``epochs`` passes over (x, y); returns a :class:`History`. Keras's semantics:
        ``batch_size=None`` is 32; ``validation_split`` takes the last samples (before shuffling), from
        ``floor(n * (1 - validation_split))`` on, as Keras splits.

        Bad data is refused before the first step, with the model left exactly as it was (weights,
        optimizer state, random generator; an unbuilt model stays unbuilt): x and y (and
        ``validation_data``) of different lengths, NaN or infinity in x or in float targets (a value
        that overflows the model's dtype included), class labels outside ``[0, outputs)``, targets of
        the wrong shape. The finiteness check reads x once per call (in blocks, no full-size temporary).

        A loss that becomes NaN or infinite stops training with ``FloatingPointError`` (Keras would go
        on with NaN weights). The step that produced it is not applied: the weights and the optimizer's
        state are those after the previous step (as they were before the call, if it is the first
        step); the steps before it stay applied. The error's ``history`` attribute is the
        :class:`History` of the epochs completed before it. A finite loss with a gradient that
        overflows is not detected until the next step's loss (the gradients are not scanned).

        ``comm`` (an mpi4py communicator of K >= 2 ranks, e.g. ``MPI.COMM_WORLD`` under
        ``mpiexec -n K``): data-parallel training (:mod:`pykernels.distributed`). Every rank passes the
        same (x, y); rank 0's weights and random generator are copied to every rank, each global batch
        of ``batch_size`` samples is split between the ranks, the gradients are summed with one
        ``Allreduce`` per step and every rank applies the same update, so the weights equal a
        one-process run within float rounding. Losses and metrics are over the global batches, only
        rank 0 prints, and an argument error on any rank is raised on every rank before training; a
        rank that fails during training aborts the MPI job instead of leaving the others waiting."""
        if comm is not None:
            return self._fit_distributed(x, y, comm, epochs=epochs, batch_size=batch_size,
                                         validation_data=validation_data, validation_split=validation_split,
                                         shuffle=shuffle, verbose=verbose)
        self._require_compiled("fit")
        batch_size = _fit_batch_size(epochs, batch_size)
        if not 0.0 <= float(validation_split) < 1.0:
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
        # every argument is checked before the model is built or trained
        x = self._prepare_x(x, "fit", build=False)
        y = self._prepare_y(y, len(x), "fit", input_dim=x.shape[1])
        if validation_split and validation_data is None:
            split_at = int(math.floor(len(x) * (1.0 - float(validation_split))))
            if split_at in (0, len(x)):
                raise ValueError(f"fit: training data contains {len(x)} samples, which is not sufficient to split "
                                 f"it into a validation and training set as specified by "
                                 f"validation_split={validation_split}")
            validation_data = (x[split_at:], y[split_at:])
            x, y = x[:split_at], y[:split_at]
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError(f"fit: validation_data must be a tuple (x_val, y_val), got "
                                 f"{type(validation_data).__name__}"
                                 + (f" of length {len(validation_data)}"
                                    if isinstance(validation_data, (tuple, list)) else ""))
            xv = self._prepare_x(validation_data[0], "fit(validation_data)", build=False, input_dim=x.shape[1])
            yv = self._prepare_y(validation_data[1], len(xv), "fit(validation_data)", input_dim=x.shape[1])
            if len(xv) == 0:
                raise ValueError("fit(validation_data): no validation samples")
        n = len(x)
        if n == 0:
            raise ValueError("fit: no training samples")
        if not self.built:
            self.build(x.shape[1])
        bs = int(batch_size)
        steps = (n + bs - 1) // bs
        hist = History()
        hist.params = {"epochs": int(epochs), "steps": steps, "batch_size": bs, "verbose": verbose}
        if shuffle:  # the shuffled batches are gathered into these, one allocation per call
            xbuf = np.empty((min(bs, n), x.shape[1]), dtype=x.dtype)
            ybuf = np.empty((min(bs, n), *y.shape[1:]), dtype=y.dtype)
        for epoch in range(int(epochs)):
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}", flush=True)
            bar = Progbar(steps, verbose=verbose)
            t0 = time.perf_counter()
            order = self.rng.permutation(n) if shuffle else None
            loss_sum = 0.0
            correct = 0
            seen = 0
            for s in range(steps):
                a, b = s * bs, min(n, (s + 1) * bs)
                if order is None:
                    xb, yb = x[a:b], y[a:b]
                else:
                    idx = order[a:b]
                    xb = np.take(x, idx, axis=0, mode="clip", out=xbuf[:b - a])
                    yb = np.take(y, idx, axis=0, mode="clip", out=ybuf[:b - a])
                loss, c = self._train_step(xb, yb)
                if not math.isfinite(loss):
                    raise _nan_loss_error(loss, epoch, s, hist)
                loss_sum += loss * (b - a)
                correct += c
                seen += b - a
                logs = {"loss": loss_sum / seen}
                if self.metrics:
                    logs[self.metrics[0]] = correct / seen
                if verbose:
                    bar.update(s + 1, logs, finalize=False)
            seconds = time.perf_counter() - t0
            if validation_data is not None:
                vl = self.evaluate(xv, yv, batch_size=max(bs, 256), verbose=0, _prepared=True)
                if self.metrics:
                    logs["val_loss"], logs["val_" + self.metrics[0]] = vl
                else:
                    logs["val_loss"] = vl
            if verbose:
                bar.update(steps, logs, finalize=True)
            hist._append(epoch, logs, seconds)
        return hist

    def evaluate(self, x, y, batch_size: int | None = None, verbose: int = 0, return_dict: bool = False,
                 _prepared: bool = False, comm=None):
        """``[loss, accuracy]`` (or the loss alone without metrics) over (x, y); with ``return_dict``
        ``{"loss": ..., "accuracy": ...}`` (the metric under the name compile was given); ``batch_size=None``
        is 32. With ``comm`` (see :meth:`fit`) every rank passes the same (x, y), evaluates its part
        of the samples, and every rank returns the figures over all of them."""
        self._require_compiled("evaluate")
        batch_size = 32 if batch_size is None else batch_size
        dp = None
        if comm is not None:
            from .distributed import DataParallel

            dp = DataParallel(comm)
            dp.check_same("the shapes of x and y", (np.shape(x), np.shape(y)))
        if not _prepared:
            x = self._prepare_x(x, "evaluate")
            y = self._prepare_y(y, len(x), "evaluate")
        if len(x) == 0:
            raise ValueError("evaluate: no samples")
        n_all = len(x)
        if dp is not None:
            part = dp.part(n_all)
            x, y = x[part], y[part]
        bs = max(int(batch_size), 1)
        loss_sum, correct = 0.0, 0
        self._loss_ready = False
        for a in range(0, len(x), bs):
            xb, yb = x[a:a + bs], y[a:a + bs]
            z = self._forward(xb)
            loss_sum += self._loss_layer.forward(z, yb) * len(xb)
            if self.metrics:
                correct += self._correct(z, yb)
        if dp is not None:
            loss_sum, correct = dp.sum([loss_sum, correct])
            correct = int(round(correct))
            if dp.rank != 0:
                verbose = 0
        loss = loss_sum / n_all
        if verbose:
            print(f"loss: {loss:.4f}" + (f" - {self.metrics[0]}: {correct / n_all:.4f}" if self.metrics else ""))
        if return_dict:
            return {"loss": loss, **({self.metrics[0]: correct / n_all} if self.metrics else {})}
        return [loss, correct / n_all] if self.metrics else loss

    def _fit_distributed(self, x, y, comm, *, epochs, batch_size, validation_data, validation_split, shuffle,
                         verbose) -> History:
        """fit(..., comm=comm): see :meth:`fit` and :mod:`pykernels.distributed`."""
        from .distributed import DataParallel

        dp = DataParallel(comm)
        # The first collective needs nothing that can fail: ranks with data of other shapes all stop here.
        dp.check_same("the shapes of x and y", (np.shape(x), np.shape(y)))
        # Argument checks run on every rank; if any rank's fail, every rank raises (none is left waiting).
        err = None
        try:
            self._require_compiled("fit")
            batch_size = _fit_batch_size(epochs, batch_size)
            if validation_split or validation_data is not None:
                raise NotImplementedError("fit(comm=...): validation_data / validation_split are not supported; "
                                          "call evaluate(x_val, y_val, comm=comm) after fit")
            x = self._prepare_x(x, "fit", build=False)
            y = self._prepare_y(y, len(x), "fit", input_dim=x.shape[1])
            if len(x) == 0:
                raise ValueError("fit: no training samples")
        except Exception as e:  # noqa: BLE001 - re-raised below, on every rank
            err = e
        failed = comm.allgather(None if err is None else f"{type(err).__name__}: {err}")
        if err is not None:
            raise err
        bad = [(r, m) for r, m in enumerate(failed) if m is not None]
        if bad:
            raise ValueError("fit(comm=...): the arguments failed their checks on "
                             + "; ".join(f"rank {r} ({m})" for r, m in bad))
        if not self.built:
            self.build(x.shape[1])
        dp.check_same("the model's parameter shapes and dtypes",
                      [(p.shape, str(p.dtype)) for p in self.params] + [int(batch_size), int(epochs), bool(shuffle)])
        dp.broadcast_arrays(self.params)  # rank 0's initial weights everywhere
        self.rng.bit_generator.state = dp.bcast(self.rng.bit_generator.state)  # the same shuffles
        if dp.rank != 0:
            verbose = 0
        n, bs = len(x), int(batch_size)
        steps = (n + bs - 1) // bs
        hist = History()
        hist.params = {"epochs": int(epochs), "steps": steps, "batch_size": bs, "verbose": verbose,
                       "ranks": dp.size}
        grads = self.grads
        with dp.abort_on_error():
            for epoch in range(int(epochs)):
                if verbose:
                    print(f"Epoch {epoch + 1}/{epochs}", flush=True)
                bar = Progbar(steps, verbose=verbose)
                t0 = time.perf_counter()
                order = self.rng.permutation(n) if shuffle else None
                loss_sum = 0.0
                correct = 0
                for s in range(steps):
                    a, b = s * bs, min(n, (s + 1) * bs)
                    part = dp.part(b - a)  # this rank's samples of the global batch
                    idx = np.arange(a, b)[part] if order is None else order[a:b][part]
                    nl = len(idx)
                    loss_l, c = 0.0, 0
                    if nl:
                        xb, yb = np.take(x, idx, axis=0), np.take(y, idx, axis=0)
                        z = self._forward(xb)
                        loss_l = self._loss_layer.forward(z, yb)
                        c = self._correct(z, yb) if self.metrics else 0
                    total = dp.sum([loss_l * nl, c])
                    loss = float(total[0]) / (b - a)
                    if not math.isfinite(loss):  # the same on every rank: all raise, none waits
                        e = _nan_loss_error(loss, epoch, s, hist)
                        e.pk_collective = True
                        raise e
                    if nl:
                        self._backward(1.0)
                    else:
                        for g in grads:
                            g[...] = 0
                    dp.allreduce_grads(grads, nl / (b - a))
                    self.optimizer.update(self.params, grads)
                    loss_sum += loss * (b - a)
                    correct += int(round(total[1]))
                    logs = {"loss": loss_sum / b}
                    if self.metrics:
                        logs[self.metrics[0]] = correct / b
                    if verbose:
                        bar.update(s + 1, logs, finalize=False)
                seconds = time.perf_counter() - t0
                if verbose:
                    bar.update(steps, logs, finalize=True)
                hist._append(epoch, logs, seconds)
        return hist

    def predict(self, x, batch_size: int | None = None, verbose: int = 0, comm=None) -> np.ndarray:
        """The model output (after the last activation) for every sample, as a new (N, units) array;
        ``batch_size=None`` is 32. With ``comm`` (see :meth:`fit`) every rank passes the same x,
        predicts its part of the samples, and every rank returns the whole (N, units) array."""
        batch_size = 32 if batch_size is None else batch_size
        dp = None
        if comm is not None:
            from .distributed import DataParallel

            dp = DataParallel(comm)
            dp.check_same("the shape of x", np.shape(x))
        x = self._prepare_x(x, "predict")
        out = np.empty((len(x), self.output_dim), dtype=self.dtype)
        part = dp.part(len(x)) if dp is not None else slice(0, len(x))
        bs = max(int(batch_size), 1)
        for a in range(part.start, part.stop, bs):
            b = min(a + bs, part.stop)
            out[a:b] = self._predict_batch(x[a:b])
        if dp is not None:
            dp.allgather_rows(out)
        return out

    def __call__(self, x) -> np.ndarray:
        return self.predict(x, batch_size=max(len(x), 1))

    def count_params(self) -> int:
        return int(sum(p.size for p in self.params))

    def summary(self, print_fn=print) -> None:
        """Keras-style table of layers, output shapes and parameter counts."""
        if not self.built and self.input_dim is not None:
            self.build()
        line, thick = "_" * 65, "=" * 65
        print_fn(f'Model: "{self.name}"')
        print_fn(line)
        print_fn(f" {'Layer (type)':<28}{'Output Shape':<26}{'Param #'}")
        print_fn(thick)
        d = self.input_dim
        for layer in self.layers:
            d = _output_dim(layer, d) if d is not None else None
            shape = f"(None, {d})" if d is not None else "(unbuilt)"
            n_params = int(sum(p.size for p in _params(layer)))
            print_fn(f" {_layer_name(layer) + ' (' + type(layer).__name__ + ')':<28}{shape:<26}{n_params}")
        print_fn(thick)
        total = self.count_params()
        print_fn(f"Total params: {total:,}")
        print_fn(f"Trainable params: {total:,}")
        print_fn("Non-trainable params: 0")
        print_fn(line)

    # -- weights --------------------------------------------------------------------------------
    def _weight_items(self):
        for i, layer in enumerate(self.layers):
            params = _params(layer)
            names = getattr(layer, "param_names", None) or [f"param{j}" for j in range(len(params))]
            for pn, p in zip(names, params):
                yield f"{i:02d}_{_layer_name(layer)}/{pn}", p

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every parameter, layer by layer (Keras's order: each layer's kernel, then bias)."""
        return [p.copy() for p in self.params]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Copy ``weights`` (as :meth:`get_weights` returns them) into the parameters, in place (an
        optimizer keeps its references); the count and every shape must match."""
        if not self.built:
            self.build()
        assign_weights(self.params, weights, "Sequential.set_weights")

    def save_weights(self, path: str | Path) -> None:
        """Write every parameter to ``path`` exactly as given (NumPy ``.npz`` format, whatever the
        suffix; names ``<index>_<layer>/<param>``); :meth:`load_weights` reads the same path."""
        if not self.built:
            raise RuntimeError("save_weights: the model has no weights yet (build it or fit it first)")
        with open(path, "wb") as fh:  # a file object: np.savez would append ".npz" to a name
            np.savez(fh, **dict(self._weight_items()))

    def load_weights(self, path: str | Path) -> None:
        """Read weights written by :meth:`save_weights` into the existing arrays (in place, so an
        optimizer keeps its references). Names, shapes must match; dtypes are cast to the model's."""
        if not self.built:
            self.build()
        with np.load(path, allow_pickle=False) as f:
            items = dict(self._weight_items())
            missing = sorted(set(items) - set(f.files))
            extra = sorted(set(f.files) - set(items))
            if missing or extra:
                raise ValueError(f"load_weights: the file does not match the model: missing {missing}, "
                                 f"unexpected {extra}")
            for k, p in items.items():
                a = f[k]
                if a.shape != p.shape:
                    raise ValueError(f"load_weights: {k} has shape {a.shape} in the file but {p.shape} in the model")
                p[...] = a

    def __repr__(self) -> str:
        return f"Sequential([{', '.join(map(repr, self.layers))}], backend={self.backend!r})"
