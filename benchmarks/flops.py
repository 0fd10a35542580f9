"""Multiply-adds of each layer, counted from its shapes (one multiply-add = 2 FLOPs).

Forward: Dense N*in*out; Conv2D N*C_out*H_out*W_out*C_in*kh*kw; ConvTranspose2D
N*C_in*H_in*W_in*C_out*kh*kw (the same product, run the other way). Backward
computes two products of the same size (input gradient and weight gradient),
so a forward-and-backward pass costs three forward passes. Elementwise layers
are not counted: they are memory-bound, not arithmetic-bound.
"""
from tinygan import layers


def multiply_adds(layer, input_shape, output_shape):
    N = input_shape[0]
    if isinstance(layer, layers.Dense):
        return N * layer.in_features * layer.out_features
    kh, kw = getattr(layer, "kernel_size", (0, 0))
    if isinstance(layer, layers.Conv2D):
        return N * layer.out_channels * output_shape[2] * output_shape[3] * layer.in_channels * kh * kw
    if isinstance(layer, layers.ConvTranspose2D):
        return N * layer.in_channels * input_shape[2] * input_shape[3] * layer.out_channels * kh * kw
    return 0


def model_multiply_adds(model, shapes):
    """Forward multiply-adds of a Sequential, given the (input, output) shape of each layer."""
    return sum(multiply_adds(layer, *shape) for layer, shape in zip(model, shapes))


def first_layer_multiply_adds(model, shapes):
    """Forward multiply-adds of the first layer with parameters: the size of the input-gradient
    product that Sequential.backward(..., input_grad=False) skips."""
    return next((multiply_adds(layer, *shape) for layer, shape in zip(model, shapes) if layer.params), 0)


def train_step_multiply_adds(generator, discriminator):
    """GAN.train_step with d_steps=1, counting the products it runs. Each argument is a network's
    (forward, first layer) multiply-adds; every backward product is the size of its forward one.

    D: three forwards (real, fake, G step); weight gradients twice (the D step; in the G step D
    has requires_grad off); input gradients three times, less the first layer's in the D step's
    two (the images). G: one forward, one weight gradient, one input gradient less the first
    layer's (the noise).
    """
    (generator_forward, generator_first), (discriminator_forward, discriminator_first) = generator, discriminator
    return (3 * generator_forward - generator_first) + (8 * discriminator_forward - 2 * discriminator_first)
