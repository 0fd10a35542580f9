"""Elementwise activations. Each backward is dout times the local derivative."""
import math

from .. import kernels
from ..backend import get_array_module
from .layer import Layer


def stable_sigmoid(x):
    """1 / (1 + exp(-x)) without overflow: exp is only ever taken of -|x|."""
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


class LeakyReLU(Layer):
    """y = x for x > 0, negative_slope * x otherwise;  dL/dx = dy * (1 or negative_slope).

    The kernels (tinygan/kernels) do both in one pass; kernels/reference.py
    holds the two-line NumPy version.
    """

    def __init__(self, negative_slope=0.2):
        super().__init__()
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)) \
                or not math.isfinite(negative_slope):
            raise ValueError(f"LeakyReLU needs a finite negative_slope, got {negative_slope!r}")
        self.negative_slope = negative_slope

    def forward(self, x, training=True):
        self.check_input(x)
        self.x = x
        return self.keep_output_shape(kernels.leaky_relu(x, self.negative_slope))

    def backward(self, dout):
        self.check_dout(dout)
        return kernels.leaky_relu_backward(dout, self.x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ReLU(Layer):
    """y = max(x, 0);  dL/dx = dy where x > 0, else 0."""

    def forward(self, x, training=True):
        self.check_input(x)
        self.positive = x > 0
        return self.keep_output_shape(x * self.positive)

    def backward(self, dout):
        self.check_dout(dout)
        return dout * self.positive


class Tanh(Layer):
    """y = tanh(x);  dL/dx = dy * (1 - y^2)."""

    def forward(self, x, training=True):
        self.check_input(x)
        self.y = get_array_module(x).tanh(x)
        return self.keep_output_shape(self.y)

    def backward(self, dout):
        self.check_dout(dout)
        return dout * (1 - self.y * self.y)


class Sigmoid(Layer):
    """y = 1 / (1 + exp(-x));  dL/dx = dy * y * (1 - y)."""

    def forward(self, x, training=True):
        self.check_input(x)
        self.y = stable_sigmoid(x)
        return self.keep_output_shape(self.y)

    def backward(self, dout):
        self.check_dout(dout)
        return dout * self.y * (1 - self.y)
