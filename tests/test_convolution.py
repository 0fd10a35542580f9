"""Conv2D and ConvTranspose2D: direct-loop references, the adjoint identity, gradient checks."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tinygan import ConvTranspose2D, Conv2D, backend
from tinygan.layers.direct import conv2d_loops, conv_transpose2d_loops
from gradcheck import check_layer_gradients


@st.composite
def geometry(draw, transposed=False):
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    output_padding = tuple(draw(st.integers(0, s - 1)) for s in stride) if transposed else (0, 0)
    image = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    channels = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return dict(batch=draw(st.integers(1, 3)), channels=channels, image=image, kernel=kernel, stride=stride,
                padding=padding, output_padding=output_padding, bias=draw(st.booleans()),
                seed=draw(st.integers(0, 2**32 - 1)))


def conv_output(g):
    return [(size + 2 * p - k) // s + 1 for size, k, s, p in zip(g["image"], g["kernel"], g["stride"], g["padding"])]


def transposed_output(g):
    return [(size - 1) * s - 2 * p + k + op for size, s, p, k, op
            in zip(g["image"], g["stride"], g["padding"], g["kernel"], g["output_padding"])]


def make_conv(g):
    backend.seed(g["seed"])
    return Conv2D(*g["channels"], g["kernel"], g["stride"], g["padding"], bias=g["bias"])


def make_transposed(g):
    backend.seed(g["seed"])
    return ConvTranspose2D(*g["channels"], g["kernel"], g["stride"], g["padding"], g["output_padding"],
                           bias=g["bias"])


def random_input(g, rng):
    return backend.to_device(rng.standard_normal((g["batch"], g["channels"][0]) + g["image"]))


def parameters_of(layer):
    W = backend.as_numpy(layer.params["W"])
    b = backend.as_numpy(layer.params["b"]) if "b" in layer.params else np.zeros(layer.out_channels)
    if "b" in layer.params:  # a zero bias would hide a bias bug
        b = np.random.default_rng(0).standard_normal(b.shape)
        layer.params["b"][...] = backend.to_device(b)
    return W, b


@given(g=geometry())
def test_conv2d_forward_matches_direct_loops(path, float64, g):
    assume(min(conv_output(g)) >= 1)
    layer, rng = make_conv(g), np.random.default_rng(g["seed"])
    x = random_input(g, rng)
    W, b = parameters_of(layer)
    expected = conv2d_loops(backend.as_numpy(x), W, b, g["stride"], g["padding"])
    np.testing.assert_allclose(backend.as_numpy(layer.forward(x)), expected, rtol=1e-12, atol=1e-12)


@given(g=geometry(transposed=True))
def test_conv_transpose2d_forward_matches_direct_loops(path, float64, g):
    assume(min(transposed_output(g)) >= 1)
    layer, rng = make_transposed(g), np.random.default_rng(g["seed"])
    x = random_input(g, rng)
    W, b = parameters_of(layer)
    expected = conv_transpose2d_loops(backend.as_numpy(x), W, b, g["stride"], g["padding"], g["output_padding"])
    y = layer.forward(x)
    assert y.shape == expected.shape
    np.testing.assert_allclose(backend.as_numpy(y), expected, rtol=1e-12, atol=1e-12)


@given(g=geometry())
def test_conv_transpose2d_is_the_adjoint_of_conv2d(path, float64, g):
    """<conv(x), y> == <x, convT(y)> when both share one weight array and neither has a bias."""
    assume(min(conv_output(g)) >= 1)
    rng = np.random.default_rng(g["seed"])
    C_in, C_out = g["channels"]
    conv = Conv2D(C_in, C_out, g["kernel"], g["stride"], g["padding"], bias=False)
    # The transposed layer must map conv's output size back to the input size exactly.
    output_padding = [(size + 2 * p - k) % s for size, k, s, p
                      in zip(g["image"], g["kernel"], g["stride"], g["padding"])]
    transposed = ConvTranspose2D(C_out, C_in, g["kernel"], g["stride"], g["padding"], output_padding, bias=False)
    transposed.params["W"] = conv.params["W"]
    x = random_input(g, rng)
    y = backend.to_device(rng.standard_normal((g["batch"], C_out, *conv_output(g))))
    left = float((conv.forward(x) * y).sum())
    right = float((x * transposed.forward(y)).sum())
    assert left == pytest.approx(right, rel=1e-10, abs=1e-10)


@given(g=geometry())
def test_conv2d_gradients(path, float64, g):
    assume(min(conv_output(g)) >= 1)
    layer = make_conv(g)
    check_layer_gradients(layer, random_input(g, np.random.default_rng(g["seed"])))


@given(g=geometry(transposed=True))
def test_conv_transpose2d_gradients(path, float64, g):
    assume(min(transposed_output(g)) >= 1)
    layer = make_transposed(g)
    check_layer_gradients(layer, random_input(g, np.random.default_rng(g["seed"])))


def test_pytorch_shape_conventions():
    conv = Conv2D(3, 8, kernel_size=(5, 3), stride=2, padding=(2, 1))
    assert conv.params["W"].shape == (8, 3, 5, 3) and conv.params["b"].shape == (8,)
    assert conv.forward(np.zeros((2, 3, 28, 28), np.float32)).shape == (2, 8, 14, 14)
    transposed = ConvTranspose2D(128, 64, 5, stride=2, padding=2, output_padding=1, bias=False)
    assert transposed.params["W"].shape == (128, 64, 5, 5) and "b" not in transposed.params
    assert transposed.forward(np.zeros((2, 128, 7, 7), np.float32)).shape == (2, 64, 14, 14)


def test_bad_inputs_are_one_clear_error():
    conv = Conv2D(3, 8, 5)
    with pytest.raises(ValueError, match=r"\(N, C_in, H, W\) with 3 channels"):
        conv.forward(np.zeros((2, 1, 28, 28), np.float32))
    with pytest.raises(ValueError, match="smaller than its kernel"):
        conv.forward(np.zeros((2, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match="output_padding < stride"):
        ConvTranspose2D(3, 8, 5, stride=2, output_padding=2)
