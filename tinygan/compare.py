"""`tinygan compare`: several runs side by side, by the settings in which they differ and their quality.

Each run directory gives its config.json and metrics.csv (with the eval
columns that ``train --eval-every`` adds). The table has one row per run: the
settings that differ between the runs, then the last measured epoch's
figures, the best FID and its epoch, and the median seconds per epoch. The
plots draw FID against epoch and against cumulative training time, one line
per run, which is how "better" and "better per second" are told apart.
"""
from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass
from pathlib import Path

from .files import write_atomically
from .trainer import load_config, write_text_atomically

# Settings that never explain a difference in quality: where the run went and how it was watched.
IGNORED = {"out", "versions", "quiet", "data_dir", "resume", "eval_every", "device"}
FIGURES = (("FID", "fid", "{:.2f}"), ("KID", "kid", "{:.4f}"), ("precision", "precision", "{:.3f}"),
           ("recall", "recall", "{:.3f}"), ("class entropy", "class_entropy_bits", "{:.2f}"),
           ("rarest class", "rarest_class_share", "{:.3f}"))


@dataclass
class Run:
    directory: Path
    config: dict
    rows: list   # metrics.csv, numbers parsed, empty cells as None

    @property
    def measured(self):
        return [row for row in self.rows if row.get("fid") is not None]


def _number(text):
    if text in ("", None):
        return None
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def read_run(directory) -> Run:
    directory = Path(directory)
    config = load_config(directory)
    path = directory / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{directory} holds no metrics.csv: has it finished an epoch?")
    with open(path, newline="") as stream:
        rows = [{key: _number(value) for key, value in row.items()} for row in csv.DictReader(stream)]
    return Run(directory, config, rows)


def differing_settings(runs):
    """The config keys whose values are not the same in every run, in the first run's order."""
    keys = dict.fromkeys(key for run in runs for key in run.config if key not in IGNORED)
    return [key for key in keys if len({repr(run.config.get(key)) for run in runs}) > 1]


def summary(run: Run, settings) -> dict:
    """One table row: the differing settings, the final and best figures, the time per epoch."""
    row = {"run": run.directory.name}
    row.update({key: run.config.get(key) for key in settings})
    row["epochs"] = run.rows[-1]["epoch"] if run.rows else 0
    last = run.measured[-1] if run.measured else {}
    for _, key, _ in FIGURES:
        row[key] = last.get(key)
    best = min(run.measured, key=lambda r: r["fid"]) if run.measured else {}
    row["best_fid"], row["best_epoch"] = best.get("fid"), best.get("epoch")
    row["seconds_per_epoch"] = statistics.median(r["seconds"] for r in run.rows) if run.rows else None
    return row


def _cell(value, fmt="{}"):
    if value is None:
        return "-"
    return fmt.format(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def markdown(rows, settings) -> str:
    formats = dict({key: fmt for _, key, fmt in FIGURES}, best_fid="{:.2f}", seconds_per_epoch="{:.1f}")
    labels = (["run"] + settings + ["epochs"] + [label for label, _, _ in FIGURES]
              + ["best FID", "at epoch", "s / epoch"])
    keys = ["run"] + settings + ["epochs"] + [key for _, key, _ in FIGURES] + ["best_fid", "best_epoch",
                                                                                "seconds_per_epoch"]
    lines = ["| " + " | ".join(labels) + " |", "|" + " --- |" * len(labels)]
    lines += ["| " + " | ".join(_cell(row[key], formats.get(key, "{}")) for key in keys) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_text(rows) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def log_y_axis(ax):
    """Make a matplotlib Axes' y axis logarithmic, its ticks labelled 20, 30, 50 rather than 2 x 10^1.

    FIDs span a decade or two, so a log axis shows early and late epochs alike. Minor ticks get labels
    while the axis spans under two decades, all of them while it spans under half a decade.
    """
    from matplotlib.ticker import LogFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(LogFormatter())
    ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def plot_fid(runs, labels, target, against="epoch"):
    """FID of each run against the epoch or against cumulative training seconds, one line per run."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axis = plt.subplots(figsize=(7, 4.5), dpi=100)
    for run, label in zip(runs, labels):
        elapsed, xs, ys = 0.0, [], []
        for row in run.rows:
            elapsed += row["seconds"]
            if row.get("fid") is not None:
                xs.append(row["epoch"] if against == "epoch" else elapsed)
                ys.append(row["fid"])
        axis.plot(xs, ys, marker="o", markersize=3, label=label)
    axis.set_xlabel("epoch" if against == "epoch" else "training time, seconds")
    axis.set_ylabel("FID (lower is better)")
    log_y_axis(axis)
    if against == "epoch":
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(target, format="png")
    plt.close(figure)


def run_label(run: Run, settings) -> str:
    """A run's name in a legend: its differing settings, or its directory when none differ."""
    if not settings:
        return run.directory.name
    return ", ".join(f"{key}={run.config.get(key)}" for key in settings)


def compare(directories, out: Path | None = None):
    """Read the runs, return the Markdown table; with ``out``, also write compare.md/.csv and the plots."""
    runs = [read_run(directory) for directory in directories]
    settings = differing_settings(runs)
    rows = [summary(run, settings) for run in runs]
    table = markdown(rows, settings)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomically(out / "compare.md", table)
        write_text_atomically(out / "compare.csv", csv_text(rows))
        labels = [run_label(run, settings) for run in runs]
        if any(run.measured for run in runs):
            for against in ("epoch", "time"):
                write_atomically(out / f"fid_vs_{against}.png",
                                 lambda stream, against=against: plot_fid(runs, labels, stream, against))
    return table, rows
