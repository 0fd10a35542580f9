"""A training step captured once as a CUDA graph and replayed (``train --cuda-graph``).

On a GPU a dcgan step at batch 64 is some hundreds of kernel launches, most of
them running for microseconds: the step takes as long as Python and the CUDA
driver take to launch them, not as long as the GPU takes to run them. CUDA
can record what a stream is asked to do (stream capture) as a graph, and run
the whole graph again with one call: each replay costs one launch.

A graph replays exactly what was recorded: the same kernels with the same
arguments, reading and writing the same addresses. Three things follow, and
this module is about them.

1. Every array the step touches stays where it is. Parameters, gradients,
   Adam's moments, BatchNorm's running estimates and the weight average are
   updated in place (tests/test_models.py checks it). What the step
   allocates while it is captured is held as long as the graph lives
   (HeldAllocations), so that CuPy's memory pool never hands it to another
   array; what it uses that was allocated before (the layers' scratch
   buffers, the optimizers' address tables) is held too (``keep_alive``).
2. Every number that changes from step to step comes from device memory,
   not from a kernel argument, which would stay the number it was captured
   with. The noise, the label flips and a conditional GAN's fake classes are
   drawn by CuPy's generator, whose state lives on the device and advances
   in place: each replay draws fresh numbers. The others the host works
   out, as the uncaptured step does: the dropout keys (from the engine's
   NumPy generator), Adam's bias corrections (from its step count), the
   weight average's warming-up decay. Under a capture each is a PerStep:
   worked out afresh before every replay, in the order the step asked for
   them, and copied to the device in one transfer, where the ``*_per_step``
   kernels of cuda_source.py read them. Outside a capture
   ``per_step(compute)`` is ``compute()``: the uncaptured step, the CPU's
   included, does what it always did.
3. The batch (and a conditional GAN's labels of it) is copied into a fixed
   input array that the graph reads, and the two losses are copied out of
   the graph's output after each replay.

And one thing CuPy asks: it refuses to call cuBLAS during a capture, so the
matrix products of a step being captured call cuBLAS themselves
(kernels/cublas.py).

So a replay computes what the uncaptured step would, with the same random
numbers: the two agree to rounding (tests/test_cuda_graph.py).
"""
import contextlib

import numpy

from . import backend
from .kernels.reference import POISSON_INVERSION_MAX_RATE

_recording = None   # the StepValues of the step being recorded for a CUDA graph, if any


def per_step(compute):
    """``compute()``; while a step is recorded, a PerStep that calls ``compute`` before every replay."""
    return compute() if _recording is None else _recording.add(compute)


def is_recording():
    """True while a step is recorded for a CUDA graph: captured, or run once the way the capture will run it."""
    return _recording is not None


def keep_alive(*objects):
    """While a step is recorded: hold ``objects`` (arrays made before the capture, whose addresses the graph
    keeps) as long as the graph lives. Otherwise: nothing."""
    if _recording is not None:
        _recording.kept.extend(objects)


@contextlib.contextmanager
def recording(values):
    """per_step and keep_alive record into ``values`` (a StepValues) inside this block."""
    global _recording
    if _recording is not None:
        raise RuntimeError("a step is already being recorded")
    _recording = values
    try:
        yield values
    finally:
        _recording = None


class PerStep:
    """A value the host works out before every replay of a captured step; ``value`` is the latest."""

    def __init__(self, values, compute):
        self.values, self.compute, self.value = values, compute, None
        self._on_device = None

    def refresh(self):
        self.value = self.compute()

    def on_device(self, dtype=numpy.float64, derive=None, size=1):
        """A device array of ``size`` numbers, derive(value) (default: the value itself), rewritten before every
        replay, for a kernel to read in place of an argument."""
        if derive is None:
            if self._on_device is None:   # a dropout's backward asks for its forward's key again
                self._on_device = self.values.slot(lambda: self.value, dtype, 1)
            return self._on_device
        return self.values.slot(lambda: derive(self.value), dtype, size)


class StepValues:
    """The numbers a captured step reads from the device, worked out on the host before each replay.

    One buffer of 8-byte slots on each side; each PerStep's device numbers are
    a few slots of it. ``prepare`` works out the PerSteps and fills the slots
    in the order the step asked for them: a slot derived from a PerStep (Adam's
    corrections from its step count) comes after it, and sees this step's value.

    ``eager``: for a step that runs once, uncaptured, the way a capture will
    run it (CapturedStep's first call): each value is worked out as the step
    asks for it, and each slot copied to the device before the kernel that
    reads it is launched.
    """
    SLOTS = 1024

    def __init__(self, xp, eager=False):
        self.xp, self.eager = xp, eager
        if xp is numpy:
            self.host = numpy.zeros(self.SLOTS, numpy.uint64)
        else:   # page-locked, so that the copy to the device runs while the host goes on
            memory = xp.cuda.alloc_pinned_memory(self.SLOTS * 8)
            self.host = numpy.frombuffer(memory, numpy.uint64, self.SLOTS)
            self.host_memory, self.uploaded = memory, None
        self.device = xp.zeros(self.SLOTS, dtype=numpy.uint64)
        self.jobs, self.used, self.kept = [], 0, []

    def add(self, compute):
        value = PerStep(self, compute)
        self.jobs.append(value.refresh)
        if self.eager:
            value.refresh()
        return value

    def slot(self, compute, dtype, size):
        """``size`` slots of ``dtype`` (8 bytes each), set to compute() at each prepare; their device array."""
        if numpy.dtype(dtype).itemsize != 8:
            raise ValueError(f"a step value is 8 bytes wide, not {numpy.dtype(dtype)}")
        start, self.used = self.used, self.used + size
        if self.used > self.SLOTS:
            raise RuntimeError(f"a captured step reads more than {self.SLOTS} numbers that change at each step")
        host = self.host[start:self.used].view(dtype)

        def write():
            host[:] = compute()
        self.jobs.append(write)
        if self.eager:
            write()
            self.upload(start, self.used)
        return self.device[start:self.used].view(dtype)

    def prepare(self):
        """This step's values, written into the host buffer (after the previous step's copy has left it)."""
        if self.xp is not numpy and self.uploaded is not None:
            self.uploaded.synchronize()
        for job in self.jobs:
            job()

    def upload(self, start=0, stop=SLOTS):
        """Slots start to stop (all of them) copied to the device, on the current stream (before what reads
        them)."""
        if self.xp is numpy:
            self.device[start:stop] = self.host[start:stop]
            return
        self.device[start:stop].data.copy_from_host_async(self.host[start:stop].ctypes.data, (stop - start) * 8)
        self.uploaded = self.xp.cuda.Event()
        self.uploaded.record()


class HeldAllocations:
    """A CuPy allocator that hands out memory as the current one does and keeps every block it handed out.

    Used while a step is captured: the graph writes its temporaries to those
    addresses at every replay, so none of them may go back to the pool when
    the array that held it is freed.
    """

    def __init__(self, cupy):
        self.allocate, self.blocks = cupy.cuda.get_allocator(), []

    def __call__(self, size):
        block = self.allocate(size)
        self.blocks.append(block)
        return block


_side_stream = None


def capture_stream(cupy):
    """The stream steps are captured on (not the default stream, which cannot capture); one per process, so
    that the memory pool keeps the captures' freed blocks together."""
    global _side_stream
    if _side_stream is None:
        _side_stream = cupy.cuda.Stream(non_blocking=True)
    return _side_stream


class Capture:
    """``run()`` recorded once as a CUDA graph, with what its replays need; ``result`` is what run returned.

    The graph is captured on a side stream (the default stream cannot
    capture) and replayed on the current one, after whatever came before it.
    """

    def __init__(self, run):
        import cupy
        from .kernels import cublas
        self.values, self.held = StepValues(cupy), HeldAllocations(cupy)
        stream = capture_stream(cupy)
        cupy.cuda.get_current_stream().synchronize()   # the capture starts from finished work
        self.cublas_workspace = cublas.use_stream(stream)   # matrix products call cuBLAS themselves (cublas.py)
        with recording(self.values), stream, cupy.cuda.using_allocator(self.held):
            stream.begin_capture()
            try:
                self.result = run()
            except BaseException:
                stream.end_capture()   # leave capture mode; what was recorded is of no use
                raise
            self.graph = stream.end_capture()

    def replay(self):
        """Run the graph once more, with this step's PerStep values."""
        self.values.prepare()
        self.values.upload()
        self.graph.launch()


class CapturedStep:
    """``gan.train_step``, captured as a CUDA graph at its second call and replayed from then on.

    The first call runs the step uncaptured, but the way the capture will
    (``_run_as_recorded``). It allocates Adam's moments, the layers' scratch
    buffers, the optimizers' address tables and the noise generator's state,
    and compiles and loads every kernel the graph will launch, none of which
    should happen during a capture (a capture records, it does not run: a
    zeros_like there would zero Adam's moments again at every replay). The
    second call, with a batch of the same shape, captures the step and
    replays it; every later call with that shape is a replay. A batch of any
    other shape runs uncaptured.

    A graph keeps the arrays and the random generator it was captured with:
    make a new CapturedStep after anything that replaces them
    (``load_state_dict``, ``backend.seed``); the trainer makes one per epoch.
    """

    def __init__(self, gan):
        if gan.noise == "poisson" and not gan.poisson_by_inversion:
            raise ValueError(f"--cuda-graph captures Poisson noise up to --poisson-rate "
                             f"{POISSON_INVERSION_MAX_RATE:g} (above it CuPy draws it, copying the rate from the "
                             f"host at each draw): use a lower rate, or train without --cuda-graph")
        parameter = next(param for _, _, param, _ in gan.generator.parameters())
        if backend.device_of(parameter) != "gpu":
            raise ValueError("--cuda-graph needs the GPU: add --device gpu")
        self.gan = gan
        self.graph, self.warmed_shape = None, None

    def __call__(self, real, labels=None, read_losses=True):
        """One step on the batch ``real`` (of classes ``labels``, for a conditional GAN): (d_loss, g_loss), as
        ``GAN.train_step`` returns them."""
        self.gan.check_labels(labels)   # a replay does not pass through train_step, which checks them too
        shape = tuple(real.shape)
        if self.graph is None:
            if shape != self.warmed_shape:   # the first call, or a new shape: run it, capture at the next
                self.warmed_shape = shape
                return self._run_as_recorded(real, labels, read_losses)
            self._capture(real, labels)
        elif shape != self.input.shape:
            return self.gan.train_step(real, labels, read_losses)
        self.input[...] = real
        if self.labels is not None:
            self.labels[...] = labels
        self.graph.replay()
        losses = self.graph.result.copy()   # the graph overwrites its own at the next replay
        return (float(losses[0]), float(losses[1])) if read_losses else (losses[0], losses[1])

    def _run_as_recorded(self, real, labels, read_losses):
        """One step, uncaptured, through the code a capture records: the per-step kernels reading their
        numbers from the device, the matrix products by cuBLAS called directly (on the current stream)."""
        import cupy
        from .kernels import cublas
        # held until the next call: the step's copies and products may still be running
        self.first_values = StepValues(cupy, eager=True)
        self.first_workspace = cublas.use_stream(cupy.cuda.get_current_stream())
        with recording(self.first_values):
            d_loss, g_loss = self.gan.train_step(real, labels, read_losses=False)
        return (float(d_loss), float(g_loss)) if read_losses else (d_loss, g_loss)

    def _capture(self, real, labels):
        self.input = real.copy()   # the graph reads each batch from here
        self.labels = None if labels is None else labels.copy()   # and its classes
        self.noise_generator = backend.rng()   # its state, on the device, is what each replay draws from and advances

        def step():
            d_loss, g_loss = self.gan.train_step(self.input, self.labels, read_losses=False)
            return backend.get_array_module(d_loss).stack([d_loss, g_loss])
        self.graph = Capture(step)
