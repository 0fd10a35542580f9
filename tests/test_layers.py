"""Gradient checks and behaviour of the non-convolution layers."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygan import (BatchNorm, Dense, Dropout, Flatten, LeakyReLU, ReLU, Reshape, Sigmoid, Tanh, UpSample2D,
                     backend)
from gradcheck import check_layer_gradients

seeds = st.integers(0, 2**32 - 1)
batch = st.integers(1, 4)
features = st.integers(1, 6)


def off_kinks(rng, shape, margin=1e-3):
    """Standard normal values with |x| >= margin, so no finite difference straddles x = 0."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < margin, np.copysign(margin, x) + x, x)


@given(n=batch, fan_in=features, fan_out=features, bias=st.booleans(), seed=seeds)
def test_dense_gradients(path, float64, n, fan_in, fan_out, bias, seed):
    backend.seed(seed)
    layer = Dense(fan_in, fan_out, bias=bias)
    if bias:
        layer.params["b"][...] = backend.to_device(np.random.default_rng(seed).standard_normal(fan_out))
    x = backend.to_device(np.random.default_rng(seed).standard_normal((n, fan_in)))
    np.testing.assert_allclose(backend.as_numpy(layer.forward(x)),
                               backend.as_numpy(x) @ backend.as_numpy(layer.params["W"])
                               + (backend.as_numpy(layer.params["b"]) if bias else 0), rtol=1e-12)
    check_layer_gradients(layer, x)


@given(shape=st.one_of(st.tuples(st.integers(2, 6), features),
                       st.tuples(batch, features, st.integers(1, 4), st.integers(1, 4))),
       affine=st.booleans(), training=st.booleans(), seed=seeds)
def test_batchnorm_gradients(path, float64, shape, affine, training, seed):
    if training and np.prod(shape) // shape[1] < 3:
        # With two values per channel x_hat is +-1 whatever x is, and the true
        # derivative (which only eps carries) is below finite-difference resolution.
        shape = (3,) + shape[1:]
    rng = np.random.default_rng(seed)
    layer = BatchNorm(shape[1], affine=affine)
    if affine:  # away from gamma = 1, beta = 0, so their gradients matter
        layer.params["gamma"][...] = backend.to_device(rng.uniform(0.5, 2.0, shape[1]))
        layer.params["beta"][...] = backend.to_device(rng.standard_normal(shape[1]))
    layer.buffers["running_mean"] = backend.to_device(rng.standard_normal(shape[1]))
    layer.buffers["running_var"] = backend.to_device(rng.uniform(0.5, 2.0, shape[1]))
    x = backend.to_device(rng.standard_normal(shape) * 3 + 1)
    check_layer_gradients(layer, x, training=training)


@pytest.mark.parametrize("make", [lambda: LeakyReLU(0.2), lambda: LeakyReLU(0.01), ReLU, Tanh, Sigmoid],
                         ids=["leaky0.2", "leaky0.01", "relu", "tanh", "sigmoid"])
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), seed=seeds)
def test_activation_gradients(path, float64, make, shape, seed):
    x = backend.to_device(off_kinks(np.random.default_rng(seed), shape) * 2)
    check_layer_gradients(make(), x)


def test_activation_values():
    x = np.array([-2.0, -0.5, 0.5, 3.0])
    np.testing.assert_allclose(LeakyReLU(0.2).forward(x), [-0.4, -0.1, 0.5, 3.0])
    np.testing.assert_allclose(ReLU().forward(x), [0, 0, 0.5, 3.0])
    np.testing.assert_allclose(Tanh().forward(x), np.tanh(x))
    np.testing.assert_allclose(Sigmoid().forward(x), 1 / (1 + np.exp(-x)))
    extreme = Sigmoid().forward(np.array([-1000.0, 1000.0]))
    assert np.all(np.isfinite(extreme)) and extreme[0] == 0.0 and extreme[1] == 1.0


@given(shape=st.tuples(batch, features, st.integers(1, 4)), p=st.sampled_from([0.0, 0.3, 0.5]), seed=seeds)
def test_dropout_gradients(path, float64, shape, p, seed):
    x = backend.to_device(np.random.default_rng(seed).standard_normal(shape))
    check_layer_gradients(Dropout(p), x, seed=seed)


@given(n=batch, channels=features, size=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       scale=st.integers(1, 3), seed=seeds)
def test_upsample_gradients_and_values(path, float64, n, channels, size, scale, seed):
    x = backend.to_device(np.random.default_rng(seed).standard_normal((n, channels) + size))
    y = backend.as_numpy(UpSample2D(scale).forward(x))
    expected = backend.as_numpy(x).repeat(scale, axis=2).repeat(scale, axis=3)
    np.testing.assert_array_equal(y, expected)
    check_layer_gradients(UpSample2D(scale), x)


@given(n=batch, seed=seeds)
def test_flatten_and_reshape_gradients(path, float64, n, seed):
    x = backend.to_device(np.random.default_rng(seed).standard_normal((n, 2, 3, 4)))
    assert Flatten().forward(x).shape == (n, 24)
    assert Reshape((4, 6)).forward(x).shape == (n, 4, 6)
    check_layer_gradients(Flatten(), x)
    check_layer_gradients(Reshape((6, 2, 2)), x)


def test_reshape_error_names_the_shapes():
    with pytest.raises(ValueError, match=r"Reshape\(7, 7\) cannot reshape input of shape \(2, 50\)"):
        Reshape((7, 7)).forward(np.zeros((2, 50)))


def test_batchnorm_running_statistics_follow_pytorch(float64):
    rng = np.random.default_rng(0)
    layer = BatchNorm(3, momentum=0.1)
    running_mean, running_var = np.zeros(3), np.ones(3)
    for _ in range(3):
        x = rng.standard_normal((5, 3, 4, 2)) * [[[[2.0]], [[0.5]], [[1.0]]]] + 3
        y = layer.forward(x, training=True)
        values = x.transpose(1, 0, 2, 3).reshape(3, -1)  # per channel, over batch and pixels
        running_mean = 0.9 * running_mean + 0.1 * values.mean(axis=1)
        running_var = 0.9 * running_var + 0.1 * values.var(axis=1, ddof=1)  # unbiased, as PyTorch
        # Normalised per channel (not per pixel): zero mean, unit variance over N*H*W values.
        np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
        np.testing.assert_allclose(y.var(axis=(0, 2, 3)), values.var(axis=1) / (values.var(axis=1) + 1e-5))
    np.testing.assert_allclose(layer.buffers["running_mean"], running_mean, rtol=1e-12)
    np.testing.assert_allclose(layer.buffers["running_var"], running_var, rtol=1e-12)

    layer.params["gamma"][...] = [1.5, 0.5, 2.0]
    layer.params["beta"][...] = [0.1, -0.2, 0.3]
    x = rng.standard_normal((2, 3, 4, 2))
    before = layer.buffers["running_mean"].copy()
    y = layer.forward(x, training=False)
    shape = (1, 3, 1, 1)
    expected = ((x - running_mean.reshape(shape)) / np.sqrt(running_var.reshape(shape) + 1e-5)
                * layer.params["gamma"].reshape(shape) + layer.params["beta"].reshape(shape))
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    np.testing.assert_array_equal(layer.buffers["running_mean"], before)  # eval mode leaves them alone


def test_batchnorm_without_affine_has_no_parameters():
    layer = BatchNorm(4, affine=False)
    assert layer.params == {} and set(layer.buffers) == {"running_mean", "running_var"}
    y = layer.forward(np.random.default_rng(1).standard_normal((8, 4)), training=True)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-6)


def test_dropout_keeps_the_expectation_and_is_the_identity_in_eval():
    backend.seed(7)
    p, x = 0.3, np.ones((200, 500), np.float32)
    y = Dropout(p).forward(x, training=True)
    dropped = np.mean(y == 0)
    assert abs(dropped - p) < 4 * np.sqrt(p * (1 - p) / x.size)
    assert abs(y.mean() - 1.0) < 4 * np.sqrt(p / (1 - p) / x.size)
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / (1 - p)], rtol=1e-6)
    assert y.dtype == np.float32
    assert Dropout(p).forward(x, training=False) is x
    backend.seed(7)
    np.testing.assert_array_equal(Dropout(p).forward(x, training=True), y)  # one seed, one mask
    with pytest.raises(ValueError, match=r"Dropout probability must be in \[0, 1\)"):
        Dropout(1.0)
