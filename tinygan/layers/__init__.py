"""The layers, one file each. Every layer keeps the contract in layer.py."""
from .activations import LeakyReLU, ReLU, Sigmoid, Tanh
from .batchnorm import BatchNorm
from .conv2d import Conv2D
from .conv_transpose2d import ConvTranspose2D
from .dense import Dense
from .dropout import Dropout
from .layer import Layer
from .reshape import Flatten, Reshape
from .upsample import UpSample2D

__all__ = ["Layer", "Dense", "Conv2D", "ConvTranspose2D", "BatchNorm", "LeakyReLU", "ReLU", "Tanh",
           "Sigmoid", "Dropout", "Flatten", "Reshape", "UpSample2D"]
