"""The GPU kernels: CuPy elementwise kernels compiled from cuda_source.py.

One CUDA thread per output element, no Python loop. Same layout and summation
order as ``reference.py``, so the results agree bit for bit with the CPU
implementations. Kernels missing here (batch normalisation) run as the
reference's CuPy array code.
"""
import cupy
import numpy

from .cuda_source import KERNELS, PREAMBLE
from .reference import DROPOUT_BITS, output_size

_kernels = {name: cupy.ElementwiseKernel(inputs, outputs, body, f"tinygan_{name}", preamble=PREAMBLE)
            for name, (inputs, outputs, body) in KERNELS.items()}


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
    threshold = numpy.uint64(round(p * 2 ** DROPOUT_BITS))
    return _kernels["dropout"](x, numpy.uint64(key), threshold, x.dtype.type(1 / (1 - p)))


def adam_update(param, grad, m, v, lr, beta1, beta2, eps, step):
    t = param.dtype.type
    _kernels["adam_update"](grad, t(lr / (1 - beta1 ** step)), t(beta1), t(1 - beta1), t(beta2), t(1 - beta2),
                            t((1 - beta2 ** step) ** 0.5), t(eps), param, m, v)
