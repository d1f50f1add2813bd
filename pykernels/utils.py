"""Small helpers: ``to_categorical`` (Keras) and a Keras-style progress bar.

>>> from pykernels.utils import to_categorical
>>> to_categorical([1, 0], 2)
array([[0., 1.],
       [1., 0.]], dtype=float32)
"""

from __future__ import annotations

import sys
import time

import numpy as np

__all__ = ["Progbar", "to_categorical"]


def to_categorical(y, num_classes: int | None = None, dtype="float32") -> np.ndarray:
    """One-hot encode class indices, as ``keras.utils.to_categorical``.

    >>> to_categorical([0, 2], 3)
    array([[1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    y = np.asarray(y)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError("to_categorical: y must hold integer class indices")
        y = y.astype(np.int64)
    elif y.dtype.kind not in "iu":
        raise TypeError(f"to_categorical: y must hold integer class indices, got dtype {y.dtype}")
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y.reshape(y.shape[:-1])
    shape = y.shape
    y = y.ravel()
    if y.size and y.min() < 0:
        raise ValueError(f"to_categorical: negative class index {int(y.min())}")
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    elif y.size and y.max() >= num_classes:
        raise ValueError(f"to_categorical: class index {int(y.max())} is out of range for {num_classes} classes")
    out = np.zeros((y.size, num_classes), dtype=dtype)
    out[np.arange(y.size), y] = 1
    return out.reshape((*shape, num_classes))


def _fmt_time(s: float) -> str:
    if s >= 3600:
        return f"{int(s // 3600)}:{int(s % 3600 // 60):02d}:{int(s % 60):02d}"
    if s >= 60:
        return f"{int(s // 60)}:{int(s % 60):02d}"
    return f"{s:.0f}s"


def _fmt_step(s: float) -> str:
    if s >= 1:
        return f"{s:.0f}s/step"
    if s >= 1e-3:
        return f"{s * 1e3:.0f}ms/step"
    return f"{s * 1e6:.0f}us/step"


class Progbar:
    """Keras's per-epoch progress bar: ``469/469 [====] - 2s 4ms/step - loss: 0.2612 - accuracy: 0.9245``.

    Uses ``tqdm`` when it is installed (and ``use_tqdm`` is not False), otherwise a minimal bar of
    its own. Redraws at most every ``interval`` seconds; ``verbose=0`` prints nothing, ``verbose=2``
    one line at the end.
    """

    def __init__(self, target: int, verbose: int = 1, interval: float = 0.1, file=None,
                 use_tqdm: bool | None = None) -> None:
        self.target = int(target)
        self.verbose = verbose
        self.interval = interval
        self.file = file if file is not None else sys.stdout
        self.start = time.perf_counter()
        self._last = 0.0
        self._width = 0
        # Not a terminal (a log file, a pipe): like Keras, print the final line of the epoch only.
        self._dynamic = bool(getattr(self.file, "isatty", lambda: False)())
        self._tqdm = None
        if verbose == 1 and use_tqdm is not False and self._dynamic:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._tqdm = tqdm(total=self.target, file=self.file, ncols=110, ascii=" =", mininterval=interval,
                                  unit="step", bar_format="{n_fmt}/{total_fmt} [{bar:30}] - {elapsed} "
                                                          "{rate_inv_fmt}{postfix}")

    def _line(self, current: int, values: dict[str, float]) -> str:
        elapsed = time.perf_counter() - self.start
        w = 30
        done = int(w * current / self.target) if self.target else w
        bar = "=" * max(done - 1, 0) + (">" if current < self.target else "=") * (done > 0) + "." * (w - done)
        per = elapsed / max(current, 1)
        if current < self.target:
            timing = f"ETA: {_fmt_time(per * (self.target - current))}"
        else:
            timing = f"{_fmt_time(elapsed)} {_fmt_step(per)}"
        metrics = "".join(f" - {k}: {v:.4f}" for k, v in values.items())
        n = len(str(self.target))
        return f"{current:{n}d}/{self.target} [{bar}] - {timing}{metrics}"

    def update(self, current: int, values: dict[str, float], finalize: bool = False) -> None:
        if self.verbose == 0:
            return
        if self._tqdm is not None:
            self._tqdm.n = current
            self._tqdm.set_postfix_str(" - ".join(f"{k}: {v:.4f}" for k, v in values.items()), refresh=False)
            if finalize:
                self._tqdm.close()  # draws the final state once
            else:
                self._tqdm.update(0)  # redraws at most every `interval` seconds
            return
        now = time.perf_counter()
        if self.verbose == 2 or not self._dynamic:
            if finalize:
                print(self._line(current, values), file=self.file, flush=True)
            return
        if finalize or now - self._last >= self.interval:
            self._last = now
            end = "\n" if finalize else ""
            line = self._line(current, values)
            pad = " " * max(self._width - len(line), 0)  # erase what a longer previous line left
            self._width = len(line)
            print("\r" + line + pad, end=end, file=self.file, flush=True)
