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

The reports' own networks, where they differ from the common ones above (the
reports' Keras models, so Glorot uniform weights, Keras's default):

* ``mlp-001`` (report 001): G 100 -> 256 -> 512 -> 1024 -> 784 with LeakyReLU
  0.3, D 784 -> 1024 -> 512 -> 256 -> 1 with LeakyReLU 0.2 and Dropout 0.3,
  batch 128, pixels in [0, 1]; ``mlp-001-deep`` has two more 1024-unit layers
  in each network.
* ``dcgan-004`` (report 004): D with two stride-2 convolutions of 32 and 64
  filters; G from a dense layer to 7x7x128 and two stride-2 transposed
  convolutions; LeakyReLU 0.3 throughout. ``dcgan-004-upsample``: the same G
  with nearest-neighbour upsampling + convolution.

``output``: the generator's last activation, tanh for pixels in [-1, 1] and
sigmoid for [0, 1] (``default_output``); either can be asked for, to test
what happens when G's range and the data's differ.
"""
from .conditional import conditioned
from .init import dcgan_normal, glorot_uniform
from .layers import (BatchNorm, Conv2D, ConvTranspose2D, Dense, Dropout, Flatten, LeakyReLU, Reshape, Sigmoid,
                     Tanh, UpSample2D)
from .sequential import Sequential

ARCHITECTURES = ("mlp", "mlp-deep", "dcgan", "dcgan-upsample", "mlp-001", "mlp-001-deep", "dcgan-004",
                 "dcgan-004-upsample")
IMAGE_SHAPE = (1, 28, 28)
SLOPE = 0.2          # LeakyReLU's negative slope in the common networks
DROPOUT = 0.3        # in the discriminators
INITS = {"normal": dcgan_normal, "glorot": glorot_uniform}
OUTPUTS = {"tanh": Tanh, "sigmoid": Sigmoid}
# The training settings a report's network came with, where they differ from train's defaults.
REPORT_SETTINGS = {"mlp-001": {"batch_size": 128, "pixel_range": "0,1"},
                   "mlp-001-deep": {"batch_size": 128, "pixel_range": "0,1"}}


def default_init(arch: str) -> str:
    return "normal" if arch in ("dcgan", "dcgan-upsample") else "glorot"


def default_depth(arch: str) -> int:
    return 2 if arch.endswith("-deep") else 0


def default_output(pixel_range: str) -> str:
    """tanh for pixels in [-1, 1], sigmoid for [0, 1]: G's range is the data's."""
    return "sigmoid" if pixel_range == "0,1" else "tanh"


def first_layer_bytes(arch: str, z_dim: int) -> int:
    """Bytes of the generator's first Dense layer in training: float32 weights, gradients and Adam's m and v."""
    width = {"mlp": 128, "mlp-deep": 128, "mlp-001": 256, "mlp-001-deep": 256}.get(
        arch, 7 * 7 * (128 if arch.startswith("dcgan-004") else 256))
    return z_dim * width * 4 * 4


def build(arch: str, z_dim: int = 100, kernel_size: int = 5, depth: int | None = None, init: str | None = None,
          output: str = "tanh", generator_bn_affine: bool = True, conditional: bool = False):
    """(generator, discriminator) for one of ARCHITECTURES.

    ``generator_bn_affine=False``: G's BatchNorm layers without their scale and bias (gamma and beta),
    which report 003 (after the DCGAN paper's authors' code) found to train better.
    ``conditional``: both networks also see the class (conditional.py).
    """
    generator, discriminator = _build(arch, z_dim, kernel_size, depth, init, output)
    if not generator_bn_affine:
        generator.layers = [BatchNorm(layer.num_features, layer.momentum, layer.eps, affine=False)
                            if isinstance(layer, BatchNorm) else layer for layer in generator.layers]
    if conditional:
        weight_init = INITS[default_init(arch) if init is None else init]
        generator, discriminator = conditioned(generator, weight_init), conditioned(discriminator, weight_init)
    return generator, discriminator


def _build(arch, z_dim, kernel_size, depth, init, output):
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}: choose one of {', '.join(ARCHITECTURES)}")
    depth = default_depth(arch) if depth is None else depth
    if depth < 0:
        raise ValueError(f"depth must be 0 or more, got {depth}")
    init = default_init(arch) if init is None else init
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INITS)}")
    if output not in OUTPUTS:
        raise ValueError(f"unknown output {output!r}: choose one of {', '.join(OUTPUTS)}")
    weight_init, last = INITS[init], OUTPUTS[output]
    if arch.startswith("mlp-001"):
        return mlp_001(z_dim, depth, weight_init, last)
    if arch.startswith("mlp"):
        return mlp(z_dim, depth, weight_init, last)
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel size must be odd (3, 5, 7, ...) so that 'same' padding exists, got {kernel_size}")
    if arch.startswith("dcgan-004"):
        upsample = arch.endswith("upsample")
        return (dcgan_004_generator(z_dim, kernel_size, depth, weight_init, last, upsample),
                dcgan_004_discriminator(kernel_size, depth, weight_init))
    generator = dcgan_upsample_generator if arch == "dcgan-upsample" else dcgan_generator
    return (generator(z_dim, kernel_size, depth, weight_init, last),
            dcgan_discriminator(kernel_size, depth, weight_init))


def mlp(z_dim: int, depth: int, weight_init, last=Tanh):
    """The vanilla GAN: G 100 -> 128 -> 256 -> 512 -> 784, D 784 -> 512 -> 256 -> 128 -> 1."""
    pixels = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2]
    generator_widths = [z_dim, 128, 256, 512] + [1024] * depth
    generator = []
    for fan_in, fan_out in zip(generator_widths, generator_widths[1:]):
        generator += [Dense(fan_in, fan_out, weight_init=weight_init), LeakyReLU(SLOPE)]
    generator += [Dense(generator_widths[-1], pixels, weight_init=weight_init), last(), Reshape(IMAGE_SHAPE)]

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


def dcgan_generator(z_dim: int, kernel_size: int, depth: int, weight_init, last=Tanh):
    """The standard MNIST DCGAN generator: 7x7 -> 14x14 -> 28x28 by stride-2 transposed convolutions."""
    padding = kernel_size // 2
    # output_padding 1 makes each stride-2 layer exactly double the size: (7 - 1) 2 - 2p + k + 1 = 14.
    return Sequential(_generator_stem(z_dim, kernel_size, depth, weight_init) + [
        ConvTranspose2D(128, 64, kernel_size, stride=2, padding=padding, output_padding=1, bias=False,
                        weight_init=weight_init), BatchNorm(64), LeakyReLU(SLOPE),
        ConvTranspose2D(64, 1, kernel_size, stride=2, padding=padding, output_padding=1, bias=False,
                        weight_init=weight_init), last()])


def dcgan_upsample_generator(z_dim: int, kernel_size: int, depth: int, weight_init, last=Tanh):
    """The same generator with nearest-neighbour upsampling + convolution instead of strided transposes
    (avoids the checkerboard artefacts that uneven kernel overlap can cause)."""
    padding = kernel_size // 2
    return Sequential(_generator_stem(z_dim, kernel_size, depth, weight_init) + [
        UpSample2D(2), Conv2D(128, 64, kernel_size, padding=padding, bias=False, weight_init=weight_init),
        BatchNorm(64), LeakyReLU(SLOPE),
        UpSample2D(2), Conv2D(64, 1, kernel_size, padding=padding, bias=False, weight_init=weight_init), last()])


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


def mlp_001(z_dim: int, depth: int, weight_init, last=Tanh):
    """Report 001: G 100 -> 256 -> 512 -> 1024 -> 784 (LeakyReLU 0.3), D 784 -> 1024 -> 512 -> 256 -> 1
    (LeakyReLU 0.2, Dropout 0.3); ``depth`` more 1024-unit layers at the wide end of each."""
    pixels = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2]
    widths = [z_dim, 256, 512] + [1024] * (1 + depth)
    generator = []
    for fan_in, fan_out in zip(widths, widths[1:]):
        generator += [Dense(fan_in, fan_out, weight_init=weight_init), LeakyReLU(0.3)]
    generator += [Dense(widths[-1], pixels, weight_init=weight_init), last(), Reshape(IMAGE_SHAPE)]
    widths = [pixels] + [1024] * (1 + depth) + [512, 256]
    discriminator = [Flatten()]
    for fan_in, fan_out in zip(widths, widths[1:]):
        discriminator += [Dense(fan_in, fan_out, weight_init=weight_init), LeakyReLU(0.2), Dropout(DROPOUT)]
    return Sequential(generator), Sequential(discriminator + [Dense(widths[-1], 1, weight_init=weight_init)])


def dcgan_004_generator(z_dim: int, kernel_size: int, depth: int, weight_init, last=Tanh, upsample=False):
    """Report 004: Dense to 7x7x128, then 128 -> 64 (7 -> 14) and 64 -> 1 (14 -> 28) by stride-2 transposed
    convolutions, or by 2x upsampling + convolution; BatchNorm and LeakyReLU 0.3 between."""
    padding = kernel_size // 2
    layers = [Dense(z_dim, 7 * 7 * 128, bias=False, weight_init=weight_init), BatchNorm(7 * 7 * 128),
              LeakyReLU(0.3), Reshape((128, 7, 7))]
    for _ in range(depth):
        layers += [ConvTranspose2D(128, 128, kernel_size, stride=1, padding=padding, bias=False,
                                   weight_init=weight_init), BatchNorm(128), LeakyReLU(0.3)]
    for in_channels, out_channels in ((128, 64), (64, 1)):
        if upsample:
            layers += [UpSample2D(2), Conv2D(in_channels, out_channels, kernel_size, padding=padding, bias=False,
                                             weight_init=weight_init)]
        else:
            layers += [ConvTranspose2D(in_channels, out_channels, kernel_size, stride=2, padding=padding,
                                       output_padding=1, bias=False, weight_init=weight_init)]
        layers += [BatchNorm(out_channels), LeakyReLU(0.3)] if out_channels > 1 else [last()]
    return Sequential(layers)


def dcgan_004_discriminator(kernel_size: int, depth: int, weight_init):
    """Report 004: Conv 1 -> 32 (28 -> 14) and 32 -> 64 (14 -> 7), stride 2, LeakyReLU 0.3; Dense 3136 -> 1."""
    padding = kernel_size // 2
    layers = [Conv2D(1, 32, kernel_size, stride=2, padding=padding, weight_init=weight_init), LeakyReLU(0.3),
              Conv2D(32, 64, kernel_size, stride=2, padding=padding, weight_init=weight_init), LeakyReLU(0.3)]
    for _ in range(depth):
        layers += [Conv2D(64, 64, kernel_size, stride=1, padding=padding, weight_init=weight_init), LeakyReLU(0.3)]
    return Sequential(layers + [Flatten(), Dense(64 * 7 * 7, 1, weight_init=weight_init)])
