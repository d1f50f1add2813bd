"""Layers with one protocol, as in "Deep Learning from Scratch" (DLFS1/DLFS2 ``common/layers.py``).

Every layer has ``params`` and ``grads`` (lists of same-shape arrays; ``backward`` OVERWRITES the
grads in place, so an optimizer that holds them sees the new values), ``forward(x)`` (caches what
``backward`` needs) and ``backward(dout) -> dx``. Outputs live in buffers the layer reuses from one
batch to the next (one per batch size), so a training step allocates nothing beyond the maths;
copy an output if you need it after the next call.

A loss layer (:class:`SoftmaxWithLoss`, or any Keras-style loss through
:func:`pykernels.losses.loss_layer`) has ``forward(x, t) -> loss`` and ``backward(dout=1) -> dx``.
A layer whose output is a row softmax (:class:`Softmax`, ``Dense(activation="softmax")``) can hand
that softmax to a loss layer that applies it itself (:meth:`Layer.hand_softmax_to_loss`): its forward
then returns the logits and its backward takes d loss / d logits, so the softmax and the
cross-entropy run as one fused kernel.

``backend="native"`` runs every layer on the C++ kernels (Sigmoid, Tanh, Softmax and Dense's
sigmoid/tanh/softmax activations on pykernels.sigmoid/tanh/softmax and their backward kernels);
``backend="numpy"`` on the NumPy code of :mod:`pykernels.reference`.

>>> import numpy as np
>>> from pykernels.layers import Dense
>>> layer = Dense(3, activation="relu", input_shape=(4,))
>>> y = layer.forward(np.ones((2, 4), np.float32))
>>> y.shape, [p.shape for p in layer.params]
((2, 3), [(4, 3), (3,)])
>>> dx = layer.backward(np.ones_like(y)); dx.shape
(2, 4)
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from . import initializers
from ._kernels import get_backend

__all__ = ["Affine", "Dense", "Layer", "MatMul", "ReLU", "Sigmoid", "Softmax", "SoftmaxWithLoss", "Tanh"]

_MAX_BUFFERS = 8  # distinct (name, shape) buffers per layer: train batch, last batch, predict batch, ...


def assign_weights(params: list[np.ndarray], weights, who: str) -> None:
    """Copy `weights` into `params` in place (Layer/Sequential.set_weights): the count, every shape
    and a real dtype are checked for all of them before anything is written."""
    weights = list(weights)
    if len(weights) != len(params):
        raise ValueError(f"{who}: expected {len(params)} arrays (one per parameter), got {len(weights)}")
    arrays = [np.asarray(w) for w in weights]
    for i, (p, w) in enumerate(zip(params, arrays)):
        if w.shape != p.shape:
            raise ValueError(f"{who}: weight {i} has shape {w.shape}, the parameter has shape {p.shape}")
        if w.dtype.kind not in "biuf":
            raise TypeError(f"{who}: weight {i} has dtype {w.dtype}; expected a real number dtype")
    for p, w in zip(params, arrays):
        p[...] = w


class Layer:
    """Base class: ``params``, ``grads``, ``forward``, ``backward`` and reusable output buffers."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or type(self).__name__.lower()
        self.params: list[np.ndarray] = []
        self.grads: list[np.ndarray] = []
        self.param_names: list[str] = []
        self.built = False
        # The first layer of a model needs no input gradient; Sequential sets this to False there.
        self.need_input_grad = True
        self._k: SimpleNamespace = get_backend("native")
        self._bufs: dict[tuple, np.ndarray] = {}

    # -- helpers --------------------------------------------------------------------------------
    def set_backend(self, backend: str | SimpleNamespace) -> None:
        """Run this layer on ``"native"`` (C++) or ``"numpy"`` (:mod:`pykernels.reference`) kernels."""
        self._k = get_backend(backend) if isinstance(backend, str) else backend

    def _buf(self, key: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        # the dtype as given (callers pass an array's .dtype): a key built without np.dtype(), which
        # costs more than the lookup on a small model's step
        k = (key, shape, dtype)
        b = self._bufs.get(k)
        if b is None:
            if len(self._bufs) >= _MAX_BUFFERS:
                self._bufs.clear()
            b = self._bufs[k] = np.empty(shape, dtype=dtype)
        return b

    def build(self, input_dim: int, rng: np.random.Generator | None = None, dtype=np.float32) -> None:
        self.built = True

    def output_dim(self, input_dim: int) -> int:
        return input_dim

    def hand_softmax_to_loss(self, on: bool = True) -> bool:
        """Whether this layer's output is a row softmax. If it is, ``on=True`` hands that softmax to
        the loss layer that follows (one that applies the softmax itself, as :class:`SoftmaxWithLoss`):
        from then on ``forward`` returns the logits (the softmax's input) and ``backward`` takes
        d loss / d logits; ``on=False`` takes it back. A model calls this when it is compiled."""
        return False

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def forward(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def count_params(self) -> int:
        return int(sum(p.size for p in self.params))

    def _saved(self, value, what: str):
        """A value the forward pass kept for backward; a clear error when forward has not run."""
        if value is None:
            raise RuntimeError(f"{type(self).__name__}.backward: call forward(x) first (backward needs the "
                               f"forward pass's {what})")
        return value

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the parameters (Keras: ``[kernel, bias]`` for Dense)."""
        return [p.copy() for p in self.params]

    def set_weights(self, weights) -> None:
        """Copy ``weights`` into the parameters in place; the count and every shape must match."""
        assign_weights(self.params, weights, f"{type(self).__name__}.set_weights")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _affine_backward(layer: Layer, dout: np.ndarray, y: np.ndarray | None = None,
                     activation: str | None = None) -> np.ndarray | None:
    """Backward of ``activation(x @ W [+ b])`` for Dense, Affine and MatMul (``params[0]`` is W,
    ``params[1]`` the bias if any, ``layer.x`` the forward input): one ``dense_backward`` call that
    writes d loss / d W (and d loss / d b) straight into ``layer.grads`` and dx into the layer's
    buffer, then DLFS2's in-place write-back ``grads[i][...] = g`` for a kernel that returned other
    arrays, so an optimizer holding ``grads`` sees the new values. Returns dx, or None when the layer
    needs no input gradient (the first layer of a model)."""
    x = layer._saved(layer.x, "input")
    W = layer.params[0]
    grads = layer.grads
    dx = layer._buf("dx", x.shape, x.dtype) if layer.need_input_grad else None
    # a layer without bias still gets db computed: into a reused scratch buffer, not a new array
    db = grads[1] if len(grads) > 1 else layer._buf("db", (W.shape[1],), dout.dtype)
    dxr, dW, dbr = layer._k.dense_backward(dout, x, W, y=y, activation=activation,
                                           need_dx=layer.need_input_grad, dx=dx, dW=grads[0], db=db)
    for g, new in zip(grads, (dW, dbr)):
        if new is not g:
            g[...] = new
    return dxr


_ACTIVATIONS = (None, "linear", "relu", "sigmoid", "tanh", "softmax")


def _check_2d(x: np.ndarray, features: int, who: str) -> None:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{who}: expected a numpy.ndarray, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(
            f"{who}: expected a 2-d input (batch, {features}), got shape {x.shape}; "
            f"reshape it, e.g. x.reshape(len(x), -1)"
        )
    if x.shape[1] != features:
        raise ValueError(f"{who}: expected {features} input features, got {x.shape[1]} (input shape {x.shape})")


def _as_dtype(x: np.ndarray, dtype) -> np.ndarray:
    # Keras casts inputs to the layer's dtype. A no-op for matching float32 input (what Sequential
    # passes); other input costs one conversion per call, so convert the data once up front.
    return x if x.dtype == dtype else x.astype(dtype)


class Dense(Layer):
    """Keras ``Dense``: ``activation(x @ kernel + bias)``.

    ``activation`` None/"linear", "relu", "sigmoid", "tanh" or "softmax"; ``kernel_initializer`` a Keras name
    (default "glorot_uniform") or a callable; the input size comes from ``input_shape`` or from the
    first call. None and "relu" run on the fused ``dense``/``dense_backward`` kernels (the bias add
    and relu happen inside the GEMM pass); sigmoid/tanh/softmax run as a separate element-wise step
    (pykernels.sigmoid/tanh/softmax on the native backend). A softmax
    handed to the loss (:meth:`hand_softmax_to_loss`, done by a model compiled with a cross-entropy
    loss) is not computed here: forward returns the logits and the loss applies it, fused with the
    cross-entropy. ``params`` = ``[kernel (K, units), bias (units,)]`` (no bias with ``use_bias=False``).
    """

    def __init__(self, units: int, activation: str | None = None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 input_shape: tuple[int, ...] | None = None, input_dim: int | None = None,
                 name: str | None = None) -> None:
        super().__init__(name or "dense")
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"Dense: units must be a positive integer, got {units!r}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"Dense: unknown activation {activation!r}; use one of {list(_ACTIVATIONS)}")
        self.units = int(units)
        self.activation = None if activation == "linear" else activation
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        if input_shape is not None:
            if len(tuple(input_shape)) != 1:
                raise ValueError(f"Dense: input_shape must be (features,), got {input_shape!r}")
            input_dim = int(tuple(input_shape)[0])
        self.input_dim = input_dim
        self.x: np.ndarray | None = None
        self.y: np.ndarray | None = None
        self.z: np.ndarray | None = None
        self._softmax_in_loss = False
        # forward's output is the GEMM's (linear, relu in its epilogue, or the logits of a softmax
        # handed to the loss), with no separate element-wise step after it
        self._gemm_output = self.activation in (None, "relu")

    def build(self, input_dim: int, rng: np.random.Generator | None = None, dtype=np.float32) -> None:
        if self.input_dim is not None and self.input_dim != input_dim:
            raise ValueError(f"Dense: built for {self.input_dim} input features, got {input_dim}")
        rng = np.random.default_rng() if rng is None else rng
        self.input_dim = int(input_dim)
        W = np.ascontiguousarray(self.kernel_initializer((self.input_dim, self.units), rng, dtype), dtype=dtype)
        if W.shape != (self.input_dim, self.units):
            raise ValueError(f"Dense: kernel_initializer returned shape {W.shape}, expected "
                             f"{(self.input_dim, self.units)}")
        self.params = [W]
        self.param_names = ["kernel"]
        if self.use_bias:
            b = np.ascontiguousarray(self.bias_initializer((self.units,), rng, dtype), dtype=dtype)
            if b.shape != (self.units,):
                raise ValueError(f"Dense: bias_initializer returned shape {b.shape}, expected {(self.units,)}")
            self.params.append(b)
            self.param_names.append("bias")
        self.grads = [np.zeros_like(p) for p in self.params]
        self.built = True

    def output_dim(self, input_dim: int) -> int:
        return self.units

    @property
    def kernel(self) -> np.ndarray:
        return self.params[0]

    @property
    def bias(self) -> np.ndarray | None:
        return self.params[1] if self.use_bias else None

    def _linear_act(self) -> str | None:
        return self.activation if self.activation in (None, "relu") else None

    def hand_softmax_to_loss(self, on: bool = True) -> bool:
        if self.activation != "softmax":
            return False
        self._softmax_in_loss = bool(on)
        self._gemm_output = self._softmax_in_loss
        return True

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.built:
            if not isinstance(x, np.ndarray) or x.ndim != 2:
                _check_2d(x, -1, f"Dense({self.units})")  # raises: not an array / not 2-d
            self.build(x.shape[1], dtype=x.dtype if x.dtype in (np.float32, np.float64) else np.float32)
        _check_2d(x, self.input_dim, f"Dense({self.units})")
        W = self.params[0]
        x = _as_dtype(x, W.dtype)
        self.x = x
        z = self._buf("z", (x.shape[0], self.units), W.dtype)
        self._k.dense(x, W, self.bias, activation=self._linear_act(), out=z)  # bias and relu in the GEMM
        self.z = z
        if self._gemm_output:
            self.y = z
        elif self.activation in ("sigmoid", "tanh"):
            self.y = getattr(self._k, self.activation)(z, out=self._buf("y", z.shape, z.dtype))
        else:  # softmax
            self.y = self._k.softmax(z, out=self._buf("y", z.shape, z.dtype))
        return self.y

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        self._saved(self.x, "input")
        act = self._linear_act()
        if not self._gemm_output:
            dz = self._buf("dz", dout.shape, dout.dtype)
            if self.activation in ("sigmoid", "tanh"):
                getattr(self._k, self.activation + "_backward")(dout, self.y, out=dz)
            else:
                self._k.softmax_backward(dout, self.y, out=dz)
            dout = dz
        return _affine_backward(self, dout, y=self.z if act == "relu" else None, activation=act)

    def __repr__(self) -> str:
        return f"Dense({self.units}, activation={self.activation!r})"


class Affine(Layer):
    """DLFS ``Affine(W, b)``: ``x @ W + b``; backward ``dx = dout @ W.T``, ``dW = x.T @ dout``, ``db = sum(dout, 0)``."""

    def __init__(self, W: np.ndarray, b: np.ndarray, name: str | None = None) -> None:
        super().__init__(name or "affine")
        W = np.ascontiguousarray(W)
        b = np.ascontiguousarray(b, dtype=W.dtype)
        if W.ndim != 2 or b.shape != (W.shape[1],):
            raise ValueError(f"Affine: W must be (K, N) and b (N,), got {W.shape} and {b.shape}")
        self.params = [W, b]
        self.param_names = ["W", "b"]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.built = True
        self.x: np.ndarray | None = None

    def output_dim(self, input_dim: int) -> int:
        return self.params[0].shape[1]

    def forward(self, x: np.ndarray) -> np.ndarray:
        W, b = self.params
        _check_2d(x, W.shape[0], "Affine")
        x = _as_dtype(x, W.dtype)
        self.x = x
        return self._k.dense(x, W, b, activation=None, out=self._buf("y", (x.shape[0], W.shape[1]), W.dtype))

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        return _affine_backward(self, dout)

    def __repr__(self) -> str:
        return f"Affine{self.params[0].shape}"


class MatMul(Layer):
    """DLFS2 ``MatMul(W)``: ``x @ W``; backward ``dx = dout @ W.T``, ``dW = x.T @ dout``."""

    def __init__(self, W: np.ndarray, name: str | None = None) -> None:
        super().__init__(name or "matmul")
        W = np.ascontiguousarray(W)
        if W.ndim != 2:
            raise ValueError(f"MatMul: W must be 2-d, got shape {W.shape}")
        self.params = [W]
        self.param_names = ["W"]
        self.grads = [np.zeros_like(W)]
        self.built = True
        self.x: np.ndarray | None = None

    def output_dim(self, input_dim: int) -> int:
        return self.params[0].shape[1]

    def forward(self, x: np.ndarray) -> np.ndarray:
        W = self.params[0]
        _check_2d(x, W.shape[0], "MatMul")
        x = _as_dtype(x, W.dtype)
        self.x = x
        return self._k.dense(x, W, None, activation=None, out=self._buf("y", (x.shape[0], W.shape[1]), W.dtype))

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        return _affine_backward(self, dout)

    def __repr__(self) -> str:
        return f"MatMul{self.params[0].shape}"


class ReLU(Layer):
    """``max(x, 0)``; backward passes ``dout`` where ``x > 0`` (relu'(0) = 0). Never modifies ``dout``."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name or "relu")
        self.built = True
        self.x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return self._k.relu(x, out=self._buf("y", x.shape, x.dtype))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x = self._saved(self.x, "input")
        return self._k.relu_backward(dout, x, out=self._buf("dx", dout.shape, dout.dtype))

    def __repr__(self) -> str:
        return "ReLU()"


class Sigmoid(Layer):
    """``1 / (1 + exp(-x))``; backward ``dout * y * (1 - y)``.

    Native backend: :func:`pykernels.sigmoid` / :func:`pykernels.sigmoid_backward`.
    """

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name or "sigmoid")
        self.built = True
        self.y: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = self._k.sigmoid(x, out=self._buf("y", x.shape, x.dtype))
        return self.y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        y = self._saved(self.y, "output")
        return self._k.sigmoid_backward(dout, y, out=self._buf("dx", dout.shape, dout.dtype))

    def __repr__(self) -> str:
        return "Sigmoid()"


class Tanh(Layer):
    """``tanh(x)``; backward ``dout * (1 - y * y)``. Native backend: :func:`pykernels.tanh` /
    :func:`pykernels.tanh_backward`."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name or "tanh")
        self.built = True
        self.y: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = self._k.tanh(x, out=self._buf("y", x.shape, x.dtype))
        return self.y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        y = self._saved(self.y, "output")
        return self._k.tanh_backward(dout, y, out=self._buf("dx", dout.shape, dout.dtype))

    def __repr__(self) -> str:
        return "Tanh()"


class Softmax(Layer):
    """Row softmax of (N, C); backward ``y * (dout - sum(dout * y, axis=1))``.

    Native backend: :func:`pykernels.softmax` / :func:`pykernels.softmax_backward`. Handed to the loss
    (:meth:`~Layer.hand_softmax_to_loss`), it passes its input and gradient through unchanged and the
    loss layer applies the softmax, fused with the cross-entropy (a C++ kernel).
    """

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name or "softmax")
        self.built = True
        self.y: np.ndarray | None = None
        self._softmax_in_loss = False

    def hand_softmax_to_loss(self, on: bool = True) -> bool:
        self._softmax_in_loss = bool(on)
        return True

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2:
            raise ValueError(f"Softmax: expected a 2-d input (batch, classes), got shape {x.shape}")
        if self._softmax_in_loss:
            return x
        self.y = self._k.softmax(x, out=self._buf("y", x.shape, x.dtype))
        return self.y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._softmax_in_loss:
            return dout
        y = self._saved(self.y, "output")
        return self._k.softmax_backward(dout, y, out=self._buf("dx", dout.shape, dout.dtype))

    def __repr__(self) -> str:
        return "Softmax()"


class SoftmaxWithLoss(Layer):
    """DLFS ``SoftmaxWithLoss``: ``forward(x, t) -> mean cross-entropy of softmax(x)``, ``backward(dout=1)``.

    ``x``: the logits (N, C); ``t``: class indices (N,) or one-hot / probability targets (N, C)
    (integer one-hot is turned into indices, as DLFS2). ``forward`` runs the fused softmax +
    cross-entropy kernel, which computes the loss and its gradient ``(softmax(x) - onehot(t)) / N``
    in one pass over the logits, into a buffer the layer reuses; ``backward()`` returns that buffer
    (overwritten by the next ``forward``), ``backward(dout)`` for another ``dout`` computes
    ``dout * (softmax(x) - onehot(t)) / N`` into a second buffer. ``output(x)`` is ``softmax(x)``: what
    a model whose last layer handed its softmax to this loss predicts.

    >>> import numpy as np
    >>> layer = SoftmaxWithLoss()
    >>> round(layer.forward(np.zeros((2, 4), np.float32), np.array([0, 3])), 6)
    1.386294
    >>> layer.backward()[0]
    array([-0.375,  0.125,  0.125,  0.125], dtype=float32)
    """

    #: a model asks its last layer to hand over an output softmax to this loss
    applies_softmax = True

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name or "softmax_with_loss")
        self.built = True
        self.x: np.ndarray | None = None
        self.t: np.ndarray | None = None
        self._dx: np.ndarray | None = None  # the gradient forward computed (dout = 1)

    def forward(self, x: np.ndarray, t: np.ndarray) -> float:  # type: ignore[override]
        if not isinstance(t, np.ndarray):
            t = np.asarray(t)
        if t.ndim == 2 and t.dtype.kind in "iub":
            t = t.argmax(axis=1)
        self.x, self.t = x, t
        if isinstance(x, np.ndarray) and x.ndim == 2 and x.dtype.char in "fd":
            self._dx = self._buf("dx", x.shape, x.dtype)
            return self._k.softmax_cross_entropy(x, t, dlogits=self._dx)
        self._dx = None  # anything else: the kernel converts it or says what is wrong
        return self._k.softmax_cross_entropy(x, t)

    def backward(self, dout: float = 1.0) -> np.ndarray:  # type: ignore[override]
        self._saved(self.x, "input")
        if self._dx is not None and float(dout) == 1.0:
            return self._dx
        x = np.asarray(self.x)
        return self._k.softmax_cross_entropy_backward(
            x, self.t, dloss=float(dout), dlogits=self._buf("dx_scaled", x.shape, x.dtype))

    def output(self, x: np.ndarray) -> np.ndarray:
        """``softmax(x)`` (rows), into a reused buffer: the probabilities of logits ``x``."""
        return self._k.softmax(x, out=self._buf("y", x.shape, x.dtype))

    def __repr__(self) -> str:
        return "SoftmaxWithLoss()"
