"""The reference kernels, in plain NumPy/CuPy: im2col and col2im, then LeakyReLU, Dropout, Poisson counts,
BatchNorm and Adam.

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
import math

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


def leaky_relu(x, negative_slope):
    """y = x where x > 0, else negative_slope * x (in x's dtype)."""
    xp = get_array_module(x)
    return xp.where(x > 0, x, x * x.dtype.type(negative_slope))


def leaky_relu_backward(dout, x, negative_slope):
    """dL/dx = dout where x > 0, else negative_slope * dout."""
    xp = get_array_module(dout)
    return xp.where(x > 0, dout, dout * dout.dtype.type(negative_slope))


# Dropout draws its mask from a counter-based generator: the random bits of
# element i are a hash of (key, i) (splitmix64's output function), so any
# thread, on any device, can compute any element's bit independently, and the
# backward pass recomputes the mask from the key instead of storing it.
SPLITMIX64_GOLDEN, SPLITMIX64_MIX1, SPLITMIX64_MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
DROPOUT_BITS = 24


def random_bits(key, size, xp):
    """24 uniformly random bits for each index 0..size-1 of the stream ``key``."""
    z = (xp.arange(1, size + 1, dtype=xp.uint64) * xp.uint64(SPLITMIX64_GOLDEN)) + xp.uint64(key)
    z = (z ^ (z >> xp.uint64(30))) * xp.uint64(SPLITMIX64_MIX1)
    z = (z ^ (z >> xp.uint64(27))) * xp.uint64(SPLITMIX64_MIX2)
    return (z ^ (z >> xp.uint64(31))) >> xp.uint64(64 - DROPOUT_BITS)


def dropout(x, p, key):
    """x * keep / (1 - p) with keep_i = (random_bits_i >= p 2^24): P(keep) = 1 - p (to 2^-24).

    Applying it to dL/dy with the same key gives dL/dx: the same mask, the same scale.
    """
    xp = get_array_module(x)
    threshold = round(p * 2 ** DROPOUT_BITS)
    keep = random_bits(key, x.size, xp).reshape(x.shape) >= threshold
    scale = x.dtype.type(1 / (1 - p))
    return x * xp.where(keep, scale, x.dtype.type(0))


# Poisson counts by inversion: k is the smallest count with P(X <= k) >= u, for u uniform on [0, 1). The
# probabilities are summed from k = 0, p(k) = p(k - 1) rate / k, which starts from exp(-rate): above this
# rate it would start from a number too small for a double.
POISSON_INVERSION_MAX_RATE = 500.0


def check_poisson_rate(rate):
    if not 0 < rate <= POISSON_INVERSION_MAX_RATE:
        raise ValueError(f"Poisson counts by inversion need a rate in (0, {POISSON_INVERSION_MAX_RATE:g}], "
                         f"got {rate}")


def poisson_from_uniform(u, rate, dtype):
    """Counts k ~ Poisson(rate), of ``dtype``, one for each uniform u (float64, on [0, 1)).

    The search stops where the summed probability reaches u, or where p(k) has
    rounded to 0 (no mass left to add: u within rounding of 1)."""
    xp = get_array_module(u)
    check_poisson_rate(rate)
    counts = xp.zeros(u.shape, dtype)
    p = xp.full(u.shape, math.exp(-rate))
    total = p.copy()
    searching = total < u
    k = 0
    while bool(searching.any()):
        k += 1
        p = xp.where(searching, p * (rate / k), p)
        total = xp.where(searching, total + p, total)
        counts[searching] = k
        searching &= (total < u) & (p > 0)
    return counts


def batchnorm_forward(x, gamma, beta, eps):
    """Training-mode batch normalisation of x (N, C, M), per channel c over its N*M values.

    Returns y = gamma x_hat + beta, x_hat = (x - mean) / sqrt(var + eps), and
    mean, var (biased) and 1 / sqrt(var + eps) per channel.
    """
    xp = get_array_module(x)
    mean, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
    inverse_std = 1 / xp.sqrt(var + eps)
    x_hat = (x - mean[:, None]) * inverse_std[:, None]
    return x_hat * gamma[:, None] + beta[:, None], x_hat, mean, var, inverse_std


def batchnorm_update_running(running_mean, running_var, mean, var, momentum, unbias):
    """The running estimates, in place: r = (1 - momentum) r + momentum batch value (the variance times unbias)."""
    running_mean[...] = (1 - momentum) * running_mean + momentum * mean
    running_var[...] = (1 - momentum) * running_var + momentum * var * unbias


def batchnorm_backward(dout, x_hat, gamma, inverse_std):
    """dL/dx, dL/dgamma, dL/dbeta of batchnorm_forward (derived step by step in the docstring of layers/batchnorm.py)."""
    dgamma, dbeta = (dout * x_hat).sum(axis=(0, 2)), dout.sum(axis=(0, 2))
    count = dout.shape[0] * dout.shape[2]
    dx = (gamma * inverse_std)[:, None] * (dout - (dbeta / count)[:, None] - x_hat * (dgamma / count)[:, None])
    return dx, dgamma, dbeta


def adam_update(param, grad, m, v, lr, beta1, beta2, eps, step):
    """One Adam step, in place on param, m and v (the formula is in optimizers.Adam)."""
    xp = get_array_module(param)
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * grad * grad
    correction1, correction2 = 1 - beta1 ** step, 1 - beta2 ** step
    param -= (lr / correction1) * m / (xp.sqrt(v) / correction2 ** 0.5 + eps)


def bce_with_logits(logits, targets):
    """The mean over every entry of max(x, 0) - x t + log(1 + exp(-|x|)), in float64 (losses.BCEWithLogits)."""
    xp = get_array_module(logits)
    targets = xp.asarray(targets, dtype=logits.dtype)
    coefficient = xp.where(logits >= 0, 1 - targets, -targets)   # max(x, 0) - x t = coefficient * x
    linear = coefficient * xp.where(coefficient == 0, 0, logits)  # 0 * inf would be NaN
    losses = linear + xp.log1p(xp.exp(-xp.abs(logits)))
    return losses.mean().astype(xp.float64, copy=False)   # float64 as forward's float: sums of it agree


def bce_with_logits_gradient(logits, targets):
    """dL/dx = (sigmoid(x) - t) / n for the mean over n entries."""
    from ..layers.activations import stable_sigmoid   # here, not at the top: the layers import the kernels
    return (stable_sigmoid(logits) - targets) / logits.size


# Winograd's tile transforms (tinygan/winograd.py has the method). The images are planes, (L, H, W)
# with L = N C (NCHW as the layers hold it), and the transformed tiles are V (n_h, n_w, th, tw, L):
# point (a, b) of tile (ty, tx). Tile (ty, tx) reads the n_h x n_w input window whose corner is
# (ty m - p_h, tx m - p_w), zero outside the image, and writes the m x m output window whose corner
# is (ty m, tx m); m = step.

def phase_planes(x, phases):
    """x (L, s H, s W) -> (L s^2, H, W): each plane's s x s phases, plane l s^2 + a s + b = x[l, a::s, b::s]
    (tinygan/polyphase.py: a stride-s convolution is a stride-1 one over the phases). A copy unless s = 1."""
    if phases == 1:
        return x
    L, H, W = x.shape
    s = phases
    return x.reshape(L, H // s, s, W // s, s).transpose(0, 2, 4, 1, 3).reshape(L * s * s, H // s, W // s)


def from_phase_planes(planes, phases):
    """(L s^2, H, W) -> (L, s H, s W), the inverse of phase_planes."""
    if phases == 1:
        return planes
    Ls2, H, W = planes.shape
    s = phases
    return planes.reshape(Ls2 // (s * s), s, s, H, W).transpose(0, 3, 1, 4, 2).reshape(Ls2 // (s * s), H * s, W * s)


def _tile_canvas(xp, tiles, window, step, L, dtype):
    """Zeros that hold every tile's window: the tiles start ``step`` apart and are ``window`` wide."""
    (th, tw), (nh, nw) = tiles, window
    return xp.zeros(((th - 1) * step + nh, (tw - 1) * step + nw, L), dtype=dtype)


def winograd_filter(taps, Gh, Gw, out=None):
    """taps (kh, kw, C, O) -> U (n_h n_w, C, O): G_h g G_w^T of every filter g = taps[:, :, c, o]."""
    xp = get_array_module(taps)
    U = xp.einsum("ai,ijco,bj->abco", Gh, taps, Gw).reshape(len(Gh) * len(Gw), *taps.shape[2:])
    if out is None:
        return U
    out[...] = U
    return out


def winograd_filter_adjoint_add(dU, Gh, Gw, dtaps):
    """dtaps (kh, kw, C, O) += G_h^T dU G_w of every filter, winograd_filter's adjoint (dtaps may be any view)."""
    dU = dU.reshape(len(Gh), len(Gw), *dU.shape[1:])
    dtaps += get_array_module(dU).einsum("ai,abco,bj->ijco", Gh, dU, Gw)


def winograd_input(x, BTh, BTw, step, padding, tiles, phases=1, out=None):
    """x (L, H, W) -> V (n_h, n_w, th, tw, L): V[:, :, ty, tx] = B_h^T d B_w of every input tile d
    (of the planes' phases: x (L / s^2, s H, s W) with s = phases)."""
    xp = get_array_module(x)
    x = phase_planes(x, phases)
    L, H, W = x.shape
    xs = x.transpose(1, 2, 0)   # channels last: a tile is then one slice
    (nh, nw), (th, tw), (ph, pw) = (len(BTh), len(BTw)), tiles, padding
    padded = _tile_canvas(xp, tiles, (nh, nw), step, L, xs.dtype)
    padded[ph:ph + H, pw:pw + W] = xs
    V = xp.empty((nh, nw, th, tw, L), dtype=xs.dtype) if out is None else out
    for ty in range(th):
        for tx in range(tw):
            d = padded[ty * step:ty * step + nh, tx * step:tx * step + nw]
            V[:, :, ty, tx] = xp.einsum("ai,ijl,bj->abl", BTh, d, BTw)
    return V


def winograd_output(M, ATh, ATw, size, phases=1, out=None):
    """M (n_h, n_w, th, tw, L) -> y (L, H_out, W_out): the output tile A_h^T M A_w of every tile, cropped to size
    (written as the planes' phases: y (L / s^2, s H_out, s W_out) with s = phases)."""
    xp = get_array_module(M)
    _, _, th, tw, L = M.shape
    m = ATh.shape[0]
    full = xp.empty((th * m, tw * m, L), dtype=M.dtype)
    for ty in range(th):
        for tx in range(tw):
            full[ty * m:(ty + 1) * m, tx * m:(tx + 1) * m] = xp.einsum("ia,abl,jb->ijl", ATh, M[:, :, ty, tx], ATw)
    y = from_phase_planes(full[:size[0], :size[1]].transpose(2, 0, 1), phases)
    if out is None:
        return xp.ascontiguousarray(y)
    out[...] = y
    return out


def winograd_output_adjoint(dy, ATh, ATw, tiles, phases=1, out=None):
    """dy (L, H_out, W_out) -> dM (n_h, n_w, th, tw, L) = A_h dY A_w^T of every tile: winograd_output's adjoint
    (the cropped rows and columns get no gradient; dy (L / s^2, s H_out, s W_out) is read as its phases)."""
    xp = get_array_module(dy)
    dy = phase_planes(dy, phases)
    L, H_out, W_out = dy.shape
    (th, tw), m = tiles, ATh.shape[0]
    full = xp.zeros((th * m, tw * m, L), dtype=dy.dtype)
    full[:H_out, :W_out] = dy.transpose(1, 2, 0)
    dM = xp.empty((ATh.shape[1], ATw.shape[1], th, tw, L), dtype=dy.dtype) if out is None else out
    for ty in range(th):
        for tx in range(tw):
            dM[:, :, ty, tx] = xp.einsum("ia,ijl,jb->abl", ATh, full[ty * m:(ty + 1) * m, tx * m:(tx + 1) * m], ATw)
    return dM


def winograd_input_adjoint(dV, BTh, BTw, step, padding, size, phases=1, out=None):
    """dV (n_h, n_w, th, tw, L) -> dx (L, H, W): B_h dV B_w^T of every tile, added back onto the window it
    came from (the windows overlap), then the padding cut off: winograd_input's adjoint (written as the
    planes' phases: dx (L / s^2, s H, s W) with s = phases)."""
    xp = get_array_module(dV)
    nh, nw, th, tw, L = dV.shape
    (H, W), (ph, pw) = size, padding
    padded = _tile_canvas(xp, (th, tw), (nh, nw), step, L, dV.dtype)
    for ty in range(th):
        for tx in range(tw):
            window = padded[ty * step:ty * step + nh, tx * step:tx * step + nw]
            window += xp.einsum("ai,abl,bj->ijl", BTh, dV[:, :, ty, tx], BTw)
    dx = from_phase_planes(padded[ph:ph + H, pw:pw + W].transpose(2, 0, 1), phases)
    if out is None:
        return xp.ascontiguousarray(dx)
    out[...] = dx
    return out
