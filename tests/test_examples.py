"""The examples run as a new user would run them (examples rot when nothing runs them)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

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
