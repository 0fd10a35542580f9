"""Shape changes: no arithmetic, so backward only undoes the reshape."""
from .layer import Layer


class Reshape(Layer):
    """(N, ...) -> (N, *shape);  dL/dx = dy reshaped back to x's shape."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x, training=True):
        self.check_input(x)
        self.input_shape = x.shape
        try:
            return self.keep_output_shape(x.reshape((x.shape[0],) + self.shape))
        except ValueError:
            raise ValueError(f"Reshape{self.shape} cannot reshape input of shape {tuple(x.shape)}: "
                             f"the sizes after the batch axis do not match") from None

    def backward(self, dout):
        self.check_dout(dout)
        return dout.reshape(self.input_shape)

    def extra_repr(self):
        return str(self.shape)


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W);  dL/dx = dy reshaped back."""

    def forward(self, x, training=True):
        self.check_input(x)
        self.input_shape = x.shape
        return self.keep_output_shape(x.reshape(x.shape[0], -1))

    def backward(self, dout):
        self.check_dout(dout)
        return dout.reshape(self.input_shape)
