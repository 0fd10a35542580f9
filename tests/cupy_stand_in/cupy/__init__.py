"""A strict stand-in for CuPy, so that tinygan's GPU code runs on a machine without a GPU.

Put its folder first on the path (``PYTHONPATH=tests/cupy_stand_in``) and
``import cupy`` finds this module: the GPU tests then run (``python -m pytest
-m gpu``, which tests/test_cupy_stand_in.py does). It is not a GPU, and it
shows nothing about speed; what it checks is the code that only ever runs
under CuPy, which no CPU test reaches otherwise:

* An array lives on the device. NumPy may not read it implicitly
  (``numpy.asarray(x)`` raises, as in CuPy: use ``.get()``), and a CuPy
  function or operator refuses a NumPy array among its operands.
* Only CuPy's names exist: ``cupy.x`` and ``array.x`` are refused unless
  CuPy 14.2 has them (CUPY_NAMES, NDARRAY_NAMES).
* The CUDA kernels (ElementwiseKernel, ReductionKernel, RawModule) are
  compiled as host C++ and run one thread after another, first to last at
  one launch and last to first at the next, with CuPy's rules for their
  arguments: the number of them, the dtype of each array against its
  parameter, broadcasting, a scalar's width against a raw kernel's
  parameter. A CUDA kernel that gets a wrong argument computes garbage in
  silence; here it is a TypeError.
* cuBLAS is a library named libcublas.so that this module builds and loads,
  so kernels/cublas.py finds it and calls it through ctypes, as on a GPU.
  Its gemm reads the matrices column-major, as cuBLAS does.
* Device memory is a pool of blocks, as CuPy's: a block whose last array
  is gone goes back to the pool and is handed, as garbage, to the next
  array of its size.
* A stream capture records and runs nothing, as CUDA's: every operation
  while a stream is captured is recorded, the device memory the capture
  found is restored when it ends, memory allocated during it holds garbage
  until a replay, and a replay runs the operations again on the same
  memory, with the arguments they were recorded with. A graph keeps the
  addresses it uses, not the arrays: one that would use a block that went
  back to the pool refuses to run. Reading a value on the host, copying
  from the host synchronously (CuPy's uniform and Poisson draws and its
  joins of more than eight arrays among them), synchronising, or calling
  cuBLAS through CuPy during a capture raises, as it does under CUDA.
* An asynchronous copy from or to page-locked host memory
  (cuda.alloc_pinned_memory) runs when its stream gets to it, which may be
  long after the call. Until the host has waited for it (the stream's or
  the device's synchronize, an event recorded after it, a blocking read on
  its stream), writing the memory it copies from raises at the next device
  call or wait, freeing it raises, and the memory it copies to holds garbage.

What it cannot show: the kernels compiled by NVRTC (tests/test_cuda_source.py
does that where NVRTC is installed), the GPU's arithmetic order in
reductions, threads that run at the same time (two that add to one element
without an atomic lose nothing here), timing, and the rest of asynchrony: it
runs each kernel as it is launched, in the order of the calls, so work on
two streams never overlaps.
"""
import contextlib
import ctypes
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import types
import weakref
from pathlib import Path

import numpy

__version__ = "14.2.0 (stand-in on the CPU)"

# The public names of CuPy 14.2 and of its ndarray (dir() of each, without the leading underscores).
CUPY_NAMES = frozenset((Path(__file__).with_name("names.txt")).read_text().split())
NDARRAY_NAMES = frozenset("""T all any argmax argmin argpartition argsort astype base byteswap choose clip compress conj
conjugate copy cstruct cumprod cumsum data device diagonal dot dtype dump dumps fill flags flat flatten get imag item
itemsize mT max mdspan mean min nbytes ndim nonzero partition prod ptp put ravel real reduced_view repeat reshape round
scatter_add scatter_max scatter_min searchsorted set shape size sort squeeze std strides sum swapaxes take toDlpack
tobytes tofile tolist trace transpose var view""".split())
HOST_READS = frozenset("item tolist tobytes tofile dump dumps".split())   # they wait for the device


class StreamCaptureUnsupported(RuntimeError):
    """What CUDA answers (cudaErrorStreamCaptureUnsupported) to an operation a stream capture cannot record."""


# ---------------------------------------------------------------------------------------------
# Device memory, and the capture that records what is done to it
# ---------------------------------------------------------------------------------------------

# Device memory is a pool of blocks, as CuPy's: an array's memory is a block's buffer (or a view of one), and a
# block whose last array is gone goes back to the pool, filled with garbage, for the next array of its size. A
# captured graph keeps the buffers it writes to, not their blocks: memory the graph uses that its arrays have
# let go is handed to other arrays, as CuPy's pool does, unless something holds the block (cuda_graph.py's
# HeldAllocations, keep_alive).
ROUNDING = 512          # bytes, as CuPy's pool rounds a request
_blocks = {}            # id of a buffer -> weakref of the block that owns it
_free = {}              # size -> buffers given back to the pool
_generators = weakref.WeakSet()


class _Block:
    """Memory handed out by an allocator (CuPy's MemoryPointer): ``size`` bytes in ``buffer``."""

    def __init__(self, size):
        self.size = size
        free = _free.get(size)
        self.buffer = free.pop() if free else numpy.full(size, 0xFF, numpy.uint8)   # 0xFF bytes: NaN, -1
        self.ptr = self.buffer.ctypes.data
        _blocks[id(self.buffer)] = weakref.ref(self)
        weakref.finalize(self, _give_back, self.buffer)
        if _capture is not None:
            _capture.allocated.append(self.buffer)


def _give_back(buffer):
    del _blocks[id(buffer)]
    buffer.fill(0xFF)   # what the next owner finds: garbage
    _free.setdefault(buffer.size, []).append(buffer)


def _block_of(array):
    """The block whose memory ``array`` is, or None for memory that is not the device's."""
    while isinstance(array.base, numpy.ndarray):
        array = array.base
    reference = _blocks.get(id(array))
    return None if reference is None else reference()


def _device_array(shape, dtype):
    """A new array (NumPy, in a fresh block from the current allocator) and its block."""
    dtype = numpy.dtype(dtype)
    nbytes = int(numpy.prod(shape, dtype=numpy.int64)) * dtype.itemsize
    block = (cuda._allocator or _Block)(-(-nbytes // ROUNDING) * ROUNDING)
    return block.buffer[:nbytes].view(dtype).reshape(shape), block


def _live_buffers():
    return [buffer for buffer in (_buffer_of(reference) for reference in list(_blocks.values())) if buffer is not None]


def _buffer_of(reference):
    block = reference()
    return None if block is None else block.buffer


class _Capture:
    """What a capturing stream records: the operations, and the device memory to restore when it ends."""

    def __init__(self, stream):
        self.stream, self.operations, self.allocated = stream, [], []
        self.used = {}   # id -> weakref of every block an operation read or wrote, for the graph to check
        self.saved = [(buffer, buffer.copy()) for buffer in _live_buffers()]
        self.generators = [(generator, generator._state()) for generator in _generators]

    def finish(self):
        for buffer, copy in self.saved:
            numpy.copyto(buffer, copy)
        for buffer in self.allocated:
            buffer.fill(0xFF)   # nothing captured has run yet
        for generator, state in self.generators:
            generator._restore(state)


_capture = None


def _note(array):
    """While a stream is captured: the graph will use ``array``'s memory (a device array) at every replay."""
    if _capture is not None and array._block is not None:
        _capture.used.setdefault(id(array._block), weakref.ref(array._block))
    return array


def _refuse_during_capture(what):
    if _capture is not None:
        raise StreamCaptureUnsupported(f"{what} is not permitted while a stream is being captured "
                                       "(cudaErrorStreamCaptureUnsupported)")


def _launch(run):
    """Run the device operation ``run`` now; during a capture, record it for every replay as well."""
    _check_copies_in_flight()
    if _capture is not None:
        if cuda._current is not _capture.stream:
            raise StreamCaptureUnsupported("work was issued on another stream while a stream is being captured")
        _capture.operations.append(run)
    return run()


def _operation(compute):
    """A device operation whose result is new memory (or a view): at a replay its values are computed again
    and written into the memory the recorded result holds."""
    memory = []   # the result's memory, not the arrays: a graph keeps addresses, and holds no array alive

    def run():
        fresh = compute()
        if not memory:
            result = _on_device(fresh)
            memory.append(_memory_of(result))
            return result
        _write_into(memory[0], fresh)
    return _launch(run)


def _memory_of(value):
    if isinstance(value, ndarray):
        return value._array
    if isinstance(value, (tuple, list)):
        return type(value)(_memory_of(item) for item in value)
    return value


def _on_device(value):
    """``value`` with each NumPy array in it a device array: a view of device memory stays one, and a result in
    NumPy's memory is copied into a block of the pool."""
    if isinstance(value, numpy.generic):
        value = numpy.asarray(value)   # CuPy's reductions give 0-d arrays, not scalars
    if isinstance(value, numpy.ndarray):
        block = _block_of(value)
        if block is None:
            array, block = _device_array(value.shape, value.dtype)
            numpy.copyto(array, value)
            value = array
        return _note(ndarray._of(value, block))
    if isinstance(value, (tuple, list)):
        return type(value)(_on_device(item) for item in value)
    return value


def _write_into(target, fresh):
    if isinstance(target, numpy.ndarray):
        if fresh is not target:
            numpy.copyto(target, fresh, casting="unsafe")
    elif isinstance(target, (tuple, list)):
        for item, value in zip(target, fresh):
            _write_into(item, value)


# ---------------------------------------------------------------------------------------------
# The array
# ---------------------------------------------------------------------------------------------

def _unwrap(value, host_data=False):
    """The NumPy arrays behind ``value`` (an array, a scalar, a nesting of lists, tuples and dicts);
    a NumPy array is refused, as CuPy refuses one, unless ``host_data`` (a copy from the host).

    The caller keeps ``value`` until the operation has run: CuPy hands a block back to the pool only for work
    queued after what was queued with it, and an argument that nothing else holds is gone as soon as the
    caller lets go of it."""
    if isinstance(value, ndarray):
        return _note(value)._array
    if isinstance(value, numpy.ndarray):
        if not host_data:
            raise TypeError(f"Unsupported type {type(value)}: a NumPy array among a CuPy operation's operands "
                            "(move it to the device with cupy.asarray)")
        _refuse_during_capture("a copy from the host")
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(item, host_data) for item in value)
    if isinstance(value, dict):
        return {key: _unwrap(item, host_data) for key, item in value.items()}
    if isinstance(value, slice):
        return slice(_unwrap(value.start), _unwrap(value.stop), _unwrap(value.step))
    return value


def _index(key):
    """``key`` as NumPy takes it. CuPy copies an index array of NumPy's, or a list, to the device first."""
    if any(isinstance(k, list) for k in (key if isinstance(key, tuple) else (key,))):
        _refuse_during_capture("a copy from the host (an index list)")
    return _unwrap(key, host_data=True)


class _Pointer:
    """ndarray.data: where the array's first element is, and the copies from and to the host."""

    def __init__(self, array):
        self.ptr, self.device_id = array.ctypes.data, 0

    def copy_from_host_async(self, source, size, stream=None):
        destination = self.ptr

        def run():   # a replay reads the host memory anew
            ctypes.memmove(destination, source, size)
            if _capture is None and _is_pinned(source, size):
                _in_flight.append(_CopyInFlight(source, size, to_device=True))
        _launch(run)

    def copy_from_host(self, source, size):
        _refuse_during_capture("a synchronous copy from the host")
        ctypes.memmove(self.ptr, source, size)

    def copy_to_host_async(self, destination, size, stream=None):
        source = self.ptr

        def run():
            if _capture is None and _is_pinned(destination, size):   # lands when the host waits for it
                data = ctypes.string_at(source, size)
                _in_flight.append(_CopyInFlight(destination, size, to_device=False, data=data))
                ctypes.memset(destination, 0xFF, size)
            else:
                ctypes.memmove(destination, source, size)
        _launch(run)


# Asynchronous copies. CUDA copies between the device and page-locked host memory when the stream gets to the
# copy, which may be long after the call returns: the host may write the memory a copy reads, or read the memory
# a copy writes, only once it has waited for the copy. (From pageable memory CUDA copies before the call
# returns, so only page-locked memory is watched.) Each copy here runs in its turn, as on the device, and stays
# in flight until the host waits for its stream: a write to the memory it read is a race, found at the next
# device call or wait, and so is freeing that memory; the memory it writes holds garbage until then.
_pinned = {}   # where each page-locked allocation starts -> its size
_in_flight = []


class _PinnedMemory(bytearray):
    """What cuda.alloc_pinned_memory hands out: host memory that a copy reads or writes when its stream gets
    there."""

    def __init__(self, size):
        super().__init__(size)
        self.ptr = ctypes.addressof((ctypes.c_char * size).from_buffer(self)) if size else 0
        _pinned[self.ptr] = size
        weakref.finalize(self, _free_pinned, self.ptr, size)


def _free_pinned(start, size):
    del _pinned[start]
    copies = [copy for copy in _in_flight if start <= copy.address < start + size]
    if copies:
        _in_flight[:] = [copy for copy in _in_flight if copy not in copies]
        raise RuntimeError("page-locked host memory was freed while an asynchronous copy to or from it may not "
                           "have run: keep it until the host has waited for the copy")


def _is_pinned(address, size):
    return any(start <= address and address + size <= start + length for start, length in _pinned.items())


class _CopyInFlight:
    """A copy between the device and page-locked memory at ``address`` that the host has not waited for."""

    def __init__(self, address, size, to_device, data=None):
        self.stream, self.address, self.size, self.to_device = cuda._current, address, size, to_device
        self.data = ctypes.string_at(address, size) if to_device else data   # what the copy read, or will write

    def check(self):
        if self.to_device and ctypes.string_at(self.address, self.size) != self.data:
            _in_flight.remove(self)   # said once: the tests after this one start afresh
            raise RuntimeError("page-locked host memory was written while an asynchronous copy from it may not "
                               "have run: wait for the copy (an Event recorded after it, or the stream's "
                               "synchronize) before writing the memory again")

    def land(self):
        if not self.to_device:
            ctypes.memmove(self.address, self.data, self.size)


def _check_copies_in_flight():
    for copy in list(_in_flight):
        copy.check()


def _wait_for(copies):
    """The host waits for ``copies``: each must have read what it was given, and is no longer in flight."""
    copies = list(copies)
    for copy in copies:
        copy.check()
        copy.land()
    _in_flight[:] = [copy for copy in _in_flight if copy not in copies]


def _wait_for_stream(stream):
    _wait_for(copy for copy in _in_flight if copy.stream is stream)


class ndarray(numpy.lib.mixins.NDArrayOperatorsMixin):
    """A device array: a NumPy array that NumPy may not read without ``.get()``."""
    __array_priority__ = 100
    __hash__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        self._array, self._block = _device_array(shape, dtype)

    @classmethod
    def _of(cls, array, block):
        """The device array over ``array``, memory of ``block`` (which it holds, as CuPy's holds its pointer)."""
        self = object.__new__(cls)
        self._array, self._block = array, block
        return self

    def _view(self, array):
        return ndarray._of(array, self._block)

    # NumPy must not convert a device array behind the user's back
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if "out" in kwargs:
            if not all(isinstance(out, ndarray) for out in kwargs["out"]):
                raise TypeError("a CuPy ufunc's out= must be a CuPy array")
        if method == "__call__" and ufunc.__name__ == "matmul":
            _refuse_cublas()
        outs = kwargs.get("out")
        values, options = _unwrap(inputs), _unwrap(kwargs)
        result = _operation(lambda: getattr(ufunc, method)(*values, **options))
        if outs is not None:   # the arrays written into, themselves (x -= y keeps x)
            return outs[0] if len(outs) == 1 else outs
        return result

    def __array_function__(self, function, types_, args, kwargs):
        name = function.__name__
        if name not in CUPY_NAMES:
            raise TypeError(f"numpy.{name} on a CuPy array: CuPy has no {name}")
        return getattr(sys.modules[__name__], name)(*args, **kwargs)

    def __matmul__(self, other):
        return sys.modules[__name__].matmul(self, other)

    def __rmatmul__(self, other):
        return sys.modules[__name__].matmul(other, self)

    # what does not wait for the device
    shape = property(lambda self: self._array.shape)
    dtype = property(lambda self: self._array.dtype)
    ndim = property(lambda self: self._array.ndim)
    size = property(lambda self: self._array.size)
    strides = property(lambda self: self._array.strides)
    itemsize = property(lambda self: self._array.itemsize)
    nbytes = property(lambda self: self._array.nbytes)
    flags = property(lambda self: self._array.flags)
    data = property(lambda self: _Pointer(_note(self)._array))
    device = property(lambda self: cuda.Device(0))
    T = property(lambda self: self._view(self._array.T))
    mT = property(lambda self: self._view(numpy.swapaxes(self._array, -1, -2)))

    def __len__(self):
        return len(self._array)

    def __iter__(self):
        return (self[index] for index in range(len(self)))

    def __getitem__(self, key):
        index = _index(key)
        indices = index if isinstance(index, tuple) else (index,)
        if not any(k is Ellipsis or isinstance(k, (numpy.ndarray, list)) for k in indices):
            index = indices + (Ellipsis,)   # a view, also where NumPy would hand back a scalar (as CuPy does)
        array = self._array
        return _operation(lambda: array[index])

    def __setitem__(self, key, value):
        if isinstance(value, list):
            _refuse_during_capture("a copy from the host (a list of values)")
        index, values = _index(key), _unwrap(value, host_data=True)
        array = self._array

        def run():
            array[index] = values
        _launch(run)

    def get(self, stream=None, order="C", out=None):
        _refuse_during_capture("a copy to the host")
        _wait_for_stream(stream or cuda._current)   # a blocking copy: the stream's earlier work has run
        return numpy.array(self._array, order=order)

    def set(self, array, stream=None):
        self[...] = array

    def _read(self, what):
        _refuse_during_capture(what)
        _wait_for_stream(cuda._current)
        return self._array

    def __float__(self):
        return float(self._read("reading a value on the host"))

    def __int__(self):
        return int(self._read("reading a value on the host"))

    def __index__(self):
        return self._read("reading a value on the host").__index__()

    def __bool__(self):
        return bool(self._read("reading a value on the host"))

    def __complex__(self):
        return complex(self._read("reading a value on the host"))

    def __repr__(self):
        return repr(self._read("printing an array")).replace("array", "cupy.ndarray", 1)

    def __str__(self):
        return str(self._read("printing an array"))

    def __getattr__(self, name):
        if name.startswith("_") or name not in NDARRAY_NAMES:
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r}")
        attribute = getattr(self._array, name)
        if name in HOST_READS:
            self._read(f"ndarray.{name}")
            return attribute
        if not callable(attribute):
            return _on_device(attribute)

        def method(*args, **kwargs):
            values, options = _unwrap(args), _unwrap(kwargs)
            if name == "dot":
                _refuse_cublas()
            array = self._array   # not self: a recorded operation holds memory, not arrays
            return _operation(lambda: getattr(array, name)(*values, **options))
        return method

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    def __reduce__(self):
        return (_from_host, (self.get(),))


def _from_host(array):
    return asarray(array)


# ---------------------------------------------------------------------------------------------
# Functions: NumPy's, on device arrays only, where CuPy has them
# ---------------------------------------------------------------------------------------------

HOST_DATA = {"array", "asarray", "asanyarray"}   # the functions that copy from the host
UNINITIALISED = {"empty", "empty_like"}
NOT_ARRAYS = {"shape", "ndim", "size", "result_type", "may_share_memory", "shares_memory", "isscalar",
              "can_cast", "min_scalar_type", "promote_types", "iscomplexobj", "isrealobj", "get_array_module",
              "common_type", "broadcast_shapes"}
BLAS = {"matmul", "dot", "vdot", "inner", "outer", "tensordot", "einsum", "kron"}


def _refuse_cublas():
    if _capture is not None:
        raise NotImplementedError("cuBLAS is not available during stream capture (CuPy's wrappers refuse it)")


JOINS = {"concatenate", "stack", "hstack", "vstack", "dstack", "column_stack"}   # CuPy's _concatenate, all


def _refuse_address_table(arrays):
    """CuPy joins more than 8 arrays of one dtype, 2 MiB or less each on average, in one kernel that reads
    their addresses from a table it copies from the host: not something a capture can record."""
    arrays = list(arrays)
    if (_capture is not None and len(arrays) > 8 and len({a.dtype for a in arrays}) == 1
            and sum(a.nbytes for a in arrays) < 2 * 2**20 * len(arrays)):
        _refuse_during_capture(f"a copy from the host (CuPy joins {len(arrays)} arrays through a table of "
                               "their addresses)")


def _function(name, function):
    host_data = name in HOST_DATA

    def call(*args, **kwargs):
        if name in BLAS:
            _refuse_cublas()
        if name in JOINS and args and isinstance(args[0], (list, tuple)):
            _refuse_address_table(a for a in args[0] if isinstance(a, ndarray))
        values, options = _unwrap(args, host_data), _unwrap(kwargs, host_data)
        if name in NOT_ARRAYS:
            return function(*values, **options)
        if name in UNINITIALISED:   # a block as the pool hands it out: garbage
            like = function(*values, **options)
            return ndarray(like.shape, like.dtype)
        return _operation(lambda: function(*values, **options))
    call.__name__ = call.__qualname__ = name
    return call


def asarray(a, dtype=None, order=None, *, blocking=False):
    if isinstance(a, ndarray) and (dtype is None or numpy.dtype(dtype) == a.dtype):
        return a
    return array(a, dtype, copy=False, order=order)


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    if isinstance(obj, ndarray):
        source = obj._array
        return _operation(lambda: numpy.array(source, dtype, copy=copy or None, order=order, ndmin=ndmin))
    _refuse_during_capture("a copy from the host")
    return _on_device(numpy.array(_unwrap(obj, host_data=True), dtype, order=order, ndmin=ndmin))


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    if isinstance(a, ndarray):
        return a.get(order=order)
    return numpy.asarray(a, order=order)


def get_array_module(*args):
    return sys.modules[__name__] if any(isinstance(arg, ndarray) for arg in args) else numpy


def __getattr__(name):
    if name not in CUPY_NAMES:
        raise AttributeError(f"module 'cupy' has no attribute {name!r}")
    value = getattr(numpy, name)
    if callable(value) and not isinstance(value, type):
        value = _function(name, value)
        globals()[name] = value
    return value


# ---------------------------------------------------------------------------------------------
# Kernels: CUDA source compiled as host C++
# ---------------------------------------------------------------------------------------------

C_TYPES = {"float32": "float", "float64": "double", "int32": "int", "int64": "long long", "uint32": "unsigned int",
           "uint64": "unsigned long long", "int8": "signed char", "uint8": "unsigned char", "bool": "bool"}
HOST_HEADER = """#include <cmath>
#include <cstdint>
#include <cstddef>
using namespace std;
#define __device__
#define __global__
#define __forceinline__ inline
"""


CACHE = Path(tempfile.gettempdir()) / f"tinygan-cupy-stand-in-{os.getuid()}"   # the built libraries


def _build(source, library, flags=()):
    """``library`` (a path) built from the C++ ``source`` unless it is there; the build goes to a file of this
    process's first, so that processes building the same library at once never load half of one."""
    library.parent.mkdir(parents=True, exist_ok=True)
    if not library.exists():
        path = library.with_name(f"{library.name}-{os.getpid()}.cpp")
        path.write_text(source)
        built = path.with_suffix(".so")
        result = subprocess.run(["c++", "-O2", "-shared", "-fPIC", "-o", str(built), str(path), *flags],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"the stand-in could not compile {library.name}:\n{result.stderr}\n{source}")
        os.replace(built, library)
        path.unlink()
    return library


def _compile(source, name):
    """A shared library built from ``source`` (cached by its text), loaded."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    return ctypes.CDLL(str(_build(source, CACHE / f"{name}-{digest}.so")))


class _Parameter:
    def __init__(self, text):
        words = text.split()
        self.raw = words[0] == "raw"
        self.type, self.name = words[-2:]
        self.dtype = None if len(self.type) == 1 else numpy.dtype(self.type)
        self.c_type = self.type if self.dtype is None else C_TYPES[self.dtype.name]   # T stays T: a typedef


def _parameters(text):
    return [_Parameter(part) for part in text.split(",") if part.strip()]


def _decide_types(in_params, in_args, out_params, out_args):
    """CuPy's rule: a typed parameter takes an array of exactly its dtype; the arrays of one type
    placeholder (T) share a dtype; scalars take the parameter's type."""
    placeholders = {}
    for params, args in ((out_params, out_args or []), (in_params, in_args)):
        for p, a in zip(params, args):
            if not isinstance(a, ndarray):
                continue
            if p.dtype is not None:
                if a.dtype != p.dtype:
                    raise TypeError(f"Type is mismatched. {p.name} {a.dtype} {p.dtype}")
            elif p.type in placeholders and placeholders[p.type] != a.dtype:
                raise TypeError(f"Type is mismatched. {p.name} {a.dtype} {placeholders[p.type]} {p.type}")
            else:
                placeholders[p.type] = a.dtype
    try:
        in_types = [placeholders[p.type] if p.dtype is None else p.dtype for p in in_params]
        out_types = [placeholders[p.type] if p.dtype is None else p.dtype for p in out_params]
    except KeyError as missing:
        raise TypeError(f"the type {missing} of a kernel is decided by no array argument") from None
    return in_types, out_types, placeholders


def _kernel_arguments(kernel, args):
    """A kernel call's (inputs, outputs or None, input types, output types, type placeholders)."""
    for a in args:
        if isinstance(a, numpy.ndarray):
            raise TypeError(f"{kernel.name}: a NumPy array as a kernel argument (CuPy takes device arrays only)")
    if len(args) not in (len(kernel.in_params), len(kernel.in_params) + len(kernel.out_params)):
        raise TypeError(f"Wrong number of arguments for {kernel.name}")
    in_args, out_args = args[:len(kernel.in_params)], args[len(kernel.in_params):] or None
    return (in_args, out_args, *_decide_types(kernel.in_params, in_args, kernel.out_params, out_args))


def _typedefs(placeholders):
    return "".join(f"typedef {C_TYPES[dtype.name]} {name};\n" for name, dtype in sorted(placeholders.items()))


def _scalar(value, dtype):
    if isinstance(value, ndarray):
        raise TypeError("a device array where the kernel takes a scalar")
    return numpy.array([value], dtype=dtype)


class _Kernel:
    """What CuPy's two user kernels share: parameters, and one compiled library per type and argument form."""

    def __init__(self, in_params, out_params, name, preamble):
        self.in_params, self.out_params = _parameters(in_params), _parameters(out_params)
        self.name, self.preamble, self.libraries = name, preamble, {}

    def _library(self, placeholders, arrays):
        """The compiled ``run`` for these placeholder types, the inputs at ``arrays`` being arrays."""
        key = (tuple(sorted((name, dtype.name) for name, dtype in placeholders.items())), tuple(arrays))
        if key not in self.libraries:
            source = HOST_HEADER + _typedefs(placeholders) + self.preamble + "\n" + self._source(arrays)
            self.libraries[key] = _compile(source, self.name).run
        return self.libraries[key]


class ElementwiseKernel(_Kernel):
    """CuPy's ElementwiseKernel: the body once per element of the broadcast non-raw arrays, ``i`` its index."""

    def __init__(self, in_params, out_params, operation, name="kernel", reduce_dims=True, preamble="",
                 no_return=False, return_tuple=False, **kwargs):
        super().__init__(in_params, out_params, name, preamble)
        self.operation, self.no_return, self.return_tuple = operation, no_return, return_tuple

    def _source(self, arrays):
        arguments, prologue = [], []
        for index, p in enumerate(self.in_params):
            arguments.append(f"const {p.c_type}* {p.name}_")
            prologue.append(f"const {p.c_type}* {p.name} = {p.name}_;" if p.raw else
                            f"const {p.c_type} {p.name} = {p.name}_[{'i' if index in arrays else '0'}];")
        for p in self.out_params:
            arguments.append(f"{p.c_type}* {p.name}_")
            prologue.append(f"{p.c_type}* {p.name} = {p.name}_;" if p.raw else f"{p.c_type}& {p.name} = {p.name}_[i];")
        return (f'extern "C" void run({", ".join(arguments)}, long long _size, int _reverse) {{\n'
                + "  for (long long _k = 0; _k < _size; ++_k) {\n"
                + "    long long i = _reverse ? _size - 1 - _k : _k;\n    " + "\n    ".join(prologue)
                + f"\n    {self.operation};\n  }}\n}}\n")

    def __call__(self, *args, size=None, block_size=None, stream=None):
        in_args, out_args, in_types, out_types, placeholders = _kernel_arguments(self, args)
        broadcast = [a for p, a in zip(self.in_params, in_args) if isinstance(a, ndarray) and not p.raw]
        if out_args is not None:
            broadcast += [a for p, a in zip(self.out_params, out_args) if not p.raw]
        if not broadcast:
            raise ValueError("Loop size is undecided.")
        shape = numpy.broadcast_shapes(*(a.shape for a in broadcast))
        if out_args is None:
            out_args = [ndarray(shape, dtype) for dtype in out_types]
        for p, a in zip(self.out_params, out_args):
            if not isinstance(a, ndarray):
                raise TypeError(f"Output arguments type must be cupy.ndarray, not {type(a)}")
            if not p.raw and a.shape != shape:
                raise ValueError(f"Out shape is mismatched: {a.shape} while {shape} is expected.")
        arrays = [index for index, (p, a) in enumerate(zip(self.in_params, in_args))
                  if isinstance(a, ndarray) and not p.raw]
        run = self._library(placeholders, arrays)
        inputs = [(index in arrays, _note(a)._array if isinstance(a, ndarray) else _scalar(a, dtype))
                  for index, (a, dtype) in enumerate(zip(in_args, in_types))]
        outputs = [_note(a)._array for a in out_args]

        def launch():
            pointers = []
            for broadcast_, a in inputs:
                if broadcast_ and a.shape != shape:
                    a = numpy.broadcast_to(a, shape)
                pointers.append(numpy.ascontiguousarray(a))
            results = [o if o.flags.c_contiguous else numpy.ascontiguousarray(o) for o in outputs]
            run(*(ctypes.c_void_p(a.ctypes.data) for a in pointers + results),
                ctypes.c_longlong(int(numpy.prod(shape))), ctypes.c_int(_thread_order()))
            for o, r in zip(outputs, results):
                if r is not o:
                    o[...] = r
        _launch(launch)
        if self.no_return:
            return None
        return out_args[0] if len(out_args) == 1 and not self.return_tuple else tuple(out_args)


class ReductionKernel(_Kernel):
    """CuPy's ReductionKernel: map each element, combine the mapped values over ``axis``, post-map the total."""

    def __init__(self, in_params, out_params, map_expr, reduce_expr, post_map_expr, identity, name="reduce_kernel",
                 reduce_type=None, reduce_dims=True, preamble="", options=()):
        super().__init__(in_params, out_params, name, preamble)
        if len(self.out_params) != 1:
            raise ValueError("the stand-in's ReductionKernel takes one output")
        self.map_expr, self.reduce_expr, self.post_map_expr = map_expr, reduce_expr, post_map_expr
        self.identity, self.reduce_type = identity, reduce_type

    def _source(self, arrays):
        (out,) = self.out_params
        arguments, scalars, elements = [], [], []
        for index, p in enumerate(self.in_params):
            arguments.append(f"const {p.c_type}* {p.name}_")
            if index in arrays:
                elements.append(f"const {p.c_type} {p.name} = {p.name}_[_o * _reduced + _r];")
            else:
                scalars.append(f"const {p.c_type} {p.name} = {p.name}_[0];")
        return (f"typedef {self.reduce_type or out.c_type} _type_reduce;\n"
                + f'extern "C" void run({", ".join(arguments)}, {out.c_type}* {out.name}_, long long _outputs, '
                + "long long _reduced) {\n  " + " ".join(scalars) + "\n"
                + "  for (long long _o = 0; _o < _outputs; ++_o) {\n"
                + f"    _type_reduce _acc = _type_reduce({self.identity});\n"
                + "    for (long long _r = 0; _r < _reduced; ++_r) {\n      " + " ".join(elements)
                + f"\n      _type_reduce a = _acc, b = static_cast<_type_reduce>({self.map_expr});\n"
                + f"      _acc = ({self.reduce_expr});\n    }}\n"
                + f"    _type_reduce a = _acc; {out.c_type}& {out.name} = {out.name}_[_o];\n"
                + f"    {self.post_map_expr};\n  }}\n}}\n")

    def __call__(self, *args, axis=None, keepdims=False, stream=None):
        in_args, out_args, in_types, (out_type,), placeholders = _kernel_arguments(self, args)
        arrays = [index for index, a in enumerate(in_args) if isinstance(a, ndarray)]
        if not arrays:
            raise ValueError("Loop size is undecided.")
        shape = numpy.broadcast_shapes(*(in_args[index].shape for index in arrays))
        axes = tuple(range(len(shape))) if axis is None else tuple(
            a % len(shape) for a in ((axis,) if numpy.isscalar(axis) else axis))
        kept = [a for a in range(len(shape)) if a not in axes]
        out_shape = tuple(1 if a in axes else shape[a] for a in range(len(shape))) if keepdims else tuple(
            shape[a] for a in kept)
        if out_args is None:
            result = ndarray(out_shape, out_type)
        else:
            (result,) = out_args
            if result.shape != out_shape:
                raise ValueError(f"Out shape is mismatched: {result.shape} while {out_shape} is expected.")
        outputs = int(numpy.prod([shape[a] for a in kept]))
        reduced = int(numpy.prod([shape[a] for a in axes]))
        run = self._library(placeholders, arrays)
        inputs = [(index, _note(a)._array if isinstance(a, ndarray) else _scalar(a, dtype))
                  for index, (a, dtype) in enumerate(zip(in_args, in_types))]
        target = _note(result)._array

        def launch():
            pointers = []
            for index, a in inputs:
                if index in arrays:   # kept axes first, reduced axes last: row o holds output o's elements
                    a = numpy.ascontiguousarray(numpy.broadcast_to(a, shape).transpose(kept + list(axes)))
                pointers.append(a)
            total = numpy.empty(outputs, target.dtype)
            run(*(ctypes.c_void_p(a.ctypes.data) for a in pointers + [total]),
                ctypes.c_longlong(outputs), ctypes.c_longlong(reduced))
            target[...] = total.reshape(target.shape)
        _launch(launch)
        return result


# A GPU runs a kernel's threads in no set order. Here they run one after another, first to last at one launch
# and last to first at the next, so that a kernel whose threads read what others write gives the reference's
# result in one of the two orders at most.
_launches = 0


def _thread_order():
    """1 (last to first) at every other launch, 0 (first to last) at the others."""
    global _launches
    _launches += 1
    return _launches % 2


# A raw kernel's scalar argument must be as wide as its parameter: a GPU reads the bytes it is given.
RAW_TYPES = {"float": "float32", "double": "float64", "int": "int32", "unsigned int": "uint32",
             "long long": "int64", "unsigned long long": "uint64", "size_t": "uint64", "bool": "bool"}


class _RawFunction:
    def __init__(self, module, name):
        signature = re.search(r'extern\s+"C"\s+__global__\s+void\s+' + name + r"\s*\(([^)]*)\)", module.code)
        if signature is None:
            raise RuntimeError(f"named symbol not found: {name}")
        self.name, self.parameters, names = name, [], []
        for text in signature.group(1).split(","):   # e.g. "const unsigned long long* table", "T eps"
            *c_type, variable = [word for word in text.replace("*", " * ").split() if word != "const"]
            element = " ".join(word for word in c_type if word != "*")
            self.parameters.append(("*" in c_type, RAW_TYPES[module.defines.get(element, element)]))
            names.append(variable)
        # the launcher's own names start with an underscore, so that none hides one of the kernel's parameters
        launcher = (f'extern "C" void launch_{name}(unsigned int _grid, unsigned int _block, int _reverse, '
                    f'{signature.group(1)}) {{\n'
                    "  gridDim.x = _grid; blockDim.x = _block;\n"
                    "  unsigned long long _threads = (unsigned long long)_grid * _block;\n"
                    "  for (unsigned long long _k = 0; _k < _threads; ++_k) {\n"
                    "    unsigned long long _thread = _reverse ? _threads - 1 - _k : _k;\n"
                    "    blockIdx.x = _thread / _block; threadIdx.x = _thread % _block;\n"
                    f"    {name}({', '.join(names)});\n  }}\n}}\n")
        self.launcher = _compile(HOST_HEADER + "struct dim3_ { unsigned int x = 0, y = 0, z = 0; };\n"
                                 "static dim3_ blockIdx, threadIdx, blockDim, gridDim;\n" + module.code + launcher,
                                 name)[f"launch_{name}"]

    def __call__(self, grid, block, args, shared_mem=0, stream=None):
        if len(args) != len(self.parameters):
            raise TypeError(f"{self.name} takes {len(self.parameters)} arguments, got {len(args)}")
        values = []
        for index, ((pointer, dtype), arg) in enumerate(zip(self.parameters, args)):
            if pointer:
                if not isinstance(arg, ndarray):
                    raise TypeError(f"argument {index} of {self.name} is a pointer: pass a CuPy array, not {type(arg)}")
                if arg.dtype != numpy.dtype(dtype):
                    raise TypeError(f"argument {index} of {self.name} points to {dtype}, got a {arg.dtype} array")
                values.append(ctypes.c_void_p(arg.data.ptr))
            else:
                given = arg.dtype if isinstance(arg, numpy.generic) else {
                    bool: numpy.dtype(bool), int: numpy.dtype(numpy.int64), float: numpy.dtype(numpy.float64)}[type(arg)]
                if given != numpy.dtype(dtype):
                    raise TypeError(f"argument {index} of {self.name} is a {dtype}, got a {given} "
                                    "(on a GPU the kernel would read the wrong bytes)")
                values.append(numpy.ctypeslib.as_ctypes_type(given)(arg.item() if isinstance(arg, numpy.generic)
                                                                    else arg))
        grid, block = (grid,) if numpy.isscalar(grid) else grid, (block,) if numpy.isscalar(block) else block
        size = (ctypes.c_uint(int(grid[0])), ctypes.c_uint(int(block[0])))
        _launch(lambda: self.launcher(*size, ctypes.c_int(_thread_order()), *values))


class RawModule:
    def __init__(self, code=None, path=None, options=(), backend="nvrtc", **kwargs):
        self.code = code
        self.defines = dict(re.findall(r"#define\s+(\w+)\s+([\w ]+?)\s*$", code, re.MULTILINE))
        self.functions = {}

    def get_function(self, name):
        if name not in self.functions:
            self.functions[name] = _RawFunction(self, name)
        return self.functions[name]


# ---------------------------------------------------------------------------------------------
# cupy.cuda: devices, streams, events, graphs, memory
# ---------------------------------------------------------------------------------------------

class _Stream:
    null = None

    def __init__(self, null=False, non_blocking=False, ptr=0):
        self.ptr = 0 if null else id(self)
        self._previous = []

    def __enter__(self):
        self._previous.append(cuda._current)
        cuda._current = self
        return self

    def __exit__(self, *error):
        cuda._current = self._previous.pop()

    def use(self):
        cuda._current = self
        return self

    def synchronize(self):
        _refuse_during_capture("synchronising a stream")
        _wait_for_stream(self)

    def is_capturing(self):
        return _capture is not None and _capture.stream is self

    def begin_capture(self, mode=None):
        global _capture
        if self.ptr == 0:
            raise StreamCaptureUnsupported("the default stream cannot be captured")
        if _capture is not None:
            raise StreamCaptureUnsupported("a stream is already being captured")
        _capture = _Capture(self)

    def end_capture(self):
        global _capture
        if _capture is None or _capture.stream is not self:
            raise RuntimeError("this stream is not being captured")
        capture, _capture = _capture, None
        capture.finish()
        return _Graph(capture.operations, capture.used.values())


class _Graph:
    """A recorded stream: its operations, and the blocks of memory they use, which must outlive the graph."""

    def __init__(self, operations, used):
        self.operations, self.used = operations, list(used)

    def launch(self, stream=None):
        _refuse_during_capture("launching a graph")
        _check_copies_in_flight()
        if any(block() is None for block in self.used):
            raise RuntimeError("a replay would use memory that has gone back to CuPy's pool, where another array "
                               "may have it now: hold what a captured step allocates, and what it uses that was "
                               "made before, as long as the graph lives")
        for operation in self.operations:
            operation()

    def upload(self, stream=None):
        pass


class _Event:
    """A point in a stream's work: waiting for it waits for the copies issued on the stream before it."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.before = []

    def record(self, stream=None):
        stream = stream or cuda._current
        self.before = [copy for copy in _in_flight if copy.stream is stream]

    def synchronize(self):
        _refuse_during_capture("waiting for an event")
        _wait_for(self.before)

    @property
    def done(self):   # the device may finish at any moment: asked, it has
        _wait_for(self.before)
        return True


class _Device:
    def __init__(self, device=0):
        self.id = int(device)
        self.compute_capability = "90"

    def synchronize(self):
        _synchronise_device()

    def use(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *error):
        pass


class _MemoryPool:
    def used_bytes(self):
        return sum(buffer.nbytes for buffer in _live_buffers())

    def total_bytes(self):
        return self.used_bytes() + sum(buffer.nbytes for buffers in _free.values() for buffer in buffers)

    def free_all_blocks(self, stream=None):
        pass

    def n_free_blocks(self):
        return 0


_pool = _MemoryPool()


def _synchronise_device():
    _refuse_during_capture("synchronising the device")
    _wait_for(_in_flight)


def get_default_memory_pool():
    return _pool


def _get_device_properties(device):
    return {"name": b"CuPy stand-in on the CPU", "totalGlobalMem": 16 * 2**30, "multiProcessorCount": 1,
            "major": 9, "minor": 0, "warpSize": 32}


_cublas = None


def _get_cublas_handle():
    """Loads the stand-in's libcublas, as CuPy loads cuBLAS with its first handle."""
    global _cublas
    if _cublas is None:
        _cublas = _HostCublas()
    return 1


def _cublas_binding():
    """The path of the library that stands for CuPy's cuBLAS binding (cupy_backends.cuda.libs.cublas)."""
    _get_cublas_handle()
    return _cublas.binding


@contextlib.contextmanager
def _using_allocator(allocator=None):
    previous, cuda._allocator = cuda._allocator, allocator
    try:
        yield
    finally:
        cuda._allocator = previous


cuda = types.SimpleNamespace(
    Device=_Device, Stream=_Stream, Event=_Event, Graph=_Graph, get_current_stream=lambda: cuda._current,
    runtime=types.SimpleNamespace(getDeviceCount=lambda: 1, getDevice=lambda: 0,
                                  getDeviceProperties=_get_device_properties,
                                  deviceSynchronize=_synchronise_device),
    device=types.SimpleNamespace(get_cublas_handle=_get_cublas_handle),
    alloc_pinned_memory=_PinnedMemory, using_allocator=_using_allocator,
    get_allocator=lambda: cuda._allocator or _Block, _allocator=None, _current=None,
    MemoryPointer=_Pointer)
cuda._current = _Stream(null=True)
cuda.Stream.null = cuda._current


# ---------------------------------------------------------------------------------------------
# cuBLAS, as a shared library that hands every call to Python
# ---------------------------------------------------------------------------------------------

CUBLAS_SOURCE = r"""
#include <stddef.h>
typedef int (*sgemm_t)(int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
typedef int (*dgemm_t)(int, int, int, int, int, double, const double*, int, const double*, int, double, double*, int);
static sgemm_t sgemm_ = 0;
static dgemm_t dgemm_ = 0;
extern "C" {
void stand_in_register(sgemm_t s, dgemm_t d) { sgemm_ = s; dgemm_ = d; }
int cublasSetStream_v2(void* handle, void* stream) { return handle ? 0 : 1; }
int cublasSetWorkspace_v2(void* handle, void* workspace, size_t bytes) { return handle && workspace ? 0 : 1; }
int cublasSetPointerMode_v2(void* handle, int mode) { return handle && mode == 0 ? 0 : 1; }
int cublasSgemm_v2(void* handle, int ta, int tb, int m, int n, int k, const float* alpha, const float* A, int lda,
                   const float* B, int ldb, const float* beta, float* C, int ldc) {
    return sgemm_(ta, tb, m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc); }
int cublasDgemm_v2(void* handle, int ta, int tb, int m, int n, int k, const double* alpha, const double* A, int lda,
                   const double* B, int ldb, const double* beta, double* C, int ldc) {
    return dgemm_(ta, tb, m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc); }
}
"""


DECOY_SOURCE = r"""
#include <stddef.h>
extern "C" {
int cublasSetStream_v2(void* handle, void* stream) { return 1; }
int cublasSetWorkspace_v2(void* handle, void* workspace, size_t bytes) { return 1; }
int cublasSetPointerMode_v2(void* handle, int mode) { return 1; }
int cublasSgemm_v2() { return 1; }
int cublasDgemm_v2() { return 1; }
}
"""

# CuPy's cuBLAS binding (cupy_backends.cuda.libs.cublas) is a library linked against libcublas: this one too.
BINDING_SOURCE = r"""
extern "C" int cublasSgemm_v2();
extern "C" void* stand_in_binding() { return (void*)&cublasSgemm_v2; }
"""


def _column_major(address, rows, columns, leading, transposed, dtype):
    """The (rows, columns) matrix op(X) that cuBLAS reads at ``address``: X column-major with leading
    dimension ``leading``, transposed first if ``transposed``."""
    item = numpy.dtype(dtype).itemsize
    stored_rows, stored_columns = (columns, rows) if transposed else (rows, columns)
    extent = (stored_columns - 1) * leading + stored_rows if stored_rows and stored_columns else 0
    memory = numpy.ctypeslib.as_array((numpy.ctypeslib.as_ctypes_type(dtype) * max(extent, 1)).from_address(address))
    stored = numpy.lib.stride_tricks.as_strided(memory, (stored_rows, stored_columns), (item, leading * item))
    return stored.T if transposed else stored


class _HostCublas:
    """The stand-in's libcublas.so.12, a binding linked against it as CuPy's is, and a decoy.

    The decoy is a second libcublas, of another CUDA (libcublas.so.11), every
    call of which fails: it stands for the cuBLAS that PyTorch brings into a
    process beside CuPy's, built for another CUDA than CuPy's, so that a
    caller who takes whichever libcublas is loaded, and not CuPy's, fails.
    """

    def __init__(self):
        digest = hashlib.sha256((CUBLAS_SOURCE + DECOY_SOURCE + BINDING_SOURCE).encode()).hexdigest()[:20]
        directory = CACHE / f"cublas-{digest}"
        name = "libcublas.so.12"   # what kernels/cublas.py looks for among a process's libraries
        self.library = ctypes.CDLL(str(_build(CUBLAS_SOURCE, directory / name, [f"-Wl,-soname,{name}"])))
        self.binding = _build(BINDING_SOURCE, directory / "cublas_binding.so",
                              [f"-L{directory}", f"-l:{name}", f"-Wl,-rpath,{directory}", "-Wl,--no-as-needed"])
        decoy = "libcublas.so.11"   # loaded last, it comes first among the process's libraries (mapped lower)
        self.decoy = ctypes.CDLL(str(_build(DECOY_SOURCE, directory / "decoy" / decoy, [f"-Wl,-soname,{decoy}"])))
        callbacks = []
        for real, dtype in ((ctypes.c_float, numpy.float32), (ctypes.c_double, numpy.float64)):
            prototype = ctypes.CFUNCTYPE(ctypes.c_int, *[ctypes.c_int] * 5, real, ctypes.c_void_p, ctypes.c_int,
                                         ctypes.c_void_p, ctypes.c_int, real, ctypes.c_void_p, ctypes.c_int)
            callbacks.append(prototype(self._gemm(dtype)))
        self.callbacks = callbacks   # held: the library calls them
        self.library.stand_in_register(*callbacks)

    @staticmethod
    def _gemm(dtype):
        def gemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
            def run():
                A = _column_major(a, m, k, lda, transa, dtype)
                B = _column_major(b, k, n, ldb, transb, dtype)
                C = _column_major(c, m, n, ldc, False, dtype)
                C[...] = alpha * (A @ B) + (beta * C if beta != 0 else 0)
            try:
                _launch(run)
            except Exception as error:   # an exception cannot cross the C library: report it as a status
                print(f"stand-in cuBLAS: {error!r}", file=sys.stderr)
                return 13   # CUBLAS_STATUS_EXECUTION_FAILED
            return 0
        return gemm


# ---------------------------------------------------------------------------------------------
# cupy.random: a generator whose state is device memory
# ---------------------------------------------------------------------------------------------

class Generator:
    """CuPy's Generator API over NumPy's PCG64; its state is captured and restored with device memory."""

    def __init__(self, bit_generator):
        self._generator = numpy.random.Generator(bit_generator)
        _generators.add(self)

    def _state(self):
        return self._generator.bit_generator.state

    def _restore(self, state):
        self._generator.bit_generator.state = state

    def _draw(self, draw, dtype, out=None):
        dtype = numpy.dtype(dtype)
        if out is not None:
            target = out._array

            def run():
                target[...] = draw()
            _launch(run)
            return out
        return _operation(lambda: draw().astype(dtype, copy=False))

    def standard_normal(self, size=None, dtype=numpy.float64, out=None):
        return self._draw(lambda: self._generator.standard_normal(size, dtype=dtype), dtype, out)

    def random(self, size=None, dtype=numpy.float64, out=None):
        return self._draw(lambda: self._generator.random(size, dtype=dtype), dtype, out)

    # CuPy's uniform and poisson copy their parameters to the device with cupy.asarray first (integers passes
    # its bounds as kernel arguments): not something a capture can record.
    def uniform(self, low=0.0, high=1.0, size=None, dtype=numpy.float64):
        _refuse_during_capture("a copy from the host (cupy.random's uniform copies low and high)")
        return self._draw(lambda: self._generator.uniform(low, high, size), dtype)

    def integers(self, low, high=None, size=None, dtype=numpy.int64, endpoint=False):
        return self._draw(lambda: self._generator.integers(low, high, size, dtype, endpoint), dtype)

    def poisson(self, lam=1.0, size=None):
        _refuse_during_capture("a copy from the host (cupy.random's poisson copies lam)")
        return self._draw(lambda: self._generator.poisson(lam, size), numpy.int64)


def _default_rng(seed=None):
    return Generator(numpy.random.PCG64(seed))


random = types.SimpleNamespace(default_rng=_default_rng, Generator=Generator)
