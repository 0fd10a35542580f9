"""Sequential (state round trip, train/eval), the backend switch, seeding, dtypes, clear errors."""
import numpy as np
import pytest

import tinygan
from tinygan import (BatchNorm, Conv2D, ConvTranspose2D, Dense, Dropout, Flatten, LeakyReLU, Reshape, Sequential,
                     Tanh, UpSample2D, backend)
from gradcheck import check_layer_gradients


def small_discriminator():
    return Sequential([Conv2D(1, 4, 3, stride=2, padding=1), BatchNorm(4), LeakyReLU(0.2), Dropout(0.3),
                       Flatten(), Dense(4 * 4 * 4, 1)])


def small_generator():
    return Sequential([Dense(5, 8 * 2 * 2, bias=False), BatchNorm(32), LeakyReLU(), Reshape((8, 2, 2)),
                       ConvTranspose2D(8, 4, 5, stride=2, padding=2, output_padding=1, bias=False),
                       BatchNorm(4), LeakyReLU(), UpSample2D(2), Conv2D(4, 1, 3, padding=1), Tanh()])


class _Network:
    """A Sequential seen as one layer, so the gradient check covers the whole chain."""

    def __init__(self, model):
        self.model = model
        self.params, self.grads = {}, {}
        for index, (layer, name, param, grad) in enumerate(model.parameters()):
            self.params[f"{index}.{name}"], self.grads[f"{index}.{name}"] = param, grad

    def forward(self, x, training=True):
        return self.model.forward(x, training=training)

    def backward(self, dout):
        return self.model.backward(dout)

    def zero_grad(self):
        self.model.zero_grad()


def test_whole_networks_pass_the_gradient_check(path, float64):
    backend.seed(0)
    rng = np.random.default_rng(0)
    generator, discriminator = small_generator(), small_discriminator()
    z = backend.to_device(rng.standard_normal((3, 5)))
    check_layer_gradients(_Network(generator), z, seed=1)
    image = backend.to_device(rng.standard_normal((3, 1, 8, 8)))
    check_layer_gradients(_Network(discriminator), image, seed=1)


def test_parameters_yield_every_layer_name_param_and_grad():
    model = small_discriminator()
    entries = list(model.parameters())
    assert [(model.layers.index(layer), name) for layer, name, _, _ in entries] == [
        (0, "W"), (0, "b"), (1, "gamma"), (1, "beta"), (5, "W"), (5, "b")]
    for layer, name, param, grad in entries:
        assert param is layer.params[name] and grad is layer.grads[name] and grad.shape == param.shape
    assert model.num_parameters() == 4 * 9 + 4 + 4 + 4 + 64 + 1


def small_networks_with_data(rng):
    """(model, input, upstream gradient) for the small discriminator and generator, and for an MLP
    discriminator whose first layer has no parameters, as float32 device arrays."""
    mlp = Sequential([Flatten(), Dense(64, 6), LeakyReLU(0.2), Dropout(0.3), Dense(6, 1)])
    for model, x in ((small_discriminator(), rng.standard_normal((3, 1, 8, 8))),
                     (small_generator(), rng.standard_normal((3, 5))), (mlp, rng.standard_normal((3, 1, 8, 8)))):
        x = backend.to_device(x.astype(np.float32))
        yield model, x, backend.to_device(rng.standard_normal(model.forward(x).shape).astype(np.float32))


def backward_pass(model, x, dout, input_grad=True):
    """(dL/dx or None, every parameter gradient) from zeroed gradients, the same dropout mask each time."""
    model.zero_grad()
    backend.seed(1)
    model.forward(x)
    dx = model.backward(dout, input_grad=input_grad)
    return (None if dx is None else backend.as_numpy(dx),
            [backend.as_numpy(grad).copy() for _, _, _, grad in model.parameters()])


def test_requires_grad_off_skips_parameter_gradients_but_not_the_input_gradient(path):
    for model, x, dout in small_networks_with_data(np.random.default_rng(0)):
        dx, grads = backward_pass(model, x, dout)
        assert all(np.abs(grad).max() > 0 for grad in grads)
        dx_frozen, grads_frozen = backward_pass(model.requires_grad_(False), x, dout)
        np.testing.assert_array_equal(dx_frozen, dx)
        assert not any(grad.any() for grad in grads_frozen)
        dx_again, grads_again = backward_pass(model.requires_grad_(True), x, dout)
        np.testing.assert_array_equal(dx_again, dx)
        for grad, expected in zip(grads_again, grads):
            np.testing.assert_array_equal(grad, expected)


def test_input_grad_off_returns_none_and_the_same_parameter_gradients(path):
    for model, x, dout in small_networks_with_data(np.random.default_rng(0)):
        dx, grads = backward_pass(model, x, dout)
        no_dx, same_grads = backward_pass(model, x, dout, input_grad=False)
        assert dx.shape == x.shape and no_dx is None
        for without_dx, with_dx in zip(same_grads, grads):
            np.testing.assert_array_equal(without_dx, with_dx)
        assert all(layer.needs_input_grad for layer in model)   # switched back on for the next caller
    parameter_free = Sequential([Flatten(), Tanh()])
    assert parameter_free.backward(backend.to_device(np.ones((2, 4), np.float32)), input_grad=False) is None


def test_state_dict_round_trips_through_npz(tmp_path):
    backend.seed(0)
    model = small_discriminator()
    x = np.random.default_rng(0).standard_normal((6, 1, 8, 8)).astype(np.float32)
    model.forward(x, training=True)  # moves the running statistics away from (0, 1)
    np.savez(tmp_path / "model.npz", **model.state_dict())
    assert set(model.state_dict()) == {"0.W", "0.b", "1.gamma", "1.beta", "1.running_mean", "1.running_var",
                                       "5.W", "5.b"}
    backend.seed(1)
    twin = small_discriminator()
    assert not np.array_equal(twin.forward(x, training=False), model.forward(x, training=False))
    with np.load(tmp_path / "model.npz") as saved:
        twin.load_state_dict(saved)
    np.testing.assert_array_equal(twin.forward(x, training=False), model.forward(x, training=False))
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(twin.state_dict()[key], value)


def test_load_state_dict_names_what_does_not_fit():
    model = small_discriminator()
    state = model.state_dict()
    del state["5.b"]
    with pytest.raises(ValueError, match=r"missing \['5.b'\]"):
        small_discriminator().load_state_dict(state)
    state = model.state_dict()
    state["0.W"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"'0.W' has shape \(2, 2\), the model expects \(4, 1, 3, 3\)"):
        small_discriminator().load_state_dict(state)


def test_training_flag_switches_dropout_and_batchnorm():
    backend.seed(0)
    model = small_discriminator()
    x = np.random.default_rng(0).standard_normal((6, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(model.forward(x, training=False), model.forward(x, training=False))
    assert not np.array_equal(model.forward(x, training=True), model.forward(x, training=True))


def test_training_is_float32_end_to_end():
    backend.seed(0)
    generator, discriminator = small_generator(), small_discriminator()
    for _, _, param, grad in list(generator.parameters()) + list(discriminator.parameters()):
        assert param.dtype == np.float32 and grad.dtype == np.float32
    z = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    images = generator.forward(z)
    logits = discriminator.forward(images)
    assert images.dtype == logits.dtype == np.float32
    assert generator.backward(discriminator.backward(np.ones_like(logits))).dtype == np.float32


def test_one_seed_reproduces_weights_noise_and_dropout():
    def run():
        backend.seed(42)
        model = small_discriminator()
        x = backend.rng().standard_normal((4, 1, 8, 8), dtype=np.float32)
        return model.state_dict(), model.forward(x, training=True)
    (state_a, y_a), (state_b, y_b) = run(), run()
    for key in state_a:
        np.testing.assert_array_equal(state_a[key], state_b[key])
    np.testing.assert_array_equal(y_a, y_b)


def test_gpu_without_cupy_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(backend, "cupy", None)
    monkeypatch.setattr(backend, "_cupy_import_error", ImportError("No module named 'cupy'"))
    with pytest.raises(backend.BackendError, match=r"needs CuPy.*pip install tinygan\[gpu\]"):
        backend.use_device("gpu")
    with pytest.raises(backend.BackendError, match="pip install tinygan"):
        backend.to_device(np.zeros(3), "gpu")
    assert backend.current_device() == "cpu"
    with pytest.raises(ValueError, match="unknown device 'tpu': choose one of cpu, gpu"):
        backend.use_device("tpu")


def test_layer_rejects_non_arrays_and_wrong_ranks():
    with pytest.raises(TypeError, match="Dense expects a NumPy or CuPy array, got list"):
        Dense(2, 3).forward([[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"Dense expects input of shape \(N, in_features\)"):
        Dense(2, 3).forward(np.zeros((2, 2, 2), np.float32))


@pytest.mark.gpu
def test_mixed_numpy_and_cupy_is_a_type_error_naming_the_fix():
    from conftest import skip_without_gpu
    skip_without_gpu()
    backend.use_device("gpu")
    try:
        layer = Dense(2, 3)
        with pytest.raises(TypeError, match=r"numpy.ndarray input on the cpu .* model.to\('cpu'\)"):
            layer.forward(np.zeros((1, 2), np.float32))
    finally:
        backend.use_device("cpu")


@pytest.mark.gpu
def test_gpu_training_matches_cpu():
    """The same seed and weights give the same forward and backward on both devices (up to float32 rounding)."""
    from conftest import skip_without_gpu
    skip_without_gpu()
    backend.seed(0)
    generator = small_generator()
    z = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    cpu_out = generator.forward(z)
    cpu_dz = generator.backward(np.ones_like(cpu_out))
    cpu_grads = [backend.as_numpy(g).copy() for *_, g in generator.parameters()]
    generator.zero_grad()
    generator.to("gpu")
    gpu_out = generator.forward(backend.to_device(z, "gpu"))
    gpu_dz = generator.backward(backend.to_device(np.ones_like(cpu_out), "gpu"))
    np.testing.assert_allclose(backend.as_numpy(gpu_out), cpu_out, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(backend.as_numpy(gpu_dz), cpu_dz, rtol=1e-3, atol=1e-5)
    for (*_, grad), expected in zip(generator.parameters(), cpu_grads):
        np.testing.assert_allclose(backend.as_numpy(grad), expected, rtol=1e-3, atol=1e-4)


def test_package_exports_the_public_names():
    for name in ["Dense", "Conv2D", "ConvTranspose2D", "BatchNorm", "LeakyReLU", "ReLU", "Tanh", "Sigmoid",
                 "Dropout", "Flatten", "Reshape", "UpSample2D", "Sequential", "BCEWithLogits", "Adam", "SGD"]:
        assert hasattr(tinygan, name)
