"""Data loading: the shared MNIST copy, the search order, broken files, and the download path for real."""
import gzip
import hashlib
import http.server
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_MNIST, idx_bytes, requires_mnist
from tinygan import data


@pytest.fixture
def clean_environment(monkeypatch, tmp_path):
    """No TINYGAN_DATA, a private empty cache."""
    monkeypatch.delenv("TINYGAN_DATA", raising=False)
    monkeypatch.delenv("TINYGAN_DATA_MIRROR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


@requires_mnist
def test_mnist_loads_as_float32_in_both_pixel_ranges(clean_environment):
    dataset = data.load("mnist", SHARED_MNIST)
    assert dataset.train_images.shape == (60000, 1, 28, 28) and dataset.test_images.shape == (10000, 1, 28, 28)
    assert dataset.train_images.dtype == np.float32
    assert dataset.train_images.min() == -1.0 and dataset.train_images.max() == 1.0
    assert list(dataset.train_labels[:5]) == [5, 0, 4, 1, 9] and dataset.test_labels.shape == (10000,)
    unit = data.load("mnist", SHARED_MNIST, pixel_range="0,1")
    assert unit.test_images.min() == 0.0 and unit.test_images.max() == 1.0
    np.testing.assert_allclose(unit.test_images * 2 - 1, dataset.test_images, atol=1e-6)


def test_pixels_round_trip_to_uint8():
    values = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    for pixel_range in data.PIXEL_RANGES:
        np.testing.assert_array_equal(data.to_uint8(data.scale_pixels(values, pixel_range), pixel_range), values)
    assert data.to_uint8(np.array([[[[-7.0, 7.0]]]]))[0, 0].tolist() == [0, 255]  # clipped, not wrapped


@requires_mnist
def test_a_named_directory_is_used_or_refused_never_swapped(clean_environment, monkeypatch):
    monkeypatch.setenv("TINYGAN_DATA", str(SHARED_MNIST))
    assert data.find_directory("mnist") == SHARED_MNIST
    other = clean_environment / "other"
    shutil.copytree(SHARED_MNIST, other)
    assert data.find_directory("mnist", other) == other
    (other / "t10k-labels-idx1-ubyte.gz").unlink()   # --data-dir incomplete: refused, not TINYGAN_DATA instead
    assert data.find_directory("mnist", other) is None
    with pytest.raises(data.DataError, match=r"other lacks t10k-labels-idx1-ubyte.gz: point --data-dir"):
        data.load("mnist", other)
    monkeypatch.setenv("TINYGAN_DATA", str(other))   # the same for TINYGAN_DATA: not the cache instead
    with pytest.raises(data.DataError, match=r"other lacks t10k-labels-idx1-ubyte.gz: point TINYGAN_DATA"):
        data.load("mnist")
    monkeypatch.delenv("TINYGAN_DATA")
    cache = data.cache_directory("mnist")
    shutil.copytree(SHARED_MNIST, cache)
    assert cache == clean_environment / "cache" / "tinygan" / "mnist"
    assert data.find_directory("mnist") == cache


def test_a_named_directory_reads_each_dataset_from_its_own_subfolder(clean_environment, monkeypatch):
    root = clean_environment / "data"
    for name in ("mnist", "fashion-mnist"):
        (root / name).mkdir(parents=True)
    assert data.chosen_directory("fashion-mnist", root) == (root / "fashion-mnist", True)
    monkeypatch.setenv("TINYGAN_DATA", str(root))
    assert data.chosen_directory("mnist") == (root / "mnist", True)
    assert data.chosen_directory("cifar10") == (root, True)   # no subfolder: the directory itself
    with pytest.raises(data.DataError, match=r"fashion-mnist lacks train-images"):
        data.load("fashion-mnist")


def test_a_named_directory_without_the_files_says_which_are_missing(clean_environment):
    empty = clean_environment / "empty"
    empty.mkdir()
    (empty / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(data.DataError, match=r"lacks train-labels-idx1-ubyte.gz, t10k-images.*--data-dir"):
        data.load("mnist", empty)


def write_gz(path, payload):
    with gzip.open(path, "wb") as stream:
        stream.write(payload)


@pytest.mark.parametrize("breakage, message", [
    ("not gzip", "is not a complete gzip file"),
    ("truncated gzip", "is not a complete gzip file"),
    ("wrong magic", r"has IDX magic number 0x00000801, expected 0x00000803"),
    ("short payload", r"holds 1560 values, its header promises 1568"),
    ("tiny", "too short to be an IDX file"),
])
def test_broken_files_are_named_in_one_clear_error(tmp_path, breakage, message):
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    good = idx_bytes(images, data.IMAGE_MAGIC)
    if breakage == "not gzip":
        path.write_bytes(good)
    elif breakage == "truncated gzip":
        write_gz(path, good)
        path.write_bytes(path.read_bytes()[:-20])
    elif breakage == "wrong magic":
        write_gz(path, idx_bytes(images, data.LABEL_MAGIC)[:4] + good[4:])
    elif breakage == "short payload":
        write_gz(path, good[:-8])
    else:
        write_gz(path, b"\x00\x00")
    with pytest.raises(data.DataError, match=message) as error:
        data.read_idx(path, data.IMAGE_MAGIC)
    assert str(path) in str(error.value)


class _MirrorHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory; /cut/NAME promises the whole file but stops halfway."""

    def do_GET(self):
        if self.path.startswith("/cut/"):
            payload = (Path(self.directory) / self.path[len("/cut/"):]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[:len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *arguments):
        pass


@pytest.fixture
def mirror():
    """A local HTTP mirror of the shared MNIST files on 127.0.0.1."""
    if not SHARED_MNIST.is_dir():
        pytest.skip(f"no MNIST copy at {SHARED_MNIST}")
    handler = lambda *arguments: _MirrorHandler(*arguments, directory=str(SHARED_MNIST))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def assert_no_partial_files(directory):
    leftovers = [p.name for p in Path(directory).iterdir() if p.name.startswith(".")] if directory.exists() else []
    assert leftovers == []


def test_download_verifies_the_published_sha256(mirror, clean_environment):
    cache = clean_environment / "cache" / "tinygan" / "mnist"
    name = "t10k-labels-idx1-ubyte.gz"
    path = data.download_file(name, cache, [mirror], data.DATASETS["mnist"]["digests"][name])
    assert path == cache / name and sha256(path) == sha256(SHARED_MNIST / name)
    assert_no_partial_files(cache)


def test_checksum_mismatch_leaves_no_file(mirror, clean_environment):
    """The shared train-images file is a rebuild, so its sha256 is not the published one: a real mismatch."""
    cache = clean_environment / "cache" / "tinygan" / "mnist"
    name = "train-images-idx3-ubyte.gz"
    with pytest.raises(data.DataError, match=r"could not download train-images.*is not the published 440fcabf"):
        data.download_file(name, cache, [mirror], data.DATASETS["mnist"]["digests"][name])
    assert not (cache / name).exists()
    assert_no_partial_files(cache)


def test_interrupted_transfer_leaves_no_file_and_falls_back_to_the_next_mirror(mirror, clean_environment):
    cache = clean_environment / "cache" / "tinygan" / "mnist"
    name = "t10k-images-idx3-ubyte.gz"
    digest = data.DATASETS["mnist"]["digests"][name]
    with pytest.raises(data.DataError, match=r"could not download t10k-images.*--data-dir"):
        data.download_file(name, cache, [mirror + "cut/"], digest)
    assert not (cache / name).exists()
    assert_no_partial_files(cache)
    path = data.download_file(name, cache, [mirror + "cut/", mirror], digest)  # the second mirror works
    assert sha256(path) == sha256(SHARED_MNIST / name)


def test_load_downloads_missing_files_into_the_cache(mirror, clean_environment, monkeypatch):
    mnist = dict(data.DATASETS["mnist"], digests=dict(data.DATASETS["mnist"]["digests"]), mirrors=[])
    # Accept the rebuilt training images (the published digest is checked by the tests above).
    name = "train-images-idx3-ubyte.gz"
    mnist["digests"][name] = ("sha256", sha256(SHARED_MNIST / name))
    monkeypatch.setitem(data.DATASETS, "mnist", mnist)
    monkeypatch.setenv("TINYGAN_DATA_MIRROR", mirror)
    dataset = data.load("mnist")
    cache = clean_environment / "cache" / "tinygan" / "mnist"
    assert dataset.directory == cache and sorted(os.listdir(cache)) == sorted(data.IDX_FILES.values())
    assert dataset.train_images.shape == (60000, 1, 28, 28)


def test_no_network_is_one_error_naming_the_file_and_data_dir(clean_environment, monkeypatch):
    mnist = dict(data.DATASETS["mnist"], mirrors=["http://127.0.0.1:9/"])  # nothing listens on port 9
    monkeypatch.setitem(data.DATASETS, "mnist", mnist)
    with pytest.raises(data.DataError, match=r"could not download train-images-idx3-ubyte.gz .*point --data-dir"):
        data.load("mnist")


@requires_mnist
def test_fashion_mnist_uses_the_same_loader_and_its_md5_digests(mirror, clean_environment):
    """Fashion-MNIST has MNIST's format; its authors publish MD5 digests, which the downloader checks."""
    stand_in = data.load("fashion-mnist", SHARED_MNIST)   # a directory the user names is read as is
    assert stand_in.test_images.shape == (10000, 1, 28, 28)
    assert all(algorithm == "md5" for algorithm, _ in data.DATASETS["fashion-mnist"]["digests"].values())
    name = "t10k-labels-idx1-ubyte.gz"
    md5 = hashlib.md5((SHARED_MNIST / name).read_bytes()).hexdigest()
    cache = data.cache_directory("fashion-mnist")
    assert data.download_file(name, cache, [mirror], ("md5", md5)) == cache / name
    with pytest.raises(data.DataError, match="md5 .* is not the published bb300cfd"):
        data.download_file(name, cache, [mirror], data.DATASETS["fashion-mnist"]["digests"][name])
