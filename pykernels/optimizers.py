"""Optimizers with Keras 3's formulas, each ``update(params, grads)`` one fused C++ pass per parameter.

The updates work in place on the very arrays the layers hold (DLFS2's protocol). State (velocities,
moments) is created at the first ``update`` and kept per parameter position. Formulas, from
keras/src/optimizers/{sgd,rmsprop,adam,adagrad}.py:

* ``SGD``: ``w -= lr*g``; with momentum ``m = momentum*m - lr*g; w += m``
  (nesterov: ``w += momentum*m - lr*g``). Default lr 0.01.
* ``RMSprop``: ``v = rho*v + (1-rho)*g**2; w -= lr*g / sqrt(v + eps)`` (epsilon INSIDE the square
  root; PyTorch adds it outside). Defaults lr 1e-3, rho 0.9, eps 1e-7.
* ``Adam``: ``m += (g-m)*(1-b1); v += (g**2-v)*(1-b2); w -= m*alpha / (sqrt(v) + eps)`` with
  ``alpha = lr*sqrt(1-b2**t)/(1-b1**t)``. Defaults lr 1e-3, b1 0.9, b2 0.999, eps 1e-7.
* ``Adagrad``: ``acc += g**2; w -= lr*g / sqrt(acc + eps)``, acc starts at 0.1. Defaults lr 1e-3, eps 1e-7.

>>> import numpy as np
>>> from pykernels.optimizers import SGD
>>> w = np.ones(3, np.float32); g = np.full(3, 0.5, np.float32)
>>> SGD(learning_rate=0.1).update([w], [g]); w
array([0.95, 0.95, 0.95], dtype=float32)
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from ._kernels import get_backend

__all__ = ["SGD", "Adagrad", "Adam", "Optimizer", "RMSprop", "get"]


def _check_rate(name: str, v: float, *, upper: float | None = None) -> float:
    v = float(v)
    if not math.isfinite(v) or v < 0 or (upper is not None and v >= upper):
        rng = f"[0, {upper})" if upper is not None else ">= 0"
        raise ValueError(f"Invalid {name}: {v} (must be finite and {rng})")
    return v


class Optimizer:
    """Base class: validates params/grads, owns per-parameter state, counts ``iterations``."""

    _slots: tuple[str, ...] = ()

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = _check_rate("learning rate", learning_rate)
        self.iterations = 0
        self._k: SimpleNamespace = get_backend("native")
        self._state: list[dict[str, np.ndarray]] | None = None

    def set_backend(self, backend: str | SimpleNamespace) -> None:
        self._k = get_backend(backend) if isinstance(backend, str) else backend

    def _init_slot(self, name: str, p: np.ndarray) -> np.ndarray:
        return np.zeros_like(p, order="C")

    def _build(self, params) -> None:
        self._state = [{s: self._init_slot(s, p) for s in self._slots} for p in params]

    def update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """One step on every (param, grad) pair, in place on ``params``."""
        if len(params) != len(grads):
            raise ValueError(f"update: got {len(params)} params but {len(grads)} grads")
        for i, (p, g) in enumerate(zip(params, grads)):
            if not isinstance(p, np.ndarray) or not isinstance(g, np.ndarray):
                raise TypeError(f"update: params[{i}] and grads[{i}] must be numpy arrays")
            if p.shape != g.shape:
                raise ValueError(f"update: params[{i}] has shape {p.shape} but grads[{i}] has {g.shape}")
        if self._state is None:
            self._build(params)
        elif len(self._state) != len(params) or any(
            next(iter(s.values())).shape != p.shape for s, p in zip(self._state, params) if s
        ):
            raise ValueError("update: the parameter list changed since the first update; "
                             "use a new optimizer for a different model")
        self.iterations += 1
        for p, g, s in zip(params, grads, self._state):
            self._update_one(p, g, s)

    def _update_one(self, p, g, s) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum, Keras's formula (see module doc)."""

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(learning_rate)
        self.momentum = _check_rate("momentum", momentum, upper=1.0 + 1e-12)
        self.nesterov = bool(nesterov)
        self._slots = ("velocity",) if self.momentum else ()

    def _update_one(self, p, g, s) -> None:
        self._k.sgd_update(p, g, learning_rate=self.learning_rate, momentum=self.momentum,
                           velocity=s.get("velocity"), nesterov=self.nesterov)

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    """Keras RMSprop (epsilon inside the square root; optional plain momentum)."""

    def __init__(self, learning_rate: float = 1e-3, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7) -> None:
        super().__init__(learning_rate)
        self.rho = _check_rate("rho", rho, upper=1.0 + 1e-12)
        self.momentum = _check_rate("momentum", momentum, upper=1.0 + 1e-12)
        self.epsilon = _check_rate("epsilon", epsilon)
        self._slots = ("velocity", "momentum") if self.momentum else ("velocity",)

    def _update_one(self, p, g, s) -> None:
        self._k.rmsprop_update(p, g, s["velocity"], learning_rate=self.learning_rate, rho=self.rho,
                               epsilon=self.epsilon, momentum=self.momentum, momentums=s.get("momentum"))

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon}


class Adam(Optimizer):
    """Keras Adam (bias correction folded into the step size; optional AMSGrad)."""

    def __init__(self, learning_rate: float = 1e-3, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False) -> None:
        super().__init__(learning_rate)
        self.beta_1 = _check_rate("beta_1", beta_1, upper=1.0)
        self.beta_2 = _check_rate("beta_2", beta_2, upper=1.0)
        self.epsilon = _check_rate("epsilon", epsilon)
        self.amsgrad = bool(amsgrad)
        self._slots = ("m", "v", "vhat") if amsgrad else ("m", "v")

    def _update_one(self, p, g, s) -> None:
        t = self.iterations  # already incremented: Keras's local_step = iterations + 1
        alpha = self.learning_rate * math.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        self._k.adam_update(p, g, s["m"], s["v"], alpha=alpha, beta_1=self.beta_1, beta_2=self.beta_2,
                            epsilon=self.epsilon, vhat=s.get("vhat"))

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class Adagrad(Optimizer):
    """Keras Adagrad (accumulator starts at ``initial_accumulator_value``)."""

    _slots = ("accumulator",)

    def __init__(self, learning_rate: float = 1e-3, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7) -> None:
        super().__init__(learning_rate)
        self.initial_accumulator_value = _check_rate("initial_accumulator_value", initial_accumulator_value)
        self.epsilon = _check_rate("epsilon", epsilon)

    def _init_slot(self, name, p):
        return np.full_like(p, self.initial_accumulator_value, order="C")

    def _update_one(self, p, g, s) -> None:
        self._k.adagrad_update(p, g, s["accumulator"], learning_rate=self.learning_rate, epsilon=self.epsilon)

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate,
                "initial_accumulator_value": self.initial_accumulator_value, "epsilon": self.epsilon}


_BY_NAME = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adagrad": Adagrad}


def get(opt: str | Optimizer) -> Optimizer:
    """An optimizer by Keras name (default settings) or an instance as is."""
    if isinstance(opt, Optimizer):
        return opt
    if isinstance(opt, str) and opt.lower() in _BY_NAME:
        return _BY_NAME[opt.lower()]()
    raise ValueError(f"unknown optimizer {opt!r}; use one of {sorted(_BY_NAME)} or an Optimizer instance")
