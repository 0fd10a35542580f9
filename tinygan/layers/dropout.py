"""Inverted dropout."""
from .. import backend
from .layer import Layer


class Dropout(Layer):
    """Training: y = x * mask / (1 - p), mask_i ~ Bernoulli(1 - p);  eval: y = x.

    Scaling the kept units by 1 / (1 - p) during training keeps E[y] = x, so
    nothing changes at test time. dL/dx = dy * mask / (1 - p).
    The mask comes from the engine's seeded generator, so runs repeat.
    """

    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x, training=True):
        if not training or self.p == 0:
            self.scale = None
            return x
        keep = backend.rng().random(x.shape, dtype=x.dtype) >= self.p
        self.scale = keep * x.dtype.type(1 / (1 - self.p))
        return x * self.scale

    def backward(self, dout):
        return dout if self.scale is None else dout * self.scale

    def extra_repr(self):
        return f"p={self.p}"
