"""The book's first example ("Deep Learning with Python", chapter 2) on pykernels instead of Keras.

    python examples/mnist_keras_style.py
"""

from pykernels import Sequential
from pykernels.datasets import mnist
from pykernels.layers import Dense

(train_images, train_labels), (test_images, test_labels) = mnist.load_data()

model = Sequential([
    Dense(512, activation="relu"),
    Dense(10, activation="softmax"),
])
model.compile(optimizer="rmsprop",
              loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])

train_images = train_images.reshape((60000, 28 * 28))
train_images = train_images.astype("float32") / 255
test_images = test_images.reshape((10000, 28 * 28))
test_images = test_images.astype("float32") / 255

model.fit(train_images, train_labels, epochs=5, batch_size=128)

test_digits = test_images[0:10]
predictions = model.predict(test_digits)
print("predicted", predictions[0].argmax(), "with p =", predictions[0].max(), "; label", test_labels[0])

test_loss, test_acc = model.evaluate(test_images, test_labels)
print(f"test_acc: {test_acc}")
