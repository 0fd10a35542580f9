"""The conditional GAN: the code enters at the first layer, gradients skip it, runs draw the asked digits."""
import json

import numpy as np
import pytest
from PIL import Image

import tinygan as tg
from conftest import SHARED_MNIST, requires_mnist
from test_cli import QUICK, checkpoint_arrays, run_main
from tinygan import backend, data, models
from tinygan.init import glorot_uniform
from tinygan.conditional import Conditioned, conditioned
from tinygan.gan import GAN


@pytest.mark.parametrize("image_input", [False, True])
def test_the_code_is_appended_at_the_first_layer_and_its_gradient_dropped(image_input, float64):
    backend.seed(0)
    if image_input:   # a DCGAN-like D: the label as ten channels before the first convolution
        plain = tg.Sequential([tg.Conv2D(1, 3, 3, padding=1), tg.LeakyReLU(0.2), tg.Flatten(), tg.Dense(3 * 16, 1)])
        x = np.random.default_rng(0).standard_normal((4, 1, 4, 4))
    else:             # an MLP D: Flatten, then the code beside the pixels
        plain = tg.Sequential([tg.Flatten(), tg.Dense(16, 5), tg.LeakyReLU(0.2), tg.Dense(5, 1)])
        x = np.random.default_rng(0).standard_normal((4, 1, 4, 4))
    network = conditioned(plain, tg.init.glorot_uniform)
    labels = np.array([3, 0, 9, 3])
    y = network.condition(labels).forward(x)
    onehot = np.eye(10)[labels]
    if image_input:
        coded = np.concatenate([x, np.broadcast_to(onehot[:, :, None, None], (4, 10, 4, 4))], axis=1)
        reference = tg.Sequential(network.layers)
    else:
        coded = np.concatenate([x.reshape(4, -1), onehot], axis=1)
        reference = tg.Sequential(network.layers[1:])
    np.testing.assert_allclose(y, reference.forward(coded), rtol=1e-12)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    dx_reference = reference.backward(dy)
    grads_reference = [grad.copy() for _, _, _, grad in network.parameters()]
    network.zero_grad()
    network.condition(labels).forward(x)
    dx = network.backward(dy)
    expected = dx_reference[:, :1] if image_input else dx_reference[:, :16].reshape(x.shape)
    np.testing.assert_allclose(dx, expected, rtol=1e-12)           # the code's part is dropped
    for (_, _, _, grad), want in zip(network.parameters(), grads_reference):
        np.testing.assert_allclose(grad, want, rtol=1e-12)     # zeroed, then filled by one backward
    assert network.condition(labels).forward(x) is not None and network.backward(dy, input_grad=False) is None


def test_a_conditional_network_refuses_to_run_without_labels():
    generator, _ = models.build("mlp", conditional=True)
    assert isinstance(generator, Conditioned) and generator[0].in_features == 110
    with pytest.raises(ValueError, match="needs the labels of its 2 inputs: call condition"):
        generator.forward(np.zeros((2, 100), dtype=np.float32))
    gan = GAN(*models.build("mlp", conditional=True))
    with pytest.raises(ValueError, match="trains on labelled images"):
        gan.train_step(np.zeros((4, 1, 28, 28), dtype=np.float32))


def test_both_conditional_architectures_widen_their_first_layers():
    for arch, first in (("dcgan", "in_channels"), ("dcgan-004", "in_channels"), ("mlp-001", "in_features")):
        generator, discriminator = models.build(arch, conditional=True)
        assert generator[0].in_features == 110
        entry = discriminator[discriminator.entry]
        assert getattr(entry, first) in (11, 794)


@requires_mnist
def test_a_conditional_run_draws_a_row_per_digit_and_samples_asked_digits(tmp_path, capsys):
    run = tmp_path / "run"
    assert run_main(capsys, "train", "--arch", "dcgan", "--conditional", "--epochs", 1, "--out", run, "--quiet",
                    *QUICK)[0] == 0
    assert json.loads((run / "config.json").read_text())["conditional"] is True
    assert Image.open(run / "samples" / "epoch_001.png").size == (8 * 30 + 2, 10 * 30 + 2)
    assert checkpoint_arrays(run)["fixed_noise"].shape == (80, 100)
    code, _, err = run_main(capsys, "sample", "--checkpoint", run, "--n", 6, "--digit", "3,7", "--out",
                            tmp_path / "s.npy")
    assert code == 0, err
    from tinygan.trainer import load_generator
    backend.seed(0)
    gan, config, _ = load_generator(run)
    z = gan.sample_noise(6)
    expected = data.to_uint8(backend.as_numpy(gan.generate(z, labels=np.array([3, 7, 3, 7, 3, 7]))))
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), expected)
    code, _, err = run_main(capsys, "sample", "--checkpoint", run, "--n", 6, "--digit", "12", "--out",
                            tmp_path / "t.npy")
    assert code == 2 and "not a digit" in err
    code, _, err = run_main(capsys, "probe", "--checkpoint", run)
    assert code == 1 and "probe an unconditional run" in err
    code, out, err = run_main(capsys, "eval", run, "--n", 1000, "--nearest-neighbour", 1000)
    assert code == 0, err
    record = json.loads((run / "eval.json").read_text())
    assert 0 <= record["nn_error_generated"] <= 1 and record["nn_error_real"] < 0.2   # real 1-NN: about 0.1 at 1,000
    shares = json.loads((run / "eval.json").read_text())["asked_class_share_per_class"]
    assert len(shares) == 10 and all(0 <= share <= 1 for share in shares)
    assert "asked digit recognised by the classifier:" in out


def test_asking_an_unconditional_run_for_a_digit_names_the_fix(tmp_path, capsys):
    if not SHARED_MNIST.is_dir():
        pytest.skip("needs MNIST")
    run = tmp_path / "run"
    assert run_main(capsys, "train", "--arch", "mlp", "--epochs", 1, "--out", run, "--quiet", *QUICK)[0] == 0
    code, _, err = run_main(capsys, "sample", "--checkpoint", run, "--digit", "7", "--out", tmp_path / "s.npy")
    assert code == 2 and "is not a conditional run" in err and "--conditional" in err
    code, _, err = run_main(capsys, "eval", run, "--nearest-neighbour", 1000)
    assert code == 2 and "needs a conditional run directory" in err


def test_a_briefly_trained_conditional_gan_draws_the_asked_classes():
    """The labels steer G: on a toy set where class k is a bright bar on row k of a 10x10 image (noise
    elsewhere), a small conditional GAN trained 1,000 steps draws the asked class far above chance (one in
    ten), judged by the nearest class template. (It reached every class by step 800.)"""
    backend.seed(0)
    rng = np.random.default_rng(0)

    def toy(labels):
        images = rng.uniform(-1, -0.6, (len(labels), 1, 10, 10))
        images[np.arange(len(labels)), 0, labels] = rng.uniform(0.6, 1, (len(labels), 10))
        return images.astype(np.float32)

    generator = conditioned(tg.Sequential([tg.Dense(16, 128), tg.LeakyReLU(0.2), tg.Dense(128, 100), tg.Tanh(),
                                           tg.Reshape((1, 10, 10))]), glorot_uniform)
    discriminator = conditioned(tg.Sequential([tg.Flatten(), tg.Dense(100, 128), tg.LeakyReLU(0.2),
                                               tg.Dense(128, 1)]), glorot_uniform)
    gan = GAN(generator, discriminator, z_dim=16, ema=0, lr=2e-3)
    for _ in range(1000):
        labels = rng.integers(0, 10, 64)
        gan.train_step(toy(labels), labels=labels)
    asked = np.arange(500) % 10
    z = gan.sample_noise(500)
    drawn = backend.as_numpy(gan.generate(z, labels=asked))[:, 0]
    recognised = drawn.mean(axis=2).argmax(axis=1)   # the brightest row: the template it is nearest to
    assert (recognised == asked).mean() > 0.9
    # the same noise with the labels shifted by one: G follows the label, not the noise
    shifted = backend.as_numpy(gan.generate(z, labels=(asked + 1) % 10))[:, 0]
    assert (shifted.mean(axis=2).argmax(axis=1) == (asked + 1) % 10).mean() > 0.9
