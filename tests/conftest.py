"""Shared fixtures: every test body runs on each compute path (one body, not one copy per backend)."""
import importlib.util
import os
import shutil
import struct
import sys
from pathlib import Path

# The suite trains GANs in its own process, so it starts the way tinygan/threads.py tells any such script
# to: idle CPU threads sleep. Set before NumPy loads its BLAS. Without it, OpenBLAS's and Numba's pools
# spin against each other on 2 cores and an in-process MLP step ran 5 to 20 times slower.
IDLE_THREAD_POLICY = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}
for _key, _value in IDLE_THREAD_POLICY.items():
    os.environ.setdefault(_key, _value)

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from tinygan import backend, kernels

# Numba compiles on first call, which would trip hypothesis's per-example deadline. Under CI the
# draws are derandomized, so that a run is reproducible; locally every run explores new examples.
settings.register_profile("tinygan", deadline=None, print_blob=True, derandomize=os.environ.get("CI") == "true",
                          max_examples=int(os.environ.get("TINYGAN_MAX_EXAMPLES", "50")),
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile("tinygan")

# The project's MNIST copy, beside the checkout (never inside it); the tests that read it skip without it.
SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
requires_mnist = pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"no MNIST copy at {SHARED_MNIST}")


def idx_bytes(array, magic, shape=None):
    """An IDX file's bytes: magic, one big-endian size per dimension, the values; `shape` writes a header that lies."""
    shape = array.shape if shape is None else shape
    return struct.pack(">I", magic) + struct.pack(f">{len(shape)}I", *shape) + array.tobytes()

# numpy: the reference kernels; numba: the CPU default; cupy: the GPU (marked, skipped without one).
PATHS = ["numpy", "numba", pytest.param("cupy", marks=pytest.mark.gpu)]


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """One cache directory for the whole session, not the user's: eval's real-side statistics are
    computed once here and shared by every test (and by the subprocesses, which inherit it)."""
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = previous


CUPY_STAND_IN = Path(__file__).resolve().parent / "cupy_stand_in"   # put first on the path, it is `cupy`


@pytest.fixture(scope="session")
def cupy_stand_in():
    """The CuPy stand-in (tests/cupy_stand_in), loaded under its own name: this process stays without CuPy."""
    if shutil.which("c++") is None:
        pytest.skip("the CuPy stand-in compiles its kernels with c++")
    spec = importlib.util.spec_from_file_location("cupy_stand_in", CUPY_STAND_IN / "cupy" / "__init__.py")
    module = sys.modules["cupy_stand_in"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def skip_without_gpu():
    reason = backend.gpu_unavailable_reason()
    if reason is not None:
        pytest.skip(f"no usable GPU: {reason}")


@pytest.fixture(params=PATHS)
def path(request):
    """Select a compute path for the test; restores the CPU defaults afterwards."""
    name = request.param
    previous = kernels.cpu_kernels()
    if name == "cupy":
        skip_without_gpu()
        backend.use_device("gpu")
    else:
        kernels.use_cpu_kernels(name)
    try:
        yield name
    finally:
        backend.use_device("cpu")
        kernels.use_cpu_kernels(previous)


@pytest.fixture
def float64():
    """Build layers in float64 for the test (gradient checks), float32 again afterwards."""
    with backend.default_dtype(np.float64):
        yield


def device_array(values):
    """A NumPy array on the current device, keeping its dtype."""
    return backend.to_device(np.asarray(values))
