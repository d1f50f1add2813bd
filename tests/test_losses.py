"""Fused softmax + cross-entropy kernel and the losses: against the NumPy reference (float64 maths),
finite differences (float64), generated shapes/dtypes (hypothesis), stability and errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nn_helpers import assert_grad_close, numerical_grad

import pykernels as pk
from pykernels import losses, reference

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}


@st.composite
def sce_case(draw):
    n = draw(st.integers(0, 40))
    c = draw(st.integers(1, 13))
    dt = draw(st.sampled_from(DTYPES))
    scale = draw(st.sampled_from([1e-3, 1.0, 30.0]))
    seed = draw(st.integers(0, 2**31 - 1))
    sparse = draw(st.booleans())
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((n, c)) * scale).astype(dt)
    layout = draw(st.sampled_from(["c", "fortran", "cols_step2", "rows_reversed"]))
    if layout == "fortran":
        logits = np.asfortranarray(logits)
    elif layout == "cols_step2":  # a strided view of a wider array, same values
        wide = np.zeros((n, 2 * c), dt)
        wide[:, ::2] = logits
        logits = wide[:, ::2]
    elif layout == "rows_reversed":
        logits = np.ascontiguousarray(logits[::-1])[::-1]
    if sparse:
        labels = rng.integers(0, c, size=n).astype(draw(st.sampled_from([np.int64, np.int32, np.uint8])))
    else:
        t = rng.random((n, c))
        labels = (t / t.sum(axis=1, keepdims=True)).astype(dt)
    return logits, labels


@settings(max_examples=60, deadline=None)
@given(sce_case())
def test_softmax_cross_entropy_matches_reference(case):
    logits, labels = case  # logits in any layout; out buffers C-contiguous (their contract)
    before = logits.copy()
    probs = np.empty(logits.shape, logits.dtype)
    loss = pk.softmax_cross_entropy(logits, labels, probs=probs)
    ref_probs = np.empty(logits.shape, logits.dtype)
    ref = reference.softmax_cross_entropy(logits, labels, probs=ref_probs)
    if logits.shape[0] == 0:
        assert np.isnan(loss) and np.isnan(ref)
    else:
        assert loss == pytest.approx(ref, rel=1e-12 if logits.dtype == np.float64 else 1e-6, abs=1e-12)
    np.testing.assert_allclose(probs, ref_probs, **TOL[logits.dtype.type])
    d = pk.softmax_cross_entropy_backward(logits, labels)
    assert d.dtype == logits.dtype and d.shape == logits.shape
    np.testing.assert_allclose(d, reference.softmax_cross_entropy_backward(logits, labels), **TOL[logits.dtype.type])
    # forward + backward in one call: the same loss and gradient
    d2 = np.full(logits.shape, np.nan, logits.dtype)
    p2 = np.full(logits.shape, np.nan, logits.dtype)
    loss2 = pk.softmax_cross_entropy(logits, labels, probs=p2, dlogits=d2, dloss=0.5)
    assert loss2 == loss or (np.isnan(loss) and np.isnan(loss2))
    np.testing.assert_array_equal(p2, probs)
    np.testing.assert_allclose(d2, 0.5 * d, **TOL[logits.dtype.type])
    d3 = np.empty(logits.shape, logits.dtype)
    reference.softmax_cross_entropy(logits, labels, dlogits=d3, dloss=0.5)
    np.testing.assert_allclose(d2, d3, **TOL[logits.dtype.type])
    np.testing.assert_array_equal(logits, before)  # inputs untouched


@pytest.mark.parametrize("sparse", [True, False])
def test_softmax_cross_entropy_gradient_finite_differences(sparse):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((6, 5))
    t = rng.integers(0, 5, 6) if sparse else pk.to_categorical(rng.integers(0, 5, 6), 5, dtype="float64")
    num = numerical_grad(lambda: pk.softmax_cross_entropy(z, t), z)
    assert_grad_close(pk.softmax_cross_entropy_backward(z, t), num)
    assert_grad_close(pk.softmax_cross_entropy_backward(z, t, dloss=2.5), 2.5 * num)


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    z = np.array([[1e4, 0.0, -1e4], [-1e30, 1e30, 0.0]], np.float32)
    loss = pk.softmax_cross_entropy(z, np.array([0, 0]))
    # row 0: loss 0; row 1: logsumexp = 1e30, minus logit -1e30 -> 2e30; mean 1e30
    assert np.isfinite(loss) and loss == pytest.approx(float(np.float32(1e30)), rel=1e-6)
    d = pk.softmax_cross_entropy_backward(z, np.array([0, 1]))
    assert np.all(np.isfinite(d))
    np.testing.assert_allclose(d, [[0, 0, 0], [0, 0, 0]], atol=1e-7)


def test_softmax_cross_entropy_in_place_and_preallocated():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((7, 4)).astype(np.float32)
    y = rng.integers(0, 4, 7)
    expect = reference.softmax_cross_entropy_backward(z, y)
    out = np.full_like(z, np.nan)
    assert pk.softmax_cross_entropy_backward(z, y, dlogits=out) is out
    np.testing.assert_allclose(out, expect, rtol=1e-5, atol=1e-7)
    zz = z.copy()
    pk.softmax_cross_entropy_backward(zz, y, dlogits=zz)  # exact aliasing is allowed
    np.testing.assert_allclose(zz, expect, rtol=1e-5, atol=1e-7)
    for k in (pk, reference):  # also forward + backward in one call, in place, sparse and dense targets
        for t in (y, pk.to_categorical(y, 4)):
            zz = z.copy()
            loss = k.softmax_cross_entropy(zz, t, dlogits=zz)
            assert loss == pytest.approx(reference.softmax_cross_entropy(z, y), rel=1e-6)
            np.testing.assert_allclose(zz, expect, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="share memory"):
        pk.softmax_cross_entropy(z, y, probs=out, dlogits=out)


def test_softmax_cross_entropy_thread_invariant():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((5000, 10)).astype(np.float32)
    y = rng.integers(0, 10, 5000)
    with pk.threads(1):
        l1, d1 = pk.softmax_cross_entropy(z, y), pk.softmax_cross_entropy_backward(z, y)
    with pk.threads(2):
        l2, d2 = pk.softmax_cross_entropy(z, y), pk.softmax_cross_entropy_backward(z, y)
    assert l1 == l2
    np.testing.assert_array_equal(d1, d2)


@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_softmax_cross_entropy_errors(backend):
    k = pk._kernels.get_backend(backend)
    z = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"label 4 at index 1 is out of range for 4 classes"):
        k.softmax_cross_entropy(z, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"label -1 at index 0"):
        k.softmax_cross_entropy_backward(z, np.array([-1, 0, 1]))
    with pytest.raises(TypeError, match="sparse labels must be integers"):
        k.softmax_cross_entropy(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="labels has shape"):
        k.softmax_cross_entropy(z, np.array([0, 1]))
    with pytest.raises(ValueError, match="targets have shape"):
        k.softmax_cross_entropy(z, np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match="2-d"):
        k.softmax_cross_entropy(np.zeros(4, np.float32), np.array([0]))


def test_softmax_cross_entropy_out_errors():
    z = np.zeros((3, 4), np.float32)
    y = np.array([0, 1, 2])
    with pytest.raises(TypeError, match="dtype"):
        pk.softmax_cross_entropy_backward(z, y, dlogits=np.zeros((3, 4), np.float64))
    with pytest.raises(ValueError, match="shape"):
        pk.softmax_cross_entropy_backward(z, y, dlogits=np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        pk.softmax_cross_entropy_backward(z, y, dlogits=np.zeros((4, 3), np.float32).T)
    big = np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match="partially overlaps"):
        pk.softmax_cross_entropy_backward(big[:3], y, dlogits=big[1:])


# ---- loss classes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["native", "numpy"])
@pytest.mark.parametrize("cls,sparse", [(losses.SparseCategoricalCrossentropy, True),
                                        (losses.CategoricalCrossentropy, False)])
@pytest.mark.parametrize("from_logits", [True, False])
def test_crossentropy_losses_gradients(backend, cls, sparse, from_logits):
    rng = np.random.default_rng(3)
    z = rng.standard_normal((5, 4))
    yp = z if from_logits else reference.softmax(z)
    idx = rng.integers(0, 4, 5)
    yt = idx if sparse else pk.to_categorical(idx, 4, dtype="float64")
    loss = cls(from_logits=from_logits)
    loss.set_backend(backend)
    # value: against the direct formula
    logp = np.log(reference.softmax(z))
    expect = -np.mean(logp[np.arange(5), idx])
    assert loss(yt, yp) == pytest.approx(expect, rel=1e-9)
    num = numerical_grad(lambda: loss(yt, yp), yp)
    assert_grad_close(loss.backward(yt, yp), num)


def test_mean_squared_error():
    rng = np.random.default_rng(4)
    yp = rng.standard_normal((4, 3))
    yt = rng.standard_normal((4, 3))
    mse = losses.MeanSquaredError()
    assert mse(yt, yp) == pytest.approx(np.mean((yp - yt) ** 2))
    assert_grad_close(mse.backward(yt, yp), numerical_grad(lambda: mse(yt, yp), yp))
    with pytest.raises(ValueError, match="shape"):
        mse(yt[:2], yp)


def test_loss_lookup_and_errors():
    assert isinstance(losses.get("mse"), losses.MeanSquaredError)
    with pytest.raises(ValueError, match="unknown loss"):
        losses.get("hinge")
    with pytest.raises(ValueError, match="class indices"):
        losses.SparseCategoricalCrossentropy()(np.zeros((2, 2)), np.full((2, 3), 1 / 3))


def test_to_categorical():
    np.testing.assert_array_equal(pk.to_categorical([2, 0], 3), [[0, 0, 1], [1, 0, 0]])
    assert pk.to_categorical(np.array([1, 0])).dtype == np.float32
    assert pk.to_categorical(np.array([[1], [0]]), 2).shape == (2, 2)
    with pytest.raises(ValueError, match="out of range"):
        pk.to_categorical([3], 3)
    with pytest.raises(ValueError, match="negative"):
        pk.to_categorical([-1], 3)
    with pytest.raises(ValueError, match="integer"):
        pk.to_categorical([0.5], 3)


@pytest.mark.parametrize("view", ["transposed", "strided", "reversed"])
def test_softmax_cross_entropy_non_contiguous_inputs(view):
    rng = np.random.default_rng(7)
    base = rng.standard_normal((12, 10)).astype(np.float32)
    z = {"transposed": base.T[:, :6].T, "strided": base[::2], "reversed": base[::-1, ::-1]}[view]
    z0 = z.copy()
    y = rng.integers(0, z.shape[1], z.shape[0]).astype(np.int32)[::1]
    ys = np.repeat(y, 2)[::2]  # non-contiguous labels too
    assert pk.softmax_cross_entropy(z, ys) == pytest.approx(reference.softmax_cross_entropy(z0, y), rel=1e-6)
    np.testing.assert_allclose(pk.softmax_cross_entropy_backward(z, ys),
                               reference.softmax_cross_entropy_backward(z0, y), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(z, z0)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("big", [1e16, 1e20, 1e30])
def test_softmax_cross_entropy_keeps_log_sum_for_large_equal_logits(dt, big):
    # ten equal logits: the loss is log(10) however large they are (max + log(s) would round it away)
    z = np.full((2, 10), big, dt)
    assert pk.softmax_cross_entropy(z, np.array([3, 7])) == pytest.approx(np.log(10.0), rel=1e-12)
    t = np.full((2, 10), 0.1, dt)
    assert pk.softmax_cross_entropy(z, t) == pytest.approx(np.log(10.0), rel=1e-6)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_softmax_cross_entropy_inf_logit_is_nan_like_the_reference(dt):
    z = np.array([[1.0, np.inf, 2.0], [0.0, 1.0, 2.0]], dt)
    labels = np.array([0, 2])
    with np.errstate(all="ignore"):
        want = reference.softmax_cross_entropy_backward(z, labels)
        want_loss = reference.softmax_cross_entropy(z, labels)
    got = pk.softmax_cross_entropy_backward(z, labels)
    assert np.isnan(got[0]).all() and np.isnan(want[0]).all()
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
    assert np.isnan(pk.softmax_cross_entropy(z, labels)) and np.isnan(want_loss)


# ---- loss layers: SoftmaxWithLoss, LossLayer, loss_layer ---------------------------------------------

@pytest.mark.parametrize("backend", ["native", "numpy"])
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("target", ["labels", "int_onehot", "probabilities"])
def test_softmax_with_loss_matches_the_reference(backend, dt, target):
    """forward = reference loss, backward() = reference gradient (the one fused pass of forward),
    backward(dout) = the reference gradient scaled by dout, output = reference softmax."""
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((9, 5)) * 3).astype(dt)
    idx = rng.integers(0, 5, 9)
    if target == "labels":
        t = ref_t = idx
    elif target == "int_onehot":  # DLFS2: integer one-hot is read as class indices
        t, ref_t = np.eye(5, dtype=np.int64)[idx], idx
    else:
        p = rng.random((9, 5))
        t = ref_t = (p / p.sum(axis=1, keepdims=True)).astype(dt)
    layer = losses.SoftmaxWithLoss()
    layer.set_backend(backend)
    loss = layer.forward(x, t)
    assert loss == pytest.approx(reference.softmax_cross_entropy(x, ref_t), rel=TOL[dt]["rtol"])
    dx = layer.backward()
    assert dx.dtype == dt and dx.shape == x.shape
    np.testing.assert_allclose(dx, reference.softmax_cross_entropy_backward(x, ref_t), **TOL[dt])
    # backward() is the gradient the forward pass computed: the same bits as the backward kernel
    k = pk.softmax_cross_entropy_backward if backend == "native" else reference.softmax_cross_entropy_backward
    np.testing.assert_array_equal(dx, k(x, ref_t))
    d3 = layer.backward(2.5)
    np.testing.assert_array_equal(d3, k(x, ref_t, dloss=2.5))
    assert layer.backward() is dx  # a scaled backward does not overwrite the dout=1 gradient
    np.testing.assert_allclose(layer.output(x), reference.softmax(x), **TOL[dt])
    # the buffers are reused: a second forward on the same shape allocates no new gradient
    layer.forward(x, t)
    assert layer.backward() is dx


@pytest.mark.parametrize("backend", ["native", "numpy"])
@pytest.mark.parametrize("sparse", [True, False])
def test_softmax_with_loss_finite_differences(backend, sparse):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((6, 4)) * 2
    t = rng.integers(0, 4, 6)
    if not sparse:
        p = rng.random((6, 4))
        t = p / p.sum(axis=1, keepdims=True)
    layer = losses.SoftmaxWithLoss()
    layer.set_backend(backend)
    layer.forward(x, t)
    dx = layer.backward().copy()
    d2 = layer.backward(-0.5).copy()
    num = numerical_grad(lambda: layer.forward(x, t), x)
    assert_grad_close(dx, num)
    assert_grad_close(d2, -0.5 * num)


def test_softmax_with_loss_errors_are_the_kernels():
    layer = losses.SoftmaxWithLoss()
    with pytest.raises(RuntimeError, match=r"backward: call forward\(x\) first"):
        layer.backward()
    with pytest.raises(ValueError, match="out of range"):
        layer.forward(np.zeros((2, 3), np.float32), np.array([0, 3]))
    with pytest.raises(ValueError):
        layer.forward(np.zeros(3, np.float32), np.array([0]))
    # a list is converted by the kernel, as before; backward then computes the gradient
    assert layer.forward([[0.0, 0.0]], [1]) == pytest.approx(np.log(2))
    np.testing.assert_allclose(layer.backward(), [[0.5, -0.5]])


@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_loss_layer_wraps_a_keras_loss(backend):
    rng = np.random.default_rng(13)
    yp, yt = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    mse = losses.MeanSquaredError()
    layer = losses.LossLayer(mse)
    layer.set_backend(backend)
    assert layer.forward(yp, yt) == mse(yt, yp)
    g = layer.backward()
    np.testing.assert_array_equal(g, mse.backward(yt, yp))
    assert layer.backward() is g  # a reused buffer
    np.testing.assert_array_equal(layer.backward(3.0), 3.0 * mse.backward(yt, yp))
    with pytest.raises(RuntimeError, match=r"backward: call forward\(x\) first"):
        losses.LossLayer(mse).backward()


def test_loss_layer_choice_and_the_softmax_hand_over():
    from pykernels.layers import Dense, ReLU, Softmax

    ce = "sparse_categorical_crossentropy"
    # cross-entropy on probabilities after a softmax output: fused, the layer hands over its softmax
    for last in (Dense(3, activation="softmax"), Softmax()):
        layer, handed = losses.loss_layer(ce, last)
        assert isinstance(layer, losses.SoftmaxWithLoss) and handed and last._softmax_in_loss
        # another loss takes it back
        layer, handed = losses.loss_layer("mse", last)
        assert isinstance(layer, losses.LossLayer) and not handed and not last._softmax_in_loss
    # on logits, or after a layer without a softmax: the Keras loss as it is
    for loss, last in ((losses.SparseCategoricalCrossentropy(from_logits=True), Dense(3, activation="softmax")),
                       (ce, Dense(3, activation="sigmoid")), (ce, ReLU()), (ce, None), (ce, object())):
        layer, handed = losses.loss_layer(loss, last)
        assert isinstance(layer, losses.LossLayer) and not handed
        assert not getattr(last, "_softmax_in_loss", False)
    # a loss layer is used as given; one that applies the softmax gets it from the layer
    swl = losses.SoftmaxWithLoss()
    last = Dense(3, activation="softmax")
    assert losses.loss_layer(swl, last) == (swl, True) and last._softmax_in_loss
    last = Dense(3)
    assert losses.loss_layer(swl, last) == (swl, False)

    class Custom:
        def forward(self, x, t):
            return 0.0

        def backward(self, dout=1.0):
            return None

    custom = Custom()
    last = Softmax()
    assert losses.get(custom) is custom
    assert losses.loss_layer(custom, last) == (custom, False) and not last._softmax_in_loss
    with pytest.raises(ValueError, match="unknown loss"):
        losses.get(object())
