"""``fit`` (and ``Trainer.fit``, ``train_on_batch``) under bad data: every refused input is a clear
error before the first step, with the weights, the optimizer's state (moments, iteration counter) and
the model's random generator bit-identical afterwards, and the same call with the data fixed then
trains. A NaN/infinite loss is a ``FloatingPointError`` whose step is not applied: the model equals a
run stopped just before that step. Every optimizer, both backends."""

from __future__ import annotations

import re

import numpy as np
import pytest

import pykernels as pk
from pykernels import optimizers
from pykernels.layers import Dense

OPTIMIZERS = {
    "sgd": lambda: optimizers.SGD(learning_rate=0.05),
    "sgd_momentum": lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9),
    "sgd_nesterov": lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
    "rmsprop": lambda: optimizers.RMSprop(),
    "rmsprop_momentum": lambda: optimizers.RMSprop(momentum=0.5),
    "adam": lambda: optimizers.Adam(),
    "amsgrad": lambda: optimizers.Adam(amsgrad=True),
    "adagrad": lambda: optimizers.Adagrad(),
}
BACKENDS = ["native", "numpy"]
# the NumPy backend warns where the NaN-loss tests overflow on purpose
pytestmark = pytest.mark.filterwarnings("ignore:(overflow|invalid value) encountered:RuntimeWarning")
N, F, C = 40, 6, 4


def data(n=N, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, F)).astype(dtype)
    y = np.argmax(x[:, :C] + 0.3 * x[:, C:C + 1], axis=1).astype(np.int64)
    return x, y


def model(backend="native", opt="adam", dtype="float32", loss="sparse_categorical_crossentropy",
          input_shape=(F,), seed=0):
    first = Dense(16, activation="relu", input_shape=input_shape) if input_shape else Dense(16, activation="relu")
    m = pk.Sequential([first, Dense(C, activation="softmax")], backend=backend, dtype=dtype, seed=seed)
    m.compile(optimizer=OPTIMIZERS[opt](), loss=loss, metrics=["accuracy"])
    return m


def snapshot(m):
    """Everything fit may change, as bytes: parameters, optimizer slots and counter, the generator."""
    opt = m.optimizer
    state = None if opt._state is None else [{k: (v.dtype.str, v.shape, v.tobytes()) for k, v in s.items()}
                                             for s in opt._state]
    return {
        "built": m.built,
        "params": [(p.dtype.str, p.shape, p.tobytes()) for p in m.params],
        "opt_state": state,
        "iterations": opt.iterations,
        "rng": m.rng.bit_generator.state,
    }


def trained(backend, opt, **kw):
    """A model one epoch into training, so the optimizer has non-zero moments and a counter."""
    m = model(backend, opt, **kw)
    x, y = data()
    m.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert m.optimizer.iterations == 3 and m.optimizer._state is not None
    return m


def assert_trains_after(m, x, y, **kw):
    before = snapshot(m)
    h = m.fit(x, y, epochs=1, batch_size=16, verbose=0, **kw)
    assert np.isfinite(h.history["loss"][0])
    assert snapshot(m)["params"] != before["params"]
    assert all(np.isfinite(p).all() for p in m.params)


# ---- refused before the first step: (mutate(x, y) -> fit kwargs, exception, message) ----------------
def _x_nan(x, y):
    x[7, 2] = np.nan
    return dict(x=x, y=y)


def _x_inf(x, y):
    x[11, 0] = -np.inf
    return dict(x=x, y=y)


def _x_overflows_float32(x, y):
    x = x.astype(np.float64)
    x[5, 3] = 1e300
    return dict(x=x, y=y)


def _label_n_classes(x, y):
    y[9] = C
    return dict(x=x, y=y)


def _label_minus_one(x, y):
    y[9] = -1
    return dict(x=x, y=y)


def _label_uint64_2_63(x, y):
    y = y.astype(np.uint64)
    y[9] = np.uint64(2**63)
    return dict(x=x, y=y)


def _label_uint64_max(x, y):
    y = y.astype(np.uint64)
    y[3] = np.uint64(2**64 - 1)
    return dict(x=x, y=y)


def _label_float_2_63(x, y):
    y = y.astype(np.float64)
    y[9] = 2.0**63
    return dict(x=x, y=y)


def _label_float_1e300(x, y):
    y = y.astype(np.float64)
    y[2] = 1e300
    return dict(x=x, y=y)


def _label_nan(x, y):
    y = y.astype(np.float64)
    y[4] = np.nan
    return dict(x=x, y=y)


def _label_fraction(x, y):
    y = y.astype(np.float64)
    y[6] = 1.5
    return dict(x=x, y=y)


def _len_mismatch(x, y):
    return dict(x=x, y=y[:-1])


def _val_x_nan(x, y):
    xv = x[:8].copy()
    xv[2, 1] = np.nan
    return dict(x=x, y=y, validation_data=(xv, y[:8]))


def _val_label(x, y):
    yv = y[:8].copy()
    yv[5] = C
    return dict(x=x, y=y, validation_data=(x[:8], yv))


def _val_uint64_label(x, y):
    yv = y[:8].astype(np.uint64)
    yv[5] = np.uint64(2**63)
    return dict(x=x, y=y, validation_data=(x[:8], yv))


def _val_len_mismatch(x, y):
    return dict(x=x, y=y, validation_data=(x[:8], y[:7]))


def _val_features(x, y):
    return dict(x=x, y=y, validation_data=(x[:8, :5], y[:8]))


def _val_empty(x, y):
    return dict(x=x, y=y, validation_data=(x[:0], y[:0]))


def _val_three(x, y):
    return dict(x=x, y=y, validation_data=(x[:8], y[:8], y[:8]))


def _val_array(x, y):
    return dict(x=x, y=y, validation_data=np.zeros((2, 8)))


BAD = {
    "x_nan": (_x_nan, ValueError, r"^fit: x contains NaN or infinity \(first at sample 7\)$"),
    "x_inf": (_x_inf, ValueError, r"^fit: x contains NaN or infinity \(first at sample 11\)$"),
    "x_overflow": (_x_overflows_float32, ValueError, r"^fit: x holds 1e\+300 at sample 5, which overflows float32"),
    "label_n_classes": (_label_n_classes, ValueError, r"^fit: label 4 at index 9 is out of range for the model's "
                                                      r"4 outputs \(expected 0 <= label < 4\)$"),
    "label_minus_one": (_label_minus_one, ValueError, r"^fit: label -1 at index 9 is out of range"),
    "label_uint64_2**63": (_label_uint64_2_63, ValueError, r"^fit: label 9223372036854775808 at index 9 is out"),
    "label_uint64_max": (_label_uint64_max, ValueError, r"^fit: label 18446744073709551615 at index 3 is out"),
    "label_float_2**63": (_label_float_2_63, ValueError, r"^fit: label 9223372036854775808 at index 9 is out"),
    "label_float_1e300": (_label_float_1e300, ValueError, r"^fit: label 1e\+300 at index 2 is out of range"),
    "label_nan": (_label_nan, ValueError, r"^fit: labels contain NaN or infinity \(first at index 4: nan\)$"),
    "label_fraction": (_label_fraction, ValueError, r"^fit: labels must be integer class indices, got 1\.5 at "
                                                    r"index 6$"),
    "len_mismatch": (_len_mismatch, ValueError, r"^fit: x and y have different lengths: 40 samples in x, 39 in y$"),
    "val_x_nan": (_val_x_nan, ValueError, r"^fit\(validation_data\): x contains NaN or infinity \(first at "
                                          r"sample 2\)$"),
    "val_label": (_val_label, ValueError, r"^fit\(validation_data\): label 4 at index 5 is out of range"),
    "val_uint64_label": (_val_uint64_label, ValueError,
                         r"^fit\(validation_data\): label 9223372036854775808 at index 5 is out of range"),
    "val_len_mismatch": (_val_len_mismatch, ValueError,
                         r"^fit\(validation_data\): x and y have different lengths: 8 samples in x, 7 in y$"),
    "val_features": (_val_features, ValueError, r"^fit\(validation_data\): the model expects 6 input features, got 5"),
    "val_empty": (_val_empty, ValueError, r"^fit\(validation_data\): no validation samples$"),
    "val_three": (_val_three, ValueError, r"^fit: validation_data must be a tuple \(x_val, y_val\), got tuple of "
                                          r"length 3$"),
    "val_array": (_val_array, ValueError, r"^fit: validation_data must be a tuple \(x_val, y_val\), got ndarray$"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("case", list(BAD))
def test_bad_data_is_refused_before_the_first_step_and_changes_nothing(case, opt, backend):
    mutate, exc, msg = BAD[case]
    m = trained(backend, opt)
    x, y = data(seed=1)
    before = snapshot(m)
    with pytest.raises(exc, match=msg):
        m.fit(**mutate(x.copy(), y.copy()), epochs=2, batch_size=16, verbose=0)
    assert snapshot(m) == before
    assert_trains_after(m, x, y, validation_data=(x[:8], y[:8]))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["x_nan", "label_uint64_2**63", "len_mismatch", "val_label", "val_empty"])
def test_bad_data_before_any_training_leaves_an_unbuilt_model_unbuilt(case, backend):
    mutate, exc, msg = BAD[case]
    m = model(backend, "adam", input_shape=None)
    x, y = data()
    before = snapshot(m)
    assert not before["built"] and before["params"] == [] and before["opt_state"] is None
    with pytest.raises(exc, match=msg):
        m.fit(**mutate(x.copy(), y.copy()), verbose=0)
    assert snapshot(m) == before
    # the weights it then gets are the ones a model that never saw the bad call gets
    fresh = model(backend, "adam", input_shape=None)
    m.fit(x, y, epochs=1, batch_size=16, verbose=0)
    fresh.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert snapshot(m) == snapshot(fresh)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("opt", ["sgd_momentum", "adam"])
def test_bad_one_hot_targets_are_refused_and_change_nothing(opt, backend):
    m = model(backend, opt, loss="categorical_crossentropy")
    x, y = data()
    t = pk.to_categorical(y, C)
    m.fit(x, t, epochs=1, batch_size=16, verbose=0)
    before = snapshot(m)
    bad = t.copy()
    bad[13, 1] = np.inf
    with pytest.raises(ValueError, match=r"^fit: targets contain NaN or infinity \(first at sample 13\)$"):
        m.fit(x, bad, verbose=0)
    bad = t.astype(np.float64)
    bad[2, 0] = 1e300
    with pytest.raises(ValueError, match=r"^fit: targets hold 1e\+300 at sample 2, which overflows float32"):
        m.fit(x, bad, verbose=0)
    with pytest.raises(ValueError, match=r"^fit: targets must have shape \(40, 4\), got \(40, 3\)$"):
        m.fit(x, t[:, :3], verbose=0)
    with pytest.raises(ValueError, match=r"^fit: targets must have shape \(40, 4\), got \(40,\)$"):
        m.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match=r"^fit\(validation_data\): targets contain NaN or infinity"):
        m.fit(x, t, validation_data=(x[:4], np.full((4, C), np.nan)), verbose=0)
    assert snapshot(m) == before
    assert_trains_after(m, x, t)


# ---- a NaN / infinite loss --------------------------------------------------------------------------
def _where(err) -> tuple[int, int]:
    e, s = re.search(r"at epoch (\d+), step (\d+)", str(err)).groups()
    return int(e), int(s)


def _huge_row(x, i, dtype):
    """Row i so large that the hidden layer overflows: the loss of its batch is NaN whatever the weights."""
    x[i] = np.finfo(dtype).max * np.array([1, -1, 1, -1, 1, -1])
    return x


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_nan_loss_step_is_not_applied_and_equals_a_run_stopped_before_it(opt, dtype, backend):
    bs, step = 8, 3
    x, y = data(dtype=dtype)
    x = _huge_row(x, (step - 1) * bs + 2, dtype)  # in the third batch of the epoch (no shuffling)
    m = trained(backend, opt, dtype=dtype)
    ref = trained(backend, opt, dtype=dtype)
    assert snapshot(m) == snapshot(ref)
    with pytest.raises(FloatingPointError, match=r"the loss became (nan|inf) at epoch 1, step 3 \(that step was not "
                                                 r"applied\)") as ei:
        m.fit(x, y, epochs=2, batch_size=bs, shuffle=False, validation_data=(x[:8], y[:8]), verbose=0)
    assert all(np.isfinite(p).all() for p in m.params)
    ref.fit(x[:(step - 1) * bs], y[:(step - 1) * bs], epochs=1, batch_size=bs, shuffle=False, verbose=0)
    assert snapshot(m) == snapshot(ref)
    assert m.optimizer.iterations == 3 + step - 1
    h = ei.value.history
    assert isinstance(h, pk.History) and h.epoch == [] and h.history == {} and h.params["steps"] == 5
    # fix the data: training goes on from there
    assert_trains_after(m, *data(dtype=dtype))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_nan_loss_at_the_first_step_changes_nothing(opt, backend):
    x, y = data()
    x = _huge_row(x, 1, np.float32)
    m = trained(backend, opt)
    before = snapshot(m)
    with pytest.raises(FloatingPointError, match=r"at epoch 1, step 1 \(that step was not applied\)"):
        m.fit(x, y, batch_size=8, shuffle=False, verbose=0)
    assert snapshot(m) == before
    with pytest.raises(FloatingPointError, match=r"^train_on_batch: the loss is (nan|inf); the step was not applied$"):
        m.train_on_batch(x[:8], y[:8])
    assert snapshot(m) == before


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("opt,lr,min_epoch", [
    ("sgd", 1e30, 1), ("sgd", 1e3, 2), ("sgd_momentum", 300.0, 2), ("sgd_nesterov", 100.0, 2),
    ("rmsprop", 1e30, 1), ("adam", 1e30, 1), ("amsgrad", 1e30, 1), ("adagrad", 1e30, 1),
])
def test_diverging_learning_rate_stops_with_the_last_finite_weights(opt, lr, min_epoch, backend):
    """The loss blows up from the updates themselves (a huge learning rate) at some step after the
    first, in the second epoch or later for some: the weights are finite, the state equals a run
    stopped before that step, and the error's History holds the completed epochs."""
    x, y = data(n=64)

    def make():
        m = model(backend, opt)
        m.optimizer.learning_rate = lr
        return m

    m = make()
    with pytest.raises(FloatingPointError) as ei:
        m.fit(x, y, epochs=20, batch_size=8, shuffle=False, verbose=0)
    epoch, step = _where(ei.value)
    assert (epoch, step) != (1, 1) and epoch >= min_epoch
    assert all(np.isfinite(p).all() for p in m.params)
    ref = make()
    if epoch > 1:
        ref.fit(x, y, epochs=epoch - 1, batch_size=8, shuffle=False, verbose=0)
    if step > 1:
        ref.fit(x[:(step - 1) * 8], y[:(step - 1) * 8], epochs=1, batch_size=8, shuffle=False, verbose=0)
    assert snapshot(m) == snapshot(ref)
    h = ei.value.history
    assert h.epoch == list(range(epoch - 1)) and len(h.history.get("loss", [])) == epoch - 1
    assert len(h.history.get("accuracy", [])) == len(h.epoch_times) == epoch - 1
    assert np.isfinite(h.history.get("loss", [])).all()


# ---- Trainer (DLFS2) ---------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_trainer_refuses_bad_labels_before_the_first_step(backend):
    m = model(backend, "sgd_momentum")
    x, y = data()
    tr = pk.Trainer(m, optimizers.SGD(learning_rate=0.1, momentum=0.9))
    tr.fit(x, y, max_epoch=1, batch_size=8, eval_interval=None)
    before, opt_before = snapshot(m), (tr.optimizer.iterations, [
        {k: v.tobytes() for k, v in s.items()} for s in tr.optimizer._state])
    bad = y.astype(np.uint64)
    bad[-1] = np.uint64(2**63)  # in the last batch: a per-batch check would come after 4 updates
    with pytest.raises(ValueError, match=r"^Trainer.fit: label 9223372036854775808 at index 39 is out of range"):
        tr.fit(x, bad, max_epoch=1, batch_size=8, eval_interval=None)
    xn = x.copy()
    xn[-1, 0] = np.nan
    with pytest.raises(ValueError, match=r"^Trainer.fit: x contains NaN or infinity \(first at sample 39\)$"):
        tr.fit(xn, y, max_epoch=1, batch_size=8, eval_interval=None)
    assert snapshot(m)["params"] == before["params"]
    assert (tr.optimizer.iterations, [{k: v.tobytes() for k, v in s.items()}
                                      for s in tr.optimizer._state]) == opt_before


def test_trainer_nan_loss_step_is_not_applied():
    from pykernels.layers import Affine, Sigmoid, SoftmaxWithLoss

    class Net:
        def __init__(self):
            rng = np.random.default_rng(0)
            self.layers = [Affine(rng.standard_normal((F, 8)) * 0.1, np.zeros(8)), Sigmoid(),
                           Affine(rng.standard_normal((8, C)) * 0.1, np.zeros(C))]
            self.loss_layer = SoftmaxWithLoss()
            self.params = [p for l in self.layers for p in l.params]
            self.grads = [g for l in self.layers for g in l.grads]

        def forward(self, x, t):
            for l in self.layers:
                x = l.forward(x)
            return self.loss_layer.forward(x, t)

        def backward(self, dout=1.0):
            dout = self.loss_layer.backward(dout)
            for l in reversed(self.layers):
                dout = l.backward(dout)

    x, y = data(dtype=np.float64)
    net = Net()
    for p in net.params[2:]:
        p[...] = np.finfo(np.float64).max  # finite weights whose logits overflow: the first loss is not finite
    before = [p.copy() for p in net.params]
    tr = pk.Trainer(net, optimizers.Adam(), seed=0)
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match=r"^Trainer.fit: the loss became"):
        tr.fit(x, y, max_epoch=1, batch_size=8, eval_interval=1)
    assert all(np.array_equal(a, b) for a, b in zip(net.params, before))
    assert tr.optimizer.iterations == 0 and tr.optimizer._state is None and tr.loss_list == []
