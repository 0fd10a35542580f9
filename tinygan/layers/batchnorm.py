"""Batch normalisation over the batch (and pixel) axes, per feature/channel."""
import contextlib

from .. import init, kernels
from ..backend import get_array_module
from .layer import Layer, positive_int


class BatchNorm(Layer):
    """y = gamma * x_hat + beta,  x_hat = (x - mu) / sqrt(var + eps).

    Works on (N, C) and on (N, C, H, W): the statistics of each channel C are
    taken over the m = N (or N*H*W) values of that channel. The training-mode
    passes run as kernels (tinygan/kernels; the NumPy reference is
    kernels/reference.py's batchnorm_forward and batchnorm_backward). In training mode
    mu and var are the batch's (biased variance); the running estimates are
    updated as PyTorch does, in place,
        running_mean = (1 - momentum) running_mean + momentum mu
        running_var  = (1 - momentum) running_var  + momentum var * m / (m - 1),
    and in eval mode (training=False) they replace the batch statistics.

    Backward in training mode, per channel over its m values. Every x_hat_i
    depends on every x_j through mu and var, so x_i reaches the loss three ways
    (docs/course/05_batchnorm.md draws the graph). With g = dL/dx_hat = gamma dy
    and r = 1 / sqrt(var + eps), so that x_hat = (x - mu) r:
        dL/dgamma = sum dy x_hat,   dL/dbeta = sum dy
        dL/dvar = sum_i g_i (x_i - mu) * (-r^3 / 2)   = -(r^2 / 2) sum g x_hat
        dL/dmu  = -r sum g + dL/dvar mean(-2 (x - mu)) = -r sum g   (sum (x - mu) = 0)
        dL/dx_i = g_i r  +  dL/dvar 2 (x_i - mu) / m  +  dL/dmu / m
                = r (g_i - x_hat_i mean(g x_hat) - mean(g))
                = gamma r (dy_i - mean(dy) - x_hat_i mean(dy x_hat)).
    The two subtracted terms remove from dy its mean and its component along
    x_hat: the directions in which the normalisation's output cannot move.
    In eval mode mu and var are constants: dL/dx = gamma / sqrt(running_var + eps) * dy.
    affine=False drops gamma and beta (they act as 1 and 0).
    """

    def __init__(self, num_features, momentum=0.1, eps=1e-5, affine=True):
        super().__init__()
        positive_int(num_features, "num_features", "BatchNorm")
        if not 0 <= momentum <= 1 or not eps > 0:
            raise ValueError(f"BatchNorm needs 0 <= momentum <= 1 and eps > 0, got momentum={momentum}, eps={eps}")
        self.num_features, self.momentum, self.eps = num_features, momentum, eps
        if affine:
            self.add_param("gamma", init.ones(num_features))
            self.add_param("beta", init.zeros(num_features))
        self.buffers["running_mean"] = init.zeros(num_features)
        self.buffers["running_var"] = init.ones(num_features)
        self.update_running = True   # False inside running_statistics_frozen

    def forward(self, x, training=True):
        self.check_input(x, (2, 4), "(N, C) or (N, C, H, W)", self.num_features)
        xp = get_array_module(x)
        # (N, C) and (N, C, H, W) alike as (N, C, M): channel c's values are x3[:, c, :].
        x3 = x.reshape(x.shape[0], x.shape[1], -1)
        gamma, beta = self._affine(x)
        if training:
            m = x3.shape[0] * x3.shape[2]
            if m < 2:
                raise ValueError(f"BatchNorm in training mode needs more than one value per channel, "
                                 f"got input of shape {tuple(x.shape)}")
            y3, x_hat, mean, var, inverse_std = kernels.batchnorm_forward(x3, gamma, beta, self.eps)
            if self.update_running:
                kernels.batchnorm_update_running(self.buffers["running_mean"], self.buffers["running_var"], mean,
                                                 var, self.momentum, m / (m - 1))
        else:
            inverse_std = 1 / xp.sqrt(self.buffers["running_var"] + self.eps)
            x_hat = (x3 - self.buffers["running_mean"][:, None]) * inverse_std[:, None]
            y3 = x_hat * gamma[:, None] + beta[:, None]
        self.x_hat, self.inverse_std, self.training = x_hat, inverse_std, training
        return self.keep_output_shape(y3.reshape(x.shape))

    def backward(self, dout):
        self.check_dout(dout)
        dout3 = dout.reshape(dout.shape[0], dout.shape[1], -1)
        gamma, _ = self._affine(dout)
        if self.training:
            dx, dgamma, dbeta = kernels.batchnorm_backward(dout3, self.x_hat, gamma, self.inverse_std)
        else:
            dgamma, dbeta = (dout3 * self.x_hat).sum(axis=(0, 2)), dout3.sum(axis=(0, 2))
            dx = (gamma * self.inverse_std)[:, None] * dout3
        if "gamma" in self.params and self.requires_grad:
            self.grads["gamma"] += dgamma
            self.grads["beta"] += dbeta
        return dx.reshape(dout.shape)

    def _affine(self, like):
        """(gamma, beta), or (1, 0) for affine=False, in like's dtype."""
        if "gamma" in self.params:
            return self.params["gamma"], self.params["beta"]
        xp = get_array_module(like)
        return xp.ones(self.num_features, dtype=like.dtype), xp.zeros(self.num_features, dtype=like.dtype)

    def extra_repr(self):
        return f"{self.num_features}, momentum={self.momentum}, eps={self.eps}, affine={'gamma' in self.params}"


@contextlib.contextmanager
def running_statistics_frozen(layers):
    """Inside, the BatchNorm layers among ``layers`` normalise by their batches' statistics in training
    mode but leave their running estimates as they are: for asking a discriminator as it is trained
    (GAN.discriminator_accuracy, probe.discriminator_features) without changing it."""
    norms = [layer for layer in layers if isinstance(layer, BatchNorm)]
    for layer in norms:
        layer.update_running = False
    try:
        yield
    finally:
        for layer in norms:
            layer.update_running = True
