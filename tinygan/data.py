"""The datasets: MNIST and Fashion-MNIST (four IDX gzip files), CIFAR-10 (its python-version tarball).

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

CIFAR-10's python version is one tarball of six pickled batches (five of
training images, one of test images), each a dict with b"data", a uint8
(n, 3072) array of n 32x32 colour images stored plane by plane (1024 red,
1024 green, 1024 blue values), and b"labels", a list of n class numbers.
A pickle may name any Python callable to rebuild its objects, so it is read
with an unpickler that lets through only the NumPy names an array needs
(_BatchUnpickler): a doctored file is refused, never run. The tarball is
read in place; an extracted ``cifar-10-batches-py`` folder beside it (as
torchvision and Keras leave one) is read as well.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import io
import math
import http.client
import os
import pickle
import struct
import tarfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import write_atomically

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
CIFAR_ARCHIVE, CIFAR_FOLDER = "cifar-10-python.tar.gz", "cifar-10-batches-py"
CIFAR_BATCHES = {"train": [f"data_batch_{k}" for k in range(1, 6)], "test": ["test_batch"]}

DATASETS = {
    "mnist": {
        "files": list(IDX_FILES.values()), "shape": (1, 28, 28), "described": "the four IDX .gz files",
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
        "files": list(IDX_FILES.values()), "shape": (1, 28, 28), "described": "the four IDX .gz files",
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        # Fashion-MNIST's authors publish MD5 digests.
        "digests": {
            "train-images-idx3-ubyte.gz": ("md5", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            "train-labels-idx1-ubyte.gz": ("md5", "25c81989df183df01b3e8a0aad5dffbe"),
            "t10k-images-idx3-ubyte.gz": ("md5", "bef4ecab320f06d8554ea6380940ec79"),
            "t10k-labels-idx1-ubyte.gz": ("md5", "bb300cfdad3c16e7a12a480ee83cd310"),
        },
    },
    "cifar10": {
        "files": [CIFAR_ARCHIVE], "shape": (3, 32, 32),
        "described": f"{CIFAR_ARCHIVE} (or the {CIFAR_FOLDER} folder it unpacks to)",
        "mirrors": ["https://www.cs.toronto.edu/~kriz/"],
        # The MD5 published on the CIFAR page.
        "digests": {CIFAR_ARCHIVE: ("md5", "c58f30108f718f92721af3b95e74349a")},
    },
}

IMAGE_MAGIC, LABEL_MAGIC = 0x00000803, 0x00000801
PIXEL_RANGES = {"-1,1": (-1.0, 1.0), "0,1": (0.0, 1.0)}


class DataError(RuntimeError):
    """A data file is missing or unreadable; the message names the file and the fix."""


@dataclass
class Dataset:
    """Images as float32 (N, C, H, W) in ``pixel_range``; labels as uint8 (N,)."""
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    directory: Path


def cache_directory(dataset: str) -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "tinygan" / dataset


def chosen_directory(dataset: str, data_dir=None):
    """(directory, named): the one directory this call reads, and whether the user named it.

    A named directory with a subfolder called after the dataset (mnist/, fashion-mnist/, cifar10/) is read
    there, so one --data-dir or TINYGAN_DATA serves every dataset: MNIST and Fashion-MNIST files have the
    same names and cannot share a folder."""
    named = data_dir or os.environ.get("TINYGAN_DATA")
    if not named:
        return cache_directory(dataset), False
    own = Path(named) / dataset
    return (own if own.is_dir() else Path(named)), True


def image_shape(dataset: str) -> tuple:
    """(channels, height, width) of the dataset's images."""
    return DATASETS[dataset]["shape"]


def uint8_shape(image_shape) -> tuple:
    """The shape to_uint8 gives one image of ``image_shape`` (C, H, W): (H, W) grey, (H, W, C) colour."""
    channels, height, width = image_shape
    return (height, width) if channels == 1 else (height, width, channels)


def has_cifar_folder(directory: Path) -> bool:
    """Whether ``directory`` holds an extracted cifar-10-batches-py folder with all six batches."""
    return all((directory / CIFAR_FOLDER / name).is_file() for names in CIFAR_BATCHES.values() for name in names)


def missing_files(directory: Path, dataset: str = "mnist"):
    if dataset == "cifar10" and has_cifar_folder(directory):
        return []
    return [name for name in DATASETS[dataset]["files"] if not (directory / name).is_file()]


def find_directory(dataset: str, data_dir=None):
    """The chosen directory if it holds all the dataset's files, else None."""
    directory, _ = chosen_directory(dataset, data_dir)
    return None if missing_files(directory, dataset) else directory


def mirrors(dataset: str):
    """The download mirrors, after any given in TINYGAN_DATA_MIRROR (for a local copy of a mirror)."""
    extra = [url for url in os.environ.get("TINYGAN_DATA_MIRROR", "").split(",") if url]
    return extra + DATASETS[dataset]["mirrors"]


def download_file(name: str, directory: Path, mirror_urls, expected, timeout=30.0,
                  described="the four IDX .gz files") -> Path:
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
                    f"(or TINYGAN_DATA) at a directory holding {described}")


def read_idx(path: Path, magic: int) -> np.ndarray:
    """The array in one gzip-compressed IDX file (read-only), with every way it can be broken named.

    A file read before, unchanged since (same size and modification time), is not decompressed again:
    a training and its measurements, or a study's runs in one process, load the dataset several times."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise DataError(f"{path} is missing") from None
    return _read_idx_unchanged(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, magic)


@functools.lru_cache(maxsize=8)   # the four files of two datasets
def _read_idx_unchanged(path: str, size: int, mtime_ns: int, magic: int) -> np.ndarray:
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
    """uint8 (N, H, W) grey or (N, C, H, W) -> float32 (N, C, H, W) in [-1, 1] (default) or [0, 1]."""
    low, high = PIXEL_RANGES[pixel_range]
    images = images[:, None] if images.ndim == 3 else images
    return (images.astype(np.float32) * np.float32((high - low) / 255) + np.float32(low))


def to_uint8(images, pixel_range: str = "-1,1") -> np.ndarray:
    """The inverse of scale_pixels, clipped, in the layout image files use: 0 black, 255 white.

    float (N, 1, H, W) -> uint8 (N, H, W); float (N, 3, H, W) -> uint8 (N, H, W, 3), colour last.
    """
    low, high = PIXEL_RANGES[pixel_range]
    values = (np.asarray(images, dtype=np.float64) - low) * (255 / (high - low))
    values = values[:, 0] if values.shape[1] == 1 else values.transpose(0, 2, 3, 1)
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


class _BatchUnpickler(pickle.Unpickler):
    """Rebuilds a CIFAR batch and refuses anything else a pickle might ask to call.

    An array needs NumPy's ``_reconstruct``, ``ndarray`` and ``dtype``; bytes pickled by Python 3 at
    protocol 2 (as a re-saved batch is) need ``_codecs.encode``. None of them runs code of the file's choosing.
    """
    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} has no place in a CIFAR batch")
        if name == "_reconstruct":   # NumPy 2 moved numpy.core to numpy._core; either spelling means this
            return np.ndarray.__reduce__(np.zeros(0))[0]
        return super().find_class(module, name)


def read_cifar_batch(stream, where: str):
    """uint8 images (n, 3, 32, 32) and labels (n,) from one pickled batch, every breakage named."""
    try:
        batch = _BatchUnpickler(stream, encoding="bytes").load()
        images, labels = batch[b"data"], batch[b"labels"]
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise DataError(f"{where} is not a CIFAR-10 batch ({type(error).__name__}: {error}): "
                        f"download the dataset again") from None
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != 3 * 32 * 32:
        raise DataError(f"{where} holds {images.dtype} data of shape {images.shape}, not uint8 (n, 3072)")
    if labels.shape != (len(images),) or len(labels) and not 0 <= labels.min() <= labels.max() <= 9:
        raise DataError(f"{where}: {len(images)} images but {labels.size} labels (or labels outside 0-9)")
    return images.reshape(-1, 3, 32, 32), labels.astype(np.uint8)


def read_cifar(directory: Path) -> dict:
    """The four arrays of CIFAR-10 from the extracted folder if there is one, else from the tarball."""
    def read_all(open_member, where):
        arrays = {}
        for split, names in CIFAR_BATCHES.items():
            parts = [read_cifar_batch(open_member(name), f"{where}/{name}") for name in names]
            arrays[f"{split}_images"] = np.concatenate([images for images, _ in parts])
            arrays[f"{split}_labels"] = np.concatenate([labels for _, labels in parts])
        return arrays

    folder = directory / CIFAR_FOLDER
    if has_cifar_folder(directory):
        return read_all(lambda name: io.BytesIO((folder / name).read_bytes()), str(folder))
    path = directory / CIFAR_ARCHIVE
    try:
        with tarfile.open(path, "r:gz") as archive:
            def member(name):
                try:
                    stream = archive.extractfile(f"{CIFAR_FOLDER}/{name}")
                except KeyError:
                    stream = None
                if stream is None:
                    raise KeyError(name)
                return io.BytesIO(stream.read())
            return read_all(member, str(path))
    except KeyError as error:
        raise DataError(f"{path} lacks {CIFAR_FOLDER}/{error.args[0]}: is it the python version of "
                        f"CIFAR-10?") from None
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path} is not a complete tar.gz file ({type(error).__name__}: {error}); "
                        f"delete it and download it again") from None


def read_idx_dataset(directory: Path) -> dict:
    return {key: read_idx(directory / name, IMAGE_MAGIC if key.endswith("images") else LABEL_MAGIC)
            for key, name in IDX_FILES.items()}


def load(dataset: str = "mnist", data_dir=None, pixel_range: str = "-1,1", download: bool = True) -> Dataset:
    """Load a dataset, downloading it into the cache when no directory holds it."""
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    if pixel_range not in PIXEL_RANGES:
        raise DataError(f"unknown pixel range {pixel_range!r}: choose one of {', '.join(PIXEL_RANGES)}")
    directory, named = chosen_directory(dataset, data_dir)
    missing = missing_files(directory, dataset)
    described = DATASETS[dataset]["described"]
    if missing and named:   # a directory the user named must hold the files: never download behind their back
        source = "--data-dir" if data_dir else "TINYGAN_DATA"
        raise DataError(f"{directory} lacks {', '.join(missing)}: point {source} at a directory holding "
                        f"{described} of {dataset}")
    if missing and not download:
        raise DataError(f"{dataset} is not in {directory}; pass --data-dir")
    for name in missing:
        download_file(name, directory, mirrors(dataset), DATASETS[dataset]["digests"][name], described=described)
    arrays = read_cifar(directory) if dataset == "cifar10" else read_idx_dataset(directory)
    shape = image_shape(dataset)
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        found = images.shape[1:] if images.ndim == 4 else (1, *images.shape[1:])
        if found != shape:
            raise DataError(f"{directory}: the {split} images are {'x'.join(map(str, found))} (channels x height x "
                            f"width); tinygan's {dataset} networks take {'x'.join(map(str, shape))}")
        if len(images) != len(labels):
            raise DataError(f"{directory}: {len(images)} {split} images but {len(labels)} labels")
    return Dataset(train_images=scale_pixels(arrays["train_images"], pixel_range),
                   train_labels=arrays["train_labels"],
                   test_images=scale_pixels(arrays["test_images"], pixel_range),
                   test_labels=arrays["test_labels"], directory=directory)
