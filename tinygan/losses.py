"""Binary cross-entropy on logits: the GAN loss."""
import numpy as np

from . import kernels
from .backend import get_array_module


class BCEWithLogits:
    """loss = mean_i [ -t_i log s(x_i) - (1 - t_i) log(1 - s(x_i)) ],  s = sigmoid.

    Written on the logits x, with log s(x) = -softplus(-x) and
    softplus(x) = max(x, 0) + log(1 + exp(-|x|)), every term becomes
        max(x, 0) - x t + log(1 + exp(-|x|)),
    which never overflows and keeps its gradient where s(x) rounds to 0 or 1
    (a sigmoid followed by a log returns inf and a zero gradient there).
    At x = +-inf the term max(x, 0) - x t is (1 - t) x or -t x, which is 0
    (not inf - inf = NaN) when its coefficient is 0: the loss is then exactly
    0, or inf for a confidently wrong logit, and the gradient stays finite.
    Gradient: dL/dx_i = (s(x_i) - t_i) / n for the mean over n entries.
    Targets may be soft (label smoothing) and may be a scalar, broadcast to the logits.
    """

    def forward(self, logits, targets):
        """The mean loss as a Python float. On a GPU, reading it waits for every queued kernel to finish."""
        return float(self.forward_array(logits, targets))

    __call__ = forward

    def forward_array(self, logits, targets):
        """The same mean loss in float64, left on the logits' device: nothing waits for the GPU, so the
        host can go on queueing the next kernels (the trainer reads its losses a few steps at a time)."""
        xp = get_array_module(logits)
        if np.ndim(targets) != 0:   # a scalar target stays a scalar: on a GPU, a kernel argument
            targets = xp.asarray(targets, dtype=logits.dtype)
            if targets.shape != logits.shape:
                try:
                    targets = xp.broadcast_to(targets, logits.shape)
                except ValueError:
                    raise ValueError(f"BCEWithLogits targets of shape {tuple(targets.shape)} do not match "
                                     f"logits of shape {tuple(logits.shape)}") from None
        self.logits, self.targets = logits, targets
        # kernels/reference.py has the formula above in NumPy; a GPU computes it in one reduction
        return kernels.bce_with_logits(logits, targets)

    def backward(self):
        return kernels.bce_with_logits_gradient(self.logits, self.targets)


class SoftmaxCrossEntropy:
    """loss = mean_n [ -log softmax(x_n)[y_n] ]  on logits x (N, K) and integer labels y (N,).

    Written in the log-sum-exp form, with m_n = max_k x_nk,
        -log softmax(x_n)[y_n] = m_n + log sum_k exp(x_nk - m_n) - x_n,y_n,
    so every exp sees an argument <= 0: no overflow at any finite logit, and
    the largest term is exactly exp(0) = 1, so the log never sees 0 (a softmax
    followed by a log returns inf where a probability rounds to 0).
    Gradient: with p = softmax(x) and onehot(y) the one-hot rows,
        dL/dx = (p - onehot(y)) / N,
    the same "prediction minus target" as BCEWithLogits, one row per example.
    """

    def forward(self, logits, labels):
        xp = get_array_module(logits)
        if logits.ndim != 2:
            raise ValueError(f"SoftmaxCrossEntropy expects logits of shape (N, classes), got {tuple(logits.shape)}")
        labels = xp.asarray(labels)
        if labels.shape != logits.shape[:1] or labels.dtype.kind not in "iu":
            raise ValueError(f"SoftmaxCrossEntropy expects integer labels of shape ({logits.shape[0]},), got "
                             f"{labels.dtype} of shape {tuple(labels.shape)}")
        if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= logits.shape[1]):
            raise ValueError(f"SoftmaxCrossEntropy labels must lie in [0, {logits.shape[1] - 1}]")
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_sum = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        self.log_probabilities, self.labels = shifted - log_sum, labels
        rows = xp.arange(len(labels))
        return float(-self.log_probabilities[rows, labels].mean())

    __call__ = forward

    def backward(self):
        xp = get_array_module(self.log_probabilities)
        gradient = xp.exp(self.log_probabilities)
        gradient[xp.arange(len(self.labels)), self.labels] -= 1
        return gradient / len(self.labels)
