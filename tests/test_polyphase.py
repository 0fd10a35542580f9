"""A stride-2 convolution over its image's phases: the tap tables against the strided sum they rewrite, the
layers that take it against direct loops and central differences, its float32 error, and where it is chosen."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygan import ConvTranspose2D, Conv2D, backend, kernels, polyphase
from tinygan.layers.direct import conv2d_loops, conv_transpose2d_loops
from gradcheck import check_layer_gradients


@given(kernel=st.integers(1, 7), padding=st.integers(0, 4), half=st.integers(1, 6), seed=st.integers(0, 999))
def test_the_phase_taps_rewrite_the_strided_correlation(kernel, padding, half, seed):
    """In 1-D: sum_k w[k] x[2 i + k - p] = sum_t w_a[t] x_a[i + t - P] over both phases a, every tap used once."""
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(2 * half), rng.standard_normal(kernel)
    tap, phase, P, R = polyphase.axis_taps(kernel, padding)
    assert len(set(zip(tap, phase))) == kernel and tap.min() >= 0
    phase_taps = np.zeros((R, 2))
    phase_taps[tap, phase] = w
    padded = np.pad(x, padding)
    for i in range((2 * half + 2 * padding - kernel) // 2 + 1):
        strided = sum(w[k] * padded[2 * i + k] for k in range(kernel))
        over_phases = sum(phase_taps[t, a] * x[a::2][i + t - P] for t in range(R) for a in range(2)
                          if 0 <= i + t - P < half)
        assert strided == pytest.approx(over_phases, abs=1e-12)


@pytest.fixture
def phases_everywhere(monkeypatch):
    """Every stride-2 layer whose geometry the phases compute takes them, whatever its kernel and channels."""
    monkeypatch.setattr(polyphase, "fits", lambda kernel_size, stride, padding, image_size, *channels:
                        polyphase.computes(kernel_size, stride, padding, image_size))
    previous = kernels.cpu_kernels()
    kernels.use_cpu_kernels("numba")
    yield
    kernels.use_cpu_kernels(previous)


# (kernel, padding, output_padding): the geometries with 3 phase taps and an output of exactly half (or, for
# the transposed convolution, twice) the input, the dcgan's first; and one that only a Conv2D has (its
# output is 2 pixels smaller than half; no output_padding makes a transposed one double)
GEOMETRIES = [(5, 2, 1), (4, 1, 0), (6, 2, 0)]
CONV2D_ONLY = [(5, 0, None)]


@st.composite
def strided_geometry(draw):
    transposed = draw(st.booleans())
    choices = GEOMETRIES if transposed else GEOMETRIES + CONV2D_ONLY
    (kernel, padding, output_padding), (kernel_w, padding_w, output_padding_w) = (
        draw(st.sampled_from(choices)), draw(st.sampled_from(choices)))
    # the smaller image's size (with no padding, a 5x5 kernel needs 6 input pixels)
    half = tuple(draw(st.integers(3 if p == 0 else 1, 4)) for p in (padding, padding_w))
    return dict(transposed=transposed, batch=draw(st.integers(1, 3)),
                channels=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
                image=half if transposed else tuple(2 * n for n in half), kernel=(kernel, kernel_w),
                padding=(padding, padding_w), output_padding=(output_padding, output_padding_w),
                bias=draw(st.booleans()), seed=draw(st.integers(0, 2**32 - 1)))


def phase_layer(g, x):
    """The geometry's Conv2D or ConvTranspose2D, run forward on x once; it must have taken the phases."""
    backend.seed(g["seed"])
    if g["transposed"]:
        layer = ConvTranspose2D(*g["channels"], g["kernel"], 2, g["padding"], g["output_padding"], bias=g["bias"])
    else:
        layer = Conv2D(*g["channels"], g["kernel"], 2, g["padding"], bias=g["bias"])
    if "b" in layer.params:   # a zero bias would hide a bias bug
        layer.params["b"][...] = np.random.default_rng(0).standard_normal(layer.out_channels)
    layer.forward(x)
    assert isinstance(layer.winograd, polyphase.PhaseWinograd)
    return layer


@given(g=strided_geometry())
def test_phase_layers_match_direct_loops(phases_everywhere, float64, g):
    x = np.random.default_rng(g["seed"]).standard_normal((g["batch"], g["channels"][0], *g["image"]))
    layer = phase_layer(g, x)
    W, b = layer.params["W"], layer.params.get("b", np.zeros(layer.out_channels))
    if g["transposed"]:
        expected = conv_transpose2d_loops(x, W, b, (2, 2), g["padding"], g["output_padding"])
    else:
        expected = conv2d_loops(x, W, b, (2, 2), g["padding"])
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)


@given(g=strided_geometry())
def test_phase_layer_gradients(phases_everywhere, float64, g):
    x = np.random.default_rng(g["seed"]).standard_normal((g["batch"], g["channels"][0], *g["image"]))
    check_layer_gradients(phase_layer(g, x), x)


@pytest.mark.parametrize("transposed", [False, True])
def test_phase_backward_skips_what_is_not_asked_for(phases_everywhere, transposed):
    layer = ConvTranspose2D(2, 3, 5, 2, 2, 1) if transposed else Conv2D(2, 3, 5, 2, 2)
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4)).astype(np.float32)
    dy = np.ones((2, 3, 8, 8) if transposed else (2, 3, 2, 2), dtype=np.float32)
    layer.requires_grad = False
    layer.forward(x)
    assert isinstance(layer.winograd, polyphase.PhaseWinograd)
    assert layer.backward(dy).shape == x.shape and not layer.grads["W"].any()
    layer.requires_grad, layer.needs_input_grad = True, False
    layer.forward(x)
    assert layer.backward(dy) is None and layer.grads["W"].any()


@pytest.mark.parametrize("transposed", [False, True])
def test_float32_error_is_as_documented(transposed):
    """D.3's and G.7's shapes in float32 against the float64 direct convolution: within 3e-5 of the output's
    size, as F(2x2, 5x5) (tinygan/winograd.py)."""
    rng = np.random.default_rng(0)
    if transposed:
        layer, x = ConvTranspose2D(128, 64, 5, 2, 2, 1, bias=False), rng.standard_normal((2, 128, 7, 7))
    else:
        layer, x = Conv2D(64, 128, 5, 2, 2, bias=False), rng.standard_normal((2, 64, 14, 14))
    y = layer.forward(x.astype(np.float32))
    assert isinstance(layer.winograd, polyphase.PhaseWinograd)
    W = layer.params["W"].astype(np.float64)
    expected = (conv_transpose2d_loops(x, W, np.zeros(64), (2, 2), (2, 2), (1, 1)) if transposed
                else conv2d_loops(x, W, np.zeros(128), (2, 2), (2, 2)))
    assert np.abs(y - expected).max() < 3e-5 * np.abs(expected).max()


def test_it_is_chosen_where_it_was_measured_faster():
    assert polyphase.fits((5, 5), (2, 2), (2, 2), (14, 14), 64, 128)      # D.3
    assert polyphase.fits((5, 5), (2, 2), (2, 2), (14, 14), 64, 128)      # G.7, as the Conv2D it is the adjoint of
    assert polyphase.fits((5, 5), (2, 2), (2, 2), (28, 28), 8, 8)
    assert not polyphase.fits((5, 5), (2, 2), (2, 2), (28, 28), 1, 64)    # D.0: too few channels
    assert not polyphase.fits((5, 5), (2, 2), (2, 2), (28, 28), 4, 8)
    assert not polyphase.fits((4, 4), (2, 2), (1, 1), (14, 14), 64, 128)  # 4x4: fewer products, im2col wins
    assert not polyphase.fits((5, 5), (1, 1), (2, 2), (14, 14), 64, 128)  # stride 1: winograd.fits' business
    assert not polyphase.computes((5, 5), (2, 2), (2, 2), (13, 13))      # odd sides have unequal phases
    assert not polyphase.computes((3, 3), (2, 2), (1, 1), (14, 14))      # 2 phase taps, not 3
    assert polyphase.computes((5, 5), (2, 2), (0, 0), (14, 14))          # no padding: none over the phases
    assert not polyphase.computes((5, 5), (2, 2), (1, 1), (14, 14))      # phase padding 1 on the left only


def test_a_transposed_convolution_takes_it_only_when_it_doubles_the_size():
    """With output_padding 0, a 5x5 stride-2 ConvTranspose2D with padding 2 maps 7x7 to 13x13, which is no
    Conv2D's phase rewriting: it keeps im2col."""
    previous = kernels.cpu_kernels()
    try:
        kernels.use_cpu_kernels("numba")
        x = np.zeros((1, 64, 7, 7), dtype=np.float32)
        doubling, not_doubling = ConvTranspose2D(64, 64, 5, 2, 2, 1), ConvTranspose2D(64, 64, 5, 2, 2, 0)
        assert doubling.forward(x).shape[2:] == (14, 14) and isinstance(doubling.winograd, polyphase.PhaseWinograd)
        assert not_doubling.forward(x).shape[2:] == (13, 13) and not_doubling.winograd is None
    finally:
        kernels.use_cpu_kernels(previous)
