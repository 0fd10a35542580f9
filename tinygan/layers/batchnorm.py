"""Batch normalisation over the batch (and pixel) axes, per feature/channel."""
from .. import init
from ..backend import get_array_module
from .layer import Layer


class BatchNorm(Layer):
    """y = gamma * x_hat + beta,  x_hat = (x - mean) / sqrt(var + eps).

    Works on (N, C) and on (N, C, H, W): the statistics of each channel C are
    taken over the m = N (or N*H*W) values of that channel. In training mode
    mean and var are the batch's (biased variance); the running estimates are
    updated as PyTorch does,
        running_mean = (1 - momentum) running_mean + momentum mean
        running_var  = (1 - momentum) running_var  + momentum var * m / (m - 1),
    and in eval mode (training=False) they replace the batch statistics.

    Backward in training mode (every x_hat depends on the whole batch through
    mean and var; writing dxh = dy * gamma and averaging over the m values):
        dL/dgamma = sum dy * x_hat,   dL/dbeta = sum dy
        dL/dx = gamma / sqrt(var + eps) * (dy - mean(dy) - x_hat * mean(dy * x_hat))
    In eval mode mean and var are constants: dL/dx = gamma / sqrt(running_var + eps) * dy.
    affine=False drops gamma and beta (they act as 1 and 0).
    """

    def __init__(self, num_features, momentum=0.1, eps=1e-5, affine=True):
        super().__init__()
        self.num_features, self.momentum, self.eps = num_features, momentum, eps
        if affine:
            self.add_param("gamma", init.ones(num_features))
            self.add_param("beta", init.zeros(num_features))
        self.buffers["running_mean"] = init.zeros(num_features)
        self.buffers["running_var"] = init.ones(num_features)

    def forward(self, x, training=True):
        self.check_input(x, (2, 4), "(N, C) or (N, C, H, W)", self.num_features)
        xp = get_array_module(x)
        axes = (0,) if x.ndim == 2 else (0, 2, 3)
        shape = (1, -1) if x.ndim == 2 else (1, -1, 1, 1)   # broadcast per channel
        if training:
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            m = x.size // x.shape[1]
            if m < 2:
                raise ValueError(f"BatchNorm in training mode needs more than one value per channel, "
                                 f"got input of shape {tuple(x.shape)}")
            momentum = self.momentum
            self.buffers["running_mean"] = (1 - momentum) * self.buffers["running_mean"] + momentum * mean
            self.buffers["running_var"] = ((1 - momentum) * self.buffers["running_var"]
                                           + momentum * var * (m / (m - 1)))
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
        inverse_std = (1 / xp.sqrt(var + self.eps)).reshape(shape)
        x_hat = (x - mean.reshape(shape)) * inverse_std
        self.x_hat, self.inverse_std, self.axes, self.shape = x_hat, inverse_std, axes, shape
        self.training = training
        if "gamma" in self.params:
            return x_hat * self.params["gamma"].reshape(shape) + self.params["beta"].reshape(shape)
        return x_hat

    def backward(self, dout):
        x_hat, axes, shape = self.x_hat, self.axes, self.shape
        if "gamma" in self.params:
            self.grads["gamma"] += (dout * x_hat).sum(axis=axes)
            self.grads["beta"] += dout.sum(axis=axes)
            scale = self.params["gamma"].reshape(shape) * self.inverse_std
        else:
            scale = self.inverse_std
        if not self.training:
            return scale * dout
        mean_dout = dout.mean(axis=axes).reshape(shape)
        mean_dout_x_hat = (dout * x_hat).mean(axis=axes).reshape(shape)
        return scale * (dout - mean_dout - x_hat * mean_dout_x_hat)

    def extra_repr(self):
        return f"{self.num_features}, momentum={self.momentum}, eps={self.eps}, affine={'gamma' in self.params}"
