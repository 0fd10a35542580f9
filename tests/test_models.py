"""The architectures: the layer stacks the reports describe, their shapes and their options."""
import numpy as np
import pytest

from tinygan import (BatchNorm, Conv2D, ConvTranspose2D, Dense, Dropout, LeakyReLU, Reshape, Tanh, UpSample2D,
                     backend, models)


def kinds(model):
    return [type(layer).__name__ for layer in model]


def native_shape(arch):
    """MNIST's shape, or CIFAR-10's for the network laid out for 32x32."""
    return (3, 32, 32) if models.image_size(arch) == (32, 32) else (1, 28, 28)


@pytest.mark.parametrize("arch", models.ARCHITECTURES)
def test_every_architecture_maps_noise_to_images_to_logits(arch):
    backend.seed(0)
    generator, discriminator = models.build(arch, image_shape=native_shape(arch))
    z = np.random.default_rng(0).standard_normal((3, 100)).astype(np.float32)
    fake = generator.forward(z)
    assert fake.shape == (3, *native_shape(arch)) and fake.dtype == np.float32 and np.abs(fake).max() <= 1
    logits = discriminator.forward(fake)
    assert logits.shape == (3, 1)
    dz = generator.backward(discriminator.backward(np.ones_like(logits)))
    assert dz.shape == z.shape


def test_mlp_is_the_vanilla_gan_of_the_reports():
    generator, discriminator = models.build("mlp")
    assert [(l.in_features, l.out_features) for l in generator if isinstance(l, Dense)] == [
        (100, 128), (128, 256), (256, 512), (512, 784)]
    assert [(l.in_features, l.out_features) for l in discriminator if isinstance(l, Dense)] == [
        (784, 512), (512, 256), (256, 128), (128, 1)]
    assert all(l.negative_slope == 0.2 for l in generator if isinstance(l, LeakyReLU))
    assert [l.p for l in discriminator if isinstance(l, Dropout)] == [0.3, 0.3, 0.3]
    assert isinstance(generator[-2], Tanh) and isinstance(generator[-1], Reshape)


def test_mlp_deep_has_two_more_hidden_layers_in_each_network():
    shallow, deep = models.build("mlp"), models.build("mlp-deep")
    for index in (0, 1):
        count = [sum(isinstance(l, Dense) for l in pair[index]) for pair in (shallow, deep)]
        assert count[1] == count[0] + 2


def test_dcgan_is_the_standard_mnist_dcgan():
    generator, discriminator = models.build("dcgan")
    assert kinds(generator) == ["Dense", "BatchNorm", "LeakyReLU", "Reshape",
                                "ConvTranspose2D", "BatchNorm", "LeakyReLU",
                                "ConvTranspose2D", "BatchNorm", "LeakyReLU", "ConvTranspose2D", "Tanh"]
    assert generator[0].out_features == 7 * 7 * 256
    transposed = [l for l in generator if isinstance(l, ConvTranspose2D)]
    assert [(l.in_channels, l.out_channels, l.kernel_size, l.stride) for l in transposed] == [
        (256, 128, (5, 5), (1, 1)), (128, 64, (5, 5), (2, 2)), (64, 1, (5, 5), (2, 2))]
    assert all("b" not in layer.params for layer in generator)  # no biases in G
    assert kinds(discriminator) == ["Conv2D", "LeakyReLU", "Dropout", "Conv2D", "BatchNorm", "LeakyReLU",
                                    "Dropout", "Flatten", "Dense"]
    assert (discriminator[-1].in_features, discriminator[-1].out_features) == (6272, 1)
    assert generator.num_parameters() == 100 * 12544 + 2 * 12544 + 256 * 128 * 25 + 256 + 128 * 64 * 25 + 128 \
        + 64 * 25
    assert discriminator.num_parameters() == 25 * 64 + 64 + 64 * 128 * 25 + 128 + 256 + 6272 + 1


def test_dcgan_upsample_replaces_the_strided_transposes():
    generator, _ = models.build("dcgan-upsample")
    assert not any(isinstance(l, ConvTranspose2D) and l.stride != (1, 1) for l in generator)
    assert sum(isinstance(l, UpSample2D) for l in generator) == 2
    assert sum(isinstance(l, Conv2D) for l in generator) == 2


def test_kernel_size_and_depth_options():
    generator, discriminator = models.build("dcgan", kernel_size=3, depth=1)
    assert {l.kernel_size for l in list(generator) + list(discriminator) if isinstance(l, (Conv2D, ConvTranspose2D))} \
        == {(3, 3)}
    assert sum(isinstance(l, ConvTranspose2D) for l in generator) == 4
    assert sum(isinstance(l, Conv2D) for l in discriminator) == 3
    assert sum(isinstance(l, BatchNorm) for l in discriminator) == 2
    z = np.zeros((2, 100), np.float32)
    assert discriminator.forward(generator.forward(z)).shape == (2, 1)
    with pytest.raises(ValueError, match="kernel size must be odd"):
        models.build("dcgan", kernel_size=4)
    with pytest.raises(ValueError, match="unknown architecture 'gan': choose one of mlp, mlp-deep"):
        models.build("gan")


def all_weights(pair):
    return [param for model in pair for _, name, param, _ in model.parameters() if name == "W"]


@pytest.mark.parametrize("arch", models.ARCHITECTURES)
def test_weights_are_drawn_from_the_chosen_init(arch):
    backend.seed(0)
    shape = native_shape(arch)
    normal = np.concatenate([w.ravel() for w in all_weights(models.build(arch, init="normal", image_shape=shape))])
    assert abs(normal.mean()) < 1e-4 and abs(normal.std() - 0.02) < 2e-4
    for W in all_weights(models.build(arch, init="glorot", image_shape=shape)):
        # fan_in + fan_out = (inputs + outputs) x kernel area, for Dense, Conv2D and ConvTranspose2D alike
        limit = np.sqrt(6 / ((W.shape[0] + W.shape[1]) * (W[0, 0].size if W.ndim == 4 else 1)))
        assert limit * 0.9 < np.abs(W).max() <= limit
    # the DCGAN paper's normal(0, 0.02) for the common DCGANs; Keras's Glorot for the MLPs and the reports' own
    assert models.default_init(arch) == ("normal" if arch in ("dcgan", "dcgan-upsample") else "glorot")


def test_discriminator_accuracy_uses_batch_statistics_and_leaves_the_model_as_it_was():
    from tinygan.gan import GAN
    backend.seed(0)
    gan = GAN(*models.build("dcgan"))
    images = np.random.default_rng(0).uniform(-1, 1, (128, 1, 28, 28)).astype(np.float32)
    gan.train_step(images[:64])
    before = gan.discriminator.state_dict()
    p = [layer.p for layer in gan.discriminator if isinstance(layer, Dropout)]
    first = gan.discriminator_accuracy(images, 128)
    assert 0 <= first[0] <= 1 and 0 <= first[1] <= 1
    for key, value in gan.discriminator.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)   # running statistics untouched
    assert [layer.p for layer in gan.discriminator if isinstance(layer, Dropout)] == p
    # No dropout, batch statistics: the real images get the same verdict every time.
    backend.seed(1)
    assert gan.discriminator_accuracy(images, 128)[0] == first[0]


def test_train_step_is_the_gan_step_written_out():
    """GAN.train_step, with its shortcuts (D skips its weight gradients in G's step), ends where the
    step written out plainly ends, bit for bit, and leaves D's gradients switched on."""
    from tinygan.gan import GAN
    from tinygan.losses import BCEWithLogits
    from tinygan.optimizers import Adam
    real = np.random.default_rng(0).uniform(-1, 1, (8, 1, 28, 28)).astype(np.float32)

    backend.seed(0)
    gan = GAN(*models.build("dcgan"))
    backend.seed(1)
    d_loss, g_loss = gan.train_step(real)
    assert all(layer.requires_grad for layer in gan.discriminator)

    backend.seed(0)
    G, D = models.build("dcgan")
    G_optimizer, D_optimizer = Adam(G.parameters()), Adam(D.parameters())
    loss = BCEWithLogits()
    backend.seed(1)
    D.zero_grad()
    expected_d_loss = loss(D.forward(real), np.ones((8, 1), np.float32))
    D.backward(loss.backward())
    fake = G.forward(backend.rng().standard_normal((8, 100), dtype=np.float32))
    expected_d_loss += loss(D.forward(fake), np.zeros((8, 1), np.float32))
    D.backward(loss.backward())
    D_optimizer.step()
    G.zero_grad()
    expected_g_loss = loss(D.forward(fake), 1.0)
    G.backward(D.backward(loss.backward()))
    G_optimizer.step()

    assert (d_loss, g_loss) == (expected_d_loss, expected_g_loss)
    for network, expected in ((gan.generator, G), (gan.discriminator, D)):
        for key, value in network.state_dict().items():
            np.testing.assert_array_equal(value, expected.state_dict()[key], err_msg=key)


def test_train_step_can_leave_its_losses_on_the_device():
    """read_losses=False gives the same two losses, as float64 values the trainer reads later."""
    from tinygan.gan import GAN
    real = np.random.default_rng(0).uniform(-1, 1, (8, 784)).astype(np.float32)
    steps = []
    for read_losses in (True, False):
        backend.seed(0)
        gan = GAN(*models.build("mlp"))
        backend.seed(1)
        steps.append(gan.train_step(real, read_losses=read_losses))
    floats, unread = steps
    assert [type(loss) for loss in floats] == [float, float]
    assert all(type(loss) is not float and loss.dtype == np.float64 for loss in unread)
    assert tuple(float(loss) for loss in unread) == floats


def test_training_updates_every_persistent_array_in_place():
    """Parameters, gradients, Adam's moments, BatchNorm's running estimates and the weight average stay the
    same arrays through training steps, D's accuracy pass and the average's BatchNorm refresh. A user who
    holds one sees it train, and a step replayed as a CUDA graph finds its state where it was captured."""
    from tinygan.gan import GAN
    backend.seed(0)
    gan = GAN(*models.build("dcgan"), ema=0.999)
    real = np.random.default_rng(0).uniform(-1, 1, (16, 1, 28, 28)).astype(np.float32)
    gan.train_step(real)   # Adam's moments exist from the first step on

    def persistent_arrays():
        arrays = {}
        for name, network in (("G", gan.generator), ("D", gan.discriminator), ("average", gan.average_generator)):
            for index, layer in enumerate(network):
                for store in ("params", "grads", "buffers"):
                    arrays.update({f"{name}.{index}.{key}": value for key, value in getattr(layer, store).items()
                                   if store != "grads" or name != "average"})
        for name, optimizer in (("G", gan.generator_optimizer), ("D", gan.discriminator_optimizer)):
            for index, state in enumerate(optimizer.state):
                arrays.update({f"{name} Adam {index}.{key}": value for key, value in state.items()})
        return arrays

    before = persistent_arrays()
    values = {key: value.copy() for key, value in before.items()}
    gan.train_step(real)
    gan.discriminator_accuracy(real, 16, batch_size=16)
    gan.refresh_average_statistics(np.random.default_rng(1), batch_size=16, batches=2)
    gan.train_step(real)
    after = persistent_arrays()
    assert after.keys() == before.keys()
    assert [key for key in before if after[key] is not before[key]] == []
    assert not np.array_equal(after["D.4.running_mean"], values["D.4.running_mean"])   # they did change
    assert not np.array_equal(after["average.1.running_var"], values["average.1.running_var"])


def test_mlp_001_is_report_001s_network_with_its_batch_and_pixel_range():
    generator, discriminator = models.build("mlp-001", output="sigmoid")
    assert [(l.in_features, l.out_features) for l in generator if isinstance(l, Dense)] == [
        (100, 256), (256, 512), (512, 1024), (1024, 784)]
    assert [(l.in_features, l.out_features) for l in discriminator if isinstance(l, Dense)] == [
        (784, 1024), (1024, 512), (512, 256), (256, 1)]
    assert {l.negative_slope for l in generator if isinstance(l, LeakyReLU)} == {0.3}
    assert {l.negative_slope for l in discriminator if isinstance(l, LeakyReLU)} == {0.2}
    assert [l.p for l in discriminator if isinstance(l, Dropout)] == [0.3, 0.3, 0.3]
    assert type(generator[-2]).__name__ == "Sigmoid"
    assert models.REPORT_SETTINGS["mlp-001"] == {"batch_size": 128, "pixel_range": "0,1"}
    deep_g, deep_d = models.build("mlp-001-deep")
    assert sum(isinstance(l, Dense) for l in deep_g) == 6 and sum(isinstance(l, Dense) for l in deep_d) == 6


@pytest.mark.parametrize("arch", ["dcgan-004", "dcgan-004-upsample"])
def test_dcgan_004_is_report_004s_network(arch):
    generator, discriminator = models.build(arch)
    assert generator[0].out_features == 7 * 7 * 128 and isinstance(generator[3], Reshape)
    assert [(l.in_channels, l.out_channels, l.stride) for l in discriminator if isinstance(l, Conv2D)] == [
        (1, 32, (2, 2)), (32, 64, (2, 2))]
    assert {l.negative_slope for model in (generator, discriminator) for l in model if isinstance(l, LeakyReLU)} \
        == {0.3}
    upsampling = [l for l in generator if isinstance(l, UpSample2D)]
    transposed = [l for l in generator if isinstance(l, ConvTranspose2D)]
    if arch.endswith("upsample"):
        assert len(upsampling) == 2 and not transposed
    else:
        assert not upsampling and [(l.in_channels, l.out_channels, l.stride) for l in transposed] == [
            (128, 64, (2, 2)), (64, 1, (2, 2))]
    assert isinstance(generator[-1], Tanh)


def test_dcgan_004_cifar_is_report_004s_colour_network():
    generator, discriminator = models.build("dcgan-004-cifar", image_shape=(3, 32, 32))
    assert generator[0].out_features == 4 * 4 * 256 and generator[3].shape == (256, 4, 4)
    assert [(l.in_channels, l.out_channels, l.stride) for l in generator if isinstance(l, ConvTranspose2D)] == [
        (256, 128, (2, 2)), (128, 64, (2, 2)), (64, 3, (2, 2))]
    # one convolution more than the MNIST discriminator of report 004
    assert [(l.in_channels, l.out_channels, l.stride) for l in discriminator if isinstance(l, Conv2D)] == [
        (3, 32, (2, 2)), (32, 64, (2, 2)), (64, 128, (2, 2))]
    assert discriminator[-1].in_features == 128 * 4 * 4 and isinstance(generator[-1], Tanh)


def test_other_image_shapes_where_the_network_allows_them():
    backend.seed(0)
    for arch, shape in (("mlp", (3, 32, 32)), ("mlp-001", (3, 20, 24)), ("dcgan", (3, 28, 28)),
                        ("dcgan-004-cifar", (1, 32, 32))):
        generator, discriminator = models.build(arch, image_shape=shape)
        fake = generator.forward(np.zeros((2, 100), np.float32), training=False)
        assert fake.shape == (2, *shape) and discriminator.forward(fake, training=False).shape == (2, 1)
    with pytest.raises(ValueError, match=r"--arch dcgan makes 28x28 images and these are 32x32: choose one of "
                                         r"mlp, mlp-deep, mlp-001, mlp-001-deep, dcgan-004-cifar$"):
        models.build("dcgan", image_shape=(3, 32, 32))
    assert "choose one of mlp, mlp-deep, dcgan, " in models.shape_problem("dcgan-004-cifar", (1, 28, 28))


def test_the_output_activation_follows_the_pixel_range_and_is_checked():
    assert models.default_output("0,1") == "sigmoid" and models.default_output("-1,1") == "tanh"
    backend.seed(0)
    generator, _ = models.build("dcgan-004", output="sigmoid")
    fake = generator.forward(np.random.default_rng(0).standard_normal((4, 100)).astype(np.float32))
    assert fake.min() >= 0 and fake.max() <= 1
    with pytest.raises(ValueError, match="unknown output 'relu'"):
        models.build("mlp", output="relu")


def test_generator_batchnorm_without_scale_and_bias_on_request():
    backend.seed(0)
    with_affine, _ = models.build("dcgan")
    backend.seed(0)
    without, discriminator = models.build("dcgan", generator_bn_affine=False)
    norms = [layer for layer in without if isinstance(layer, BatchNorm)]
    assert len(norms) == 3 and all(not layer.params for layer in norms)
    assert with_affine.num_parameters() - without.num_parameters() == 2 * (7 * 7 * 256 + 128 + 64)
    assert all(layer.params for layer in discriminator if isinstance(layer, BatchNorm))   # D keeps its own
    z = np.random.default_rng(0).standard_normal((4, 100)).astype(np.float32)
    np.testing.assert_allclose(without.forward(z), with_affine.forward(z), rtol=1e-6)    # gamma 1, beta 0 at start
