"""Layers: finite-difference gradients (float64) of every layer on both backends, the DLFS protocol
(grads written in place, inputs untouched, buffers reused, no input gradient when not needed) and
Keras-compatible initialiser statistics."""

from __future__ import annotations

import numpy as np
import pytest
from nn_helpers import assert_grad_close, numerical_grad

from pykernels import initializers
from pykernels.layers import Affine, Dense, MatMul, ReLU, Sigmoid, Softmax, SoftmaxWithLoss

BACKENDS = ["native", "numpy"]


def check_layer_grads(layer, x, rng):
    """Loss = sum(forward(x) * R) for a fixed random R: checks dx and every param grad."""
    y = layer.forward(x)
    R = rng.standard_normal(y.shape)
    f = lambda: float(np.sum(layer.forward(x) * R))  # noqa: E731
    layer.forward(x)
    R0 = R.copy()
    dx = layer.backward(R)
    np.testing.assert_array_equal(R, R0)  # dout not modified
    grads = [g.copy() for g in layer.grads]
    if dx is not None:
        assert_grad_close(dx, numerical_grad(f, x), f"{layer!r} dx")
    for i, p in enumerate(layer.params):
        assert_grad_close(grads[i], numerical_grad(f, p), f"{layer!r} param {i}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "softmax"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_gradients(backend, activation, use_bias):
    rng = np.random.default_rng(0)
    layer = Dense(4, activation=activation, use_bias=use_bias, kernel_initializer="glorot_normal")
    layer.set_backend(backend)
    layer.build(5, rng, np.float64)
    if use_bias:
        layer.params[1][...] = rng.standard_normal(4) * 0.3
    x = rng.standard_normal((3, 5))
    if activation == "relu":  # keep pre-activations away from the kink at 0
        layer.forward(x)
        x[np.abs(layer.z).min(axis=1) < 1e-3] += 0.1
    check_layer_grads(layer, x, rng)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("make", [
    lambda r: Affine(r.standard_normal((5, 3)), r.standard_normal(3)),
    lambda r: MatMul(r.standard_normal((5, 3))),
    lambda r: ReLU(),
    lambda r: Sigmoid(),
    lambda r: Softmax(),
], ids=["Affine", "MatMul", "ReLU", "Sigmoid", "Softmax"])
def test_layer_gradients(backend, make):
    rng = np.random.default_rng(1)
    layer = make(rng)
    layer.set_backend(backend)
    x = rng.standard_normal((4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # ReLU: no input at the kink
    check_layer_grads(layer, x, rng)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("onehot", [False, True])
def test_softmax_with_loss_gradient(backend, onehot):
    rng = np.random.default_rng(2)
    layer = SoftmaxWithLoss()
    layer.set_backend(backend)
    x = rng.standard_normal((6, 4))
    t = rng.integers(0, 4, 6)
    if onehot:
        t = np.eye(4, dtype=np.int64)[t]  # DLFS2 style integer one-hot
    layer.forward(x, t)
    dx = layer.backward().copy()
    assert_grad_close(dx, numerical_grad(lambda: layer.forward(x, t), x))


def test_dense_protocol_in_place_and_buffers():
    rng = np.random.default_rng(3)
    layer = Dense(8, activation="relu", input_shape=(6,))
    layer.build(6, rng)
    g_ids = [id(g) for g in layer.grads]
    x = rng.standard_normal((5, 6)).astype(np.float32)
    x0 = x.copy()
    y1 = layer.forward(x)
    assert y1.dtype == np.float32
    dx = layer.backward(np.ones_like(y1))
    assert [id(g) for g in layer.grads] == g_ids  # grads written into the same arrays
    assert layer.forward(x) is y1  # output buffer reused for the same batch size
    assert layer.backward(np.ones_like(y1)) is dx
    np.testing.assert_array_equal(x, x0)
    layer.need_input_grad = False
    assert layer.backward(np.ones_like(y1)) is None
    assert layer.forward(x[:3]).shape == (3, 8)


def test_dense_lazy_build_and_errors():
    layer = Dense(3)
    y = layer.forward(np.ones((2, 7), np.float32))
    assert layer.input_dim == 7 and y.shape == (2, 3)
    with pytest.raises(ValueError, match="expected 7 input features, got 6"):
        layer.forward(np.ones((2, 6), np.float32))
    with pytest.raises(ValueError, match="2-d input"):
        layer.forward(np.ones((2, 7, 1), np.float32))
    with pytest.raises(ValueError, match="unknown activation"):
        Dense(3, activation="elu")
    with pytest.raises(ValueError, match="positive integer"):
        Dense(0)
    with pytest.raises(ValueError, match="unknown initializer"):
        Dense(3, kernel_initializer="orthogonal_ish")
    assert repr(Dense(3, activation="relu")) == "Dense(3, activation='relu')"


@pytest.mark.parametrize("fan_in,fan_out", [(784, 512), (512, 10), (30, 7)])
def test_glorot_uniform_statistics(fan_in, fan_out):
    rng = np.random.default_rng(4)
    W = initializers.glorot_uniform((fan_in, fan_out), rng)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    assert W.dtype == np.float32 and W.shape == (fan_in, fan_out)
    assert W.min() >= -limit and W.max() <= limit
    n = W.size
    # U(-l, l): mean 0 (sd l/sqrt(3n)), variance l^2/3 = 2/(fan_in+fan_out); 6-sigma bounds
    assert abs(W.mean()) < 6 * limit / np.sqrt(3 * n)
    assert W.var() == pytest.approx(limit**2 / 3, rel=6 * np.sqrt(0.8 / n) + 1e-3)
    assert W.max() > limit * (1 - 20 / n) and W.min() < -limit * (1 - 20 / n)


def test_other_initializer_statistics():
    rng = np.random.default_rng(5)
    shape = (400, 300)
    for name, std in [("glorot_normal", np.sqrt(2 / 700)), ("he_normal", np.sqrt(2 / 400))]:
        W = initializers.get(name)(shape, rng).astype(np.float64)
        assert np.abs(W).max() <= 2 * std / 0.87962566103423978 + 1e-7  # truncated at 2 stddev
        assert W.std() == pytest.approx(std, rel=0.02)
    W = initializers.he_uniform(shape, rng)
    assert np.abs(W).max() <= np.sqrt(6 / 400)
    assert Dense(4, input_shape=(3,)).bias_initializer((4,)).sum() == 0


class _KerasConstant:
    """A Keras-style initializer object: __call__(shape, dtype=None)."""

    def __init__(self, value):
        self.value = value

    def __call__(self, shape, dtype=None):
        return np.full(shape, self.value, dtype=dtype)


@pytest.mark.parametrize("init,expected", [
    (lambda shape, dtype=None: np.full(shape, 0.25), 0.25),            # Keras function signature
    (_KerasConstant(-1.5), -1.5),                                        # Keras initializer object
    (lambda shape, rng, dtype: np.full(shape, 2.0, dtype), 2.0),         # pykernels's signature
    ("ones", 1.0),
], ids=["keras_function", "keras_object", "pykernels_callable", "name"])
def test_initializer_callables_of_either_convention(init, expected):
    d = Dense(3, kernel_initializer=init, bias_initializer=init)
    d.build(2, np.random.default_rng(0), np.float32)
    assert d.kernel.dtype == np.float32 and d.kernel.shape == (2, 3)
    np.testing.assert_array_equal(d.kernel, np.float32(expected))
    np.testing.assert_array_equal(d.bias, np.float32(expected))


def test_initializer_returning_the_wrong_shape_is_an_error():
    d = Dense(3, kernel_initializer=lambda shape, dtype=None: np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"kernel_initializer returned shape \(3, 2\), expected \(2, 3\)"):
        d.build(2, np.random.default_rng(0), np.float32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dense_hands_its_softmax_to_the_loss(backend):
    """Handed over, Dense(softmax) is Dense(None) with the same weights: forward gives the logits (the
    fused GEMM's output), backward takes d loss / d logits; taken back, it is a softmax layer again."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 6))
    dz = rng.standard_normal((5, 3))
    sm, lin = Dense(3, activation="softmax"), Dense(3)
    for layer in (sm, lin):
        layer.set_backend(backend)
        layer.build(6, np.random.default_rng(0), np.float64)
        layer.params[1][...] = 0.1
    probs = sm.forward(x).copy()
    assert sm.hand_softmax_to_loss(True) and not lin.hand_softmax_to_loss(True)
    np.testing.assert_array_equal(sm.forward(x), lin.forward(x))
    np.testing.assert_array_equal(sm.backward(dz), lin.backward(dz))
    for g1, g2 in zip(sm.grads, lin.grads):
        np.testing.assert_array_equal(g1, g2)
    assert sm.hand_softmax_to_loss(False)
    np.testing.assert_array_equal(sm.forward(x), probs)
    assert not Dense(3, activation="relu").hand_softmax_to_loss(True)
    assert not Dense(3, activation="sigmoid").hand_softmax_to_loss(True)
    for other in (ReLU(), Sigmoid(), Affine(np.ones((2, 3)), np.zeros(3)), MatMul(np.ones((2, 3)))):
        assert not other.hand_softmax_to_loss(True)


def test_softmax_layer_handed_over_passes_through():
    x = np.random.default_rng(5).standard_normal((4, 3))
    layer = Softmax()
    assert layer.hand_softmax_to_loss(True)
    assert layer.forward(x) is x
    assert layer.backward(x) is x
    layer.hand_softmax_to_loss(False)
    np.testing.assert_allclose(layer.forward(x).sum(axis=1), 1)


@pytest.mark.parametrize("make", [
    lambda: Dense(3, activation="relu", input_shape=(4,)), lambda: Dense(3, use_bias=False, input_shape=(4,)),
    lambda: Affine(np.ones((4, 3)), np.zeros(3)), lambda: MatMul(np.ones((4, 3))),
], ids=["dense", "dense_no_bias", "affine", "matmul"])
def test_grads_are_written_back_in_place_whatever_the_kernel_returns(make):
    """The one write-back of Dense, Affine and MatMul: a backend whose dense_backward returns new arrays
    (instead of filling the ones given) still leaves the gradients in the layer's own grads arrays."""
    from types import SimpleNamespace

    from pykernels import reference
    from pykernels._kernels import get_backend

    def dense_backward(dy, x, W, y=None, activation=None, need_dx=True, dx=None, dW=None, db=None):
        return reference.dense_backward(dy, x, W, y, activation, need_dx)  # fresh arrays, dW/db ignored

    fresh = SimpleNamespace(**{**vars(get_backend("numpy")), "dense_backward": dense_backward})
    rng = np.random.default_rng(6)
    W = rng.standard_normal((4, 3))
    layer, twin = make(), make()
    for l in (layer, twin):
        l.build(4, np.random.default_rng(0), np.float64)
        l.params[0][...] = W
    layer.set_backend(fresh)
    twin.set_backend("numpy")
    ids = [id(g) for g in layer.grads]
    x, dy = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    for l in (layer, twin):
        l.forward(x)
    dx = layer.backward(dy)
    np.testing.assert_allclose(dx, twin.backward(dy), rtol=1e-12)
    assert [id(g) for g in layer.grads] == ids
    for g, h in zip(layer.grads, twin.grads):
        np.testing.assert_allclose(g, h, rtol=1e-12)
        assert np.any(g != 0)


def test_layers_without_a_kernel_say_so():
    """Sigmoid and Softmax (and Dense's sigmoid/softmax step) say "no C++ kernel yet" in their
    docstrings exactly when the native backend runs the NumPy reference code for them."""
    from pykernels import reference
    from pykernels._kernels import get_backend

    native = get_backend("native")
    for layer, ops in ((Sigmoid, ("sigmoid", "sigmoid_backward")), (Softmax, ("softmax", "softmax_backward"))):
        numpy_code = any(getattr(native, op) is getattr(reference, op) for op in ops)
        assert ("No C++ kernel yet" in layer.__doc__) == numpy_code, layer.__name__
    dense_numpy = any(getattr(native, op) is getattr(reference, op)
                      for op in ("sigmoid", "sigmoid_backward", "softmax", "softmax_backward"))
    assert ("no C++ kernel yet" in Dense.__doc__) == dense_numpy
