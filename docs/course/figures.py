"""Makes the course's figures (docs/course/figures/*.png).

    python docs/course/figures.py                     # the figures that need no trained run (seconds)
    python docs/course/figures.py --runs RUNS_DIR     # also those drawn from trained runs

RUNS_DIR holds the runs the course quotes, made with the commands in
docs/course/README.md ("Remaking the figures"): dcgan-short, upsample-short,
mlp-normal-init, mlp-glorot, mlp-30, dcgan-5 and conditional-mlp.
"""
import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tinygan as tg  # noqa: E402
from tinygan.compare import log_y_axis  # noqa: E402
from tinygan.kernels import reference  # noqa: E402

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parents[1]
DPI = 80


def save(figure, out, name):
    figure.savefig(out / name, dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    print(f"wrote {out / name}")


def diagram(ax, nodes, edges, title=None):
    """Boxes at (x, y) with labels; arrows (a, b, label, colour) from box to box, red ones curved below."""
    boxes = {name: ax.text(x, y, text, ha="center", va="center", fontsize=9,
                           bbox=dict(boxstyle="round,pad=0.4", facecolor="#eef3fb", edgecolor="#4a6fa5"))
             for name, (x, y, text) in nodes.items()}
    for a, b, label, colour in edges:
        (xa, ya, _), (xb, yb, _) = nodes[a], nodes[b]
        back = colour != "black"
        ax.annotate("", xy=(xb, yb), xytext=(xa, ya),
                    arrowprops=dict(arrowstyle="->", color=colour, lw=1.5, shrinkA=3, shrinkB=3,
                                    patchA=boxes[a].get_bbox_patch(), patchB=boxes[b].get_bbox_patch(),
                                    connectionstyle="arc3,rad=0.35" if back else "arc3"))
        if label:
            ax.text((xa + xb) / 2, (ya + yb) / 2 + (0.34 if back else -0.2), label,
                    ha="center", fontsize=8, color=colour)
    ax.set_xlim(min(x for x, _, _ in nodes.values()) - 0.5, max(x for x, _, _ in nodes.values()) + 0.5)
    ax.set_ylim(min(y for _, y, _ in nodes.values()) - 0.45, max(y for _, y, _ in nodes.values()) + 0.5)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)


def layer_chain(out):
    figure, ax = plt.subplots(figsize=(10, 2.2))
    nodes = {"x": (0, 0, "x"), "d1": (1.6, 0, "Dense\nkeeps x"), "a": (3.2, 0, "LeakyReLU\nkeeps its x"),
             "d2": (4.8, 0, "Dense\nkeeps h"), "loss": (6.6, 0, "BCEWithLogits\nkeeps logits")}
    edges = [("x", "d1", "", "black"), ("d1", "a", "", "black"), ("a", "d2", "h", "black"),
             ("d2", "loss", "logits", "black"),
             ("loss", "d2", "dL/dlogits", "#b03a2e"), ("d2", "a", "dL/dh", "#b03a2e"),
             ("a", "d1", "", "#b03a2e"), ("d1", "x", "dL/dx", "#b03a2e")]
    diagram(ax, nodes, edges, "forward (black) keeps one cache per layer; backward (red) walks back, "
                              "each layer adding into its grads")
    save(figure, out, "01_layer_chain.png")


def central_differences(out):
    """Error of the central difference quotient against the step, in float32 and float64."""
    steps = np.logspace(-12, -1, 45)
    figure, ax = plt.subplots(figsize=(5.5, 3.4))
    for dtype, colour in ((np.float32, "#b03a2e"), (np.float64, "#1f4e79")):
        x = dtype(0.7)
        errors = []
        for eps in steps:
            e = dtype(eps)
            numeric = (np.tanh(x + e) - np.tanh(x - e)) / (2 * e) if e > 0 else np.nan
            errors.append(abs(float(numeric) - (1 - np.tanh(0.7) ** 2)))
        ax.loglog(steps, np.maximum(errors, 1e-17), label=np.dtype(dtype).name, color=colour)
    ax.axvline(1e-6, color="gray", ls=":", lw=1)
    ax.text(1.3e-6, 1e-15, "gradcheck's eps", fontsize=8, color="gray")
    ax.set_xlabel("step eps")
    ax.set_ylabel("|numeric - exact| of d tanh(x)/dx")
    ax.set_title("rounding (left) against truncation (right)", fontsize=10)
    ax.legend()
    save(figure, out, "02_central_differences.png")


def im2col_layout(out):
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    columns = reference.im2col(x, (3, 3), (1, 1), (0, 0)).reshape(9, 4)
    figure, (left, right) = plt.subplots(1, 2, figsize=(7, 3.3), gridspec_kw={"width_ratios": [4, 4]})
    left.imshow(x[0, 0], cmap="Blues", vmin=-4, vmax=20)
    for (i, j), value in np.ndenumerate(x[0, 0]):
        left.text(j, i, int(value), ha="center", va="center")
    left.add_patch(plt.Rectangle((-0.45, -0.45), 2.9, 2.9, fill=False, ec="#b03a2e", lw=2))
    left.set_title("4x4 image; the first 3x3 patch", fontsize=10)
    right.imshow(columns, cmap="Blues", vmin=-4, vmax=20, aspect="auto")
    for (i, j), value in np.ndenumerate(columns):
        right.text(j, i, int(value), ha="center", va="center", fontsize=8)
    right.add_patch(plt.Rectangle((-0.45, -0.45), 0.9, 8.9, fill=False, ec="#b03a2e", lw=2))
    right.set_title("im2col: a column per output pixel,\na row per kernel offset", fontsize=10)
    right.set_xlabel("output pixel")
    right.set_ylabel("kernel offset (kh, kw)")
    for ax in (left, right):
        ax.set_xticks([])
        ax.set_yticks([])
    save(figure, out, "03_im2col.png")


def scatter_overlap(out):
    """How much of the kernel lands on each output pixel, for a flat input (1 = the average)."""
    flat = np.ones((1, 1, 8, 8))
    with tg.backend.default_dtype(np.float64):
        layers = [("transposed 3x3, stride 2", tg.ConvTranspose2D(1, 1, 3, 2, 1, output_padding=1, bias=False)),
                  ("transposed 4x4, stride 2", tg.ConvTranspose2D(1, 1, 4, 2, 1, bias=False)),
                  ("transposed 5x5, stride 2 (dcgan)", tg.ConvTranspose2D(1, 1, 5, 2, 2, output_padding=1,
                                                                           bias=False)),
                  ("upsample 2x + 5x5 convolution", tg.Sequential([tg.UpSample2D(2),
                                                                    tg.Conv2D(1, 1, 5, padding=2, bias=False)]))]
    figure, axes = plt.subplots(1, 4, figsize=(11, 3))
    for ax, (title, layer) in zip(axes, layers):
        for weights in (layer[1] if isinstance(layer, tg.Sequential) else layer).params.values():
            weights[...] = 1.0
        counts = layer.forward(flat)[0, 0][3:-3, 3:-3]     # the interior, away from the borders
        ax.imshow(counts / counts.mean(), cmap="magma", vmin=0, vmax=1.8)
        ax.set_title(f"{title}\nmost / least covered pixel: {counts.max() / counts.min():.2f}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    save(figure, out, "04_scatter_overlap.png")


def batchnorm_graph(out):
    figure, ax = plt.subplots(figsize=(11, 2.8))
    nodes = {"x": (0, 0, "x"), "mu": (1.5, 0.75, "mu = mean(x)"), "xc": (3.0, 0, "xc = x - mu"),
             "var": (4.6, 0.75, "var = mean(xc^2)"), "s": (6.6, 0.75, "r = (var + eps)^(-1/2)"),
             "xh": (6.6, -0.6, "x_hat = xc r"), "y": (8.6, -0.6, "y = gamma x_hat + beta")}
    edges = [("x", "mu", "", "black"), ("x", "xc", "", "black"), ("mu", "xc", "", "black"),
             ("xc", "var", "", "black"), ("var", "s", "", "black"), ("s", "xh", "", "black"),
             ("xc", "xh", "", "black"), ("xh", "y", "", "black")]
    diagram(ax, nodes, edges, "BatchNorm's graph: x reaches x_hat three ways (directly, through mu, "
                              "through var), so dL/dx has three terms")
    save(figure, out, "05_batchnorm_graph.png")


def bce_naive_and_stable(out):
    logits = np.linspace(-120, 120, 481).astype(np.float32)
    with np.errstate(all="ignore"):
        s = 1 / (1 + np.exp(-logits))
        naive = -np.log(s)                                    # target 1
        naive_gradient = -(1 - s) / s * s                     # d/dx of -log s(x), through the rounded s
    loss = tg.BCEWithLogits()
    stable = np.array([loss.forward(np.array([v], dtype=np.float32), 1.0) for v in logits])
    stable_gradient = np.array([(loss.forward(np.array([v], dtype=np.float32), 1.0), loss.backward()[0])[1]
                                for v in logits])
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.plot(logits, stable, color="#1f4e79", lw=3, label="softplus form")
    left.plot(logits, np.where(np.isfinite(naive), naive, np.nan), color="#b03a2e", ls="--", label="-log sigmoid(x)")
    left.set_title("loss for target 1 (float32): the naive form\nis inf below x = -88", fontsize=9)
    left.set_xlabel("logit x")
    right.plot(logits, stable_gradient, color="#1f4e79", lw=3, label="sigmoid(x) - 1")
    right.plot(logits, np.where(np.isfinite(naive_gradient), naive_gradient, np.nan), color="#b03a2e", ls="--",
               label="through log(sigmoid)")
    right.set_title("its gradient: NaN for the naive form where the\nloss is largest; the stable one is -1 there", fontsize=9)
    for ax in (left, right):
        ax.axvspan(-120, -88.7, color="#b03a2e", alpha=0.12, label="naive form: inf / NaN")
    right.set_xlabel("logit x")
    right.legend(fontsize=8)
    left.legend(fontsize=8)
    save(figure, out, "06_bce.png")


def optimizer_paths(out):
    """SGD, momentum and Adam on the ill-conditioned bowl f(a, b) = (a^2 + 25 b^2) / 2."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    a, b = np.meshgrid(np.linspace(-4.5, 1.2, 200), np.linspace(-1.6, 1.6, 200))
    runs = [[("SGD lr 0.07", lambda p: tg.SGD(p, lr=0.07), "#b03a2e"),
             ("SGD + momentum 0.9, lr 0.01", lambda p: tg.SGD(p, lr=0.01, momentum=0.9), "#7d3c98")],
            [("Adam lr 0.3, betas (0.9, 0.999)", lambda p: tg.Adam(p, lr=0.3, betas=(0.9, 0.999)), "#1f4e79"),
             ("Adam lr 0.3, betas (0.5, 0.999)", lambda p: tg.Adam(p, lr=0.3, betas=(0.5, 0.999)), "#229954")]]
    for ax, panel in zip(axes, runs):
        ax.contour(a, b, (a ** 2 + 25 * b ** 2) / 2, levels=12, colors="#cccccc", linewidths=0.7)
        for label, make, colour in panel:
            with tg.backend.default_dtype(np.float64):
                model = tg.Sequential([tg.Dense(1, 2, bias=False)])   # W is the point (a, b)
            point = model[0]
            point.params["W"][...] = [[-4.0, 1.2]]
            optimizer = make(model.parameters())
            path = [point.params["W"][0].copy()]
            for _ in range(30):
                optimizer.zero_grad()
                w = point.params["W"][0]
                point.grads["W"] += [[w[0], 25 * w[1]]]
                optimizer.step()
                path.append(point.params["W"][0].copy())
            path = np.array(path)
            ax.plot(path[:, 0], path[:, 1], "o-", ms=2.5, lw=1.2, color=colour,
                    label=f"{label}: ends at ({path[-1, 0]:.2f}, {path[-1, 1]:.2f})")
        ax.plot([0], [0], "k*", ms=8)
        ax.legend(fontsize=7, loc="lower right")
    figure.suptitle("30 steps from (-4, 1.2) on (a^2 + 25 b^2) / 2; the minimum is the star", fontsize=10)
    save(figure, out, "07_optimizers.png")


def gradient_flow(out):
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 4.4))
    nodes = {"real": (0, 0, "real x"), "z": (0, -0.9, "z"), "G": (1.8, -0.9, "G"),
             "D": (3.8, -0.45, "D"), "loss": (6.2, -0.45, "BCE: real -> 1, fake -> 0")}
    diagram(top, nodes, [("real", "D", "", "black"), ("z", "G", "", "black"), ("G", "D", "fake", "black"),
                         ("D", "loss", "", "black"), ("loss", "D", "grads of D", "#b03a2e")],
            "D step: gradients reach D's parameters only (input_grad=False: nothing flows into x or G)")
    nodes = {"z": (0, 0, "z"), "G": (1.8, 0, "G"), "D": (3.8, 0, "D\n(requires_grad off)"),
             "loss": (6.2, 0, "BCE: fake -> 1")}
    diagram(bottom, nodes, [("z", "G", "", "black"), ("G", "D", "fake", "black"), ("D", "loss", "", "black"),
                            ("loss", "D", "", "#b03a2e"), ("D", "G", "dL/dfake", "#b03a2e")],
            "G step: the gradient passes through D, unchanged D, into G's parameters")
    save(figure, out, "08_gradient_flow.png")


# ---------------------------------------------------------------- figures from trained runs

def read_metrics(run):
    with open(run / "metrics.csv") as file:
        return list(csv.DictReader(file))


def last_grid(run):
    return plt.imread(sorted((run / "samples").glob("epoch_*.png"))[-1])


def checkerboard_strength(pictures):
    """The fixed 2x2 pattern of a set of uint8 (n, 28, 28) images: the mean image's (pi, pi) frequency,
    |x00 - x01 - x10 + x11| per 2x2 tile, averaged over the tiles (grey levels)."""
    mean = pictures.astype(np.float64).mean(axis=0)
    return float(np.abs(mean[0::2, 0::2] - mean[0::2, 1::2] - mean[1::2, 0::2] + mean[1::2, 1::2]).mean())


def generated_pair(out, runs):
    from tinygan import data
    from tinygan.trainer import load_generator
    figure, axes = plt.subplots(1, 2, figsize=(8, 4.5))
    for ax, (name, title) in zip(axes, (("dcgan-short", "dcgan: strided 5x5 transposed convolutions"),
                                        ("upsample-short", "dcgan-upsample: upsample + 5x5 convolution"))):
        gan, config, _ = load_generator(runs / name)
        pictures = data.to_uint8(gan.generate(gan.sample_noise(2000, np.random.default_rng(0))))
        real = data.to_uint8(data.load("mnist", config["data_dir"]).test_images[:2000])
        strength = (checkerboard_strength(pictures), checkerboard_strength(real))
        print(f"{name}: 2x2 pattern {strength[0]:.2f} grey levels (real test images {strength[1]:.2f})")
        ax.imshow(last_grid(runs / name), cmap="gray")
        ax.set_title(f"{title}\n2 epochs on 12,800 images; fixed 2x2 pattern {strength[0]:.1f}\n"
                     f"grey levels over 2,000 samples (real digits: {strength[1]:.1f})", fontsize=9)
        ax.axis("off")
    save(figure, out, "04_generated.png")


def mode_collapse(out, runs):
    figure, axes = plt.subplots(1, 4, figsize=(15, 4), gridspec_kw={"width_ratios": [1, 1, 0.9, 0.9]})
    for ax, (name, title) in zip(axes, (("mlp-normal-init", "mlp, weights from normal(0, 0.02)"),
                                        ("mlp-glorot", "mlp, Glorot uniform (the default)"))):
        ax.imshow(last_grid(runs / name), cmap="gray")
        ax.set_title(f"{title}, epoch 3", fontsize=9)
        ax.axis("off")
    for name, colour in (("mlp-normal-init", "#b03a2e"), ("mlp-glorot", "#1f4e79")):
        rows = read_metrics(runs / name)
        epochs = [int(row["epoch"]) for row in rows]
        for ax, key in ((axes[2], "class_entropy_bits"), (axes[3], "precision")):
            ax.plot(epochs, [float(row[key]) for row in rows], "o-", color=colour, label=name)
    axes[2].axhline(3.32, color="gray", ls=":", lw=1)
    axes[2].set_title("class entropy, bits (3.32: ten even classes)", fontsize=9)
    axes[3].set_title("precision (recall stays below 0.01 for both)", fontsize=9)
    for ax in axes[2:]:
        ax.set_xlabel("epoch")
        ax.set_xticks(epochs)
        ax.legend(fontsize=8)
    save(figure, out, "08_mode_collapse.png")


def accuracy_against_fid(out, runs):
    rows = read_metrics(runs / "mlp-30")
    epochs = [int(row["epoch"]) for row in rows]
    figure, left = plt.subplots(figsize=(7, 3.3))
    left.plot(epochs, [float(row["d_accuracy_real"]) for row in rows], color="#b03a2e", label="D accuracy, real")
    left.plot(epochs, [float(row["d_accuracy_fake"]) for row in rows], color="#e59866", label="D accuracy, fake")
    left.set_ylim(0, 1.05)
    left.set_xlabel("epoch")
    left.set_ylabel("D accuracy")
    right = left.twinx()
    measured = [(int(row["epoch"]), float(row["fid"])) for row in rows if row["fid"]]
    right.plot(*zip(*measured), "o-", color="#1f4e79", label="FID (right axis)")
    log_y_axis(right)
    right.set_ylabel("FID, 2,000 samples")
    handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    left.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="lower left")
    left.set_title("mlp, 30 epochs: D's accuracy swings while FID falls from 72 to 18", fontsize=10)
    save(figure, out, "09_accuracy_against_fid.png")


def latent_walk(out, runs):
    subprocess.run([sys.executable, str(REPOSITORY / "examples" / "latent_walk.py"), str(runs / "dcgan-5"),
                    "--out", str(out / "08_latent_walk.png")], check=True)


def conditional_grid(out, runs):
    figure, ax = plt.subplots(figsize=(3.6, 4.4))
    ax.imshow(last_grid(runs / "conditional-mlp"), cmap="gray")
    ax.set_title("conditional mlp, epoch 20: row r asks for digit r", fontsize=9)
    ax.axis("off")
    save(figure, out, "08_conditional_grid.png")


def where_time_goes(out):
    results = json.loads((REPOSITORY / "docs" / "benchmark-cpu.json").read_text())
    layers = [row for row in results["layers"] if row["arch"] == "dcgan"]
    names = [row["layer"].split(" ")[0] for row in layers]
    ours = [1e3 * (row["forward"]["median"] + row["backward"]["median"]) for row in layers]
    theirs = [1e3 * (row["torch_forward"]["median"] + row["torch_backward"]["median"]) for row in layers]
    figure, ax = plt.subplots(figsize=(9, 3.2))
    at = np.arange(len(names))
    ax.bar(at - 0.2, ours, 0.4, label="tinygan", color="#1f4e79")
    ax.bar(at + 0.2, theirs, 0.4, label="PyTorch", color="#e59866")
    ax.set_xticks(at, names, rotation=60, fontsize=8)
    ax.set_ylabel("forward + backward, ms")
    ax.set_title("dcgan at batch 64, per layer (docs/benchmark-cpu.json): the large convolutions are the step",
                 fontsize=9)
    ax.legend()
    save(figure, out, "10_where_time_goes.png")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, help="directory of the trained runs the course quotes")
    parser.add_argument("--out", type=Path, default=HERE / "figures")
    options = parser.parse_args()
    options.out.mkdir(parents=True, exist_ok=True)
    tg.backend.seed(0)
    for make in (layer_chain, central_differences, im2col_layout, scatter_overlap, batchnorm_graph,
                 bce_naive_and_stable, optimizer_paths, gradient_flow, where_time_goes):
        make(options.out)
    if options.runs:
        for make in (generated_pair, mode_collapse, accuracy_against_fid, latent_walk, conditional_grid):
            make(options.out, options.runs)


if __name__ == "__main__":
    main()
