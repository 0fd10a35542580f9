# %% [markdown]
# # Binary cross-entropy: the naive form overflows, the softplus form does not
#
# The GAN loss on a logit x with target t is -t log s(x) - (1 - t) log(1 - s(x)), s the sigmoid.
# Written literally it returns inf or nan once s(x) rounds to 0 or 1; tinygan's BCEWithLogits
# rewrites it as max(x, 0) - x t + log(1 + exp(-|x|)), which stays exact.
#
#     python examples/stable_bce.py

# %%
import warnings

import numpy as np

import tinygan as tg

warnings.simplefilter("ignore")   # the naive form's overflows are the point here


def naive(x, t):
    s = 1 / (1 + np.exp(-x))
    return -t * np.log(s) - (1 - t) * np.log(1 - s)


loss = tg.BCEWithLogits()
print(f"{'logit':>8} {'target':>6} {'naive float32':>14} {'stable float32':>15} {'gradient':>9}")
for logit in (-200.0, -20.0, -1.0, 0.0, 1.0, 20.0, 200.0):
    for target in (0.0, 1.0):
        x = np.array([[logit]], dtype=np.float32)
        stable = loss(x, target)
        gradient = float(loss.backward()[0, 0])
        print(f"{logit:8.1f} {target:6.1f} {float(naive(x, np.float32(target))[0, 0]):14.6g} {stable:15.6g} "
              f"{gradient:9.3f}")

# %% The gradient s(x) - t stays right where the naive form's is lost
x = np.array([[30.0]], dtype=np.float32)
loss(x, 0.0)
print("\nat logit 30 with target 0: loss", loss(x, 0.0), "gradient", float(loss.backward()[0, 0]),
      "(a confidently wrong discriminator still learns)")
