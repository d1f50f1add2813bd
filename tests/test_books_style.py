"""Code in the style of two books' from-scratch chapters, whose only ``np`` is ``pykernels.numpy``,
gives the results it gives on NumPy.

* "Deep Learning from Scratch 2", ch. 1: a spiral data set, a two-layer net of Affine / Sigmoid /
  Affine / SoftmaxWithLoss layers written with ``np.dot``, ``np.exp``, ``np.sum``, ``np.log``,
  ``np.zeros_like``, ``np.random.randn``, an SGD optimizer and a Trainer loop (``np.random.permutation``,
  ``np.argmax``, ``np.sum(pred == t)`` on bools); and ch. 3-4: a CBOW word-vector model on a toy corpus
  whose Embedding layer's backward is ``np.add.at``.
* "Deep Learning with Python", ch. 2: the from-scratch dense network (``naive_relu`` and
  ``naive_add`` as ``np.maximum`` and ``np.add``, ``np.dot``), trained in float32 with hand-written
  gradients instead of a GradientTape.

Our own code in the books' style, not the books' listings. Every model is built by a function of
``np`` and run twice from the same seed: on ``numpy`` and on ``pykernels.numpy``. The loss curves
agree within the tolerance of the kernels that are not bit-identical (dot, sum, exp, log); steps
made only of bit-identical kernels (add, subtract, multiply, maximum) agree bit for bit.
"""

from __future__ import annotations

import types

import numpy
import pytest

import pykernels.numpy as pnp

BACKENDS = {"numpy": numpy, "pykernels.numpy": pnp}


# ---- "Deep Learning from Scratch 2" style --------------------------------------------------------


def dlfs2(np):
    """The layers, model, optimizer and trainer, on the namespace `np`."""

    def spiral(n_per_class=100, n_classes=3, seed=1984):
        np.random.seed(seed)
        xs, ts = [], []
        for c in range(n_classes):
            r = np.linspace(0.0, 1.0, n_per_class, endpoint=False)
            angle = 4.0 * c + 4.0 * r + 0.2 * np.random.randn(n_per_class)
            xs.append(np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1))
            t = np.zeros((n_per_class, n_classes), dtype=np.int32)
            t[:, c] = 1
            ts.append(t)
        return np.concatenate(xs), np.concatenate(ts)

    def softmax(x):
        x = x - x.max(axis=1, keepdims=True)
        e = np.exp(x)
        return e / np.sum(e, axis=1, keepdims=True)

    def cross_entropy(y, t):
        if t.ndim == 2:  # one-hot -> labels
            t = np.argmax(t, axis=1)
        n = y.shape[0]
        return -np.sum(np.log(y[np.arange(n), t] + 1e-7)) / n

    class Affine:
        def __init__(self, W, b):
            self.params = [W, b]
            self.grads = [np.zeros_like(W), np.zeros_like(b)]
            self.x = None

        def forward(self, x):
            W, b = self.params
            self.x = x
            return np.dot(x, W) + b

        def backward(self, dout):
            W, _ = self.params
            self.grads[0][...] = np.dot(self.x.T, dout)
            self.grads[1][...] = np.sum(dout, axis=0)
            return np.dot(dout, W.T)

    class Sigmoid:
        def __init__(self):
            self.params, self.grads = [], []
            self.out = None

        def forward(self, x):
            self.out = 1 / (1 + np.exp(-x))
            return self.out

        def backward(self, dout):
            return np.multiply(dout, (1.0 - self.out) * self.out)

    class SoftmaxWithLoss:
        def __init__(self):
            self.params, self.grads = [], []
            self.y = self.t = None

        def forward(self, x, t):
            self.t = np.argmax(t, axis=1) if t.ndim == 2 else t
            self.y = softmax(x)
            return cross_entropy(self.y, self.t)

        def backward(self, dout=1):
            n = self.t.shape[0]
            dx = self.y.copy()
            dx[np.arange(n), self.t] -= 1
            return dx * dout / n

    class TwoLayerNet:
        def __init__(self, n_in, n_hidden, n_out):
            W1 = 0.01 * np.random.randn(n_in, n_hidden)
            b1 = np.zeros(n_hidden)
            W2 = 0.01 * np.random.randn(n_hidden, n_out)
            b2 = np.zeros(n_out)
            self.layers = [Affine(W1, b1), Sigmoid(), Affine(W2, b2)]
            self.loss_layer = SoftmaxWithLoss()
            self.params = [p for layer in self.layers for p in layer.params]
            self.grads = [g for layer in self.layers for g in layer.grads]

        def predict(self, x):
            for layer in self.layers:
                x = layer.forward(x)
            return x

        def forward(self, x, t):
            return self.loss_layer.forward(self.predict(x), t)

        def backward(self, dout=1):
            dout = self.loss_layer.backward(dout)
            for layer in reversed(self.layers):
                dout = layer.backward(dout)
            return dout

    class SGD:
        def __init__(self, lr=0.01):
            self.lr = lr

        def update(self, params, grads):
            for p, g in zip(params, grads):
                p -= self.lr * g

    class Trainer:
        def __init__(self, model, optimizer):
            self.model, self.optimizer = model, optimizer
            self.loss_list = []

        def fit(self, x, t, max_epoch=10, batch_size=32, eval_interval=10):
            n = len(x)
            iters = n // batch_size
            total, count = 0.0, 0
            for _ in range(max_epoch):
                idx = np.random.permutation(n)
                x, t = x[idx], t[idx]
                for it in range(iters):
                    bx = x[it * batch_size:(it + 1) * batch_size]
                    bt = t[it * batch_size:(it + 1) * batch_size]
                    loss = self.model.forward(bx, bt)
                    self.model.backward()
                    self.optimizer.update(self.model.params, self.model.grads)
                    total += loss
                    count += 1
                    if (it + 1) % eval_interval == 0:
                        self.loss_list.append(total / count)
                        total, count = 0.0, 0

    class Embedding:
        def __init__(self, W):
            self.params = [W]
            self.grads = [np.zeros_like(W)]
            self.idx = None

        def forward(self, idx):
            (W,) = self.params
            self.idx = idx
            return W[idx]

        def backward(self, dout):
            (dW,) = self.grads
            dW[...] = 0
            np.add.at(dW, self.idx, dout)

    class MatMul:
        def __init__(self, W):
            self.params = [W]
            self.grads = [np.zeros_like(W)]
            self.x = None

        def forward(self, x):
            self.x = x
            return np.dot(x, self.params[0])

        def backward(self, dout):
            self.grads[0][...] = np.dot(self.x.T, dout)
            return np.dot(dout, self.params[0].T)

    class CBOW:
        """Continuous bag of words: the mean of the context words' vectors predicts the target."""

        def __init__(self, vocab_size, hidden, window):
            W_in = 0.01 * np.random.randn(vocab_size, hidden)
            W_out = 0.01 * np.random.randn(hidden, vocab_size)
            self.in_layers = [Embedding(W_in) for _ in range(2 * window)]  # shared weights
            self.out_layer = MatMul(W_out)
            self.loss_layer = SoftmaxWithLoss()
            layers = self.in_layers + [self.out_layer]
            self.params = [p for layer in layers for p in layer.params]
            self.grads = [g for layer in layers for g in layer.grads]
            self.word_vecs = W_in

        def forward(self, contexts, target):
            h = sum(layer.forward(contexts[:, i]) for i, layer in enumerate(self.in_layers))
            h = h / len(self.in_layers)
            return self.loss_layer.forward(self.out_layer.forward(h), target)

        def backward(self, dout=1):
            ds = self.loss_layer.backward(dout)
            da = self.out_layer.backward(ds) / len(self.in_layers)
            for layer in self.in_layers:
                layer.backward(da)

    def merge_shared(params, grads):
        """Shared weights appear once, their gradients summed (the Embeddings share W_in)."""
        out_p, out_g = [], []
        for p, g in zip(params, grads):
            for i, q in enumerate(out_p):
                if p is q:
                    out_g[i] = out_g[i] + g
                    break
            else:
                out_p.append(p)
                out_g.append(g)
        return out_p, out_g

    def corpus(text):
        words = text.lower().replace(".", " .").split()
        word_to_id = {}
        for w in words:
            word_to_id.setdefault(w, len(word_to_id))
        return np.array([word_to_id[w] for w in words]), word_to_id

    def contexts_target(ids, window):
        target = ids[window:-window]
        contexts = np.array([np.concatenate([ids[i - window:i], ids[i + 1:i + 1 + window]])
                             for i in range(window, len(ids) - window)])
        return contexts, target

    return types.SimpleNamespace(**{k: v for k, v in locals().items() if not k.startswith("_")})


def _spiral_run(np):
    b = dlfs2(np)
    x, t = b.spiral()
    np.random.seed(7)
    model = b.TwoLayerNet(2, 10, 3)
    trainer = b.Trainer(model, b.SGD(lr=1.0))
    trainer.fit(x, t, max_epoch=300, batch_size=30)
    scores = model.predict(x)
    accuracy = np.sum(np.argmax(scores, axis=1) == np.argmax(t, axis=1)) / len(x)
    return numpy.array(trainer.loss_list), accuracy, [p.copy() for p in model.params]


def test_dlfs2_spiral_training_matches_numpy():
    loss_np, acc_np, params_np = _spiral_run(numpy)
    loss_pk, acc_pk, params_pk = _spiral_run(pnp)
    assert len(loss_np) == 300
    assert loss_np[-1] < 0.3 and acc_np > 0.9  # it learned (the book reaches ~0.1 and ~0.97)
    # float64 throughout: dot/sum/exp/log differ from NumPy's in the last bits, no more
    numpy.testing.assert_allclose(loss_pk, loss_np, rtol=1e-9, atol=1e-12)
    assert acc_pk == acc_np
    for p, q in zip(params_pk, params_np):
        numpy.testing.assert_allclose(p, q, rtol=1e-8, atol=1e-10)


def test_dlfs2_spiral_data_is_numpys_bit_for_bit():
    x_np, t_np = dlfs2(numpy).spiral()
    x_pk, t_pk = dlfs2(pnp).spiral()
    assert x_pk.tobytes() == x_np.tobytes() and t_pk.tobytes() == t_np.tobytes()


def _cbow_run(np):
    b = dlfs2(np)
    text = ("you say goodbye and i say hello . the cat sat on the mat . the dog sat on the log . "
            "you say hello and i say goodbye .")
    ids, word_to_id = b.corpus(text)
    contexts, target = b.contexts_target(ids, window=1)
    np.random.seed(42)
    model = b.CBOW(len(word_to_id), hidden=5, window=1)
    sgd = b.SGD(lr=1.0)
    losses = []
    for _ in range(300):
        losses.append(model.forward(contexts, target))
        model.backward()
        params, grads = b.merge_shared(model.params, model.grads)
        sgd.update(params, grads)
    return numpy.array(losses), model.word_vecs.copy()


def test_dlfs2_cbow_embedding_add_at_matches_numpy():
    loss_np, vecs_np = _cbow_run(numpy)
    loss_pk, vecs_pk = _cbow_run(pnp)
    assert loss_np[-1] < 0.7 * loss_np[0]
    numpy.testing.assert_allclose(loss_pk, loss_np, rtol=1e-9)
    numpy.testing.assert_allclose(vecs_pk, vecs_np, rtol=1e-8, atol=1e-12)


def test_embedding_backward_is_numpys_bit_for_bit():
    """np.add.at (NumPy's ufunc method through the namespace) into a float32 table."""
    outs = []
    for np in (numpy, pnp):
        emb = dlfs2(np).Embedding(numpy.zeros((6, 4), numpy.float32))
        emb.forward(numpy.array([0, 3, 3, 5, 0, 0]))
        emb.backward(numpy.linspace(-1, 1, 24, dtype=numpy.float32).reshape(6, 4))
        outs.append(emb.grads[0])
    assert outs[0].tobytes() == outs[1].tobytes()


# ---- "Deep Learning with Python" ch. 2 style ---------------------------------------------------------


def dlwp(np):
    def naive_relu(x):
        return np.maximum(x, 0.0)

    def naive_add(x, y):
        return np.add(x, y)

    class NaiveDense:
        def __init__(self, input_size, output_size, activation):
            self.activation = activation
            self.W = np.random.uniform(0, 1e-1, (input_size, output_size)).astype("float32")
            self.b = np.zeros((output_size,), dtype="float32")
            self.x = self.z = self.y = None

        def __call__(self, inputs):
            self.x = inputs
            self.z = naive_add(np.dot(inputs, self.W), self.b)
            self.y = self.activation(self.z)
            return self.y

        @property
        def weights(self):
            return [self.W, self.b]

    class NaiveSequential:
        def __init__(self, layers):
            self.layers = layers

        def __call__(self, inputs):
            x = inputs
            for layer in self.layers:
                x = layer(x)
            return x

        @property
        def weights(self):
            return [w for layer in self.layers for w in layer.weights]

    def softmax(x):
        e = np.exp(np.subtract(x, x.max(axis=-1, keepdims=True)))
        return e / np.sum(e, axis=-1, keepdims=True)

    def sparse_categorical_crossentropy(labels, probs):
        n = labels.shape[0]
        return -np.log(probs[np.arange(n), labels] + np.float32(1e-7))

    class BatchGenerator:
        def __init__(self, images, labels, batch_size=128):
            assert len(images) == len(labels)
            self.index = 0
            self.images, self.labels = images, labels
            self.batch_size = batch_size
            self.num_batches = int(np.ceil(len(images) / batch_size))

        def next(self):
            images = self.images[self.index:self.index + self.batch_size]
            labels = self.labels[self.index:self.index + self.batch_size]
            self.index += self.batch_size
            return images, labels

    def gradients(model, labels, probs):
        """The gradients a GradientTape would record: softmax cross-entropy, then each dense layer
        backwards (relu' as a mask)."""
        n = labels.shape[0]
        dz = probs.copy()
        dz[np.arange(n), labels] -= 1
        dz = np.multiply(dz, np.float32(1.0 / n))
        grads = []
        for i, layer in reversed(list(enumerate(model.layers))):
            if layer.activation is naive_relu:
                dz = np.multiply(dz, layer.z > 0)
            grads = [np.dot(layer.x.T, dz), np.sum(dz, axis=0)] + grads
            if i:
                dz = np.dot(dz, layer.W.T)
        return grads

    def update_weights(grads, weights, learning_rate=1e-3):
        for g, w in zip(grads, weights):
            w -= g * learning_rate  # assign_sub

    def one_training_step(model, images_batch, labels_batch, learning_rate):
        probs = model(images_batch)
        loss = np.mean(sparse_categorical_crossentropy(labels_batch, probs))
        update_weights(gradients(model, labels_batch, probs), model.weights, learning_rate)
        return loss

    def fit(model, images, labels, epochs, batch_size=128, learning_rate=1e-1):
        history = []
        for _ in range(epochs):
            batches = BatchGenerator(images, labels, batch_size)
            for _ in range(batches.num_batches):
                images_batch, labels_batch = batches.next()
                history.append(one_training_step(model, images_batch, labels_batch, learning_rate))
        return history

    def data(n=1200, dim=64, classes=10, seed=3):
        rng = np.random.RandomState(seed)
        centers = rng.normal(0, 1, (classes, dim))
        labels = rng.randint(0, classes, n)
        images = (centers[labels] + rng.normal(0, 1.5, (n, dim))).astype("float32")
        images = (images - images.mean(axis=0)) / images.std(axis=0)  # standardized features
        return images.astype("float32"), labels

    return types.SimpleNamespace(**{k: v for k, v in locals().items() if not k.startswith("_")})


def _dlwp_run(np):
    b = dlwp(np)
    images, labels = b.data()
    np.random.seed(0)
    model = b.NaiveSequential([b.NaiveDense(64, 128, b.naive_relu), b.NaiveDense(128, 10, b.softmax)])
    history = b.fit(model, images[:1000], labels[:1000], epochs=8, batch_size=100, learning_rate=0.1)
    preds = np.argmax(model(images[1000:]), axis=1)
    accuracy = np.sum(preds == labels[1000:]) / len(preds)
    return numpy.array(history, dtype=numpy.float64), accuracy, [w.copy() for w in model.weights]


def test_dlwp_ch2_training_matches_numpy():
    hist_np, acc_np, w_np = _dlwp_run(numpy)
    hist_pk, acc_pk, w_pk = _dlwp_run(pnp)
    assert all(w.dtype == numpy.float32 for w in w_pk)
    assert hist_np[-1] < 0.5 * hist_np[0] and acc_np > 0.5
    # float32: the GEMMs sum in another order than NumPy's BLAS; the curves agree to float32 noise
    numpy.testing.assert_allclose(hist_pk, hist_np, rtol=2e-4, atol=1e-5)
    assert abs(acc_pk - acc_np) <= 0.01
    for p, q in zip(w_pk, w_np):
        numpy.testing.assert_allclose(p, q, rtol=2e-3, atol=2e-4)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_dlwp_naive_ops_are_numpys_bit_for_bit(dtype):
    """naive_relu / naive_add and the dense layer's elementwise steps run on the bit-identical kernels."""
    rng = numpy.random.default_rng(5)
    x = rng.standard_normal((50, 30)).astype(dtype)
    b = rng.standard_normal(30).astype(dtype)
    r = {}
    for name, np in BACKENDS.items():
        d = dlwp(np)
        r[name] = [d.naive_relu(x), d.naive_add(x, b), d.naive_relu(d.naive_add(x, b)),
                   np.multiply(x, x > 0), np.subtract(x, x.max(axis=-1, keepdims=True))]
    for got, want in zip(r["pykernels.numpy"], r["numpy"]):
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
