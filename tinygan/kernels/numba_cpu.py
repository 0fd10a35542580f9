"""The CPU kernels as parallel Numba kernels: im2col, col2im, the elementwise ones, BatchNorm, Adam.

im2col, col2im, LeakyReLU and Dropout keep the layout and the summation order
of ``reference.py``, so their results are identical bit for bit; BatchNorm and
Adam compute in float64 and agree to rounding. Two rules keep the parallel
convolution loops race-free:

* im2col: each (c, i) pair (channel, kernel row) writes its own block ``col[c, i]``.
* col2im: a scatter (``x[...] += col[...]``) into a shared image from several
  threads would race on overlapping patches (numba issues #3681, #7133), so each
  thread owns one channel c of a slice of the batch, and is the only one adding
  into those images. It reads ``col[c]``, one contiguous block, front to back.
Both work on a zero-padded image, as the reference does, so the inner loops
copy or add without a bounds check.

``cache=True`` stores the compiled machine code next to this file, so a second
process does not compile again.
"""
import numpy as np
from numba import get_num_threads, njit, prange, set_num_threads

from .reference import DROPOUT_BITS, SPLITMIX64_GOLDEN, SPLITMIX64_MIX1, SPLITMIX64_MIX2, output_size
from .reference import adam_update as reference_adam_update


@njit(inline="always", cache=True)
def _block_bounds(index, length, size):
    """[first, last): the index-th block of ``length`` consecutive items out of ``size`` (the last one may be short)."""
    first = index * length
    return first, min(size, first + length)


@njit(parallel=True, cache=True)
def _pad(x, padded, ph, pw):
    # np.pad, but parallel and into an array we allocate: a third of the time.
    N, C, H, W = x.shape
    for block in prange(N * C):
        n, c = block // C, block % C
        padded[n, c] = 0
        for row in range(H):
            for column in range(W):
                padded[n, c, row + ph, column + pw] = x[n, c, row, column]


@njit(parallel=True, cache=True)
def _im2col(padded, col, sh, sw):
    C, kh, kw, N, out_h, out_w = col.shape
    # One thread per (c, i) pair: it fills col[c, i], a contiguous block, front
    # to back, so the writes stream through memory; the reads stay within one
    # channel plane of each image, which fits in cache.
    for block in prange(C * kh):
        c, i = block // kh, block % kh
        for j in range(kw):
            for n in range(N):
                for y in range(out_h):
                    row = y * sh + i
                    for x_ in range(out_w):
                        col[c, i, j, n, y, x_] = padded[n, c, row, x_ * sw + j]


@njit(parallel=True, cache=True)
def _col2im(col, padded, x, sh, sw, batch_slices):
    C, kh, kw, N, out_h, out_w = col.shape
    _, _, H, W = x.shape
    ph, pw = (padded.shape[2] - H) // 2, (padded.shape[3] - W) // 2
    step = (N + batch_slices - 1) // batch_slices
    for block in prange(C * batch_slices):
        c = block // batch_slices
        first, last = _block_bounds(block % batch_slices, step, N)
        for n in range(first, last):
            padded[n, c] = 0
        # padded[first:last, c] belongs to this thread alone, so the += cannot
        # race; the (i, j) loop order is the reference's, so every pixel sums
        # the same values in the same order. The strides 1 and 2 of the dcgan
        # get loops of their own: with the stride a constant the compiler
        # vectorises the adds (G.4's col2im 10 -> 7 ms).
        for i in range(kh):
            for j in range(kw):
                for n in range(first, last):
                    for y in range(out_h):
                        row = y * sh + i
                        if sw == 1:
                            for x_ in range(out_w):
                                padded[n, c, row, x_ + j] += col[c, i, j, n, y, x_]
                        elif sw == 2:
                            for x_ in range(out_w):
                                padded[n, c, row, x_ * 2 + j] += col[c, i, j, n, y, x_]
                        else:
                            for x_ in range(out_w):
                                padded[n, c, row, x_ * sw + j] += col[c, i, j, n, y, x_]
        for n in range(first, last):   # the image without its padding, while it is still in cache
            for row in range(H):
                for column in range(W):
                    x[n, c, row, column] = padded[n, c, row + ph, column + pw]


def _padded(x, padding):
    N, C, H, W = x.shape
    (ph, pw) = padding
    if ph == pw == 0:
        return np.ascontiguousarray(x)
    padded = np.empty((N, C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    _pad(np.ascontiguousarray(x), padded, ph, pw)
    return padded


def im2col(x, kernel_size, stride, padding, out=None):
    """x (N, C, H, W) -> col (C, kh, kw, N, out_h, out_w); see reference.im2col."""
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    shape = (C, kh, kw, N, output_size(H, kh, sh, ph), output_size(W, kw, sw, pw))
    col = np.empty(shape, dtype=x.dtype) if out is None else out
    _im2col(_padded(x, padding), col, sh, sw)
    return col


def col2im(col, image_size, stride, padding):
    """col (C, kh, kw, N, out_h, out_w) -> x (N, C, H, W); see reference.col2im."""
    C, _, _, N, _, _ = col.shape
    (H, W), (ph, pw) = image_size, padding
    padded = np.empty((N, C, H + 2 * ph, W + 2 * pw), dtype=col.dtype)
    x = np.empty((N, C, H, W), dtype=col.dtype)
    # With few channels (the image layers) the batch is cut into slices too, so
    # that every thread has work: about four blocks a thread.
    batch_slices = min(N, -(-4 * get_num_threads() // C))
    _col2im(np.ascontiguousarray(col), padded, x, stride[0], stride[1], batch_slices)
    return x


# Elementwise kernels: one parallel pass instead of NumPy's several
# single-threaded passes with a temporary array each. The arrays are flat
# views of C-contiguous arrays.
#
# Waking the idle thread pool for a parallel loop costs about 45 us here (its
# threads sleep when idle: tinygan/threads.py), more than a whole pass over a
# small array: LeakyReLU on the mlp's 64 x 512 activations took 46 us on two
# threads and 5 us on one. So arrays below PARALLEL_FROM elements run on the
# calling thread alone. The thresholds are where two threads started to win
# on a 2-core machine; the results do not depend on the thread count.
PARALLEL_FROM = {"leaky_relu": 2**19, "dropout": 2**18, "adam_update": 2**17}


def _run(kernel, size, name, *arguments):
    """kernel(*arguments), on the calling thread alone when ``size`` is below PARALLEL_FROM[name]."""
    if size >= PARALLEL_FROM[name]:
        return kernel(*arguments)
    threads = get_num_threads()
    set_num_threads(1)
    try:
        return kernel(*arguments)
    finally:
        set_num_threads(threads)


@njit(parallel=True, cache=True)
def _leaky_relu(x, y, slope):
    for i in prange(x.size):
        value = x[i]
        y[i] = value if value > 0 else value * slope


@njit(parallel=True, cache=True)
def _leaky_relu_backward(dout, x, dx, slope):
    for i in prange(x.size):
        dx[i] = dout[i] if x[i] > 0 else dout[i] * slope


@njit(parallel=True, cache=True)
def _dropout(x, y, key, threshold, scale, zero):
    for i in prange(x.size):
        z = np.uint64(i + 1) * np.uint64(SPLITMIX64_GOLDEN) + key
        z = (z ^ (z >> np.uint64(30))) * np.uint64(SPLITMIX64_MIX1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(SPLITMIX64_MIX2)
        bits = (z ^ (z >> np.uint64(31))) >> np.uint64(64 - DROPOUT_BITS)
        y[i] = x[i] * (scale if bits >= threshold else zero)


def _flat(a):
    return np.ascontiguousarray(a).reshape(-1)


def leaky_relu(x, negative_slope):
    y = np.empty(x.shape, dtype=x.dtype)
    _run(_leaky_relu, x.size, "leaky_relu", _flat(x), y.reshape(-1), x.dtype.type(negative_slope))
    return y


def leaky_relu_backward(dout, x, negative_slope):
    dx = np.empty(dout.shape, dtype=dout.dtype)
    _run(_leaky_relu_backward, x.size, "leaky_relu", _flat(dout), _flat(x), dx.reshape(-1),
         dout.dtype.type(negative_slope))
    return dx


def dropout(x, p, key):
    y = np.empty(x.shape, dtype=x.dtype)
    threshold = np.uint64(round(p * 2 ** DROPOUT_BITS))
    _run(_dropout, x.size, "dropout", _flat(x), y.reshape(-1), np.uint64(key), threshold, x.dtype.type(1 / (1 - p)),
         x.dtype.type(0))
    return y


# Batch normalisation: one thread per channel makes every pass over that
# channel's values (sum, squared deviations, normalise) in one kernel; the sums
# are accumulated in float64. fastmath's "reassoc" lets the compiler split each
# sum over several registers instead of waiting on one chain of additions
# (1.5-1.9x for the dcgan's convolution layers); the result changes only in
# the last bits of a float64 sum, and NaN and inf still propagate.

@njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
def _batchnorm_forward(x, gamma, beta, eps, y, x_hat, mean, var, inverse_std):
    N, C, M = x.shape
    count = N * M
    for c in prange(C):
        total = 0.0
        for n in range(N):
            for j in range(M):
                total += x[n, c, j]
        mu = total / count
        squares = 0.0
        for n in range(N):
            for j in range(M):
                deviation = x[n, c, j] - mu
                squares += deviation * deviation
        inverse = 1.0 / np.sqrt(squares / count + eps)
        mean[c], var[c], inverse_std[c] = mu, squares / count, inverse
        for n in range(N):
            for j in range(M):
                normalised = (x[n, c, j] - mu) * inverse
                x_hat[n, c, j] = normalised
                y[n, c, j] = normalised * gamma[c] + beta[c]


@njit(parallel=True, cache=True)
def _batchnorm_backward(dout, x_hat, gamma, inverse_std, dx, dgamma, dbeta):
    N, C, M = dout.shape
    count = N * M
    for c in prange(C):
        sum_dout, sum_dout_x_hat = 0.0, 0.0
        for n in range(N):
            for j in range(M):
                sum_dout += dout[n, c, j]
                sum_dout_x_hat += np.float64(dout[n, c, j]) * x_hat[n, c, j]   # a float32 product would round
        dgamma[c], dbeta[c] = sum_dout_x_hat, sum_dout
        scale, mean_dout, mean_dout_x_hat = gamma[c] * inverse_std[c], sum_dout / count, sum_dout_x_hat / count
        for n in range(N):
            for j in range(M):
                dx[n, c, j] = scale * (dout[n, c, j] - mean_dout - x_hat[n, c, j] * mean_dout_x_hat)


# For (N, C) input (BatchNorm after a Dense layer) a channel's N values lie C
# apart, and one thread per channel touches a new cache line for every value
# (the dcgan's G.1, C = 12544: 3 ms). There, each thread takes a block of
# neighbouring channels and walks the rows of the block, so the inner loops
# run over contiguous memory, one accumulator per channel.
FEATURES_PER_BLOCK = 512


@njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
def _batchnorm_forward_features(x, gamma, beta, eps, y, x_hat, mean, var, inverse_std):
    N, C = x.shape
    for block in prange((C + FEATURES_PER_BLOCK - 1) // FEATURES_PER_BLOCK):
        first, last = _block_bounds(block, FEATURES_PER_BLOCK, C)
        totals, squares = np.zeros(last - first), np.zeros(last - first)
        # Row slices, not x[n, first + k]: the compiler then knows every index
        # is in range and vectorises the loops (5x).
        for n in range(N):
            row = x[n, first:last]
            for k in range(last - first):
                totals[k] += row[k]
        means = totals / N
        for n in range(N):
            row = x[n, first:last]
            for k in range(last - first):
                deviation = row[k] - means[k]
                squares[k] += deviation * deviation
        variances = squares / N
        inverses = 1.0 / np.sqrt(variances + eps)
        mean[first:last], var[first:last], inverse_std[first:last] = means, variances, inverses
        scale, shift = gamma[first:last], beta[first:last]
        for n in range(N):
            row, row_hat, row_y = x[n, first:last], x_hat[n, first:last], y[n, first:last]
            for k in range(last - first):
                normalised = (row[k] - means[k]) * inverses[k]
                row_hat[k] = normalised
                row_y[k] = normalised * scale[k] + shift[k]


@njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
def _batchnorm_backward_features(dout, x_hat, gamma, inverse_std, dx, dgamma, dbeta):
    N, C = dout.shape
    for block in prange((C + FEATURES_PER_BLOCK - 1) // FEATURES_PER_BLOCK):
        first, last = _block_bounds(block, FEATURES_PER_BLOCK, C)
        sums_dout, sums_dout_x_hat = np.zeros(last - first), np.zeros(last - first)
        for n in range(N):
            row_dout, row_hat = dout[n, first:last], x_hat[n, first:last]
            for k in range(last - first):
                sums_dout[k] += row_dout[k]
                sums_dout_x_hat[k] += np.float64(row_dout[k]) * row_hat[k]
        dgamma[first:last], dbeta[first:last] = sums_dout_x_hat, sums_dout
        scale = gamma[first:last] * inverse_std[first:last]
        mean_dout, mean_dout_x_hat = sums_dout / N, sums_dout_x_hat / N
        for n in range(N):
            row_dout, row_hat, row_dx = dout[n, first:last], x_hat[n, first:last], dx[n, first:last]
            for k in range(last - first):
                row_dx[k] = scale[k] * (row_dout[k] - mean_dout[k] - row_hat[k] * mean_dout_x_hat[k])


def batchnorm_forward(x, gamma, beta, eps):
    x = np.ascontiguousarray(x)
    N, C, M = x.shape
    y, x_hat = np.empty_like(x), np.empty_like(x)
    mean, var, inverse_std = (np.empty(C, dtype=x.dtype) for _ in range(3))
    if M == 1:
        _batchnorm_forward_features(x.reshape(N, C), gamma, beta, eps, y.reshape(N, C), x_hat.reshape(N, C),
                                    mean, var, inverse_std)
    else:
        _batchnorm_forward(x, gamma, beta, eps, y, x_hat, mean, var, inverse_std)
    return y, x_hat, mean, var, inverse_std


def batchnorm_backward(dout, x_hat, gamma, inverse_std):
    dout = np.ascontiguousarray(dout)
    N, C, M = dout.shape
    dx = np.empty_like(dout)
    dgamma, dbeta = np.empty(C, dtype=dout.dtype), np.empty(C, dtype=dout.dtype)
    if M == 1:
        _batchnorm_backward_features(dout.reshape(N, C), x_hat.reshape(N, C), gamma, inverse_std,
                                     dx.reshape(N, C), dgamma, dbeta)
    else:
        _batchnorm_backward(dout, x_hat, gamma, inverse_std, dx, dgamma, dbeta)
    return dx, dgamma, dbeta


@njit(parallel=True, cache=True)
def _adam_update(param, grad, m, v, step_size, beta1, beta2, root_correction2, eps):
    for i in prange(param.size):
        g = grad[i]
        m[i] = beta1 * m[i] + (1 - beta1) * g
        v[i] = beta2 * v[i] + (1 - beta2) * g * g
        param[i] -= step_size * m[i] / (np.sqrt(v[i]) / root_correction2 + eps)


def adam_update(param, grad, m, v, lr, beta1, beta2, eps, step):
    """One pass over the four arrays instead of NumPy's eight (see reference.adam_update)."""
    if not all(a.flags.c_contiguous for a in (param, grad, m, v)):   # in place needs flat views
        return reference_adam_update(param, grad, m, v, lr, beta1, beta2, eps, step)
    _run(_adam_update, param.size, "adam_update", param.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1),
         lr / (1 - beta1 ** step), beta1, beta2, (1 - beta2 ** step) ** 0.5, eps)


# Winograd's tile transforms (see reference.py for the layout, tinygan/winograd.py for the method).
# The images come and go as planes, (L, H, W) with L = N C: NCHW as the layers hold it. Each thread
# takes a slice of the L planes and copies it, within the cache, into channels last, (H, W, slice),
# so that every step below is a loop over a contiguous run of values with one matrix entry as the
# factor, which the compiler vectorises. The thread then owns those values across every tile: the
# input adjoint adds overlapping windows into one image, and this way no two threads add into the
# same place. Zero entries of A^T and B^T (about a third) are skipped.
WINOGRAD_SLICE = 512   # planes per thread's slice: its tile's n x n rows of values stay in the L2 cache


@njit(inline="always", cache=True)
def _add_scaled(target, factor, source):
    """target += factor * source, for two 1-D arrays of one length: the step every transform is made of."""
    for k in range(target.shape[0]):
        target[k] += factor * source[k]


@njit(inline="always", cache=True)
def _phase_plane_shape(planes, phases):
    """(count, rows, columns) of the planes a kernel works on: those of ``planes`` (L, H, W), or, with
    s = phases > 1, of their s x s phases (L s^2, H / s, W / s)."""
    return planes.shape[0] * phases * phases, planes.shape[1] // phases, planes.shape[2] // phases


@njit(inline="always", cache=True)
def _phase_source(index, phases):
    """Phase plane ``index`` is planes[plane, a::phases, b::phases]: (plane, a, b)."""
    plane, phase = index // (phases * phases), index % (phases * phases)
    return plane, phase // phases, phase % phases


@njit(inline="always", cache=True)
def _gather_planes(planes, first, last, image, phases=1):
    """image[row, column, k] = plane first + k: a slice of planes, channels last. With s = phases > 1 the
    planes are those of the s x s phases of each plane of ``planes`` (plane l s^2 + a s + b is
    planes[l, a::s, b::s], tinygan/polyphase.py)."""
    for k in range(last - first):
        plane, a, b = _phase_source(first + k, phases)
        for row in range(image.shape[0]):
            for column in range(image.shape[1]):
                image[row, column, k] = planes[plane, phases * row + a, phases * column + b]


@njit(inline="always", cache=True)
def _scatter_planes(image, planes, first, last, phases=1):
    """The inverse of _gather_planes: plane first + k (of ``planes``' phases when phases > 1) = image[:, :, k]."""
    for k in range(last - first):
        plane, a, b = _phase_source(first + k, phases)
        for row in range(image.shape[0]):
            for column in range(image.shape[1]):
                planes[plane, phases * row + a, phases * column + b] = image[row, column, k]


@njit(parallel=True, cache=True)
def _winograd_filter(taps, Gh, Gw, U):
    kh, kw, C, O = taps.shape
    nh, nw = Gh.shape[0], Gw.shape[0]
    # One thread per input channel c: it gathers that channel's filters (any strides: the layers pass
    # views of their weights) into a block with the output channels side by side, then transforms
    # all of them at once, writing U[:, c], which is its own.
    for c in prange(C):
        g = np.empty((kh, kw, O), dtype=U.dtype)
        for i in range(kh):
            for j in range(kw):
                for o in range(O):
                    g[i, j, o] = taps[i, j, c, o]
        rows = np.zeros((nh, kw, O), dtype=U.dtype)   # G_h g
        for a in range(nh):
            for i in range(kh):
                factor = Gh[a, i]
                if factor != 0:
                    for j in range(kw):
                        _add_scaled(rows[a, j], factor, g[i, j])
        for a in range(nh):
            for b in range(nw):
                point = U[a * nw + b, c]
                point[:] = 0
                for j in range(kw):
                    factor = Gw[b, j]
                    if factor != 0:
                        _add_scaled(point, factor, rows[a, j])


@njit(parallel=True, cache=True)
def _winograd_filter_adjoint_add(dU, Gh, Gw, dtaps):
    kh, kw, C, O = dtaps.shape
    nh, nw = Gh.shape[0], Gw.shape[0]
    for c in prange(C):   # dtaps[:, :, c] belongs to this thread alone
        rows = np.zeros((nh, kw, O), dtype=dU.dtype)   # dU G_w
        for a in range(nh):
            for b in range(nw):
                point = dU[a * nw + b, c]
                for j in range(kw):
                    factor = Gw[b, j]
                    if factor != 0:
                        _add_scaled(rows[a, j], factor, point)
        g = np.zeros((kh, kw, O), dtype=dU.dtype)      # G_h^T dU G_w
        for a in range(nh):
            for i in range(kh):
                factor = Gh[a, i]
                if factor != 0:
                    for j in range(kw):
                        _add_scaled(g[i, j], factor, rows[a, j])
        for i in range(kh):
            for j in range(kw):
                for o in range(O):
                    dtaps[i, j, c, o] += g[i, j, o]


@njit(parallel=True, cache=True)
def _winograd_input(x, BTh, BTw, step, ph, pw, phases, V):
    L, H, W = _phase_plane_shape(x, phases)
    nh, nw, th, tw, _ = V.shape
    for block in prange(-(-L // WINOGRAD_SLICE)):
        first, last = _block_bounds(block, WINOGRAD_SLICE, L)
        size = last - first
        image = np.empty((H, W, size), dtype=V.dtype)
        _gather_planes(x, first, last, image, phases)
        # B_h^T along the columns of a whole row of tiles at once: neighbouring tiles share columns
        columns = np.empty((nh, W, size), dtype=V.dtype)
        point = np.empty(size, dtype=V.dtype)
        for ty in range(th):
            columns[...] = 0
            for i in range(nh):
                row = ty * step + i - ph
                if row < 0 or row >= H:
                    continue
                for a in range(nh):
                    factor = BTh[a, i]
                    if factor != 0:
                        for column in range(W):
                            _add_scaled(columns[a, column], factor, image[row, column])
            for tx in range(tw):   # then B_w along each tile's own columns
                for a in range(nh):
                    for b in range(nw):
                        point[:] = 0
                        for j in range(nw):
                            column = tx * step + j - pw
                            factor = BTw[b, j]
                            if factor != 0 and 0 <= column < W:
                                _add_scaled(point, factor, columns[a, column])
                        V[a, b, ty, tx, first:last] = point


@njit(parallel=True, cache=True)
def _winograd_output(M, ATh, ATw, phases, y):
    L, H_out, W_out = _phase_plane_shape(y, phases)
    nh, nw, th, tw, _ = M.shape
    m = ATh.shape[0]
    for block in prange(-(-L // WINOGRAD_SLICE)):
        first, last = _block_bounds(block, WINOGRAD_SLICE, L)
        size = last - first
        image = np.empty((H_out, W_out, size), dtype=y.dtype)
        rows = np.empty((m, nw, size), dtype=y.dtype)   # A_h^T M
        for ty in range(th):
            for tx in range(tw):
                rows[...] = 0
                for a in range(nh):
                    for b in range(nw):
                        source = M[a, b, ty, tx, first:last]
                        for i in range(m):
                            factor = ATh[i, a]
                            if factor != 0:
                                _add_scaled(rows[i, b], factor, source)
                for i in range(m):
                    row = ty * m + i
                    for j in range(m):
                        column = tx * m + j
                        if row >= H_out or column >= W_out:
                            continue
                        point = image[row, column]
                        point[:] = 0
                        for b in range(nw):
                            factor = ATw[j, b]
                            if factor != 0:
                                _add_scaled(point, factor, rows[i, b])
        _scatter_planes(image, y, first, last, phases)


@njit(parallel=True, cache=True)
def _winograd_output_adjoint(dy, ATh, ATw, phases, dM):
    L, H_out, W_out = _phase_plane_shape(dy, phases)
    nh, nw, th, tw, _ = dM.shape
    m = ATh.shape[0]
    for block in prange(-(-L // WINOGRAD_SLICE)):
        first, last = _block_bounds(block, WINOGRAD_SLICE, L)
        size = last - first
        image = np.empty((H_out, W_out, size), dtype=dy.dtype)
        _gather_planes(dy, first, last, image, phases)
        rows = np.empty((nh, m, size), dtype=dy.dtype)   # A_h dY
        point = np.empty(size, dtype=dy.dtype)
        for ty in range(th):
            for tx in range(tw):
                rows[...] = 0
                for i in range(m):
                    row = ty * m + i
                    for j in range(m):
                        column = tx * m + j
                        if row >= H_out or column >= W_out:
                            continue
                        source = image[row, column]
                        for a in range(nh):
                            factor = ATh[i, a]
                            if factor != 0:
                                _add_scaled(rows[a, j], factor, source)
                for a in range(nh):
                    for b in range(nw):
                        point[:] = 0
                        for j in range(m):
                            factor = ATw[j, b]
                            if factor != 0:
                                _add_scaled(point, factor, rows[a, j])
                        dM[a, b, ty, tx, first:last] = point


@njit(parallel=True, cache=True)
def _winograd_input_adjoint(dV, BTh, BTw, step, ph, pw, phases, dx):
    L, H, W = _phase_plane_shape(dx, phases)
    nh, nw, th, tw, _ = dV.shape
    for block in prange(-(-L // WINOGRAD_SLICE)):
        first, last = _block_bounds(block, WINOGRAD_SLICE, L)
        size = last - first
        image = np.zeros((H, W, size), dtype=dx.dtype)
        columns = np.empty((nh, W, size), dtype=dx.dtype)   # dV B_w^T of a row of tiles, added up per column
        for ty in range(th):
            columns[...] = 0
            for tx in range(tw):
                for a in range(nh):
                    for b in range(nw):
                        source = dV[a, b, ty, tx, first:last]
                        for j in range(nw):
                            column = tx * step + j - pw
                            factor = BTw[b, j]
                            if factor != 0 and 0 <= column < W:
                                _add_scaled(columns[a, column], factor, source)
            for i in range(nh):   # then B_h down the columns, onto the image rows the tiles came from
                row = ty * step + i - ph
                if row < 0 or row >= H:
                    continue
                for a in range(nh):
                    factor = BTh[a, i]
                    if factor != 0:
                        for column in range(W):
                            _add_scaled(image[row, column], factor, columns[a, column])
        _scatter_planes(image, dx, first, last, phases)


def winograd_filter(taps, Gh, Gw, out=None):
    U = np.empty((len(Gh) * len(Gw), *taps.shape[2:]), dtype=taps.dtype) if out is None else out
    _winograd_filter(taps, Gh, Gw, U)
    return U


def winograd_filter_adjoint_add(dU, Gh, Gw, dtaps):
    _winograd_filter_adjoint_add(np.ascontiguousarray(dU), Gh, Gw, dtaps)


def winograd_input(x, BTh, BTw, step, padding, tiles, phases=1, out=None):
    V = np.empty((len(BTh), len(BTw), *tiles, x.shape[0] * phases**2), dtype=x.dtype) if out is None else out
    _winograd_input(np.ascontiguousarray(x), BTh, BTw, step, padding[0], padding[1], phases, V)
    return V


def winograd_output(M, ATh, ATw, size, phases=1, out=None):
    y = (np.empty((M.shape[4] // phases**2, size[0] * phases, size[1] * phases), dtype=M.dtype)
         if out is None else out)
    _winograd_output(np.ascontiguousarray(M), ATh, ATw, phases, y)
    return y


def winograd_output_adjoint(dy, ATh, ATw, tiles, phases=1, out=None):
    dM = (np.empty((ATh.shape[1], ATw.shape[1], *tiles, dy.shape[0] * phases**2), dtype=dy.dtype)
          if out is None else out)
    _winograd_output_adjoint(np.ascontiguousarray(dy), ATh, ATw, phases, dM)
    return dM


def winograd_input_adjoint(dV, BTh, BTw, step, padding, size, phases=1, out=None):
    dx = (np.empty((dV.shape[4] // phases**2, size[0] * phases, size[1] * phases), dtype=dV.dtype)
          if out is None else out)
    _winograd_input_adjoint(np.ascontiguousarray(dV), BTh, BTw, step, padding[0], padding[1], phases, dx)
    return dx
