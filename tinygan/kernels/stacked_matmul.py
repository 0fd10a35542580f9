"""A stack of matrix products, a share of the stack per core: Winograd's products on the CPU.

Winograd's convolution (tinygan/winograd.py) ends in one product per
transform point: a stack of 36 or 64 products of a few hundred rows each,
``numpy.matmul(a, b)`` with a (P, M, K) and b (P, K, N). NumPy hands the P
products to OpenBLAS one after the other, and OpenBLAS splits each of them
over all the cores: P times it wakes its threads, cuts a small product into
pieces and waits for the slowest. The cores then spend a good part of the
time waiting or packing operands; measured on 2 cores, these stacks reached
120 to 147 GFLOP/s, against 208 for one large product.

Giving each core its own share of the stack removes that: OpenBLAS runs
single-threaded on every core at once, each core on whole products, and
nothing synchronises until the stack is done. The same stacks then ran 11
to 28% faster (165 GFLOP/s), and a DCGAN step 4 to 7%. The products are the
same ones, and here so were the numbers: three DCGAN training steps gave
the same weights bit for bit with and without the split.

Setting OpenBLAS's thread count takes threadpoolctl. Without it, or where
BLAS runs on one thread already (``OPENBLAS_NUM_THREADS=1``, or a share of
the cores given to one of several processes), this is plain
``numpy.matmul``. While a call runs, BLAS is single-threaded in the whole
process: another of the user's threads that multiplies matrices at that
moment runs on one core, and then gets its threads back.
"""
import os
from concurrent.futures import ThreadPoolExecutor, wait

import numpy

try:
    from threadpoolctl import ThreadpoolController
except ImportError:   # a dependency, but the engine runs without it (a GPU machine's bare image)
    ThreadpoolController = None

_blas = None            # threadpoolctl's controller of the loaded BLAS libraries, found on first use
_workers = None, 0, None   # (process id, size, the thread pool that runs every share but the caller's own)


def stacked_matmul(a, b, out=None):
    """a (P, M, K) @ b (P, K, N) -> (P, M, N), into ``out`` (C-contiguous, of that shape) when given;
    NumPy arrays, any strides per product (numpy.matmul's rules)."""
    if out is None:
        out = numpy.empty((a.shape[0], a.shape[1], b.shape[2]), dtype=numpy.result_type(a, b))
    shares = min(_blas_threads(), a.shape[0])
    if shares < 2:
        return numpy.matmul(a, b, out=out)
    bounds = [a.shape[0] * share // shares for share in range(shares + 1)]
    with _blas.limit(limits=1):
        pool = _pool(shares - 1)
        futures = [pool.submit(numpy.matmul, a[i:j], b[i:j], out=out[i:j])
                   for i, j in zip(bounds[:-2], bounds[1:-1])]
        try:
            numpy.matmul(a[bounds[-2]:], b[bounds[-2]:], out=out[bounds[-2]:])   # the caller's share
        finally:   # the workers write into out: none may still be running once this returns, on an error too
            wait(futures)
    for future in futures:
        future.result()   # a worker's error, raised in the caller
    return out


def describe() -> str:
    """How a stack runs in this process, in one line (``tinygan info``)."""
    if ThreadpoolController is None:
        return "run one at a time, each split over BLAS's threads (threadpoolctl is not installed)"
    threads = _blas_threads()
    return f"run in {threads} shares at once, one per core" if threads > 1 else "run one at a time (BLAS has 1 thread)"


def _blas_threads():
    """How many threads BLAS would give one product now (1 where threadpoolctl is missing)."""
    global _blas
    if ThreadpoolController is None:
        return 1
    if _blas is None:
        _blas = ThreadpoolController().select(user_api="blas")
    return max((library.get_num_threads() or 1 for library in _blas.lib_controllers), default=1)


def _pool(size):
    """The worker threads: made on first use, and again after a fork (a child process inherits the pool
    object but not its threads, and would wait forever on work that no thread picks up)."""
    global _workers
    pid, pool_size, pool = _workers
    if pid != os.getpid() or pool_size != size:
        if pid == os.getpid():
            pool.shutdown(wait=False)
        pool = ThreadPoolExecutor(size, thread_name_prefix="tinygan-matmul")
        _workers = os.getpid(), size, pool
    return pool
