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

Misuse is loud: ``check_input`` refuses inputs a layer cannot compute on
(integer, float16 or complex dtypes, another dtype than the parameters', an
empty batch), and ``check_dout`` refuses a backward without its own forward or
with a gradient of the wrong shape.
"""
from .. import backend
from ..cuda_graph import keep_alive

FLOAT_DTYPES = ("float32", "float64")


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
        keep_alive(buffer)   # a captured CUDA graph writes to it at every replay, whatever the layer does next
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

    def check_input(self, x, ndim=None, shape_text=None, channels=None):
        """Raise one clear error when x cannot be this layer's input.

        Floating point only (float32 or float64), and the dtype of the layer's
        parameters: an integer array would silently give integer outputs (uint8
        wraps around), float16 and complex arrays fail deep inside a kernel. A
        batch of zero examples is refused the same way in every layer.
        """
        name = type(self).__name__
        if not hasattr(x, "ndim") or not hasattr(x, "dtype"):
            raise TypeError(f"{name} expects a NumPy or CuPy array, got {type(x).__name__}")
        if str(x.dtype) not in FLOAT_DTYPES:
            raise TypeError(f"{name} expects float32 or float64 input, got {x.dtype}: convert it with "
                            f"x.astype('float32')")
        parameter = next(iter(self.params.values()), None)   # all of a layer's parameters share dtype and device
        if parameter is not None and parameter.dtype != x.dtype:
            raise TypeError(f"{name} has {parameter.dtype} parameters but got {x.dtype} input: convert the input "
                            f"with x.astype('{parameter.dtype}'), or build the layer in {x.dtype}")
        if ndim is not None and x.ndim not in ((ndim,) if isinstance(ndim, int) else ndim):
            raise ValueError(f"{name} expects input of shape {shape_text}, got shape {tuple(x.shape)}")
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(f"{name} got an empty batch (shape {tuple(x.shape)}): give it at least one example")
        if channels is not None and x.shape[1] != channels:
            raise ValueError(f"{name} expects input of shape {shape_text} with {channels} channels/features "
                             f"on axis 1, got shape {tuple(x.shape)}")
        if parameter is not None:
            backend.check_same_device(x, parameter, name)

    def keep_output_shape(self, y):
        """Remember the shape forward returned (for check_dout); returns y. The last line of every forward."""
        self._output_shape = tuple(y.shape)
        return y

    def check_dout(self, dout):
        """The first line of every backward: one backward per forward, and a gradient shaped like the output.

        A layer keeps one cache, the last forward's: backward before any
        forward, or a second backward after one forward (the cache may already
        be overwritten by another forward in between), would compute with the
        wrong values without any error. So each forward allows exactly one
        backward, whose dout must have the shape that forward returned.
        """
        name = type(self).__name__
        expected = getattr(self, "_output_shape", None)
        if expected is None:
            raise RuntimeError(f"{name}.backward needs a forward first: a layer keeps the cache of one forward "
                               f"pass and each forward allows one backward; run forward again")
        if not hasattr(dout, "shape") or tuple(dout.shape) != expected:
            raise ValueError(f"{name}.backward got a gradient of shape {tuple(getattr(dout, 'shape', ()))}, but "
                             f"the last forward returned shape {expected}: dout must have the output's shape")
        self._output_shape = None   # the cache is used: the next backward needs a new forward

    def extra_repr(self):
        return ""

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"


def positive_int(value, name, layer):
    """value, if it is an int >= 1; else one clear error naming the layer's argument."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{layer} needs {name} to be a positive int, got {value!r}")
    return value


def as_pair(value, name):
    """An int or a pair of ints as an (h, w) pair, as PyTorch accepts both."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return pair
