"""The architectures of the reports, built from tinygan's layers.

Each builder returns (generator, discriminator). The generator maps noise
(N, z_dim) to images (N, 1, 28, 28) in [-1, 1] (tanh); the discriminator maps
images to one logit each (N, 1); the sigmoid lives in the loss.

Weights: ``init='normal'`` draws them from normal(0, 0.02), as in the DCGAN
paper; ``init='glorot'`` from Glorot uniform. By default the DCGANs use the
former and the MLPs the latter: an MLP without BatchNorm starts with almost no
signal under std 0.02 (each layer scales it by about 0.02 sqrt(fan_in)), and
on full MNIST the mlp run collapsed to a single stroke within three epochs
(D loss 0.04), where Glorot's init gave varied digits.

``depth`` adds hidden layers: for the MLPs, extra 1024-unit layers at the wide
end of each network; for the DCGANs, extra stride-1 convolution blocks at the
7x7 resolution of both networks. ``kernel_size`` (odd) sets
every convolution kernel of the DCGANs, with 'same' padding k // 2.
"""
from .init import dcgan_normal, glorot_uniform
from .layers import (BatchNorm, Conv2D, ConvTranspose2D, Dense, Dropout, Flatten, LeakyReLU, Reshape, Tanh,
                     UpSample2D)
from .sequential import Sequential

ARCHITECTURES = ("mlp", "mlp-deep", "dcgan", "dcgan-upsample")
IMAGE_SHAPE = (1, 28, 28)
SLOPE = 0.2          # LeakyReLU's negative slope, throughout
DROPOUT = 0.3        # in the discriminators
INITS = {"normal": dcgan_normal, "glorot": glorot_uniform}


def default_init(arch: str) -> str:
    return "glorot" if arch.startswith("mlp") else "normal"


def default_depth(arch: str) -> int:
    return 2 if arch == "mlp-deep" else 0


def first_layer_bytes(arch: str, z_dim: int) -> int:
    """Bytes of the generator's first Dense layer in training: float32 weights, gradients and Adam's m and v."""
    width = 128 if arch.startswith("mlp") else 7 * 7 * 256
    return z_dim * width * 4 * 4


def build(arch: str, z_dim: int = 100, kernel_size: int = 5, depth: int | None = None, init: str | None = None):
    """(generator, discriminator) for one of ARCHITECTURES."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}: choose one of {', '.join(ARCHITECTURES)}")
    depth = default_depth(arch) if depth is None else depth
    if depth < 0:
        raise ValueError(f"depth must be 0 or more, got {depth}")
    init = default_init(arch) if init is None else init
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INITS)}")
    weight_init = INITS[init]
    if arch.startswith("mlp"):
        return mlp(z_dim, depth, weight_init)
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel size must be odd (3, 5, 7, ...) so that 'same' padding exists, got {kernel_size}")
    generator = dcgan_upsample_generator if arch == "dcgan-upsample" else dcgan_generator
    return generator(z_dim, kernel_size, depth, weight_init), dcgan_discriminator(kernel_size, depth, weight_init)


def mlp(z_dim: int, depth: int, weight_init):
    """The vanilla GAN: G 100 -> 128 -> 256 -> 512 -> 784, D 784 -> 512 -> 256 -> 128 -> 1."""
    pixels = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2]
    generator_widths = [z_dim, 128, 256, 512] + [1024] * depth
    generator = []
    for fan_in, fan_out in zip(generator_widths, generator_widths[1:]):
        generator += [Dense(fan_in, fan_out, weight_init=weight_init), LeakyReLU(SLOPE)]
    generator += [Dense(generator_widths[-1], pixels, weight_init=weight_init), Tanh(), Reshape(IMAGE_SHAPE)]

    discriminator_widths = [pixels] + [1024] * depth + [512, 256, 128]
    discriminator = [Flatten()]
    for fan_in, fan_out in zip(discriminator_widths, discriminator_widths[1:]):
        discriminator += [Dense(fan_in, fan_out, weight_init=weight_init), LeakyReLU(SLOPE), Dropout(DROPOUT)]
    discriminator += [Dense(discriminator_widths[-1], 1, weight_init=weight_init)]
    return Sequential(generator), Sequential(discriminator)


def _generator_stem(z_dim: int, kernel_size: int, depth: int, weight_init):
    """Dense to 7x7x256, then 256 -> 128 channels at 7x7 (plus `depth` more 128 -> 128 blocks)."""
    padding = kernel_size // 2
    layers = [Dense(z_dim, 7 * 7 * 256, bias=False, weight_init=weight_init), BatchNorm(7 * 7 * 256),
              LeakyReLU(SLOPE), Reshape((256, 7, 7))]
    for in_channels in [256] + [128] * depth:
        layers += [ConvTranspose2D(in_channels, 128, kernel_size, stride=1, padding=padding, bias=False,
                                   weight_init=weight_init), BatchNorm(128), LeakyReLU(SLOPE)]
    return layers


def dcgan_generator(z_dim: int, kernel_size: int, depth: int, weight_init):
    """The standard MNIST DCGAN generator: 7x7 -> 14x14 -> 28x28 by stride-2 transposed convolutions."""
    padding = kernel_size // 2
    # output_padding 1 makes each stride-2 layer exactly double the size: (7 - 1) 2 - 2p + k + 1 = 14.
    return Sequential(_generator_stem(z_dim, kernel_size, depth, weight_init) + [
        ConvTranspose2D(128, 64, kernel_size, stride=2, padding=padding, output_padding=1, bias=False,
                        weight_init=weight_init), BatchNorm(64), LeakyReLU(SLOPE),
        ConvTranspose2D(64, 1, kernel_size, stride=2, padding=padding, output_padding=1, bias=False,
                        weight_init=weight_init), Tanh()])


def dcgan_upsample_generator(z_dim: int, kernel_size: int, depth: int, weight_init):
    """The same generator with nearest-neighbour upsampling + convolution instead of strided transposes
    (avoids the checkerboard artefacts that uneven kernel overlap can cause)."""
    padding = kernel_size // 2
    return Sequential(_generator_stem(z_dim, kernel_size, depth, weight_init) + [
        UpSample2D(2), Conv2D(128, 64, kernel_size, padding=padding, bias=False, weight_init=weight_init),
        BatchNorm(64), LeakyReLU(SLOPE),
        UpSample2D(2), Conv2D(64, 1, kernel_size, padding=padding, bias=False, weight_init=weight_init), Tanh()])


def dcgan_discriminator(kernel_size: int, depth: int, weight_init):
    """Conv 1 -> 64 (28 -> 14), Conv 64 -> 128 (14 -> 7), `depth` more 128 -> 128 at 7x7, Dense 6272 -> 1."""
    padding = kernel_size // 2
    layers = [Conv2D(1, 64, kernel_size, stride=2, padding=padding, weight_init=weight_init),
              LeakyReLU(SLOPE), Dropout(DROPOUT),
              Conv2D(64, 128, kernel_size, stride=2, padding=padding, weight_init=weight_init),
              BatchNorm(128), LeakyReLU(SLOPE), Dropout(DROPOUT)]
    for _ in range(depth):
        layers += [Conv2D(128, 128, kernel_size, stride=1, padding=padding, weight_init=weight_init),
                   BatchNorm(128), LeakyReLU(SLOPE), Dropout(DROPOUT)]
    return Sequential(layers + [Flatten(), Dense(128 * 7 * 7, 1, weight_init=weight_init)])
