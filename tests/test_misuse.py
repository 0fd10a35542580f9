"""The library misused as people who write their own networks do: every mistake is one clear error, never a
silent wrong number or a wall of text from inside a kernel."""
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygan import (BatchNorm, BCEWithLogits, Conv2D, ConvTranspose2D, Dense, Dropout, Flatten, LeakyReLU, ReLU,
                     Reshape, Sequential, Sigmoid, Tanh, UpSample2D)


def every_layer():
    """(layer, a valid float32 input) for each layer type."""
    return [(Dense(3, 2), (4, 3)), (Conv2D(2, 3, 3, padding=1), (2, 2, 5, 5)),
            (ConvTranspose2D(2, 3, 3, stride=2, padding=1, output_padding=1), (2, 2, 4, 4)),
            (BatchNorm(2), (4, 2)), (BatchNorm(2), (2, 2, 3, 3)), (LeakyReLU(0.2), (4, 3)), (ReLU(), (4, 3)),
            (Tanh(), (4, 3)), (Sigmoid(), (4, 3)), (Dropout(0.3), (4, 3)), (Flatten(), (2, 2, 3, 3)),
            (Reshape((3, 2)), (4, 6)), (UpSample2D(2), (2, 2, 3, 3))]


LAYERS = every_layer()
IDS = [f"{type(layer).__name__}{shape}" for layer, shape in LAYERS]
BAD_DTYPES = ["uint8", "int32", "int64", "bool", "float16", "complex64", "complex128"]


@pytest.mark.parametrize("layer, shape", LAYERS, ids=IDS)
@given(dtype=st.sampled_from(BAD_DTYPES))
def test_every_layer_refuses_non_float_input_in_one_line(layer, shape, dtype):
    x = np.ones(shape).astype(dtype)
    with pytest.raises(TypeError, match=rf"^{type(layer).__name__} expects float32 or float64 input, got {dtype}"):
        layer.forward(x)


@pytest.mark.parametrize("layer, shape", [(layer, shape) for layer, shape in LAYERS if layer.params],
                         ids=[i for i, (layer, _) in zip(IDS, LAYERS) if layer.params])
def test_layers_with_parameters_refuse_another_float_dtype(layer, shape):
    with pytest.raises(TypeError, match=r"has float32 parameters but got float64 input: convert"):
        layer.forward(np.ones(shape, np.float64))


@pytest.mark.parametrize("layer, shape", LAYERS, ids=IDS)
def test_every_layer_refuses_an_empty_batch_the_same_way(layer, shape):
    with pytest.raises(ValueError, match=rf"^{type(layer).__name__} got an empty batch \(shape \(0,"):
        layer.forward(np.ones((0,) + shape[1:], np.float32))


@pytest.mark.parametrize("layer, shape", LAYERS, ids=IDS)
def test_backward_needs_its_own_forward_and_the_output_shape(layer, shape):
    name = type(layer).__name__
    fresh = type(layer).__new__(type(layer))
    fresh.__dict__.update({k: v for k, v in layer.__dict__.items() if k != "_output_shape"})
    with pytest.raises(RuntimeError, match=rf"^{name}.backward needs a forward first"):
        fresh.backward(np.ones(shape, np.float32))
    y = layer.forward(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    wrong = np.ones((y.shape[0] + 1,) + y.shape[1:], np.float32)
    with pytest.raises(ValueError, match=rf"^{name}.backward got a gradient of shape .* returned shape "
                                         + re.escape(str(tuple(y.shape)))):
        layer.backward(wrong)
    transposed = np.ones(y.shape[::-1], np.float32)   # same size, other shape: LeakyReLU took (2, 6) for (4, 3)
    if transposed.shape != y.shape:
        with pytest.raises(ValueError, match="got a gradient of shape"):
            layer.backward(transposed)
    layer.backward(np.ones_like(y))
    with pytest.raises(RuntimeError, match="each forward allows one backward"):   # a second backward
        layer.backward(np.ones_like(y))


@pytest.mark.parametrize("build, message", [
    (lambda: Dense(0, 3), "Dense needs in_features to be a positive int, got 0"),
    (lambda: Dense(3, -1), "Dense needs out_features to be a positive int"),
    (lambda: Dense(2.5, 3), "Dense needs in_features to be a positive int, got 2.5"),
    (lambda: BatchNorm(0), "BatchNorm needs num_features to be a positive int, got 0"),
    (lambda: BatchNorm(3, momentum=2), "BatchNorm needs 0 <= momentum <= 1"),
    (lambda: LeakyReLU(float("nan")), "LeakyReLU needs a finite negative_slope, got nan"),
    (lambda: LeakyReLU("0.2"), "LeakyReLU needs a finite negative_slope"),
    (lambda: Conv2D(0, 3, 3), "Conv2D needs in_channels to be a positive int"),
    (lambda: ConvTranspose2D(3, 0, 3), "ConvTranspose2D needs out_channels to be a positive int"),
    (lambda: Dropout(float("nan")), "Dropout probability must be in"),
])
def test_impossible_layers_are_refused_when_built(build, message):
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize("value, message", [
    (np.zeros((3, 2), np.complex64), "holds complex64 values"),
    (np.full((3, 2), np.nan, np.float32), "holds NaN or infinite values"),
    (np.full((3, 2), np.inf, np.float32), "holds NaN or infinite values"),
    (np.array([["a", "b"]] * 3), "holds <U1 values; a model's parameters and buffers are real numbers"),
])
def test_load_state_dict_refuses_complex_and_non_finite_arrays(value, message):
    model = Sequential([Dense(3, 2)])
    state = model.state_dict()
    state["0.W"] = value
    with pytest.raises(ValueError, match=rf"'0.W' {message}"):
        model.load_state_dict(state)


def test_integer_input_never_silently_wraps():
    """What the fault report saw: uint8 through BatchNorm wrapped to 255, LeakyReLU(-3) gave 0."""
    for layer in (BatchNorm(2), LeakyReLU(0.2)):
        with pytest.raises(TypeError, match="expects float32 or float64 input, got uint8"):
            layer.forward(np.full((4, 2), 3, np.uint8))
    with pytest.raises(TypeError, match="got complex128"):
        Sigmoid().forward(np.ones((2, 2)) * 1j)   # used to drop the imaginary part


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_at_infinite_logits_is_exact_with_finite_gradients(dtype):
    loss = BCEWithLogits()
    logits = np.array([[np.inf], [-np.inf], [np.inf], [-np.inf]], dtype)
    with np.errstate(all="raise"):   # and no 0 * inf inside
        assert loss.forward(logits[:2], np.array([[1.0], [0.0]])) == 0.0   # right and certain
        np.testing.assert_array_equal(loss.backward(), np.zeros((2, 1)))
        assert loss.forward(logits, np.array([[1.0], [0.0], [0.0], [1.0]])) == np.inf   # certain and wrong
        np.testing.assert_array_equal(loss.backward(), np.array([[0], [0], [1], [-1]]) / 4)
        assert loss.forward(logits[:1], np.array([[0.9]])) == np.inf   # a soft target: still the limit
        assert np.isfinite(loss.backward()).all()
