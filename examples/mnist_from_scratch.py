"""The book's "reimplementing our first example from scratch" (chapter 2.5) on the pykernels kernels.

The book uses TensorFlow's GradientTape for the gradients; here every layer has an explicit backward
(the fused ``dense`` / ``dense_backward`` kernels and the fused softmax + cross-entropy kernel), and the
update is the book's plain ``w -= learning_rate * g``, done in place by ``pykernels.sgd_update``.

    python examples/mnist_from_scratch.py
"""

import math

import numpy as np

import pykernels as pk
from pykernels._kernels import get_backend
from pykernels.datasets import mnist

K = get_backend("native")  # dense, dense_backward, softmax_cross_entropy, ... (C++)
rng = np.random.default_rng(0)


class NaiveDense:
    def __init__(self, input_size, output_size, activation):
        self.activation = activation  # "relu" or "softmax"
        self.W = rng.uniform(0, 1e-1, size=(input_size, output_size)).astype("float32")
        self.b = np.zeros((output_size,), dtype="float32")
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)

    def __call__(self, inputs):
        """Returns relu(x W + b), or the logits x W + b for the softmax layer (the softmax is fused
        into the loss below)."""
        self.inputs = inputs
        act = "relu" if self.activation == "relu" else None
        self.outputs = K.dense(inputs, self.W, self.b, activation=act)
        return self.outputs

    def backward(self, doutputs, need_dx=True):
        act = "relu" if self.activation == "relu" else None
        dx, _, _ = K.dense_backward(doutputs, self.inputs, self.W, y=self.outputs, activation=act,
                                    need_dx=need_dx, dW=self.dW, db=self.db)
        return dx

    @property
    def weights(self):
        return [self.W, self.b]

    @property
    def gradients(self):
        return [self.dW, self.db]


class NaiveSequential:
    def __init__(self, layers):
        self.layers = layers

    def __call__(self, inputs):
        x = inputs
        for layer in self.layers:
            x = layer(x)
        return x

    def backward(self, dlogits):
        d = dlogits
        for i, layer in reversed(list(enumerate(self.layers))):
            d = layer.backward(d, need_dx=i > 0)

    @property
    def weights(self):
        return [w for layer in self.layers for w in layer.weights]

    @property
    def gradients(self):
        return [g for layer in self.layers for g in layer.gradients]


model = NaiveSequential([
    NaiveDense(input_size=28 * 28, output_size=512, activation="relu"),
    NaiveDense(input_size=512, output_size=10, activation="softmax"),
])
assert len(model.weights) == 4


class BatchGenerator:
    def __init__(self, images, labels, batch_size=128):
        assert len(images) == len(labels)
        self.index = 0
        self.images = images
        self.labels = labels
        self.batch_size = batch_size
        self.num_batches = math.ceil(len(images) / batch_size)

    def next(self):
        images = self.images[self.index: self.index + self.batch_size]
        labels = self.labels[self.index: self.index + self.batch_size]
        self.index += self.batch_size
        return images, labels


learning_rate = 1e-3


def update_weights(gradients, weights):
    for g, w in zip(gradients, weights):
        pk.sgd_update(w, g, learning_rate=learning_rate)  # w -= g * learning_rate, in place


def one_training_step(model, images_batch, labels_batch):
    logits = model(images_batch)
    average_loss = K.softmax_cross_entropy(logits, labels_batch)
    model.backward(K.softmax_cross_entropy_backward(logits, labels_batch))
    update_weights(model.gradients, model.weights)
    return average_loss


def fit(model, images, labels, epochs, batch_size=128):
    for epoch_counter in range(epochs):
        print(f"Epoch {epoch_counter}")
        batch_generator = BatchGenerator(images, labels)
        for batch_counter in range(batch_generator.num_batches):
            images_batch, labels_batch = batch_generator.next()
            loss = one_training_step(model, images_batch, labels_batch)
            if batch_counter % 100 == 0:
                print(f"loss at batch {batch_counter}: {loss:.2f}")


(train_images, train_labels), (test_images, test_labels) = mnist.load_data()
train_images = train_images.reshape((60000, 28 * 28)).astype("float32") / 255
test_images = test_images.reshape((10000, 28 * 28)).astype("float32") / 255
train_labels = train_labels.astype(np.int64)

fit(model, train_images, train_labels, epochs=10, batch_size=128)

predictions = model(test_images)  # logits; argmax is the same as for the softmax
predicted_labels = np.argmax(predictions, axis=1)
matches = predicted_labels == test_labels
print(f"accuracy: {matches.mean():.2f}")
