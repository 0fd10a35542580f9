"""im2col and col2im in plain NumPy/CuPy slicing: the readable reference.

im2col unrolls every kh x kw patch of an image into a column, so that a
convolution becomes one matrix product. Layout of the columns (channel-major,
chosen so that ``col.reshape(C * kh * kw, N * out_h * out_w)`` is contiguous and
one GEMM covers the whole batch)::

    col[c, i, j, n, y, x] = padded_x[n, c, y * stride_h + i, x * stride_w + j]

col2im is its adjoint (its transpose as a linear map): every column entry is
added back to the pixel it was copied from, so overlapping patches accumulate.
<im2col(x), col> == <x, col2im(col)> for every x and col.

Neither loops over pixels: both loop over the kh * kw kernel offsets and move
one strided slice of the whole batch at a time (Chainer's utils/conv.py).
The summation order of col2im (offset (0, 0) first, then row by row) is the
order the fast kernels use too, so all implementations agree bit for bit.
"""
from ..backend import get_array_module


def output_size(size, kernel, stride, padding):
    """Output length of a convolution along one axis, as in PyTorch's Conv2d."""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x, kernel_size, stride, padding, out=None):
    """x (N, C, H, W) -> col (C, kh, kw, N, out_h, out_w), written into ``out`` when given."""
    xp = get_array_module(x)
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    out_h, out_w = output_size(H, kh, sh, ph), output_size(W, kw, sw, pw)
    padded = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    col = xp.empty((C, kh, kw, N, out_h, out_w), dtype=x.dtype) if out is None else out
    for i in range(kh):
        for j in range(kw):
            patch = padded[:, :, i:i + sh * out_h:sh, j:j + sw * out_w:sw]
            col[:, i, j] = patch.transpose(1, 0, 2, 3)
    return col


def col2im(col, image_size, stride, padding):
    """col (C, kh, kw, N, out_h, out_w) -> x (N, C, H, W), summing overlapping patches."""
    xp = get_array_module(col)
    C, kh, kw, N, out_h, out_w = col.shape
    (H, W), (sh, sw), (ph, pw) = image_size, stride, padding
    padded = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=col.dtype)
    for i in range(kh):
        for j in range(kw):
            padded[:, :, i:i + sh * out_h:sh, j:j + sw * out_w:sw] += col[:, i, j].transpose(1, 0, 2, 3)
    return xp.ascontiguousarray(padded[:, :, ph:ph + H, pw:pw + W])
