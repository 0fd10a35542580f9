"""The speed targets, each read from benchmark reports and said met or not.

    python -m benchmarks.targets REPORT.json [REPORT.json ...]

A report is the JSON `python -m benchmarks --json` writes. Each target but one (a step time in ms)
is a ratio measured side by side in one run (tinygan's median over PyTorch's at its best, each in a
process of its own); a target whose figure is in none of the reports is listed as not measured.
Exits 0 either way: the targets are goals, and a report that misses one is still a report.
"""
import json
import sys
from pathlib import Path

# (device, what, where a report has it: section, arch, batch, kind of figure; the bound; a stretch goal or not).
# On a GPU each target is read twice: for the step as it runs by default, and captured as a CUDA graph
# (`train --cuda-graph`).
TARGETS = [
    *(("gpu", f"step, dcgan batch 64, tinygan{way} / PyTorch", ("train_step", "dcgan", 64, f"ratio{way}"),
       ("<", 1.0), False) for way in ("", " graph")),
    *(("gpu", f"step, dcgan batch 128, tinygan{way} / PyTorch", ("train_step", "dcgan", 128, f"ratio{way}"),
       ("<", 1.0), False) for way in ("", " graph")),
    *(("gpu", f"step, mlp batch 64, tinygan{way} / PyTorch", ("train_step", "mlp", 64, f"ratio{way}"),
       ("<", 1.0), False) for way in ("", " graph")),
    *(("gpu", f"step, dcgan batch 64, tinygan{way}, ms", ("train_step", "dcgan", 64, f"ms{way}"), ("<=", 3.0), True)
      for way in ("", " graph")),
    *(("gpu", f"epoch of train, dcgan, tinygan{way} / PyTorch", ("epoch", "dcgan", None, f"ratio{way}"),
       ("<", 1.0), False) for way in ("", " graph")),
    ("cpu", "step, dcgan batch 64, tinygan / PyTorch", ("train_step", "dcgan", 64, "ratio"), ("<=", 1.25), False),
    ("cpu", "step, dcgan batch 64, tinygan / PyTorch", ("train_step", "dcgan", 64, "ratio"), ("<=", 1.0), True),
    ("cpu", "step, mlp batch 64, tinygan / PyTorch", ("train_step", "mlp", 64, "ratio"), ("<", 1.0), False),
]


# kind of figure: (where a row keeps it, ms or ratio)
KINDS = {"ms": ("tinygan", "ms"), "ratio": ("ratio_to_torch", "ratio"),
         "ms graph": ("tinygan_graph", "ms"), "ratio graph": ("graph_ratio_to_torch", "ratio")}


def figure(report, section, arch, batch, kind):
    """The target's number in this report, or None."""
    key, unit = KINDS[kind]
    for row in report.get(section) or []:
        if row.get("arch") != arch or (batch is not None and row.get("batch") != batch):
            continue
        if key not in row:
            return None
        if unit == "ms":
            return row[key]["median"] * 1e3
        ratio = row[key]
        return ratio["median"] if isinstance(ratio, dict) else ratio
    return None


def rows(reports):
    """(device, what, bound, stretch, measured or None, the machine it was measured on) for every target."""
    for device, what, (section, arch, batch, kind), bound, stretch in TARGETS:
        measured, machine = None, None
        for report in reports:
            if report["settings"]["device"] == device:
                value = figure(report, section, arch, batch, kind)
                if value is not None:
                    measured, machine = value, report["machine"].get("gpu") or report["machine"]["cpu"]
        yield device, what, bound, stretch, measured, machine


def met(measured, bound):
    operator, goal = bound
    return measured < goal if operator == "<" else measured <= goal


def read_reports(paths):
    """The reports that can be read; each that cannot is named in one line on stderr and left out, so that a
    failed benchmark's missing report shows as "not measured" beside the others' figures."""
    reports = []
    for path in paths:
        try:
            reports.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as error:
            reason = "no such file" if isinstance(error, FileNotFoundError) else error
            print(f"targets: left out {path} ({reason}); make it with `python -m benchmarks ... --json {path}`",
                  file=sys.stderr)
    return reports


def main(paths):
    reports = read_reports(paths)
    print(f"{'device':<6} {'target':<50} {'goal':>7} {'measured':>9}  verdict")
    for device, what, bound, stretch, measured, machine in rows(reports):
        if measured is None:
            shown, verdict = "-", "not measured"
        else:
            shown = f"{measured:.2f}"
            verdict = f"{'met' if met(measured, bound) else 'not met'}{' (stretch goal)' if stretch else ''}, on {machine}"
        print(f"{device:<6} {what:<50} {bound[0] + ' ' + format(bound[1], 'g'):>7} {shown:>9}  {verdict}")
    return 0 if len(reports) == len(paths) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
