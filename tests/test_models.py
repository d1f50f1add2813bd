"""Sequential / History / Trainer: whole-model gradient check (float64), native vs NumPy backend,
Keras API behaviour, weights round trip, bad input, and the DLFS2 spiral example (>= 90% accuracy)."""

from __future__ import annotations

import numpy as np
import pytest
from nn_helpers import assert_grad_close, numerical_grad

import pykernels as pk
from pykernels.layers import Affine, Dense, Sigmoid, SoftmaxWithLoss


def small_model(backend="native", dtype="float32", seed=0, out_act="softmax", optimizer="rmsprop"):
    m = pk.Sequential([Dense(16, activation="relu", input_shape=(6,)), Dense(4, activation=out_act)],
                      backend=backend, dtype=dtype, seed=seed)
    m.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def toy_data(n=200, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(dtype)
    y = (np.argmax(x[:, :4] + 0.3 * x[:, 4:5], axis=1)).astype(np.int64)
    return x, y


@pytest.mark.parametrize("backend", ["native", "numpy"])
@pytest.mark.parametrize("out_act,loss", [("softmax", "sparse_categorical_crossentropy"),
                                          (None, pk.losses.SparseCategoricalCrossentropy(from_logits=True)),
                                          ("sigmoid", "mean_squared_error")])
def test_two_layer_model_gradient_finite_differences(backend, out_act, loss):
    m = pk.Sequential([Dense(7, activation="relu", input_shape=(5,)), Dense(3, activation=out_act)],
                      backend=backend, dtype="float64", seed=1)
    m.compile(optimizer="sgd", loss=loss)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 5))
    t = rng.integers(0, 3, 4) if m.loss.sparse else rng.random((4, 3))
    for p in m.params[1::2]:
        p[...] = rng.standard_normal(p.shape) * 0.2
    m.forward(x, t)
    m.backward()
    grads = [g.copy() for g in m.grads]
    for p, g in zip(m.params, grads):
        assert_grad_close(g, numerical_grad(lambda: m.forward(x, t), p))


def test_native_and_numpy_backends_train_identically_float64():
    x, y = toy_data(120, dtype=np.float64)
    hs = []
    for backend in ("native", "numpy"):
        m = small_model(backend, dtype="float64", seed=3)
        hs.append((m.fit(x, y, epochs=3, batch_size=32, verbose=0), m))
    (h1, m1), (h2, m2) = hs
    np.testing.assert_allclose(h1.history["loss"], h2.history["loss"], rtol=1e-10)
    for a, b in zip(m1.params, m2.params):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_fit_evaluate_predict_float32_end_to_end():
    x, y = toy_data(400)
    m = small_model(seed=4, optimizer=pk.optimizers.RMSprop(learning_rate=0.01))
    h = m.fit(x, y, epochs=15, batch_size=32, verbose=0, validation_split=0.25)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(h.epoch) == 15 and len(h.epoch_times) == 15
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert all(p.dtype == np.float32 for p in m.params + m.grads)
    loss, acc = m.evaluate(x, y)
    assert acc > 0.85 and loss < 0.5
    p = m.predict(x[:10], batch_size=3)
    assert p.dtype == np.float32 and p.shape == (10, 4)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
    assert (p.argmax(1) == m.predict(x[:10]).argmax(1)).all()
    # Keras's loss on probabilities equals the fused logits path (up to Keras's clipping)
    ref = pk.losses.SparseCategoricalCrossentropy()(y, m.predict(x))
    assert loss == pytest.approx(ref, rel=1e-4)


def test_fit_reuses_buffers_no_growth():
    x, y = toy_data(300)
    m = small_model(seed=5)
    m.fit(x, y, epochs=1, batch_size=64, verbose=0)
    owners = [*m.layers, m._loss_layer]
    bufs = {k: id(v) for l in owners for k, v in l._bufs.items()}
    params = [id(p) for p in m.params]
    m.fit(x, y, epochs=2, batch_size=64, verbose=0)
    assert {k: id(v) for l in owners for k, v in l._bufs.items()} == bufs
    assert [id(p) for p in m.params] == params


def test_save_and_load_weights(tmp_path):
    x, y = toy_data(100)
    m = small_model(seed=6)
    m.fit(x, y, epochs=2, batch_size=32, verbose=0)
    path = tmp_path / "w.npz"
    m.save_weights(path)
    m2 = small_model(seed=99)
    ids = [id(p) for p in m2.params]
    m2.load_weights(path)
    assert [id(p) for p in m2.params] == ids  # loaded in place
    np.testing.assert_array_equal(m.predict(x), m2.predict(x))
    other = pk.Sequential([Dense(8, activation="relu", input_shape=(6,)), Dense(4)], seed=0)
    with pytest.raises(ValueError, match="has shape"):
        other.load_weights(path)
    three = pk.Sequential([Dense(16, input_shape=(6,)), Dense(4), Dense(4)], seed=0)
    with pytest.raises(ValueError, match="does not match the model"):
        three.load_weights(path)


def test_bad_input_errors():
    x, y = toy_data(50)
    m = small_model()
    with pytest.raises(ValueError, match="expects 6 input features, got 5"):
        m.fit(x[:, :5], y, verbose=0)
    with pytest.raises(ValueError, match="2-d"):
        m.fit(x.reshape(50, 2, 3), y, verbose=0)
    with pytest.raises(ValueError, match="different lengths: 50 samples in x, 49 in y"):
        m.fit(x, y[:49], verbose=0)
    bad = y.copy()
    bad[7] = 4
    with pytest.raises(ValueError, match="label 4 at index 7 is out of range for the model's 4 outputs"):
        m.fit(x, bad, verbose=0)
    bad[7] = -1
    with pytest.raises(ValueError, match="label -1 at index 7"):
        m.evaluate(x, bad)
    xn = x.copy()
    xn[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity.*sample 3"):
        m.fit(xn, y, verbose=0)
    with pytest.raises(ValueError, match="NaN or infinity"):
        m.predict(xn)
    with pytest.raises(ValueError, match="expects 6 input features"):
        m.predict(x[:, :4])
    with pytest.raises(TypeError, match="numeric"):
        m.predict(np.array([["a"] * 6]))
    with pytest.raises(ValueError, match="integer class indices"):
        m.fit(x, y + 0.5, verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        m.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(RuntimeError, match="compile"):
        pk.Sequential([Dense(2, input_shape=(6,))]).fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="backend"):
        pk.Sequential(backend="cuda")
    mc = pk.Sequential([Dense(4, activation="softmax", input_shape=(6,))])
    mc.compile(loss="categorical_crossentropy")
    with pytest.raises(ValueError, match=r"targets must have shape \(50, 4\)"):
        mc.fit(x, y, verbose=0)
    assert mc.fit(x, pk.to_categorical(y, 4), verbose=0, epochs=1).history["loss"][0] > 0


def test_progress_bar_output(capsys):
    x, y = toy_data(100)
    m = small_model()
    m.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert capsys.readouterr().out == ""
    m.fit(x, y, epochs=2, batch_size=32, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert "4/4 [==============================]" in out and "/step - loss: " in out and "accuracy: " in out


def test_summary(capsys):
    m = pk.Sequential([Dense(512, activation="relu", input_shape=(784,)), Dense(10, activation="softmax")])
    m.summary()
    out = capsys.readouterr().out
    assert "dense (Dense)" in out and "dense_1 (Dense)" in out and "(None, 512)" in out
    assert "401920" in out and "5130" in out and "Total params: 407,050" in out


# ---- DLFS2: the spiral data with Trainer, and with Sequential ------------------------------------------

class TwoLayerNet:
    """DLFS2 ch01/two_layer_net.py on pykernels layers."""

    def __init__(self, input_size, hidden_size, output_size, seed=0):
        rng = np.random.default_rng(seed)
        W1 = (0.01 * rng.standard_normal((input_size, hidden_size))).astype("f")
        W2 = (0.01 * rng.standard_normal((hidden_size, output_size))).astype("f")
        self.layers = [Affine(W1, np.zeros(hidden_size, "f")), Sigmoid(), Affine(W2, np.zeros(output_size, "f"))]
        self.loss_layer = SoftmaxWithLoss()
        self.params = [p for layer in self.layers for p in layer.params]
        self.grads = [g for layer in self.layers for g in layer.grads]

    def predict(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def forward(self, x, t):
        return self.loss_layer.forward(self.predict(x), t)

    def backward(self, dout=1.0):
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout


def test_spiral_trainer_reaches_90_percent(capsys):
    x, t = pk.datasets.spiral.load_data(seed=1984)
    x = x.astype(np.float32)
    model = TwoLayerNet(2, 10, 3, seed=0)
    trainer = pk.Trainer(model, pk.optimizers.SGD(learning_rate=1.0), seed=0)
    trainer.fit(x, t, max_epoch=300, batch_size=30, eval_interval=10)
    out = capsys.readouterr().out
    assert "| epoch 1 |  iter 1 / 10 | time 0[s] | loss 1.10" in out
    acc = float(np.mean(model.predict(x).argmax(1) == t.argmax(1)))
    assert acc >= 0.90, acc
    assert trainer.loss_list[-1] < trainer.loss_list[0]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"pykernels\[plot\]"):
            trainer.plot()


def test_spiral_sequential_reaches_90_percent():
    x, t = pk.datasets.spiral.load_data(seed=1984)
    m = pk.Sequential([Dense(30, activation="relu", input_shape=(2,)), Dense(3, activation="softmax")], seed=0)
    m.compile(optimizer=pk.optimizers.Adam(learning_rate=0.01), loss="categorical_crossentropy",
              metrics=["accuracy"])
    m.fit(x, t.astype(np.float32), epochs=150, batch_size=30, verbose=0)
    assert m.evaluate(x, t)[1] >= 0.90


def test_trainer_with_sequential_and_tied_weights():
    x, y = toy_data(64)
    m = small_model(seed=7)
    tr = pk.Trainer(m, "adam", seed=0)
    tr.fit(x, y, max_epoch=2, batch_size=16, eval_interval=None)
    assert tr.current_epoch == 2
    from pykernels.trainer import clip_grads, remove_duplicate
    a = np.ones(3, np.float32)
    ga, gb = np.full(3, 1.0, np.float32), np.full(3, 2.0, np.float32)
    p, g = remove_duplicate([a, a], [ga, gb])
    assert len(p) == 1 and np.all(g[0] == 3) and np.all(ga == 1)
    gs = [np.full(4, 3.0), np.full(4, 4.0)]
    clip_grads(gs, 1.0)
    assert np.sqrt(sum((q**2).sum() for q in gs)) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="different lengths"):
        tr.fit(x, y[:10])


class _TTY(__import__("io").StringIO):
    def isatty(self):
        return True


def test_progbar_terminal_and_verbose_modes():
    from pykernels.utils import Progbar

    f = _TTY()
    bar = Progbar(3, verbose=1, interval=0.0, file=f, use_tqdm=False)
    bar.update(1, {"loss": 2.0})
    bar.update(3, {"loss": 1.5, "accuracy": 0.5}, finalize=True)
    out = f.getvalue()
    assert out.startswith("\r1/3 [=========>") and "ETA:" in out
    assert out.endswith("- loss: 1.5000 - accuracy: 0.5000\n") and "3/3 [==============================]" in out
    f2 = _TTY()
    bar = Progbar(3, verbose=2, file=f2)
    bar.update(1, {"loss": 2.0})
    bar.update(3, {"loss": 1.0}, finalize=True)
    assert f2.getvalue().count("\n") == 1 and "\r" not in f2.getvalue()


def test_progbar_tqdm_backend():
    pytest.importorskip("tqdm")
    from pykernels.utils import Progbar

    f = _TTY()
    bar = Progbar(4, verbose=1, interval=0.0, file=f)
    assert bar._tqdm is not None
    bar.update(2, {"loss": 1.25})
    bar.update(4, {"loss": 1.0, "accuracy": 0.75}, finalize=True)
    assert "4/4 [==============================]" in f.getvalue()
    assert "loss: 1.0000 - accuracy: 0.7500" in f.getvalue()


@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_separate_softmax_layer_is_fused_with_the_loss(backend):
    from pykernels.layers import Softmax

    m = pk.Sequential([Dense(6, activation="relu", input_shape=(4,)), Dense(3), Softmax()],
                      backend=backend, dtype="float64", seed=2)
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert isinstance(m._loss_layer, SoftmaxWithLoss) and m._softmax_in_loss
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 4))
    t = rng.integers(0, 3, 5)
    m.forward(x, t)
    m.backward()
    grads = [g.copy() for g in m.grads]
    # the loss through the clipped-probability path equals the fused one, and so do the gradients
    probs = m.predict(x)
    assert m.forward(x, t) == pytest.approx(pk.losses.SparseCategoricalCrossentropy()(t, probs), rel=1e-9)
    for p, g in zip(m.params, grads):
        assert_grad_close(g, numerical_grad(lambda: m.forward(x, t), p))


def test_trainer_plot_to_file(tmp_path):
    pytest.importorskip("matplotlib")
    x, t = pk.datasets.spiral.load_data(seed=1984)
    tr = pk.Trainer(TwoLayerNet(2, 10, 3, seed=0), pk.optimizers.SGD(learning_rate=1.0), seed=0)
    tr.fit(x.astype(np.float32), t, max_epoch=3, batch_size=30, eval_interval=5)
    tr.plot(tmp_path / "loss.png")
    assert (tmp_path / "loss.png").stat().st_size > 1000


# ---- Keras API details ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["w", "w.npz", "model.weights.h5", "ckpt.bin"])
def test_weights_round_trip_through_the_same_path(tmp_path, name):
    """save_weights(p) then load_weights(p) with the very same p, whatever its suffix (np.savez given
    a name would have written p + '.npz')."""
    x, _ = toy_data(20)
    m, m2 = small_model(seed=1), small_model(seed=2)
    path = tmp_path / name
    m.save_weights(path)
    assert path.exists() and sorted(p.name for p in tmp_path.iterdir()) == [name]
    m2.load_weights(str(path))
    np.testing.assert_array_equal(m.predict(x), m2.predict(x))


def test_get_and_set_weights_model_and_layer():
    x, _ = toy_data(20)
    m, m2 = small_model(seed=1), small_model(seed=2)
    assert [w.shape for w in m.get_weights()] == [(6, 16), (16,), (16, 4), (4,)]
    ids = [id(p) for p in m2.params]
    m2.set_weights(m.get_weights())
    assert [id(p) for p in m2.params] == ids  # in place: an optimizer keeps its references
    np.testing.assert_array_equal(m.predict(x), m2.predict(x))
    kernel, bias = m.layers[0].get_weights()
    m2.layers[0].set_weights([kernel * 0, bias])
    np.testing.assert_array_equal(m2.layers[0].kernel, 0)
    before = m2.get_weights()
    with pytest.raises(ValueError, match=r"expected 4 arrays .* got 3"):
        m2.set_weights(m.get_weights()[:3])
    with pytest.raises(ValueError, match=r"weight 3 has shape \(5,\), the parameter has shape \(4,\)"):
        m2.set_weights([*m.get_weights()[:3], np.zeros(5)])
    for a, b in zip(m2.get_weights(), before):  # nothing half-assigned
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n,split", [(10, 0.05), (10, 0.25), (7, 0.5), (400, 0.25), (3, 0.34)])
def test_validation_split_counts_like_keras(n, split):
    """Keras: training samples are x[:floor(n * (1 - split))], validation the rest."""
    import math

    x, y = toy_data(n)
    m = small_model(seed=0)
    seen = {}
    evaluate = m.evaluate

    def spy(xv, yv, **kw):
        seen["n_val"] = len(xv)
        return evaluate(xv, yv, **kw)

    m.evaluate = spy
    h = m.fit(x, y, epochs=1, batch_size=1, validation_split=split, verbose=0, shuffle=False)
    split_at = int(math.floor(n * (1 - split)))
    assert seen["n_val"] == n - split_at
    assert h.params["steps"] == split_at


def test_validation_split_too_small_is_keras_error():
    x, y = toy_data(1)
    with pytest.raises(ValueError, match=r"1 samples, which is not sufficient to split"):
        small_model().fit(x, y, validation_split=0.5, verbose=0)


def test_batch_size_none_is_32():
    x, y = toy_data(70)
    m = small_model()
    assert m.fit(x, y, epochs=1, batch_size=None, verbose=0).params["batch_size"] == 32
    assert m.predict(x, batch_size=None).shape == (70, 4)
    assert np.isfinite(m.evaluate(x, y, batch_size=None)[0])


def test_model_with_known_input_is_built_at_once():
    m = pk.Sequential([Dense(5, input_shape=(3,)), Dense(2)], seed=0)
    assert m.built and m.count_params() == 3 * 5 + 5 + 5 * 2 + 2
    assert [w.shape for w in m.get_weights()] == [(3, 5), (5,), (5, 2), (2,)]
    m.add(Dense(4))
    assert m.count_params() == 3 * 5 + 5 + 5 * 2 + 2 + 2 * 4 + 4
    unknown = pk.Sequential([Dense(5)], seed=0)
    assert not unknown.built and unknown.get_weights() == []
    # building at construction draws the same initial weights as building later
    late = pk.Sequential(seed=7)
    late.add(Dense(5))
    late.build(3)
    early = pk.Sequential([Dense(5, input_shape=(3,))], seed=7)
    for a, b in zip(late.get_weights(), early.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_mse_takes_1d_targets_of_a_one_output_model():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5], np.float32)
    m = pk.Sequential([Dense(1, input_shape=(3,))], seed=0)
    m.compile(optimizer=pk.optimizers.SGD(learning_rate=0.1), loss="mse")
    h = m.fit(x, y, epochs=20, batch_size=16, verbose=0)
    assert h.history["loss"][-1] < 0.01 * h.history["loss"][0]
    loss = pk.losses.MeanSquaredError()
    assert loss(y, m.predict(x)) == pytest.approx(loss(y[:, None], m.predict(x)))
    with pytest.raises(ValueError, match=r"targets must have shape \(64, 1\)"):
        m.fit(x, np.stack([y, y], 1), verbose=0)


def test_nan_loss_stops_fit_with_floating_point_error():
    x, y = toy_data(64)
    m = small_model(optimizer=pk.optimizers.SGD(learning_rate=1e30))
    with pytest.raises(FloatingPointError, match=r"the loss became (nan|inf)"):
        m.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert all(np.isfinite(p).all() for p in m.params)  # the step with the NaN loss was not applied


@pytest.mark.parametrize("metric", ["accuracy", "acc"])
def test_metric_keys_are_the_names_given_and_evaluate_return_dict(metric):
    x, y = toy_data(80)
    m = pk.Sequential([Dense(16, activation="relu", input_shape=(6,)), Dense(4, activation="softmax")], seed=0)
    m.compile(loss="sparse_categorical_crossentropy", metrics=[metric])
    h = m.fit(x, y, epochs=1, validation_split=0.25, verbose=0)
    assert set(h.history) == {"loss", metric, "val_loss", f"val_{metric}"}
    d = m.evaluate(x, y, return_dict=True)
    assert set(d) == {"loss", metric} and [d["loss"], d[metric]] == m.evaluate(x, y)
    m.compile(loss="sparse_categorical_crossentropy")
    assert m.evaluate(x, y, return_dict=True) == {"loss": m.evaluate(x, y)}
    with pytest.raises(ValueError, match="accuracy given twice"):
        m.compile(metrics=["acc", "accuracy"])


def test_adding_a_layer_after_compile_asks_for_compile_again():
    x, y = toy_data(32)
    m = pk.Sequential([Dense(8, activation="relu", input_shape=(6,)), Dense(4)], seed=0)
    m.compile(optimizer="sgd", loss=pk.losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(x, y, verbose=0)
    m.add(Dense(4, activation="softmax"))
    with pytest.raises(RuntimeError, match=r"layers were added after compile\(\); call model.compile"):
        m.fit(x, y, verbose=0)
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert np.isfinite(m.fit(x, y, verbose=0).history["loss"][0])


@pytest.mark.parametrize("make", [
    lambda: Dense(3, input_shape=(2,)), lambda: Dense(3, activation="softmax", input_shape=(2,)),
    lambda: pk.layers.ReLU(), lambda: pk.layers.Sigmoid(), lambda: pk.layers.Softmax(),
    lambda: pk.layers.Affine(np.ones((2, 3)), np.zeros(3)), lambda: pk.layers.MatMul(np.ones((2, 3))),
], ids=["dense", "dense_softmax", "relu", "sigmoid", "softmax", "affine", "matmul"])
def test_backward_before_forward_is_a_clear_error(make):
    layer = make()
    layer.build(2, np.random.default_rng(0), np.float64)
    with pytest.raises(RuntimeError, match=r"backward: call forward\(x\) first"):
        layer.backward(np.ones((4, 3)))
    with pytest.raises(RuntimeError, match=r"backward: call forward\(x\) first"):
        pk.layers.SoftmaxWithLoss().backward()


@pytest.mark.parametrize("backend", ["native", "numpy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("head", ["dense_softmax", "softmax_layer"])
def test_training_step_is_the_fused_kernel_sequence(backend, dtype, head):
    """Sequential's step on the book's model is exactly (bit for bit) the hand-written kernel sequence:
    dense (bias + relu in the GEMM), dense (logits), softmax + cross-entropy and d logits in one pass,
    dense_backward twice (no dx for the first layer), one optimizer update per parameter."""
    from pykernels._kernels import get_backend

    last = [Dense(4, activation="softmax")] if head == "dense_softmax" else [Dense(4), pk.layers.Softmax()]
    m = pk.Sequential([Dense(16, activation="relu", input_shape=(6,)), *last], backend=backend, dtype=dtype, seed=3)
    m.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    k = get_backend(backend)
    W1, b1, W2, b2 = m.get_weights()
    opt = pk.optimizers.get("rmsprop")
    opt.set_backend(k)
    x, y = toy_data(96, seed=4, dtype=dtype)
    for step in range(6):
        xb, yb = x[16 * step:16 * (step + 1)], y[16 * step:16 * (step + 1)]
        loss, _ = m.train_on_batch(xb, yb)
        h = k.dense(xb, W1, b1, activation="relu")
        z = k.dense(h, W2, b2, activation=None)
        dz = np.empty_like(z)
        expect = k.softmax_cross_entropy(z, yb, dlogits=dz)
        dh, dW2, db2 = k.dense_backward(dz, h, W2, activation=None)
        _, dW1, db1 = k.dense_backward(dh, xb, W1, y=h, activation="relu", need_dx=False)
        opt.update([W1, b1, W2, b2], [dW1, db1, dW2, db2])
        assert loss == expect
        for a, b in zip(m.get_weights(), (W1, b1, W2, b2)):
            np.testing.assert_array_equal(a, b)
    # predict: the softmax the last layer handed to the loss, applied to the logits
    np.testing.assert_array_equal(m.predict(x[:5]), k.softmax(k.dense(k.dense(x[:5], W1, b1, activation="relu"),
                                                                     W2, b2)))


class _Scale:
    """A user-written layer with nothing but the DLFS2 protocol: y = x * s (per feature)."""

    def __init__(self, n):
        self.params = [np.full(n, 0.5)]
        self.grads = [np.zeros(n)]

    def forward(self, x):
        self.x = x
        return x * self.params[0]

    def backward(self, dout):
        self.grads[0][...] = (dout * self.x).sum(axis=0)
        return dout * self.params[0]


class _HalfSquaredError:
    """A user-written loss layer with nothing but forward(x, t) and backward(dout)."""

    def forward(self, x, t):
        self.d = x - t
        return 0.5 * float(np.mean(np.sum(self.d * self.d, axis=1)))

    def backward(self, dout=1.0):
        return dout * self.d / len(self.d)


@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_user_written_layer_and_loss_only_need_forward_and_backward(backend):
    """The protocol is the whole contract between a model and its layers and loss: Sequential trains,
    evaluates, predicts and saves a model made of a layer and a loss that know nothing of pykernels,
    and gets the gradient descent computed by hand."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((20, 4))
    t = rng.standard_normal((20, 3))
    m = pk.Sequential([Dense(3, input_shape=(4,)), _Scale(3)], backend=backend, dtype="float64", seed=1)
    m.compile(optimizer=pk.optimizers.SGD(learning_rate=0.1), loss=_HalfSquaredError())
    W, b = (a.copy() for a in m.layers[0].params)
    s = np.full(3, 0.5)
    losses_by_hand = []
    for _ in range(5):
        z = x @ W + b
        d = z * s - t
        losses_by_hand.append(0.5 * np.mean(np.sum(d * d, axis=1)))
        d /= len(x)
        ds, dz = (d * z).sum(axis=0), d * s
        W, b, s = W - 0.1 * x.T @ dz, b - 0.1 * dz.sum(axis=0), s - 0.1 * ds
    hist = m.fit(x, t, epochs=5, batch_size=len(x), shuffle=False, verbose=0)
    np.testing.assert_allclose(hist.history["loss"], losses_by_hand, rtol=1e-12)
    for got, want in zip(m.get_weights(), (W, b, s)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(m.predict(x), (x @ W + b) * s, rtol=1e-12)
    d = (x @ W + b) * s - t
    assert m.evaluate(x, t) == pytest.approx(0.5 * np.mean(np.sum(d * d, axis=1)), rel=1e-12)
    assert m.count_params() == 4 * 3 + 3 + 3
    m.summary(print_fn=lambda line: None)
    # the DLFS2 model protocol (Trainer) on the same model
    m.forward(x, t)
    m.backward()
    assert np.any(m.layers[1].grads[0] != 0)
    with pytest.raises(TypeError, match="forward"):
        m.add(object())


@pytest.mark.parametrize("backend", ["native", "numpy"])
def test_recompile_or_add_takes_the_softmax_back(backend):
    """The softmax a layer handed to a cross-entropy loss comes back when the model is compiled with
    another loss, and when a layer is added after it: predictions stay probabilities throughout."""
    x, y = toy_data(40)
    m = small_model(backend)
    p = m.predict(x)
    assert m.layers[-1]._softmax_in_loss
    m.compile(optimizer="sgd", loss="mse")
    assert not m.layers[-1]._softmax_in_loss
    np.testing.assert_array_equal(m.predict(x), p)
    np.testing.assert_array_equal(m.layers[-1].forward(m.layers[0].forward(x)), p)
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    m.add(pk.layers.ReLU())
    assert not m.layers[-2]._softmax_in_loss
    np.testing.assert_array_equal(m.predict(x), p)  # ReLU of probabilities: themselves


def test_compile_with_a_softmax_with_loss_layer():
    """compile(loss=SoftmaxWithLoss()) after a softmax output trains as the Keras name does."""
    x, y = toy_data(64)
    a, b = small_model(seed=4), small_model(seed=4)
    b.compile(optimizer="rmsprop", loss=SoftmaxWithLoss(), metrics=["accuracy"])
    ha = a.fit(x, y, epochs=2, batch_size=16, verbose=0)
    hb = b.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert ha.history == hb.history
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
