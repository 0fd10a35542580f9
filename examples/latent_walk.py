# %% [markdown]
# # Walking through the latent space of a trained run
#
# G is a smooth function of the noise z, so a path from z_a to z_b moves the image smoothly from one
# digit to another. Each pair of rows walks between the same two random points: first in a straight
# line, then along the great circle (slerp), which keeps |z| where N(0, I) puts its mass (about
# sqrt(100) = 10), while the straight path dips towards the origin in the middle.
#
#     python examples/latent_walk.py RUN_DIR [--out walk.png] [--pairs 3] [--steps 10] [--seed 0]

# %%
import argparse
from pathlib import Path

import numpy as np

from tinygan import backend, data, images
from tinygan.trainer import load_generator

parser = argparse.ArgumentParser()
parser.add_argument("run_dir", type=Path, help="a run directory written by `python -m tinygan train`")
parser.add_argument("--out", default="walk.png")
parser.add_argument("--pairs", type=int, default=3, help="pairs of end points (two rows each)")
parser.add_argument("--steps", type=int, default=10, help="images per row, end points included")
parser.add_argument("--seed", type=int, default=0)
options = parser.parse_args()

# %% The run's generator (the best-FID epoch where the run measured one), and random end points
which = "best" if (options.run_dir / "best.npz").is_file() else "last"
gan, config, epoch = load_generator(options.run_dir, which)
print(f"{config['arch']} generator of epoch {epoch} ({which})")
z_a = gan.sample_noise(options.pairs, rng=np.random.default_rng(options.seed))
z_b = gan.sample_noise(options.pairs, rng=np.random.default_rng(options.seed + 1))
t = np.linspace(0, 1, options.steps, dtype=np.float32)[None, :, None]     # (1, steps, 1)


# %% Straight and spherical paths
def lerp(a, b):
    return (1 - t) * a[:, None] + t * b[:, None]


def slerp(a, b):
    cosine = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    omega = np.arccos(np.clip(cosine, -1, 1))[:, None, None]             # the angle between the end points
    return (np.sin((1 - t) * omega) * a[:, None] + np.sin(t * omega) * b[:, None]) / np.sin(omega)


paths = np.stack([lerp(z_a, z_b), slerp(z_a, z_b)], axis=1)            # (pairs, 2, steps, z_dim)
middle = options.steps // 2
print(f"|z| at the end points {np.linalg.norm(z_a, axis=1).mean():.2f}, in the middle: straight "
      f"{np.linalg.norm(paths[:, 0, middle], axis=1).mean():.2f}, spherical "
      f"{np.linalg.norm(paths[:, 1, middle], axis=1).mean():.2f}")

# %% Generate every point of every path, one row per path
z = paths.reshape(-1, paths.shape[-1]).astype(np.float32)
pictures = backend.as_numpy(gan.generate(backend.to_device(z)))
ends = backend.as_numpy(gan.generate(backend.to_device(np.concatenate([z_a, z_b]))))
walk_ends = pictures.reshape(options.pairs, 2, options.steps, *pictures.shape[1:])[:, :, [0, -1]]
print("both paths start at G(z_a) and end at G(z_b):",
      np.allclose(walk_ends[:, :, 0], ends[:options.pairs, None], atol=1e-5),
      np.allclose(walk_ends[:, :, 1], ends[options.pairs:, None], atol=1e-5))
images.save_png(images.grid(data.to_uint8(pictures, config["pixel_range"]), columns=options.steps), options.out)
print(f"wrote {options.out}: {options.pairs} pairs of rows (straight, then spherical), {options.steps} steps each")
