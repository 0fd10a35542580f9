"""The training loop and the run directory it fills.

A run directory holds:
  config.json          every setting, and the versions of the libraries
  metrics.csv          one row per epoch: losses, D's accuracy, time, images/s
  steps.csv            D and G loss of every step
  samples/epoch_NNN.png  the generator on one fixed noise batch, after each epoch
  losses.png           the loss curves
  progress.gif         the sample grids through training
  checkpoint.npz       G, D, both optimizers, the history and the fixed noise
  quality.png          FID, precision, recall and class entropy per measured epoch (--eval-every)
  best.npz             the generator of the epoch with the lowest FID (--eval-every)

With ``ema`` > 0 the pictures, the measurements and best.npz come from the
generator's weight average (gan.py), whose BatchNorm statistics are
recomputed at the end of every epoch; the checkpoint holds it too.

With ``eval_every`` = N > 0, every N-th epoch and the last one are measured
as ``tinygan eval`` measures (evaluation.py), on ``eval_samples`` images
generated from one fixed noise batch, so that the epochs differ only in the
generator; the figures become columns of metrics.csv.

Reproducibility and resume: at the start of epoch e every generator is
reseeded from (seed, e), so the shuffling, noise and dropout of an epoch depend
only on the seed, the epoch and the weights. The checkpoint, written atomically
at the end of each epoch, therefore holds the whole random state, and resuming
from it gives the same weights as never stopping (same backend, same seed).
"""
from __future__ import annotations

import csv
import importlib
import io
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__, backend, classifier, data, evaluation, images, kernels, models
from .cuda_graph import CapturedStep
from .files import DirectoryLock, remove_partial_files, write_atomically
from .gan import GAN, NOISE_KINDS, STATISTICS_BATCHES
from .interrupts import StopOnRequest

CHECKPOINT = "checkpoint.npz"
BEST = "best.npz"          # the generator of the epoch with the lowest FID (train --eval-every)
SAMPLE_GRID = 64   # images in the fixed-noise grid (8 x 8)
CONDITIONAL_GRID = 80   # a conditional run's: 10 digits x 8
QUALITY = ("fid", "kid", "precision", "recall", "class_entropy_bits", "rarest_class_share", "confidence",
           "nearest_train_ratio")   # the eval figures kept per measured epoch
EVAL_SAMPLES = 2000                  # generated images per measurement during training
# The generator's weight average on by default (gan.py): measured in docs/studies (the tricks study) and, before
# tinygan had it, with a PyTorch DCGAN of the same shape, where decay 0.999 with the warm-up and recomputed
# BatchNorm statistics made the samples clearly better after 3 epochs.
DEFAULT_EMA = 0.999
# Adam's step for both networks: four times the DCGAN paper's 2e-4, which the reports used. With the weight
# average, 8e-4 gave `mlp` a FID about 70% lower than the reports' settings after 20 epochs (seeds 0-2) and
# `dcgan` 33% to 42% lower after 3 (seeds 0-2), all ten digits kept. 4e-4 gave less; batch 32 gave `dcgan` about
# what the larger step alone gave, and cost `mlp` time. See docs/defaults.md.
DEFAULT_LR = 8e-4
# The MLPs that need steps of their own. `mlp-001` (report 001's, D twice as wide as `mlp`'s): with both steps at
# 8e-4, or both at 2e-4, its D won and classes were lost; with D's at 2e-4 it kept all ten. The deep MLPs
# (`mlp-deep`, `mlp-001-deep`): with G's step at 8e-4 their G saturated into one image within about 1,000 steps;
# with G's at 4e-4 and D's at 1e-4 they kept all ten. Each applies unless --lr or that network's own --lr-g /
# --lr-d is given. See docs/defaults.md.
DEEP_MLP_STEPS = {"lr_g": 4e-4, "lr_d": 1e-4}
DEFAULT_STEPS = {"mlp-001": {"lr_d": 2e-4}, "mlp-deep": DEEP_MLP_STEPS, "mlp-001-deep": DEEP_MLP_STEPS}


def default_eval_every(arch: str, dataset: str = "mnist") -> int:
    """Measure every DCGAN epoch (a few seconds against minutes); every 5th of the 10-second MLP epochs; none
    where the dataset has no classifier to measure with (CIFAR-10 until `tinygan classifier` has made one)."""
    if not classifier.weights_path(dataset).is_file():
        return 0
    return 5 if arch.startswith("mlp") else 1


class TrainingStopped(RuntimeError):
    """Training ended early (divergence, Ctrl-C); the message says what is left and what to do."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


def epoch_seed(seed: int, epoch: int) -> int:
    """An independent seed for each (run seed, epoch) pair."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def library_versions():
    versions = {"tinygan": __version__, "python": platform.python_version(), "numpy": np.__version__,
                "platform": platform.platform(), "cpu_kernels": kernels.cpu_kernels()}
    for name in ("numba", "threadpoolctl"):   # threadpoolctl: a share of Winograd's products per core
        try:
            versions[name] = importlib.import_module(name).__version__
        except ImportError:
            versions[name] = None
    versions["cupy"] = getattr(backend.cupy, "__version__", None)
    versions["gpu"] = backend.gpu_name() if backend.current_device() == "gpu" else None
    return versions


def write_text_atomically(path: Path, text: str):
    write_atomically(path, lambda stream: stream.write(text.encode()))


def build_gan(config: dict) -> GAN:
    generator, discriminator = models.build(config["arch"], z_dim=config["z_dim"], kernel_size=config["kernel_size"],
                                            depth=config["depth"], init=config.get("init"), output=config["output"],
                                            generator_bn_affine=config["generator_bn_affine"],
                                            conditional=config["conditional"],
                                            image_shape=data.image_shape(config["dataset"]))
    return GAN(generator, discriminator, z_dim=config["z_dim"], lr=config["lr"],
               betas=(config["beta1"], config["beta2"]), noise=config["noise"],
               label_smoothing=config["label_smoothing"], label_flip=config["label_flip"],
               d_steps=config["d_steps"], ema=config["ema"], lr_d=config["lr_d"], lr_g=config["lr_g"],
               poisson_rate=config["poisson_rate"], standardize_noise=config["standardize_noise"])


class RunDirectoryError(ValueError):
    """A run directory's file is missing, damaged or edited into something unusable; the message names it."""


def read_npz(path: Path, what: str):
    """Every array of an .npz file plus its JSON 'meta' entry, or one RunDirectoryError naming the file.

    A truncated, bit-flipped, empty or foreign file fails inside zipfile,
    NumPy or JSON with messages that name none of this (NumPy even suggests
    allow_pickle); whatever the failure, the user hears which file and that it
    cannot be used, never advice to load it unsafely.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        meta = json.loads(str(arrays.pop("meta")))
    except KeyError:
        raise RunDirectoryError(f"{path} is damaged: it lacks its 'meta' entry, so this {what} cannot be "
                                f"used") from None
    except Exception as error:   # zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, ...
        reason = str(error).split(". ")[0].split("\n")[0] or type(error).__name__
        raise RunDirectoryError(f"{path} is damaged ({type(error).__name__}: {reason}): this {what} cannot be "
                                f"used; start a new run or restore the file from a copy") from None
    if not isinstance(meta, dict):
        raise RunDirectoryError(f"{path} is damaged: its 'meta' entry is not a JSON object")
    for key, value in arrays.items():
        if value.dtype.kind not in "biuf":
            raise RunDirectoryError(f"{path} is damaged: entry {key!r} holds {value.dtype} values")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise RunDirectoryError(f"{path}: {key} holds NaN or infinite values, so this {what} cannot be "
                                    f"used; an earlier epoch's run or a new run is needed")
    return meta, arrays


def load_checkpoint(run_dir: Path):
    """(meta, arrays) of a run's checkpoint, with a clear error when there is none or it is damaged."""
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} holds no {CHECKPOINT}: is it a tinygan run directory that "
                                f"finished at least one epoch?")
    meta, arrays = read_npz(path, "checkpoint")
    if not isinstance(meta.get("epoch"), int) or not isinstance(meta.get("history"), dict):
        raise RunDirectoryError(f"{path} is damaged: its 'meta' entry lacks the epoch or the history")
    if "fixed_noise" not in arrays:
        raise RunDirectoryError(f"{path} is damaged: it lacks the entry 'fixed_noise'")
    return meta, arrays


def load_state(part, arrays, path: Path):
    """part.load_state_dict(arrays), with a mismatch reported as a fault of the file ``path``."""
    try:
        part.load_state_dict(arrays)
    except (ValueError, KeyError) as error:
        raise RunDirectoryError(f"{path} does not fit its config.json: {error}") from None


def load_generator(run_dir: Path, which: str = "last"):
    """(gan, config, epoch): a run's GAN on the current device, whose sampler is the last epoch's generator
    (its weight average when trained with --ema), the best-FID one, or ("trained") the last epoch's own
    weights without the average, which shows what the average adds."""
    config = load_config(run_dir)
    gan = build_gan(config)
    if which in ("last", "trained"):
        meta, arrays = load_checkpoint(run_dir)
        load_state(gan, arrays, Path(run_dir) / CHECKPOINT)
        epoch = meta["epoch"]
        if which == "trained":
            gan.average_generator = None
    elif which == "best":   # best.npz alone: it still serves when the checkpoint is damaged
        path = Path(run_dir) / BEST
        if not path.is_file():
            raise FileNotFoundError(f"{run_dir} holds no {BEST}: the run was trained without --eval-every, "
                                    f"so no epoch was measured; use --which last")
        best_meta, best = read_npz(path, "generator")
        if not isinstance(best_meta.get("epoch"), int):
            raise RunDirectoryError(f"{path} is damaged: its 'meta' entry lacks the epoch")
        load_state(gan.sampler, best, path)
        epoch = best_meta["epoch"]
    else:
        raise ValueError(f"--which must be last, best or trained, got {which!r}")
    return gan, config, epoch


# What config.json must hold, and of which type (None: the key may be null).
CONFIG_TYPES = {
    "arch": str, "device": str, "epochs": int, "batch_size": int, "lr": (int, float), "beta1": (int, float),
    "beta2": (int, float), "z_dim": int, "noise": str, "seed": int, "dataset": str, "data_dir": (str, None),
    "pixel_range": str, "limit": (int, None), "kernel_size": int, "depth": int, "init": (str, None),
    "label_smoothing": (int, float), "label_flip": (int, float), "d_steps": int, "eval_images": (int, None),
    "out": str, "quiet": bool, "ema": (int, float), "lr_d": (int, float, None), "lr_g": (int, float, None),
    "poisson_rate": (int, float), "standardize_noise": bool, "output": str, "generator_bn_affine": bool,
    "conditional": bool, "cuda_graph": bool,
}
# Settings added after the first runs were written, and what those runs used.
CONFIG_DEFAULTS = {"ema": 0.0, "lr_d": None, "lr_g": None, "poisson_rate": 1.0, "standardize_noise": True,
                   "output": "tanh", "generator_bn_affine": True, "conditional": False, "cuda_graph": False}
CONFIG_CHOICES = {"arch": models.ARCHITECTURES, "device": backend.DEVICES, "dataset": tuple(data.DATASETS),
                  "pixel_range": tuple(data.PIXEL_RANGES), "noise": NOISE_KINDS, "output": tuple(models.OUTPUTS)}


def check_config(config, path) -> dict:
    """Refuse, naming the key, a config that is not what train wrote: missing keys, wrong types or choices."""
    if not isinstance(config, dict):
        raise RunDirectoryError(f"{path} holds {type(config).__name__}, not the JSON object train writes")
    for key, types in CONFIG_TYPES.items():
        allowed = tuple(t for t in (types if isinstance(types, tuple) else (types,)) if t is not None)
        nullable = isinstance(types, tuple) and None in types
        if key not in config and key in CONFIG_DEFAULTS:
            config[key] = CONFIG_DEFAULTS[key]
        if key not in config:
            raise RunDirectoryError(f"{path} lacks the setting {key!r}: it was not written by this tinygan, "
                                    f"or was edited")
        value = config[key]
        if value is None and nullable:
            continue
        is_bool = isinstance(value, bool)
        if not isinstance(value, allowed) or (is_bool and bool not in allowed):
            raise RunDirectoryError(f"{path}: {key!r} is {value!r}, expected "
                                    f"{' or '.join(t.__name__ for t in allowed)}{' or null' if nullable else ''}")
        if isinstance(value, float) and not math.isfinite(value):
            raise RunDirectoryError(f"{path}: {key!r} is {value!r}, expected a finite number")
        if key in CONFIG_CHOICES and value not in CONFIG_CHOICES[key]:
            raise RunDirectoryError(f"{path}: {key!r} is {value!r}, expected one of "
                                    f"{', '.join(CONFIG_CHOICES[key])}")
    return config


def load_config(run_dir: Path) -> dict:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} holds no config.json: is it a tinygan run directory?")
    try:
        config = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise RunDirectoryError(f"{path} is not valid JSON ({error}): restore it, or start a new run") from None
    return check_config(config, path)


READ_LOSSES_EVERY = 0.2   # seconds between reads of the step losses, as often as the progress bar redraws


def read_losses(unread):
    """The steps' (d_loss, g_loss) pairs of device scalars as Python floats, in one copy from the device."""
    xp = backend.get_array_module(unread[0][0])
    losses = xp.stack([xp.asarray(loss) for pair in unread for loss in pair])
    return backend.numpy_copy(losses).reshape(-1, 2).tolist()


class ProgressBar:
    """One line on stderr, redrawn at most five times a second: step, running losses, ETA."""

    def __init__(self, total, label, enabled):
        self.total, self.label = total, label
        self.enabled = enabled and sys.stderr.isatty()
        self.start = self.last_draw = time.perf_counter()

    def update(self, step, d_loss, g_loss):
        now = time.perf_counter()
        if not self.enabled or (now - self.last_draw < 0.2 and step < self.total):
            return
        self.last_draw = now
        done = step / self.total
        eta = (now - self.start) / step * (self.total - step)
        bar = "#" * int(done * 24) + "." * (24 - int(done * 24))
        sys.stderr.write(f"\r{self.label} [{bar}] {step}/{self.total}  D loss {d_loss:.3f}  "
                         f"G loss {g_loss:.3f}  ETA {int(eta) // 60}:{int(eta) % 60:02d} ")
        sys.stderr.flush()

    def close(self):
        if self.enabled:
            sys.stderr.write("\r" + " " * 100 + "\r")
            sys.stderr.flush()


class Trainer:
    """Trains one GAN as ``config`` says, writing everything into ``config['out']``."""

    def __init__(self, config: dict, resume: bool = False, log=print):
        self.config, self.log = config, log
        self.run_dir = Path(config["out"])
        backend.use_device(config["device"])
        backend.seed(config["seed"])
        dataset = data.load(config["dataset"], config["data_dir"], config["pixel_range"])
        limit = config["limit"] or len(dataset.train_images)
        if limit < config["batch_size"]:
            raise ValueError(f"--limit {limit} leaves less than one batch of {config['batch_size']} images")
        self.train_images = backend.to_device(dataset.train_images[:limit])
        self.train_labels = backend.to_device(dataset.train_labels[:limit].astype(np.int64))
        eval_images = config["eval_images"] or min(len(dataset.test_images), limit)
        self.test_images = backend.to_device(dataset.test_images[:eval_images])
        self.test_labels = backend.to_device(dataset.test_labels[:eval_images].astype(np.int64))
        self.gan = build_gan(config)
        if config.get("cuda_graph"):
            CapturedStep(self.gan)   # refuses, before anything is written, what it cannot capture
        fixed_rng = np.random.default_rng(np.random.SeedSequence([config["seed"], 2**32 - 1]))
        # a conditional run's grid: a row per digit, 8 columns (generate's labels go 0, 1, ..., 9 in turn)
        grid_size = CONDITIONAL_GRID if config["conditional"] else SAMPLE_GRID
        self.fixed_noise = backend.to_device(self.gan.sample_noise(grid_size, fixed_rng))
        self.history = {"epochs": [], "steps": []}
        self.epochs_done = 0
        self.evaluator = None
        if config.get("eval_every"):
            self.evaluator = evaluation.Evaluator(config["dataset"], config["data_dir"])
            eval_rng = np.random.default_rng(np.random.SeedSequence([config["seed"], 2**32 - 2]))
            self.eval_noise = self.gan.sample_noise(config.get("eval_samples") or EVAL_SAMPLES, eval_rng)
        self.saved_epoch = 0   # the epoch of the checkpoint on disk: what a message may promise
        self.interrupts = StopOnRequest()
        self.lock = self._claim_run_directory(resume)   # everything above only read; from here on we write
        try:
            if resume:
                self._resume()
            self._write_config()   # on resume too: the record says what is being run (--epochs, --device)
        except BaseException:
            self.lock.release()
            raise

    def _claim_run_directory(self, resume):
        """Create the run directory (a new run), take its lock, refuse to overwrite a run, clean up .part files."""
        try:
            if not resume:
                (self.run_dir / "samples").mkdir(parents=True, exist_ok=True)
            lock = DirectoryLock(self.run_dir)
        except OSError as error:   # unwritable, below a regular file, read-only file system, ...
            raise RunDirectoryError(f"cannot write the run directory {self.run_dir} "
                                    f"({error.strerror or error}): choose another --out") from None
        try:
            if not resume and (self.run_dir / CHECKPOINT).exists():
                raise FileExistsError(f"{self.run_dir} already holds a run: continue it with --resume "
                                      f"{self.run_dir} or choose another --out")
            remove_partial_files(self.run_dir)   # left by a kill during a write; no write runs while we hold the lock
        except BaseException:
            lock.release()
            raise
        return lock

    def _write_config(self):
        saved = dict(self.config, versions=library_versions())
        write_text_atomically(self.run_dir / "config.json", json.dumps(saved, indent=2, allow_nan=False) + "\n")

    def _resume(self):
        meta, arrays = load_checkpoint(self.run_dir)
        load_state(self.gan, arrays, self.run_dir / CHECKPOINT)
        self.fixed_noise = backend.to_device(arrays["fixed_noise"])
        self.history = meta["history"]
        self.epochs_done = self.saved_epoch = meta["epoch"]
        self.log(f"resuming {self.run_dir} after epoch {self.epochs_done}")

    @property
    def steps_per_epoch(self):
        return len(self.train_images) // self.config["batch_size"]  # the last partial batch is dropped

    def train(self):
        config = self.config
        try:
            if self.epochs_done >= config["epochs"]:
                self.log(f"{self.run_dir} already has {self.epochs_done} epochs; ask for more with --epochs")
                return self.history
            with self.interrupts:   # Ctrl-C stops between steps or after an epoch's files: never inside a write
                for epoch in range(self.epochs_done + 1, config["epochs"] + 1):
                    self._train_epoch(epoch)
                    self.interrupts.stop_if_requested()
        except KeyboardInterrupt:
            raise TrainingStopped(self._stopped_message("interrupted"), exit_code=130) from None
        finally:
            self.lock.release()
        best = self.best_epoch()
        if best is not None and not config["quiet"]:
            self.log(f"best FID {best['fid']:.2f} at epoch {best['epoch']}: its generator is {self.run_dir / BEST} "
                     f"(`python -m tinygan sample --checkpoint {self.run_dir} --which best`)")
        return self.history

    def best_epoch(self):
        """The measured epoch with the lowest FID (its metrics row), or None."""
        measured = [row for row in self.history["epochs"] if row.get("fid") is not None]
        return min(measured, key=lambda row: row["fid"]) if measured else None

    def _measure(self, epoch):
        """The eval figures of this epoch's generator on the fixed eval noise; keeps it if its FID is the best."""
        start = time.perf_counter()
        pictures = data.to_uint8(backend.as_numpy(self.gan.generate(backend.to_device(self.eval_noise))),
                                 self.config["pixel_range"])   # as `sample` writes them, so eval agrees
        result = self.evaluator.evaluate(evaluation.as_model_images(pictures,
                                                                    shape=data.image_shape(self.config["dataset"])))
        figures = {key: result[key] for key in QUALITY}
        best = self.best_epoch()
        if best is None or figures["fid"] < best["fid"]:
            arrays = dict(self.gan.sampler.state_dict(), meta=np.array(json.dumps({"epoch": epoch, **figures})))
            write_atomically(self.run_dir / BEST, lambda stream: np.savez(stream, **arrays))
        figures["eval_seconds"] = time.perf_counter() - start
        return figures

    def _stopped_message(self, what):
        if self.saved_epoch == 0:
            return f"{what} before the first checkpoint was saved: {self.run_dir} holds no checkpoint yet"
        return (f"{what}; the checkpoint of epoch {self.saved_epoch} in {self.run_dir} is intact: continue with "
                f"`python -m tinygan train --resume {self.run_dir}`")

    def _train_epoch(self, epoch):
        config, gan = self.config, self.gan
        backend.seed(epoch_seed(config["seed"], epoch))
        batch_size, steps = config["batch_size"], self.steps_per_epoch
        order = backend.to_device(backend.numpy_rng().permutation(len(self.train_images)))
        progress = ProgressBar(steps, f"epoch {epoch}/{config['epochs']}", not config["quiet"])
        # a graph keeps the random generator it was captured with: one per epoch, as backend.seed makes one
        train_step = CapturedStep(gan) if config.get("cuda_graph") else gan.train_step
        step_losses, unread, running_totals = [], [], np.zeros(2)
        start = last_read = time.perf_counter()
        for step in range(steps):
            self.interrupts.stop_if_requested()
            real = self.train_images[order[step * batch_size:(step + 1) * batch_size]]
            labels = self.train_labels[order[step * batch_size:(step + 1) * batch_size]] if gan.conditional else None
            # The losses stay on the device: reading one makes the host wait for the GPU to finish the
            # step, when it could be queueing the next. So they are read a few steps at a time.
            unread.append(train_step(real, labels, read_losses=False))
            if step + 1 < steps and time.perf_counter() - last_read < READ_LOSSES_EVERY:
                continue
            for d_loss, g_loss in read_losses(unread):
                if not (math.isfinite(d_loss) and math.isfinite(g_loss)):
                    progress.close()
                    raise TrainingStopped(self._stopped_message(
                        f"training diverged at epoch {epoch}, step {len(step_losses) + 1} (D loss {d_loss}, "
                        f"G loss {g_loss}); try a lower --lr"), exit_code=3)
                step_losses.append((d_loss, g_loss))
                running_totals += (d_loss, g_loss)   # not np.mean(step_losses): that is quadratic in the steps
            unread, last_read = [], time.perf_counter()
            progress.update(step + 1, *running_totals / (step + 1))
        if gan.average_generator is not None:   # its own noise: the epoch's random stream stays as it was
            gan.refresh_average_statistics(np.random.default_rng(np.random.SeedSequence([config["seed"], epoch, 1])),
                                           batch_size, batches=min(STATISTICS_BATCHES, steps))   # tiny runs: few
        seconds = time.perf_counter() - start   # the training steps and the refresh: what an epoch costs
        progress.close()

        accuracy_real, accuracy_fake = gan.discriminator_accuracy(self.test_images, len(self.test_images), batch_size,
                                                                  self.test_labels)
        d_loss, g_loss = np.mean(step_losses, axis=0)
        row = {"epoch": epoch, "d_loss": float(d_loss), "g_loss": float(g_loss),
               "d_accuracy_real": accuracy_real, "d_accuracy_fake": accuracy_fake,
               "seconds": seconds, "images_per_second": steps * batch_size / seconds}
        every = config.get("eval_every") or 0
        if every and (epoch % every == 0 or epoch == config["epochs"]):
            row.update(self._measure(epoch))
        self.history["epochs"].append(row)
        self.history["steps"].extend([float(d), float(g)] for d, g in step_losses)
        self.epochs_done = epoch
        self._save_samples(epoch)
        self._save_checkpoint()
        self._write_reports()
        if not config["quiet"]:
            quality = f"  FID {row['fid']:.2f}" if "fid" in row else ""
            self.log(f"epoch {epoch}/{config['epochs']}  D loss {row['d_loss']:.4f}  G loss {row['g_loss']:.4f}  "
                     f"D accuracy real {accuracy_real:.3f} fake {accuracy_fake:.3f}{quality}  "
                     f"{seconds:.1f} s  {row['images_per_second']:.0f} images/s")

    def _save_samples(self, epoch):
        xp = backend.get_array_module(self.fixed_noise)
        labels = xp.repeat(xp.arange(10), 8) if self.gan.conditional else None   # row r: digit r
        samples = backend.as_numpy(self.gan.generate(self.fixed_noise, labels=labels))
        picture = images.grid(data.to_uint8(samples, self.config["pixel_range"]), columns=8)
        path = self.run_dir / "samples" / f"epoch_{epoch:03d}.png"
        write_atomically(path, lambda stream: images.save_png(picture, stream))

    def _save_checkpoint(self):
        meta = {"epoch": self.epochs_done, "history": self.history, "seed": self.config["seed"],
                "rng": "reseeded from (seed, epoch) at the start of every epoch"}
        arrays = dict(self.gan.state_dict(), fixed_noise=backend.numpy_copy(self.fixed_noise),
                      meta=np.array(json.dumps(meta)))
        write_atomically(self.run_dir / CHECKPOINT, lambda stream: np.savez(stream, **arrays))
        self.saved_epoch = self.epochs_done

    def _write_reports(self):
        text = io.StringIO()
        columns = list(dict.fromkeys(key for row in self.history["epochs"] for key in row))
        writer = csv.DictWriter(text, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.history["epochs"])
        write_text_atomically(self.run_dir / "metrics.csv", text.getvalue())
        steps = "step,d_loss,g_loss\n" + "".join(f"{index + 1},{d!r},{g!r}\n"
                                                  for index, (d, g) in enumerate(self.history["steps"]))
        write_text_atomically(self.run_dir / "steps.csv", steps)
        write_atomically(self.run_dir / "losses.png", lambda stream: images.plot_losses(
            self.history["steps"], self.steps_per_epoch, stream))
        if self.best_epoch() is not None:
            write_atomically(self.run_dir / "quality.png",
                             lambda stream: images.plot_quality(self.history["epochs"], stream))
        grids = [self.run_dir / "samples" / f"epoch_{e['epoch']:03d}.png" for e in self.history["epochs"]]
        write_atomically(self.run_dir / "progress.gif", lambda stream: images.save_gif(grids, stream))
