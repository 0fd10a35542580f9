"""tinygan: a from-scratch GAN engine with hand-written backward passes."""
__version__ = "0.1.0"

from . import threads  # noqa: F401  (first: in tinygan's own programs it sets how idle threads wait, before NumPy loads)
from . import backend, init, kernels
from .layers import (BatchNorm, Conv2D, ConvTranspose2D, Dense, Dropout, Flatten, LeakyReLU, ReLU, Reshape,
                     Sigmoid, Tanh, UpSample2D)
from .losses import BCEWithLogits, SoftmaxCrossEntropy
from .optimizers import SGD, Adam
from .sequential import Sequential

__all__ = ["backend", "init", "kernels", "Dense", "Conv2D", "ConvTranspose2D", "BatchNorm", "LeakyReLU", "ReLU",
           "Tanh", "Sigmoid", "Dropout", "Flatten", "Reshape", "UpSample2D", "Sequential", "BCEWithLogits",
           "SoftmaxCrossEntropy", "Adam", "SGD"]
