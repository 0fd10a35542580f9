"""The benchmark suite runs (benchmarks rot when nothing runs them); its figures are not judged here."""
import json
import subprocess
import sys
from pathlib import Path

from conftest import SHARED_MNIST

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_writes_every_section(tmp_path):
    path = tmp_path / "report.json"
    result = subprocess.run([sys.executable, "-m", "benchmarks", "--repeats", "1", "--no-torch", "--json", str(path),
                             "--eval-images", "200"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(path.read_text())
    assert {"date", "machine", "versions", "settings", "matmul", "kernels", "layers", "train_step", "eval",
            "memory"} <= set(report)
    assert report["matmul"]["gflops"] > 0 and report["memory"]["process_peak_mb"] > 0
    assert {row["implementation"] for row in report["kernels"]} == {"numpy (reference)", "numba"}
    assert len(report["kernels"]) == 2 * 5
    layers = [row["layer"] for row in report["layers"]]
    assert any(name.startswith("G.4 ConvTranspose2D") for name in layers) and any("Dropout" in n for n in layers)
    steps = {(row["arch"], row["batch"]): row for row in report["train_step"]}
    assert set(steps) == {("mlp", 64), ("dcgan", 64)}
    dcgan = steps[("dcgan", 64)]
    assert 0.45 < dcgan["gflop_per_step"] / 64 < 0.55   # about 0.5 GFLOP per image, as counted by hand
    timing = dcgan["tinygan"]
    assert timing["min"] <= timing["median"] <= timing["max"]
    assert abs(timing["epoch_seconds"] - 60000 / 64 * timing["median"]) < 1e-6
    assert "tinygan / torch" not in result.stdout and "training step" in result.stdout
    if SHARED_MNIST.is_dir():
        for state in ("cold", "warm"):
            assert report["eval"][state]["n"] == 200 and report["eval"][state]["seconds"] > 0
            parts = set(report["eval"][state]["parts"])
            assert {"features", "fid", "kid", "precision/recall", "nearest train"} <= parts


def test_run_py_also_runs_as_a_script():
    """The issue names both entry points: `python -m benchmarks` and `python benchmarks/run.py`."""
    result = subprocess.run([sys.executable, "benchmarks/run.py", "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--device" in result.stdout and "--full" in result.stdout


def test_pytorchs_step_runs_in_its_own_process_with_the_users_environment(tmp_path):
    """Where PyTorch is installed (never needed by tinygan): the worker's protocol and the step table's column."""
    import os

    import pytest
    pytest.importorskip("torch")
    path = tmp_path / "report.json"
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT")}
    result = subprocess.run([sys.executable, "-m", "benchmarks", "--repeats", "1", "--only", "step", "--arch", "mlp",
                             "--json", str(path)], cwd=ROOT, capture_output=True, text=True, timeout=600, env=environment)
    assert result.returncode == 0, result.stderr
    rows = json.loads(path.read_text())["train_step"]
    assert [(row["arch"], row["batch"]) for row in rows] == [("mlp", 64)]   # --arch: only the network asked for
    for row in rows:
        assert row["torch_way"] in ("standard", "translated") and set(row["torch_ways_median"]) == {
            "standard", "translated"}
        assert row["ratio_to_torch"]["median"] > 0
        assert row["torch_process"]["environment"]["OMP_WAIT_POLICY"] is None   # the user's, not tinygan's
    assert "PyTorch in its own process with its default threads" in result.stdout


def test_the_epoch_section_times_whole_epochs_of_train(tmp_path):
    """Only when asked for: `train` itself, in a process of its own, on the images asked for; and where
    PyTorch is installed, its standard loop over the same images in another."""
    import importlib.util

    import pytest
    if not SHARED_MNIST.is_dir():
        pytest.skip(f"no MNIST copy at {SHARED_MNIST}")
    with_torch = importlib.util.find_spec("torch") is not None
    path = tmp_path / "report.json"
    result = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "epoch", "--arch", "mlp",
                             "--epoch-images", "640", "--data-dir", str(SHARED_MNIST), "--json", str(path)]
                            + ([] if with_torch else ["--no-torch"]), cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(path.read_text())
    assert report["train_step"] == [] and report["kernels"] == []   # the other sections were not asked for
    [row] = report["epoch"]
    assert (row["arch"], row["images"], row["batch"]) == ("mlp", 640, 64)
    sides = ("tinygan", "torch") if with_torch else ("tinygan",)
    for side in sides:
        assert len(row[side]["seconds"]) == row["epochs"] == 3 and row[side]["median"] > 0
    assert ("ratio_to_torch" in row) == with_torch
    assert "whole epochs of `train`" in result.stdout


def test_targets_say_met_not_met_and_not_measured(tmp_path, capsys):
    """benchmarks/targets.py on two made-up reports: one CPU run, one GPU epoch run."""
    from benchmarks import targets

    def step(arch, ratio):
        return {"arch": arch, "batch": 64, "tinygan": {"median": 0.2}, "ratio_to_torch": {"median": ratio}}

    cpu = {"settings": {"device": "cpu"}, "machine": {"cpu": "a CPU", "gpu": None},
           "train_step": [step("dcgan", 1.1), step("mlp", 1.02)]}
    gpu = {"settings": {"device": "gpu"}, "machine": {"cpu": "a CPU", "gpu": "a GPU"},
           "epoch": [{"arch": "dcgan", "tinygan": {"median": 9.0}, "ratio_to_torch": 1.1,
                      "tinygan_graph": {"median": 7.0}, "graph_ratio_to_torch": 0.85}]}
    paths = []
    for name, report in (("cpu", cpu), ("gpu", gpu)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(report))
    targets.main(paths)
    out = " ".join(capsys.readouterr().out.split())   # the columns' padding aside
    assert "gpu epoch of train, dcgan, tinygan / PyTorch < 1 1.10 not met, on a GPU" in out
    assert "gpu epoch of train, dcgan, tinygan graph / PyTorch < 1 0.85 met, on a GPU" in out
    assert "cpu step, dcgan batch 64, tinygan / PyTorch <= 1.25 1.10 met, on a CPU" in out
    assert "cpu step, dcgan batch 64, tinygan / PyTorch <= 1 1.10 not met (stretch goal), on a CPU" in out
    assert "cpu step, mlp batch 64, tinygan / PyTorch < 1 1.02 not met, on a CPU" in out
    assert out.count("not measured") == 8   # the GPU step targets, each with and without a CUDA graph


def test_targets_leave_out_a_missing_or_broken_report_in_one_line_and_show_the_rest(tmp_path, capsys):
    """gpu_check.sh passes the GPU benchmark's report even when that benchmark failed: the epoch report's
    figures still show, and the missing one is named, not a traceback."""
    from benchmarks import targets

    epoch = tmp_path / "epoch.json"
    epoch.write_text(json.dumps({"settings": {"device": "gpu"}, "machine": {"cpu": "a CPU", "gpu": "a GPU"},
                                 "epoch": [{"arch": "dcgan", "tinygan": {"median": 9.0}, "ratio_to_torch": 0.9}]}))
    broken = tmp_path / "broken.json"
    broken.write_text('{"settings": ')
    assert targets.main([tmp_path / "missing.json", broken, epoch]) == 1
    captured = capsys.readouterr()
    errors = captured.err.splitlines()
    assert len(errors) == 2 and "missing.json (no such file)" in errors[0] and "broken.json" in errors[1]
    assert all("make it with `python -m benchmarks ... --json" in line for line in errors)
    assert "gpu epoch of train, dcgan, tinygan / PyTorch < 1 0.90 met, on a GPU" in " ".join(captured.out.split())


def test_the_report_shows_the_captured_step_and_says_when_a_capture_failed(capsys):
    """A GPU report's rows with the step captured as a CUDA graph, and with a capture that failed, printed
    (made-up figures: those sections first run on a GPU)."""
    from benchmarks.run import print_report
    timing = {"median": 0.004, "min": 0.0035, "max": 0.005, "images_per_second": 16000, "epoch_seconds": 3.8,
              "gflops": 8000.0}
    ratio = {"median": 0.8, "min": 0.7, "max": 0.9, "repeats": 20}
    step = {"arch": "dcgan", "batch": 64, "tinygan": timing, "tinygan_graph": timing, "torch": timing,
            "ratio_to_torch": ratio, "graph_ratio_to_torch": ratio, "torch_way": "standard",
            "torch_ways_median": {"standard": 0.006, "translated": 0.007}}
    failed = {"arch": "mlp", "batch": 64, "tinygan": timing, "graph_error": "NotImplementedError: no capture"}
    epoch = {"arch": "dcgan", "images": 60000, "tinygan": {"median": 9.0}, "tinygan_graph": {"median": 6.0},
             "torch": {"median": 7.5}, "ratio_to_torch": 1.2, "graph_ratio_to_torch": 0.8}
    print_report({"date": "2026-11-29", "settings": {"device": "gpu", "full": True},
                  "machine": {"cpu": "a CPU", "cores": 16, "gpu": "a GPU"},
                  "versions": {"tinygan": "0", "python": "3", "numpy": "2", "numba": None, "cupy": "14", "torch": "2"},
                  "matmul": {"n": 4096, "gflops": 50000.0}, "kernels": [], "layers": [], "train_step": [step, failed],
                  "eval": {}, "epoch": [epoch, dict(epoch, graph_error="train --cuda-graph failed")], "memory": {}})
    out = capsys.readouterr().out
    assert "graph         4.00 [3.50-5.00]" in out and "captured as a CUDA graph / torch = 0.80 [0.70-0.90]" in out
    assert "captured as a CUDA graph: failed, NotImplementedError: no capture" in out
    assert "with --cuda-graph    6.00" in out and ", with --cuda-graph 0.80" in out
    assert "--cuda-graph failed: train --cuda-graph failed" in out


def test_measure_pair_in_turns_counts_the_steps_of_a_running_loop():
    """With block > 1 the first call of each turn (after the other side's) is left out, as it is no step of
    a training loop; with block 1 every call is such a first call."""
    from benchmarks.timing import measure_pair
    history = []

    def side(name, seconds):
        def call():
            first_of_turn = history[-1:] != [name]
            history.append(name)
            return seconds * (10 if first_of_turn else 1)
        return call

    a, b, ratio = measure_pair(side("a", 2.0), side("b", 1.0), repeats=4, warmup=1, block=3)
    assert (a["median"], b["median"], ratio["median"]) == (2.0, 1.0, 2.0)
    assert history.count("a") == 1 + 4 * (1 + 3)
    a, b, ratio = measure_pair(side("a", 2.0), side("b", 1.0), repeats=4, warmup=1)
    assert (a["median"], b["median"]) == (20.0, 10.0)
