# %% [markdown]
# # Checking BatchNorm's backward numerically
#
# BatchNorm's input gradient, derived in tinygan/layers/batchnorm.py, is
#     dL/dx = gamma / sqrt(var + eps) * (dy - mean(dy) - x_hat * mean(dy * x_hat)).
# tinygan.gradcheck compares it with central differences in float64. Then a plausible mistake,
# dropping the two mean terms, is planted, and the checker names it.
#
#     python examples/batchnorm_gradient.py

# %%
import numpy as np

import tinygan as tg
from tinygan.gradcheck import GradientCheckError, check_layer_gradients

rng = np.random.default_rng(0)
x = rng.standard_normal((8, 3, 4, 4)) * 2 + 1     # a batch of 8, 3 channels

with tg.backend.default_dtype(np.float64):       # float64: finite differences need the digits
    layer = tg.BatchNorm(3)
check_layer_gradients(layer, x)
print("BatchNorm's backward agrees with central differences (input, gamma, beta)")


# %% A plausible mistake: the gradient as if mean and variance were constants (eval mode's formula)
class ForgetfulBatchNorm(tg.BatchNorm):
    def backward(self, dout):
        super().backward(dout)
        return dout * (self.params["gamma"] * self.inverse_std)[:, None, None]


with tg.backend.default_dtype(np.float64):
    wrong = ForgetfulBatchNorm(3)
try:
    check_layer_gradients(wrong, x)
except GradientCheckError as error:
    print("the planted mistake is caught:", error)
