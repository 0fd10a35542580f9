"""Make the two CPU thread pools take turns instead of fighting over the cores.

The CPU backend runs two pools: OpenBLAS's (NumPy's matrix products) and the
OpenMP pool behind the parallel Numba kernels. By default each pool's idle
threads spin for a while after their work is done, hoping for more. On a
2-core machine a spinning OpenMP thread steals a core from the next matrix
product, and a spinning OpenBLAS thread from the next Numba kernel: a DCGAN
step measured about 25% slower that way. Letting idle threads sleep at once
removes that. Both libraries read these variables when they load, so this
module runs before tinygan imports NumPy; a value set by the user is kept. A
script that imports NumPy before tinygan keeps OpenBLAS's default: export
OPENBLAS_THREAD_TIMEOUT=4 to get the same effect there.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")      # OpenMP (Numba's threading layer): sleep when idle
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")    # OpenBLAS: spin at most 2^4 cycles before sleeping
