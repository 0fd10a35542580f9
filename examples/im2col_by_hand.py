# %% [markdown]
# # Convolution as im2col plus one matrix product
#
# A 3x3 convolution of a 4x4 image, three ways: the loops of its definition, one matrix product over
# the columns im2col lays out, and tinygan's Conv2D. Then col2im, checked as im2col's adjoint.
#
#     python examples/im2col_by_hand.py

# %%
import numpy as np

import tinygan as tg
from tinygan.kernels import reference

np.set_printoptions(linewidth=120)
x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)     # one image, one channel, 4x4
print("the image:\n", x[0, 0])

# %% im2col: one column per output pixel, one row per kernel offset (C * kh * kw rows)
col = reference.im2col(x, (3, 3), (1, 1), (0, 0))            # (C, kh, kw, N, out_h, out_w)
columns = col.reshape(9, 4)
print("\nim2col columns (9 kernel offsets x 4 output pixels); column 0 is the top-left 3x3 patch:\n", columns)

# %% The convolution three ways
rng = np.random.default_rng(0)
W = rng.standard_normal((2, 1, 3, 3))                          # two output channels

loops = np.zeros((1, 2, 2, 2))
for o, i, j in np.ndindex(2, 2, 2):                            # y[o, i, j] = sum of W[o] * patch at (i, j)
    loops[0, o, i, j] = np.sum(W[o, 0] * x[0, 0, i:i + 3, j:j + 3])

product = (W.reshape(2, 9) @ columns).reshape(1, 2, 2, 2)      # all patches at once: one matrix product

with tg.backend.default_dtype(np.float64):
    layer = tg.Conv2D(1, 2, 3, bias=False)
layer.params["W"][...] = W
engine = layer.forward(x)
print("\nloops == matrix product == Conv2D:", np.allclose(loops, product), np.allclose(loops, engine))

# %% col2im is the adjoint (transpose) of im2col: <im2col(x), c> = <x, col2im(c)> for every x and c
c = rng.standard_normal(col.shape)
left = np.sum(col * c)
right = np.sum(x * reference.col2im(c, (4, 4), (1, 1), (0, 0)))
print(f"adjoint identity: {left:.12f} == {right:.12f}:", np.isclose(left, right))
print("col2im of all ones counts how many patches cover each pixel (the overlap-add):\n",
      reference.col2im(np.ones_like(col), (4, 4), (1, 1), (0, 0))[0, 0])
