"""DLFS2 ch01/train.py: a two-layer net on the spiral data with the Trainer, on pykernels layers.

    python examples/spiral_trainer.py [loss.png]   (the plot needs matplotlib: pip install 'pykernels[plot]')
"""

import sys

import numpy as np

from pykernels import Trainer
from pykernels.datasets import spiral
from pykernels.layers import Affine, Sigmoid, SoftmaxWithLoss
from pykernels.optimizers import SGD


class TwoLayerNet:
    def __init__(self, input_size, hidden_size, output_size):
        I, H, O = input_size, hidden_size, output_size
        rng = np.random.default_rng(0)
        W1 = (0.01 * rng.standard_normal((I, H))).astype("f")
        b1 = np.zeros(H, dtype="f")
        W2 = (0.01 * rng.standard_normal((H, O))).astype("f")
        b2 = np.zeros(O, dtype="f")
        self.layers = [Affine(W1, b1), Sigmoid(), Affine(W2, b2)]
        self.loss_layer = SoftmaxWithLoss()
        self.params, self.grads = [], []
        for layer in self.layers:
            self.params += layer.params
            self.grads += layer.grads

    def predict(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def forward(self, x, t):
        score = self.predict(x)
        return self.loss_layer.forward(score, t)

    def backward(self, dout=1):
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout


max_epoch = 300
batch_size = 30
hidden_size = 10
learning_rate = 1.0

x, t = spiral.load_data()
x = x.astype("f")
model = TwoLayerNet(input_size=2, hidden_size=hidden_size, output_size=3)
optimizer = SGD(learning_rate=learning_rate)

trainer = Trainer(model, optimizer)
trainer.fit(x, t, max_epoch, batch_size, eval_interval=10)
acc = np.mean(model.predict(x).argmax(axis=1) == t.argmax(axis=1))
print(f"train accuracy: {acc:.3f}")
if len(sys.argv) > 1:
    trainer.plot(sys.argv[1])
