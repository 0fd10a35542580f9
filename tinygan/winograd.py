"""Winograd's minimal filtering: a stride-1 convolution in fewer multiplications (Lavin and Gray, 2016).

m outputs of a 1-D correlation with an r-tap filter g,
    y[i] = sum_k d[i + k] g[k]        (i < m;  d has n = m + r - 1 values),
take m r multiplications directly. Read g and an m-tap output window as
polynomials: y is a coefficient-window of their product, and a product of
polynomials is cheap at points: evaluate both at n points, multiply the n
values pairwise, interpolate. Written as matrices (the transposition
principle turns the convolution algorithm into one for correlation),
    y = A^T [(G g) * (B^T d)]         (* elementwise: n multiplications, not m r)
with, for the finite points a_j and the point at infinity (a polynomial's
leading coefficient),
    A^T[i, j] = a_j^i                       (A^T[:, inf] = [0, ..., 0, 1])
    G[j, k]   = a_j^k / prod_{l != j}(a_j - a_l)   (G[inf] = [0, ..., 0, 1])
    B^T[j]    = the coefficients of prod_{l != j}(x - a_l)   (B^T[inf]: of prod_l (x - a_l))
(matrices() builds them; the tests check y for every d and g). This module
takes m = 4 outputs per tile and the points 0, 1, -1, 2, -2, 1/2, -1/2 and
infinity, as many as a 5-tap filter needs (n = 8): powers of two and small
integers, so that A^T and B^T hold binary fractions, exact in floating
point (B^T's largest entry is 5.25), and the remaining fractions sit in G,
which is applied to the weights once per step. Fewer taps use the first of
these points (a 3-tap filter the first five and infinity).

In 2-D the transform is applied along both axes of an n x n input tile, for
an m x m output tile:  Y = A^T [(G g G^T) * (B^T d B)] A.  A 5x5 kernel then
costs 64 multiplications per 16 outputs instead of 400, a 3x3 one 36 instead
of 144. (Two outputs per tile, F(2x2, 5x5) on six points, would take 36 per 4:
2.8 times fewer than directly, not 6.25; it measured 1.3 to 1.9 times slower than
F(4x4, 5x5) here.) Over a whole layer
the elementwise products of every tile, channel and filter become, for each
of the n x n points, one matrix product that sums over the input channels:
    V[p] = B^T d B of every tile        (tiles, C_in)
    U[p] = G g G^T of every filter      (C_in, C_out)
    M[p] = V[p] @ U[p]                  (tiles, C_out)
    y    = A^T M A of every tile
(the n x n products run as one stack, a share of it per core:
kernels/stacked_matmul.py).
The dcgan's G.4 (256 -> 128 channels, 7x7, 5x5 kernel, 8x8 outputs computed)
does 0.54 billion multiply-adds per pass this way, against im2col's 2.6 billion.

Backward is the adjoint of each stage, in reverse (all are linear):
    dM = A dY A^T,   dU[p] = V[p]^T @ dM[p],   dV[p] = dM[p] @ U[p]^T,
    dg = G^T dU G,   dx = B dV B^T added back onto the overlapping tiles.

The price is rounding: B^T's entries up to 5.25 and G's fractions make float32
results differ from a direct convolution's by about 1e-5 of their size
(30 times im2col's difference), and float64 ones by about 1e-14. cuDNN's
Winograd kernels make the same trade. It runs on the CPU's fast path
(kernels.use_cpu_kernels('numba')) for the stride-1 layers where it is
faster than im2col (fits() below), and, as F(4x4, 3x3) over their images'
phases, for the stride-2 ones where that is (tinygan/polyphase.py);
everything else keeps im2col, and the GPU, where a step's time is kernel
launches, not arithmetic, keeps it too.
"""
from functools import lru_cache

import numpy as np
from numpy.polynomial import polynomial

from . import kernels

OUTPUT_TILE = 4                                  # m: outputs per tile along each axis
POINTS = (0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5)  # and infinity: binary fractions, exact in A^T and B^T
TAPS = range(3, len(POINTS) + 2 - OUTPUT_TILE + 1)   # 3 to 5 taps: n = m + r - 1 points, infinity included
# Where it pays on the CPU, measured against im2col over forward and backward (64 images, 2 cores).
# im2col's columns hold a Conv2D's input channels but a ConvTranspose2D's output channels, so a
# transposed layer with few outputs has cheap columns, and the rule depends on the direction:
#   kernel: (fewest input channels, most output channels per input one in a Conv2D, most input
#            channels per output one in a ConvTranspose2D); None: no limit
FAST_KERNELS = {5: (8, None, 4), 3: (16, 1, 2)}
# 5x5 took 0.29 to 0.88 of im2col's time there (G.4, ConvTranspose2D 256 -> 128 at 7x7: 0.42; 128 ->
# 64 at 14x14: 0.36; 64 -> 1 at 28x28: 0.37; 16 -> 16 at 28x28: 0.31 to 0.42; 16 -> 64 at 14x14: 0.88),
# and lost with a single input channel (1 -> 64: 3.3) or in a transposed layer with few outputs
# (64 -> 8 at 28x28: 1.15; 64 -> 1: 3.2). 3x3 gains less, with 4 times fewer multiplications than
# directly where 5x5 has 6.25: 0.43 to 0.88 (G.4's shape 0.57; 128 -> 64 at 14x14: 0.64; 64 -> 1 at
# 28x28: 0.61 to 0.70), even or losing with fewer inputs or more outputs (16 -> 64 at 14x14: 0.97 to
# 1.17; 8 -> 32: 1.16; 4 -> 16: 1.25) and in transposed layers with few outputs (64 -> 8: 1.43).


@lru_cache(maxsize=None)
def matrices(taps, m=OUTPUT_TILE):
    """(A^T (m, n), G (n, taps), B^T (n, n)) of F(m, taps), n = m + taps - 1, in float64 (module docstring);
    taps in TAPS."""
    n = m + taps - 1
    points = np.array(POINTS[:n - 1])
    AT, G, BT = np.zeros((m, n)), np.zeros((n, taps)), np.zeros((n, n))
    for j, a in enumerate(points):
        others = np.delete(points, j)
        AT[:, j] = a ** np.arange(m)
        G[j] = a ** np.arange(taps) / np.prod(a - others)
        BT[j, :n - 1] = polynomial.polyfromroots(others)
    AT[m - 1, n - 1] = G[n - 1, taps - 1] = 1
    BT[n - 1] = polynomial.polyfromroots(points)
    for matrix in (AT, G, BT):
        matrix.flags.writeable = False   # cached: shared by every layer
    return AT, G, BT


def computes(kernel_size, stride, padding):
    """Whether this module can compute a convolution of this geometry: stride 1, taps in TAPS, and a
    padding of 0 to taps - 1 (so that the transposed convolution's, taps - 1 - padding, is one too)."""
    return (tuple(stride) == (1, 1) and all(k in TAPS for k in kernel_size)
            and all(0 <= p <= k - 1 for k, p in zip(kernel_size, padding)))


def fits(kernel_size, stride, padding, in_channels, out_channels, transposed=False):
    """Whether it computes this convolution (a ConvTranspose2D's where ``transposed``) faster than im2col
    does, on the CPU (measured: see FAST_KERNELS)."""
    rule = FAST_KERNELS.get(kernel_size[0]) if kernel_size[0] == kernel_size[1] else None
    if rule is None or not computes(kernel_size, stride, padding):
        return False
    fewest, outputs_per_input, inputs_per_output = rule
    if in_channels < fewest:
        return False
    if transposed:
        return in_channels <= inputs_per_output * out_channels
    return outputs_per_input is None or out_channels <= outputs_per_input * in_channels


def tile_count(size, taps, padding, m=OUTPUT_TILE):
    """Output length along one axis, and the number of m-wide tiles that cover it."""
    out = size + 2 * padding - taps + 1
    return out, -(-out // m)


class WinogradConvolution:
    """y[n, o] = sum_c x[n, c] (*) g[:, :, c, o], stride 1, zero padding ``padding``: the taps
    g (kh, kw, C_in, C_out) are given at each call (the layers pass views of their weights).

    F(4x4, taps). ``phases`` = (s_in, s_out) lets the input's planes be read, and
    the output's written, as their s x s phases (tinygan/polyphase.py): x (N, C_in / s_in^2, s_in H, s_in W)
    and y (N, C_out / s_out^2, s_out H_out, s_out W_out), with no copy in between.

    forward keeps V and U for backward, in the layer's workspace (``workspace(name, shape, like)``);
    backward overwrites V (a layer allows one backward per forward).
    """

    def __init__(self, kernel_size, padding, workspace, phases=(1, 1)):
        self.kernel_size, self.padding, self.workspace = tuple(kernel_size), tuple(padding), workspace
        self.phases = tuple(phases)
        (self.ATh, self.Gh, self.BTh), (self.ATw, self.Gw, self.BTw) = (matrices(k) for k in self.kernel_size)

    def forward(self, x, taps):
        """x (N, C_in, H, W), taps (kh, kw, C_in, C_out) -> y (N, C_out, H_out, W_out) (phases: class docstring)."""
        (s_in, s_out), m = self.phases, OUTPUT_TILE
        N, C, H, W = x.shape[0], x.shape[1] * s_in**2, x.shape[2] // s_in, x.shape[3] // s_in
        O = taps.shape[3]
        (H_out, th), (W_out, tw) = (tile_count(size, k, p, m) for size, k, p
                                    in zip((H, W), self.kernel_size, self.padding))
        nh, nw = self.BTh.shape[0], self.BTw.shape[0]
        self.x_shape, self.shapes = x.shape, (N, C, H, W, O, th, tw)
        ATh, ATw, BTh, BTw, Gh, Gw = self._matrices(x.dtype)
        # the kernels take the images as N C planes and the tiles with (n, c) side by side: V[p] is then
        # a (tiles N, C_in) matrix, and M[p] a (tiles N, C_out) one
        self.V = self.workspace("winograd_V", (nh * nw, th * tw * N, C), x)
        kernels.winograd_input(x.reshape(-1, *x.shape[2:]), BTh, BTw, m, self.padding, (th, tw), s_in,
                               out=self.V.reshape(nh, nw, th, tw, N * C))
        self.U = kernels.winograd_filter(taps, Gh, Gw, out=self.workspace("winograd_U", (nh * nw, C, O), x))
        M = kernels.stacked_matmul(self.V, self.U,
                                   out=self.workspace("winograd_M", (nh * nw, th * tw * N, O), x))
        y = np.empty((N, O // s_out**2, H_out * s_out, W_out * s_out), dtype=x.dtype)
        kernels.winograd_output(M.reshape(nh, nw, th, tw, N * O), ATh, ATw, (H_out, W_out), s_out,
                                out=y.reshape(-1, *y.shape[2:]))
        return y

    def backward(self, dy, grad_taps=None, input_grad=True):
        """dy (N, C_out, H_out, W_out) -> dx (N, C_in, H, W), or None unless ``input_grad``; where ``grad_taps``
        is given (a (kh, kw, C_in, C_out) view of the layer's weight gradient), dL/dtaps is added into it."""
        (s_in, s_out), m = self.phases, OUTPUT_TILE
        N, C, H, W, O, th, tw = self.shapes
        nh, nw = self.BTh.shape[0], self.BTw.shape[0]
        ATh, ATw, BTh, BTw, Gh, Gw = self._matrices(dy.dtype)
        dM = self.workspace("winograd_M", (nh * nw, th * tw * N, O), dy)
        kernels.winograd_output_adjoint(dy.reshape(-1, *dy.shape[2:]), ATh, ATw, (th, tw), s_out,
                                        out=dM.reshape(nh, nw, th, tw, N * O))
        dx = None
        if grad_taps is not None:
            dU = kernels.stacked_matmul(self.V.transpose(0, 2, 1), dM)         # (nh nw, C_in, C_out)
            kernels.winograd_filter_adjoint_add(dU, Gh, Gw, grad_taps)
        if input_grad:
            # V's last use was dU's: dV reuses its memory
            dV = kernels.stacked_matmul(dM, self.U.transpose(0, 2, 1), out=self.V)
            dx = np.empty(self.x_shape, dtype=dy.dtype)
            kernels.winograd_input_adjoint(dV.reshape(nh, nw, th, tw, N * C), BTh, BTw, m, self.padding,
                                           (H, W), s_in, out=dx.reshape(-1, *dx.shape[2:]))
        return dx

    def _matrices(self, dtype):
        """A^T, B^T and G along each axis, in the arrays' dtype."""
        return [matrix.astype(dtype) for matrix in (self.ATh, self.ATw, self.BTh, self.BTw, self.Gh, self.Gw)]
