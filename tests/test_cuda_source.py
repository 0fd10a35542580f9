"""Every CUDA source, compiled by CUDA's own compiler (NVRTC), where CuPy's NVRTC is installed: it needs no GPU.

What the kernels compute, and how cupy_gpu.py calls them, the GPU tests
check; without a GPU they run on the CuPy stand-in (tests/cupy_stand_in),
which compiles the same bodies as host C++. A host compiler accepts what
CUDA may refuse, so each elementwise body is wrapped here in a device
function, each reduction's pieces in a loop per channel, as CuPy would
combine them, and the multi-tensor kernels are compiled as they are.
"""
import pytest

from tinygan.kernels.cuda_source import KERNELS, MULTI_TENSOR, PREAMBLE, REDUCTIONS, SUM

SCALAR_ARRAYS = {"slope", "scale"}   # T-typed inputs the wrappers pass as one value
DOUBLE_ARRAYS = {"mean", "dbeta", "dgamma"}   # float64 inputs the wrappers pass as arrays (the channel statistics)
C_TYPES = {"int32": "int", "uint64": "unsigned long long", "float64": "double", "T": "T"}


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


def test_every_cuda_source_compiles_with_nvrtc():
    """CUDA's own compiler on every source, where CuPy's NVRTC is installed (it needs no GPU): the stand-in's
    host C++ cannot catch what only CUDA refuses."""
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
