"""The CUDA kernel bodies, compiled as host C++ and run on the CPU against the reference.

The GPU tests only run where there is a GPU; these check the index arithmetic
of every CUDA kernel everywhere else. Each body runs in a plain loop over i,
as CuPy's ElementwiseKernel would run it once per thread; each reduction's
pieces run in a loop per channel, as CuPy's ReductionKernel combines them.
Where CuPy broadcasts a (C, 1) array against the batch, the test passes
that array broadcast to the batch's shape.
"""
import ctypes
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygan.kernels import output_size, reference
from tinygan.kernels.cuda_source import KERNELS, PREAMBLE, REDUCTIONS, SUM
from strategies import conv_geometry

COMPILER = shutil.which("c++") or shutil.which("g++")
SCALAR_ARRAYS = {"slope", "scale", "step_size", "beta1", "one_minus_beta1", "beta2", "one_minus_beta2",
                 "root_correction2", "eps"}   # T-typed inputs the wrappers pass as one value
C_TYPES = {"int32": "int", "uint64": "unsigned long long", "float64": "double", "T": "T"}
CTYPES = {"int32": ctypes.c_int, "uint64": ctypes.c_ulonglong}


def host_function(name, inputs, outputs, body, suffix):
    parameters, prologue = [], []
    for parameter in inputs.split(","):
        words = parameter.split()
        if words[0] == "raw":
            parameters.append(f"const {C_TYPES[words[1]]}* {words[2]}")
        elif words[0] != "T" or words[1] in SCALAR_ARRAYS:
            parameters.append(f"{C_TYPES[words[0]]} {words[1]}")
        else:
            parameters.append(f"const T* {words[1]}_array")
            prologue.append(f"T {words[1]} = {words[1]}_array[i];")
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
        if c_type == "T":
            parameters.append(f"const T* {variable}_array")
            prologue.append(f"T {variable} = {variable}_array[i];")
        else:
            parameters.append(f"{C_TYPES[c_type]} {variable}")
    _, result = output.split()
    reduce_type = SUM["reduce_type"]
    return (f"void {name}_{suffix}({', '.join(parameters)}, T* {result}_array, int N, int C, int M) {{\n"
            f"  for (int c = 0; c < C; ++c) {{\n"
            f"    {reduce_type} total_ = {reduce_type}({SUM['identity']});\n"
            f"    for (int n = 0; n < N; ++n) for (int j = 0; j < M; ++j) {{\n"
            f"      long long i = ((long long)n * C + c) * M + j; {' '.join(prologue)}\n"
            f"      {reduce_type} a = total_, b = static_cast<{reduce_type}>({map_expr});\n"
            f"      total_ = ({SUM['reduce_expr']});\n"
            f"    }}\n"
            f"    T& {result} = {result}_array[c]; {reduce_type} a = total_; {post_map_expr};\n"
            f"  }}\n}}\n")


@pytest.fixture(scope="module")
def host_kernels(tmp_path_factory):
    if COMPILER is None:
        pytest.skip("no C++ compiler to build the CUDA bodies for the host")
    source = ["#include <cmath>\nusing std::sqrt;\n", PREAMBLE, 'extern "C" {\n']
    for suffix, c_type in (("float32", "float"), ("float64", "double")):
        source.append(f"#define T {c_type}\n")
        source += [host_function(name, *spec, suffix) for name, spec in KERNELS.items()]
        source += [host_reduction(name, *spec, suffix) for name, spec in REDUCTIONS.items()]
        source.append("#undef T\n")
    source.append("}\n")
    directory = tmp_path_factory.mktemp("cuda_source")
    (directory / "kernels.cpp").write_text("".join(source))
    subprocess.run([COMPILER, "-O1", "-shared", "-fPIC", "-o", str(directory / "kernels.so"),
                    str(directory / "kernels.cpp")], check=True, capture_output=True)
    return ctypes.CDLL(str(directory / "kernels.so"))


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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(size=st.integers(1, 500), seed=st.integers(0, 2**32 - 1), step=st.integers(1, 50))
def test_cuda_adam_body_matches_the_reference(host_kernels, dtype, size, seed, step):
    rng = np.random.default_rng(seed)
    param, grad, m = (rng.standard_normal(size).astype(dtype) for _ in range(3))
    v = rng.uniform(0, 2, size).astype(dtype)
    device, host = [a.copy() for a in (param, m, v)], [a.copy() for a in (param, m, v)]
    real = scalar(dtype)
    lr, beta1, beta2, eps = 1e-3, 0.5, 0.999, 1e-8
    getattr(host_kernels, f"adam_update_{np.dtype(dtype).name}")(
        pointer(grad), real(lr / (1 - beta1 ** step)), real(beta1), real(1 - beta1), real(beta2), real(1 - beta2),
        real((1 - beta2 ** step) ** 0.5), real(eps), *map(pointer, device), ctypes.c_longlong(size))
    reference.adam_update(host[0], grad, host[1], host[2], lr, beta1, beta2, eps, step)
    tolerance = dict(rtol=2e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-15)
    for a, b in zip(device, host):
        np.testing.assert_allclose(a, b, **tolerance)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(shape=st.tuples(st.integers(2, 6), st.integers(1, 5), st.integers(1, 30)), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([1.0, 1e-3, 1e3]))
def test_cuda_batchnorm_pieces_compose_to_the_reference(host_kernels, dtype, shape, seed, scale):
    """The reductions and elementwise passes, called in cupy_gpu's order, give the reference's five
    forward and three backward results. Like the Numba kernels they sum in double, so float32 is
    compared with the reference in float64 on the same inputs."""
    rng = np.random.default_rng(seed)
    N, C, M = shape
    x, dout = ((rng.standard_normal(shape) * 3 + 1) * scale for _ in range(2))
    x, dout = x.astype(dtype), dout.astype(dtype)
    gamma, beta = rng.uniform(0.5, 2, C).astype(dtype), rng.standard_normal(C).astype(dtype)
    suffix, size = np.dtype(dtype).name, ctypes.c_longlong(x.size)
    count, eps = ctypes.c_double(N * M), 1e-5
    dims = [ctypes.c_int(v) for v in shape]

    def kernel(name):
        return getattr(host_kernels, f"{name}_{suffix}")

    def per_channel(values):   # a (C, 1) view, broadcast against (N, C, M) as CuPy does
        return np.ascontiguousarray(np.broadcast_to(values[:, None], shape))

    mean, var, inverse_std = (np.empty(C, dtype) for _ in range(3))
    kernel("channel_mean")(pointer(x), count, pointer(mean), *dims)
    kernel("channel_variance")(pointer(x), pointer(per_channel(mean)), count, pointer(var), *dims)
    kernel("batchnorm_inverse_std")(pointer(var), ctypes.c_double(eps), pointer(inverse_std), ctypes.c_longlong(C))
    y, x_hat = np.empty_like(x), np.empty_like(x)
    kernel("batchnorm_normalise")(pointer(x), *(pointer(per_channel(a)) for a in (mean, inverse_std, gamma, beta)),
                                  pointer(y), pointer(x_hat), size)
    exact = [a.astype(np.float64) for a in (x, dout, gamma, beta)]
    tolerance = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    expected = reference.batchnorm_forward(exact[0], exact[2], exact[3], eps)
    for name, a, b in zip(("y", "x_hat", "mean", "var", "inverse_std"), (y, x_hat, mean, var, inverse_std), expected):
        np.testing.assert_allclose(a, b, rtol=tolerance["rtol"], atol=tolerance["atol"] * max(1.0, abs(b).max()),
                                   err_msg=name)

    dbeta, dgamma, dx = np.empty(C, dtype), np.empty(C, dtype), np.empty_like(x)
    kernel("channel_sum")(pointer(dout), pointer(dbeta), *dims)
    kernel("channel_dot")(pointer(dout), pointer(x_hat), pointer(dgamma), *dims)
    kernel("batchnorm_input_gradient")(pointer(dout), pointer(x_hat),
                                       *(pointer(per_channel(a)) for a in (gamma, inverse_std, dbeta, dgamma)),
                                       count, pointer(dx), size)
    expected = reference.batchnorm_backward(exact[1], x_hat.astype(np.float64), exact[2],
                                            inverse_std.astype(np.float64))
    for name, a, b in zip(("dx", "dgamma", "dbeta"), (dx, dgamma, dbeta), expected):
        np.testing.assert_allclose(a, b, rtol=tolerance["rtol"], atol=tolerance["atol"] * max(1.0, abs(b).max()),
                                   err_msg=name)
