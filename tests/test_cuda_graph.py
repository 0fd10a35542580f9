"""A training step captured as a CUDA graph (tinygan/cuda_graph.py).

Without a GPU: the per-step values (what the host works out before each
replay, in order) and the refusals. With one: N captured steps against N
uncaptured ones from the same state, and fresh dropout masks and noise at
every replay of a graph.
"""
import csv
import ctypes
import ctypes.util
import gc
import sys
import types

import numpy as np
import pytest

from conftest import SHARED_MNIST, requires_mnist, skip_without_gpu
from tinygan import backend, models
from tinygan.cuda_graph import CapturedStep, PerStep, StepValues, keep_alive, per_step, recording
from tinygan.gan import GAN
from tinygan.kernels import cublas


def test_outside_a_capture_per_step_is_the_value_itself():
    calls = []
    assert per_step(lambda: calls.append(1) or 7) == 7 and calls == [1]
    keep_alive(np.zeros(3))   # nothing to hold: no error, no effect


def test_values_are_worked_out_before_every_replay_in_the_order_the_step_asked():
    counts, keys = [], np.random.default_rng(5)
    values = StepValues(np)
    with recording(values):
        count = per_step(lambda: counts.append(len(counts) + 1) or len(counts))
        key = per_step(lambda: int(keys.integers(2**63)))
        corrections = count.on_device(np.float64, lambda t: (0.5 ** t, t + 0.25), size=2)
        key_on_device = key.on_device(np.uint64)
        assert isinstance(count, PerStep) and counts == []   # recorded, not worked out
        assert key.on_device(np.uint64) is key_on_device      # a dropout's backward reads its forward's key
    assert per_step(lambda: 3) == 3                            # the capture is over
    expected_keys = np.random.default_rng(5).integers(2**63, size=3)
    for step in (1, 2, 3):
        values.prepare()
        values.upload()
        assert count.value == step
        np.testing.assert_array_equal(corrections, [0.5 ** step, step + 0.25])
        assert key_on_device.dtype == np.uint64 and int(key_on_device[0]) == expected_keys[step - 1]


def test_a_step_that_asks_for_more_values_than_the_buffer_holds_is_refused():
    values = StepValues(np)
    with recording(values):
        count = per_step(lambda: 1)
        with pytest.raises(RuntimeError, match="more than 1024 numbers"):
            count.on_device(np.float64, lambda t: [t] * (StepValues.SLOTS + 1), size=StepValues.SLOTS + 1)
        with pytest.raises(ValueError, match="8 bytes wide"):
            count.on_device(np.float32, lambda t: t)
        with pytest.raises(RuntimeError, match="already being recorded"):
            with recording(StepValues(np)):
                pass


def test_a_replay_works_out_the_numbers_the_uncaptured_step_would_use(monkeypatch):
    """The host's side of a captured GAN step, without a GPU: the kernels that take a step's changing
    numbers are replaced by recorders, and the dropout keys, Adam's step counts and the average's decays
    each replay works out (in the order the step asked for them) are those the uncaptured steps used.
    The noise comes from a generator of its own, as on a GPU (CuPy's), so that only dropout draws from
    the engine's NumPy generator."""
    from tinygan import kernels
    calls = []
    monkeypatch.setattr(kernels, "dropout", lambda x, p, key: calls.append(("dropout", key)) or x)
    monkeypatch.setattr(kernels, "adam_update_all", lambda *arguments: calls.append(("adam", arguments[-1])))
    monkeypatch.setattr(kernels, "average_all", lambda averages, params, decay: calls.append(("average", decay)))
    real = np.random.default_rng(0).uniform(-1, 1, (8, 1, 28, 28)).astype(np.float32)
    settings = dict(d_steps=2, ema=0.999, label_flip=0.1)

    def gan_and_noise():
        backend.seed(0)
        gan = GAN(*models.build("mlp-001"), **settings)
        noise = np.random.default_rng(3)
        monkeypatch.setattr(backend, "rng", lambda: noise)
        backend.seed(1)
        return gan

    gan, uncaptured = gan_and_noise(), []
    for _ in range(3):
        calls.clear()
        gan.train_step(real)
        uncaptured.append(list(calls))
    gan, as_captured = gan_and_noise(), []
    calls.clear()
    with recording(StepValues(np, eager=True)):   # CapturedStep's first call: run the way the capture will
        gan.train_step(real)
    as_captured.append([(kind, value.value) for kind, value in calls])
    calls.clear()
    values = StepValues(np)
    with recording(values):   # its second: the capture, which records and runs nothing
        gan.train_step(real)
    recorded = list(calls)
    assert all(isinstance(value, PerStep) for _, value in recorded)
    for _ in range(2):
        values.prepare()
        as_captured.append([(kind, value.value) for kind, value in recorded])
    assert as_captured == uncaptured
    assert [kind for kind, _ in recorded].count("adam") == 3   # two D steps and a G step
    assert (gan.discriminator_optimizer.steps, gan.generator_optimizer.steps) == (6, 3)


def test_a_step_run_the_way_it_will_be_captured_has_each_value_on_the_device_when_asked():
    values = StepValues(np, eager=True)
    with recording(values):
        count = per_step(lambda: 4)
        assert count.value == 4
        corrections = count.on_device(np.float64, lambda t: (t / 2, t + 1), size=2)
        np.testing.assert_array_equal(corrections, [2.0, 5.0])   # there before a kernel that reads it runs


LAYOUTS = {"C order": lambda x: x.copy(order="C"), "transposed view": lambda x: x.T.copy(order="C").T,
           "every other column": lambda x: np.repeat(x, 2, axis=1)[:, ::2]}


@pytest.fixture(scope="module")
def host_cublas(cupy_stand_in):
    """The CuPy stand-in's libcublas (tests/cupy_stand_in): the signatures of cublas_api.h, gemm computed on the
    host from the column-major matrices cuBLAS would read. It checks what ctypes passes (the order and types of
    the arguments) without a GPU."""
    from tinygan.kernels.cublas import declare
    cupy_stand_in.cuda.device.get_cublas_handle()
    return declare(cupy_stand_in._cublas.library)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout_a", LAYOUTS)
@pytest.mark.parametrize("layout_b", LAYOUTS)
@pytest.mark.parametrize("M, K, N", [(5, 3, 4), (1, 4, 5), (3, 1, 5), (3, 4, 1), (64, 25, 196)])
def test_captured_matrix_products_hand_cublas_the_transposed_problem(host_cublas, dtype, layout_a, layout_b, M, K, N):
    """cublas.gemm through ctypes into the stand-in: a @ b, row by row, for every layout the layers pass (C
    order, a transposed view, neither), so the arguments (C^T = B^T A^T, leading dimensions, transpose
    flags) and their C types are right."""
    from tinygan.kernels.cublas import gemm
    rng = np.random.default_rng(M * 100 + K * 10 + N)
    a = LAYOUTS[layout_a](rng.standard_normal((M, K)).astype(dtype))
    b = LAYOUTS[layout_b](rng.standard_normal((K, N)).astype(dtype))
    assert a.shape == (M, K) and b.shape == (K, N)
    c = np.full((M, N), np.nan, dtype=dtype)
    gemm(host_cublas, 1, a, b, c, lambda array: array.ctypes.data)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-6)


def use_as_cupy(monkeypatch, cupy_stand_in, binding_file):
    """This process sees the stand-in as ``cupy``, and a cuBLAS binding whose library is ``binding_file``."""
    binding = types.SimpleNamespace(__file__=str(binding_file))
    monkeypatch.setitem(sys.modules, "cupy", cupy_stand_in)
    for name in ("cupy_backends", "cupy_backends.cuda"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "cupy_backends.cuda.libs", types.SimpleNamespace(cublas=binding))
    monkeypatch.setattr(cublas, "_library", None)


def address(function):
    return ctypes.cast(function, ctypes.c_void_p).value


def test_captured_products_call_the_cublas_cupys_binding_is_linked_against(cupy_stand_in, monkeypatch):
    """PyTorch brings its own cuBLAS, and the benchmarks import it beside CuPy: CuPy's handle must go to the
    cuBLAS that CuPy calls. The stand-in has loaded a decoy cuBLAS of another CUDA, first among the process's
    libraries; the functions found through the binding are the stand-in's, not the decoy's."""
    cupy_stand_in.cuda.device.get_cublas_handle()
    use_as_cupy(monkeypatch, cupy_stand_in, cupy_stand_in._cublas_binding())
    loaded = [line.split()[-1] for line in open("/proc/self/maps") if "/libcublas.so" in line]
    assert "decoy" in loaded[0] and len(set(loaded)) == 2
    assert address(cublas.library().cublasSgemm_v2) == address(cupy_stand_in._cublas.library.cublasSgemm_v2)
    assert address(cublas.library().cublasSgemm_v2) != address(cupy_stand_in._cublas.decoy.cublasSgemm_v2)


def test_without_a_binding_linked_against_cublas_it_refuses_to_guess_among_several(cupy_stand_in, monkeypatch):
    cupy_stand_in.cuda.device.get_cublas_handle()
    use_as_cupy(monkeypatch, cupy_stand_in, ctypes.util.find_library("m"))   # a library without cuBLAS's symbols
    with pytest.raises(RuntimeError, match="cannot tell CuPy's cuBLAS among the 2 this process has loaded"):
        cublas.library()


@pytest.mark.parametrize("settings, message", [
    (dict(noise="poisson", poisson_rate=501.0), "captures Poisson noise up to --poisson-rate 500"),
    ({}, "needs the GPU: add --device gpu"),
])
def test_what_cannot_be_captured_is_refused_in_one_sentence(settings, message):
    gan = GAN(*models.build("mlp"), **settings)
    with pytest.raises(ValueError, match=message):
        CapturedStep(gan)


def build_on_gpu(arch, settings):
    """The GAN ``arch`` with ``settings`` (``conditional`` among them, for models.build)."""
    settings = dict(settings)
    conditional = settings.pop("conditional", False)
    backend.seed(0)
    return GAN(*models.build(arch, conditional=conditional), **settings)


@pytest.mark.gpu
@pytest.mark.parametrize("arch, settings", [
    ("dcgan", dict(ema=0.999, label_flip=0.1)),                            # BatchNorm, label flips, the average
    ("mlp-001", dict(d_steps=2, label_smoothing=0.1, noise="uniform")),    # dropout in D, two D steps a step
    ("dcgan", dict(conditional=True)),   # the classes: as features before G's Dense, as planes before D's Conv2D
    ("mlp", dict(noise="poisson", poisson_rate=2.0)),   # counts by inversion of the device's uniforms
])
def test_captured_steps_agree_with_uncaptured_ones(arch, settings):
    """Seven steps, replayed from a graph where the batch has the captured shape, against seven run step by
    step, from the same weights and seeds: the same losses and the same weights, moments, running estimates
    and weight average, to rounding. Between replays D's accuracy pass runs at another batch size, and so
    does a step on a smaller batch (uncaptured): both reallocate the layers' scratch buffers, and the graph
    must keep its own. The losses stay on the device until the end, as the trainer leaves them, so the host
    does not wait for the device between steps (the next replay's numbers must not overwrite this one's
    before they are copied). In float64: Adam's first steps move every weight by about lr whatever the size
    of its gradient, so a float32 gradient near 0 whose sign rounds differently would move a weight the
    other way. A conditional GAN's batches come with their classes, and its fakes' classes are drawn on
    the device at each replay."""
    skip_without_gpu()
    backend.use_device("gpu")
    try:
        with backend.default_dtype(np.float64):
            rng = np.random.default_rng(0)
            batches = [backend.to_device(rng.uniform(-1, 1, (16 if index == 4 else 32, 1, 28, 28)))
                       for index in range(7)]
            labels = [backend.to_device(rng.integers(0, 10, len(real))) for real in batches]
            test_images = backend.to_device(rng.uniform(-1, 1, (50, 1, 28, 28)))
            test_labels = backend.to_device(rng.integers(0, 10, 50))
            results = {}
            for captured in (False, True):
                gan = build_on_gpu(arch, settings)
                backend.seed(1)
                step = CapturedStep(gan) if captured else gan.train_step
                losses = []
                for index, real in enumerate(batches):
                    losses.append(step(real, labels[index] if gan.conditional else None, read_losses=False))
                    if index == 3:
                        gan.discriminator_accuracy(test_images, 50, batch_size=25, real_labels=test_labels)
                if captured:
                    assert step.graph is not None   # steps 2 to 4, 6 and 7 were replays
                    if gan.conditional:   # a replay needs the classes as much as a step does
                        with pytest.raises(ValueError, match="trains on labelled images"):
                            step(batches[0])
                losses = [(float(d_loss), float(g_loss)) for d_loss, g_loss in losses]
                results[captured] = losses, gan.state_dict(), int(backend.numpy_rng().integers(2**63))
    finally:
        backend.use_device("cpu")
    (plain_losses, plain_state, plain_next), (graph_losses, graph_state, graph_next) = results[False], results[True]
    np.testing.assert_allclose(graph_losses, plain_losses, rtol=1e-10)
    assert len(set(map(tuple, graph_losses))) == 7
    assert graph_state.keys() == plain_state.keys()
    # atol: a bias just before a BatchNorm has no gradient but rounding's, about 1e-16, which Adam (eps 1e-8)
    # turns into steps of about 1e-11 whichever way the rounding went; the two runs' products round in
    # different orders (cuBLAS in the graph). A wrong step moves a weight by about lr = 2e-4.
    for key in plain_state:
        np.testing.assert_allclose(graph_state[key], plain_state[key], rtol=1e-8, atol=1e-9, err_msg=key)
    assert graph_next == plain_next   # the host drew as many dropout keys, in the same order


@pytest.mark.gpu
@pytest.mark.parametrize("arch, image_shape", [("dcgan-upsample", (1, 28, 28)), ("dcgan-004-cifar", (3, 32, 32))])
def test_the_other_architectures_layers_are_captured_too(arch, image_shape):
    """The layers the two networks above do not have (UpSampling2D; report 004's colour DCGAN, its
    strides and its 32x32 images in three channels): three steps, the third replayed, give the losses of
    three uncaptured ones."""
    skip_without_gpu()
    backend.use_device("gpu")
    try:
        with backend.default_dtype(np.float64):
            rng = np.random.default_rng(0)
            batches = [backend.to_device(rng.uniform(-1, 1, (8, *image_shape))) for _ in range(3)]
            losses = {}
            for captured in (False, True):
                backend.seed(0)
                gan = GAN(*models.build(arch, image_shape=image_shape))
                backend.seed(1)
                step = CapturedStep(gan) if captured else gan.train_step
                losses[captured] = [step(real) for real in batches]
    finally:
        backend.use_device("cpu")
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-10)


@pytest.mark.gpu
def test_each_epochs_capture_gives_back_the_memory_of_the_one_before():
    """The trainer captures the step afresh at every epoch. A graph holds every block its step allocated
    (HeldAllocations); when the epoch's CapturedStep goes, all of it must go back to CuPy's pool, or each
    epoch of a long run keeps another step's worth of device memory."""
    skip_without_gpu()
    import cupy
    backend.use_device("gpu")
    try:
        gan = build_on_gpu("mlp", {})
        real = backend.to_device(np.random.default_rng(0).uniform(-1, 1, (32, 1, 28, 28)).astype(np.float32))
        pool, used = cupy.get_default_memory_pool(), []
        for _ in range(4):
            step = CapturedStep(gan)
            for _ in range(3):   # run as recorded, captured and replayed, replayed
                step(real)
            held = pool.used_bytes()
            del step
            gc.collect()
            used.append(pool.used_bytes())
            assert used[-1] < held   # the graph's own blocks went back
    finally:
        backend.use_device("cpu")
    assert max(used[1:]) - min(used[1:]) < 2**20, used


@pytest.mark.gpu
def test_a_replay_outlives_the_address_tables_it_was_captured_with():
    """The one-launch optimizer kernels read their arrays' addresses from tables in device memory, which a
    cache of a few tables holds (cupy_gpu.TABLES_KEPT). Other lists of arrays push the graph's tables out of
    that cache between replays: the graph must keep them, or it reads addresses from memory that another
    array may have by then. Five steps, captured and not, agree."""
    skip_without_gpu()
    from tinygan import kernels
    from tinygan.kernels import cupy_gpu
    backend.use_device("gpu")
    try:
        with backend.default_dtype(np.float64):
            rng = np.random.default_rng(0)
            batches = [backend.to_device(rng.uniform(-1, 1, (32, 1, 28, 28))) for _ in range(5)]
            results = {}
            for captured in (False, True):
                gan = build_on_gpu("mlp", {})
                backend.seed(1)
                step = CapturedStep(gan) if captured else gan.train_step
                losses = []
                for index, real in enumerate(batches):
                    losses.append(step(real))
                    if index == 2:   # steps 2 and 3 were replays, 4 and 5 follow: every table leaves the cache
                        for _ in range(cupy_gpu.TABLES_KEPT + 1):
                            kernels.fill_all([backend.xp().zeros(3)], 0)
                results[captured] = losses, gan.state_dict()
    finally:
        backend.use_device("cpu")
    (plain_losses, plain_state), (graph_losses, graph_state) = results[False], results[True]
    np.testing.assert_allclose(graph_losses, plain_losses, rtol=1e-10)
    for key in plain_state:
        np.testing.assert_allclose(graph_state[key], plain_state[key], rtol=1e-8, atol=1e-12, err_msg=key)


@pytest.mark.gpu
def test_each_replay_draws_fresh_dropout_masks_and_noise():
    """Device-side randomness: a graph of one dropout and one noise draw, replayed three times, gives three
    different masks and noises; each mask is the reference's for the key the host drew, keeps 1 - p of the
    units, and the noise has mean 0 and variance 1."""
    skip_without_gpu()
    import cupy
    from tinygan.cuda_graph import Capture
    from tinygan.kernels import reference
    from tinygan.layers import Dropout
    backend.use_device("gpu")
    try:
        backend.seed(2)
        layer, x = Dropout(0.3), backend.to_device(np.ones(200_000, dtype=np.float32))
        generator = backend.rng()

        def run():
            return layer.forward(x), generator.standard_normal(100_000, dtype=np.float32)
        with recording(StepValues(cupy, eager=True)):   # as CapturedStep's first call: kernels loaded, state made
            mask = backend.as_numpy(run()[0])
        np.testing.assert_array_equal(mask, reference.dropout(np.ones(200_000, np.float32), 0.3, layer.key.value))
        graph = Capture(run)
        masks, noises = [], []
        for _ in range(3):
            graph.replay()
            mask, noise = (backend.as_numpy(array).copy() for array in graph.result)
            np.testing.assert_array_equal(mask, reference.dropout(np.ones(200_000, np.float32), 0.3, layer.key.value))
            assert abs((mask > 0).mean() - 0.7) < 0.005
            assert abs(noise.mean()) < 0.02 and abs(noise.var() - 1) < 0.02
            masks.append(mask), noises.append(noise)
        assert not np.array_equal(masks[0], masks[1]) and not np.array_equal(masks[1], masks[2])
        assert not np.array_equal(noises[0], noises[1]) and not np.array_equal(noises[1], noises[2])
    finally:
        backend.use_device("cpu")


def steps_csv(run_dir):
    with open(run_dir / "steps.csv") as file:
        return [[float(value) for value in row[1:]] for row in list(csv.reader(file))[1:]]


@pytest.mark.gpu
@requires_mnist
def test_train_with_cuda_graph_gives_the_losses_of_train_without(tmp_path):
    """Two epochs of the CLI, with and without --cuda-graph: the same step losses to rounding (each epoch
    captures its own graph, after one uncaptured step). In float32, through twenty steps of training that
    amplify differences in the last bits, so to 1e-3: a stale key or noise would change them at once."""
    skip_without_gpu()
    from tinygan import cli
    runs = {}
    for name, flags in (("plain", []), ("graph", ["--cuda-graph"])):
        runs[name] = tmp_path / name
        try:
            cli.main(["train", "--arch", "dcgan", "--device", "gpu", "--epochs", "2", "--limit", "640",
                      "--eval-every", "0", "--eval-images", "64", "--quiet", "--data-dir", str(SHARED_MNIST),
                      "--out", str(runs[name]), *flags])
        except SystemExit as exit:
            assert exit.code in (0, None)
    plain, graph = steps_csv(runs["plain"]), steps_csv(runs["graph"])
    assert len(plain) == len(graph) == 20
    np.testing.assert_allclose(graph, plain, rtol=1e-3, atol=1e-4)
