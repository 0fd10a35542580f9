# %% [markdown]
# # What the GAN metrics say about sets whose quality we already know
#
# `tinygan eval` turns a set of images into numbers. Before trusting them on a GAN, look at what
# they say about sets whose verdict is obvious: real digits (the floor), pure noise, one digit
# repeated (mode collapse) and blurred digits; then, if you pass run directories, the GANs.
#
#     python examples/known_sets.py [--n 10000] [--data-dir DIR] [RUN_DIR ...]

# %%
import argparse
import time

import numpy as np

from tinygan import backend, data, evaluation
from tinygan.trainer import load_generator

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("runs", nargs="*", help="run directories to evaluate beside the known sets")
parser.add_argument("--n", type=int, default=10_000, help="images per set (at least 1,000)")
parser.add_argument("--data-dir", default=None, help="directory with the MNIST IDX files")
arguments = parser.parse_args()
n = arguments.n

evaluator = evaluation.Evaluator("mnist", arguments.data_dir)
train = evaluator.dataset.train_images
rng = np.random.default_rng(0)


# %% The known sets, all float32 (n, 1, 28, 28) in [-1, 1]
def box_blur(images, size=5):
    """Each pixel the mean of its size x size neighbourhood: strokes become smudges."""
    r = size // 2
    padded = np.pad(images, ((0, 0), (0, 0), (r, r), (r, r)), mode="edge")
    return sum(padded[:, :, i:i + 28, j:j + 28] for i in range(size) for j in range(size)) / size**2


fresh = train[rng.choice(len(train), n, replace=False)]   # the reference uses another draw of the same images
sets = {
    "uniform noise": rng.uniform(-1, 1, (n, 1, 28, 28)).astype(np.float32),
    "one class (all 1s)": train[evaluator.dataset.train_labels == 1][:n],
    "blurred real (5x5 box)": box_blur(fresh).astype(np.float32),
}

# %% Generated sets: n images from each run's last generator, as `tinygan eval RUN` makes them
for run in arguments.runs:
    backend.seed(0)
    gan, config, epoch = load_generator(run)
    pictures = data.to_uint8(backend.as_numpy(gan.generate(gan.sample_noise(n))), config["pixel_range"])
    sets[f"{config['arch']}, epoch {epoch}"] = evaluation.as_model_images(pictures)

# %% Measure them all beside the real floor
rows = {"real training images (floor)": evaluator.reference(n)}
for name, images in sets.items():
    start = time.perf_counter()
    rows[name] = evaluator.evaluate(images)
    rows[name]["seconds"] = time.perf_counter() - start

columns = [("FID", "fid", "{:.2f}"), ("KID", "kid", "{:.4f}"), ("precision", "precision", "{:.3f}"),
           ("recall", "recall", "{:.3f}"), ("class entropy", "class_entropy_bits", "{:.2f}"),
           ("rarest class", "rarest_class_share", "{:.3f}"), ("confident", "confidence", "{:.3f}"),
           ("nearest-train ratio", "nearest_train_ratio", "{:.3f}")]
print(f"| set (n = {n:,}) | " + " | ".join(label for label, _, _ in columns) + " |")
print("|" + " --- |" * (len(columns) + 1))
for name, row in rows.items():
    print(f"| {name} | " + " | ".join(fmt.format(row[key]) for _, key, fmt in columns) + " |")
timed = [row["seconds"] for row in rows.values() if "seconds" in row]
print(f"\nevaluation time per set: median {np.median(timed):.1f} s (the real side cached after the first)")
