"""A stride-2 convolution as a stride-1 one over the image's four phases, so that Winograd's method applies.

Split an image row x (2h pixels) into its two phases, x_a[i] = x[2 i + a] for a = 0, 1. A stride-2
correlation with padding p,
    y[i] = sum_k w[k] x[2 i + k - p],
reads each tap k from one phase: write k - p = 2 (t - P) + a with a = (k - p) mod 2, then
x[2 i + k - p] = x_a[i + t - P], and
    y[i] = sum_a sum_t w_a[t] x_a[i + t - P],        w_a[t] = w[k] for the k that maps to (t, a)
a stride-1 correlation with padding P = ceil(p / 2), over the phases as input channels, whose taps are
the kernel's taps sorted by the phase they read (zero where no k lands). In 2-D an image has four phase
planes x_ab, so a layer with C_in channels becomes one with 4 C_in, and a 5x5 kernel with padding 2
becomes 3x3 taps with padding 1 (t = 0, 1, 2 for a = 0; t = 0, 1 and a zero for a = 1). Every tap is
used exactly once, so this is an exact rewriting, not an approximation.

The stride-1 form can use Winograd's F(4x4, 3x3) (tinygan/winograd.py): 36 multiplications per 16
outputs instead of 144. For the dcgan's D.3 (64 -> 128 channels, 14x14 -> 7x7) that is 0.3 billion
multiply-adds a pass, against im2col's 0.64 billion, even though a quarter of the phase taps are zeros
and the 7x7 output is computed as 8x8.

The transposed convolution is that map's adjoint (layers/conv_transpose2d.py): its output's phases are
the stride-1 correlation of its input with the same phase taps flipped and transposed, padding
R - 1 - P for R taps, exactly as the stride-1 transposed convolution uses the flipped kernel.

No copy splits the phases: Winograd's tile transforms read and write phase planes in place
(kernels.winograd_input's ``phases``). It runs on the CPU's fast path, where fits() says it is faster.
"""
import numpy as np

from .winograd import WinogradConvolution

STRIDE = 2
TAPS = 3    # F(4x4, 3x3): winograd.OUTPUT_TILE + 3 - 1 = 6 points
# Where it pays on the CPU, measured against im2col over forward and backward (64 images, 2 cores):
# 5x5 kernels with 8 channels or more on both sides. There it took 0.59 to 0.96 of the time (D.3,
# 64 -> 128 at 14x14: 0.70; G.7, 128 -> 64 at 7x7: 0.72; 32 -> 64 at 14x14: 0.88; 8 -> 8 at 28x28:
# 0.70; the CIFAR generator's 256 -> 128 at 4x4: 0.92 to 1.12 over three runs). With fewer channels
# the transforms cost more than the products save (1 -> 64: 1.74; 64 -> 1: 2.1; 64 -> 3: 1.32;
# 4 -> 8: 1.00). A 4x4 kernel with padding 1 fills only 16 of the 36 phase taps, and im2col's
# products are already small: it lost everywhere (1.04 to 1.3, D.3's shape 1.17).
FAST_KERNELS = (5,)
MIN_CHANNELS = 8


def axis_taps(kernel, padding):
    """Along one axis: for each kernel index k, the phase tap t it becomes and the phase a it reads
    (k - p = 2 (t - P) + a), and the phase correlation's padding P and tap count R."""
    P = -(-padding // STRIDE)
    phase = [(k - padding) % STRIDE for k in range(kernel)]
    tap = [(k - padding - a) // STRIDE + P for k, a in enumerate(phase)]
    return np.array(tap), np.array(phase), P, max(tap) + 1


def computes(kernel_size, stride, padding, image_size):
    """Whether a stride-2 correlation of an image of ``image_size`` (the input, in Conv2D's sense) is a
    correlation of its phases that F(4x4, 3x3) computes: even sides, 3 phase taps, and the output size
    of the phase correlation with its padding P on both sides equal to the strided one's."""
    if tuple(stride) != (STRIDE, STRIDE):
        return False
    for size, k, p in zip(image_size, kernel_size, padding):
        _, _, P, R = axis_taps(k, p)
        if size % STRIDE or R != TAPS or (size + 2 * p - k) // STRIDE + 1 != size // STRIDE + 2 * P - R + 1:
            return False
    return True


def fits(kernel_size, stride, padding, image_size, in_channels, out_channels):
    """Whether it computes this convolution (in Conv2D's sense: in_channels -> out_channels, image_size the
    input) faster than im2col does, on the CPU."""
    return (computes(kernel_size, stride, padding, image_size) and all(k in FAST_KERNELS for k in kernel_size)
            and MIN_CHANNELS <= in_channels and MIN_CHANNELS <= out_channels)


class PhaseWinograd:
    """A stride-2 correlation y = x (*) kernel (transposed=False), or its adjoint, the transposed convolution
    (transposed=True), computed as Winograd's F(4x4, 3x3) over the phases.

    The kernel is given at each call as taps (kh, kw, C_in, C_out) of the strided correlation, in Conv2D's
    sense: Conv2D passes its weight's view W.transpose(2, 3, 1, 0), and so does ConvTranspose2D, whose
    weight (C_in, C_out, kh, kw) is that of the Conv2D it is the adjoint of.
    """

    def __init__(self, kernel_size, padding, workspace, transposed):
        (self.tap_h, self.phase_h, Ph, R), (self.tap_w, self.phase_w, Pw, _) = (
            axis_taps(k, p) for k, p in zip(kernel_size, padding))
        self.transposed, self.workspace = transposed, workspace
        if transposed:   # the adjoint: flipped, transposed taps and padding R - 1 - P, writing the phases
            self.winograd = WinogradConvolution((R, R), (R - 1 - Ph, R - 1 - Pw), workspace, phases=(1, 2))
        else:
            self.winograd = WinogradConvolution((R, R), (Ph, Pw), workspace, phases=(2, 1))

    def forward(self, x, kernel):
        """x (N, C, H, W) -> y: the strided correlation's output, or, transposed, its adjoint's."""
        taps = self._phase_taps(kernel.shape[2:], kernel, "phase_taps")
        taps[...] = 0
        self._spread(taps)[self.tap_h[:, None], self.tap_w, :, self.phase_h[:, None], self.phase_w] = kernel
        return self.winograd.forward(x, self._oriented(taps))

    def backward(self, dy, grad_kernel=None, input_grad=True):
        """dy -> dx (or None unless ``input_grad``); dL/dkernel is added into ``grad_kernel`` where given."""
        grad_taps = None
        if grad_kernel is not None:
            grad_taps = self._phase_taps(grad_kernel.shape[2:], dy, "phase_grad_taps")
            grad_taps[...] = 0
        dx = self.winograd.backward(dy, None if grad_taps is None else self._oriented(grad_taps), input_grad)
        if grad_kernel is not None:   # each kernel tap became one phase tap: gather them back
            grad_kernel += self._spread(grad_taps)[self.tap_h[:, None], self.tap_w, :, self.phase_h[:, None],
                                                   self.phase_w]
        return dx

    def _phase_taps(self, channels, like, name):
        """A (R, R, 4 C_in, C_out) scratch array: channel 4 c + 2 a + b holds the taps that read phase (a, b)
        of input channel c, the order in which the tile transforms read the phase planes."""
        C, O = channels
        return self.workspace(name, (TAPS, TAPS, STRIDE * STRIDE * C, O), like)

    @staticmethod
    def _spread(taps):
        """The (R, R, C_in, a, b, C_out) view of phase taps."""
        R, _, C4, O = taps.shape
        return taps.reshape(R, R, C4 // (STRIDE * STRIDE), STRIDE, STRIDE, O)

    def _oriented(self, taps):
        """The taps the stride-1 correlation uses: as they are, or flipped and transposed for the adjoint."""
        return taps[::-1, ::-1].transpose(0, 1, 3, 2) if self.transposed else taps
