"""Inverted dropout."""
from .. import backend, kernels
from ..cuda_graph import per_step
from .layer import Layer


class Dropout(Layer):
    """Training: y = x * mask / (1 - p), mask_i ~ Bernoulli(1 - p);  eval: y = x.

    Scaling the kept units by 1 / (1 - p) during training keeps E[y] = x, so
    nothing changes at test time. dL/dx = dy * mask / (1 - p).

    The mask is a function of a key and the element's index (a counter-based
    generator, kernels/reference.py): the key comes from the engine's seeded
    generator, so runs repeat and CPU and GPU draw the same mask; backward
    recomputes the mask from the key instead of storing it. A step captured as
    a CUDA graph draws the key before each replay instead (cuda_graph.py).
    """

    def __init__(self, p=0.5):
        super().__init__()
        if not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"Dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x, training=True):
        self.check_input(x)
        if not training or self.p == 0:
            self.key = None
            return self.keep_output_shape(x)
        self.key = per_step(lambda: int(backend.numpy_rng().integers(2**63)))
        return self.keep_output_shape(kernels.dropout(x, self.p, self.key))

    def backward(self, dout):
        self.check_dout(dout)
        return dout if self.key is None else kernels.dropout(dout, self.p, self.key)

    def extra_repr(self):
        return f"p={self.p}"
