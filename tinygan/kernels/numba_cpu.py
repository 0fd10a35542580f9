"""im2col and col2im as parallel Numba kernels for the CPU.

Same layout and same summation order as ``reference.py``, so the results are
identical bit for bit. Two rules keep the parallel loops race-free:

* im2col: each (c, i) pair (channel, kernel row) writes its own block ``col[c, i]``.
* col2im: a scatter (``x[...] += col[...]``) into a shared image from several
  threads would race on overlapping patches (numba issues #3681, #7133), so each
  thread owns whole (n, c) images and is the only one adding into them.

``cache=True`` stores the compiled machine code next to this file, so a second
process does not compile again.
"""
import numpy as np
from numba import njit, prange

from .reference import output_size


@njit(parallel=True, cache=True)
def _im2col(x, col, sh, sw, ph, pw):
    N, C, H, W = x.shape
    _, kh, kw, _, out_h, out_w = col.shape
    # One thread per (c, i) pair: it fills col[c, i], a contiguous block, front
    # to back, so the writes stream through memory; the reads stay within one
    # channel plane of each image, which fits in cache.
    for block in prange(C * kh):
        c, i = block // kh, block % kh
        for j in range(kw):
            for n in range(N):
                for y in range(out_h):
                    row = y * sh + i - ph
                    if row < 0 or row >= H:
                        for x_ in range(out_w):
                            col[c, i, j, n, y, x_] = 0
                        continue
                    for x_ in range(out_w):
                        column = x_ * sw + j - pw
                        if 0 <= column < W:
                            col[c, i, j, n, y, x_] = x[n, c, row, column]
                        else:
                            col[c, i, j, n, y, x_] = 0


@njit(parallel=True, cache=True)
def _col2im(col, x, sh, sw, ph, pw):
    N, C, H, W = x.shape
    _, kh, kw, _, out_h, out_w = col.shape
    for block in prange(N * C):
        n, c = block // C, block % C
        x[n, c] = 0
        # x[n, c] belongs to this thread alone, so the += cannot race; the
        # (i, j) loop order is the reference's, so every pixel sums the same
        # values in the same order.
        for i in range(kh):
            for j in range(kw):
                for y in range(out_h):
                    row = y * sh + i - ph
                    if row < 0 or row >= H:
                        continue
                    for x_ in range(out_w):
                        column = x_ * sw + j - pw
                        if 0 <= column < W:
                            x[n, c, row, column] += col[c, i, j, n, y, x_]


def im2col(x, kernel_size, stride, padding, out=None):
    """x (N, C, H, W) -> col (C, kh, kw, N, out_h, out_w); see reference.im2col."""
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    shape = (C, kh, kw, N, output_size(H, kh, sh, ph), output_size(W, kw, sw, pw))
    col = np.empty(shape, dtype=x.dtype) if out is None else out
    _im2col(np.ascontiguousarray(x), col, sh, sw, ph, pw)
    return col


def col2im(col, image_size, stride, padding):
    """col (C, kh, kw, N, out_h, out_w) -> x (N, C, H, W); see reference.col2im."""
    C, _, _, N, _, _ = col.shape
    x = np.empty((N, C) + tuple(image_size), dtype=col.dtype)
    _col2im(np.ascontiguousarray(col), x, stride[0], stride[1], padding[0], padding[1])
    return x
