"""CIFAR-10 and other image shapes: the loader on a small tarball in CIFAR's own format, broken and doctored
files, the md5-checked download, and colour images through the models, the grids, sample and eval."""
import functools
import hashlib
import http.server
import io
import os
import pickle
import subprocess
import sys
import tarfile
import threading

import numpy as np
import pytest
from PIL import Image

from tinygan import data, evaluation

PER_BATCH = 12   # images in each of the six batches (the real ones hold 10,000)


def batch_bytes(images, labels):
    """One batch as the python version of CIFAR-10 pickles it: a dict of bytes keys, protocol 2."""
    batch = {b"batch_label": b"made by the test", b"labels": [int(k) for k in labels],
             b"data": images.reshape(len(images), -1), b"filenames": [b"x.png"] * len(images)}
    return pickle.dumps(batch, protocol=2)


def known_images(n, offset):
    """uint8 (n, 3, 32, 32): image k has red k + offset, green 100 + k, blue 200 - k, to check the layout."""
    images = np.empty((n, 3, 32, 32), dtype=np.uint8)
    for k in range(n):
        images[k] = np.array([k + offset, 100 + k, 200 - k], dtype=np.uint8)[:, None, None]
    return images


def varied_images(n, seed):
    """uint8 (n, 3, 32, 32): noise, brighter in the channel k % 3 of image k (its class is k % 10)."""
    images = np.random.default_rng(seed).integers(0, 160, (n, 3, 32, 32), dtype=np.uint8)
    images[np.arange(n), np.arange(n) % 3] += 90
    return images


def write_cifar_tarball(path, per_batch=PER_BATCH, members=None, varied=False):
    """A tarball laid out as cifar-10-python.tar.gz; ``members`` replaces some members' bytes."""
    names = data.CIFAR_BATCHES["train"] + data.CIFAR_BATCHES["test"]
    with tarfile.open(path, "w:gz") as archive:
        for index, name in enumerate(names):
            images = varied_images(per_batch, index) if varied else known_images(per_batch, 10 * index)
            payload = batch_bytes(images, np.arange(per_batch) % 10)
            payload = (members or {}).get(name, payload)
            if payload is None:
                continue
            info = tarfile.TarInfo(f"{data.CIFAR_FOLDER}/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return path


@pytest.fixture
def cifar_dir(tmp_path):
    write_cifar_tarball(tmp_path / data.CIFAR_ARCHIVE)
    return tmp_path


def test_the_tarball_loads_as_colour_images_in_channel_order(cifar_dir):
    dataset = data.load("cifar10", cifar_dir)
    assert dataset.train_images.shape == (5 * PER_BATCH, 3, 32, 32) and dataset.test_images.shape == (PER_BATCH, 3, 32, 32)
    assert dataset.train_images.dtype == np.float32 and list(dataset.train_labels[:3]) == [0, 1, 2]
    pixels = data.to_uint8(dataset.train_images)                 # back to uint8, colour last: (n, 32, 32, 3)
    assert pixels.shape == (5 * PER_BATCH, 32, 32, 3)
    assert pixels[PER_BATCH + 3, 5, 7].tolist() == [10 + 3, 100 + 3, 200 - 3]   # second batch, image 3
    assert data.image_shape("cifar10") == (3, 32, 32) and data.find_directory("cifar10", cifar_dir) == cifar_dir


def test_an_extracted_folder_is_read_as_well(cifar_dir):
    with tarfile.open(cifar_dir / data.CIFAR_ARCHIVE) as archive:
        archive.extractall(cifar_dir / "unpacked", filter="data")
    dataset = data.load("cifar10", cifar_dir / "unpacked")
    np.testing.assert_array_equal(dataset.test_images, data.load("cifar10", cifar_dir).test_images)


@pytest.mark.parametrize("breakage, message", [
    ("truncated", r"is not a complete tar.gz file .*delete it and download it again"),
    ("missing batch", r"lacks cifar-10-batches-py/data_batch_3: is it the python version"),
    ("not a pickle", r"data_batch_2 is not a CIFAR-10 batch"),
    ("wrong shape", r"test_batch holds uint8 data of shape \(4, 100\), not uint8 \(n, 3072\)"),
    ("too few labels", r"data_batch_1: 12 images but 11 labels"),
])
def test_a_broken_tarball_is_one_clear_error(tmp_path, breakage, message):
    path = tmp_path / data.CIFAR_ARCHIVE
    members = {"missing batch": {"data_batch_3": None},
               "not a pickle": {"data_batch_2": b"\x80\x02not a pickle at all"},
               "wrong shape": {"test_batch": batch_bytes(np.zeros((4, 100), np.uint8), [0] * 4)},
               "too few labels": {"data_batch_1": batch_bytes(known_images(PER_BATCH, 0), [1] * (PER_BATCH - 1))},
               }.get(breakage)
    write_cifar_tarball(path, members=members)
    if breakage == "truncated":
        path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(data.DataError, match=message):
        data.load("cifar10", tmp_path)


class Boom:
    def __reduce__(self):
        return (print, ("a doctored batch ran code",))


def test_a_doctored_pickle_is_refused_not_run(tmp_path, capsys):
    """A pickle can call any function it names; a CIFAR batch needs NumPy's array constructors and nothing else."""
    doctored = pickle.dumps({b"data": Boom(), b"labels": []}, protocol=2)
    write_cifar_tarball(tmp_path / data.CIFAR_ARCHIVE, members={"data_batch_4": doctored})
    with pytest.raises(data.DataError, match=r"data_batch_4 is not a CIFAR-10 batch .*print has no place"):
        data.load("cifar10", tmp_path)
    assert "ran code" not in capsys.readouterr().out


@pytest.fixture
def mirror_of(tmp_path):
    """Serve a directory over HTTP on 127.0.0.1; yields a function from a directory to its URL."""
    servers = []

    def serve(directory):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
        handler.log_message = lambda *arguments: None
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"
    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_download_checks_the_published_md5_and_lands_in_the_cache(tmp_path, mirror_of, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    write_cifar_tarball(served / data.CIFAR_ARCHIVE)
    monkeypatch.delenv("TINYGAN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TINYGAN_DATA_MIRROR", mirror_of(served))
    cifar = dict(data.DATASETS["cifar10"], mirrors=[])
    monkeypatch.setitem(data.DATASETS, "cifar10", cifar)
    # The test's tarball is not the published one: its md5 differs, and nothing is kept.
    with pytest.raises(data.DataError, match=r"md5 [0-9a-f]{32} is not the published c58f3010.*holding "
                                             r"cifar-10-python.tar.gz"):
        data.load("cifar10")
    cache = data.cache_directory("cifar10")
    assert not cache.exists() or list(cache.iterdir()) == []
    # With the digest of the served file, the same download lands and loads.
    cifar["digests"] = {data.CIFAR_ARCHIVE: ("md5", hashlib.md5((served / data.CIFAR_ARCHIVE).read_bytes()).hexdigest())}
    dataset = data.load("cifar10")
    assert dataset.directory == cache and dataset.test_images.shape == (PER_BATCH, 3, 32, 32)


def test_a_named_directory_without_the_tarball_names_it(tmp_path):
    with pytest.raises(data.DataError, match=r"lacks cifar-10-python.tar.gz: point --data-dir at a directory "
                                             r"holding cifar-10-python.tar.gz \(or the cifar-10-batches-py folder"):
        data.load("cifar10", tmp_path)


def tinygan(*arguments, env):
    result = subprocess.run([sys.executable, "-m", "tinygan", *map(str, arguments)], capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_colour_images_end_to_end_classifier_train_and_sample(tmp_path):
    """CIFAR-10's shape through everything: a classifier for eval made by the user, report 004's colour
    network trained and measured, colour grids, and sample's .npy."""
    data_dir = tmp_path / "cifar"
    data_dir.mkdir()
    write_cifar_tarball(data_dir / data.CIFAR_ARCHIVE, per_batch=240, varied=True)   # 1,200 train, 240 test
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("TINYGAN_DATA", None)
    out = tinygan("classifier", "--dataset", "cifar10", "--data-dir", data_dir, "--epochs", 1, env=env)
    assert f"wrote {tmp_path}/cache/tinygan/classifiers/cifar10_classifier.npz" in out
    run = tmp_path / "run"
    tinygan("train", "--dataset", "cifar10", "--data-dir", data_dir, "--arch", "dcgan-004-cifar", "--epochs", 1,
            "--limit", 320, "--eval-samples", 200, "--out", run, "--quiet", env=env)
    grid = np.asarray(Image.open(run / "samples" / "epoch_001.png"))
    assert grid.shape == (8 * 34 + 2, 8 * 34 + 2, 3)   # 8x8 colour tiles of 32 pixels, 2 between
    header, measured = (run / "metrics.csv").read_text().splitlines()
    assert float(measured.split(",")[header.split(",").index("fid")]) > 0
    tinygan("sample", "--checkpoint", run, "--n", 5, "--out", tmp_path / "s.npy", env=env)
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (5, 32, 32, 3) and samples.dtype == np.uint8


def test_eval_takes_colour_images_in_either_layout_and_names_the_expected_shape():
    pixels = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    last = evaluation.as_model_images(pixels, shape=(3, 32, 32))
    first = evaluation.as_model_images(pixels.transpose(0, 3, 1, 2), shape=(3, 32, 32))
    np.testing.assert_array_equal(last, first)
    assert last.shape == (4, 3, 32, 32)
    np.testing.assert_array_equal(data.to_uint8(last), pixels)
    with pytest.raises(evaluation.EvaluationError, match=r"shape \(4, 28, 28\); expected \(n, 32, 32, 3\) or "
                                                         r"\(n, 3, 32, 32\): colour images of 32x32 pixels"):
        evaluation.as_model_images(np.zeros((4, 28, 28), np.uint8), shape=(3, 32, 32))


def test_without_a_classifier_training_says_quality_is_not_measured(cifar_dir, tmp_path, capsys, monkeypatch):
    from test_cli import run_main
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    code, out, err = run_main(capsys, "train", "--dataset", "cifar10", "--data-dir", cifar_dir, "--arch", "mlp",
                              "--epochs", 1, "--batch-size", 32, "--out", tmp_path / "run")
    assert code == 0, err
    assert ("quality is not measured: cifar10 has no classifier yet (make one with `python -m tinygan classifier "
            "--dataset cifar10`)") in out
    assert not (tmp_path / "run" / "quality.png").exists()
