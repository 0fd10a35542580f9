"""Matrix products by cuBLAS called directly, for a training step captured as a CUDA graph.

CuPy refuses to call cuBLAS while a stream is being captured (its wrappers
raise NotImplementedError, to be safe), though cuBLAS itself can be captured.
So while a step is captured, ``kernels.matmul`` calls cuBLAS's sgemm or
dgemm itself, through ctypes, on the handle CuPy made. Before the capture
that handle is pointed at the capture's stream and given a workspace of its
own (``use_stream``), so that cuBLAS allocates nothing inside the graph.

cuBLAS stores matrices column by column, NumPy row by row, and a row-major
(r, c) matrix read column-major is its (c, r) transpose. So C = A B is asked
of cuBLAS as C^T = B^T A^T, which it writes column-major: C, row-major
(``gemm_arguments``). A transposed view, stored column by column, is handed
over as it is stored, with cuBLAS's "transpose" flag instead.
"""
import ctypes

import numpy

NO_TRANSPOSE, TRANSPOSE = 0, 1   # cublasOperation_t
POINTER_MODE_HOST = 0            # alpha and beta are read from host memory, once, at capture
WORKSPACE_BYTES = 32 * 2**20     # what cuBLAS asks for on Hopper GPUs


def operand(x):
    """(operation, leading dimension, array) that give cuBLAS the 2-D array x transposed, x read column-major.

    A C-contiguous x, read column-major with its row length as leading
    dimension, is x^T as it is: no operation. An F-contiguous x (a transposed
    view) read column-major is x itself: cuBLAS transposes it. Any other
    layout is copied to C order first.
    """
    rows, columns = x.shape
    if x.flags.c_contiguous:
        return NO_TRANSPOSE, max(1, columns), x
    if x.flags.f_contiguous:
        return TRANSPOSE, max(1, rows), x
    return NO_TRANSPOSE, max(1, columns), x.copy(order="C")


def gemm_arguments(a, b):
    """cuBLAS gemm's (transa, transb, m, n, k, A, lda, B, ldb, ldc) for the row-major product a (M, K) @ b (K, N)
    written into a C-contiguous (M, N) array: column-major, C^T (N, M) = b^T (N, K) a^T (K, M)."""
    (M, K), (_, N) = a.shape, b.shape
    transpose_b, ld_b, b = operand(b)
    transpose_a, ld_a, a = operand(a)
    return transpose_b, transpose_a, N, M, K, b, ld_b, a, ld_a, max(1, N)


_library = None


def library():
    """The libcublas that CuPy calls (and made its handle with), for ctypes.

    A process may hold more than one cuBLAS: PyTorch brings its own, and the
    benchmarks import it beside CuPy. CuPy's handle must go to CuPy's cuBLAS
    only. So the functions are looked up through CuPy's cuBLAS binding: a
    symbol looked up in a library's handle (dlsym) is searched in that
    library and then in the libraries it was linked against, which for the
    binding is CuPy's libcublas.
    """
    global _library
    if _library is None:
        import cupy
        from cupy_backends.cuda.libs import cublas as binding
        cupy.cuda.device.get_cublas_handle()   # CuPy loads cuBLAS with its first handle
        lib = ctypes.CDLL(binding.__file__)
        if not hasattr(lib, "cublasSgemm_v2"):   # a CuPy that opens cuBLAS at run time: the one loaded, if one
            paths = sorted({line.split()[-1] for line in open("/proc/self/maps") if "/libcublas.so" in line})
            if len(paths) != 1:
                raise RuntimeError(f"--cuda-graph calls cuBLAS directly, but cannot tell CuPy's cuBLAS among the "
                                   f"{len(paths)} this process has loaded ({', '.join(paths) or 'none'}): train "
                                   "without --cuda-graph, or without importing another CUDA library beside CuPy")
            lib = ctypes.CDLL(paths[0])
        _library = declare(lib)
    return _library


def declare(lib):
    """The C signatures (cublas_api.h) of the cuBLAS functions used here, on the loaded library ``lib``."""
    for name in ("cublasSetStream_v2", "cublasSetWorkspace_v2", "cublasSetPointerMode_v2"):
        getattr(lib, name).restype = ctypes.c_int
    lib.cublasSetStream_v2.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.cublasSetWorkspace_v2.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    lib.cublasSetPointerMode_v2.argtypes = [ctypes.c_void_p, ctypes.c_int]
    for name, real in (("cublasSgemm_v2", ctypes.c_float), ("cublasDgemm_v2", ctypes.c_double)):
        function = getattr(lib, name)
        function.restype = ctypes.c_int
        # handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc
        function.argtypes = ([ctypes.c_void_p] + [ctypes.c_int] * 5
                             + [ctypes.POINTER(real), ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                                ctypes.POINTER(real), ctypes.c_void_p, ctypes.c_int])
    return lib


def gemm(lib, handle, a, b, c, address):
    """c = a @ b by ``lib``'s sgemm or dgemm, c C-contiguous; ``address(array)``: where the array's memory is."""
    transa, transb, m, n, k, first, lda, second, ldb, ldc = gemm_arguments(a, b)
    real = ctypes.c_float if a.dtype == numpy.float32 else ctypes.c_double
    function = lib.cublasSgemm_v2 if a.dtype == numpy.float32 else lib.cublasDgemm_v2
    check(function(handle, transa, transb, m, n, k, ctypes.byref(real(1)), address(first), lda, address(second), ldb,
                   ctypes.byref(real(0)), address(c), ldc), "gemm")


def check(status, what):
    if status != 0:
        raise RuntimeError(f"cuBLAS {what} failed with status {status}")


def use_stream(stream):
    """Point CuPy's cuBLAS handle at ``stream``, with a workspace of its own and host scalars; the workspace
    array, which the caller must hold while the products run (for a capture: as long as its graph lives).
    CuPy's next cuBLAS call sets its own stream (and with it cuBLAS's default workspace) again."""
    import cupy
    lib, handle = library(), cupy.cuda.device.get_cublas_handle()
    workspace = cupy.empty(WORKSPACE_BYTES, dtype=numpy.uint8)
    check(lib.cublasSetStream_v2(handle, stream.ptr), "cublasSetStream")   # this resets the workspace: set it after
    check(lib.cublasSetWorkspace_v2(handle, workspace.data.ptr, WORKSPACE_BYTES), "cublasSetWorkspace")
    check(lib.cublasSetPointerMode_v2(handle, POINTER_MODE_HOST), "cublasSetPointerMode")
    return workspace


def matmul(a, b, out=None):
    """a @ b for 2-D CuPy arrays of float32 or float64, into ``out`` (C-contiguous) when given, by cuBLAS's gemm
    on the stream use_stream set."""
    import cupy
    if a.dtype != b.dtype or a.dtype.name not in ("float32", "float64"):
        raise TypeError(f"a captured matrix product takes two float32 or float64 arrays, got {a.dtype} and {b.dtype}")
    M, N = a.shape[0], b.shape[1]
    c = out if out is not None and out.flags.c_contiguous else cupy.empty((M, N), dtype=a.dtype)
    if M and N and not a.shape[1]:
        c.fill(0)   # an empty sum
    elif M and N:
        gemm(library(), cupy.cuda.device.get_cublas_handle(), a, b, c, lambda array: array.data.ptr)
    if out is not None and c is not out:
        out[...] = c
        return out
    return c
