"""Dense (fully connected) layer."""
from .. import init
from ..kernels import matmul
from .layer import Layer, positive_int


class Dense(Layer):
    """y = x @ W + b.

    Shapes: x (N, in_features), W (in_features, out_features), b (out_features,),
    y (N, out_features).

    Backward, from y_nj = sum_i x_ni W_ij + b_j:
        dL/dW = x^T @ dy          (sum over the batch of outer products)
        dL/db = sum_n dy_n
        dL/dx = dy @ W^T
    """

    def __init__(self, in_features, out_features, bias=True, weight_init=init.glorot_uniform):
        super().__init__()
        positive_int(in_features, "in_features", "Dense")
        positive_int(out_features, "out_features", "Dense")
        self.in_features, self.out_features = in_features, out_features
        self.add_param("W", weight_init((in_features, out_features), in_features, out_features))
        if bias:
            self.add_param("b", init.zeros(out_features))

    def forward(self, x, training=True):
        self.check_input(x, 2, "(N, in_features)", self.in_features)
        self.x = x
        y = matmul(x, self.params["W"])
        if "b" in self.params:
            y += self.params["b"]
        return self.keep_output_shape(y)

    def backward(self, dout):
        self.check_dout(dout)
        if self.requires_grad:
            self.grads["W"] += matmul(self.x.T, dout)
            if "b" in self.params:
                self.grads["b"] += dout.sum(axis=0)
        if not self.needs_input_grad:
            return None
        return matmul(dout, self.params["W"].T)   # D's last layer: an inner dimension of 1 (kernels.matmul)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={'b' in self.params}"
