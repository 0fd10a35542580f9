# %% [markdown]
# # A complete GAN on MNIST in about 40 lines, with the public API only
#
# The loop of tinygan/gan.py without the trainer: an MLP generator and discriminator, Adam as DCGAN
# sets it, the non-saturating generator loss. 12,800 training images, 3 epochs (600 steps): under
# a minute on 2 CPU cores, enough for the first strokes (`train --arch mlp --epochs 30` makes digits).
#
#     python examples/gan_in_40_lines.py [--data-dir ../shared/data/mnist] [--out gan40.png]

# %%
import argparse

import numpy as np

import tinygan as tg
from tinygan import data, images

parser = argparse.ArgumentParser()
parser.add_argument("--data-dir", default=None, help="the four MNIST .gz files (default: tinygan's search)")
parser.add_argument("--out", default="gan40.png")
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--images", type=int, default=12_800, help="training images used")
options = parser.parse_args()

# %% Data in [-1, 1], two networks, two optimizers, one loss
tg.backend.seed(0)
real_images = data.load("mnist", options.data_dir).train_images[:options.images].reshape(-1, 784)
G = tg.Sequential([tg.Dense(100, 256), tg.LeakyReLU(0.2), tg.Dense(256, 512), tg.LeakyReLU(0.2),
                   tg.Dense(512, 784), tg.Tanh()])
D = tg.Sequential([tg.Dense(784, 512), tg.LeakyReLU(0.2), tg.Dropout(0.3),
                   tg.Dense(512, 256), tg.LeakyReLU(0.2), tg.Dropout(0.3), tg.Dense(256, 1)])
G_optimizer, D_optimizer = tg.Adam(G.parameters()), tg.Adam(D.parameters())   # lr 2e-4, betas (0.5, 0.999)
bce, rng, batch = tg.BCEWithLogits(), tg.backend.rng(), 64

# %% The loop: D on a real and a fake batch (gradients add), then G through a frozen D
for epoch in range(1, options.epochs + 1):
    order = rng.permutation(len(real_images))
    for start in range(0, len(order) - batch + 1, batch):
        real = real_images[order[start:start + batch]]
        D_optimizer.zero_grad()
        d_loss = bce(D(real), 1.0)
        D.backward(bce.backward(), input_grad=False)
        fake = G(rng.standard_normal((batch, 100), dtype=np.float32))
        d_loss += bce(D(fake), 0.0)
        D.backward(bce.backward(), input_grad=False)
        D_optimizer.step()

        G_optimizer.zero_grad()
        g_loss = bce(D(fake), 1.0)                         # non-saturating: "call the fakes real"
        D.requires_grad_(False)                            # D only passes the gradient on to G
        G.backward(D.backward(bce.backward()), input_grad=False)
        D.requires_grad_(True)
        G_optimizer.step()
    print(f"epoch {epoch}: D loss {d_loss:.3f}  G loss {g_loss:.3f}")

# %% 64 samples in eval mode, as an 8 x 8 grid
samples = G.forward(rng.standard_normal((64, 100), dtype=np.float32), training=False).reshape(64, 1, 28, 28)
images.save_png(images.grid(data.to_uint8(samples), columns=8), options.out)
print(f"wrote {options.out}")
