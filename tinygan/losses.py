"""Binary cross-entropy on logits: the GAN loss."""
from .backend import get_array_module
from .layers.activations import stable_sigmoid


class BCEWithLogits:
    """loss = mean_i [ -t_i log s(x_i) - (1 - t_i) log(1 - s(x_i)) ],  s = sigmoid.

    Written on the logits x, with log s(x) = -softplus(-x) and
    softplus(x) = max(x, 0) + log(1 + exp(-|x|)), every term becomes
        max(x, 0) - x t + log(1 + exp(-|x|)),
    which never overflows and keeps its gradient where s(x) rounds to 0 or 1
    (a sigmoid followed by a log returns inf and a zero gradient there).
    Gradient: dL/dx_i = (s(x_i) - t_i) / n for the mean over n entries.
    Targets may be soft (label smoothing) and may be a scalar, broadcast to the logits.
    """

    def forward(self, logits, targets):
        xp = get_array_module(logits)
        targets = xp.asarray(targets, dtype=logits.dtype)
        if targets.shape != logits.shape:
            try:
                targets = xp.broadcast_to(targets, logits.shape)
            except ValueError:
                raise ValueError(f"BCEWithLogits targets of shape {tuple(targets.shape)} do not match "
                                 f"logits of shape {tuple(logits.shape)}") from None
        self.logits, self.targets = logits, targets
        losses = xp.maximum(logits, 0) - logits * targets + xp.log1p(xp.exp(-xp.abs(logits)))
        return float(losses.mean())

    __call__ = forward

    def backward(self):
        return (stable_sigmoid(self.logits) - self.targets) / self.logits.size
