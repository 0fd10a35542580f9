"""The GPU kernels: CuPy elementwise and reduction kernels compiled from cuda_source.py.

One CUDA thread per output element, no Python loop. Same layout and summation
order as ``reference.py``, so the results agree bit for bit with the CPU
implementations, except batch normalisation, the loss and Adam, which agree
to rounding (their sums run in another order, in double).

Each kernel launch costs the GPU a few microseconds whatever its size, and a
DCGAN step at batch 64 is small enough that launches, not arithmetic, set its
time. So batch normalisation is two per-channel reductions and two
elementwise passes forward, two and one backward (and two casts of the
channel sums, kept in double until dx is computed), where the reference's
array code launches ten or more each way.

A key, a step count or a decay may arrive as a cuda_graph.PerStep, while a
step is captured as a CUDA graph: those kernels then read it from the device.
"""
import cupy
import numpy

from ..cuda_graph import PerStep, is_recording, keep_alive
from .cuda_source import KERNELS, MULTI_TENSOR, PREAMBLE, REDUCTIONS, SUM
from . import reference
from .reference import DROPOUT_BITS, output_size

_kernels = {name: cupy.ElementwiseKernel(inputs, outputs, body, f"tinygan_{name}", preamble=PREAMBLE)
            for name, (inputs, outputs, body) in KERNELS.items()}
_reductions = {name: cupy.ReductionKernel(inputs, output, map_expr, SUM["reduce_expr"], post_map_expr,
                                          SUM["identity"], f"tinygan_{name}", reduce_type=SUM["reduce_type"],
                                          preamble=PREAMBLE)
               for name, (inputs, output, map_expr, post_map_expr) in REDUCTIONS.items()}
CHANNEL_SUM_AXES = (0, 2)   # of (N, C, M): every axis but the channel's


def matmul(a, b, out=None):
    """a @ b (into out): CuPy's, but cuBLAS called directly while a step is recorded for a CUDA graph, as CuPy
    refuses to call it during a capture (cublas.py)."""
    if is_recording():
        from . import cublas
        return cublas.matmul(a, b, out)
    return cupy.matmul(a, b, out=out)


def im2col(x, kernel_size, stride, padding, out=None):
    """x (N, C, H, W) -> col (C, kh, kw, N, out_h, out_w); see reference.im2col."""
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    out_h, out_w = output_size(H, kh, sh, ph), output_size(W, kw, sw, pw)
    col = cupy.empty((C, kh, kw, N, out_h, out_w), dtype=x.dtype) if out is None else out
    _kernels["im2col"](cupy.ascontiguousarray(x), C, H, W, kh, kw, N, out_h, out_w, sh, sw, ph, pw, col)
    return col


def col2im(col, image_size, stride, padding):
    """col (C, kh, kw, N, out_h, out_w) -> x (N, C, H, W); see reference.col2im."""
    C, kh, kw, N, out_h, out_w = col.shape
    (H, W), (sh, sw), (ph, pw) = image_size, stride, padding
    x = cupy.empty((N, C, H, W), dtype=col.dtype)
    _kernels["col2im"](cupy.ascontiguousarray(col), C, H, W, kh, kw, N, out_h, out_w, sh, sw, ph, pw, x)
    return x


def leaky_relu(x, negative_slope):
    return _kernels["leaky_relu"](x, x.dtype.type(negative_slope))


def leaky_relu_backward(dout, x, negative_slope):
    return _kernels["leaky_relu_backward"](dout, x, dout.dtype.type(negative_slope))


def dropout(x, p, key):
    threshold, scale = numpy.uint64(round(p * 2 ** DROPOUT_BITS)), x.dtype.type(1 / (1 - p))
    if isinstance(key, PerStep):
        return _kernels["dropout_per_step"](x, key.on_device(numpy.uint64), threshold, scale)
    return _kernels["dropout"](x, numpy.uint64(key), threshold, scale)


def poisson_from_uniform(u, rate, dtype):
    reference.check_poisson_rate(rate)
    return _kernels["poisson_from_uniform"](u, float(rate), cupy.empty(u.shape, dtype=dtype))


# The multi-tensor kernels, compiled once per dtype on first use.
_multi_tensor_modules, _multi_tensor_kernels = {}, {}
C_TYPES = {"float32": "float", "float64": "double"}


def _multi_tensor_kernel(name, dtype):
    if (name, dtype.name) not in _multi_tensor_kernels:
        if dtype.name not in _multi_tensor_modules:
            source = f"#define T {C_TYPES[dtype.name]}\n" + MULTI_TENSOR
            _multi_tensor_modules[dtype.name] = cupy.RawModule(code=source)
        _multi_tensor_kernels[name, dtype.name] = _multi_tensor_modules[dtype.name].get_function(name)
    return _multi_tensor_kernels[name, dtype.name]


# Each list of arrays gets its table of device addresses once, not every step: a table is an
# allocation and a copy from the host. A table holds its arrays (so that their addresses stay
# theirs); the few most recent tables are kept, enough for a GAN's two optimizers, their
# gradients and the weight average.
_tables = {}
TABLES_KEPT = 8


def _key(rows):
    return tuple(id(array) for row in rows for array in row)


def _table(rows):
    key = _key(rows)
    if key not in _tables:
        addresses = numpy.array([[array.data.ptr for array in row] for row in rows], dtype=numpy.uint64)
        ends = numpy.cumsum([array.size for array in rows[0]], dtype=numpy.int64)
        _tables[key] = (rows, cupy.asarray(addresses), cupy.asarray(ends))
        while len(_tables) > TABLES_KEPT:
            del _tables[next(iter(_tables))]   # the oldest
    return _tables[key][1:]


def can_launch_on_all(rows):
    """True when the multi-tensor kernels take these lists: C-contiguous CuPy float arrays of one dtype, the
    arrays of each row the sizes of the first row's."""
    if _key(rows) in _tables:
        return True   # checked when its table was built; an array's dtype, size and layout never change
    first = rows[0]
    return (len(first) > 0 and first[0].dtype.name in C_TYPES
            and all(len(row) == len(first) for row in rows)
            and all(isinstance(array, cupy.ndarray) and array.dtype == first[0].dtype
                    and array.flags.c_contiguous and array.size == like.size
                    for row in rows for array, like in zip(row, first)))


def _launch_on_all(name, rows, *scalars, per_step=()):
    """Kernel ``name`` over the lists of arrays ``rows``; ``per_step``: device arrays it reads its step's
    numbers from, passed before the scalars."""
    total = sum(array.size for array in rows[0])
    if total == 0:
        return
    table, ends = _table(rows)
    keep_alive(table, ends)
    dtype = rows[0][0].dtype
    threads = 256
    blocks = min((total + threads - 1) // threads, 8192)   # each thread loops over the rest
    _multi_tensor_kernel(name, dtype)((blocks,), (threads,), (table, ends, numpy.int32(len(rows[0])), *per_step,
                                                              *(dtype.type(s) for s in scalars)))


def adam_update_all(params, grads, ms, vs, lr, beta1, beta2, eps, step):
    """One Adam step on every parameter, in one launch; see optimizers.Adam."""
    def corrections(step):
        return lr / (1 - beta1 ** step), (1 - beta2 ** step) ** 0.5
    if isinstance(step, PerStep):
        _launch_on_all("adam_update_all_per_step", [params, grads, ms, vs], beta1, 1 - beta1, beta2, 1 - beta2,
                       eps, per_step=[step.on_device(numpy.float64, corrections, size=2)])
        return
    step_size, root_correction2 = corrections(step)
    _launch_on_all("adam_update_all", [params, grads, ms, vs], step_size, beta1, 1 - beta1,
                   beta2, 1 - beta2, root_correction2, eps)


def fill_all(arrays, value):
    _launch_on_all("fill_all", [arrays], value)


def average_all(averages, params, decay):
    if isinstance(decay, PerStep):
        _launch_on_all("average_all_per_step", [averages, params], per_step=[decay.on_device(numpy.float64)])
        return
    _launch_on_all("average_all", [averages, params], decay, 1 - decay)


def batchnorm_forward(x, gamma, beta, eps):
    """x (N, C, M) -> (y, x_hat, mean, var, inverse_std); see reference.batchnorm_forward."""
    count = float(x.shape[0] * x.shape[2])
    mean64 = _reductions["channel_mean"](x, count, axis=CHANNEL_SUM_AXES)   # float64 (cuda_source.py says why)
    var = _reductions["channel_variance"](x, mean64[:, None], count, axis=CHANNEL_SUM_AXES)
    inverse_std, mean = _kernels["batchnorm_inverse_std"](var, mean64, float(eps))
    y, x_hat = _kernels["batchnorm_normalise"](x, mean64[:, None], inverse_std[:, None], gamma[:, None], beta[:, None])
    return y, x_hat, mean, var, inverse_std


def batchnorm_update_running(running_mean, running_var, mean, var, momentum, unbias):
    if running_mean.dtype != mean.dtype or running_var.dtype != var.dtype:   # estimates set by hand in another dtype
        return reference.batchnorm_update_running(running_mean, running_var, mean, var, momentum, unbias)
    _kernels["batchnorm_update_running"](mean, var, float(momentum), float(unbias), running_mean, running_var)


def batchnorm_backward(dout, x_hat, gamma, inverse_std):
    """(dx, dgamma, dbeta); see reference.batchnorm_backward."""
    dbeta = _reductions["channel_sum"](dout, axis=CHANNEL_SUM_AXES)          # float64, as the mean
    dgamma = _reductions["channel_dot"](dout, x_hat, axis=CHANNEL_SUM_AXES)
    dx = _kernels["batchnorm_input_gradient"](dout, x_hat, gamma[:, None], inverse_std[:, None], dbeta[:, None],
                                              dgamma[:, None], float(dout.shape[0] * dout.shape[2]))
    return dx, dgamma.astype(dout.dtype), dbeta.astype(dout.dtype)


def bce_with_logits(logits, targets):
    """The mean loss as a float64 0-d array, in one reduction over every axis; see reference.bce_with_logits."""
    return _reductions["bce_with_logits_mean"](logits, targets, float(logits.size))


def bce_with_logits_gradient(logits, targets):
    return _kernels["bce_with_logits_gradient"](logits, targets, float(logits.size))
