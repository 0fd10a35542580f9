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


def train_step_multiply_adds(generator_forward, discriminator_forward):
    """GAN.train_step with d_steps=1: D forward+backward on the real, the fake, and in the G step
    (3 x 3 D), G forward once and backward once (1 + 2 G)."""
    return 9 * discriminator_forward + 3 * generator_forward
