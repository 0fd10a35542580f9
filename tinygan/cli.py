"""The command line: ``python -m tinygan train | sample | eval | compare | classifier | info``.

Every mistake a user can make (a bad option, a missing file, no GPU) ends in
one line on stderr and a non-zero exit status, never in a traceback.
"""
from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import click
import numpy as np

from . import (__version__, backend, classifier, compare, data, evaluation, exercises, images, kernels, latent,
               metrics, models, study, threads)
from . import probe as probe_module
from .kernels.stacked_matmul import describe as describe_stacked_products
from .files import DirectoryInUse, write_atomically
from .gan import NOISE_KINDS
from .trainer import (DEFAULT_EMA, DEFAULT_LR, DEFAULT_STEPS, EVAL_SAMPLES, Trainer, TrainingStopped,
                      default_eval_every, library_versions, load_config, load_generator, write_text_atomically)

# Errors that a user's input causes; anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, data.DataError, backend.BackendError, classifier.ClassifierError, DirectoryInUse,
               FileNotFoundError, FileExistsError, NotADirectoryError)
# Raised by click >= 8.2 for a bare `python -m tinygan`.
NO_ARGUMENTS = getattr(click.exceptions, "NoArgsIsHelpError", ())
# What --resume may change: where the data is and how the run is watched, and how long it goes on.
RESUMABLE = {"resume", "epochs", "device", "quiet", "data_dir", "eval_every", "cuda_graph"}


def own_steps(name: str) -> str:
    """The networks whose `name` ("lr_g" or "lr_d") has its own default, said for --help from DEFAULT_STEPS:
    "1e-4 for mlp-deep and mlp-001-deep"."""
    networks = {}
    for arch, steps in DEFAULT_STEPS.items():
        if name in steps:
            networks.setdefault(steps[name], []).append(arch)
    return ", ".join(f"{step:.0e}".replace("e-0", "e-") + " for " + " and ".join(archs)
                     for step, archs in networks.items())


class FiniteFloat(click.FloatRange):
    """click's FloatRange, refusing NaN and infinity too (float() reads "nan" and "inf" without complaint,
    and NaN passes every range check, as each comparison with it is false)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


SEED = click.IntRange(min=0, max=2**63 - 1)
MEMORY_LIMIT = 8 * 2**30   # bytes a setting may ask for before it is refused as a likely typo


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tinygan")
def cli():
    """tinygan: GANs on MNIST with a from-scratch engine (NumPy/Numba on CPU, CuPy on GPU)."""


@cli.command()
@click.option("--arch", type=click.Choice(models.ARCHITECTURES), default="dcgan", show_default=True,
              help="Architecture of the reports.")
@click.option("--device", type=click.Choice(backend.DEVICES), default="cpu", show_default=True)
@click.option("--cuda-graph/--no-cuda-graph", default=False, show_default=True,
              help="On the GPU, capture the training step once as a CUDA graph and replay it: one launch a step "
                   "instead of hundreds, the same results to rounding. Poisson noise up to --poisson-rate 500.")
@click.option("--epochs", type=click.IntRange(min=1), default=20, show_default=True, help="Total epochs.")
@click.option("--batch-size", type=click.IntRange(min=2), default=64, show_default=True, help="Images per step.")
@click.option("--lr", type=FiniteFloat(min=0, min_open=True), default=DEFAULT_LR, show_default=True,
              help="Adam learning rate of both networks (the reports used 2e-4; docs/defaults.md says why not).")
@click.option("--lr-d", type=FiniteFloat(min=0, min_open=True), default=None,
              help="Discriminator's learning rate, if not --lr (two time-scale rule) [default: --lr; "
                   f"{own_steps('lr_d')}, unless --lr is given].")
@click.option("--lr-g", type=FiniteFloat(min=0, min_open=True), default=None,
              help=f"Generator's learning rate, if not --lr [default: --lr; {own_steps('lr_g')}, unless --lr "
                   "is given].")
@click.option("--ema", type=FiniteFloat(0, 1, max_open=True), default=DEFAULT_EMA, show_default=True,
              help="Decay of the generator's weight average that samples and eval use (warmed up over the "
                   "first steps; 0: off).")
@click.option("--beta1", type=FiniteFloat(0, 1, max_open=True), default=0.5, show_default=True)
@click.option("--beta2", type=FiniteFloat(0, 1, max_open=True), default=0.999, show_default=True)
@click.option("--z-dim", type=click.IntRange(min=1), default=100, show_default=True, help="Size of the noise.")
@click.option("--noise", type=click.Choice(NOISE_KINDS), default="normal", show_default=True,
              help="Distribution of the noise: N(0, 1), U(-1, 1), or Poisson counts centred and scaled to "
                   "mean 0 and variance 1.")
@click.option("--poisson-rate", type=FiniteFloat(min=0, min_open=True), default=1.0, show_default=True,
              help="Rate of the Poisson noise.")
@click.option("--raw-noise", "standardize_noise", flag_value=False, default=True,
              help="Poisson noise as raw counts, not centred and scaled.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Fixes weights, noise, dropout, shuffling.")
@click.option("--dataset", type=click.Choice(list(data.DATASETS)), default="mnist", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Directory with the dataset's files (else $TINYGAN_DATA, else the cache, else download).")
@click.option("--pixel-range", type=click.Choice(list(data.PIXEL_RANGES)), default="-1,1", show_default=True,
              help="Scale pixels to [-1, 1] or [0, 1].")
@click.option("--conditional", is_flag=True,
              help="Both networks also see the digit's class (one-hot); `sample --digit 7` then asks for a 7.")
@click.option("--no-bn-affine", "generator_bn_affine", flag_value=False, default=True,
              help="BatchNorm in the generator without its scale and bias (report 003's finding).")
@click.option("--output", type=click.Choice(list(models.OUTPUTS)), default=None,
              help="The generator's last activation [default: tanh for pixels in [-1, 1], sigmoid for [0, 1]].")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Train on the first N images only (quick runs).")
@click.option("--kernel-size", type=click.IntRange(min=1, max=27), default=5, show_default=True,
              help="Convolution kernel size of the DCGANs (odd).")
@click.option("--depth", type=click.IntRange(min=0, max=64), default=None,
              help="Extra hidden layers per network (default: 2 for mlp-deep, else 0).")
@click.option("--init", type=click.Choice(list(models.INITS)), default=None,
              help="Weights: normal(0, 0.02) or Glorot uniform [default: normal for the DCGANs, glorot for the MLPs].")
@click.option("--label-smoothing", type=FiniteFloat(0, 1, max_open=True), default=0.0, show_default=True,
              help="One-sided: D's target for real images is 1 - this.")
@click.option("--label-flip", type=FiniteFloat(0, 1, max_open=True), default=0.0, show_default=True,
              help="Noisy labels: probability of swapping each of D's targets.")
@click.option("--d-steps", type=click.IntRange(min=1), default=1, show_default=True,
              help="Discriminator updates per generator update.")
@click.option("--eval-images", type=click.IntRange(min=1), default=None,
              help="Test images (and as many generated ones) for D's accuracy each epoch "
                   "[default: all 10,000, at most the training images used].")
@click.option("--eval-every", type=click.IntRange(min=0), default=None,
              help="Measure FID, KID, precision, recall and classes every N epochs and at the last; 0: never "
                   "[default: 1 for the DCGANs, 5 for the MLPs].")
@click.option("--eval-samples", type=click.IntRange(min=evaluation.MIN_IMAGES), default=EVAL_SAMPLES,
              show_default=True, help="Generated images per measurement (compare FIDs only at equal numbers; "
                                      "fewer than 1,000 only check that the pipeline runs).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run directory [default: runs/<arch>-<date>-<time>].")
@click.option("--resume", type=click.Path(file_okay=False), default=None,
              help="Continue the run in this directory (give --epochs for the new total).")
@click.option("--quiet", is_flag=True, help="No progress bar and no per-epoch lines.")
@click.pass_context
def train(context, **options):
    """Train a GAN and write samples, metrics, plots and checkpoints to a run directory."""
    if options["resume"]:
        run_dir = Path(options["resume"])
        given = {name for name in options
                 if context.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE}
        fixed = sorted(given - RESUMABLE)
        if fixed:
            names = ", ".join("--" + name.replace("_", "-") for name in fixed)
            raise click.UsageError(f"{names} cannot change when resuming: {run_dir}/config.json fixes them "
                                   f"(only --epochs, --device, --cuda-graph, --data-dir, --eval-every and --quiet can)")
        config = load_config(run_dir)
        config.pop("versions", None)
        config.update({name: options[name] for name in given & RESUMABLE if name != "resume"})
        config["out"] = str(run_dir)
        trainer = Trainer(config, resume=True, log=click.echo)
    else:
        options.pop("resume")
        options["depth"] = models.default_depth(options["arch"]) if options["depth"] is None else options["depth"]
        options["init"] = options["init"] or models.default_init(options["arch"])
        options["output"] = options["output"] or models.default_output(options["pixel_range"])
        if context.get_parameter_source("lr") == click.core.ParameterSource.DEFAULT:
            for name, step in DEFAULT_STEPS.get(options["arch"], {}).items():
                if options[name] is None:
                    options[name] = step
        if options["noise"] != "poisson":
            for name, default in (("poisson_rate", 1.0), ("standardize_noise", True)):
                if options[name] != default:
                    flag = "--raw-noise" if name == "standardize_noise" else "--poisson-rate"
                    raise click.BadParameter(f"{flag} only applies to --noise poisson", param_hint=f"'{flag}'")
        needed = models.first_layer_bytes(options["arch"], options["z_dim"])
        if needed > MEMORY_LIMIT:
            raise click.BadParameter(f"{options['z_dim']} would need {needed / 2**30:,.0f} GiB for the generator's "
                                     f"first layer alone (weights, gradients and Adam's two moments in float32); "
                                     f"the reports use 100", param_hint="'--z-dim'")
        problem = models.shape_problem(options["arch"], data.image_shape(options["dataset"]))
        if problem:
            raise click.BadParameter(f"{problem} ({options['dataset']})", param_hint="'--arch'")
        if options["eval_every"] is None:
            options["eval_every"] = default_eval_every(options["arch"], options["dataset"])
            if not options["eval_every"] and not options["quiet"]:
                click.echo(f"quality is not measured: {options['dataset']} has no classifier yet (make one with "
                           f"`python -m tinygan classifier --dataset {options['dataset']}`)")
        warning = evaluation.few_images_warning(options["eval_samples"]) if options["eval_every"] else None
        if warning:
            click.echo(warning, err=True)
        if options["out"] is None:
            options["out"] = str(Path("runs") / f"{options['arch']}-{time.strftime('%Y%m%d-%H%M%S')}")
        trainer = Trainer(options, log=click.echo)
        if not options["quiet"]:
            click.echo(f"training {options['arch']} on {options['dataset']} ({len(trainer.train_images)} images) "
                       f"on the {options['device']}; writing to {options['out']}")
    trainer.train()
    if not trainer.config["quiet"]:
        click.echo(f"done: samples, metrics.csv, losses.png, progress.gif and {trainer.run_dir}/checkpoint.npz")


def generated_images(gan, config, n, digits=None, chunk=5000):
    """Yield uint8 pieces (<= chunk, H, W), or (<= chunk, H, W, 3) for colour, of n generated images, 0 black:
    memory stays flat in n.

    A conditional run draws the ``digits`` in turn (default: 0 to 9 in turn)."""
    digits = digits or list(range(10))
    for start in range(0, n, chunk):
        count = min(chunk, n - start)
        labels = None
        if gan.conditional:
            labels = backend.to_device(np.asarray(digits)[np.arange(start, start + count) % len(digits)])
        pictures = gan.generate(gan.sample_noise(count), labels=labels)
        yield data.to_uint8(backend.as_numpy(pictures), config["pixel_range"])


def nearest_neighbour_test(gan, config, dataset, n):
    """Report 003's test: 1-NN test errors with n generated labelled images and with n real training images."""
    labels = np.arange(n) % 10
    generated = evaluation.as_model_images(np.concatenate(list(generated_images(gan, config, n))),
                                           shape=data.image_shape(config["dataset"]))
    real_test, real_labels = dataset.test_images.reshape(len(dataset.test_images), -1), dataset.test_labels
    predicted = metrics.nearest_neighbour_labels(real_test, generated.reshape(n, -1), labels)
    count = min(n, len(dataset.train_images))
    baseline = metrics.nearest_neighbour_labels(real_test, dataset.train_images[:count], dataset.train_labels[:count])
    return {"nn_samples": n, "nn_error_generated": float((predicted != real_labels).mean()),
            "nn_error_real": float((baseline != real_labels).mean())}


def parse_digits(text):
    """'7' or '0,3,7' -> [7] or [0, 3, 7]; None stays None."""
    if text is None:
        return None
    try:
        digits = [int(part) for part in text.split(",")]
    except ValueError:
        digits = [-1]
    if not all(0 <= digit <= 9 for digit in digits):
        raise click.BadParameter(f"{text!r} is not a digit or a comma-separated list of digits 0-9",
                                 param_hint="'--digit'")
    return digits


WHICH = click.option("--which", type=click.Choice(["last", "best", "trained"]), default="last", show_default=True,
                     help="The last epoch's generator (its weight average when trained with --ema), the best-FID "
                          "one (runs trained with --eval-every), or the last epoch's trained weights without "
                          "the average.")


@cli.command()
@click.option("--checkpoint", "run_dir", type=click.Path(file_okay=False), required=True,
              help="A run directory written by `train`.")
@click.option("--n", type=click.IntRange(min=1), default=64, show_default=True, help="How many images.")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="FILE.npy: uint8 (n, 28, 28) for MNIST, (n, 32, 32, 3) for CIFAR-10, 0 black, 255 white; "
                   "FILE.png: a grid.")
@click.option("--device", type=click.Choice(backend.DEVICES), default="cpu", show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--digit", default=None, help="A conditional run's digit to draw, or several (0,3,7), in turn.")
@WHICH
def sample(run_dir, n, out, device, seed, which, digit):
    """Generate images from a trained run's checkpoint."""
    out = Path(out)
    if out.suffix not in (".npy", ".png"):
        raise click.UsageError(f"--out must end in .npy or .png, got {out.name}")
    digits = parse_digits(digit)
    backend.use_device(device)
    backend.seed(seed)
    gan, config, epoch = load_generator(Path(run_dir), which)
    if digits and not gan.conditional:
        raise click.UsageError(f"{run_dir} is not a conditional run, so it cannot be asked for digits: train one "
                               f"with --conditional")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        # the .npy header, then each chunk's bytes as it is made: memory stays flat however large n is
        def write(stream):
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
                      "shape": (n, *data.uint8_shape(data.image_shape(config["dataset"])))}
            np.lib.format.write_array_header_1_0(stream, header)
            for chunk in generated_images(gan, config, n, digits):
                stream.write(np.ascontiguousarray(chunk).tobytes())
        write_atomically(out, write)
    else:
        images.save_png(images.grid(np.concatenate(list(generated_images(gan, config, n, digits)))), out)
    click.echo(f"wrote {n} images from epoch {epoch} ({which}) of {run_dir} to {out}")


@cli.command("interpolate")
@click.option("--checkpoint", "run_dir", type=click.Path(file_okay=False), required=True,
              help="A run directory written by `train`.")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="FILE.png: a row per path, straight then spherical for each pair; FILE.gif: the walk animated.")
@click.option("--steps", type=click.IntRange(min=2, max=100), default=10, show_default=True,
              help="Images along each path, end points included.")
@click.option("--rows", type=click.IntRange(min=1, max=32), default=4, show_default=True,
              help="Pairs of random end points (each gives a straight and a spherical row).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Chooses the end points.")
@click.option("--device", type=click.Choice(backend.DEVICES), default="cpu", show_default=True)
@WHICH
def interpolate(run_dir, out, steps, rows, seed, device, which):
    """Walk between random latent points along straight and spherical paths, with the run's generator."""
    out = Path(out)
    if out.suffix not in (".png", ".gif"):
        raise click.UsageError(f"--out must end in .png or .gif, got {out.name}")
    backend.use_device(device)
    gan, config, epoch = load_generator(Path(run_dir), which)
    _, walked = latent.walks(gan, rows, steps, seed)
    pictures = latent.to_pictures(walked, config["pixel_range"])            # (rows, 2, steps, H, W[, 3])
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".png":
        grid = images.grid(pictures.reshape(-1, *pictures.shape[3:]), columns=steps)
        write_atomically(out, lambda stream: images.save_png(grid, stream))
    else:   # a frame per step, there and back: each frame the pairs' straight | spherical images
        order = list(range(steps)) + list(range(steps - 2, 0, -1))
        frames = [images.grid(pictures[:, :, k].reshape(-1, *pictures.shape[3:]), columns=2) for k in order]
        write_atomically(out, lambda stream: images.save_animation(frames, stream, 120))
    click.echo(f"wrote {out}: {rows} pair(s) of end points, straight and spherical paths of {steps} steps, "
               f"from the {'averaged ' if gan.average_generator is not None else ''}generator of epoch {epoch} "
               f"({which})")


@cli.command("probe")
@click.option("--checkpoint", "run_dir", type=click.Path(file_okay=False), required=True,
              help="A run directory of a convolutional GAN, written by `train`.")
@click.option("--limit", type=click.IntRange(min=100), default=None,
              help="Use only the first N training images (their labels) [default: all].")
@click.option("--test-images", type=click.IntRange(min=100), default=None,
              help="Measure on the first N test images only [default: all].")
@click.option("--per-class", type=click.IntRange(min=10), default=probe_module.FEW_LABELS, show_default=True,
              help="Labels per class in the few-label setting.")
@click.option("--draws", type=click.IntRange(min=1), default=probe_module.DRAWS, show_default=True,
              help="Random draws of the few labels.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Directory with the dataset's IDX files [default: the run's].")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Also write the rows here.")
def probe_command(run_dir, limit, test_images, per_class, draws, data_dir, json_path):
    """A linear classifier on the discriminator's features, against random-D features and raw pixels."""
    gan, config, epoch = load_generator(Path(run_dir), "last")
    click.echo(f"probing the discriminator of epoch {epoch} of {run_dir} ({config['arch']})")
    rows, n_train = probe_module.probe(gan, config, data_dir, limit, per_class, draws, log=click.echo,
                                       test_limit=test_images)
    click.echo(probe_module.markdown(rows, per_class, draws, n_train), nl=False)
    if json_path:
        write_text_atomically(Path(json_path), json.dumps({"run": str(run_dir), "epoch": epoch, "per_class": per_class,
                                                           "draws": draws, "rows": rows}, indent=2) + "\n")


@cli.command("eval")
@click.argument("source", type=click.Path(exists=True))
@click.option("--n", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Images to generate when SOURCE is a run directory.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write every figure to this JSON file.")
@click.option("--dataset", type=click.Choice(list(data.DATASETS)), default=None,
              help="Real images to compare with [default: the run's dataset, else mnist].")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Directory with the dataset's files (else the run's, $TINYGAN_DATA, the cache).")
@click.option("--device", type=click.Choice(backend.DEVICES), default="cpu", show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Noise for the generated images.")
@click.option("--nearest-neighbour", "nearest_neighbour", type=click.IntRange(min=0), default=0,
              help="A conditional run: also fit a 1-nearest-neighbour classifier on N generated labelled images "
                   "and test it on the real test set, beside the same on N real training images (report 003 "
                   "uses 50,000).")
@WHICH
def evaluate(source, n, json_path, dataset, data_dir, device, seed, which, nearest_neighbour):
    """Measure generated images: FID, KID, precision, recall, classes, memorisation.

    SOURCE is a run directory (n images are generated from its checkpoint and
    eval.json is written inside it) or a .npy file: uint8 (n, 28, 28) with 0
    black, as `sample` writes, (n, 1, 28, 28), or floats in [-1, 1]; for
    CIFAR-10, (n, 32, 32, 3) or (n, 3, 32, 32).
    """
    source = Path(source)
    backend.use_device(device)
    backend.seed(seed)
    generation_seconds, title, asked = 0.0, source.name, None
    if source.is_dir():
        gan, config, epoch = load_generator(source, which)
        dataset = dataset or config["dataset"]
        data_dir = data_dir or config.get("data_dir")
        evaluation.check_count(n)
        start = time.perf_counter()
        pictures = evaluation.as_model_images(np.concatenate(list(generated_images(gan, config, n))),
                                              shape=data.image_shape(dataset))
        generation_seconds = time.perf_counter() - start
        title = f"{source.name}, epoch {epoch} ({which})"
        if gan.conditional:
            asked = np.arange(n) % 10   # generated_images draws the digits 0 to 9 in turn
    elif source.suffix == ".npy":
        try:
            array = np.load(source, allow_pickle=False)
        except (ValueError, OSError) as error:
            raise evaluation.EvaluationError(f"{source} is not a readable .npy array ({error})") from None
        dataset = dataset or "mnist"
        pictures = evaluation.as_model_images(array, name=f"the images in {source}", shape=data.image_shape(dataset))
        evaluation.check_count(len(pictures))
    else:
        raise click.UsageError(f"SOURCE must be a run directory or a .npy file, got {source}")
    warning = evaluation.few_images_warning(len(pictures))
    if warning:
        click.echo(warning, err=True)
    if nearest_neighbour and asked is None:
        raise click.UsageError("--nearest-neighbour needs a conditional run directory: its samples carry labels")
    start = time.perf_counter()
    evaluator = evaluation.Evaluator(dataset, data_dir)
    reference = evaluator.reference(len(pictures))
    result = evaluator.evaluate(pictures, asked=asked)
    seconds = time.perf_counter() - start
    click.echo(evaluation.format_table(result, reference, title))
    if asked is not None:
        shares = "  ".join(f"{digit}: {share:.3f}" for digit, share in enumerate(result["asked_class_share_per_class"]))
        click.echo(f"asked digit recognised by the classifier: {result['asked_class_share']:.3f} overall; {shares}")
    if nearest_neighbour:
        result.update(nearest_neighbour_test(gan, config, evaluator.dataset, nearest_neighbour))
        click.echo(f"1-nearest-neighbour test error on the {len(evaluator.dataset.test_labels):,} real test images: "
                   f"fitted on {nearest_neighbour:,} generated images {result['nn_error_generated']:.4f}, on as many "
                   f"real training images {result['nn_error_real']:.4f}")
    click.echo(f"evaluated {len(pictures):,} images in {seconds:.1f} s"
               + (f" (generated in {generation_seconds:.1f} s)" if generation_seconds else ""))
    record = dict(result, dataset=evaluator.dataset_name, source=str(source), which=which if source.is_dir() else None,
                  reference=reference, classifier=evaluator.classifier.meta, seconds=seconds,
                  generation_seconds=generation_seconds, versions=library_versions())
    text = json.dumps(record, indent=2) + "\n"
    targets = ([Path(json_path)] if json_path else []) + ([source / "eval.json"] if source.is_dir() else [])
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(target, text)
        click.echo(f"wrote {target}")


@cli.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Write compare.md, compare.csv, fid_vs_epoch.png and fid_vs_time.png here "
                   "[default: runs/compare-<date>-<time>].")
def compare_command(runs, out):
    """Runs side by side: the settings in which they differ, their final and best quality, FID plots."""
    out = Path(out) if out else Path("runs") / f"compare-{time.strftime('%Y%m%d-%H%M%S')}"
    table, _ = compare.compare(runs, out)
    click.echo(table, nl=False)
    click.echo(f"wrote {out}/compare.md, compare.csv and the FID plots")


@cli.command("classifier")
@click.option("--dataset", type=click.Choice(list(data.DATASETS)), default="mnist", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Directory with the dataset's files (else $TINYGAN_DATA, else the cache, else download).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=classifier.EPOCHS, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Train on the first N images only.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Weights file [default: where eval looks: the shipped file for mnist, else "
                   "~/.cache/tinygan/classifiers/<dataset>_classifier.npz].")
def classifier_command(dataset, data_dir, seed, epochs, limit, out):
    """Train the classifier whose features `eval` measures with (for mnist, remakes the shipped weights)."""
    out = Path(out) if out else classifier.weights_path(dataset)
    trained = classifier.train(dataset, data_dir, seed=seed, epochs=epochs, limit=limit, log=click.echo)
    classifier.save(trained, out)
    click.echo(f"wrote {out} (test accuracy {trained.meta['test_accuracy']:.4f})")


@cli.command("study")
@click.argument("name", type=click.Choice(list(study.STUDIES)))
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Run every setting on seeds 0 .. K-1; the summary gives mean and standard deviation.")
@click.option("--profile", type=click.Choice(list(study.PROFILES)), default="quick", show_default=True,
              help="How long each run trains: quick fits a 2-core CPU, full is the reports' length (a GPU), "
                   "tiny is for tests.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train processes at once, each given its share of the cores (its thread pools sized to "
                   "cores / N, unless you set NUMBA_NUM_THREADS and the like).")
@click.option("--device", type=click.Choice(backend.DEVICES), default="cpu", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Directory with the dataset's IDX files (else $TINYGAN_DATA, else the cache, else download).")
@click.option("--out", type=click.Path(file_okay=False), default="studies", show_default=True,
              help="Runs go to OUT/NAME/<setting>/seed-<s>, the summary to OUT/NAME.")
@click.option("--print-commands", is_flag=True,
              help="Print the train command of every unfinished run instead of running them.")
@click.option("--collect", is_flag=True, help="Only build the summary from the finished run directories.")
def study_command(name, seeds, profile, jobs, device, data_dir, out, print_commands, collect):
    """Run one of the reports' comparisons on K seeds and summarise it (study.md, study.csv, figures)."""
    extra = ["--device", device] + (["--data-dir", str(Path(data_dir).resolve())] if data_dir else [])
    plans = study.plans(name, seeds, profile, Path(out).resolve(), extra)
    if print_commands:
        for plan in plans:
            command = study.next_command(plan)
            if command is not None:
                click.echo(study.shell_line(command))
        return
    if not collect:
        click.echo(f"study {name}: {len(plans)} runs ({len(study.STUDIES[name].settings)} settings x {seeds} "
                   f"seed(s)); {study.profile_text(name, profile)}")
        try:
            study.run(plans, jobs=jobs, log=click.echo)
        except KeyboardInterrupt:
            click.echo("interrupted: the same command again skips the finished runs and resumes the others",
                       err=True)
            sys.exit(130)
    click.echo(study.summarise(name, plans, profile, Path(out)), nl=False)
    click.echo(f"wrote {Path(out) / name}/study.md, study.csv and the figures")


@cli.group("exercises")
def exercises_group():
    """Write the backward passes of Dense, Conv2D, BatchNorm and BCEWithLogits yourself, and grade them."""


@exercises_group.command("start")
@click.argument("directory", type=click.Path(file_okay=False), default="exercises")
@click.option("--force", is_flag=True, help="Overwrite exercise files already there (your work in them is lost).")
def exercises_start(directory, force):
    """Copy the four classes into DIRECTORY with their backward bodies removed."""
    for path in exercises.start(directory, force=force):
        click.echo(f"wrote {path}")
    click.echo(f"write each backward, then: python -m tinygan exercises grade {directory}")


@exercises_group.command("grade")
@click.argument("directory", type=click.Path(file_okay=False), default="exercises")
@click.option("--only", type=click.Choice([Path(name).stem for name in exercises.EXERCISES]), multiple=True,
              help="Grade only this exercise (repeatable).")
def exercises_grade(directory, only):
    """Check your backward passes with the engine's own gradient and contract checks, case by case."""
    passed, total = exercises.grade(directory, only=set(only), out=click.echo)
    click.echo(f"{passed} of {total} cases pass" + (": every backward is right" if passed == total else ""))
    if passed < total:
        sys.exit(1)


@cli.command()
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
def info(data_dir):
    """Version, available backends and where the data is."""
    import platform
    click.echo(f"tinygan {__version__} (Python {platform.python_version()}, NumPy {np.__version__})")
    if kernels.numba_cpu is not None:
        import numba
        click.echo(f"CPU: Numba {numba.__version__} kernels, {numba.get_num_threads()} threads")
    else:
        click.echo(f"CPU: NumPy reference kernels (Numba unavailable: {kernels.numba_import_error})")
    click.echo(f"CPU: Winograd's stacked matrix products {describe_stacked_products()}")
    waits = ", ".join(f"{key}={os.environ.get(key, 'unset')}" for key in threads.SETTINGS)
    click.echo(f"idle CPU threads: {waits} ({'set by tinygan' if threads.applied else 'as the environment had them'})")
    reason = backend.gpu_unavailable_reason()
    if reason is None:
        click.echo(f"GPU: CuPy {backend.cupy.__version__} on {backend.gpu_name()}")
    else:
        click.echo(f"GPU: unavailable ({reason})")
    for dataset in data.DATASETS:
        directory, named = data.chosen_directory(dataset, data_dir)
        missing = data.missing_files(directory, dataset)
        if not missing:
            where = f"in {directory}"
        elif named:
            where = f"not usable: {directory} lacks {', '.join(missing)}, so `train` will refuse it"
        else:
            where = f"not found in {directory}; `train` will download it there"
        click.echo(f"data: {dataset} {where}")


def main(argv=None):
    try:
        _main(argv)
    except KeyboardInterrupt:   # a Ctrl-C that lands while an error or "interrupted" is being answered
        sys.exit(130)
    finally:
        if argv is None:   # the real command line, not a test calling main([...]) in its own process
            # A Ctrl-C while Python shuts down would print "Exception ignored ..." or end the process
            # with -2 and no word: the command has answered, so later interrupts are ignored.
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _main(argv):
    try:
        cli.main(args=argv, prog_name="python -m tinygan", standalone_mode=False)
    except NO_ARGUMENTS as error:  # plain `python -m tinygan`: the help, not an error
        click.echo(error.format_message())
    except click.ClickException as error:
        click.echo(f"Error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except TrainingStopped as error:
        click.echo(str(error), err=True)
        sys.exit(error.exit_code)
    except USER_ERRORS as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(1)
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        sys.exit(130)
