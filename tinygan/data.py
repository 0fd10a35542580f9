"""MNIST and Fashion-MNIST from the four standard IDX gzip files.

Where the files are looked for:
  1. the directory given as ``data_dir`` (``--data-dir``), if one is given;
  2. else the directory in the environment variable ``TINYGAN_DATA``, if set;
  3. else the per-user cache (``$XDG_CACHE_HOME/tinygan/<dataset>``, by default
     ``~/.cache/tinygan/<dataset>``).
A directory the user named (1 or 2) is used as is or refused, naming the
missing files: never swapped for another one behind their back, and never
the start of a download (a mistyped path should not fetch 12 MB). Only the
cache is filled by downloading: the missing files are fetched from the public
mirrors, checked against their published digests and written atomically (a
half-written file never carries the final name).

An IDX file is a big-endian header (magic number, then one uint32 per
dimension) followed by the uint8 values; images have magic 0x00000803
(unsigned bytes, 3 dimensions), labels 0x00000801.
"""
from __future__ import annotations

import gzip
import hashlib
import math
import http.client
import os
import struct
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import write_atomically

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

DATASETS = {
    "mnist": {
        "mirrors": ["https://ossci-datasets.s3.amazonaws.com/mnist/",
                    "https://storage.googleapis.com/cvdf-datasets/mnist/",
                    "http://yann.lecun.com/exdb/mnist/"],
        # The published sha256 of the original files.
        "digests": {
            "train-images-idx3-ubyte.gz": ("sha256", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
            "train-labels-idx1-ubyte.gz": ("sha256", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
            "t10k-images-idx3-ubyte.gz": ("sha256", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
            "t10k-labels-idx1-ubyte.gz": ("sha256", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
        },
    },
    "fashion-mnist": {
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        # Fashion-MNIST's authors publish MD5 digests.
        "digests": {
            "train-images-idx3-ubyte.gz": ("md5", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            "train-labels-idx1-ubyte.gz": ("md5", "25c81989df183df01b3e8a0aad5dffbe"),
            "t10k-images-idx3-ubyte.gz": ("md5", "bef4ecab320f06d8554ea6380940ec79"),
            "t10k-labels-idx1-ubyte.gz": ("md5", "bb300cfdad3c16e7a12a480ee83cd310"),
        },
    },
}

IMAGE_MAGIC, LABEL_MAGIC = 0x00000803, 0x00000801
IMAGE_SIZE = (28, 28)
PIXEL_RANGES = {"-1,1": (-1.0, 1.0), "0,1": (0.0, 1.0)}


class DataError(RuntimeError):
    """A data file is missing or unreadable; the message names the file and the fix."""


@dataclass
class Dataset:
    """Images as float32 (N, 1, 28, 28) in ``pixel_range``; labels as uint8 (N,)."""
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    directory: Path


def cache_directory(dataset: str) -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "tinygan" / dataset


def chosen_directory(dataset: str, data_dir=None):
    """(directory, named): the one directory this call reads, and whether the user named it."""
    if data_dir:
        return Path(data_dir), True
    if os.environ.get("TINYGAN_DATA"):
        return Path(os.environ["TINYGAN_DATA"]), True
    return cache_directory(dataset), False


def missing_files(directory: Path):
    return [name for name in FILES.values() if not (directory / name).is_file()]


def find_directory(dataset: str, data_dir=None):
    """The chosen directory if it holds all four files, else None."""
    directory, _ = chosen_directory(dataset, data_dir)
    return None if missing_files(directory) else directory


def mirrors(dataset: str):
    """The download mirrors, after any given in TINYGAN_DATA_MIRROR (for a local copy of a mirror)."""
    extra = [url for url in os.environ.get("TINYGAN_DATA_MIRROR", "").split(",") if url]
    return extra + DATASETS[dataset]["mirrors"]


def download_file(name: str, directory: Path, mirror_urls, expected, timeout=30.0) -> Path:
    """Fetch ``name`` from the first mirror that serves it with the expected digest.

    The bytes are hashed as they arrive and written atomically (files.py): an
    interrupted transfer or a wrong digest raises inside the write, so nothing
    ever carries the final name but a complete, verified file.
    """
    algorithm, digest = expected
    directory.mkdir(parents=True, exist_ok=True)
    failures = []
    for mirror in mirror_urls:
        url = mirror.rstrip("/") + "/" + name

        def fetch(stream):
            hasher, received = hashlib.new(algorithm), 0
            with urllib.request.urlopen(url, timeout=timeout) as response:
                expected_length = response.headers.get("Content-Length")
                for block in iter(lambda: response.read(1 << 16), b""):
                    stream.write(block)
                    hasher.update(block)
                    received += len(block)
            if expected_length is not None and received != int(expected_length):
                raise OSError(f"transfer interrupted after {received} of {expected_length} bytes")
            if hasher.hexdigest() != digest:
                raise OSError(f"{algorithm} {hasher.hexdigest()} is not the published {digest}")

        try:
            write_atomically(directory / name, fetch)
            return directory / name
        except (OSError, http.client.HTTPException, ValueError) as error:  # URLError is an OSError
            failures.append(f"{url}: {type(error).__name__}: {error}")
    raise DataError(f"could not download {name} ({'; '.join(failures)}); with no network, point --data-dir "
                    f"(or TINYGAN_DATA) at a directory holding the four IDX .gz files")


def read_idx(path: Path, magic: int) -> np.ndarray:
    """The array in one gzip-compressed IDX file, with every way it can be broken named."""
    try:
        with gzip.open(path, "rb") as stream:
            raw = stream.read()
    except FileNotFoundError:
        raise DataError(f"{path} is missing") from None
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path} is not a complete gzip file ({error}); download it again") from None
    if len(raw) < 8:
        raise DataError(f"{path} is too short to be an IDX file ({len(raw)} bytes)")
    found, = struct.unpack(">I", raw[:4])
    if found != magic:
        raise DataError(f"{path} has IDX magic number 0x{found:08x}, expected 0x{magic:08x}: "
                        f"is it the right file?")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated inside its IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected_size = math.prod(shape)   # Python ints: np.prod would wrap around for huge dimensions
    if len(raw) - header != expected_size:
        raise DataError(f"{path} holds {len(raw) - header} values, its header promises {expected_size} "
                        f"(shape {shape}): the file is truncated or corrupt")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def scale_pixels(images: np.ndarray, pixel_range: str = "-1,1") -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [-1, 1] (default) or [0, 1]."""
    low, high = PIXEL_RANGES[pixel_range]
    return (images[:, None].astype(np.float32) * np.float32((high - low) / 255) + np.float32(low))


def to_uint8(images, pixel_range: str = "-1,1") -> np.ndarray:
    """The inverse of scale_pixels, clipped: float (N, 1, H, W) -> uint8 (N, H, W), 0 black, 255 white."""
    low, high = PIXEL_RANGES[pixel_range]
    values = (np.asarray(images, dtype=np.float64)[:, 0] - low) * (255 / (high - low))
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def load(dataset: str = "mnist", data_dir=None, pixel_range: str = "-1,1", download: bool = True) -> Dataset:
    """Load a dataset, downloading it into the cache when no directory holds it."""
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    if pixel_range not in PIXEL_RANGES:
        raise DataError(f"unknown pixel range {pixel_range!r}: choose one of {', '.join(PIXEL_RANGES)}")
    directory, named = chosen_directory(dataset, data_dir)
    missing = missing_files(directory)
    if missing and named:   # a directory the user named must hold the files: never download behind their back
        source = "--data-dir" if data_dir else "TINYGAN_DATA"
        raise DataError(f"{directory} lacks {', '.join(missing)}: point {source} at a directory holding the "
                        f"four IDX .gz files of {dataset}")
    if missing and not download:
        raise DataError(f"{dataset} is not in {directory}; pass --data-dir")
    for name in missing:
        download_file(name, directory, mirrors(dataset), DATASETS[dataset]["digests"][name])
    arrays = {key: read_idx(directory / name, IMAGE_MAGIC if key.endswith("images") else LABEL_MAGIC)
              for key, name in FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.shape[1:] != IMAGE_SIZE:
            raise DataError(f"{directory / FILES[split + '_images']} holds images of {images.shape[1]}x"
                            f"{images.shape[2]} pixels; tinygan's {dataset} networks take "
                            f"{IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}")
        if len(images) != len(labels):
            raise DataError(f"{directory}: {len(images)} {split} images but {len(labels)} labels")
    return Dataset(train_images=scale_pixels(arrays["train_images"], pixel_range),
                   train_labels=arrays["train_labels"],
                   test_images=scale_pixels(arrays["test_images"], pixel_range),
                   test_labels=arrays["test_labels"], directory=directory)
