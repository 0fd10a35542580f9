"""The part of CuPy's cupy_backends that tinygan touches: the cuBLAS binding (see cuda/libs/cublas.py)."""
