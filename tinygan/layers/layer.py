"""The contract every layer keeps.

* ``forward(x, training=True)`` returns the output and keeps, on the layer,
  exactly what ``backward`` needs (the cache).
* ``backward(dout)`` takes dL/d(output) and returns dL/d(input). It *adds* the
  parameter gradients into ``grads`` (same keys and shapes as ``params``), as
  PyTorch accumulates into ``.grad``: two backward passes (a real and a fake
  batch through the discriminator) sum, and ``zero_grad()`` clears them.
* ``params`` hold what the optimizer trains; ``buffers`` hold state that is
  saved but not trained (BatchNorm's running statistics).
* ``requires_grad = False`` (PyTorch's name) makes ``backward`` skip the
  parameter gradients and only return dL/d(input): the generator's step
  needs the gradient that flows through the discriminator, not the
  discriminator's own, and skipping its weight gradients saves a matrix
  product per layer.
* ``needs_input_grad = False`` (the name of PyTorch's autograd flag) lets
  ``backward`` skip dL/d(input) and return None, when the input is data whose
  gradient nobody wants (Sequential.backward(dout, input_grad=False)). Only
  the layers for which it saves work (Dense and the convolutions) look at it.

Neither pass modifies its argument in place.
"""
from .. import backend


class Layer:
    def __init__(self):
        self.params = {}
        self.grads = {}
        self.buffers = {}
        self.requires_grad = True
        self.needs_input_grad = True
        self._workspace = {}

    def forward(self, x, training=True):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def __call__(self, x, training=True):
        return self.forward(x, training=training)

    def add_param(self, name, value):
        self.params[name] = value
        self.grads[name] = backend.get_array_module(value).zeros_like(value)

    def workspace(self, name, shape, like):
        """A scratch array of ``shape`` on the device and in the dtype of ``like``, kept between calls.

        Layers keep their large temporaries (im2col columns, matrix products)
        here instead of allocating tens of MB each step: fresh memory is paid
        for in page faults every time it is touched first. Only what stays
        inside the layer goes here, never an array a layer returns.
        """
        buffer = self._workspace.get(name)
        if (buffer is None or buffer.shape != tuple(shape) or buffer.dtype != like.dtype
                or backend.device_of(buffer) != backend.device_of(like)):
            buffer = backend.get_array_module(like).empty(shape, dtype=like.dtype)
            self._workspace[name] = buffer
        return buffer

    def zero_grad(self):
        for grad in self.grads.values():
            grad.fill(0)

    def to(self, device):
        """Move parameters, gradients and buffers to 'cpu' or 'gpu' (in place); returns self."""
        for store in (self.params, self.grads, self.buffers):
            for name, value in store.items():
                store[name] = backend.to_device(value, device)
        return self

    def check_input(self, x, ndim, shape_text, channels=None):
        """Raise one clear error when x cannot be this layer's input."""
        name = type(self).__name__
        if not hasattr(x, "ndim"):
            raise TypeError(f"{name} expects a NumPy or CuPy array, got {type(x).__name__}")
        if x.ndim not in ((ndim,) if isinstance(ndim, int) else ndim):
            raise ValueError(f"{name} expects input of shape {shape_text}, got shape {tuple(x.shape)}")
        if channels is not None and x.shape[1] != channels:
            raise ValueError(f"{name} expects input of shape {shape_text} with {channels} channels/features "
                             f"on axis 1, got shape {tuple(x.shape)}")
        for value in self.params.values():
            backend.check_same_device(x, value, name)
            break

    def extra_repr(self):
        return ""

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"


def as_pair(value, name):
    """An int or a pair of ints as an (h, w) pair, as PyTorch accepts both."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return pair
