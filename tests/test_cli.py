"""The command line, end to end: training writes every output, resume equals never stopping, errors are one line."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_MNIST, requires_mnist
from tinygan import cli, models
from tinygan.gan import GAN

pytestmark = requires_mnist
QUICK = ["--limit", "128", "--batch-size", "64", "--eval-images", "64", "--eval-every", "0",
         "--data-dir", str(SHARED_MNIST)]   # no FID measurements: test_evaluation.py covers them


def tinygan(*arguments, cwd=None):
    return subprocess.run([sys.executable, "-m", "tinygan", *map(str, arguments)], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def run_main(capsys, *arguments):
    """Run the CLI in this process; returns (exit code, stdout, stderr)."""
    try:
        cli.main([str(a) for a in arguments])
        code = 0
    except SystemExit as exit:
        code = exit.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def checkpoint_arrays(run_dir):
    with np.load(Path(run_dir) / "checkpoint.npz") as archive:
        return {key: archive[key] for key in archive.files if key != "meta"}


def test_train_writes_every_output_then_sample_and_info_work(tmp_path):
    run_dir = tmp_path / "run"
    result = tinygan("train", "--arch", "dcgan", "--epochs", 2, "--out", run_dir, "--seed", 3, *QUICK, "--limit", 256)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "epoch 2/2" in result.stdout and "images/s" in result.stdout

    config = json.loads((run_dir / "config.json").read_text())
    for key in ["arch", "device", "epochs", "batch_size", "lr", "beta1", "beta2", "z_dim", "noise", "seed",
                "dataset", "data_dir", "pixel_range", "limit", "kernel_size", "depth", "label_smoothing",
                "label_flip", "d_steps", "eval_images", "out", "init"]:
        assert key in config, key
    assert config["arch"] == "dcgan" and config["seed"] == 3 and config["init"] == "normal" and config["depth"] == 0
    assert {"tinygan", "numpy", "numba", "python"} <= set(config["versions"])

    with open(run_dir / "metrics.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    for row in rows:
        assert 0 <= float(row["d_accuracy_real"]) <= 1 and 0 <= float(row["d_accuracy_fake"]) <= 1
        assert float(row["seconds"]) > 0 and float(row["images_per_second"]) > 0
        assert np.isfinite(float(row["d_loss"])) and np.isfinite(float(row["g_loss"]))
    assert len((run_dir / "steps.csv").read_text().splitlines()) == 1 + 2 * 4   # header + 4 steps x 2 epochs

    from PIL import Image
    for epoch in (1, 2):
        grid = Image.open(run_dir / "samples" / f"epoch_{epoch:03d}.png")
        assert grid.size == (8 * 30 + 2, 8 * 30 + 2)
    assert Image.open(run_dir / "losses.png").size[0] > 100
    gif = Image.open(run_dir / "progress.gif")
    assert gif.n_frames == 2
    umask = os.umask(0)
    os.umask(umask)
    for written in ("config.json", "metrics.csv", "checkpoint.npz", "losses.png", "samples/epoch_001.png"):
        assert (run_dir / written).stat().st_mode & 0o777 == 0o666 & ~umask, written   # not mkstemp's 0600
    arrays = checkpoint_arrays(run_dir)
    assert {"generator/0.W", "discriminator/0.W", "generator_optimizer/steps", "discriminator_optimizer/0.m",
            "fixed_noise"} <= set(arrays)
    assert int(arrays["generator_optimizer/steps"]) == 8

    result = tinygan("sample", "--checkpoint", run_dir, "--n", 100, "--out", tmp_path / "samples.npy")
    assert result.returncode == 0, result.stderr
    samples = np.load(tmp_path / "samples.npy")
    assert samples.shape == (100, 28, 28) and samples.dtype == np.uint8 and samples.max() > samples.min()
    result = tinygan("sample", "--checkpoint", run_dir, "--n", 16, "--out", tmp_path / "grid.png")
    assert result.returncode == 0 and Image.open(tmp_path / "grid.png").size == (4 * 30 + 2, 4 * 30 + 2)

    result = tinygan("info", "--data-dir", SHARED_MNIST)
    assert result.returncode == 0
    assert "tinygan 0.1.0" in result.stdout and "CPU: Numba" in result.stdout and "GPU:" in result.stdout
    assert f"data: mnist in {SHARED_MNIST}" in result.stdout


@pytest.mark.parametrize("arch", models.ARCHITECTURES)
def test_every_architecture_trains_for_two_steps(arch, tmp_path, capsys):
    code, out, err = run_main(capsys, "train", "--arch", arch, "--epochs", 1, "--out", tmp_path / arch,
                              "--quiet", *QUICK)
    if models.image_size(arch) == (32, 32):   # CIFAR-10's network on MNIST: refused before anything is read
        assert code == 2 and "--arch dcgan-004-cifar makes 32x32 images and these are 28x28" in err
        assert not (tmp_path / arch).exists()
        return
    assert code == 0, err
    assert (tmp_path / arch / "checkpoint.npz").is_file() and out == ""
    config = json.loads((tmp_path / arch / "config.json").read_text())
    assert config["pixel_range"] == "-1,1" and config["output"] == "tanh"   # the same defaults for every network
    deep = (4e-4, 1e-4)
    steps = {"mlp-001": (None, 2e-4), "mlp-deep": deep, "mlp-001-deep": deep}.get(arch, (None, None))
    assert (config["lr_g"], config["lr_d"]) == steps   # the MLPs with steps of their own (docs/defaults.md)


def test_a_given_lr_sets_both_steps_even_where_a_network_has_its_own_default(tmp_path, capsys):
    code, _, err = run_main(capsys, "train", "--arch", "mlp-001-deep", "--lr", 1e-3, "--epochs", 1,
                            "--out", tmp_path / "lr", "--quiet", *QUICK)
    assert code == 0, err
    config = json.loads((tmp_path / "lr" / "config.json").read_text())
    assert config["lr"] == 1e-3 and config["lr_g"] is None and config["lr_d"] is None
    code, _, err = run_main(capsys, "train", "--arch", "mlp-001-deep", "--lr-d", 3e-4, "--epochs", 1,
                            "--out", tmp_path / "lr-d", "--quiet", *QUICK)   # the other network keeps its own
    assert code == 0, err
    config = json.loads((tmp_path / "lr-d" / "config.json").read_text())
    assert config["lr_g"] == 4e-4 and config["lr_d"] == 3e-4


def test_resume_gives_the_same_weights_as_never_stopping(tmp_path, capsys):
    options = ["--arch", "dcgan", "--seed", "5", "--quiet", "--label-flip", "0.1", *QUICK]
    assert run_main(capsys, "train", "--epochs", 3, "--out", tmp_path / "straight", *options)[0] == 0
    assert run_main(capsys, "train", "--epochs", 1, "--out", tmp_path / "stopped", *options)[0] == 0
    code, out, err = run_main(capsys, "train", "--resume", tmp_path / "stopped", "--epochs", 3)
    assert code == 0, err
    assert "resuming" in out
    straight, resumed = checkpoint_arrays(tmp_path / "straight"), checkpoint_arrays(tmp_path / "stopped")
    assert set(straight) == set(resumed)
    assert any(key.startswith("average_generator/") and "running_var" in key for key in straight)   # EMA's too
    for key in straight:
        np.testing.assert_array_equal(resumed[key], straight[key], err_msg=key)
    assert (tmp_path / "stopped" / "metrics.csv").read_text().count("\n") == 4


def test_ctrl_c_keeps_the_last_checkpoint_and_says_how_to_resume(tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    original, calls = GAN.train_step, []

    def interrupted(self, real, labels=None, read_losses=True):
        calls.append(1)
        if len(calls) == 3:   # the first step of epoch 2
            raise KeyboardInterrupt
        return original(self, real, labels, read_losses)

    monkeypatch.setattr(GAN, "train_step", interrupted)
    code, _, err = run_main(capsys, "train", "--arch", "mlp", "--epochs", 3, "--out", run_dir, "--quiet", *QUICK)
    assert code == 130
    assert f"checkpoint of epoch 1 in {run_dir} is intact" in err and f"--resume {run_dir}" in err
    assert "Traceback" not in err and err.strip().count("\n") == 0
    epoch_one = checkpoint_arrays(run_dir)
    assert int(epoch_one["generator_optimizer/steps"]) == 2
    monkeypatch.setattr(GAN, "train_step", original)
    code, _, err = run_main(capsys, "train", "--resume", run_dir, "--quiet")
    assert code == 0, err
    assert int(checkpoint_arrays(run_dir)["generator_optimizer/steps"]) == 6


def test_divergence_stops_with_a_message_and_keeps_the_good_checkpoint(tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    original, calls = GAN.train_step, []

    def diverging(self, real, labels=None, read_losses=True):
        calls.append(1)
        d_loss, g_loss = original(self, real, labels, read_losses)
        return (float("nan"), g_loss) if len(calls) == 4 else (d_loss, g_loss)

    monkeypatch.setattr(GAN, "train_step", diverging)
    code, _, err = run_main(capsys, "train", "--arch", "mlp", "--epochs", 3, "--out", run_dir, "--quiet", *QUICK)
    assert code == 3
    assert "training diverged at epoch 2, step 2 (D loss nan" in err and "checkpoint of epoch 1" in err
    assert int(checkpoint_arrays(run_dir)["generator_optimizer/steps"]) == 2


@pytest.mark.parametrize("arguments, message", [
    (["train", "--arch", "gan"], "Invalid value for '--arch'"),
    (["train", "--epochs", "-2"], "Invalid value for '--epochs'"),
    (["train", "--epochs", "0"], "Invalid value for '--epochs'"),
    (["train", "--lr", "0"], "Invalid value for '--lr'"),
    (["train", "--kernel-size", "4", "--limit", "64", "--data-dir", str(SHARED_MNIST)], "kernel size must be odd"),
    (["train", "--device", "tpu"], "Invalid value for '--device'"),
    (["train", "--limit", "10", "--data-dir", str(SHARED_MNIST)], "leaves less than one batch"),
    (["train", "--cuda-graph", "--limit", "64", "--data-dir", str(SHARED_MNIST)], "--cuda-graph needs the GPU: add "
                                                                                  "--device gpu"),
    (["train", "--data-dir", "/nonexistent/mnist"], "/nonexistent/mnist lacks train-images-idx3-ubyte.gz"),
    (["train", "--resume", "/nonexistent/run"], "/nonexistent/run holds no config.json"),
    (["sample", "--checkpoint", "/nonexistent/run", "--out", "x.npy"], "/nonexistent/run holds no config.json"),
    (["sample", "--checkpoint", ".", "--out", "x.jpg"], "--out must end in .npy or .png"),
    (["frobnicate"], "No such command 'frobnicate'"),
])
def test_bad_arguments_are_one_line_errors(arguments, message, tmp_path):
    result = tinygan(*arguments, cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert message in result.stderr


def test_gpu_without_cupy_is_a_one_line_error(tmp_path):
    from tinygan import backend
    if backend.gpu_unavailable_reason() is None:
        pytest.skip("this machine has a GPU")
    result = tinygan("train", "--device", "gpu", *QUICK, "--out", tmp_path / "run")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "pip install tinygan[gpu]" in result.stderr


@pytest.mark.gpu
def test_every_command_that_takes_a_device_runs_on_the_gpu(tmp_path):
    """train (its FID measured on the GPU), then sample, interpolate and eval of that run, with --device gpu;
    a conditional run, so that the class labels travel to the GPU too, and its steps replayed from a CUDA
    graph, the labels copied in with each batch."""
    from conftest import skip_without_gpu
    skip_without_gpu()
    run_dir = tmp_path / "run"
    result = tinygan("train", "--arch", "mlp", "--conditional", "--device", "gpu", "--cuda-graph", "--epochs", 1,
                     "--out", run_dir, "--quiet", *QUICK, "--limit", 256, "--eval-images", 200, "--eval-every", 1)
    assert result.returncode == 0, result.stderr
    with open(run_dir / "metrics.csv") as stream:
        (row,) = list(csv.DictReader(stream))
    assert np.isfinite(float(row["fid"])) and np.isfinite(float(row["d_loss"]))
    assert json.loads((run_dir / "config.json").read_text())["device"] == "gpu"

    result = tinygan("sample", "--checkpoint", run_dir, "--n", 20, "--digit", "3,7", "--out", tmp_path / "s.npy",
                     "--device", "gpu")
    assert result.returncode == 0, result.stderr
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (20, 28, 28) and samples.max() > samples.min()
    result = tinygan("interpolate", "--checkpoint", run_dir, "--out", tmp_path / "walk.png", "--rows", 2,
                     "--device", "gpu")
    assert result.returncode == 0 and (tmp_path / "walk.png").stat().st_size > 0, result.stderr
    result = tinygan("eval", run_dir, "--n", 200, "--device", "gpu", "--data-dir", SHARED_MNIST,
                     "--nearest-neighbour", 100)
    assert result.returncode == 0, result.stderr
    report = json.loads((run_dir / "eval.json").read_text())
    assert report["n"] == 200 and np.isfinite(report["fid"]) and 0 <= report["asked_class_share"] <= 1


def test_resume_refuses_to_change_the_architecture(tmp_path, capsys):
    assert run_main(capsys, "train", "--arch", "mlp", "--epochs", 1, "--out", tmp_path / "run", "--quiet",
                    *QUICK)[0] == 0
    code, _, err = run_main(capsys, "train", "--resume", tmp_path / "run", "--arch", "dcgan", "--lr", "0.1")
    assert code == 2 and "--arch, --lr cannot change when resuming" in err
    before = (tmp_path / "run" / "checkpoint.npz").read_bytes()
    code, _, err = run_main(capsys, "train", "--arch", "mlp", "--out", tmp_path / "run", "--quiet", *QUICK)
    assert code == 1 and f"{tmp_path / 'run'} already holds a run: continue it with --resume" in err
    assert (tmp_path / "run" / "checkpoint.npz").read_bytes() == before   # the old run is untouched
