"""`tinygan study NAME`: the reports' one-setting-at-a-time comparisons, run, measured and summarised.

A study is a list of settings (each a few `train` options on top of the
report's network) run on K seeds. Every run is an ordinary run directory,
    OUT/<study>/<setting>/seed-<s>/
trained with `--eval-every 1`, so the study is nothing but `train` commands
and a summary of their metrics.csv files:
    study.md, study.csv    one row per setting: the last epoch's FID, KID,
                           precision, recall, class entropy and seconds per
                           epoch, as mean +- standard deviation over the seeds
    fid_vs_epoch.png, fid_vs_time.png   FID per setting (mean over the seeds)
    samples.png            each setting's last sample grid (seed 0)

Runs that finished are skipped and unfinished ones resumed, so running a
study again after an interruption goes on where it stopped.
`--print-commands` prints the train commands instead of running them (one
per line, for GNU parallel or a Slurm array); `--collect` then builds the
summary from the finished run directories.
"""
from __future__ import annotations

import math
import shlex
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import compare, models, threads
from .files import write_atomically
from .trainer import CHECKPOINT, load_checkpoint, write_text_atomically


@dataclass
class Study:
    report: str
    question: str
    settings: dict                       # label -> train options (strings, as on the command line)
    epochs_factor: int = 1               # the epochs study trains longer than the others
    plot_time: bool = False              # quality against training time is the point
    notes: list = field(default_factory=list)


STUDIES = {
    "epochs": Study("000, 002", "How does quality grow with the epochs?",
                    {"dcgan": ["--arch", "dcgan"]}, epochs_factor=3),
    "batch-size": Study("000, 002", "Does the batch size change quality, and the time an epoch takes?",
                        {f"batch-{b}": ["--arch", "dcgan", "--batch-size", str(b)] for b in (16, 32, 64, 128, 256)}),
    "noise": Study("000", "Does the noise distribution matter: normal, uniform or Poisson?",
                   {kind: ["--arch", "dcgan", "--noise", kind] for kind in ("normal", "uniform", "poisson")}),
    "depth": Study("001, 000", "Do deeper networks make better digits?",
                   {"mlp-001": ["--arch", "mlp-001"], "mlp-001-deep": ["--arch", "mlp-001-deep"],
                    "dcgan": ["--arch", "dcgan"], "dcgan-depth-1": ["--arch", "dcgan", "--depth", "1"]}),
    "vanilla-vs-dcgan": Study("002", "Is the DCGAN better than the MLP GAN for the same training time?",
                              {"mlp": ["--arch", "mlp"], "dcgan": ["--arch", "dcgan"]}, plot_time=True),
    "kernel-size": Study("002", "Which kernel size is best: 3, 5 or 7?",
                         {f"kernel-{k}": ["--arch", "dcgan", "--kernel-size", str(k)] for k in (3, 5, 7)}),
    "upsampling": Study("004", "Transposed convolution or UpSampling2D, with pixels in [0, 1] and in [-1, 1]?",
                        {f"{name}-pixels-{low}-1": ["--arch", arch, "--pixel-range", f"{low},1", "--output", "tanh"]
                         for name, arch in (("transposed", "dcgan-004"), ("upsample", "dcgan-004-upsample"))
                         for low in ("0", "-1")},
                        notes=["G ends in tanh in all four settings, as in the reports' Keras models: with pixels "
                               "in [0, 1], G can make values no real image has."]),
    "tricks": Study("004 and the GAN hacks", "Which of the usual tricks help, each alone against the baseline?",
                    {"baseline": ["--arch", "dcgan-004", "--ema", "0"],
                     "label-smoothing-0.1": ["--arch", "dcgan-004", "--ema", "0", "--label-smoothing", "0.1"],
                     "noisy-labels-0.05": ["--arch", "dcgan-004", "--ema", "0", "--label-flip", "0.05"],
                     "d-steps-2": ["--arch", "dcgan-004", "--ema", "0", "--d-steps", "2"],
                     "ema-0.999": ["--arch", "dcgan-004", "--ema", "0.999"],
                     "two-learning-rates": ["--arch", "dcgan-004", "--ema", "0", "--lr-d", "4e-4", "--lr-g", "1e-4"]},
                    notes=["Every setting but ema-0.999 turns the weight average off, so each trick is "
                           "compared alone with the baseline."]),
    "bn-affine": Study("003", "Does G train better with BatchNorm's scale and bias left out?",
                       {"with-affine": ["--arch", "dcgan"], "no-affine": ["--arch", "dcgan", "--no-bn-affine"]},
                       notes=["`no-affine` drops gamma and beta from G's BatchNorm layers only; D is the same "
                              "in both settings."]),
    "datasets": Study("004", "Does the same network do as well on Fashion-MNIST as on MNIST?",
                      {"mnist": ["--arch", "dcgan-004", "--dataset", "mnist"],
                       "fashion-mnist": ["--arch", "dcgan-004", "--dataset", "fashion-mnist"]},
                      notes=["FID and the class figures need the dataset's classifier "
                             "(`python -m tinygan classifier --dataset fashion-mnist`)."]),
}

# (images, epochs) per network family and profile; None: the whole training set.
PROFILES = {
    "tiny": {"mlp": (128, 1), "dcgan": (128, 1)},              # the test suite: a few seconds a run
    "quick": {"mlp": (None, 10), "dcgan": (12_800, 3)},         # a 2-core CPU: minutes a run
    "full": {"mlp": (None, 100), "dcgan": (None, 30)},          # the reports' length: a GPU
}
# The reports trained every network with Adam at 2e-4, at batch 64 and on pixels in [-1, 1], but report 001's
# MLPs (models.REPORT_SETTINGS). A study reproduces a report's comparison under the report's settings, so its runs
# say them all: tinygan's own defaults differ (docs/defaults.md), and a study's results must not move when they do.
REPORTS = {"batch_size": 64, "lr": 2e-4, "pixel_range": "-1,1"}
# Generated images per measurement, where not train's default 2,000: tiny's figures only show that the
# study runs (train warns that so few images cannot tell GANs apart).
EVAL_SAMPLES = {"tiny": 200}


class StudyError(ValueError):
    """A study that cannot be run or summarised as asked; the message says why in one line."""


@dataclass
class Plan:
    study: str
    label: str
    seed: int
    directory: Path
    options: list           # train options without --out, --seed, --resume

    def command(self, resume=False) -> list:
        if resume:
            return ["train", "--resume", str(self.directory), "--epochs", str(self.epochs)]
        return ["train", *self.options, "--seed", str(self.seed), "--out", str(self.directory)]

    @property
    def epochs(self) -> int:
        return int(option_value(self.options, "--epochs"))


def option_value(options, flag, default=None):
    """The value after ``flag`` in a list of command-line words, or ``default`` when the flag is absent."""
    return options[options.index(flag) + 1] if flag in options else default


def profile_text(name, profile) -> str:
    """What a profile trains, in words, for study.md and the command's first line."""
    def part(family):
        images_count, epochs = PROFILES[profile][family]
        return f"{'all' if images_count is None else f'{images_count:,}'} training images, {epochs} epoch(s)"
    factor = STUDIES[name].epochs_factor
    text = f"profile {profile}: MLPs {part('mlp')}, DCGANs {part('dcgan')}"
    return text + (f"; this study trains {factor} times as many epochs" if factor > 1 else "")


def plans(name, seeds, profile, out, extra=()) -> list[Plan]:
    if name not in STUDIES:
        raise StudyError(f"unknown study {name!r}: choose one of {', '.join(STUDIES)}")
    if profile not in PROFILES:
        raise StudyError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
    study, result = STUDIES[name], []
    for label, options in study.settings.items():
        arch = option_value(options, "--arch")
        images_count, epochs = PROFILES[profile]["mlp" if arch.startswith("mlp") else "dcgan"]
        sized = [*options, "--epochs", str(epochs * study.epochs_factor), "--eval-every", "1", "--quiet"]
        for option, value in {**REPORTS, **models.REPORT_SETTINGS.get(arch, {})}.items():
            flag = "--" + option.replace("_", "-")
            if flag not in options:
                sized += [flag, str(value)]
        if images_count is not None:   # at least one batch, which train asks of --limit
            sized += ["--limit", str(max(images_count, int(option_value(sized, "--batch-size"))))]
        if profile in EVAL_SAMPLES:
            sized += ["--eval-samples", str(EVAL_SAMPLES[profile]), "--eval-images", "64"]
        for seed in range(seeds):
            result.append(Plan(name, label, seed, Path(out) / name / label / f"seed-{seed}", sized + list(extra)))
    return result


def finished_epochs(directory: Path) -> int:
    """Epochs in a run directory's checkpoint: 0 when there is none (a new run, or killed before epoch 1)."""
    if not (directory / CHECKPOINT).is_file():
        return 0
    meta, _ = load_checkpoint(directory)
    return meta["epoch"]


def next_command(plan: Plan):
    """The train command that moves this run forward, or None when it has finished."""
    done = finished_epochs(plan.directory)
    if done >= plan.epochs:
        return None
    return plan.command(resume=done > 0)


def shell_line(arguments) -> str:
    return " ".join(shlex.quote(str(a)) for a in [sys.executable, "-m", "tinygan", *arguments])


def run(plans_to_run, jobs=1, log=print):
    """Train every unfinished run; jobs > 1 runs that many train processes at once, each with its share
    of the cores."""
    pending = [(plan, next_command(plan)) for plan in plans_to_run]
    pending = [(plan, command) for plan, command in pending if command is not None]
    skipped = len(plans_to_run) - len(pending)
    if skipped:
        log(f"{skipped} of {len(plans_to_run)} runs already finished: skipped")

    def one(item):
        plan, command = item
        plan.directory.parent.mkdir(parents=True, exist_ok=True)
        log_path = plan.directory.parent / f"{plan.directory.name}.log"
        with open(log_path, "a") as stream:
            result = subprocess.run([sys.executable, "-m", "tinygan", *command], stdout=stream,
                                    stderr=subprocess.STDOUT, env=threads.share_of_cores(jobs))
        if result.returncode in (130, -2):   # Ctrl-C reached the train process too: its checkpoint is intact
            raise KeyboardInterrupt
        if result.returncode != 0:
            tail = log_path.read_text().strip().splitlines()[-1:] or ["no output"]
            raise StudyError(f"{plan.label} seed {plan.seed} failed (exit {result.returncode}): {tail[0]} "
                             f"(log: {log_path})")
        log(f"finished {plan.study}/{plan.label} seed {plan.seed}")

    if jobs == 1:
        for item in pending:
            one(item)
    else:
        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(one, pending))


# ---------------------------------------------------------------- the summary

FIGURES = compare.FIGURES + (("s / epoch", "seconds_per_epoch", "{:.1f}"),)


def _mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def summarise(name, plans_done, profile, out: Path) -> str:
    """Write study.md, study.csv and the figures from the run directories; return the Markdown."""
    study = STUDIES[name]
    missing = [plan for plan in plans_done if not (plan.directory / "metrics.csv").is_file()]
    if missing:
        raise StudyError(f"{len(missing)} run(s) have not finished an epoch, e.g. {missing[0].directory}: run "
                         f"the study (or its printed commands) first")
    by_setting = {}
    for plan in plans_done:
        by_setting.setdefault(plan.label, []).append(compare.read_run(plan.directory))
    rows = []
    for label, runs in by_setting.items():
        row = {"setting": label, "seeds": len(runs), "epochs": max(r.rows[-1]["epoch"] for r in runs)}
        for _, key, _ in FIGURES:
            if key == "seconds_per_epoch":
                values = [statistics.median(r["seconds"] for r in run.rows) for run in runs]
            else:
                values = [run.measured[-1].get(key) if run.measured else None for run in runs]
            row[key], row[key + "_std"] = _mean_std(values)
        rows.append(row)
    directory = Path(out) / name
    directory.mkdir(parents=True, exist_ok=True)
    text = _markdown(name, study, rows, profile)
    write_text_atomically(directory / "study.md", text)
    write_text_atomically(directory / "study.csv", compare.csv_text(rows))
    averaged = [_average_run(label, runs) for label, runs in by_setting.items()]
    if any(run.measured for run in averaged):
        for against in ("epoch", "time"):
            write_atomically(directory / f"fid_vs_{against}.png", lambda stream, against=against: compare.plot_fid(
                averaged, list(by_setting), stream, against))
    write_atomically(directory / "samples.png", lambda stream: _sample_grids(by_setting, stream))
    return text


def _average_run(label, runs):
    """One Run whose rows are the seeds' means, epoch by epoch (over the epochs every seed reached)."""
    epochs = min(len(run.rows) for run in runs)
    rows = []
    for index in range(epochs):
        row = {"epoch": runs[0].rows[index]["epoch"],
               "seconds": statistics.fmean(run.rows[index]["seconds"] for run in runs)}
        fids = [run.rows[index].get("fid") for run in runs]
        row["fid"] = statistics.fmean(fids) if all(f is not None for f in fids) else None
        rows.append(row)
    return compare.Run(Path(label), runs[0].config, rows)


def _cell(mean, std, fmt):
    if mean is None:
        return "-"
    return compare._cell(mean, fmt) + ("" if std is None else " ± " + compare._cell(std, fmt))


def _markdown(name, study, rows, profile) -> str:
    seeds = max(row["seeds"] for row in rows)
    lines = [f"# Study `{name}` (report {study.report})", "", study.question, "",
             f"`python -m tinygan study {name} --seeds {seeds} --profile {profile}`: {profile_text(name, profile)}; "
             f"Adam's lr {REPORTS['lr']:g} and batch {REPORTS['batch_size']} as in the reports (report 001's MLPs "
             f"128, on pixels in [0, 1]) unless the setting says otherwise; "
             f"mean ± standard deviation over {seeds} seed(s), at the last epoch; FID, KID, precision and recall "
             f"on {EVAL_SAMPLES.get(profile, 2000):,} generated images.", ""]
    lines += [f"{note}" for note in study.notes] + ([""] if study.notes else [])
    labels = ["setting", "epochs"] + [label for label, _, _ in FIGURES]
    lines += ["| " + " | ".join(labels) + " |", "|" + " --- |" * len(labels)]
    for row in rows:
        cells = [f"`{row['setting']}`", str(row["epochs"])]
        cells += [_cell(row[key], row[key + "_std"], fmt) for _, key, fmt in FIGURES]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", _verdict(rows, seeds), "",
              "![FID against epoch](fid_vs_epoch.png)" if not study.plot_time else
              "![FID against training time](fid_vs_time.png) ![FID against epoch](fid_vs_epoch.png)",
              "", "![last sample grid of each setting, seed 0](samples.png)", ""]
    return "\n".join(lines)


def _verdict(rows, seeds) -> str:
    """Which setting has the lowest mean FID, and which others are within the seed-to-seed spread of it."""
    measured = [row for row in rows if row["fid"] is not None]
    if not measured:
        return "No FID was measured."
    best = min(measured, key=lambda row: row["fid"])
    text = f"Lowest mean FID: `{best['setting']}` ({best['fid']:.2f})."
    if len(measured) == 1:
        return f"FID at the last epoch: {best['fid']:.2f} (one setting: see the plot for its course over the epochs)."
    if seeds < 2:
        return text + " With one seed the spread between seeds is unknown: run with `--seeds 3` to tell."
    close = [row["setting"] for row in measured if row is not best and row["fid_std"] is not None
             and best["fid_std"] is not None
             and row["fid"] - best["fid"] <= math.hypot(row["fid_std"], best["fid_std"])]
    if close:
        text += (" Within one combined standard deviation of it (not told apart by these seeds): "
                 + ", ".join(f"`{label}`" for label in close) + ".")
    else:
        text += " Every other setting is more than one combined standard deviation above it."
    return text


def _sample_grids(by_setting, stream):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(by_setting), figsize=(3 * len(by_setting), 3.4), squeeze=False)
    for axis, (label, runs) in zip(axes[0], by_setting.items()):
        grids = sorted((runs[0].directory / "samples").glob("epoch_*.png"))
        if grids:
            axis.imshow(plt.imread(grids[-1]), cmap="gray")
        axis.set_title(label, fontsize=9)
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(stream, format="png", dpi=80)
    plt.close(figure)

