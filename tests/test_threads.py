"""Importing tinygan leaves the user's environment alone; tinygan's own programs set the idle-thread policy."""
import os
import subprocess
import sys

import pytest

from conftest import IDLE_THREAD_POLICY
from tinygan import threads
from tinygan.threads import SETTINGS, started_as_program

CLEAN = {key: value for key, value in os.environ.items() if key not in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT")}


@pytest.mark.parametrize("argv, expected", [
    (["python", "-m", "tinygan", "train"], True),
    (["python", "-u", "-X", "dev", "-m", "benchmarks", "--full"], True),
    (["/usr/bin/python3", "/home/me/.local/bin/tinygan", "info"], True),
    (["python", "script.py"], False),
    (["python", "-c", "import tinygan"], False),
    (["python", "-m", "pytest", "-q"], False),
    (["python", "-m", "benchmarks.torch_worker"], False),
    (["python"], False),
])
def test_which_processes_count_as_tinygans_own(argv, expected):
    assert started_as_program(argv) is expected


def test_importing_tinygan_changes_no_environment_variable():
    code = "import os; before = dict(os.environ); import tinygan; print(dict(os.environ) == before)"
    result = subprocess.run([sys.executable, "-c", code], env=CLEAN, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "True", result.stderr


def test_the_command_line_sets_the_policy_but_keeps_the_users_value():
    result = subprocess.run([sys.executable, "-m", "tinygan", "info"], env=CLEAN, capture_output=True, text=True,
                            timeout=120)
    assert "idle CPU threads: OMP_WAIT_POLICY=PASSIVE, OPENBLAS_THREAD_TIMEOUT=4 (set by tinygan)" in result.stdout
    result = subprocess.run([sys.executable, "-m", "tinygan", "info"], env=dict(CLEAN, OMP_WAIT_POLICY="ACTIVE"),
                            capture_output=True, text=True, timeout=120)
    assert "OMP_WAIT_POLICY=ACTIVE" in result.stdout


def test_the_suite_runs_under_the_policy_tinygans_programs_set():
    assert IDLE_THREAD_POLICY == SETTINGS


def test_processes_run_at_once_each_get_their_share_of_the_cores(monkeypatch):
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 8)
    shared = threads.share_of_cores(3, {"PATH": "/bin", "OPENBLAS_NUM_THREADS": "5"})
    assert [shared[key] for key in threads.POOL_SIZES] == ["2", "2", "5", "2"]   # the user's 5 is kept
    assert shared["PATH"] == "/bin"
    assert threads.share_of_cores(16, {})["NUMBA_NUM_THREADS"] == "1"           # never 0
