"""The CUDA kernel bodies, compiled as host C++ and run on the CPU against the reference.

The GPU tests only run where there is a GPU; these check the index arithmetic
of every CUDA kernel everywhere else. Each body runs in a plain loop over i,
as CuPy's ElementwiseKernel would run it once per thread.
"""
import ctypes
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygan.kernels import output_size, reference
from tinygan.kernels.cuda_source import KERNELS, PREAMBLE
from strategies import conv_geometry

COMPILER = shutil.which("c++") or shutil.which("g++")
SCALAR_ARRAYS = {"slope", "scale", "step_size", "beta1", "one_minus_beta1", "beta2", "one_minus_beta2",
                 "root_correction2", "eps"}   # T-typed inputs the wrappers pass as one value
C_TYPES = {"int32": "int", "uint64": "unsigned long long", "T": "T"}
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


@pytest.fixture(scope="module")
def host_kernels(tmp_path_factory):
    if COMPILER is None:
        pytest.skip("no C++ compiler to build the CUDA bodies for the host")
    source = ["#include <cmath>\nusing std::sqrt;\n", PREAMBLE, 'extern "C" {\n']
    for suffix, c_type in (("float32", "float"), ("float64", "double")):
        source.append(f"#define T {c_type}\n")
        source += [host_function(name, *spec, suffix) for name, spec in KERNELS.items()]
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
