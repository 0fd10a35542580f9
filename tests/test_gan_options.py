"""The generator's weight average, the two learning rates and Poisson noise: the math and the run directory."""
import json

import numpy as np
import pytest

import tinygan as tg
from conftest import SHARED_MNIST, requires_mnist
from test_cli import QUICK, checkpoint_arrays, run_main
from tinygan import backend, models
from tinygan.gan import GAN


def tiny_gan(ema=0.0, norm=False, **options):
    """A small G (with a BatchNorm if asked) and D on 8-pixel 'images'."""
    backend.seed(0)
    G = tg.Sequential([tg.Dense(4, 6)] + ([tg.BatchNorm(6)] if norm else []) + [tg.LeakyReLU(0.2), tg.Dense(6, 8),
                                                                                tg.Tanh()])
    D = tg.Sequential([tg.Dense(8, 6), tg.LeakyReLU(0.2), tg.Dense(6, 1)])
    return GAN(G, D, z_dim=4, ema=ema, **options)


def params(network):
    return [param.copy() for _, _, param, _ in network.parameters()]


def test_the_average_follows_the_warmed_up_decay_step_by_step():
    gan = tiny_gan(ema=0.999)
    real = backend.rng().uniform(-1, 1, (16, 8)).astype(np.float32)
    expected = params(gan.generator)                       # the average starts at G's initial weights
    for t in range(25):
        gan.train_step(real)
        decay = min(0.999, (1 + t) / (10 + t))             # 0.1 at the first step: the start is soon forgotten
        expected = [decay * average + (1 - decay) * now for average, now in zip(expected, params(gan.generator))]
    for got, want in zip(params(gan.average_generator), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert not np.allclose(params(gan.average_generator)[0], params(gan.generator)[0])


def test_without_ema_there_is_no_average_and_the_sampler_is_g():
    gan = tiny_gan(ema=0.0)
    assert gan.average_generator is None and gan.sampler is gan.generator
    assert not any(key.startswith("average_generator/") for key in gan.state_dict())


def test_refreshed_batchnorm_statistics_are_the_averages_over_fresh_batches():
    gan = tiny_gan(ema=0.9, norm=True)
    gan.train_step(backend.rng().uniform(-1, 1, (16, 8)).astype(np.float32))
    dense, norm = gan.average_generator[0], gan.average_generator[1]
    gan.refresh_average_statistics(np.random.default_rng(7), batch_size=10, batches=5)
    replay = np.random.default_rng(7)                       # the same noise, through the averaged first layer
    batches = [dense.forward(gan.sample_noise(10, replay)) for _ in range(5)]
    np.testing.assert_allclose(norm.buffers["running_mean"], np.mean([b.mean(axis=0) for b in batches], axis=0),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norm.buffers["running_var"], np.mean([b.var(axis=0, ddof=1) for b in batches], axis=0),
                               rtol=1e-5)
    assert norm.momentum == 0.1                             # the layer's own momentum is back


def test_each_network_gets_its_own_learning_rate():
    gan = tiny_gan(lr=1e-3, lr_d=4e-4)
    assert gan.discriminator_optimizer.lr == 4e-4 and gan.generator_optimizer.lr == 1e-3
    gan = tiny_gan(lr_g=1e-4)
    assert gan.discriminator_optimizer.lr == 2e-4 and gan.generator_optimizer.lr == 1e-4


def test_poisson_noise_is_standardised_unless_asked_and_refuses_a_bad_rate():
    rng = np.random.default_rng(0)
    z = tiny_gan(noise="poisson", poisson_rate=3.0).sample_noise(50_000, rng)
    assert z.dtype == np.float32 and abs(z.mean()) < 0.02 and abs(z.var() - 1) < 0.03
    np.testing.assert_allclose(np.unique(z)[:3], (np.arange(3) - 3.0) / np.sqrt(3.0), rtol=1e-6)  # a lattice
    raw = tiny_gan(noise="poisson", poisson_rate=3.0, standardize_noise=False).sample_noise(50_000, rng)
    assert abs(raw.mean() - 3) < 0.05 and raw.min() == 0 and np.all(raw == np.round(raw))
    with pytest.raises(ValueError, match="Poisson rate must be positive"):
        tiny_gan(noise="poisson", poisson_rate=0.0)
    with pytest.raises(ValueError, match="EMA decay must be in"):
        tiny_gan(ema=1.0)


@pytest.mark.gpu
@pytest.mark.parametrize("noise", ["normal", "uniform", "poisson"])
def test_every_noise_is_drawn_on_the_gpu(noise):
    """On the GPU each kind of noise is drawn on the device from CuPy's generator, with the CPU's
    distribution: N(0, 1), U(-1, 1), or Poisson counts standardised (and raw, with --raw-noise)."""
    from conftest import skip_without_gpu
    skip_without_gpu()
    backend.use_device("gpu")
    try:
        gan = tiny_gan(noise=noise, poisson_rate=3.0)
        z = gan.sample_noise(50_000)
        assert backend.device_of(z) == "gpu" and z.dtype == np.float32 and z.shape == (50_000, 4)
        z = backend.as_numpy(z)
        assert abs(z.mean()) < 0.02 and abs(z.var() - (1 / 3 if noise == "uniform" else 1)) < 0.03
        if noise == "uniform":
            assert -1 <= z.min() and z.max() < 1
        if noise == "poisson":
            np.testing.assert_allclose(np.unique(z)[:3], (np.arange(3) - 3.0) / np.sqrt(3.0), rtol=1e-6)
            for rate in (3.0, 600.0):   # by inversion of the device's uniforms, and above 500 by CuPy's draw
                raw_gan = tiny_gan(noise=noise, poisson_rate=rate, standardize_noise=False)
                raw = backend.as_numpy(raw_gan.sample_noise(50_000))
                assert abs(raw.mean() - rate) < 5 * np.sqrt(rate / raw.size) and np.all(raw == np.round(raw))
                assert abs(raw.var() / rate - 1) < 0.03 and (raw.min() == 0 or rate > 100)
    finally:
        backend.use_device("cpu")


@requires_mnist
def test_the_run_samples_from_the_average_and_keeps_both_generators(tmp_path, capsys):
    run = tmp_path / "run"
    assert run_main(capsys, "train", "--arch", "dcgan", "--epochs", 1, "--out", run, "--quiet", *QUICK)[0] == 0
    config = json.loads((run / "config.json").read_text())
    assert config["ema"] == 0.999 and config["lr_d"] is None and config["noise"] == "normal"
    arrays = checkpoint_arrays(run)
    generator = {key for key in arrays if key.startswith("generator/")}
    assert {"average_" + key for key in generator} <= set(arrays)
    # `sample` uses the average: its pictures are the average's, not G's
    from tinygan import data
    from tinygan.trainer import load_generator
    assert run_main(capsys, "sample", "--checkpoint", run, "--n", 8, "--out", tmp_path / "s.npy")[0] == 0
    backend.seed(0)                                       # as `sample` does: seed, load, draw the noise
    gan, _, _ = load_generator(run)
    z = gan.sample_noise(8)
    assert gan.sampler is gan.average_generator
    averaged, live = (data.to_uint8(gan.generate(z, generator=g)) for g in (gan.average_generator, gan.generator))
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), averaged)
    assert not np.array_equal(averaged, live)
    # `--which trained` sets the average aside: the pictures are G's own, to measure what the average adds
    assert run_main(capsys, "sample", "--checkpoint", run, "--n", 8, "--which", "trained",
                    "--out", tmp_path / "t.npy")[0] == 0
    np.testing.assert_array_equal(np.load(tmp_path / "t.npy"), live)


@requires_mnist
def test_ema_zero_turns_it_off_and_old_run_directories_still_load(tmp_path, capsys):
    run = tmp_path / "run"
    assert run_main(capsys, "train", "--arch", "mlp", "--epochs", 1, "--ema", 0, "--out", run, "--quiet",
                    *QUICK)[0] == 0
    assert not any(key.startswith("average_generator/") for key in checkpoint_arrays(run))
    config = json.loads((run / "config.json").read_text())
    for key in ("ema", "lr_d", "lr_g", "poisson_rate", "standardize_noise"):   # as the first runs wrote it
        del config[key]
    (run / "config.json").write_text(json.dumps(config))
    code, _, err = run_main(capsys, "train", "--resume", run, "--epochs", 2, "--quiet")
    assert code == 0, err
    assert int(checkpoint_arrays(run)["generator_optimizer/steps"]) == 4


def test_the_poisson_options_need_poisson_noise(tmp_path, capsys):
    code, _, err = run_main(capsys, "train", "--arch", "mlp", "--raw-noise", "--out", tmp_path / "r", *QUICK)
    assert code == 2 and "--raw-noise only applies to --noise poisson" in err
    code, _, err = run_main(capsys, "train", "--arch", "mlp", "--poisson-rate", 2, "--out", tmp_path / "r", *QUICK)
    assert code == 2 and "--poisson-rate only applies to --noise poisson" in err
    assert not (tmp_path / "r").exists()


@requires_mnist
def test_poisson_noise_and_two_learning_rates_train_from_the_command_line(tmp_path, capsys):
    run = tmp_path / "run"
    code, _, err = run_main(capsys, "train", "--arch", "mlp", "--epochs", 1, "--noise", "poisson", "--poisson-rate",
                            4, "--lr-d", "4e-4", "--lr-g", "1e-4", "--out", run, "--quiet", *QUICK)
    assert code == 0, err
    config = json.loads((run / "config.json").read_text())
    assert (config["noise"], config["poisson_rate"], config["lr_d"], config["lr_g"]) == ("poisson", 4.0, 4e-4, 1e-4)
    assert str(SHARED_MNIST) == config["data_dir"]


@requires_mnist
def test_a_reports_network_trains_with_train_s_defaults_and_with_its_reports_settings_when_told(tmp_path, capsys):
    common = ["--epochs", 1, "--limit", 256, "--eval-every", 0, "--eval-images", 64, "--quiet", "--data-dir",
              SHARED_MNIST]
    assert run_main(capsys, "train", "--arch", "mlp-001", "--out", tmp_path / "a", *common)[0] == 0
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert (config["batch_size"], config["pixel_range"], config["output"]) == (64, "-1,1", "tanh")
    report = models.REPORT_SETTINGS["mlp-001"]
    assert run_main(capsys, "train", "--arch", "mlp-001", "--batch-size", report["batch_size"], "--pixel-range",
                    report["pixel_range"], "--out", tmp_path / "b", *common)[0] == 0
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert (config["batch_size"], config["pixel_range"], config["output"]) == (128, "0,1", "sigmoid")
    assert run_main(capsys, "sample", "--checkpoint", tmp_path / "a", "--n", 4, "--out", tmp_path / "a.npy")[0] == 0
    assert np.load(tmp_path / "a.npy").shape == (4, 28, 28)


@requires_mnist
def test_no_bn_affine_is_recorded_and_resumes(tmp_path, capsys):
    run = tmp_path / "run"
    assert run_main(capsys, "train", "--arch", "dcgan", "--no-bn-affine", "--epochs", 1, "--out", run, "--quiet",
                    *QUICK)[0] == 0
    assert json.loads((run / "config.json").read_text())["generator_bn_affine"] is False
    assert not any(key.startswith("generator/") and key.endswith(".gamma") for key in checkpoint_arrays(run))
    assert run_main(capsys, "train", "--resume", run, "--epochs", 2, "--quiet")[0] == 0
