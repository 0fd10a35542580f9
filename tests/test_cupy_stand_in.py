"""The GPU tests, run without a GPU on the CuPy stand-in (tests/cupy_stand_in), and the stand-in's own checks.

The stand-in is only worth running the GPU tests on if it refuses what CuPy
and CUDA refuse, and if a captured graph behaves as CUDA's does: the tests
below hold it to both. It is loaded here under its own name, so that this
process keeps running without CuPy; the GPU tests run in a process that
imports it as ``cupy``.
"""
import ctypes
import gc
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import CUPY_STAND_IN


@pytest.fixture
def cupy(cupy_stand_in):
    return cupy_stand_in


@pytest.mark.skipif(shutil.which("c++") is None, reason="the CuPy stand-in compiles its kernels with c++")
def test_the_gpu_tests_pass_on_the_stand_in():
    """Every test marked gpu, in a process where ``import cupy`` finds the stand-in: none may fail or skip."""
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(CUPY_STAND_IN), *filter(None, [os.environ.get("PYTHONPATH")])]))
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu",
                             "-W", "error::pytest.PytestUnraisableExceptionWarning"],
                            cwd=Path(__file__).resolve().parents[1], env=environment, capture_output=True, text=True,
                            timeout=540)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in summary and "skipped" not in summary and "failed" not in summary, summary


def test_numpy_cannot_read_a_device_array_and_cupy_takes_no_numpy_array(cupy):
    x = cupy.asarray(np.arange(6.0))
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(x)
    np.testing.assert_array_equal(x.get(), np.arange(6.0))
    for mixed in (lambda: x + np.ones(6), lambda: np.ones(6) * x, lambda: cupy.maximum(x, np.ones(6))):
        with pytest.raises(TypeError, match="Unsupported type"):
            mixed()
    assert float((x * np.float32(2) + 1).sum()) == 36.0   # scalars, NumPy's included, are taken


def test_only_cupys_names_exist(cupy):
    assert cupy.exp(cupy.zeros(2)).get().tolist() == [1.0, 1.0]
    with pytest.raises(AttributeError, match="no attribute 'histogram_bin_edges'"):
        cupy.histogram_bin_edges   # NumPy has it, CuPy 14.2 has not
    with pytest.raises(AttributeError, match="no attribute 'tostring'"):
        cupy.zeros(2).tostring


def test_an_elementwise_kernel_checks_its_arguments_as_cupy_does(cupy):
    kernel = cupy.ElementwiseKernel("T x, float64 shift, T scale", "T y", "y = (x - shift) * scale", "affine")
    x = cupy.asarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    y = kernel(x, cupy.asarray(np.array([[1.0], [2.0]])), 3.0)   # (2, 1) broadcast against (2, 3)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.get(), (np.arange(6).reshape(2, 3) - [[1], [2]]) * 3)
    with pytest.raises(TypeError, match="Type is mismatched. shift float32 float64"):
        kernel(x, x, 3.0)
    with pytest.raises(TypeError, match="Type is mismatched"):
        kernel(x, 1.0, cupy.asarray(np.ones(3)))   # T is float32 by x, float64 by scale
    with pytest.raises(TypeError, match="Wrong number of arguments"):
        kernel(x, 1.0)


def test_a_reduction_kernel_sums_over_the_axes_asked(cupy):
    kernel = cupy.ReductionKernel("T x, float64 count", "float64 mean", "x", "a + b", "mean = a / count", "0",
                                  "channel_mean", reduce_type="double")
    values = np.random.default_rng(0).standard_normal((4, 3, 5)).astype(np.float32)
    mean = kernel(cupy.asarray(values), 20.0, axis=(0, 2))
    np.testing.assert_allclose(mean.get(), values.astype(np.float64).mean(axis=(0, 2)), rtol=1e-12)


def test_a_raw_kernel_takes_only_arguments_of_its_parameters_width(cupy):
    module = cupy.RawModule(code="#define T float\n" + r"""
extern "C" __global__ void scale(T* x, int n, T factor) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) x[i] *= factor;
}""")
    scale = module.get_function("scale")
    x = cupy.asarray(np.ones(1000, np.float32))
    scale((3,), (128,), (x, np.int32(1000), np.float32(2)))
    np.testing.assert_array_equal(x.get(), np.full(1000, 2, np.float32))
    with pytest.raises(TypeError, match="is a int32, got a int64"):
        scale((3,), (128,), (x, 1000, np.float32(2)))    # a Python int is 8 bytes
    with pytest.raises(TypeError, match="is a float32, got a float64"):
        scale((3,), (128,), (x, np.int32(1000), 2.0))
    with pytest.raises(TypeError, match="points to float32, got a float64 array"):
        scale((3,), (128,), (cupy.asarray(np.ones(4)), np.int32(4), np.float32(2)))


def test_threads_run_in_both_orders_so_a_kernel_that_depends_on_theirs_is_seen(cupy):
    """A GPU runs threads in no set order: a kernel whose threads read what others write (here, each
    element copied from its left neighbour, in place) gives one result at one launch and another at the next,
    as its threads run first to last, then last to first. A kernel whose threads are independent gives the
    same at both."""
    shift = cupy.ElementwiseKernel("raw T x", "T y", "y = i > 0 ? x[i - 1] : x[0]", "shift_in_place")
    module = cupy.RawModule(code=r"""
extern "C" __global__ void shift(double* x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i > 0 && i < n) x[i] = x[i - 1];
}""")
    raw_shift = module.get_function("shift")
    launches = {"elementwise": lambda x: shift(x, x), "raw": lambda x: raw_shift((2,), (4,), (x, np.int32(8)))}
    for name, launch in launches.items():
        results = []
        for _ in range(2):
            x = cupy.asarray(np.arange(8.0))
            launch(x)
            results.append(x.get().tolist())
        assert sorted(results) == [[0.0] * 8, [0.0, 0.0, 1, 2, 3, 4, 5, 6]], name
    double = cupy.ElementwiseKernel("T x", "T y", "y = 2 * x", "double_it")
    x = cupy.asarray(np.arange(8.0))
    assert double(x).get().tolist() == double(x).get().tolist() == list(np.arange(8.0) * 2)


def test_a_capture_runs_nothing_and_each_replay_runs_it_on_the_memory_of_the_time(cupy):
    stream = cupy.cuda.Stream(non_blocking=True)
    x = cupy.asarray(np.array([1.0, 2.0]))
    w = cupy.asarray(np.array([10.0, 10.0]))
    generator = cupy.random.default_rng(0)
    with stream:
        stream.begin_capture()
        y = x * 2
        y += 1
        w -= x                                  # in place, on memory made before the capture
        noise = generator.standard_normal(3)
        classes = generator.integers(0, 10, 50)   # bounds as kernel arguments: CuPy can capture it
        graph = stream.end_capture()
    np.testing.assert_array_equal(w.get(), [10.0, 10.0])   # restored: nothing ran
    assert np.isnan(y.get()).all()                       # made during the capture, written by no replay yet
    first = cupy.random.default_rng(0).standard_normal(3).get()
    x[...] = cupy.asarray(np.array([5.0, 7.0]))
    graph.launch()
    np.testing.assert_array_equal(y.get(), [11.0, 15.0])
    np.testing.assert_array_equal(w.get(), [5.0, 3.0])
    np.testing.assert_array_equal(noise.get(), first)   # the generator did not advance at the capture
    first_classes = classes.get()
    graph.launch()
    np.testing.assert_array_equal(w.get(), [0.0, -4.0])
    assert not np.array_equal(noise.get(), first)        # each replay draws afresh
    assert not np.array_equal(classes.get(), first_classes) and set(classes.get()) <= set(range(10))


def test_memory_let_go_goes_back_to_the_pool_and_a_graph_may_not_use_it(cupy):
    """As CuPy's pool: a block whose last array is gone is handed, as garbage, to the next array of its size. A
    graph that uses such a block refuses to run; one whose allocations were held (as cuda_graph.py's
    HeldAllocations holds them) runs."""
    a = cupy.zeros(100)
    address = a.data.ptr
    del a
    b = cupy.empty(100)
    assert b.data.ptr == address and np.isnan(b.get()).all()

    stream, x, allocate = cupy.cuda.Stream(non_blocking=True), cupy.asarray(np.ones(4)), cupy.cuda.get_allocator()
    for held in (False, True):
        blocks = []

        def keep(size):
            blocks.append(allocate(size))
            return blocks[-1]
        with stream, cupy.cuda.using_allocator(keep if held else None):
            stream.begin_capture()
            y = x * 2
            z = y + 1                        # reads y's memory at every replay
            graph = stream.end_capture()
        del y                                # the graph still reads what y was
        if held:
            graph.launch()
            np.testing.assert_array_equal(z.get(), [3.0] * 4)
        else:
            with pytest.raises(RuntimeError, match="gone back to CuPy's pool"):
                graph.launch()


def test_what_a_capture_cannot_record_is_refused(cupy):
    stream = cupy.cuda.Stream(non_blocking=True)
    x = cupy.asarray(np.ones((2, 2)))
    generator = cupy.random.default_rng(0)
    refused = {"a host read": lambda: float(x.sum()), "a copy to the host": x.get,
               "a synchronous copy from the host": lambda: cupy.asarray(np.ones(2)),
               "a synchronisation": cupy.cuda.Device().synchronize,
               "a uniform draw (CuPy copies low and high to the device)": lambda: generator.uniform(size=2),
               "a Poisson draw (CuPy copies lam to the device)": lambda: generator.poisson(2.0, 2),
               "nine arrays joined (CuPy copies their addresses to the device)": lambda: cupy.stack([x] * 9),
               "an index list (CuPy copies it to the device)": lambda: x[[0, 1]],
               "a list of values (CuPy copies it to the device)": lambda: x.__setitem__(0, [1.0, 2.0])}
    for what, operation in refused.items():
        with stream:
            stream.begin_capture()
            try:
                with pytest.raises(cupy.StreamCaptureUnsupported):
                    operation()
                with pytest.raises(NotImplementedError, match="cuBLAS"):
                    x @ x
            finally:
                stream.end_capture()
    with pytest.raises(cupy.StreamCaptureUnsupported, match="default stream"):
        cupy.cuda.get_current_stream().begin_capture()
    with stream:   # eight arrays CuPy joins by a copy each
        stream.begin_capture()
        joined = cupy.concatenate([x] * 8)
        stream.end_capture()
    assert joined.shape == (16, 2)


def test_page_locked_memory_is_copied_when_the_stream_gets_there(cupy, monkeypatch):
    """An asynchronous copy from page-locked memory reads it when its stream reaches the copy, which may be
    after the host has gone on: a write to it before the host has waited (for an event recorded after the
    copy, the stream, the device, or a blocking read on the stream) is a race, refused at the next device
    call, and so is freeing it. A copy to page-locked memory lands only when the host waits for it. Pageable
    memory is copied before the call returns, as CUDA does."""
    pinned = np.frombuffer(cupy.cuda.alloc_pinned_memory(4 * 8), np.float64)
    pageable = np.zeros(4)
    x = cupy.zeros(4)
    for wait in ("event", "stream", "device", "read", None):
        pinned[:] = 1.0
        x.data.copy_from_host_async(pinned.ctypes.data, 32)
        event = cupy.cuda.Event()
        event.record()
        if wait == "event":
            event.synchronize()
        elif wait == "stream":
            cupy.cuda.get_current_stream().synchronize()
        elif wait == "device":
            cupy.cuda.Device().synchronize()
        elif wait == "read":
            x.sum().get()
        pinned[:] = 2.0   # the next step's values
        if wait is None:
            with pytest.raises(RuntimeError, match="written while an asynchronous copy from it may not have run"):
                x + 1
        else:
            np.testing.assert_array_equal((x + 1).get(), [2.0] * 4)
    pageable[:] = 1.0
    x.data.copy_from_host_async(pageable.ctypes.data, 32)
    pageable[:] = 2.0
    np.testing.assert_array_equal(x.get(), [1.0] * 4)

    x.data.copy_to_host_async(pinned.ctypes.data, 32)   # x holds 1.0
    assert np.isnan(pinned).all()                         # not there until the host waits
    cupy.cuda.get_current_stream().synchronize()
    np.testing.assert_array_equal(pinned, [1.0] * 4)

    unraisable = []   # what a finalizer raises goes to sys.unraisablehook
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    x.data.copy_from_host_async(pinned.ctypes.data, 32)
    del pinned
    gc.collect()
    assert [str(error.exc_value) for error in unraisable] == [
        "page-locked host memory was freed while an asynchronous copy to or from it may not have run: keep it "
        "until the host has waited for the copy"]


@pytest.mark.parametrize("transa, transb", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_the_stand_in_cublas_reads_column_major_matrices(cupy, transa, transb):
    """cuBLAS's contract, independently of tinygan's use of it (tests/test_cuda_graph.py checks that):
    C (m, n) = op(A) op(B), every matrix stored column by column with its leading dimension."""
    cupy.cuda.device.get_cublas_handle()
    library = cupy._cublas.library
    rng = np.random.default_rng(transa * 2 + transb)
    m, n, k, pad = 3, 4, 5, 2
    op_a, op_b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    stored_a = np.asfortranarray(np.pad(op_a.T if transa else op_a, ((0, pad), (0, 0))))   # leading dimension + pad
    stored_b = np.asfortranarray(np.pad(op_b.T if transb else op_b, ((0, pad), (0, 0))))
    c = np.asfortranarray(np.full((m + pad, n), 7.0))
    alpha, beta = ctypes.c_double(2.0), ctypes.c_double(0.0)
    status = library.cublasDgemm_v2(
        ctypes.c_void_p(1), transa, transb, m, n, k, ctypes.byref(alpha), ctypes.c_void_p(stored_a.ctypes.data),
        stored_a.shape[0], ctypes.c_void_p(stored_b.ctypes.data), stored_b.shape[0], ctypes.byref(beta),
        ctypes.c_void_p(c.ctypes.data), c.shape[0])
    assert status == 0
    np.testing.assert_allclose(c[:m], 2 * op_a @ op_b, rtol=1e-13)
    np.testing.assert_array_equal(c[m:], 7.0)   # the padding rows are not the matrix's
