"""What a run leaves to look at: sample grids, the animated progress, the loss curves."""
import math

import numpy as np


def grid(images, columns=None, padding=2):
    """uint8 (n, H, W) grey or (n, H, W, C) colour -> one uint8 image of the n tiles in rows of ``columns``,
    on a black background."""
    n, H, W = images.shape[:3]
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    canvas = np.zeros((rows * (H + padding) + padding, columns * (W + padding) + padding, *images.shape[3:]),
                      dtype=np.uint8)
    for index, image in enumerate(images):
        top, left = padding + (index // columns) * (H + padding), padding + (index % columns) * (W + padding)
        canvas[top:top + H, left:left + W] = image
    return canvas


def save_png(image, target):
    """Write a uint8 image, grey (H, W) or colour (H, W, 3), as PNG to a path or a binary stream."""
    from PIL import Image
    Image.fromarray(image).save(target, format="PNG")


def save_gif(png_paths, target, milliseconds_per_frame=400):
    """The per-epoch grids as one looping animation, the last frame held longer."""
    from PIL import Image
    save_animation([Image.open(p) for p in png_paths], target, milliseconds_per_frame)


def save_animation(frames, target, milliseconds_per_frame=400):
    """Frames (PIL images, or uint8 arrays as grid makes them) as a looping GIF, the last frame held five times
    as long."""
    from PIL import Image
    frames = [frame if isinstance(frame, Image.Image) else Image.fromarray(frame) for frame in frames]
    # GIF frames hold 256 colours: grey images fit exactly; colour ones get a palette fitted to each frame
    frames = [frame.quantize(256) if frame.mode == "RGB" else frame.convert("P") for frame in frames]
    durations = [milliseconds_per_frame] * (len(frames) - 1) + [milliseconds_per_frame * 5]
    frames[0].save(target, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)


def plot_losses(step_losses, steps_per_epoch, target):
    """D and G loss per training step (faint) and their moving average, epochs marked on the x axis."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = np.asarray(step_losses, dtype=np.float64).reshape(-1, 2)
    epochs = np.arange(1, len(losses) + 1) / max(steps_per_epoch, 1)
    window = max(1, min(len(losses) // 20, steps_per_epoch))
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    for column, (label, colour) in enumerate((("D loss", "tab:blue"), ("G loss", "tab:orange"))):
        values = losses[:, column]
        axes.plot(epochs, values, color=colour, alpha=0.2, linewidth=0.8)
        if len(values) >= window:
            smooth = np.convolve(values, np.ones(window) / window, mode="valid")
            axes.plot(epochs[window - 1:], smooth, color=colour, label=f"{label} (mean of {window} steps)")
    axes.set_xlabel("epoch")
    axes.set_ylabel("binary cross-entropy")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(target, format="png")
    plt.close(figure)


def plot_quality(rows, target):
    """FID, precision and recall, and class entropy against the epoch, for the measured epochs."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [row for row in rows if row.get("fid") is not None]
    epochs = [row["epoch"] for row in measured]
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.8), dpi=100)
    panels = ((axes[0], (("fid", "FID", "tab:red"),), "FID (lower is better)"),
              (axes[1], (("precision", "precision", "tab:blue"), ("recall", "recall", "tab:green")),
               "precision, recall (higher is better)"),
              (axes[2], (("class_entropy_bits", "class entropy (bits)", "tab:purple"),), "class entropy, bits"))
    for axis, series, title in panels:
        for key, label, colour in series:
            axis.plot(epochs, [row[key] for row in measured], marker="o", color=colour, label=label)
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    axes[1].set_ylim(-0.02, 1.02)
    axes[1].legend()
    axes[2].axhline(np.log2(10), color="grey", linestyle="--", linewidth=0.8, label="ten even classes")
    axes[2].legend()
    figure.tight_layout()
    figure.savefig(target, format="png")
    plt.close(figure)
