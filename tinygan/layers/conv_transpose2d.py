"""2-D transposed convolution (PyTorch's ConvTranspose2d)."""
from .. import backend, init, kernels, polyphase, winograd
from ..backend import get_array_module
from ..kernels import col2im, im2col, matmul
from ..polyphase import PhaseWinograd
from ..winograd import WinogradConvolution
from .conv2d import from_rows, to_rows
from .layer import Layer, as_pair, positive_int


class ConvTranspose2D(Layer):
    """The adjoint of Conv2D: y = Conv2D_W^T x + b, computed as col2im(W_mat^T @ x).

    Shapes: x (N, C_in, H, W), W (C_in, C_out, kh, kw), b (C_out,),
    y (N, C_out, H_out, W_out) with
    H_out = (H - 1) stride - 2 padding + kh + output_padding.

    A Conv2D from C_out to C_in channels with this same weight array maps a
    (N, C_out, H_out, W_out) image to (N, C_in, H, W) as  X = W_mat @ im2col(y).
    This layer is that map's transpose, so its forward is Conv2D's input
    gradient and its backward is Conv2D's forward (no zero-stuffing):
        forward:   col = W_mat^T @ X,       y = col2im(col) + b
        dL/dX    = W_mat @ im2col(dy)        (a convolution of dy)
        dL/dW_mat = X @ im2col(dy)^T
        dL/db    = dy summed over the batch and the pixels
    output_padding only adds rows/columns at the bottom/right that no input
    pixel reaches (their value is the bias), to pick among the sizes that a
    strided convolution maps to the same H.

    With stride 1 this is a convolution of x with the kernel flipped and its
    channel axes swapped, padded by k - 1 - padding; on the CPU's fast path it
    runs as Winograd's where that is faster (as Conv2D, tinygan/winograd.py).
    With stride 2 and an output twice the input's size, the fast path can
    compute it as Winograd's too, as the adjoint of that Conv2D over the
    output's four phases (tinygan/polyphase.py).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 bias=True, weight_init=init.glorot_uniform):
        super().__init__()
        positive_int(in_channels, "in_channels", "ConvTranspose2D")
        positive_int(out_channels, "out_channels", "ConvTranspose2D")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = as_pair(kernel_size, "kernel_size")
        self.stride = as_pair(stride, "stride")
        self.padding = as_pair(padding, "padding")
        self.output_padding = as_pair(output_padding, "output_padding")
        if min(self.stride) < 1 or min(self.kernel_size) < 1 or min(self.padding) < 0:
            raise ValueError("ConvTranspose2D needs kernel_size >= 1, stride >= 1 and padding >= 0")
        if any(not 0 <= op < s for op, s in zip(self.output_padding, self.stride)):
            raise ValueError(f"ConvTranspose2D needs 0 <= output_padding < stride, got "
                             f"output_padding={self.output_padding}, stride={self.stride}")
        kh, kw = self.kernel_size
        self.add_param("W", weight_init((in_channels, out_channels, kh, kw),
                                        out_channels * kh * kw, in_channels * kh * kw))
        if bias:
            self.add_param("b", init.zeros(out_channels))

    def output_shape(self, H, W):
        return tuple((size - 1) * s - 2 * p + k + op for size, s, p, k, op
                     in zip((H, W), self.stride, self.padding, self.kernel_size, self.output_padding))

    def forward(self, x, training=True):
        self.check_input(x, 4, "(N, C_in, H, W)", self.in_channels)
        N, _, H, W = x.shape
        H_out, W_out = self.output_shape(H, W)
        if H_out < 1 or W_out < 1:
            raise ValueError(f"ConvTranspose2D with padding {self.padding} leaves no output for a {H}x{W} input")
        self.readable, self.winograd = kernels.uses_reference(x), None
        if self.readable:
            return self.keep_output_shape(self._forward_readable(x, (H_out, W_out)))
        if backend.device_of(x) == "cpu":
            self.winograd, self.winograd_taps = self._winograd((H, W), (H_out, W_out))
        if self.winograd is not None:
            y = self.winograd.forward(x, self.winograd_taps(self.params["W"]))
        else:
            self.x_rows = to_rows(x, out=self.workspace("x_rows", (self.in_channels, N * H * W), x))
            self.input_shape = x.shape
            col = matmul(self.params["W"].reshape(self.in_channels, -1).T, self.x_rows,
                         out=self.workspace("col", (self.out_channels * self.kernel_size[0] * self.kernel_size[1],
                                                    N * H * W), x))
            col = col.reshape(self.out_channels, *self.kernel_size, N, H, W)
            y = col2im(col, (H_out, W_out), self.stride, self.padding)
        if "b" in self.params:
            y += self.params["b"].reshape(1, -1, 1, 1)
        return self.keep_output_shape(y)

    def backward(self, dout):
        self.check_dout(dout)
        if self.readable:
            return self._backward_readable(dout)
        if self.requires_grad and "b" in self.params:
            self.grads["b"] += dout.sum(axis=(0, 2, 3))
        if self.winograd is not None:
            grad_taps = self.winograd_taps(self.grads["W"]) if self.requires_grad else None
            return self.winograd.backward(dout, grad_taps, self.needs_input_grad)
        W = self.params["W"]
        N, _, H, W_in = self.input_shape
        dcol_shape = (self.out_channels, *self.kernel_size, N, H, W_in)
        dcol = im2col(dout, self.kernel_size, self.stride, self.padding,
                      out=self.workspace("dcol", dcol_shape, dout))
        dcol_rows = dcol.reshape(-1, N * H * W_in)
        if self.requires_grad:
            self.grads["W"] += matmul(self.x_rows, dcol_rows.T).reshape(W.shape)
        if not self.needs_input_grad:
            return None
        dx_rows = matmul(W.reshape(self.in_channels, -1), dcol_rows)
        return from_rows(dx_rows, N, H, W_in).copy()

    def _winograd(self, image_size, output_size):
        """Winograd's convolution where it is faster than im2col on the CPU, and the view of a weight-shaped array
        that it takes as its taps; (None, None) elsewhere."""
        # stride 1: the docstring's convolution of x with the flipped kernel
        flipped_padding = tuple(k - 1 - p for k, p in zip(self.kernel_size, self.padding))
        if winograd.fits(self.kernel_size, self.stride, flipped_padding, self.in_channels, self.out_channels,
                         transposed=True):
            return (WinogradConvolution(self.kernel_size, flipped_padding, self.workspace),
                    lambda W: W[:, :, ::-1, ::-1].transpose(2, 3, 0, 1))   # (kh, kw, C_in, C_out)
        # stride 2, output exactly twice the input: the adjoint of the Conv2D (C_out -> C_in) with this weight
        if (all(o == polyphase.STRIDE * i for o, i in zip(output_size, image_size))
                and polyphase.fits(self.kernel_size, self.stride, self.padding, output_size, self.out_channels,
                                   self.in_channels)):
            return (PhaseWinograd(self.kernel_size, self.padding, self.workspace, transposed=True),
                    lambda W: W.transpose(2, 3, 1, 0))                     # that Conv2D's taps
        return None, None

    # The readable path (with kernels.use_cpu_kernels('numpy')): the docstring's formulas as written.

    def _forward_readable(self, x, output_size):
        N, _, H, W = self.input_shape = x.shape
        self.x_rows = x.transpose(1, 0, 2, 3).reshape(self.in_channels, -1)     # (C_in, N H W)
        W_mat = self.params["W"].reshape(self.in_channels, -1)                   # (C_in, C_out kh kw)
        col = (W_mat.T @ self.x_rows).reshape(self.out_channels, *self.kernel_size, N, H, W)
        y = col2im(col, output_size, self.stride, self.padding)                 # scatter and add up
        if "b" in self.params:
            y = y + self.params["b"].reshape(1, -1, 1, 1)
        return y

    def _backward_readable(self, dout):
        N, _, H, W = self.input_shape
        dcol = im2col(dout, self.kernel_size, self.stride, self.padding).reshape(-1, N * H * W)
        W_mat = self.params["W"].reshape(self.in_channels, -1)
        if self.requires_grad:
            self.grads["W"] += (self.x_rows @ dcol.T).reshape(self.params["W"].shape)   # dL/dW_mat = x dcol^T
            if "b" in self.params:
                self.grads["b"] += dout.sum(axis=(0, 2, 3))
        if not self.needs_input_grad:
            return None
        dx_rows = W_mat @ dcol                                                   # a convolution of dout
        return get_array_module(dout).ascontiguousarray(dx_rows.reshape(self.in_channels, N, H, W)
                                                          .transpose(1, 0, 2, 3))

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, output_padding={self.output_padding}, "
                f"bias={'b' in self.params}")
