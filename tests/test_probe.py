"""The discriminator probe: pooling, the regularised softmax regression's gradient, a separable toy set, the CLI."""
import numpy as np
import pytest

from conftest import requires_mnist
from test_cli import QUICK, run_main
from tinygan import backend, models, probe
from tinygan.gradcheck import EPS, RELATIVE_TOLERANCE, relative_error


def test_adaptive_max_pool_takes_the_max_of_each_bin_as_pytorch_bins_them():
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 7))
    pooled = probe.adaptive_max_pool(x)
    bins = [(0, 2), (1, 4), (3, 6), (5, 7)]          # floor(i 7 / 4) .. ceil((i + 1) 7 / 4): they overlap
    for i, (r0, r1) in enumerate(bins):
        for j, (c0, c1) in enumerate(bins):
            np.testing.assert_array_equal(pooled[:, :, i, j], x[:, :, r0:r1, c0:c1].max(axis=(2, 3)))
    even = np.random.default_rng(1).standard_normal((1, 1, 8, 8))
    np.testing.assert_array_equal(probe.adaptive_max_pool(even)[0, 0], even[0, 0].reshape(4, 2, 4, 2).max(axis=(1, 3)))


@pytest.mark.parametrize("l2", [0.0, 0.1])
def test_the_regularised_softmax_regression_gradient_is_the_derivative(l2):
    rng = np.random.default_rng(3)
    x, labels = rng.standard_normal((12, 5)), rng.integers(0, 4, 12)
    model = probe.SoftmaxRegression(5, 4, l2)
    model.W[...], model.b[...] = rng.standard_normal((5, 4)), rng.standard_normal(4)
    model.forward(x, labels)
    dW, db = model.backward()
    for param, grad in ((model.W, dW), (model.b, db)):
        direction = rng.standard_normal(param.shape)
        original = param.copy()
        values = []
        for step in (EPS, -EPS):
            param[...] = original + step * direction
            values.append(model.forward(x, labels))
        param[...] = original
        numeric = (values[0] - values[1]) / (2 * EPS)
        assert relative_error(numeric, float((grad * direction).sum())) < RELATIVE_TOLERANCE


def test_the_probe_separates_a_linearly_separable_set_and_the_penalty_shrinks_weights():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, 30)) * 4
    labels = rng.integers(0, 4, 2000)
    x = centres[labels] + rng.standard_normal((2000, 30))
    accuracy, _ = probe.accuracy_with(x[:1500], labels[:1500], x[1500:], labels[1500:])
    assert accuracy >= 0.99
    loose, tight = (probe.fit(x[:1500], labels[:1500], l2, epochs=20, lr=0.05, classes=4) for l2 in (0.0, 1.0))
    assert np.abs(tight.W).sum() < 0.5 * np.abs(loose.W).sum()


def test_discriminator_features_are_every_block_pooled_to_4x4_and_mlps_are_refused():
    backend.seed(0)
    _, discriminator = models.build("dcgan")
    images = np.random.default_rng(0).uniform(-1, 1, (10, 1, 28, 28)).astype(np.float32)
    before = {key: value.copy() for key, value in discriminator.state_dict().items()}
    features = probe.discriminator_features(discriminator, images, batch_size=5)
    assert features.shape == (10, (64 + 128) * 16) and features.dtype == np.float32
    for key, value in discriminator.state_dict().items():
        np.testing.assert_array_equal(value, before[key])          # running statistics left as they were
    with pytest.raises(probe.ProbeError, match="train a DCGAN"):
        probe.discriminator_features(models.build("mlp")[1], images)


@requires_mnist
def test_the_probe_command_prints_the_three_rows(tmp_path, capsys):
    run = tmp_path / "run"
    assert run_main(capsys, "train", "--arch", "dcgan-004", "--epochs", 1, "--out", run, "--quiet", *QUICK)[0] == 0
    code, out, err = run_main(capsys, "probe", "--checkpoint", run, "--limit", 1000, "--test-images", 500, "--per-class", 20,
                              "--draws", 2,
                              "--json", tmp_path / "p.json")
    assert code == 0, err
    rows = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1:] == ["trained discriminator", "random discriminator", "raw pixels"]
    assert "all 1,000 labels" in out and "20 labels per class (mean ± std of 2)" in out
    code, _, err = run_main(capsys, "probe", "--checkpoint", run, "--limit", 1000)
    assert code == 1 and "400 labels per class need 400 training images of every class" in err
    code, _, err = run_main(capsys, "train", "--arch", "mlp", "--epochs", 1, "--out", tmp_path / "m", "--quiet",
                            *QUICK)
    code, _, err = run_main(capsys, "probe", "--checkpoint", tmp_path / "m", "--limit", 1000)
    assert code == 1 and "train a DCGAN" in err and "Traceback" not in err
