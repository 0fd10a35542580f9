"""A stride-2 convolution over its image's phases: the tap tables against the strided sum they rewrite, its
float32 error, and where it is chosen. The layers that take it are tested against direct loops and central
differences with the stride-1 ones, in tests/test_winograd.py."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygan import ConvTranspose2D, Conv2D, kernels, polyphase
from tinygan.layers.direct import conv2d_loops, conv_transpose2d_loops


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


@pytest.mark.parametrize("transposed", [False, True])
def test_float32_error_is_as_documented(transposed):
    """D.3's and G.7's shapes in float32 against the float64 direct convolution: within 3e-5 of the output's
    size, as for the stride-1 layers (tests/test_winograd.py)."""
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
