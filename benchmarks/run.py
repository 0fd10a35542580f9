"""Benchmarks: kernels, layers and whole GAN training steps, NumPy vs Numba vs CuPy, next to PyTorch.

    python -m benchmarks                 # quick: about 25 s on 2 CPU cores (python benchmarks/run.py alike)
    python -m benchmarks --full          # more repeats, batch 64 and 128
    python -m benchmarks --device gpu    # the CuPy backend (synchronised around every timed call)

Every figure is the median of repeated calls after warm-up, with min and max.
The terminal gets tables; a JSON file gets every figure with the machine, the
library versions and the settings. Where PyTorch is installed, the same
architectures built in PyTorch (benchmarks/torch_reference.py) are timed in
the same run as a reference column; PyTorch is never needed. Its training
step runs in a process of its own with the user's environment
(benchmarks/torch_worker.py), taking turns with tinygan's of a few steps in
a row each (benchmarks/timing.py, measure_pair), and is the faster of
PyTorch users' standard loop and tinygan's step translated; the per-layer
PyTorch times are taken in this process.
"""
from __future__ import annotations

import tinygan  # noqa: F401,I001  first, so that its thread settings (tinygan/threads.py) precede NumPy's loading

import csv
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import click
import numpy as np

from tinygan import backend, evaluation, kernels, models, threads
from tinygan.cuda_graph import CapturedStep
from tinygan.gan import GAN
from tinygan.kernels import reference
from tinygan.trainer import library_versions

ROOT = Path(__file__).resolve().parents[1]   # the repository, where the other processes start
if not __package__:   # run as `python benchmarks/run.py`: the repository root holds the benchmarks package
    sys.path.insert(0, str(ROOT))
from benchmarks.flops import first_layer_multiply_adds, model_multiply_adds, train_step_multiply_adds  # noqa: E402
from benchmarks.timing import measure, measure_pair, timed_call  # noqa: E402

# The convolutions of the dcgan architecture: (name, image (N excluded), kernel, stride, padding).
# For a ConvTranspose2D the "image" is its output: its forward is a col2im onto it, its backward an im2col of it.
DCGAN_CONVOLUTIONS = [
    ("D.0 Conv2D 1->64", (1, 28, 28), 5, 2, 2),
    ("D.3 Conv2D 64->128", (64, 14, 14), 5, 2, 2),
    ("G.4 ConvT 256->128", (128, 7, 7), 5, 1, 2),
    ("G.7 ConvT 128->64", (64, 14, 14), 5, 2, 2),
    ("G.10 ConvT 64->1", (1, 28, 28), 5, 2, 2),
]


def load_torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count())
    return torch


def machine(device):
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "gpu": backend.gpu_name() if device == "gpu" else None}


class Bench:
    """Holds the settings of one run and the device-specific pieces."""

    def __init__(self, device, full, torch, repeats=None):
        self.device, self.full, self.torch = device, full, torch
        self.repeats = repeats or (20 if full else 5)
        self.synchronize = backend.cupy.cuda.Device().synchronize if device == "gpu" else None
        self.torch_device = "cuda" if device == "gpu" else "cpu"
        if torch and device == "gpu" and not torch.cuda.is_available():
            self.torch = None

    def time(self, function, repeats=None, warmup=2):
        return measure(function, repeats or self.repeats, warmup, self.synchronize)

    def torch_synchronize(self):
        return self.torch.cuda.synchronize if self.torch_device == "cuda" else None

    def time_torch(self, function, repeats=None, warmup=2):
        return measure(function, repeats or self.repeats, warmup, self.torch_synchronize())

    def array(self, shape, seed=0):
        return backend.to_device(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def matmul_peak(bench):
    """GFLOP/s of a large float32 matrix product: the machine's ceiling for the convolutions."""
    n = 8192 if bench.device == "gpu" else 2048
    a, b = bench.array((n, n), 1), bench.array((n, n), 2)
    timing = bench.time(lambda: a @ b, repeats=5)
    return {"n": n, "seconds": timing, "gflops": 2 * n ** 3 / timing["median"] / 1e9}


def kernel_rows(bench, batch):
    """im2col and col2im for the dcgan's convolution shapes, each implementation."""
    if bench.device == "gpu":
        from tinygan.kernels import cupy_gpu
        implementations = {"reference (CuPy)": reference, "cupy": cupy_gpu}
    else:
        implementations = {"numpy (reference)": reference, "numba": kernels.numba_cpu}
    rows = []
    for name, image, k, s, p in DCGAN_CONVOLUTIONS:
        x = bench.array((batch,) + image)
        pair = (k, k), (s, s), (p, p)
        col = reference.im2col(x, *pair)
        for implementation, module in implementations.items():
            rows.append({"convolution": name, "implementation": implementation, "col_shape": list(col.shape),
                         "im2col": bench.time(lambda: module.im2col(x, *pair)),
                         "col2im": bench.time(lambda: module.col2im(col, image[1:], pair[1], pair[2]))})
    return rows


def record_shapes(model, x):
    """Each layer's input array and (input shape, output shape), from one forward pass."""
    inputs, shapes = [], []
    for layer in model:
        y = layer.forward(x, training=True)
        inputs.append(x)
        shapes.append((tuple(x.shape), tuple(y.shape)))
        x = y
    return inputs, shapes


def layer_rows(bench, arch, batch):
    """Forward and backward of every layer of G and D, each on the input it gets in training."""
    backend.seed(0)
    generator, discriminator = models.build(arch)
    rows = []
    for network, model, x in (("G", generator, bench.array((batch, 100))),
                              ("D", discriminator, bench.array((batch, 1, 28, 28)))):
        inputs, shapes = record_shapes(model, x)
        for index, (layer, x_in, (in_shape, out_shape)) in enumerate(zip(model, inputs, shapes)):
            dout = bench.array(out_shape, index)
            layer.forward(x_in, training=True)

            def backward():
                # Backward again on the same cache: it is still valid (nothing ran forward since), so re-arm the
                # one-backward-per-forward guard instead of timing a forward with every backward.
                layer.keep_output_shape(dout)
                return layer.backward(dout)

            row = {"arch": arch, "layer": f"{network}.{index} {layer!r}", "input": list(in_shape),
                   "forward": bench.time(lambda: layer.forward(x_in, training=True)),
                   "backward": bench.time(backward)}
            if bench.torch:
                row.update(torch_layer_times(bench, layer, x_in, dout))
            rows.append(row)
    return rows


def torch_layer_times(bench, layer, x_in, dout):
    from benchmarks.torch_reference import tensor, torch_layer
    torch = bench.torch
    module = torch_layer(layer, x_in.ndim).to(bench.torch_device).train()
    x = tensor(x_in, bench.torch_device).requires_grad_(True)
    grad = tensor(dout, bench.torch_device)
    forward = bench.time_torch(lambda: module(x))
    y = module(x)
    backward = bench.time_torch(lambda: torch.autograd.backward(y, grad, retain_graph=True))
    return {"torch_forward": forward, "torch_backward": backward}


def users_environment():
    """The environment the user started the benchmark with, without what tinygan/threads.py set for it:
    PyTorch's side runs with its own defaults."""
    return {key: value for key, value in os.environ.items() if key not in threads.applied}


def run_program(command, environment=None):
    """Run ``command`` from the repository root; its standard output, or one error naming it."""
    result = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return result.stdout


class TorchWorker:
    """PyTorch's training step in a process of its own, with the user's environment (benchmarks/torch_worker.py)."""

    def __init__(self, generator, discriminator, real, arch, device):
        self.directory = tempfile.TemporaryDirectory()
        state = Path(self.directory.name) / "state.npz"
        arrays = {f"{prefix}/{key}": value for prefix, model in (("generator", generator),
                                                                 ("discriminator", discriminator))
                  for key, value in model.state_dict().items()}
        np.savez(state, real=backend.as_numpy(real), **arrays)
        self.process = subprocess.Popen([sys.executable, "-m", "benchmarks.torch_worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=users_environment(), cwd=ROOT)
        self.ready = self._ask({"state": str(state), "arch": arch, "batch": len(real), "device": device})

    def _ask(self, message):
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f"the PyTorch worker stopped (exit {self.process.wait()})")
        return json.loads(answer)

    def step(self, way):
        """Seconds of one PyTorch step, timed in the worker (the pipe's round trip is not counted)."""
        return self._ask({"step": way})["seconds"]

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)
        self.directory.cleanup()


STEP_BLOCK = 5   # steps a side runs back to back per turn (benchmarks/timing.py, measure_pair)


def step_rows(bench, arch, batch):
    """One GAN.train_step (D step + G step) and the same step in PyTorch; on a GPU also the step captured as
    a CUDA graph (`train --cuda-graph`), against PyTorch the same way."""
    backend.seed(0)
    generator, discriminator = models.build(arch)
    _, generator_shapes = record_shapes(generator, bench.array((batch, 100)))
    _, discriminator_shapes = record_shapes(discriminator, bench.array((batch, 1, 28, 28)))
    counts = [(model_multiply_adds(model, shapes), first_layer_multiply_adds(model, shapes))
              for model, shapes in ((generator, generator_shapes), (discriminator, discriminator_shapes))]
    flops = 2 * train_step_multiply_adds(*counts)
    real = bench.array((batch, 1, 28, 28))
    row = {"arch": arch, "batch": batch, "gflop_per_step": flops / 1e9}
    worker = TorchWorker(generator, discriminator, real, arch, bench.device) if bench.torch else None
    gan = GAN(generator, discriminator)   # after the worker copied the weights: both start from the same ones

    def step():   # as the trainer runs it, and as PyTorch's step returns its losses: unread, as device values
        gan.train_step(real, read_losses=False)
    captured = CapturedStep(gan) if bench.device == "gpu" else None

    def captured_step():   # the first call runs uncaptured, the second captures: the warm-up calls
        captured(real, read_losses=False)
    try:
        if worker:
            # PyTorch at its best: the faster of its users' standard loop and tinygan's step translated
            ways = {way: measure(lambda way=way: worker.step(way), 3, warmup=2)["median"]
                    for way in ("standard", "translated")}
            row["torch_way"], row["torch_ways_median"] = min(ways, key=ways.get), ways
            row["torch_process"] = {"threads": worker.ready["threads"], "environment": worker.ready["environment"]}
            row["tinygan"], row["torch"], row["ratio_to_torch"] = measure_pair(
                lambda: timed_call(step, bench.synchronize),
                lambda: worker.step(row["torch_way"]), bench.repeats, warmup=3, block=STEP_BLOCK)
        else:
            row["tinygan"] = bench.time(step, warmup=3)
        if captured:
            try:   # a failed capture costs this figure, not the report
                if worker:
                    row["tinygan_graph"], _, row["graph_ratio_to_torch"] = measure_pair(
                        lambda: timed_call(captured_step, bench.synchronize),
                        lambda: worker.step(row["torch_way"]), bench.repeats, warmup=3, block=STEP_BLOCK)
                else:
                    row["tinygan_graph"] = bench.time(captured_step, warmup=3)
            except Exception as error:
                row["graph_error"] = f"{type(error).__name__}: {error}"
    finally:
        if worker:
            worker.close()
    for name in ("tinygan", "tinygan_graph", "torch"):
        if name in row:
            seconds = row[name]["median"]
            row[name].update(images_per_second=batch / seconds, epoch_seconds=60000 / batch * seconds,
                             gflops=flops / seconds / 1e9)
    return row


SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


EPOCHS = 3   # timed per side; the first is left out (compilation, caches, the GPU's clocks coming up)


def train_epoch_seconds(bench, arch, data_dir, images, *flags):
    """The seconds of each epoch of `python -m tinygan train` with its defaults (and ``flags``), in a process
    of its own."""
    with tempfile.TemporaryDirectory() as directory:
        run_dir = Path(directory) / "run"
        run_program([sys.executable, "-m", "tinygan", "train", "--arch", arch, "--device", bench.device,
                     "--epochs", str(EPOCHS), "--limit", str(images), "--eval-every", "0", "--quiet",
                     "--out", str(run_dir), "--data-dir", str(data_dir), *flags])
        with open(run_dir / "metrics.csv") as metrics:
            return [float(epoch["seconds"]) for epoch in csv.DictReader(metrics)]


def epoch_rows(bench, arch, data_dir, images):
    """Whole epochs of `python -m tinygan train` with its defaults (its own loop, weight average and all)
    against PyTorch's standard loop over the same images (benchmarks/torch_epoch.py), each in a process
    of its own: what a user waits for, where the step table times one step in isolation. On a GPU
    `train --cuda-graph` as well."""
    if data_dir is None or not Path(data_dir).is_dir():
        return {"arch": arch, "skipped": f"no MNIST directory {data_dir or ''}: pass --data-dir"}
    row = {"arch": arch, "images": images, "batch": 64, "epochs": EPOCHS}
    ways = {"tinygan": []}
    if bench.device == "gpu":
        ways["tinygan_graph"] = ["--cuda-graph"]
    for name, flags in ways.items():
        try:
            seconds = train_epoch_seconds(bench, arch, data_dir, images, *flags)
        except RuntimeError as error:
            if not flags:
                raise
            row["graph_error"] = str(error)   # a failed capture costs this figure, not the report
            continue
        row[name] = {"seconds": seconds, "median": float(np.median(seconds[1:]))}
    if bench.torch:
        command = [sys.executable, "-m", "benchmarks.torch_epoch", "--arch", arch, "--device", bench.device,
                   "--epochs", str(EPOCHS), "--images", str(images), "--data-dir", str(data_dir)]
        answer = json.loads(run_program(command, users_environment()).strip().splitlines()[-1])
        row["torch"] = {"seconds": answer["seconds"], "median": float(np.median(answer["seconds"][1:])),
                        "threads": answer["threads"]}
        row["ratio_to_torch"] = row["tinygan"]["median"] / row["torch"]["median"]
        if "tinygan_graph" in row:
            row["graph_ratio_to_torch"] = row["tinygan_graph"]["median"] / row["torch"]["median"]
    return row


def eval_rows(data_dir, n=10_000):
    """`tinygan eval` on n images (MNIST test images standing in for generated ones: generation excluded),
    cold (the real side computed, as on a first call) and warm (the real side from the cache), with the parts."""
    import tempfile

    from tinygan import data
    try:
        images = data.load("mnist", data_dir, download=False).test_images[:n]
    except data.DataError as error:
        return {"skipped": str(error)}
    rows = {}
    with tempfile.TemporaryDirectory() as cache:
        previous = os.environ.get("XDG_CACHE_HOME")
        os.environ["XDG_CACHE_HOME"] = cache
        try:
            for state in ("cold", "warm"):
                evaluators = []   # the loading of the classifier and the data counts too
                seconds = timed_call(lambda: evaluators.append(evaluation.Evaluator("mnist", data_dir))
                                     or evaluators[0].evaluate(images))
                rows[state] = {"n": len(images), "seconds": seconds, "parts": dict(evaluators[0].timings)}
        finally:
            if previous is None:
                del os.environ["XDG_CACHE_HOME"]
            else:
                os.environ["XDG_CACHE_HOME"] = previous
    return rows


def peak_memory(bench):
    memory = {"process_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if bench.device == "gpu":
        pool = backend.cupy.get_default_memory_pool()
        memory["gpu_pool_total_mb"] = pool.total_bytes() / 2**20
        memory["gpu_pool_used_mb"] = pool.used_bytes() / 2**20
    return memory


def ms(timing):
    return f"{timing['median'] * 1e3:9.2f} [{timing['min'] * 1e3:.2f}-{timing['max'] * 1e3:.2f}]"


def print_report(report):
    say = click.echo
    say(f"tinygan benchmarks, {report['date']}, device {report['settings']['device']}, "
        f"{'full' if report['settings']['full'] else 'quick'} mode")
    say(f"machine: {report['machine']['cpu']}, {report['machine']['cores']} cores"
        + (f", {report['machine']['gpu']}" if report['machine']['gpu'] else ""))
    say("versions: " + ", ".join(f"{name} {report['versions'][name]}" for name in
                                 ("tinygan", "python", "numpy", "numba", "threadpoolctl", "cupy", "torch")
                                 if report["versions"].get(name)))
    peak = report["matmul"]
    say(f"\nmatrix product {peak['n']}x{peak['n']} float32: {peak['gflops']:.0f} GFLOP/s (the ceiling)")
    say("\nim2col / col2im, ms: median [min-max]")
    for row in report["kernels"]:
        say(f"  {row['convolution']:<22} {row['implementation']:<18} im2col {ms(row['im2col'])}  "
            f"col2im {ms(row['col2im'])}")
    say("\nlayers, ms: median [min-max]" + ("; torch forward / backward medians" if report["versions"]["torch"]
                                              else ""))
    for row in report["layers"]:
        torch_text = (f"  torch {row['torch_forward']['median'] * 1e3:7.2f} / {row['torch_backward']['median'] * 1e3:7.2f}"
                      if "torch_forward" in row else "")
        say(f"  {row['arch']:<6} {row['layer'][:58]:<58} fwd {ms(row['forward'])} bwd {ms(row['backward'])}"
            + torch_text)
    say("\ntraining step (D step + G step), ms: median [min-max]")
    for row in report["train_step"]:
        for name, label in (("tinygan", "tinygan"), ("tinygan_graph", "graph"), ("torch", "torch")):
            if name in row:
                t = row[name]
                say(f"  {row['arch']:<6} batch {row['batch']:<4} {label:<8} {ms(t)}  {t['images_per_second']:7.0f} img/s  "
                    f"epoch {t['epoch_seconds']:6.1f} s  {t['gflops']:6.1f} GFLOP/s "
                    f"({t['gflops'] / peak['gflops']:.0%} of the matrix-product ceiling, counting the direct "
                    f"convolutions' FLOP)")
        if "ratio_to_torch" in row:
            ratio = row["ratio_to_torch"]
            ways = ", ".join(f"{way} {seconds * 1e3:.1f} ms" for way, seconds in row["torch_ways_median"].items())
            say(f"  {'':<6} {'':<10} tinygan / torch = {ratio['median']:.2f} [{ratio['min']:.2f}-{ratio['max']:.2f}]"
                f" (median of {ratio['repeats']} ratios, the two sides taking turns of {STEP_BLOCK} steps in a row; "
                f"PyTorch in its own "
                f"process with its default threads, its faster loop: {row['torch_way']}; {ways})")
        if "graph_error" in row:
            say(f"  {'':<6} {'':<10} captured as a CUDA graph: failed, {row['graph_error']}")
        if "graph_ratio_to_torch" in row:
            ratio = row["graph_ratio_to_torch"]
            say(f"  {'':<6} {'':<10} tinygan captured as a CUDA graph / torch = {ratio['median']:.2f} "
                f"[{ratio['min']:.2f}-{ratio['max']:.2f}] (timed the same way)")
    if report.get("eval"):
        say("\ntinygan eval (generation excluded), seconds: cold computes the real side, warm reads it from the cache")
        for state, row in report["eval"].items():
            if state == "skipped":
                say(f"  skipped: {row}")
                continue
            parts = ", ".join(f"{name} {seconds:.1f}" for name, seconds in row["parts"].items())
            say(f"  {state:<5} {row['n']:,} images {row['seconds']:6.1f}  ({parts})")
    if report.get("epoch"):
        say(f"\nwhole epochs of `train` (its defaults) against PyTorch's standard loop, each in a process of its "
            f"own; seconds, median of epochs 2-{EPOCHS}")
        for row in report["epoch"]:
            if "skipped" in row:
                say(f"  skipped: {row['skipped']}")
                continue
            line = f"  {row['arch']:<6} {row['images']:,} images  tinygan {row['tinygan']['median']:7.2f}"
            if "tinygan_graph" in row:
                line += f"  with --cuda-graph {row['tinygan_graph']['median']:7.2f}"
            if "torch" in row:
                line += f"  PyTorch {row['torch']['median']:7.2f}  tinygan / PyTorch {row['ratio_to_torch']:.2f}"
            if "graph_ratio_to_torch" in row:
                line += f", with --cuda-graph {row['graph_ratio_to_torch']:.2f}"
            say(line)
            if "graph_error" in row:
                say(f"  --cuda-graph failed: {row['graph_error']}")
    say("\nmemory: " + ", ".join(f"{k} {v:.0f}" for k, v in report["memory"].items()))


@click.command()
@click.option("--device", type=click.Choice(backend.DEVICES), default="cpu", show_default=True)
@click.option("--full", is_flag=True, help="More repeats, and batch 128 as well as 64.")
@click.option("--no-torch", is_flag=True, help="Skip the PyTorch reference column even where torch is installed.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Where to write every figure [default: runs/benchmarks/<date>-<device>.json].")
@click.option("--only", type=click.Choice(["kernels", "layers", "step", "eval", "epoch"]), multiple=True,
              help="Run only these sections (repeatable). 'epoch' (whole epochs of `train` against PyTorch's "
                   "standard loop) runs only when asked for: a dcgan epoch takes minutes on a CPU.")
@click.option("--arch", "archs", type=click.Choice(["mlp", "dcgan"]), multiple=True,
              help="Time only these networks' layers and steps (repeatable) [default: both].")
@click.option("--repeats", type=click.IntRange(min=1), default=None,
              help="Timed calls per figure [default: 5, or 20 with --full].")
@click.option("--data-dir", type=click.Path(file_okay=False),
              default=str(SHARED_MNIST) if SHARED_MNIST.is_dir() else None,
              help="MNIST for the eval section [default: ../shared/data/mnist beside the checkout, else the search "
                   "order of `train`].")
@click.option("--eval-images", type=click.IntRange(min=evaluation.MIN_IMAGES), default=10_000, show_default=True,
              help="Images the eval section measures.")
@click.option("--epoch-images", type=click.IntRange(min=64), default=60_000, show_default=True,
              help="Training images in an epoch of the epoch section.")
def main(device, full, no_torch, json_path, only, archs, repeats, data_dir, eval_images, epoch_images):
    """Time tinygan's kernels, layers and training steps (see benchmarks/run.py)."""
    try:
        backend.use_device(device)
    except backend.BackendError as error:
        sys.exit(f"Error: {error}")
    torch = None if no_torch else load_torch()
    bench = Bench(device, full, torch, repeats)
    if torch and not bench.torch:
        click.echo(f"PyTorch {torch.__version__} cannot reach a CUDA device: its column is left out", err=True)
    sections = set(only) or {"kernels", "layers", "step", "eval"}
    archs = [arch for arch in ("dcgan", "mlp") if arch in archs or not archs]
    now = datetime.datetime.now(datetime.timezone.utc)
    batches = (64, 128) if full else (64,)
    report = {"date": now.isoformat(timespec="seconds"), "machine": machine(device), "versions": dict(library_versions(), torch=torch.__version__ if torch else None),
              "settings": {"device": device, "full": full, "repeats": bench.repeats, "batches": list(batches),
                           "archs": archs,
                           "cpu_kernels": kernels.cpu_kernels(), "threads": os.cpu_count(),
                           "environment": {k: os.environ.get(k) for k in
                                           ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT", "OMP_NUM_THREADS")}},
              "matmul": matmul_peak(bench), "kernels": [], "layers": [], "train_step": [], "eval": {}, "epoch": []}
    if "kernels" in sections:
        report["kernels"] = kernel_rows(bench, 64)
    if "layers" in sections:
        report["layers"] = [row for arch in archs for row in layer_rows(bench, arch, 64)]
    if "step" in sections:
        report["train_step"] = [step_rows(bench, arch, batch) for arch in archs for batch in batches]
    if "eval" in sections:
        report["eval"] = eval_rows(data_dir, eval_images)
    if "epoch" in sections:
        report["epoch"] = [epoch_rows(bench, arch, data_dir, epoch_images) for arch in archs]
    report["memory"] = peak_memory(bench)
    path = Path(json_path or Path("runs") / "benchmarks" / f"{now:%Y%m%d-%H%M%S}-{device}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")   # first: the figures outlive a failure to print them
    print_report(report)
    click.echo(f"\nwrote {path}")


if __name__ == "__main__":
    main()
