"""The MNIST classifier whose features measure a GAN (tinygan eval), built and trained with tinygan.

Judging generated digits needs a network that knows what digits look like.
FID on MNIST uses an MNIST classifier's features, not Inception's (TF-GAN's
MNIST example and the FID papers' MNIST tables do the same): this is a small
CNN, trained here with tinygan's own layers, loss and Adam.

    x (N, 1, 28, 28) in [-1, 1]                 (CIFAR-10: (N, 3, 32, 32))
    Conv 1 -> 32, 5x5, stride 2    28 -> 14     LeakyReLU        (3 -> 32, 32 -> 16)
    Conv 32 -> 64, 5x5, stride 2   14 -> 7      BatchNorm, LeakyReLU          (16 -> 8)
    Conv 64 -> 64, 3x3, stride 2    7 -> 4      BatchNorm, LeakyReLU          (8 -> 4)
    Dense 1024 -> 128                           LeakyReLU    <- the features
    Dropout 0.3, Dense 128 -> 10                             <- class logits

The 128 features are what the metrics compare (FEATURE_DIM): far fewer than
the 10,000 test images, so their covariance has full rank for FID. Both image
sizes end at 4x4, so one network serves both; on CIFAR-10 so small a CNN is a
weaker judge than on MNIST (its test accuracy is in the weights file's
metadata), so FID there compares tinygan runs with each other, not with
published Inception-based figures.

The shipped weights (tinygan/weights/<dataset>_classifier.npz) are made by
``python -m tinygan classifier --dataset mnist --seed 0`` (train() below);
the file records the seed, the epochs and the test accuracy it reached.
The other datasets' classifiers are made the same way by the user and kept
in their cache (weights_path).
"""
from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path

import numpy as np

from . import backend, data
from .files import write_atomically
from .init import glorot_uniform
from .layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, LeakyReLU
from .losses import SoftmaxCrossEntropy
from .optimizers import Adam
from .sequential import Sequential

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
FEATURE_DIM = 128
FEATURE_LAYER = 10        # the features are the output of layers[:FEATURE_LAYER + 1] (the LeakyReLU)
CLASSES = 10
EPOCHS, BATCH_SIZE, LEARNING_RATE = 8, 128, 1e-3
SHIFT = 2             # training images are shifted by up to this many pixels (augmentation)


class ClassifierError(RuntimeError):
    """No classifier for a dataset, or a damaged weights file; the message says what to do."""


def build(channels: int = 1) -> Sequential:
    """The network in the module docstring, in the default dtype on the current device."""
    init = glorot_uniform
    return Sequential([
        Conv2D(channels, 32, 5, stride=2, padding=2, weight_init=init), LeakyReLU(0.2),
        Conv2D(32, 64, 5, stride=2, padding=2, bias=False, weight_init=init), BatchNorm(64), LeakyReLU(0.2),
        Conv2D(64, 64, 3, stride=2, padding=1, bias=False, weight_init=init), BatchNorm(64), LeakyReLU(0.2),
        Flatten(), Dense(64 * 4 * 4, FEATURE_DIM, weight_init=init), LeakyReLU(0.2),
        Dropout(0.3), Dense(FEATURE_DIM, CLASSES, weight_init=init)])


def weights_path(dataset: str) -> Path:
    """The dataset's classifier: the file shipped with tinygan (MNIST's), else the one `tinygan classifier`
    writes into the user's cache (``~/.cache/tinygan/classifiers/``), since an installed package may be
    read-only."""
    shipped = WEIGHTS_DIR / f"{dataset}_classifier.npz"
    return shipped if shipped.is_file() else data.cache_directory("classifiers") / f"{dataset}_classifier.npz"


class Classifier:
    """A trained classifier: features and class probabilities of images, in eval mode, in batches."""

    def __init__(self, model: Sequential, meta: dict, digest: str = ""):
        self.model, self.meta = model, meta
        self.digest = digest   # of the weights file it was loaded from: what eval's cache is keyed by

    @classmethod
    def load(cls, dataset: str = "mnist", path=None) -> "Classifier":
        """The shipped classifier of ``dataset`` (or the weights file ``path``), on the current device."""
        path = Path(path) if path else weights_path(dataset)
        if not path.is_file():
            raise ClassifierError(f"no classifier for {dataset} ({path} is missing): train one with "
                                  f"`python -m tinygan classifier --dataset {dataset} --out {path}`")
        payload = path.read_bytes()
        try:
            with np.load(io.BytesIO(payload)) as archive:
                arrays = {key: archive[key] for key in archive.files}
            meta = json.loads(str(arrays.pop("meta")))
            model = build(data.image_shape(dataset)[0])
            model.load_state_dict(arrays)
        except Exception as error:   # any damage: the file is named, and how to remake it
            raise ClassifierError(f"{path} is not a readable classifier ({type(error).__name__}: {error}); "
                                  f"remake it with `python -m tinygan classifier --dataset {dataset}`") from None
        return cls(model, meta, hashlib.sha256(payload).hexdigest()[:16])

    def features_and_probabilities(self, images, batch_size=500):
        """(features (N, 128), probabilities (N, 10)) as float64 NumPy arrays, for float images in [-1, 1]."""
        features, probabilities = [], []
        head = self.model.layers[FEATURE_LAYER + 1:]
        for start in range(0, len(images), batch_size):
            x = backend.to_device(np.ascontiguousarray(images[start:start + batch_size]))
            for layer in self.model.layers[:FEATURE_LAYER + 1]:
                x = layer.forward(x, training=False)
            logits = x
            for layer in head:
                logits = layer.forward(logits, training=False)
            logits = backend.as_numpy(logits).astype(np.float64)
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            features.append(backend.as_numpy(x).astype(np.float64))
            probabilities.append(shifted / shifted.sum(axis=1, keepdims=True))
        return np.concatenate(features), np.concatenate(probabilities)

    def accuracy(self, images, labels) -> float:
        _, probabilities = self.features_and_probabilities(images)
        return float((probabilities.argmax(axis=1) == np.asarray(labels)).mean())


def shifted(images, rng, max_shift=SHIFT):
    """Each image moved by up to ``max_shift`` pixels along each axis, the uncovered border black (-1).

    Handwriting sits a little off centre now and then; a classifier that has
    seen its digits shifted generalises better (0.3-0.5 points on MNIST).
    """
    n, channels, height, width = images.shape
    padded = np.pad(images, ((0, 0), (0, 0), (max_shift, max_shift), (max_shift, max_shift)), constant_values=-1)
    top, left = rng.integers(0, 2 * max_shift + 1, n), rng.integers(0, 2 * max_shift + 1, n)
    rows = (top[:, None] + np.arange(height))[:, None, :, None]     # (n, 1, H, 1)
    columns = (left[:, None] + np.arange(width))[:, None, None, :]  # (n, 1, 1, W)
    return padded[np.arange(n)[:, None, None, None], np.arange(channels)[None, :, None, None], rows, columns]


def learning_rate(epoch, epochs):
    """LEARNING_RATE, then a tenth of it for the last quarter of the epochs and a third in between."""
    if epoch > epochs * 3 // 4:
        return LEARNING_RATE / 10
    return LEARNING_RATE / 3 if epoch > epochs // 2 else LEARNING_RATE


def train(dataset: str = "mnist", data_dir=None, seed: int = 0, epochs: int = EPOCHS, limit=None,
          log=print) -> Classifier:
    """Train the classifier from ``seed`` with tinygan's Adam on softmax cross-entropy; returns it.

    ``limit``: train on the first ``limit`` training images only (quick checks).
    """
    backend.seed(seed)
    images = data.load(dataset, data_dir)
    model, loss = build(data.image_shape(dataset)[0]), SoftmaxCrossEntropy()
    optimizer = Adam(model.parameters(), lr=LEARNING_RATE, betas=(0.9, 0.999))
    train_images, train_labels = images.train_images[:limit], images.train_labels[:limit].astype(np.int64)
    if len(train_images) < BATCH_SIZE:
        raise ValueError(f"--limit {limit} leaves less than one batch of {BATCH_SIZE} images")
    steps = len(train_images) // BATCH_SIZE
    classifier = Classifier(model, {})
    for epoch in range(1, epochs + 1):
        optimizer.lr = learning_rate(epoch, epochs)   # smaller steps at the end: the last few tenths of a percent
        rng = backend.numpy_rng()
        order = rng.permutation(len(train_images))
        start, total = time.perf_counter(), 0.0
        for step in range(steps):
            batch = order[step * BATCH_SIZE:(step + 1) * BATCH_SIZE]
            optimizer.zero_grad()
            total += loss(model.forward(backend.to_device(shifted(train_images[batch], rng)), training=True),
                          backend.to_device(train_labels[batch]))
            model.backward(loss.backward(), input_grad=False)
            optimizer.step()
        accuracy = classifier.accuracy(images.test_images, images.test_labels)
        log(f"epoch {epoch}/{epochs}  loss {total / steps:.4f}  test accuracy {accuracy:.4f}  "
            f"{time.perf_counter() - start:.0f} s")
    classifier.meta = {"dataset": dataset, "seed": seed, "epochs": epochs, "batch_size": BATCH_SIZE,
                       "learning_rate": LEARNING_RATE, "shift": SHIFT, "limit": limit, "test_accuracy": accuracy,
                       "command": f"python -m tinygan classifier --dataset {dataset} --seed {seed} --epochs {epochs}"}
    return classifier


def save(classifier: Classifier, path) -> None:
    """float32 weights and the metadata, compressed, written atomically."""
    arrays = {key: value.astype(np.float32) for key, value in classifier.model.state_dict().items()}
    arrays["meta"] = np.array(json.dumps(classifier.meta))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda stream: stream.write(buffer.getvalue()))
