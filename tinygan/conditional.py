"""Conditional networks: a generator told which digit to draw, a discriminator told which digit it judges.

Mirza and Osindero's conditional GAN (2014): both networks see the class.
Here it enters each network at its first layer with parameters, as a one-hot
code of the CLASSES classes:

* before a Dense layer it is appended to the features: G's input becomes
  [z, onehot(y)], the MLP discriminator's [flattened image, onehot(y)];
* before a Conv2D it is appended as CLASSES constant image planes, the plane
  of class y all ones: the DCGAN discriminator's input becomes 1 + 10 channels.

Concatenation, not a projection discriminator (Miyato and Koyama, 2018): with
ten classes the extra weights are few (10 x 5 x 5 per filter of D's first
convolution), it is one line in either network, and it gives the first
layer's weights a class-specific part a student can look at. A projection
discriminator scales better to many classes, which MNIST does not need.

``Conditioned`` is a Sequential that holds the labels of the batch it is
about to see (``condition(labels)``), so every place that runs a network
forward and backward works unchanged.
"""
from __future__ import annotations

from .backend import get_array_module
from .layers import Conv2D, Dense
from .sequential import Sequential

CLASSES = 10


class Conditioned(Sequential):
    def __init__(self, layers, classes=CLASSES):
        super().__init__(layers)
        self.classes = classes
        self.entry = next(index for index, layer in enumerate(self.layers) if layer.params)
        self.labels = None

    def condition(self, labels):
        """The classes of the next forward pass's examples, integers (N,); returns self."""
        self.labels = labels
        return self

    def _with_code(self, x):
        if self.labels is None or len(self.labels) != len(x):
            raise ValueError(f"a conditional network needs the labels of its {len(x)} inputs: call "
                             f"condition(labels) before forward")
        xp = get_array_module(x)
        onehot = xp.eye(self.classes, dtype=x.dtype)[self.labels]
        if x.ndim == 2:
            return xp.concatenate([x, onehot], axis=1)
        planes = xp.broadcast_to(onehot[:, :, None, None], (len(x), self.classes, *x.shape[2:]))
        return xp.concatenate([x, planes], axis=1)

    def forward(self, x, training=True):
        for layer in self.layers[:self.entry]:
            x = layer.forward(x, training=training)
        x = self._with_code(x)
        for layer in self.layers[self.entry:]:
            x = layer.forward(x, training=training)
        return x

    __call__ = forward

    def backward(self, dout, input_grad=True):
        """dL/d(input) without the code's part (nothing learns the labels), or None for input_grad=False."""
        for layer in reversed(self.layers[self.entry + 1:]):
            dout = layer.backward(dout)
        first = self.layers[self.entry]
        first.needs_input_grad = input_grad
        try:
            dx = first.backward(dout)
        finally:
            first.needs_input_grad = True
        if not input_grad:
            return None
        dx = dx[:, :-self.classes]   # features or channels: axis 1 either way
        for layer in reversed(self.layers[:self.entry]):
            dx = layer.backward(dx)
        return dx


def conditioned(network: Sequential, weight_init, classes=CLASSES) -> Conditioned:
    """The network with its first parametrised layer widened by ``classes`` inputs (freshly initialised)."""
    layers = list(network.layers)
    entry = next(index for index, layer in enumerate(layers) if layer.params)
    old = layers[entry]
    if isinstance(old, Dense):
        layers[entry] = Dense(old.in_features + classes, old.out_features, bias="b" in old.params,
                              weight_init=weight_init)
    elif isinstance(old, Conv2D):
        layers[entry] = Conv2D(old.in_channels + classes, old.out_channels, old.kernel_size, old.stride, old.padding,
                               bias="b" in old.params, weight_init=weight_init)
    else:
        raise ValueError(f"cannot condition a network whose first layer with parameters is {type(old).__name__}")
    return Conditioned(layers, classes)
