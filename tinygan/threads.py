"""Make the two CPU thread pools take turns instead of fighting over the cores, in tinygan's own programs.

The CPU backend runs two pools: OpenBLAS's (NumPy's matrix products) and the
OpenMP pool behind the parallel Numba kernels. By default each pool's idle
threads spin for a while after their work is done, hoping for more. On a
2-core machine a spinning OpenMP thread steals a core from the next matrix
product, and a spinning OpenBLAS thread from the next Numba kernel: a DCGAN
step measured about 25% slower that way. Letting idle threads sleep at once
removes that. Both libraries read these variables when they load, so this
module runs before tinygan imports NumPy.

It sets them only in tinygan's own programs (`python -m tinygan`, the
`tinygan` command, `python -m benchmarks`), and never over a value the user
set. A library must not change its user's process: a script that imports
tinygan keeps its environment (and a PyTorch beside it keeps its own thread
behaviour). Such a script gets the same speed by starting with
    OMP_WAIT_POLICY=PASSIVE OPENBLAS_THREAD_TIMEOUT=4 python script.py
"""
import os
import sys
from pathlib import Path

SETTINGS = {
    "OMP_WAIT_POLICY": "PASSIVE",        # OpenMP (Numba's threading layer): sleep when idle
    "OPENBLAS_THREAD_TIMEOUT": "4",      # OpenBLAS: spin at most 2^4 cycles before sleeping
}
# The pools' sizes: every library reads its own variable.
POOL_SIZES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
PROGRAMS = ("tinygan", "benchmarks")   # not benchmarks.torch_worker: PyTorch's reference runs with its defaults


def started_as_program(argv) -> bool:
    """True for `python [flags] -m tinygan|benchmarks ...` and for the `tinygan` console script."""
    if "-m" in argv[1:]:
        position = argv.index("-m", 1)
        return position + 1 < len(argv) and argv[position + 1] in PROGRAMS
    if "-c" in argv[1:]:
        return False
    script = next((word for word in argv[1:] if not word.startswith("-")), "")
    return Path(script).name in PROGRAMS


applied = {}
if started_as_program(getattr(sys, "orig_argv", sys.argv)):
    for key, value in SETTINGS.items():
        if key not in os.environ:
            os.environ[key] = applied[key] = value


def share_of_cores(processes, environment=None) -> dict:
    """The environment for one of ``processes`` programs run at once: each pool sized to its share of the
    cores (at least 1), where the user has not sized it. Unsized, every process starts a pool per core
    and the pools of all of them fight for the same cores: two MLP trainings at once on 2 cores ran an
    epoch 10 to 20 times slower than one alone."""
    environment = dict(os.environ if environment is None else environment)
    share = str(max(1, (os.cpu_count() or 1) // processes))
    for key in POOL_SIZES:
        environment.setdefault(key, share)
    return environment
