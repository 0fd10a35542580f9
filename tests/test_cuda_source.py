"""Every CUDA kernel, as CuPy would write it out, compiled by CUDA's own compiler (NVRTC): it needs no GPU.

What the kernels compute, and how cupy_gpu.py calls them, the GPU tests
check; without a GPU they run on the CuPy stand-in (tests/cupy_stand_in),
which compiles the same bodies as host C++. A host compiler accepts what
CUDA may refuse, and the stand-in wraps each body its own way. Here CuPy
itself (where it is installed, with its NVRTC) writes the CUDA source of
each of cupy_gpu's kernels, its inputs const references, its outputs
references, each indexed through CuPy's CArray and CIndexer, for both
dtypes and both widths of index, and NVRTC compiles it with CuPy's headers.
The multi-tensor kernels are whole CUDA functions, compiled as they are.
"""
import numpy as np
import pytest

SCALARS = {"slope", "scale"}                # T-typed inputs cupy_gpu passes as one value, not an array
DOUBLE_ARRAYS = {"mean", "dbeta", "dgamma"}   # float64 inputs it passes as arrays (the channel statistics)
RAW_NDIM = {"tinygan_im2col": 4, "tinygan_col2im": 6}   # a raw array keeps its dimensions (x, col); others are 1-D
ARG_KIND_NDARRAY, ARG_KIND_INDEXER, ARG_KIND_SCALAR = 1, 2, 3   # CuPy's _ArgKind


def argument_info(kernel, parameter, dtype, index_32_bits, ndim):
    """CuPy's description of the argument cupy_gpu passes for ``parameter``, from which it writes the
    kernel's signature: an array of ``ndim`` dimensions once CuPy has merged what it can (1 for contiguous
    arrays, more where a channel statistic is broadcast or a reduction keeps its axes apart), a raw array,
    a scalar, or the indexer CuPy adds itself."""
    import cupy
    from cupy._core import _carray, _kernel, _scalar
    if parameter.ctype is None:   # _ind, _in_ind, _out_ind
        return _kernel._ArgInfo(ARG_KIND_INDEXER, _carray.Indexer, None, ndim, True, index_32_bits)
    own_dtype = parameter.dtype if parameter.dtype is not None else dtype
    if parameter.raw:
        return _kernel._ArgInfo(ARG_KIND_NDARRAY, cupy.ndarray, own_dtype, RAW_NDIM.get(kernel.name, 1), True,
                                index_32_bits)
    if (parameter.dtype is None and parameter.name not in SCALARS) or parameter.name in DOUBLE_ARRAYS:
        return _kernel._ArgInfo(ARG_KIND_NDARRAY, cupy.ndarray, own_dtype, ndim, True, index_32_bits)
    return _kernel._ArgInfo(ARG_KIND_SCALAR, _scalar.CScalar, own_dtype, 0, True, index_32_bits)


def cupy_sources():
    """(name, CUDA source) of every elementwise and reduction kernel, as CuPy 14 generates it when
    cupy_gpu calls it, in float32 and float64, with 32- and 64-bit indices; an elementwise kernel over
    contiguous arrays (1-D once merged) and over a broadcast channel statistic (3-D: N, C, H x W)."""
    from cupy._core import _kernel, _reduction
    from tinygan.kernels import cupy_gpu
    for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
        for index_32_bits in (True, False):
            for kernel in cupy_gpu._kernels.values():
                for ndim in (1, 3):
                    arguments = tuple(argument_info(kernel, parameter, dtype, index_32_bits, ndim)
                                      for parameter in kernel.params)
                    yield f"{kernel.name} {dtype} {index_32_bits} {ndim}", _kernel._get_elementwise_kernel_code(
                        arguments, _kernel._TypeMap((("T", dtype),)), kernel.params, kernel.operation, kernel.name,
                        kernel.preamble)
            index_type = np.dtype(np.int32 if index_32_bits else np.int64)
            for kernel in cupy_gpu._reductions.values():   # (N, C, M) over axes 0 and 2: inputs 3-D, outputs 1-D
                inputs = {parameter.name for parameter in kernel.in_params} | {"_in_ind"}
                arguments = tuple(argument_info(kernel, parameter, dtype, index_32_bits,
                                                3 if parameter.name in inputs else 1)
                                  for parameter in kernel._params)
                yield f"{kernel.name} {dtype} {index_32_bits}", _reduction._ReductionKernel_get_cached_function_code(
                    kernel.nin, kernel.nout, kernel._params, arguments,
                    _kernel._TypeMap((("T", dtype), ("IndexT", index_type))), kernel.name, 512, kernel.reduce_type,
                    kernel.identity, kernel.map_expr, kernel.reduce_expr, kernel.post_map_expr, kernel.preamble,
                    kernel.options)


def compile_or_fail(nvrtc, name, source, options):
    program = nvrtc.createProgram(source, f"{name.replace(' ', '_')}.cu", [], [])
    try:
        nvrtc.compileProgram(program, options)
    except Exception as error:
        pytest.fail(f"{name} does not compile: {error}\n{nvrtc.getProgramLog(program)}\n{source[-3000:]}")
    finally:
        nvrtc.destroyProgram(program)


def test_every_cuda_kernel_compiles_with_nvrtc_as_cupy_writes_it():
    """CUDA's own compiler on the source CuPy would compile, where CuPy and its NVRTC are installed (they
    need no GPU): the stand-in's host C++ cannot catch what only CUDA refuses, nor how CuPy wraps a body."""
    nvrtc = pytest.importorskip("cupy_backends.cuda.libs.nvrtc", reason="CuPy's NVRTC is not installed")
    from cupy._core import core
    if not hasattr(core, "_cupy_header_list"):
        pytest.skip("this CuPy writes its kernels' sources another way than CuPy 14's, which this test follows")
    from tinygan.kernels.cuda_source import MULTI_TENSOR
    from tinygan.kernels.cupy_gpu import C_TYPES
    headers = "".join(f"#include <{header}>\n" for header in core._cupy_header_list)
    options = [f"-I{core._get_header_dir_path()}", *core._get_cccl_include_options(), "--std=c++17",
               "-arch=compute_90"]
    count = 0
    for name, source in cupy_sources():
        compile_or_fail(nvrtc, name, headers + source, options)
        count += 1
    from tinygan.kernels import cupy_gpu   # dtypes, index widths, elementwise kernels at two ndims, reductions
    assert count == 2 * 2 * (2 * len(cupy_gpu._kernels) + len(cupy_gpu._reductions)) > 100
    for c_type in C_TYPES.values():   # a RawModule compiles its code as it is
        compile_or_fail(nvrtc, f"multi_tensor {c_type}", f"#define T {c_type}\n{MULTI_TENSOR}", ["-arch=compute_90"])
