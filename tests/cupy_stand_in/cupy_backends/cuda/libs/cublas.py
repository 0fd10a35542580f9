"""Stands for CuPy's compiled cuBLAS binding, a library linked against the libcublas CuPy calls.

kernels/cublas.py looks cuBLAS's functions up through the library that this
module's ``__file__`` names; here that is a small library the stand-in links
against its own libcublas, so that ``__file__`` is set to it.
"""
import cupy

__file__ = str(cupy._cublas_binding())
