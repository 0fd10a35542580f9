"""`tinygan eval`: generated images against the dataset's real ones, in one dict of numbers.

The metrics (metrics.py) compare the classifier's features (classifier.py)
of n generated images with those of the 10,000 test images:

  fid, kid, kid_std          distance between the two feature distributions (lower is better)
  precision, recall          realistic samples / coverage of the real variety (higher is better)
  class_entropy_bits, rarest_class_share, class_histogram, confidence
                             are all ten digits there, evenly, and clearly drawn?
  nearest_train_ratio        median pixel distance of a sample to its nearest training image, over
                             the same median for test images: about 1 for a generator that makes
                             new digits, well below 1 for one that copies training digits (the
                             median over 2,000 of the samples: memorisation_sample)

``reference(n)`` gives the same numbers for n real training images, the
floor a perfect generator would reach at that n (for them, the nearest
training image is the nearest *other* one: each is in the training set).

What depends only on the dataset and the classifier (the test features, the
real images' radii, the test-to-train distances, the real floor) is computed
once and kept in the cache directory, keyed by the classifier file's digest.
"""
from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np

from . import classifier, data, metrics
from .files import write_atomically

COMPARABLE_IMAGES = 1000   # below this, FID's bias and noise swamp the differences between GANs
MIN_IMAGES = 200           # below this, even a pipeline check learns nothing: a hard floor
REFERENCE_SEED = 0    # which training images stand in for "real" in the floor
MEMORISATION_SAMPLES = 2000   # images whose nearest training image is searched (memorisation_sample)
KEYS = ("n", "fid", "kid", "kid_std", "precision", "recall", "confidence", "class_entropy_bits",
        "rarest_class_share", "class_histogram", "nearest_train_ratio")


def memorisation_sample(n):
    """Which of n images the memorisation median is taken over: all up to MEMORISATION_SAMPLES, else a fixed
    random draw of that many. Each costs a search of all 60,000 training images (94 MFLOP); the standard
    error of a median of 2,000 draws is 2.8% of the distances' standard deviation (1.25 / sqrt(2000))."""
    if n <= MEMORISATION_SAMPLES:
        return np.arange(n)
    return np.sort(np.random.default_rng(REFERENCE_SEED).choice(n, MEMORISATION_SAMPLES, replace=False))


class EvaluationError(ValueError):
    """Images that cannot be evaluated; the message says what was expected."""


def as_model_images(array, name="the images", shape=(1, 28, 28)):
    """Images as a file or a generator gives them -> float32 (n, C, H, W) in [-1, 1], for images of ``shape``.

    Taken: uint8 with 0 black, as (n, H, W) for grey images, (n, H, W, C) with colour last (image files'
    layout, what `tinygan sample` writes) or (n, C, H, W); or floats in [-1, 1] as (n, C, H, W) (or (n, H, W)
    for grey). Anything else is refused with one sentence saying what was expected.
    """
    array = np.asarray(array)
    given, (channels, height, width) = array.shape, shape
    if array.ndim == 3 and channels == 1:
        array = array[:, None]
    elif array.ndim == 4 and array.dtype == np.uint8 and array.shape[1:] == (height, width, channels) != shape:
        array = array.transpose(0, 3, 1, 2)
    if array.ndim != 4 or array.shape[1:] != tuple(shape):
        layouts = (f"(n, {height}, {width}) or " if channels == 1 else f"(n, {height}, {width}, {channels}) or ")
        raise EvaluationError(f"{name} have shape {given}; expected {layouts}(n, {channels}, {height}, {width}): "
                              f"{'grey' if channels == 1 else 'colour'} images of {height}x{width} pixels")
    if array.dtype == np.uint8:
        return data.scale_pixels(array)
    if array.dtype.kind != "f":
        raise EvaluationError(f"{name} are {array.dtype}; expected uint8 (0 black, 255 white, as `tinygan "
                              f"sample` writes) or floats in [-1, 1]")
    if not np.isfinite(array).all():
        raise EvaluationError(f"{name} hold NaN or infinite values")
    low, high = float(array.min()), float(array.max())
    if low < -1.001 or high > 1.001:
        raise EvaluationError(f"{name} are floats from {low:.3g} to {high:.3g}; expected floats in [-1, 1] "
                              f"(what the generator's tanh gives) or uint8")
    return np.clip(array, -1, 1).astype(np.float32)


def check_count(n):
    if n < MIN_IMAGES:
        raise EvaluationError(f"{n} images are too few for a stable FID: give at least {COMPARABLE_IMAGES:,} "
                              f"(10,000 is the usual, {MIN_IMAGES} only checks a pipeline; compare FIDs only at "
                              f"equal n)")


def few_images_warning(n):
    """A line for figures on fewer images than can tell GANs apart (a smoke test's), else None."""
    if n < COMPARABLE_IMAGES:
        return (f"warning: FID and KID on {n:,} images are biased upward and noisy: they check that a pipeline "
                f"runs; compare GANs on at least {COMPARABLE_IMAGES:,} images (10,000 is the usual)")
    return None


def _cache_directory() -> Path:
    return data.cache_directory("eval")


class Stopwatch:
    """clock(name, f, *args) runs f and adds its seconds to clock.seconds[name] (the benchmark's breakdown)."""

    def __init__(self):
        self.seconds = {}

    def __call__(self, name, function, *args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


class Evaluator:
    """Holds one dataset's real images, the classifier and the cached real-side statistics."""

    def __init__(self, dataset="mnist", data_dir=None, classifier_path=None, cache=True):
        self.dataset_name = dataset
        self.classifier = classifier.Classifier.load(dataset, classifier_path)
        self.dataset = data.load(dataset, data_dir)
        self.use_cache = cache
        self._real = None
        self._kid_within = {}   # n -> KID's real-side terms (_kid_within_real)
        self.timings = {}   # seconds of each part of the last evaluate()

    # --- the real side, computed once -------------------------------------------------------------
    def _cache_path(self, what):
        return _cache_directory() / f"{self.dataset_name}-{self.classifier.digest}-{what}"

    def _cached(self, name, compute, encode, decode):
        """compute(), or its result kept in the cache directory under ``name`` (bytes via encode/decode)."""
        path = self._cache_path(name)
        if self.use_cache and path.is_file():
            try:
                return decode(path.read_bytes())
            except Exception:   # a damaged cache is only a cache: compute it again
                pass
        value = compute()
        if self.use_cache:
            payload = encode(value)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_atomically(path, lambda stream: stream.write(payload))
            except OSError:     # a read-only home: no cache, the same numbers
                pass
        return value

    def real_statistics(self):
        """Test features, their mean, covariance and k-NN radii, and the median test-to-train distance."""
        if self._real is None:
            self._real = self._cached("real.npz", self._compute_real_statistics, _npz_bytes, _npz_arrays)
        return self._real

    def _compute_real_statistics(self):
        test_images = self.dataset.test_images
        features, _ = self.classifier.features_and_probabilities(test_images)
        mean, covariance = metrics.feature_statistics(features)
        test_to_train = metrics.nearest_distances(test_images[memorisation_sample(len(test_images))],
                                                  self.dataset.train_images)
        return {"features": features, "mean": mean, "covariance": covariance,
                "radii": metrics.kth_neighbour_radii(features),
                "test_to_train_median": np.array(np.median(test_to_train))}

    def _kid_within_real(self, n):
        """KID's terms within the real features, for n generated images: the subsets are drawn by the two
        sizes alone, so these are the same for every generated set of n (a third of KID's work)."""
        def compute():
            features = self.real_statistics()["features"]
            draws = metrics.kid_draws(len(features), n)
            return {"within": metrics.kid_within(features, [rows for rows, _ in draws])}

        if n not in self._kid_within:   # a training measures every epoch at the same n: read the file once
            self._kid_within[n] = self._cached(f"kid-real-{n}.npz", compute, _npz_bytes, _npz_arrays)["within"]
        return self._kid_within[n]

    # --- the metrics ------------------------------------------------------------------------------
    def evaluate(self, images, exclude_train=None, asked=None) -> dict:
        """Every metric for float32 images (n, C, H, W) in [-1, 1] (as_model_images makes them).

        ``asked``: the class each image was generated for (a conditional GAN); adds the share of images the
        classifier assigns to it, overall and per class ("asked_class_share", "asked_class_share_per_class")."""
        check_count(len(images))
        clock = Stopwatch()
        real = clock("real side", self.real_statistics)
        features, probabilities = clock("features", self.classifier.features_and_probabilities, images)
        mean, covariance = metrics.feature_statistics(features)
        result = {"n": len(images),
                  "fid": clock("fid", metrics.frechet_distance, real["mean"], real["covariance"], mean, covariance)}
        result["kid"], result["kid_std"] = clock("kid", metrics.kid, real["features"], features,
                                                 within_a=self._kid_within_real(len(features)))
        result["precision"], result["recall"] = clock("precision/recall", metrics.precision_recall,
                                                      real["features"], features, real_radii=real["radii"])
        result.update(metrics.class_statistics(probabilities))
        chosen = memorisation_sample(len(images))
        nearest = clock("nearest train", metrics.nearest_distances, images[chosen], self.dataset.train_images,
                        exclude=None if exclude_train is None else np.asarray(exclude_train)[chosen])
        result["nearest_train_ratio"] = float(np.median(nearest) / real["test_to_train_median"])
        self.timings = clock.seconds
        result = {key: result[key] for key in KEYS}
        if asked is not None:
            asked = np.asarray(asked)
            hits = np.argmax(probabilities, axis=1) == asked
            result["asked_class_share"] = float(hits.mean())
            result["asked_class_share_per_class"] = [float(hits[asked == c].mean()) if np.any(asked == c) else None
                                                     for c in range(probabilities.shape[1])]
        return result

    def reference(self, n) -> dict:
        """The metrics for n real training images (a fixed random draw): what a perfect generator scores."""
        n = min(n, len(self.dataset.train_images))

        def compute():
            chosen = np.sort(np.random.default_rng(REFERENCE_SEED).choice(len(self.dataset.train_images), n,
                                                                          replace=False))
            return self.evaluate(self.dataset.train_images[chosen], exclude_train=chosen)

        return self._cached(f"reference-{n}.json", compute, lambda result: json.dumps(result).encode(), json.loads)


def _npz_bytes(arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _npz_arrays(payload):
    with np.load(io.BytesIO(payload)) as archive:
        return {key: archive[key] for key in archive.files}


ROWS = (("FID", "fid", "lower is better", "{:.2f}"),
        ("KID", "kid", "lower is better", "{:.4f}"),
        ("KID std", "kid_std", "over 100 subsets", "{:.4f}"),
        ("precision", "precision", "realism, higher is better", "{:.3f}"),
        ("recall", "recall", "variety, higher is better", "{:.3f}"),
        ("class entropy (bits)", "class_entropy_bits", "3.32 = ten even classes", "{:.3f}"),
        ("rarest class share", "rarest_class_share", "0.10 = even", "{:.3f}"),
        ("confident share", "confidence", "top class p > 0.9", "{:.3f}"),
        ("nearest-train ratio", "nearest_train_ratio", "well below 1 = copies", "{:.3f}"))


def format_table(result, reference, title="images") -> str:
    """The metrics beside the real floor, as aligned plain text."""
    header = ("metric", f"{title} (n={result['n']:,})", f"real training images (n={reference['n']:,})", "")
    lines = [header] + [(label, fmt.format(result[key]), fmt.format(reference[key]), note)
                        for label, key, note, fmt in ROWS]
    digits = "  ".join(f"{d}:{share:.2f}" for d, share in enumerate(result["class_histogram"]))
    widths = [max(len(line[column]) for line in lines) for column in range(4)]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines]
    return "\n".join(text + [f"predicted classes: {digits}"])
