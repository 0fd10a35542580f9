"""`tinygan probe`: how useful are a trained discriminator's features to a linear classifier?

The DCGAN paper's test of what a GAN learns (Radford et al., 2016, section
5.1): take the discriminator's convolutional features from every layer,
max-pool each layer to a 4x4 grid, flatten and concatenate them, and fit a
regularised linear classifier on them. If D learnt what digits are made of,
a linear model on its features classifies digits well, also from few labels.

Baselines computed the same way: the linear classifier on raw pixels, and on
the features of a discriminator of the same architecture with random
weights (the part of the accuracy that the architecture alone gives).

The classifier is softmax regression with an L2 penalty,
    L(W, b) = mean_n -log softmax(x_n W + b)[y_n] + (l2 / 2) |W|^2,
    dL/dW = x^T (p - onehot(y)) / N + l2 W,   dL/db = sum_n (p_n - onehot(y_n)) / N,
trained with tinygan's Adam; l2 is chosen on a held-out tenth of the labelled
training images. Features are standardised with the training set's mean and
standard deviation first.
"""
from __future__ import annotations

import math
import statistics

import numpy as np

from . import backend, data, models
from .layers import Conv2D, Dropout
from .layers.batchnorm import running_statistics_frozen
from .losses import SoftmaxCrossEntropy
from .optimizers import Adam

GRID = 4                        # each layer max-pooled to GRID x GRID
L2_CHOICES = (1e-4, 1e-3, 1e-2)
EPOCHS, BATCH, LR = 15, 256, 1e-3
FEW_LABELS, DRAWS = 400, 5      # labels per class in the few-label setting, and how many random draws of them


class ProbeError(ValueError):
    """A run the probe cannot take; the message says why in one line."""


def adaptive_max_pool(x, size=GRID):
    """(N, C, H, W) -> (N, C, size, size): cell (i, j) is the max over rows floor(i H / size) to
    ceil((i + 1) H / size) - 1 and the same for columns (PyTorch's AdaptiveMaxPool2d bins, which overlap
    when size does not divide H)."""
    N, C, H, W = x.shape
    rows = [(math.floor(i * H / size), math.ceil((i + 1) * H / size)) for i in range(size)]
    cols = [(math.floor(j * W / size), math.ceil((j + 1) * W / size)) for j in range(size)]
    xp = backend.get_array_module(x)
    out = xp.empty((N, C, size, size), dtype=x.dtype)
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            out[:, :, i, j] = x[:, :, r0:r1, c0:c1].max(axis=(2, 3))
    return out


def discriminator_features(discriminator, images, batch_size=500):
    """Every convolution block's activation (the layer before the next convolution or the Flatten),
    max-pooled to 4x4, flattened and concatenated: float32 (N, features) on the CPU.

    D runs as it was trained, on batches of real images with BatchNorm's batch statistics, with dropout
    off; its running statistics are left as they were (GAN.discriminator_accuracy explains why).
    """
    layers = list(discriminator)
    convolutions = [index for index, layer in enumerate(layers) if isinstance(layer, Conv2D)]
    if not convolutions:
        raise ProbeError("the probe reads convolutional features: train a DCGAN (dcgan, dcgan-upsample, dcgan-004, "
                         "...), not an MLP")
    # the output of each block: the last layer before the next convolution, or before the Flatten
    ends = [next_index - 1 for next_index in convolutions[1:]]
    ends.append(next(index for index, layer in enumerate(layers) if type(layer).__name__ == "Flatten") - 1)
    ends = [index - 1 if isinstance(layers[index], Dropout) else index for index in ends]   # before its dropout
    chunks = []
    with running_statistics_frozen(layers):
        for start in range(0, len(images), batch_size):
            x = backend.to_device(images[start:start + batch_size])
            pooled = []
            for index, layer in enumerate(layers[:ends[-1] + 1]):
                if isinstance(layer, Dropout):
                    continue
                x = layer.forward(x, training=True)
                if index in ends:
                    pooled.append(adaptive_max_pool(x).reshape(len(x), -1))
            chunks.append(backend.as_numpy(backend.get_array_module(x).concatenate(pooled, axis=1)))
    return np.concatenate(chunks).astype(np.float32)


class SoftmaxRegression:
    """The linear probe: logits = x W + b, softmax cross-entropy plus (l2 / 2) |W|^2 (module docstring)."""

    def __init__(self, features, classes, l2):
        self.W = np.zeros((features, classes), dtype=np.float64)
        self.b = np.zeros(classes, dtype=np.float64)
        self.l2 = l2
        self.loss = SoftmaxCrossEntropy()

    def forward(self, x, labels):
        self.x = x
        return self.loss.forward(x @ self.W + self.b, labels) + 0.5 * self.l2 * float((self.W * self.W).sum())

    def backward(self):
        """(dL/dW, dL/db) of the last forward."""
        dlogits = self.loss.backward()
        return self.x.T @ dlogits + self.l2 * self.W, dlogits.sum(axis=0)

    def predict(self, x):
        return np.argmax(x @ self.W + self.b, axis=1)


def fit(x, labels, l2, seed=0, epochs=EPOCHS, batch_size=BATCH, lr=LR, classes=10):
    """Softmax regression on standardised x, trained with Adam in minibatches; returns it."""
    model = SoftmaxRegression(x.shape[1], classes, l2)
    slots = _Slots(model)
    optimizer = Adam(slots.parameters(), lr=lr, betas=(0.9, 0.999))
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            batch = order[start:start + batch_size]
            model.forward(x[batch], labels[batch])
            slots.grads["W"][...], slots.grads["b"][...] = model.backward()
            optimizer.step()
    return model


class _Slots:
    """The probe's W and b in the (layer, name, param, grad) form tinygan's optimizers take."""

    def __init__(self, model):
        self.params = {"W": model.W, "b": model.b}
        self.grads = {"W": np.zeros_like(model.W), "b": np.zeros_like(model.b)}

    def parameters(self):
        return [(self, name, self.params[name], self.grads[name]) for name in ("W", "b")]


def standardiser(x):
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std < 1e-6] = 1.0      # a feature that never varies (a dead unit): left as it is, centred
    return lambda values: (values - mean) / std


def accuracy_with(train_x, train_y, test_x, test_y, seed=0):
    """Test accuracy of the probe fitted on (train_x, train_y), l2 chosen on a held-out tenth; (accuracy, l2)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(train_x))
    held = order[:max(len(order) // 10, 1)]
    kept = order[len(held):]
    scale = standardiser(train_x[kept])
    fitted_x, held_x = scale(train_x[kept]).astype(np.float64), scale(train_x[held]).astype(np.float64)
    scores = {l2: float((fit(fitted_x, train_y[kept], l2, seed).predict(held_x) == train_y[held]).mean())
              for l2 in L2_CHOICES}
    best = max(scores, key=lambda l2: (scores[l2], l2))   # ties: the stronger penalty
    scale = standardiser(train_x)
    model = fit(scale(train_x).astype(np.float64), train_y, best, seed)
    return float((model.predict(scale(test_x).astype(np.float64)) == test_y).mean()), best


def few_labels(labels, per_class, rng):
    """Indices of ``per_class`` random examples of each class."""
    return np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
                           for c in np.unique(labels)])


def evaluate_features(train_x, train_y, test_x, test_y, per_class=FEW_LABELS, draws=DRAWS, log=print, name=""):
    """{'all': accuracy, 'few': [accuracy of each draw]} for one feature set."""
    result = {"all": accuracy_with(train_x, train_y, test_x, test_y)[0], "few": []}
    log(f"{name}: all labels {result['all']:.4f}")
    for draw in range(draws):
        chosen = few_labels(train_y, per_class, np.random.default_rng(draw))
        result["few"].append(accuracy_with(train_x[chosen], train_y[chosen], test_x, test_y, seed=draw)[0])
    log(f"{name}: {per_class} labels per class {statistics.fmean(result['few']):.4f}")
    return result


def probe(gan, config, data_dir=None, limit=None, per_class=FEW_LABELS, draws=DRAWS, log=print, test_limit=None):
    """(rows, training labels): the probe table's rows for the trained D, a random D of the same
    architecture and the raw pixels, and how many labelled training images the full setting used."""
    if gan.conditional:
        raise ProbeError("a conditional discriminator is told the class it judges, so its features cannot be "
                         "probed for it: probe an unconditional run")
    if not any(isinstance(layer, Conv2D) for layer in gan.discriminator):
        raise ProbeError("the probe reads convolutional features: train a DCGAN (dcgan, dcgan-upsample, dcgan-004, "
                         "...), not an MLP")
    dataset = data.load(config["dataset"], data_dir if data_dir is not None else config["data_dir"],
                        config["pixel_range"])
    train_images, train_y = dataset.train_images[:limit], dataset.train_labels[:limit].astype(np.int64)
    counts = np.bincount(train_y, minlength=10)
    if counts.min() < per_class:
        raise ProbeError(f"{per_class} labels per class need {per_class} training images of every class, but the "
                         f"first {len(train_y):,} hold only {counts.min()} of class {counts.argmin()}: raise --limit "
                         f"or lower --per-class")
    test_images, test_y = dataset.test_images[:test_limit], dataset.test_labels[:test_limit].astype(np.int64)
    backend.seed(config["seed"] + 1)
    _, random_d = models.build(config["arch"], z_dim=config["z_dim"], kernel_size=config["kernel_size"],
                               depth=config["depth"], init=config["init"])
    sets = {
        "trained discriminator": lambda images: discriminator_features(gan.discriminator, images),
        "random discriminator": lambda images: discriminator_features(random_d, images),
        "raw pixels": lambda images: images.reshape(len(images), -1).astype(np.float32),
    }
    rows = []
    for name, features in sets.items():
        train_x, test_x = features(train_images), features(test_images)
        result = evaluate_features(train_x, train_y, test_x, test_y, per_class, draws, log, name)
        few = result["few"]
        rows.append({"features": name, "dimensions": train_x.shape[1], "all_labels": result["all"],
                     "few_labels_mean": statistics.fmean(few),
                     "few_labels_std": statistics.stdev(few) if len(few) > 1 else 0.0})
    return rows, len(train_y)


def markdown(rows, per_class, draws, n_train) -> str:
    lines = [f"| features | dimensions | test accuracy, all {n_train:,} labels | test accuracy, {per_class} labels "
             f"per class (mean ± std of {draws}) |", "| --- | --- | --- | --- |"]
    lines += [f"| {row['features']} | {row['dimensions']:,} | {row['all_labels']:.4f} | {row['few_labels_mean']:.4f} "
              f"± {row['few_labels_std']:.4f} |" for row in rows]
    return "\n".join(lines) + "\n"
