"""Optimizers against an independent NumPy transcription of Keras 3's formulas
(keras/src/optimizers/{sgd,rmsprop,adam,adagrad}.py), over several steps, float32 and float64, on
generated shapes (hypothesis), both backends; in-place contract and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pykernels as pk
from pykernels import optimizers

TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}


# ---- the oracle: Keras's update_step, transcribed in float64, one variable at a time ----------------
def keras_steps(name, cfg, w0, grads):
    w = w0.astype(np.float64)
    lr = cfg.get("learning_rate")
    if name == "sgd":
        mom, nest = cfg.get("momentum", 0.0), cfg.get("nesterov", False)
        m = np.zeros_like(w)
        for g in grads:
            if mom:
                m = m * mom - g * lr
                w = w + (m * mom - g * lr if nest else m)
            else:
                w = w - g * lr
    elif name == "rmsprop":
        rho, eps, mom = cfg.get("rho", 0.9), cfg.get("epsilon", 1e-7), cfg.get("momentum", 0.0)
        v = np.zeros_like(w)
        mm = np.zeros_like(w)
        for g in grads:
            v = rho * v + (1 - rho) * g * g
            inc = lr * g / np.sqrt(v + eps)
            if mom > 0:
                mm = mom * mm + inc
                w = w - mm
            else:
                w = w - inc
    elif name == "adam":
        b1, b2, eps = cfg.get("beta_1", 0.9), cfg.get("beta_2", 0.999), cfg.get("epsilon", 1e-7)
        ams = cfg.get("amsgrad", False)
        m = np.zeros_like(w)
        v = np.zeros_like(w)
        vh = np.zeros_like(w)
        for t, g in enumerate(grads, start=1):
            alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
            m = m + (g - m) * (1 - b1)
            v = v + (g * g - v) * (1 - b2)
            if ams:
                vh = np.maximum(vh, v)
            w = w - m * alpha / (np.sqrt(vh if ams else v) + eps)
    elif name == "adagrad":
        eps, acc = cfg.get("epsilon", 1e-7), np.full_like(w, cfg.get("initial_accumulator_value", 0.1))
        for g in grads:
            acc = acc + g * g
            w = w - lr * g / np.sqrt(acc + eps)
    return w


CONFIGS = [
    ("sgd", dict(learning_rate=0.1)),
    ("sgd", dict(learning_rate=0.05, momentum=0.9)),
    ("sgd", dict(learning_rate=0.05, momentum=0.9, nesterov=True)),
    ("rmsprop", dict(learning_rate=1e-3)),
    ("rmsprop", dict(learning_rate=1e-2, rho=0.8, epsilon=1e-6, momentum=0.5)),
    ("adam", dict(learning_rate=1e-3)),
    ("adam", dict(learning_rate=1e-2, beta_1=0.8, beta_2=0.99, amsgrad=True)),
    ("adagrad", dict(learning_rate=1e-2)),
]
CLASSES = {"sgd": optimizers.SGD, "rmsprop": optimizers.RMSprop, "adam": optimizers.Adam,
           "adagrad": optimizers.Adagrad}


@settings(max_examples=40, deadline=None)
@given(cfg=st.sampled_from(CONFIGS), dt=st.sampled_from([np.float32, np.float64]),
       shapes=st.lists(st.lists(st.integers(0, 9), min_size=0, max_size=3).map(tuple), min_size=1, max_size=3),
       backend=st.sampled_from(["native", "numpy"]), seed=st.integers(0, 2**31 - 1))
def test_optimizer_matches_keras_formula(cfg, dt, shapes, backend, seed):
    name, kw = cfg
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dt) for s in shapes]
    w0 = [p.copy() for p in params]
    ids = [id(p) for p in params]
    grads_seq = [[rng.standard_normal(s).astype(dt) for s in shapes] for _ in range(4)]
    opt = CLASSES[name](**kw)
    opt.set_backend(backend)
    for grads in grads_seq:
        opt.update(params, grads)
    assert [id(p) for p in params] == ids  # same arrays, updated in place
    assert opt.iterations == 4
    for i, p in enumerate(params):
        assert p.dtype == dt
        expect = keras_steps(name, kw, w0[i], [g[i].astype(np.float64) for g in grads_seq])
        np.testing.assert_allclose(p, expect, **TOL[dt])


def test_rmsprop_keras_docstring_example():
    # keras/src/optimizers/rmsprop.py docstring: RMSprop(0.1), var 10, loss var**2/2 -> 9.683772
    w = np.array([10.0], np.float32)
    optimizers.RMSprop(learning_rate=0.1).update([w], [w.copy()])
    assert w[0] == pytest.approx(9.683772, abs=1e-6)


def test_native_equals_numpy_backend_float64():
    rng = np.random.default_rng(5)
    for name, kw in CONFIGS:
        a = rng.standard_normal(1000)
        b = a.copy()
        oa, ob = CLASSES[name](**kw), CLASSES[name](**kw)
        ob.set_backend("numpy")
        for _ in range(3):
            g = rng.standard_normal(1000)
            oa.update([a], [g])
            ob.update([b], [g])
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15, err_msg=name)


def test_large_update_thread_invariant():
    rng = np.random.default_rng(6)
    w = rng.standard_normal(300_001).astype(np.float32)
    g = rng.standard_normal(300_001).astype(np.float32)
    out = []
    for n in (1, 2):
        ww = w.copy()
        with pk.threads(n):
            o = optimizers.Adam()
            o.update([ww], [g])
            o.update([ww], [g])
        out.append(ww)
    np.testing.assert_array_equal(out[0], out[1])


# ---- in-place contract and errors ---------------------------------------------------------------------

def test_update_kernels_reject_arrays_they_cannot_update_in_place():
    w = np.zeros((4, 4), np.float32)
    g = np.ones((4, 4), np.float32)
    v = np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match="'param' must be C-contiguous"):
        pk.rmsprop_update(w.T, g, v)
    ro = w.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="'param' is read-only"):
        pk.rmsprop_update(ro, g, v)
    with pytest.raises(TypeError, match="must be a numpy.ndarray"):
        pk.sgd_update([0.0, 1.0], [1.0, 1.0], learning_rate=0.1)
    with pytest.raises(TypeError, match="'velocity' has dtype float64 but the parameter has dtype float32"):
        pk.rmsprop_update(w, g, v.astype(np.float64))
    with pytest.raises(ValueError, match=r"'grad' has shape \(4,3\) but the parameter has shape \(4,4\)"):
        pk.rmsprop_update(w, g[:, :3], v)
    with pytest.raises(ValueError, match="share memory"):
        pk.rmsprop_update(w, g, w)
    with pytest.raises(ValueError, match="share memory"):
        pk.sgd_update(w, w, learning_rate=0.1)
    with pytest.raises(TypeError, match="unsupported dtype int64"):
        pk.sgd_update(np.zeros(3, np.int64), np.zeros(3, np.int64), learning_rate=0.1)
    with pytest.raises(ValueError, match="learning_rate must be a finite number"):
        pk.sgd_update(w, g, learning_rate=float("nan"))
    with pytest.raises(ValueError, match="needs a 'velocity'"):
        pk.sgd_update(w, g, learning_rate=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="beta_1 and beta_2 must be < 1"):
        pk.adam_update(w, g, v, v.copy(), alpha=0.1, beta_1=1.0)
    np.testing.assert_array_equal(w, 0)  # nothing was touched by the failing calls


def test_grad_may_be_non_contiguous_and_is_not_modified():
    w = np.zeros(5, np.float32)
    g = np.arange(10, dtype=np.float32)[::2]
    g0 = g.copy()
    pk.sgd_update(w, g, learning_rate=1.0)
    np.testing.assert_array_equal(w, -g0)
    np.testing.assert_array_equal(g, g0)


def test_optimizer_class_errors():
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optimizers.SGD(learning_rate=-1)
    with pytest.raises(ValueError, match="Invalid beta_1"):
        optimizers.Adam(beta_1=1.0)
    with pytest.raises(ValueError, match="unknown optimizer"):
        optimizers.get("lbfgs")
    assert isinstance(optimizers.get("RMSprop"), optimizers.RMSprop)
    opt = optimizers.SGD()
    with pytest.raises(ValueError, match="shape"):
        opt.update([np.zeros(3)], [np.zeros(4)])
    with pytest.raises(ValueError, match="2 params but 1 grads"):
        opt.update([np.zeros(3), np.zeros(3)], [np.zeros(3)])
    o = optimizers.Adam()
    o.update([np.zeros(3)], [np.ones(3)])
    with pytest.raises(ValueError, match="parameter list changed"):
        o.update([np.zeros(4)], [np.ones(4)])


def test_keras_defaults():
    r = optimizers.RMSprop()
    assert (r.learning_rate, r.rho, r.epsilon, r.momentum) == (1e-3, 0.9, 1e-7, 0.0)
    a = optimizers.Adam()
    assert (a.learning_rate, a.beta_1, a.beta_2, a.epsilon) == (1e-3, 0.9, 0.999, 1e-7)
    assert optimizers.SGD().learning_rate == 0.01
    ag = optimizers.Adagrad()
    assert (ag.learning_rate, ag.initial_accumulator_value, ag.epsilon) == (1e-3, 0.1, 1e-7)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("where", ["vhat", "grad"])
def test_amsgrad_propagates_nan_like_np_maximum(dt, where):
    # vhat = np.maximum(vhat, v): a NaN on either side is kept, as in the reference
    n = 70  # a vector body and a tail
    rng = np.random.default_rng(1)
    args = {k: rng.random(n).astype(dt) for k in ("param", "grad", "m", "v", "vhat")}
    args[where][[0, 33, 69]] = np.nan
    want = {k: v.copy() for k, v in args.items()}
    pk.reference.adam_update(want["param"], want["grad"], want["m"], want["v"], alpha=1e-2, vhat=want["vhat"])
    pk.adam_update(args["param"], args["grad"], args["m"], args["v"], alpha=1e-2, vhat=args["vhat"])
    for k in ("param", "vhat"):
        np.testing.assert_array_equal(np.isnan(args[k]), np.isnan(want[k]), err_msg=k)
        assert np.isnan(args[k][[0, 33, 69]]).all()
