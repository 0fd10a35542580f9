"""Weight initialisers.

Each initialiser is called as ``init(shape, fan_in, fan_out)`` and returns an
array of the default dtype on the current device. Draws come from the CPU
generator and are then moved, so a seed gives the same weights on CPU and GPU.
"""
import math

from . import backend


def _from_cpu(values):
    return backend.to_device(values.astype(backend.get_default_dtype()))


def dcgan_normal(shape, fan_in=None, fan_out=None, std=0.02):
    """normal(0, std): the DCGAN paper's initialisation (std 0.02), blind to the fans."""
    return _from_cpu(backend.numpy_rng().normal(0.0, std, size=shape))


def glorot_uniform(shape, fan_in, fan_out):
    """uniform(-a, a) with a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010).

    Keeps the variance of activations and of gradients about equal across a
    linear layer: Var(W) = a^2 / 3 = 2 / (fan_in + fan_out).
    """
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return _from_cpu(backend.numpy_rng().uniform(-limit, limit, size=shape))


def zeros(shape):
    return backend.xp().zeros(shape, dtype=backend.get_default_dtype())


def ones(shape):
    return backend.xp().ones(shape, dtype=backend.get_default_dtype())
