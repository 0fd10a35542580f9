"""im2col and col2im, sent to the implementation that fits the array.

* ``reference``: plain slicing, readable, works on NumPy and CuPy arrays;
* ``numba_cpu``: parallel Numba kernels, the default for NumPy arrays;
* ``cupy_gpu``: CUDA elementwise kernels, always used for CuPy arrays.

All three agree bit for bit (tests/test_kernels.py). ``use_cpu_kernels('numpy')``
switches the CPU to the reference, which is how the benchmarks compare them.
"""
from ..backend import device_of
from . import reference
from .reference import output_size

try:
    from . import numba_cpu
    numba_import_error = None
except Exception as error:  # Numba is a dependency, but keep the engine usable without it
    numba_cpu = None
    numba_import_error = error

CPU_KERNELS = ("numba", "numpy")
_cpu_kernels = "numba" if numba_cpu is not None else "numpy"


def use_cpu_kernels(name: str) -> None:
    """Choose the CPU implementation: 'numba' (fast) or 'numpy' (the reference)."""
    global _cpu_kernels
    if name not in CPU_KERNELS:
        raise ValueError(f"unknown CPU kernels {name!r}: choose one of {', '.join(CPU_KERNELS)}")
    if name == "numba" and numba_cpu is None:
        raise RuntimeError(f"Numba kernels are unavailable ({numba_import_error}); `pip install numba`")
    _cpu_kernels = name


def cpu_kernels() -> str:
    return _cpu_kernels


def _implementation(array):
    if device_of(array) == "gpu":
        from . import cupy_gpu  # compiled on first use, only on machines with a GPU
        return cupy_gpu
    return numba_cpu if _cpu_kernels == "numba" else reference


def im2col(x, kernel_size, stride, padding, out=None):
    """x (N, C, H, W) -> col (C, kh, kw, N, out_h, out_w). Arguments are (h, w) pairs;
    ``out``, a C-contiguous array of that shape and dtype, receives the result when given."""
    return _implementation(x).im2col(x, kernel_size, stride, padding, out)


def col2im(col, image_size, stride, padding):
    """col (C, kh, kw, N, out_h, out_w) -> x (N, C, *image_size), the adjoint of im2col."""
    return _implementation(col).col2im(col, image_size, stride, padding)


__all__ = ["im2col", "col2im", "output_size", "use_cpu_kernels", "cpu_kernels", "CPU_KERNELS"]
