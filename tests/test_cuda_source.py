"""The CUDA kernel bodies, compiled as host C++ and run on the CPU against the reference.

The GPU tests only run where there is a GPU; these check the index arithmetic
of every CUDA kernel everywhere else. Each body runs in a plain loop over i,
as CuPy's ElementwiseKernel would run it once per thread; each reduction's
pieces run in a loop per channel, as CuPy's ReductionKernel combines them.
Where CuPy broadcasts a (C, 1) array against the batch, the test passes
that array broadcast to the batch's shape. The multi-tensor kernels are whole
CUDA functions: they run as one thread that loops over every element.
"""
import ctypes
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygan.kernels import output_size, reference
from tinygan.kernels.cuda_source import KERNELS, MULTI_TENSOR, PREAMBLE, REDUCTIONS, SUM
from strategies import conv_geometry

COMPILER = shutil.which("c++") or shutil.which("g++")
SCALAR_ARRAYS = {"slope", "scale"}   # T-typed inputs the wrappers pass as one value
DOUBLE_ARRAYS = {"mean", "dbeta", "dgamma"}   # float64 inputs the wrappers pass as arrays (the channel statistics)
C_TYPES = {"int32": "int", "uint64": "unsigned long long", "float64": "double", "T": "T"}
CTYPES = {"int32": ctypes.c_int, "uint64": ctypes.c_ulonglong}


def host_function(name, inputs, outputs, body, suffix):
    parameters, prologue = [], []
    for parameter in inputs.split(","):
        words = parameter.split()
        if words[0] == "raw":
            parameters.append(f"const {C_TYPES[words[1]]}* {words[2]}")
        elif (words[0] != "T" or words[1] in SCALAR_ARRAYS) and words[1] not in DOUBLE_ARRAYS:
            parameters.append(f"{C_TYPES[words[0]]} {words[1]}")
        else:
            c_type = C_TYPES[words[0]]
            parameters.append(f"const {c_type}* {words[1]}_array")
            prologue.append(f"{c_type} {words[1]} = {words[1]}_array[i];")
    for parameter in outputs.split(","):
        _, variable = parameter.split()
        parameters.append(f"T* {variable}_array")
        prologue.append(f"T& {variable} = {variable}_array[i];")
    body = body.strip()
    body += "" if body.endswith(("}", ";")) else ";"   # CuPy ends a one-line operation itself
    return (f"void {name}_{suffix}({', '.join(parameters)}, long long size) {{\n"
            f"  for (long long i = 0; i < size; ++i) {{ {' '.join(prologue)}\n{body}\n  }}\n}}\n")


def host_reduction(name, inputs, output, map_expr, post_map_expr, suffix):
    """CuPy's ReductionKernel for x of shape (N, C, M) reduced over axes (0, 2): one total per channel."""
    parameters, prologue = [], []
    for parameter in inputs.split(","):
        c_type, variable = parameter.split()
        if c_type == "T" or variable in DOUBLE_ARRAYS:
            parameters.append(f"const {C_TYPES[c_type]}* {variable}_array")
            prologue.append(f"{C_TYPES[c_type]} {variable} = {variable}_array[i];")
        else:
            parameters.append(f"{C_TYPES[c_type]} {variable}")
    result_type, result = output.split()
    reduce_type = SUM["reduce_type"]
    return (f"void {name}_{suffix}({', '.join(parameters)}, {C_TYPES[result_type]}* {result}_array, "
            f"int N, int C, int M) {{\n"
            f"  for (int c = 0; c < C; ++c) {{\n"
            f"    {reduce_type} total_ = {reduce_type}({SUM['identity']});\n"
            f"    for (int n = 0; n < N; ++n) for (int j = 0; j < M; ++j) {{\n"
            f"      long long i = ((long long)n * C + c) * M + j; {' '.join(prologue)}\n"
            f"      {reduce_type} a = total_, b = static_cast<{reduce_type}>({map_expr});\n"
            f"      total_ = ({SUM['reduce_expr']});\n"
            f"    }}\n"
            f"    {C_TYPES[result_type]}& {result} = {result}_array[c]; {reduce_type} a = total_; {post_map_expr};\n"
            f"  }}\n}}\n")


HOST_HEADER = "#include <cmath>\nusing std::sqrt;\n"


def compile_for_host(source, directory, name):
    """The C++ ``source`` built as a shared library in ``directory`` and loaded."""
    if COMPILER is None:
        pytest.skip("no C++ compiler to build the CUDA bodies for the host")
    (directory / f"{name}.cpp").write_text(source)
    subprocess.run([COMPILER, "-O1", "-shared", "-fPIC", "-o", str(directory / f"{name}.so"),
                    str(directory / f"{name}.cpp")], check=True, capture_output=True)
    return ctypes.CDLL(str(directory / f"{name}.so"))


@pytest.fixture(scope="module")
def host_kernels(tmp_path_factory):
    source = [HOST_HEADER, PREAMBLE, 'extern "C" {\n']
    for suffix, c_type in (("float32", "float"), ("float64", "double")):
        source.append(f"#define T {c_type}\n")
        source += [host_function(name, *spec, suffix) for name, spec in KERNELS.items()]
        source += [host_reduction(name, *spec, suffix) for name, spec in REDUCTIONS.items()]
        source.append("#undef T\n")
    source.append("}\n")
    return compile_for_host("".join(source), tmp_path_factory.mktemp("cuda_source"), "kernels")


def pointer(array):
    return array.ctypes.data_as(ctypes.c_void_p)


def scalar(dtype):
    return ctypes.c_float if dtype == np.float32 else ctypes.c_double


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(g=conv_geometry())
def test_cuda_im2col_and_col2im_bodies_equal_the_reference(host_kernels, dtype, g):
    shape, kernel, stride, padding, seed = g
    rng = np.random.default_rng(seed)
    N, C, H, W = shape
    out_h, out_w = output_size(H, kernel[0], stride[0], padding[0]), output_size(W, kernel[1], stride[1], padding[1])
    geometry_arguments = [ctypes.c_int(v) for v in (C, H, W, *kernel, N, out_h, out_w, *stride, *padding)]
    suffix = np.dtype(dtype).name
    x = rng.standard_normal(shape).astype(dtype)
    col = np.empty((C, *kernel, N, out_h, out_w), dtype=dtype)
    getattr(host_kernels, f"im2col_{suffix}")(pointer(x), *geometry_arguments, pointer(col), ctypes.c_longlong(col.size))
    np.testing.assert_array_equal(col, reference.im2col(x, kernel, stride, padding))
    col = rng.standard_normal(col.shape).astype(dtype)
    image = np.empty(shape, dtype=dtype)
    getattr(host_kernels, f"col2im_{suffix}")(pointer(col), *geometry_arguments, pointer(image),
                                              ctypes.c_longlong(image.size))
    np.testing.assert_array_equal(image, reference.col2im(col, (H, W), stride, padding))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(size=st.integers(1, 3000), seed=st.integers(0, 2**63 - 1), p=st.sampled_from([0.0, 0.3, 0.9]),
       slope=st.sampled_from([0.0, 0.2]))
def test_cuda_elementwise_bodies_equal_the_reference(host_kernels, dtype, size, seed, p, slope):
    rng = np.random.default_rng(seed % 2**32)
    x, dout = rng.standard_normal(size).astype(dtype), rng.standard_normal(size).astype(dtype)
    x[::5] = 0
    suffix, real = np.dtype(dtype).name, scalar(dtype)
    result = np.empty_like(x)
    getattr(host_kernels, f"leaky_relu_{suffix}")(pointer(x), real(slope), pointer(result), ctypes.c_longlong(size))
    np.testing.assert_array_equal(result, reference.leaky_relu(x, slope))
    getattr(host_kernels, f"leaky_relu_backward_{suffix}")(pointer(dout), pointer(x), real(slope), pointer(result),
                                                          ctypes.c_longlong(size))
    np.testing.assert_array_equal(result, reference.leaky_relu_backward(dout, x, slope))
    threshold = round(p * 2 ** reference.DROPOUT_BITS)
    getattr(host_kernels, f"dropout_{suffix}")(pointer(x), ctypes.c_ulonglong(seed), ctypes.c_ulonglong(threshold),
                                              real(1 / (1 - p)), pointer(result), ctypes.c_longlong(size))
    np.testing.assert_array_equal(result, reference.dropout(x, p, seed))
    key = np.array([seed], dtype=np.uint64)   # where a captured CUDA graph finds it
    getattr(host_kernels, f"dropout_per_step_{suffix}")(pointer(x), pointer(key), ctypes.c_ulonglong(threshold),
                                                       real(1 / (1 - p)), pointer(result), ctypes.c_longlong(size))
    np.testing.assert_array_equal(result, reference.dropout(x, p, seed))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(size=st.integers(1, 300), seed=st.integers(0, 2**32 - 1), momentum=st.sampled_from([0.0, 0.1, 1.0]))
def test_cuda_batchnorm_running_update_matches_the_reference(host_kernels, dtype, size, seed, momentum):
    rng = np.random.default_rng(seed)
    mean, running_mean = (rng.standard_normal(size).astype(dtype) for _ in range(2))
    var, running_var = (rng.uniform(0, 2, size).astype(dtype) for _ in range(2))
    expected = running_mean.copy(), running_var.copy()
    unbias = 64 / 63
    getattr(host_kernels, f"batchnorm_update_running_{np.dtype(dtype).name}")(
        pointer(mean), pointer(var), ctypes.c_double(momentum), ctypes.c_double(unbias), pointer(running_mean),
        pointer(running_var), ctypes.c_longlong(size))
    reference.batchnorm_update_running(*expected, mean, var, momentum, unbias)
    tolerance = dict(rtol=1e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(running_mean, expected[0], **tolerance)
    np.testing.assert_allclose(running_var, expected[1], **tolerance)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(size=st.integers(1, 400), seed=st.integers(0, 2**32 - 1),
       target=st.sampled_from(["random", 0.0, 1.0, 0.9]))
def test_cuda_bce_with_logits_pieces_match_the_reference(host_kernels, dtype, size, seed, target):
    """The loss in one reduction over every axis and its gradient, against the reference in float64 on the
    same inputs: finite logits, then logits reaching +-inf and 100 (where a sigmoid followed by a log fails)."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 1, size).astype(dtype) if target == "random" else np.full(size, target, dtype)
    suffix, count = np.dtype(dtype).name, ctypes.c_double(size)
    tolerance = dict(rtol=1e-6, atol=1e-9) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-15)
    finite = (rng.standard_normal(size) * 5).astype(dtype)
    extreme = finite.copy()
    extreme[::7], extreme[3::11], extreme[5::13] = np.inf, -np.inf, 100
    for x in (finite, extreme):
        loss, gradient = np.empty(1), np.empty_like(x)
        getattr(host_kernels, f"bce_with_logits_mean_{suffix}")(pointer(x), pointer(t), count, pointer(loss),
                                                                size, 1, 1)
        getattr(host_kernels, f"bce_with_logits_gradient_{suffix}")(pointer(x), pointer(t), count, pointer(gradient),
                                                                    ctypes.c_longlong(size))
        exact_x, exact_t = x.astype(np.float64), t.astype(np.float64)
        np.testing.assert_allclose(loss[0], reference.bce_with_logits(exact_x, exact_t), **tolerance)
        np.testing.assert_allclose(gradient, reference.bce_with_logits_gradient(exact_x, exact_t), **tolerance)


# CUDA's thread coordinates for a launch of one block of one thread, which then loops over every element
ONE_THREAD = """
struct Coordinates { unsigned x; };
static const Coordinates blockIdx = {0}, threadIdx = {0}, blockDim = {1}, gridDim = {1};
#define __global__
#define __device__
"""


@pytest.fixture(scope="module")
def multi_tensor_kernels(tmp_path_factory):
    """MULTI_TENSOR compiled for the host, once per dtype (its kernels have C names, so one library each)."""
    directory = tmp_path_factory.mktemp("multi_tensor")
    return {dtype: compile_for_host(f"{HOST_HEADER}{ONE_THREAD}#define T {c_type}\n{MULTI_TENSOR}", directory, c_type)
            for dtype, c_type in ((np.float32, "float"), (np.float64, "double"))}


def address_table(*rows):
    """The kernels' (table, ends, arrays) arguments for these lists of arrays (a ctypes pointer keeps its
    array alive)."""
    table = np.array([[array.ctypes.data for array in row] for row in rows], dtype=np.uint64)
    ends = np.cumsum([array.size for array in rows[0]], dtype=np.int64)
    return pointer(table), pointer(ends), ctypes.c_int(len(rows[0]))


arrays_of_sizes = st.lists(st.integers(0, 300), min_size=1, max_size=6)   # 0: an empty array among the others


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(sizes=arrays_of_sizes, seed=st.integers(0, 2**32 - 1), step=st.integers(1, 50))
def test_cuda_adam_on_all_parameters_matches_the_reference(multi_tensor_kernels, dtype, sizes, seed, step):
    rng = np.random.default_rng(seed)
    params, grads, ms = ([rng.standard_normal(size).astype(dtype) for size in sizes] for _ in range(3))
    vs = [rng.uniform(0, 2, size).astype(dtype) for size in sizes]
    expected_params, expected_ms, expected_vs = expected = [[a.copy() for a in row] for row in (params, ms, vs)]
    per_step = [[a.copy() for a in row] for row in (params, ms, vs)]
    real = scalar(dtype)
    lr, beta1, beta2, eps = 1e-3, 0.5, 0.999, 1e-8
    step_size, root_correction2 = lr / (1 - beta1 ** step), (1 - beta2 ** step) ** 0.5
    arguments = address_table(params, grads, ms, vs)
    multi_tensor_kernels[dtype].adam_update_all(*arguments, real(step_size), real(beta1), real(1 - beta1), real(beta2),
                                                real(1 - beta2), real(root_correction2), real(eps))
    for param, grad, m, v in zip(expected_params, grads, expected_ms, expected_vs):
        reference.adam_update(param, grad, m, v, lr, beta1, beta2, eps, step)
    tolerance = dict(rtol=2e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-15)
    for row, expected_row in zip((params, ms, vs), expected):
        for a, b in zip(row, expected_row):
            np.testing.assert_allclose(a, b, **tolerance)
    # the captured graph's variant reads the two corrections from memory, in float64: the same numbers
    corrections = np.array([step_size, root_correction2])
    multi_tensor_kernels[dtype].adam_update_all_per_step(
        *address_table(per_step[0], grads, *per_step[1:]), pointer(corrections), real(beta1), real(1 - beta1),
        real(beta2), real(1 - beta2), real(eps))
    for row, expected_row in zip(per_step, (params, ms, vs)):
        for a, b in zip(row, expected_row):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(sizes=arrays_of_sizes, seed=st.integers(0, 2**32 - 1), decay=st.sampled_from([0.0, 0.5, 0.999]))
def test_cuda_fill_and_average_on_all_arrays_match_numpy(multi_tensor_kernels, dtype, sizes, seed, decay):
    rng = np.random.default_rng(seed)
    averages, params = ([rng.standard_normal(size).astype(dtype) for size in sizes] for _ in range(2))
    expected = [average * dtype(decay) + dtype(1 - decay) * param for average, param in zip(averages, params)]
    per_step = [average.copy() for average in averages]
    arguments = address_table(averages, params)
    multi_tensor_kernels[dtype].average_all(*arguments, scalar(dtype)(decay), scalar(dtype)(1 - decay))
    for a, b in zip(averages, expected):
        np.testing.assert_allclose(a, b, rtol=1e-6 if dtype == np.float32 else 1e-15, atol=0)
    # the captured graph's variant reads the decay from memory, in float64, and gives the same numbers
    multi_tensor_kernels[dtype].average_all_per_step(*address_table(per_step, params), pointer(np.array([decay])))
    for a, b in zip(per_step, averages):
        np.testing.assert_array_equal(a, b)
    arguments = address_table(params)
    multi_tensor_kernels[dtype].fill_all(*arguments, scalar(dtype)(0))
    assert all(not param.any() for param in params)


def cuda_batchnorm(host_kernels, x, dout, gamma, beta, eps):
    """The reductions and elementwise passes on the host, called in cupy_gpu's order:
    ((y, x_hat, mean, var, inverse_std), (dx, dgamma, dbeta)), as batchnorm_forward and _backward return them."""
    dtype, shape = x.dtype, x.shape
    (N, C, M), suffix, size = shape, dtype.name, ctypes.c_longlong(x.size)
    count, dims = ctypes.c_double(N * M), [ctypes.c_int(v) for v in shape]

    def kernel(name):
        return getattr(host_kernels, f"{name}_{suffix}")

    def per_channel(values):   # a (C, 1) view, broadcast against (N, C, M) as CuPy does
        return np.ascontiguousarray(np.broadcast_to(values[:, None], shape))

    mean64 = np.empty(C)   # the channel statistics stay in double until the last pass (cupy_gpu)
    var, inverse_std, mean = (np.empty(C, dtype) for _ in range(3))
    kernel("channel_mean")(pointer(x), count, pointer(mean64), *dims)
    kernel("channel_variance")(pointer(x), pointer(per_channel(mean64)), count, pointer(var), *dims)
    kernel("batchnorm_inverse_std")(pointer(var), pointer(mean64), ctypes.c_double(eps), pointer(inverse_std),
                                    pointer(mean), ctypes.c_longlong(C))
    y, x_hat = np.empty_like(x), np.empty_like(x)
    kernel("batchnorm_normalise")(pointer(x), *(pointer(per_channel(a)) for a in (mean64, inverse_std, gamma, beta)),
                                  pointer(y), pointer(x_hat), size)
    dbeta64, dgamma64, dx = np.empty(C), np.empty(C), np.empty_like(x)
    kernel("channel_sum")(pointer(dout), pointer(dbeta64), *dims)
    kernel("channel_dot")(pointer(dout), pointer(x_hat), pointer(dgamma64), *dims)
    kernel("batchnorm_input_gradient")(pointer(dout), pointer(x_hat),
                                       *(pointer(per_channel(a)) for a in (gamma, inverse_std, dbeta64, dgamma64)),
                                       count, pointer(dx), size)
    return (y, x_hat, mean, var, inverse_std), (dx, dgamma64.astype(dtype), dbeta64.astype(dtype))


def batchnorm_inputs(shape, seed, scale, dtype):
    rng = np.random.default_rng(seed)
    x, dout = ((rng.standard_normal(shape) * 3 + 1) * scale for _ in range(2))
    gamma, beta = rng.uniform(0.5, 2, shape[1]), rng.standard_normal(shape[1])
    return [a.astype(dtype) for a in (x, dout, gamma, beta)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(shape=st.tuples(st.integers(2, 6), st.integers(1, 5), st.integers(1, 30)), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([1.0, 1e-3, 1e3]))
def test_cuda_batchnorm_pieces_compose_to_the_reference(host_kernels, dtype, shape, seed, scale):
    """The reductions and elementwise passes, called in cupy_gpu's order, give the reference's five
    forward and three backward results. Like the Numba kernels they sum in double, so float32 is
    compared with the reference in float64 on the same inputs."""
    x, dout, gamma, beta = batchnorm_inputs(shape, seed, scale, dtype)
    forward, backward = cuda_batchnorm(host_kernels, x, dout, gamma, beta, 1e-5)
    exact = [a.astype(np.float64) for a in (x, dout, gamma, beta)]
    tolerance = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    expected = reference.batchnorm_forward(exact[0], exact[2], exact[3], 1e-5)
    for name, a, b in zip(("y", "x_hat", "mean", "var", "inverse_std"), forward, expected):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=tolerance["rtol"], atol=tolerance["atol"] * max(1.0, abs(b).max()),
                                   err_msg=name)
    x_hat, inverse_std = forward[1], forward[4]
    expected = reference.batchnorm_backward(exact[1], x_hat.astype(np.float64), exact[2],
                                            inverse_std.astype(np.float64))
    for name, a, b in zip(("dx", "dgamma", "dbeta"), backward, expected):
        np.testing.assert_allclose(a, b, rtol=tolerance["rtol"], atol=tolerance["atol"] * max(1.0, abs(b).max()),
                                   err_msg=name)


@pytest.mark.parametrize("seed", [93, 56, 289, 0, 1])
def test_cuda_batchnorm_keeps_a_channels_statistics_in_double(host_kernels, seed):
    """Two images per channel, float32: x - mean is then a small difference where the two values are close,
    and dx a small difference of terms near 1. A mean rounded to float32 before the next pass read it put
    x_hat off by 7.5e-5 (seed 93), and dbeta rounded so put dx out of this tolerance 1.6 times over (seed 56);
    kept in double, they agree with the float64 reference as closely as test_kernels.py holds Numba's."""
    x, dout, gamma, beta = batchnorm_inputs((2, 500, 1), seed, 1.0, np.float32)
    (_, x_hat, _, _, inverse_std), (dx, _, _) = cuda_batchnorm(host_kernels, x, dout, gamma, beta, 1e-5)
    exact = [a.astype(np.float64) for a in (x, dout, gamma, beta)]
    np.testing.assert_allclose(x_hat, reference.batchnorm_forward(exact[0], exact[2], exact[3], 1e-5)[1],
                               rtol=1e-5, atol=1e-5)
    expected = reference.batchnorm_backward(exact[1], x_hat.astype(np.float64), exact[2],
                                            inverse_std.astype(np.float64))[0]
    np.testing.assert_allclose(dx, expected, rtol=1e-5, atol=1e-5)


def test_every_cuda_source_compiles_with_nvrtc():
    """CUDA's own compiler on every source above, where CuPy's NVRTC is installed (it needs no GPU): the
    host C++ tests cannot catch what only CUDA refuses."""
    nvrtc = pytest.importorskip("cupy_backends.cuda.libs.nvrtc", reason="CuPy's NVRTC is not installed")
    for c_type in ("float", "double"):
        bodies = [host_function(name, *spec, c_type) for name, spec in KERNELS.items()]
        bodies += [host_reduction(name, *spec, c_type) for name, spec in REDUCTIONS.items()]
        sources = {"multi_tensor": f"#define T {c_type}\n{MULTI_TENSOR}",
                   "bodies": f"#define T {c_type}\n{PREAMBLE}" + "".join(f"__device__ {body}" for body in bodies)}
        for name, source in sources.items():
            program = nvrtc.createProgram(source, f"{name}_{c_type}.cu", [], [])
            try:
                nvrtc.compileProgram(program, [])
            except Exception as error:
                pytest.fail(f"{name} in {c_type} does not compile: {error}\n{nvrtc.getProgramLog(program)}")
            finally:
                nvrtc.destroyProgram(program)
