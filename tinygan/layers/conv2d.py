"""2-D convolution (cross-correlation, as in PyTorch's Conv2d)."""
from .. import backend, init, kernels, polyphase, winograd
from ..backend import get_array_module
from ..kernels import col2im, im2col, matmul, output_size
from ..polyphase import PhaseWinograd
from ..winograd import WinogradConvolution
from .layer import Layer, as_pair, positive_int


def to_rows(a, out=None):
    """(N, C, H, W) -> (C, N*H*W): one row per channel, the batch side by side (a copy, into ``out``)."""
    if out is None:
        return a.transpose(1, 0, 2, 3).reshape(a.shape[1], -1)
    N, C, H, W = a.shape
    get_array_module(a).copyto(out.reshape(C, N, H, W), a.transpose(1, 0, 2, 3))
    return out


def from_rows(rows, N, H, W):
    """(C, N*H*W) -> (N, C, H, W), the inverse of to_rows (a strided view)."""
    return rows.reshape(rows.shape[0], N, H, W).transpose(1, 0, 2, 3)


class Conv2D(Layer):
    """y[n, o] = sum_c W[o, c] * x[n, c] + b[o]   (* is 2-D cross-correlation).

    Shapes: x (N, C_in, H, W), W (C_out, C_in, kh, kw), b (C_out,),
    y (N, C_out, H_out, W_out) with H_out = (H + 2 padding - kh) // stride + 1.

    With col = im2col(x), of shape (C_in kh kw, N H_out W_out), the convolution
    is one matrix product for the whole batch:  Y = W_mat @ col  (Y has one row
    per output channel). Backward follows from the product rule of a GEMM:
        dL/dW_mat = dY @ col^T
        dL/db     = dY summed over the batch and the pixels
        dL/dcol   = W_mat^T @ dY,  and  dL/dx = col2im(dL/dcol)
    because im2col is linear and col2im is its adjoint (the transpose).

    On the CPU's fast path a layer where Winograd's convolution is faster
    computes the same y in fewer multiplications: a stride-1 one directly
    (winograd.fits: 5x5 kernels with 8 input channels or more, 3x3 ones with
    16 or more and no more outputs; tinygan/winograd.py), a stride-2 one over
    its input's four phases (polyphase.fits; tinygan/polyphase.py).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 weight_init=init.glorot_uniform):
        super().__init__()
        positive_int(in_channels, "in_channels", "Conv2D")
        positive_int(out_channels, "out_channels", "Conv2D")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = as_pair(kernel_size, "kernel_size")
        self.stride = as_pair(stride, "stride")
        self.padding = as_pair(padding, "padding")
        if min(self.stride) < 1 or min(self.kernel_size) < 1 or min(self.padding) < 0:
            raise ValueError("Conv2D needs kernel_size >= 1, stride >= 1 and padding >= 0")
        kh, kw = self.kernel_size
        self.add_param("W", weight_init((out_channels, in_channels, kh, kw),
                                        in_channels * kh * kw, out_channels * kh * kw))
        if bias:
            self.add_param("b", init.zeros(out_channels))

    def forward(self, x, training=True):
        self.check_input(x, 4, "(N, C_in, H, W)", self.in_channels)
        N, _, H, W = x.shape
        H_out, W_out = (output_size(size, k, s, p) for size, k, s, p
                        in zip((H, W), self.kernel_size, self.stride, self.padding))
        if H_out < 1 or W_out < 1:
            raise ValueError(f"Conv2D input {H}x{W} with padding {self.padding} is smaller than "
                             f"its kernel {self.kernel_size}")
        self.readable, self.winograd = kernels.uses_reference(x), None
        if self.readable:
            return self.keep_output_shape(self._forward_readable(x))
        if backend.device_of(x) == "cpu":
            self.winograd = self._winograd((H, W))
        if self.winograd is not None:
            y = self.winograd.forward(x, self.params["W"].transpose(2, 3, 1, 0))   # taps (kh, kw, C_in, C_out)
            if "b" in self.params:
                y += self.params["b"].reshape(1, -1, 1, 1)
            return self.keep_output_shape(y)
        kh, kw = self.kernel_size
        col_shape = (self.in_channels, kh, kw, N, H_out, W_out)
        col = im2col(x, self.kernel_size, self.stride, self.padding, out=self.workspace("col", col_shape, x))
        self.image_size, self.col = (H, W), col
        xp = get_array_module(x)
        rows = matmul(self.params["W"].reshape(self.out_channels, -1), col.reshape(-1, N * H_out * W_out),
                      out=self.workspace("rows", (self.out_channels, N * H_out * W_out), x))
        y = xp.empty((N, self.out_channels, H_out, W_out), dtype=x.dtype)   # C-contiguous, as the next layers want
        if "b" in self.params:
            xp.add(from_rows(rows, N, H_out, W_out), self.params["b"].reshape(1, -1, 1, 1), out=y)
        else:
            y[...] = from_rows(rows, N, H_out, W_out)
        return self.keep_output_shape(y)

    def backward(self, dout):
        self.check_dout(dout)
        if self.readable:
            return self._backward_readable(dout)
        if self.winograd is not None:
            dx = self.winograd.backward(dout, self.grads["W"].transpose(2, 3, 1, 0) if self.requires_grad else None,
                                        self.needs_input_grad)
            if self.requires_grad and "b" in self.params:
                self.grads["b"] += dout.sum(axis=(0, 2, 3))
            return dx
        W = self.params["W"]
        dout_rows = to_rows(dout, out=self.workspace("dout_rows", (dout.shape[1], dout.size // dout.shape[1]), dout))
        col_rows = self.col.reshape(-1, dout_rows.shape[1])
        if self.requires_grad:
            # dY @ col^T, computed as (col @ dY^T)^T: OpenBLAS runs this orientation
            # about 12% faster when dY has few rows (128 for D.3).
            dW = self.grads["W"].reshape(self.out_channels, -1)   # a view: += lands in grads
            dW += matmul(col_rows, dout_rows.T).T
            if "b" in self.params:
                self.grads["b"] += dout_rows.sum(axis=1)
        if not self.needs_input_grad:
            return None
        dcol = matmul(W.reshape(self.out_channels, -1).T, dout_rows, out=self.workspace("dcol", col_rows.shape, dout))
        return col2im(dcol.reshape(self.col.shape), self.image_size, self.stride, self.padding)

    def _winograd(self, image_size):
        """Winograd's convolution where it is faster than im2col on the CPU (the class docstring), else None."""
        if winograd.fits(self.kernel_size, self.stride, self.padding, self.in_channels, self.out_channels):
            return WinogradConvolution(self.kernel_size, self.padding, self.workspace)
        if polyphase.fits(self.kernel_size, self.stride, self.padding, image_size, self.in_channels,
                          self.out_channels):
            return PhaseWinograd(self.kernel_size, self.padding, self.workspace, transposed=False)
        return None

    # The readable path: the docstring's formulas as written, no scratch buffers, no out= products. It runs
    # with the NumPy reference kernels (kernels.use_cpu_kernels('numpy')); the tests hold both paths to
    # the direct loops of layers/direct.py.

    def _forward_readable(self, x):
        self.image_size = x.shape[2:]
        self.col = im2col(x, self.kernel_size, self.stride, self.padding)   # (C_in, kh, kw, N, H_out, W_out)
        _, _, _, N, H_out, W_out = self.col.shape
        W_mat = self.params["W"].reshape(self.out_channels, -1)               # (C_out, C_in kh kw)
        Y = W_mat @ self.col.reshape(W_mat.shape[1], -1)                     # (C_out, N H_out W_out)
        y = Y.reshape(self.out_channels, N, H_out, W_out).transpose(1, 0, 2, 3)
        if "b" in self.params:
            y = y + self.params["b"].reshape(1, -1, 1, 1)
        return get_array_module(x).ascontiguousarray(y)

    def _backward_readable(self, dout):
        dY = dout.transpose(1, 0, 2, 3).reshape(self.out_channels, -1)      # (C_out, N H_out W_out)
        col = self.col.reshape(-1, dY.shape[1])                             # (C_in kh kw, N H_out W_out)
        W_mat = self.params["W"].reshape(self.out_channels, -1)
        if self.requires_grad:
            self.grads["W"] += (dY @ col.T).reshape(self.params["W"].shape)   # dL/dW_mat = dY @ col^T
            if "b" in self.params:
                self.grads["b"] += dY.sum(axis=1)
        if not self.needs_input_grad:
            return None
        dcol = W_mat.T @ dY                                                  # dL/dcol = W_mat^T @ dY
        return col2im(dcol.reshape(self.col.shape), self.image_size, self.stride, self.padding)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={'b' in self.params}")
