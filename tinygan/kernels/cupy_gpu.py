"""The GPU kernels: im2col, col2im and the elementwise ones, as CuPy elementwise kernels.

One CUDA thread per output element, no Python loop. Same layout and summation
order as ``reference.py``. col2im gathers per image pixel (as Chainer's GPU
col2im does) instead of scattering with atomics, so it is deterministic and
agrees bit for bit with the CPU implementations.
"""
import cupy
import numpy

from .reference import DROPOUT_BITS, output_size

_im2col_kernel = cupy.ElementwiseKernel(
    "raw T x, int32 C, int32 H, int32 W, int32 kh, int32 kw, int32 N, int32 out_h, int32 out_w, "
    "int32 sh, int32 sw, int32 ph, int32 pw",
    "T col",
    """
    // i indexes col[c, ki, kj, n, y, x] in row-major order
    int x_ = i % out_w;
    int rest = i / out_w;
    int y = rest % out_h;  rest /= out_h;
    int n = rest % N;      rest /= N;
    int kj = rest % kw;    rest /= kw;
    int ki = rest % kh;
    int c = rest / kh;
    int row = y * sh + ki - ph;
    int column = x_ * sw + kj - pw;
    if (0 <= row && row < H && 0 <= column && column < W) {
        col = x[((n * C + c) * H + row) * W + column];
    } else {
        col = (T)0;
    }
    """,
    "tinygan_im2col",
)

_col2im_kernel = cupy.ElementwiseKernel(
    "raw T col, int32 C, int32 H, int32 W, int32 kh, int32 kw, int32 N, int32 out_h, int32 out_w, "
    "int32 sh, int32 sw, int32 ph, int32 pw",
    "T x",
    """
    // i indexes x[n, c, row, column]; gather every column entry copied from this pixel
    int column = i % W;
    int row = (i / W) % H;
    int c = (i / (W * H)) % C;
    int n = i / (W * H * C);
    T total = (T)0;
    for (int ki = 0; ki < kh; ++ki) {
        int dy = row + ph - ki;
        if (dy < 0 || dy % sh != 0 || dy / sh >= out_h) continue;
        for (int kj = 0; kj < kw; ++kj) {
            int dx = column + pw - kj;
            if (dx < 0 || dx % sw != 0 || dx / sw >= out_w) continue;
            total += col[((((c * kh + ki) * kw + kj) * N + n) * out_h + dy / sh) * out_w + dx / sw];
        }
    }
    x = total;
    """,
    "tinygan_col2im",
)


def im2col(x, kernel_size, stride, padding, out=None):
    """x (N, C, H, W) -> col (C, kh, kw, N, out_h, out_w); see reference.im2col."""
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    out_h, out_w = output_size(H, kh, sh, ph), output_size(W, kw, sw, pw)
    col = cupy.empty((C, kh, kw, N, out_h, out_w), dtype=x.dtype) if out is None else out
    _im2col_kernel(cupy.ascontiguousarray(x), C, H, W, kh, kw, N, out_h, out_w, sh, sw, ph, pw, col)
    return col


def col2im(col, image_size, stride, padding):
    """col (C, kh, kw, N, out_h, out_w) -> x (N, C, H, W); see reference.col2im."""
    C, kh, kw, N, out_h, out_w = col.shape
    (H, W), (sh, sw), (ph, pw) = image_size, stride, padding
    x = cupy.empty((N, C, H, W), dtype=col.dtype)
    _col2im_kernel(cupy.ascontiguousarray(col), C, H, W, kh, kw, N, out_h, out_w, sh, sw, ph, pw, x)
    return x


_leaky_relu_kernel = cupy.ElementwiseKernel(
    "T x, T slope", "T y", "y = x > 0 ? x : x * slope", "tinygan_leaky_relu")

_leaky_relu_backward_kernel = cupy.ElementwiseKernel(
    "T dout, T x, T slope", "T dx", "dx = x > 0 ? dout : dout * slope", "tinygan_leaky_relu_backward")

_dropout_kernel = cupy.ElementwiseKernel(
    "T x, uint64 key, uint64 threshold, T scale",
    "T y",
    """
    // splitmix64's output function of (key, i): the same bits as reference.random_bits
    unsigned long long z = (unsigned long long)(i + 1) * 0x9E3779B97F4A7C15ULL + key;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    unsigned long long bits = (z ^ (z >> 31)) >> (64 - DROPOUT_BITS);
    y = x * (bits >= threshold ? scale : (T)0);
    """,
    "tinygan_dropout",
    preamble=f"#define DROPOUT_BITS {DROPOUT_BITS}",
)


def leaky_relu(x, negative_slope):
    return _leaky_relu_kernel(x, x.dtype.type(negative_slope))


def leaky_relu_backward(dout, x, negative_slope):
    return _leaky_relu_backward_kernel(dout, x, dout.dtype.type(negative_slope))


def dropout(x, p, key):
    threshold = numpy.uint64(round(p * 2 ** DROPOUT_BITS))
    return _dropout_kernel(x, numpy.uint64(key), threshold, x.dtype.type(1 / (1 - p)))
