# %% [markdown]
# # Transposed convolution as a scatter, and where checkerboards come from
#
# ConvTranspose2D is the adjoint of Conv2D: each input pixel scatters its kernel, scaled by itself,
# into the output, and overlapping copies add up. With stride 2 and a 3x3 kernel some output pixels
# receive two or four copies and others one: an uneven overlap that a generator must fight, and that
# shows as a checkerboard. Nearest-neighbour upsampling followed by a convolution covers every
# pixel evenly.
#
#     python examples/transposed_scatter.py

# %%
import numpy as np

import tinygan as tg
from tinygan.layers.direct import conv_transpose2d_loops

np.set_printoptions(linewidth=120)
with tg.backend.default_dtype(np.float64):
    transposed = tg.ConvTranspose2D(1, 1, 3, stride=2, padding=1, output_padding=1, bias=False)
    upsample = tg.Sequential([tg.UpSample2D(2), tg.Conv2D(1, 1, 3, padding=1, bias=False)])
transposed.params["W"][...] = 1.0       # every kernel weight 1: the output counts the copies
upsample[1].params["W"][...] = 1.0 / 9

# %% One pixel scatters its kernel
x = np.zeros((1, 1, 3, 3))
x[0, 0, 1, 1] = 1.0
print("one input pixel, scattered by the 3x3 kernel:\n", transposed.forward(x)[0, 0])

# %% A flat input: how many kernel copies land on each output pixel
flat = np.ones((1, 1, 4, 4))
counts = transposed.forward(flat)[0, 0]
print("\nstride-2 transposed convolution of a flat 4x4 image (copies per output pixel):\n", counts)
print("the definition's loops agree:",
      np.allclose(counts, conv_transpose2d_loops(flat, np.ones((1, 1, 3, 3)), np.zeros(1), (2, 2), (1, 1),
                                                 (1, 1))[0, 0]))
print("\nupsample + 3x3 convolution of the same flat image (even inside, only the borders differ):\n",
      np.round(upsample.forward(flat)[0, 0], 3))
