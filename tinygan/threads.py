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
