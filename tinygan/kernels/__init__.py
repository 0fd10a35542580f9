"""The hot loops of the engine, sent to the implementation that fits the array.

im2col / col2im and Winograd's transforms (the convolutions), leaky_relu and
its backward, dropout, Poisson counts from uniforms (the GPU's Poisson noise),
training-mode batch normalisation, the BCE loss and the Adam update; and, for
the optimizers, three that work on a whole list of arrays at once. Each
exists up to three times:
* ``reference``: plain array code, readable, works on NumPy and CuPy arrays;
* ``numba_cpu``: parallel Numba kernels, the default for NumPy arrays;
* ``cupy_gpu``: CUDA elementwise and reduction kernels, always used for CuPy arrays.
Where a fast implementation lacks a kernel, the reference runs in its place.
They agree bit for bit, except batch normalisation, Adam, Winograd's
transforms and (on a GPU) the loss, whose fast versions round differently and
agree to rounding (tests/test_kernels.py, tests/test_winograd.py,
tests/test_cuda_source.py). ``use_cpu_kernels('numpy')``
switches the CPU to the reference, which is how the benchmarks compare them.

The matrix product is NumPy's or CuPy's, except while a step is being captured
as a CUDA graph, when cuBLAS is called directly (cublas.py). A stack of
products on the CPU, Winograd's, gives each core its own share of the stack
(stacked_matmul.py).
"""
import numpy

from ..backend import device_of
from . import reference
from .reference import output_size
from .stacked_matmul import stacked_matmul  # noqa: F401  (kernels.stacked_matmul)

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


def uses_reference(array) -> bool:
    """True where the readable reference runs: a NumPy array while use_cpu_kernels('numpy') is in force.
    The convolution layers then also take their plain textbook path instead of their tuned one."""
    return device_of(array) == "cpu" and _cpu_kernels == "numpy"


def _implementation(array, name):
    """The function ``name`` of the implementation for ``array``'s device (the reference where
    the fast implementation has none)."""
    if device_of(array) == "gpu":
        from . import cupy_gpu  # compiled on first use, only on machines with a GPU
        module = cupy_gpu
    else:
        module = numba_cpu if _cpu_kernels == "numba" else reference
    return getattr(module, name, None) or getattr(reference, name)


def matmul(a, b, out=None):
    """a @ b for 2-D arrays, into ``out`` (C-contiguous, of the result's shape and dtype) when given."""
    if device_of(a) == "gpu":
        from . import cupy_gpu
        return cupy_gpu.matmul(a, b, out)
    # NumPy's matmul falls back to a slow loop for an inner dimension of 1, dot does not (D's last
    # layer's input gradient: 1.1 ms against 0.2)
    if a.shape[1] == 1:
        return numpy.dot(a, b, out=out)
    return numpy.matmul(a, b, out=out)


def im2col(x, kernel_size, stride, padding, out=None):
    """x (N, C, H, W) -> col (C, kh, kw, N, out_h, out_w). Arguments are (h, w) pairs;
    ``out``, a C-contiguous array of that shape and dtype, receives the result when given."""
    return _implementation(x, "im2col")(x, kernel_size, stride, padding, out)


def col2im(col, image_size, stride, padding):
    """col (C, kh, kw, N, out_h, out_w) -> x (N, C, *image_size), the adjoint of im2col."""
    return _implementation(col, "col2im")(col, image_size, stride, padding)


def winograd_filter(taps, Gh, Gw, out=None):
    """taps (kh, kw, C, O), any strides -> U (n_h n_w, C, O): G_h g G_w^T of every filter (tinygan/winograd.py)."""
    return _implementation(taps, "winograd_filter")(taps, Gh, Gw, out)


def winograd_filter_adjoint_add(dU, Gh, Gw, dtaps):
    """dtaps (kh, kw, C, O), any writable view, += G_h^T dU G_w: the adjoint of winograd_filter."""
    return _implementation(dU, "winograd_filter_adjoint_add")(dU, Gh, Gw, dtaps)


def winograd_input(x, BTh, BTw, step, padding, tiles, phases=1, out=None):
    """x (L, H, W) -> V (n_h, n_w, *tiles, L): B_h^T d B_w of every input tile d (tinygan/winograd.py). With
    phases = s > 1, x (L, s H, s W) is read as its L s^2 phase planes (tinygan/polyphase.py)."""
    return _implementation(x, "winograd_input")(x, BTh, BTw, step, padding, tiles, phases, out)


def winograd_output(M, ATh, ATw, size, phases=1, out=None):
    """M (n_h, n_w, th, tw, L) -> y (L, *size): A_h^T M A_w of every tile, cropped to size (or, with
    phases = s > 1, y (L / s^2, s size) whose phase planes these are)."""
    return _implementation(M, "winograd_output")(M, ATh, ATw, size, phases, out)


def winograd_output_adjoint(dy, ATh, ATw, tiles, phases=1, out=None):
    """dy (L, H_out, W_out) -> dM (n_h, n_w, *tiles, L), the adjoint of winograd_output (phases as there)."""
    return _implementation(dy, "winograd_output_adjoint")(dy, ATh, ATw, tiles, phases, out)


def winograd_input_adjoint(dV, BTh, BTw, step, padding, size, phases=1, out=None):
    """dV (n_h, n_w, th, tw, L) -> dx (L, *size), the adjoint of winograd_input (phases as there)."""
    return _implementation(dV, "winograd_input_adjoint")(dV, BTh, BTw, step, padding, size, phases, out)


def leaky_relu(x, negative_slope):
    """y = x where x > 0, else negative_slope * x."""
    return _implementation(x, "leaky_relu")(x, negative_slope)


def leaky_relu_backward(dout, x, negative_slope):
    """dL/dx = dout where x > 0, else negative_slope * dout."""
    return _implementation(dout, "leaky_relu_backward")(dout, x, negative_slope)


def dropout(x, p, key):
    """x * keep / (1 - p), the mask a function of (key, element index) alone: see reference.dropout."""
    return _implementation(x, "dropout")(x, p, key)


def poisson_from_uniform(u, rate, dtype):
    """Counts ~ Poisson(rate) of ``dtype``, one per uniform u (float64 on [0, 1)), by inversion (rate <= 500)."""
    return _implementation(u, "poisson_from_uniform")(u, rate, dtype)


def batchnorm_forward(x, gamma, beta, eps):
    """Training-mode batch normalisation of x (N, C, M): (y, x_hat, mean, var, inverse_std)."""
    return _implementation(x, "batchnorm_forward")(x, gamma, beta, eps)


def batchnorm_update_running(running_mean, running_var, mean, var, momentum, unbias):
    """running = (1 - momentum) running + momentum batch statistic, in place; the variance times unbias."""
    return _implementation(mean, "batchnorm_update_running")(running_mean, running_var, mean, var, momentum, unbias)


def batchnorm_backward(dout, x_hat, gamma, inverse_std):
    """(dx, dgamma, dbeta) of batchnorm_forward."""
    return _implementation(dout, "batchnorm_backward")(dout, x_hat, gamma, inverse_std)


def adam_update(param, grad, m, v, lr, beta1, beta2, eps, step):
    """One Adam step at step number ``step`` (from 1), in place on param, m and v."""
    return _implementation(param, "adam_update")(param, grad, m, v, lr, beta1, beta2, eps, step)


def bce_with_logits(logits, targets):
    """BCEWithLogits' mean loss over every entry, as a float64 0-d array on the logits' device."""
    return _implementation(logits, "bce_with_logits")(logits, targets)


def bce_with_logits_gradient(logits, targets):
    """dL/dlogits of bce_with_logits."""
    return _implementation(logits, "bce_with_logits_gradient")(logits, targets)


# The optimizers' kernels take a list of arrays, the parameters of a whole model: a GPU updates
# them all in one launch (cupy_gpu's multi-tensor kernels), where a launch per array would cost
# more than the arithmetic. A CPU call costs microseconds, not a launch, so there they loop.

def _on_gpu_in_one_launch(rows):
    """cupy_gpu, where it can update these lists of arrays in one launch; else None."""
    if not rows[0] or device_of(rows[0][0]) != "gpu":
        return None
    from . import cupy_gpu
    return cupy_gpu if cupy_gpu.can_launch_on_all(rows) else None


def adam_update_all(params, grads, ms, vs, lr, beta1, beta2, eps, step):
    """adam_update on every (param, grad, m, v)."""
    gpu = _on_gpu_in_one_launch([params, grads, ms, vs])
    if gpu is not None:
        return gpu.adam_update_all(params, grads, ms, vs, lr, beta1, beta2, eps, step)
    for param, grad, m, v in zip(params, grads, ms, vs):
        adam_update(param, grad, m, v, lr, beta1, beta2, eps, step)


def fill_all(arrays, value):
    """Every array set to value (zero_grad)."""
    gpu = _on_gpu_in_one_launch([arrays])
    if gpu is not None:
        return gpu.fill_all(arrays, value)
    for array in arrays:
        array.fill(value)


def average_all(averages, params, decay):
    """average = decay average + (1 - decay) param, in place, for each pair: a weight average."""
    gpu = _on_gpu_in_one_launch([averages, params])
    if gpu is not None:
        return gpu.average_all(averages, params, decay)
    for average, param in zip(averages, params):
        average *= decay
        average += (1 - decay) * param


__all__ = ["matmul", "im2col", "col2im", "winograd_filter", "winograd_filter_adjoint_add", "winograd_input",
           "winograd_output", "winograd_output_adjoint", "winograd_input_adjoint", "leaky_relu", "leaky_relu_backward",
           "dropout", "batchnorm_forward", "batchnorm_backward", "batchnorm_update_running", "bce_with_logits",
           "bce_with_logits_gradient", "adam_update", "adam_update_all", "fill_all", "average_all", "output_size",
           "use_cpu_kernels", "cpu_kernels", "uses_reference", "CPU_KERNELS"]
