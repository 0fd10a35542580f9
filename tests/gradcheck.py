"""The tests check gradients with the public checker, tinygan/gradcheck.py (its docstring has the method)."""
from tinygan.gradcheck import (EPS, RELATIVE_TOLERANCE, ROUNDING, GradientCheckError,  # noqa: F401
                               check_layer_gradients, relative_error)
