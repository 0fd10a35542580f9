"""The array backend: one switch between NumPy (CPU) and CuPy (GPU).

Every layer is written once against ``xp``, the array module of its input
(``get_array_module(x)``), so the same lines run on both devices. This module
holds the few pieces of global state the engine has:

* the current device (``use_device('cpu' | 'gpu')``), where new parameters live;
* the default floating-point type (float32 for training; the gradient checks
  switch to float64 with ``default_dtype(numpy.float64)``);
* the random generators (``seed(s)``), so that one seed fixes weights, noise,
  dropout masks and shuffling.

Weights and dropout keys are always drawn on the CPU (``numpy_rng()``), so a
seed gives the same initial weights and dropout masks on both devices. The
noise of each step is drawn by ``rng()`` on the current device, to avoid a
copy per step.
"""
from __future__ import annotations

import contextlib

import numpy

try:  # CuPy is optional: the CPU backend must work without it.
    import cupy
    _cupy_import_error: BaseException | None = None
except Exception as error:  # ImportError, or a CUDA library that fails to load
    cupy = None
    _cupy_import_error = error

DEVICES = ("cpu", "gpu")


class BackendError(RuntimeError):
    """A device was asked for that this machine cannot provide."""


_device = "cpu"
_dtype = numpy.dtype(numpy.float32)
_seed: int | None = None
_numpy_rng = numpy.random.default_rng()
_cupy_rng = None


def gpu_unavailable_reason() -> str | None:
    """None when the GPU backend can run, else one sentence saying why not and what to do."""
    if cupy is None:
        return (f"the GPU backend needs CuPy, which could not be imported ({_cupy_import_error}); "
                "install it with `pip install tinygan[gpu]` (or the cupy-cudaXXx wheel matching your CUDA version)")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # no driver, or a CuPy built for another CUDA
        return f"CuPy is installed but cannot reach a CUDA device ({error}); check the NVIDIA driver or use the CPU"
    if count == 0:
        return "CuPy is installed but this machine has no CUDA device; use the CPU (--device cpu)"
    return None


def gpu_name() -> str | None:
    """The name of the current CUDA device, or None without a usable GPU."""
    if gpu_unavailable_reason() is not None:
        return None
    properties = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = properties["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def use_device(name: str) -> None:
    """Make ``name`` ('cpu' or 'gpu') the device where new parameters and random numbers live."""
    global _device
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}: choose one of {', '.join(DEVICES)}")
    if name == "gpu":
        reason = gpu_unavailable_reason()
        if reason is not None:
            raise BackendError(reason)
    _device = name


def current_device() -> str:
    return _device


def xp():
    """The array module of the current device: numpy or cupy."""
    return cupy if _device == "gpu" else numpy


def get_array_module(*arrays):
    """The array module that holds ``arrays`` (cupy if any of them is a CuPy array)."""
    if cupy is not None:
        return cupy.get_array_module(*arrays)
    return numpy


def device_of(array) -> str:
    return "gpu" if cupy is not None and isinstance(array, cupy.ndarray) else "cpu"


def as_numpy(array):
    """A NumPy copy (or the array itself) of a NumPy or CuPy array."""
    if cupy is not None and isinstance(array, cupy.ndarray):
        return cupy.asnumpy(array)
    return numpy.asarray(array)


def numpy_copy(array):
    """A NumPy array that shares no memory with ``array`` (a snapshot for state dicts)."""
    if cupy is not None and isinstance(array, cupy.ndarray):
        return cupy.asnumpy(array)
    return numpy.array(array, copy=True)


def to_device(array, device: str | None = None):
    """``array`` on ``device`` (default: the current one), copied only when it must move."""
    device = device or _device
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}: choose one of {', '.join(DEVICES)}")
    if device == "gpu":
        if cupy is None:
            raise BackendError(gpu_unavailable_reason())
        return cupy.asarray(array)
    return as_numpy(array)


def check_same_device(x, parameter, layer_name: str) -> None:
    """Raise a TypeError naming the fix when an input and a parameter live on different devices.

    Mixing NumPy and CuPy arrays otherwise fails deep inside a matrix product
    with a message about implicit conversion.
    """
    x_device, parameter_device = device_of(x), device_of(parameter)
    if x_device != parameter_device:
        raise TypeError(
            f"{layer_name} got a {type(x).__module__}.{type(x).__name__} input on the {x_device} "
            f"but its parameters are on the {parameter_device}: move the input with "
            f"tinygan.backend.to_device(x, '{parameter_device}') or the model with model.to('{x_device}')")


def get_default_dtype() -> numpy.dtype:
    return _dtype


def set_default_dtype(dtype) -> None:
    """Set the floating-point type of new parameters and random draws (float32 or float64)."""
    global _dtype
    dtype = numpy.dtype(dtype)
    if dtype not in (numpy.float32, numpy.float64):
        raise ValueError(f"unsupported dtype {dtype}: use float32 (training) or float64 (gradient checks)")
    _dtype = dtype


@contextlib.contextmanager
def default_dtype(dtype):
    """``with default_dtype(numpy.float64):`` builds layers in float64, then restores the old type."""
    previous = _dtype
    set_default_dtype(dtype)
    try:
        yield
    finally:
        set_default_dtype(previous)


def seed(value: int) -> None:
    """Seed every generator the engine draws from, on both devices."""
    global _seed, _numpy_rng, _cupy_rng
    _seed = int(value)
    _numpy_rng = numpy.random.default_rng(_seed)
    _cupy_rng = None  # made on first use, so seeding never touches a GPU that is not used


def numpy_rng() -> numpy.random.Generator:
    """The CPU generator: weight initialisation, shuffling, and all draws on the CPU device."""
    return _numpy_rng


def rng():
    """The generator of the current device (numpy's, or CuPy's when the device is 'gpu')."""
    global _cupy_rng
    if _device == "cpu":
        return _numpy_rng
    if _cupy_rng is None:
        _cupy_rng = cupy.random.default_rng(_seed)
    return _cupy_rng
