"""``Trainer`` of "Deep Learning from Scratch 2" (``common/trainer.py``) on the pykernels optimizers.

The model is anything with the DLFS2 protocol: ``forward(x, t) -> loss``, ``backward()``, ``params``,
``grads`` (a :class:`~pykernels.models.Sequential` after ``compile`` qualifies, so does a hand-written
``TwoLayerNet`` of :mod:`pykernels.layers`).

>>> import numpy as np
>>> from pykernels import Trainer, optimizers
>>> from pykernels.layers import Affine, Sigmoid, SoftmaxWithLoss
>>> class Net:
...     def __init__(self):
...         rng = np.random.default_rng(0)
...         self.layers = [Affine(rng.standard_normal((2, 8)).astype("f") * 0.1, np.zeros(8, "f")), Sigmoid(),
...                        Affine(rng.standard_normal((8, 3)).astype("f") * 0.1, np.zeros(3, "f"))]
...         self.loss_layer = SoftmaxWithLoss()
...         self.params = [p for l in self.layers for p in l.params]
...         self.grads = [g for l in self.layers for g in l.grads]
...     def forward(self, x, t):
...         for l in self.layers:
...             x = l.forward(x)
...         return self.loss_layer.forward(x, t)
...     def backward(self, dout=1.0):
...         dout = self.loss_layer.backward(dout)
...         for l in reversed(self.layers):
...             dout = l.backward(dout)
>>> x = np.random.default_rng(1).random((60, 2), dtype=np.float32); t = (x[:, 0] * 3).astype(int)
>>> tr = Trainer(Net(), optimizers.SGD(learning_rate=1.0))
>>> tr.fit(x, t, max_epoch=2, batch_size=20, eval_interval=None)
>>> tr.current_epoch
2
"""

from __future__ import annotations

import math
import time

import numpy as np

from . import optimizers as optimizers_mod
from .models import Sequential, _first_nonfinite_row

__all__ = ["Trainer", "clip_grads", "remove_duplicate"]


def remove_duplicate(params: list[np.ndarray], grads: list[np.ndarray]):
    """Tied weights (the same array listed twice): keep one, sum their gradients (DLFS2)."""
    seen: dict[int, int] = {}
    out_p: list[np.ndarray] = []
    out_g: list[np.ndarray] = []
    for p, g in zip(params, grads):
        j = seen.get(id(p))
        if j is None:
            seen[id(p)] = len(out_p)
            out_p.append(p)
            out_g.append(g)
        else:
            if out_g[j] is grads[[id(q) for q in params].index(id(p))]:
                out_g[j] = out_g[j].copy()  # do not accumulate into a layer's own grad buffer
            out_g[j] += g
    return out_p, out_g


def clip_grads(grads: list[np.ndarray], max_norm: float) -> None:
    """Scale every gradient in place so that their global L2 norm is at most ``max_norm``."""
    total = float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads)))
    rate = max_norm / (total + 1e-6)
    if rate < 1:
        for g in grads:
            g *= g.dtype.type(rate)


class Trainer:
    """``Trainer(model, optimizer).fit(x, t, max_epoch, batch_size, max_grad=None, eval_interval=20)``.

    Prints ``| epoch 1 |  iter 1 / 10 | time 0[s] | loss 1.10`` every ``eval_interval`` iterations
    (``eval_interval=None``: silent) and records the average loss in ``loss_list``; ``plot()`` draws it.
    The model is the book's: ``params`` and ``grads`` lists, ``forward(x, t)`` returning the loss,
    ``backward()``.

    >>> import numpy as np, pykernels as pk
    >>> from pykernels.layers import Affine, SoftmaxWithLoss
    >>> class Net:
    ...     def __init__(self):
    ...         self.affine, self.loss = Affine(np.zeros((2, 3), "f"), np.zeros(3, "f")), SoftmaxWithLoss()
    ...         self.params, self.grads = self.affine.params, self.affine.grads
    ...     def forward(self, x, t):
    ...         return self.loss.forward(self.affine.forward(x), t)
    ...     def backward(self, dout=1):
    ...         return self.affine.backward(self.loss.backward(dout))
    >>> x, t = pk.datasets.spiral.load_data()
    >>> trainer = pk.Trainer(Net(), "sgd", seed=0)
    >>> trainer.fit(x.astype("f"), t, max_epoch=1, batch_size=30, eval_interval=5)  # doctest: +ELLIPSIS
    | epoch 1 |  iter 1 / 10 | time ...[s] | loss 1.10
    | epoch 1 |  iter 6 / 10 | time ...[s] | loss 1.10
    >>> len(trainer.loss_list)
    2
    """

    def __init__(self, model, optimizer="sgd", seed: int | None = None) -> None:
        self.model = model
        self.optimizer = optimizers_mod.get(optimizer)
        backend = getattr(model, "_k", None)
        if backend is not None:
            self.optimizer.set_backend(backend)
        self.loss_list: list[float] = []
        self.eval_interval: int | None = None
        self.current_epoch = 0
        self.rng = np.random.default_rng(seed)

    def fit(self, x, t, max_epoch: int = 10, batch_size: int = 32, max_grad: float | None = None,
            eval_interval: int | None = 20) -> None:
        """``max_epoch`` passes of ``len(x) // batch_size`` shuffled batches. Before the first step: x and
        t of different lengths, NaN or infinity in float x or t, and (for a compiled
        :class:`~pykernels.models.Sequential`) everything its ``fit`` refuses, are a ValueError with the
        model and optimizer untouched. A NaN or infinite loss raises ``FloatingPointError`` before that
        step's backward pass and update: the weights and the optimizer's state are those after the
        previous step, and ``loss_list`` holds only finite averages."""
        x = np.asarray(x)
        t = np.asarray(t)
        if len(x) != len(t):
            raise ValueError(f"Trainer.fit: x and t have different lengths: {len(x)} and {len(t)}")
        if batch_size <= 0 or batch_size > len(x):
            raise ValueError(f"Trainer.fit: batch_size must be in [1, {len(x)}], got {batch_size}")
        model = self.model
        if isinstance(model, Sequential) and model.optimizer is not None and model.loss is not None:
            x = model._prepare_x(x, "Trainer.fit", build=False)  # in the model's dtype, checked once
            t = model._prepare_y(t, len(x), "Trainer.fit", input_dim=x.shape[1])
        else:
            for name, a in (("x", x), ("t", t)):
                r = _first_nonfinite_row(a) if a.dtype.kind == "f" else None
                if r is not None:
                    raise ValueError(f"Trainer.fit: {name} contains NaN or infinity (first at sample {r})")
        if x.dtype == np.float64 and getattr(model, "params", None) and model.params[0].dtype == np.float32:
            x = x.astype(np.float32)  # once, not per batch
        data_size = len(x)
        max_iters = data_size // batch_size
        self.eval_interval = eval_interval
        optimizer = self.optimizer
        total_loss, loss_count = 0.0, 0
        start = time.time()
        for _ in range(max_epoch):
            idx = self.rng.permutation(data_size)
            x, t = x[idx], t[idx]
            for iters in range(max_iters):
                bx = x[iters * batch_size:(iters + 1) * batch_size]
                bt = t[iters * batch_size:(iters + 1) * batch_size]
                loss = model.forward(bx, bt)
                if not math.isfinite(loss):  # before the backward pass and the update
                    raise FloatingPointError(
                        f"Trainer.fit: the loss became {float(loss)} at epoch {self.current_epoch + 1}, "
                        f"iter {iters + 1} (that step was not applied); lower the learning rate or check the data")
                model.backward()
                params, grads = remove_duplicate(model.params, model.grads)
                if max_grad is not None:
                    clip_grads(grads, max_grad)
                optimizer.update(params, grads)
                total_loss += float(loss)
                loss_count += 1
                if eval_interval is not None and iters % eval_interval == 0:
                    avg = total_loss / loss_count
                    print(f"| epoch {self.current_epoch + 1} |  iter {iters + 1} / {max_iters} | "
                          f"time {int(time.time() - start)}[s] | loss {avg:.2f}", flush=True)
                    self.loss_list.append(float(avg))
                    total_loss, loss_count = 0.0, 0
            self.current_epoch += 1

    def plot(self, path: str | None = None, ylim=None) -> None:
        """Plot ``loss_list`` (to ``path`` when given, else on screen). Needs matplotlib."""
        try:
            import matplotlib

            if path is not None:
                matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError("Trainer.plot needs matplotlib: pip install 'pykernels[plot]' "
                              "(or pip install matplotlib)") from None
        xs = np.arange(len(self.loss_list))
        if ylim is not None:
            plt.ylim(*ylim)
        plt.plot(xs, self.loss_list, label="train")
        plt.xlabel(f"iterations (x{self.eval_interval})")
        plt.ylabel("loss")
        if path is not None:
            plt.savefig(path)
            plt.close()
        else:
            plt.show()
