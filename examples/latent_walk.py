# %% [markdown]
# # Walking through the latent space of a trained run
#
# G is a smooth function of the noise z, so a path from z_a to z_b moves the image smoothly from one
# digit to another. Each pair of rows walks between the same two random points: first in a straight
# line, then along the great circle (slerp), which keeps |z| where N(0, I) puts its mass (about
# sqrt(100) = 10), while the straight path dips towards the origin in the middle.
#
#     python examples/latent_walk.py RUN_DIR [--out walk.png] [--pairs 3] [--steps 10] [--seed 0]
#
# `python -m tinygan interpolate --checkpoint RUN_DIR --out walk.gif` makes the same walks, animated.

# %%
import argparse
from pathlib import Path

import numpy as np

from tinygan import backend, images, latent
from tinygan.trainer import load_generator

parser = argparse.ArgumentParser()
parser.add_argument("run_dir", type=Path, help="a run directory written by `python -m tinygan train`")
parser.add_argument("--out", default="walk.png")
parser.add_argument("--pairs", type=int, default=3, help="pairs of end points (two rows each)")
parser.add_argument("--steps", type=int, default=10, help="images per row, end points included")
parser.add_argument("--seed", type=int, default=0)
options = parser.parse_args()

# %% The run's generator (the best-FID epoch where the run measured one), and the walks of tinygan/latent.py
which = "best" if (options.run_dir / "best.npz").is_file() else "last"
gan, config, epoch = load_generator(options.run_dir, which)
print(f"{config['arch']} generator of epoch {epoch} ({which})")
z, walked = latent.walks(gan, options.pairs, options.steps, options.seed)   # (pairs, 2 paths, steps, ...)

# %% How far from the origin each path goes: the straight one cuts through the middle
middle = options.steps // 2
norms = np.linalg.norm(z, axis=-1)                                         # (pairs, 2, steps)
print(f"|z| at the end points {norms[:, :, 0].mean():.2f}, in the middle: straight {norms[:, 0, middle].mean():.2f}, "
      f"spherical {norms[:, 1, middle].mean():.2f}")

# %% Both paths start and end where they should: at G(z_a) and G(z_b)
ends = backend.as_numpy(gan.generate(backend.to_device(np.concatenate([z[:, 0, 0], z[:, 0, -1]]))))
print("both paths start at G(z_a) and end at G(z_b):",
      np.allclose(walked[:, :, 0], ends[:options.pairs, None], atol=1e-5),
      np.allclose(walked[:, :, -1], ends[options.pairs:, None], atol=1e-5))
pictures = latent.to_pictures(walked, config["pixel_range"])
images.save_png(images.grid(pictures.reshape(-1, *pictures.shape[-2:]), columns=options.steps), options.out)
print(f"wrote {options.out}: {options.pairs} pairs of rows (straight, then spherical), {options.steps} steps each")
