"""The examples run as a new user would run them (examples rot when nothing runs them)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SHARED_MNIST, requires_mnist
from tinygan import backend

QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"


def run_quickstart(*arguments):
    return subprocess.run([sys.executable, str(QUICKSTART), *arguments], capture_output=True, text=True,
                          timeout=300)


def assert_loss_falls(result):
    assert result.returncode == 0, result.stderr
    losses = [float(value) for value in re.findall(r"loss (\d+\.\d+)", result.stdout)]
    assert len(losses) == 5 and all(b < a for a, b in zip(losses, losses[1:])), result.stdout


def test_quickstart_trains_on_the_cpu():
    assert_loss_falls(run_quickstart())


def test_quickstart_on_a_missing_gpu_says_why_in_one_line():
    if backend.gpu_unavailable_reason() is None:
        pytest.skip("this machine has a GPU")
    result = run_quickstart("gpu")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "pip install tinygan[gpu]" in result.stderr


@pytest.mark.gpu
def test_quickstart_trains_on_the_gpu():
    from conftest import skip_without_gpu
    skip_without_gpu()
    assert_loss_falls(run_quickstart("gpu"))


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("script, expected", [
    ("im2col_by_hand.py", ["loops == matrix product == Conv2D: True True", "adjoint identity:", ": True"]),
    ("stable_bce.py", ["   200.0    1.0            nan               0", "gradient 1.0"]),
    ("batchnorm_gradient.py", ["agrees with central differences", "the planted mistake is caught: "
                                                                    "ForgetfulBatchNorm gradient of the input"]),
    ("transposed_scatter.py", ["the definition's loops agree: True", " [2. 4. 2. 4. 2. 4. 2. 2.]"]),
    ("adam_vs_sgd.py", ["SGD lr 0.004", "SGD + momentum 0.9", "Adam lr 0.05         mean squared error    0.000"]),
])
def test_the_teaching_examples_run_and_show_their_point(script, expected):
    result = subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for text in expected:
        assert text in result.stdout, result.stdout


@requires_mnist
def test_known_sets_prints_the_floor_and_the_known_verdicts():
    result = subprocess.run([sys.executable, str(EXAMPLES / "known_sets.py"), "--n", "1000", "--data-dir",
                             str(SHARED_MNIST)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = {line.split("|")[1].strip(): line.split("|")[2] for line in result.stdout.splitlines()
            if line.startswith("| ") and not line.startswith(("| set", "| ---"))}
    assert set(rows) >= {"real training images (floor)", "uniform noise", "one class (all 1s)",
                         "blurred real (5x5 box)"}
    fid = {name: float(cell) for name, cell in rows.items()}
    assert fid["real training images (floor)"] < 10 < fid["blurred real (5x5 box)"] < fid["uniform noise"]


@requires_mnist
def test_the_gan_in_40_lines_trains_on_mnist_and_writes_its_grid(tmp_path):
    out = tmp_path / "grid.png"
    result = subprocess.run([sys.executable, str(EXAMPLES / "gan_in_40_lines.py"), "--epochs", "1", "--images", "1280", "--data-dir",
                             str(SHARED_MNIST), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert re.search(r"epoch 1: D loss \d+\.\d+  G loss \d+\.\d+", result.stdout), result.stdout
    assert out.read_bytes().startswith(b"\x89PNG")


@requires_mnist
def test_the_latent_walk_starts_and_ends_at_the_generators_images(tmp_path):
    run = tmp_path / "run"
    train = subprocess.run([sys.executable, "-m", "tinygan", "train", "--arch", "mlp", "--epochs", "1", "--limit",
                            "128", "--eval-every", "0", "--eval-images", "64", "--quiet", "--data-dir",
                            str(SHARED_MNIST), "--out", str(run)], capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stderr
    out = tmp_path / "walk.png"
    result = subprocess.run([sys.executable, str(EXAMPLES / "latent_walk.py"), str(run), "--out", str(out),
                             "--pairs", "2", "--steps", "5"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "both paths start at G(z_a) and end at G(z_b): True True" in result.stdout
    norms = re.search(r"straight (\d+\.\d+), spherical (\d+\.\d+)", result.stdout)
    assert float(norms[1]) < float(norms[2])              # the straight path cuts towards the origin
    assert out.read_bytes().startswith(b"\x89PNG")
