"""The architectures of the reports, built from tinygan's layers.

Each builder returns (generator, discriminator). The generator maps noise
(N, z_dim) to images (N, C, H, W) in [-1, 1] (tanh), by default MNIST's
(N, 1, 28, 28); the discriminator maps images to one logit each (N, 1); the
sigmoid lives in the loss. The MLPs take any ``image_shape``; the 28x28
DCGANs any number of channels at 28x28; ``dcgan-004-cifar`` any at 32x32.

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
  0.3, D 784 -> 1024 -> 512 -> 256 -> 1 with LeakyReLU 0.2 and Dropout 0.3;
  ``mlp-001-deep`` has two more 1024-unit layers in each network. The report
  trained them at batch 128 on pixels in [0, 1] (REPORT_SETTINGS, which the
  studies use); ``train`` does not, since there D wins within two epochs
  (docs/defaults.md).
* ``dcgan-004`` (report 004): D with two stride-2 convolutions of 32 and 64
  filters; G from a dense layer to 7x7x128 and two stride-2 transposed
  convolutions; LeakyReLU 0.3 throughout. ``dcgan-004-upsample``: the same G
  with nearest-neighbour upsampling + convolution.
* ``dcgan-004-cifar`` (report 004's CIFAR-10 network): G from a dense layer
  to 4x4x256 and three stride-2 transposed convolutions (256 -> 128 -> 64 ->
  C channels, 4 -> 8 -> 16 -> 32 pixels); D one convolution longer than
  ``dcgan-004``'s: 32, 64 and 128 filters, 32 -> 16 -> 8 -> 4 pixels.

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
                 "dcgan-004-upsample", "dcgan-004-cifar")
IMAGE_SHAPE = (1, 28, 28)   # MNIST's, the default
SLOPE = 0.2          # LeakyReLU's negative slope in the common networks
DROPOUT = 0.3        # in the discriminators
INITS = {"normal": dcgan_normal, "glorot": glorot_uniform}
OUTPUTS = {"tanh": Tanh, "sigmoid": Sigmoid}
# The training settings a report's network came with, where they differ from the other reports' (study.REPORTS).
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
    width = {"mlp": 128, "mlp-deep": 128, "mlp-001": 256, "mlp-001-deep": 256, "dcgan-004-cifar": 4 * 4 * 256}.get(
        arch, 7 * 7 * (128 if arch.startswith("dcgan-004") else 256))
    return z_dim * width * 4 * 4


def image_size(arch: str):
    """(height, width) the architecture's convolutions are laid out for; None for the MLPs, which take any."""
    return None if arch.startswith("mlp") else (32, 32) if arch == "dcgan-004-cifar" else (28, 28)


def shape_problem(arch: str, image_shape) -> str | None:
    """Why ``arch`` cannot make images of ``image_shape`` (C, H, W), in one sentence; None when it can."""
    size, wanted = image_size(arch), tuple(image_shape[1:])
    if size is None or size == wanted:
        return None
    fits = [name for name in ARCHITECTURES if image_size(name) in (None, wanted)]
    return (f"--arch {arch} makes {size[0]}x{size[1]} images and these are {wanted[0]}x{wanted[1]}: "
            f"choose one of {', '.join(fits)}")


def build(arch: str, z_dim: int = 100, kernel_size: int = 5, depth: int | None = None, init: str | None = None,
          output: str = "tanh", generator_bn_affine: bool = True, conditional: bool = False,
          image_shape=IMAGE_SHAPE):
    """(generator, discriminator) for one of ARCHITECTURES, for images of ``image_shape`` (C, H, W).

    ``generator_bn_affine=False``: G's BatchNorm layers without their scale and bias (gamma and beta),
    which report 003 (after the DCGAN paper's authors' code) found to train better.
    ``conditional``: both networks also see the class (conditional.py).
    """
    generator, discriminator = _build(arch, z_dim, kernel_size, depth, init, output, tuple(image_shape))
    if not generator_bn_affine:
        generator.layers = [BatchNorm(layer.num_features, layer.momentum, layer.eps, affine=False)
                            if isinstance(layer, BatchNorm) else layer for layer in generator.layers]
    if conditional:
        weight_init = INITS[default_init(arch) if init is None else init]
        generator, discriminator = conditioned(generator, weight_init), conditioned(discriminator, weight_init)
    return generator, discriminator


def _build(arch, z_dim, kernel_size, depth, init, output, image_shape):
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}: choose one of {', '.join(ARCHITECTURES)}")
    if shape_problem(arch, image_shape):
        raise ValueError(shape_problem(arch, image_shape))
    depth = default_depth(arch) if depth is None else depth
    if depth < 0:
        raise ValueError(f"depth must be 0 or more, got {depth}")
    init = default_init(arch) if init is None else init
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INITS)}")
    if output not in OUTPUTS:
        raise ValueError(f"unknown output {output!r}: choose one of {', '.join(OUTPUTS)}")
    weight_init, last = INITS[init], OUTPUTS[output]
    channels = image_shape[0]
    if arch.startswith("mlp-001"):
        return mlp_001(z_dim, depth, weight_init, last, image_shape)
    if arch.startswith("mlp"):
        return mlp(z_dim, depth, weight_init, last, image_shape)
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel size must be odd (3, 5, 7, ...) so that 'same' padding exists, got {kernel_size}")
    if arch == "dcgan-004-cifar":
        return (dcgan_004_generator(z_dim, kernel_size, depth, weight_init, last, channels=channels,
                                    widths=(256, 128, 64), start=4),
                dcgan_004_discriminator(kernel_size, depth, weight_init, channels, sizes=(32, 16, 8, 4)))
    if arch.startswith("dcgan-004"):
        upsample = arch.endswith("upsample")
        return (dcgan_004_generator(z_dim, kernel_size, depth, weight_init, last, upsample, channels),
                dcgan_004_discriminator(kernel_size, depth, weight_init, channels))
    generator = dcgan_upsample_generator if arch == "dcgan-upsample" else dcgan_generator
    return (generator(z_dim, kernel_size, depth, weight_init, last, channels),
            dcgan_discriminator(kernel_size, depth, weight_init, channels))


def mlp(z_dim: int, depth: int, weight_init, last=Tanh, image_shape=IMAGE_SHAPE):
    """The vanilla GAN: G 100 -> 128 -> 256 -> 512 -> 784, D 784 -> 512 -> 256 -> 128 -> 1 (784 = C H W)."""
    pixels = image_shape[0] * image_shape[1] * image_shape[2]
    generator_widths = [z_dim, 128, 256, 512] + [1024] * depth
    generator = []
    for fan_in, fan_out in zip(generator_widths, generator_widths[1:]):
        generator += [Dense(fan_in, fan_out, weight_init=weight_init), LeakyReLU(SLOPE)]
    generator += [Dense(generator_widths[-1], pixels, weight_init=weight_init), last(), Reshape(image_shape)]

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


def dcgan_generator(z_dim: int, kernel_size: int, depth: int, weight_init, last=Tanh, channels=1):
    """The standard MNIST DCGAN generator: 7x7 -> 14x14 -> 28x28 by stride-2 transposed convolutions."""
    padding = kernel_size // 2
    # output_padding 1 makes each stride-2 layer exactly double the size: (7 - 1) 2 - 2p + k + 1 = 14.
    return Sequential(_generator_stem(z_dim, kernel_size, depth, weight_init) + [
        ConvTranspose2D(128, 64, kernel_size, stride=2, padding=padding, output_padding=1, bias=False,
                        weight_init=weight_init), BatchNorm(64), LeakyReLU(SLOPE),
        ConvTranspose2D(64, channels, kernel_size, stride=2, padding=padding, output_padding=1, bias=False,
                        weight_init=weight_init), last()])


def dcgan_upsample_generator(z_dim: int, kernel_size: int, depth: int, weight_init, last=Tanh, channels=1):
    """The same generator with nearest-neighbour upsampling + convolution instead of strided transposes
    (avoids the checkerboard artefacts that uneven kernel overlap can cause)."""
    padding = kernel_size // 2
    return Sequential(_generator_stem(z_dim, kernel_size, depth, weight_init) + [
        UpSample2D(2), Conv2D(128, 64, kernel_size, padding=padding, bias=False, weight_init=weight_init),
        BatchNorm(64), LeakyReLU(SLOPE),
        UpSample2D(2), Conv2D(64, channels, kernel_size, padding=padding, bias=False, weight_init=weight_init),
        last()])


def dcgan_discriminator(kernel_size: int, depth: int, weight_init, channels=1):
    """Conv C -> 64 (28 -> 14), Conv 64 -> 128 (14 -> 7), `depth` more 128 -> 128 at 7x7, Dense 6272 -> 1."""
    padding = kernel_size // 2
    layers = [Conv2D(channels, 64, kernel_size, stride=2, padding=padding, weight_init=weight_init),
              LeakyReLU(SLOPE), Dropout(DROPOUT),
              Conv2D(64, 128, kernel_size, stride=2, padding=padding, weight_init=weight_init),
              BatchNorm(128), LeakyReLU(SLOPE), Dropout(DROPOUT)]
    for _ in range(depth):
        layers += [Conv2D(128, 128, kernel_size, stride=1, padding=padding, weight_init=weight_init),
                   BatchNorm(128), LeakyReLU(SLOPE), Dropout(DROPOUT)]
    return Sequential(layers + [Flatten(), Dense(128 * 7 * 7, 1, weight_init=weight_init)])


def mlp_001(z_dim: int, depth: int, weight_init, last=Tanh, image_shape=IMAGE_SHAPE):
    """Report 001: G 100 -> 256 -> 512 -> 1024 -> 784 (LeakyReLU 0.3), D 784 -> 1024 -> 512 -> 256 -> 1
    (LeakyReLU 0.2, Dropout 0.3); ``depth`` more 1024-unit layers at the wide end of each."""
    pixels = image_shape[0] * image_shape[1] * image_shape[2]
    widths = [z_dim, 256, 512] + [1024] * (1 + depth)
    generator = []
    for fan_in, fan_out in zip(widths, widths[1:]):
        generator += [Dense(fan_in, fan_out, weight_init=weight_init), LeakyReLU(0.3)]
    generator += [Dense(widths[-1], pixels, weight_init=weight_init), last(), Reshape(image_shape)]
    widths = [pixels] + [1024] * (1 + depth) + [512, 256]
    discriminator = [Flatten()]
    for fan_in, fan_out in zip(widths, widths[1:]):
        discriminator += [Dense(fan_in, fan_out, weight_init=weight_init), LeakyReLU(0.2), Dropout(DROPOUT)]
    return Sequential(generator), Sequential(discriminator + [Dense(widths[-1], 1, weight_init=weight_init)])


def dcgan_004_generator(z_dim: int, kernel_size: int, depth: int, weight_init, last=Tanh, upsample=False,
                        channels=1, widths=(128, 64), start=7):
    """Report 004: Dense to 7x7x128, then 128 -> 64 (7 -> 14) and 64 -> C (14 -> 28) by stride-2 transposed
    convolutions, or by 2x upsampling + convolution; BatchNorm and LeakyReLU 0.3 between. With ``widths``
    (256, 128, 64) and ``start`` 4, report 004's colour G: 4 -> 8 -> 16 -> 32."""
    padding = kernel_size // 2
    first = widths[0]
    layers = [Dense(z_dim, start * start * first, bias=False, weight_init=weight_init),
              BatchNorm(start * start * first), LeakyReLU(0.3), Reshape((first, start, start))]
    for _ in range(depth):
        layers += [ConvTranspose2D(first, first, kernel_size, stride=1, padding=padding, bias=False,
                                   weight_init=weight_init), BatchNorm(first), LeakyReLU(0.3)]
    for index, (in_channels, out_channels) in enumerate(zip(widths, [*widths[1:], channels])):
        if upsample:
            layers += [UpSample2D(2), Conv2D(in_channels, out_channels, kernel_size, padding=padding, bias=False,
                                             weight_init=weight_init)]
        else:
            layers += [ConvTranspose2D(in_channels, out_channels, kernel_size, stride=2, padding=padding,
                                       output_padding=1, bias=False, weight_init=weight_init)]
        layers += [BatchNorm(out_channels), LeakyReLU(0.3)] if index < len(widths) - 1 else [last()]
    return Sequential(layers)


def dcgan_004_discriminator(kernel_size: int, depth: int, weight_init, channels=1, sizes=(28, 14, 7)):
    """Report 004: stride-2 convolutions C -> 32 -> 64 (28 -> 14 -> 7), LeakyReLU 0.3, Dense 3136 -> 1; with
    ``sizes`` (32, 16, 8, 4), the CIFAR-10 D: one more, 64 -> 128, and Dense 2048 -> 1."""
    padding = kernel_size // 2
    widths = [channels, 32, 64, 128][:len(sizes)]
    layers = []
    for in_channels, out_channels in zip(widths, widths[1:]):
        layers += [Conv2D(in_channels, out_channels, kernel_size, stride=2, padding=padding,
                          weight_init=weight_init), LeakyReLU(0.3)]
    for _ in range(depth):
        layers += [Conv2D(widths[-1], widths[-1], kernel_size, stride=1, padding=padding, weight_init=weight_init),
                   LeakyReLU(0.3)]
    return Sequential(layers + [Flatten(), Dense(widths[-1] * sizes[-1] ** 2, 1, weight_init=weight_init)])
