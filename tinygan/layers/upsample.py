"""Nearest-neighbour upsampling."""
from .layer import Layer


class UpSample2D(Layer):
    """y[n, c, h, w] = x[n, c, h // scale, w // scale]:  (N, C, H, W) -> (N, C, sH, sW).

    Each input pixel is copied to a scale x scale block, so its gradient is the
    sum of the gradients of that block:  dL/dx = dy summed over each block.
    """

    def __init__(self, scale=2):
        super().__init__()
        if not isinstance(scale, int) or scale < 1:
            raise ValueError(f"UpSample2D scale must be a positive int, got {scale!r}")
        self.scale = scale

    def forward(self, x, training=True):
        self.check_input(x, 4, "(N, C, H, W)")
        s = self.scale
        N, C, H, W = x.shape
        return self.keep_output_shape(
            x.reshape(N, C, H, 1, W, 1).repeat(s, axis=3).repeat(s, axis=5).reshape(N, C, H * s, W * s))

    def backward(self, dout):
        self.check_dout(dout)
        s = self.scale
        N, C, H, W = dout.shape
        return dout.reshape(N, C, H // s, s, W // s, s).sum(axis=(3, 5))

    def extra_repr(self):
        return f"scale={self.scale}"
