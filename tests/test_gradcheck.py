"""The public gradient checker: it passes correct layers, names the worst element of a wrong one, and refuses
float32 instead of reporting rounding as an error."""
import numpy as np
import pytest

from tinygan import BatchNorm, Conv2D, Dense, backend
from tinygan.gradcheck import GradientCheckError, check_layer_gradients


def test_a_correct_layer_passes(float64):
    backend.seed(0)
    check_layer_gradients(Conv2D(2, 3, 3, padding=1), np.random.default_rng(0).standard_normal((2, 2, 5, 5)))


class HalfWrongDense(Dense):
    """dL/dW off in one element: the planted bug the checker must find and name."""

    def backward(self, dout):
        dx = super().backward(dout)
        if self.requires_grad:
            self.grads["W"][1, 2] *= 1.001
        return dx


class TransposedBatchNorm(BatchNorm):
    """An input gradient that forgets the mean terms: right shape, wrong values everywhere."""

    def backward(self, dout):
        super().backward(dout)
        return dout * self.params["gamma"] * self.inverse_std


def test_a_wrong_parameter_gradient_is_named_with_its_worst_element(float64):
    backend.seed(0)
    layer = HalfWrongDense(4, 3)
    with pytest.raises(GradientCheckError, match=r"HalfWrongDense gradient of parameter 'W'.*worst element "
                                                 r"\(1, 2\): numeric .*, backward "):
        check_layer_gradients(layer, np.random.default_rng(1).standard_normal((5, 4)))


def test_a_wrong_input_gradient_is_named(float64):
    backend.seed(0)
    with pytest.raises(GradientCheckError, match=r"TransposedBatchNorm gradient of the input"):
        check_layer_gradients(TransposedBatchNorm(3), np.random.default_rng(2).standard_normal((6, 3)))


class CoarseDense(Dense):
    """A right Dense whose forward rounds its output to 2^-36: a forward that rounds more than a few ulps, as
    Winograd's convolution does."""

    def forward(self, x, training=True):
        return np.round(super().forward(x, training) * 2.0**36) / 2.0**36


def test_a_coarsely_rounding_linear_layer_is_checked_with_a_larger_step_which_still_finds_bugs(float64):
    x = np.random.default_rng(1).standard_normal((5, 4))
    backend.seed(0)
    with pytest.raises(GradientCheckError, match="CoarseDense"):   # the rounding divided by 2e-6
        check_layer_gradients(CoarseDense(4, 3), x)
    backend.seed(0)
    check_layer_gradients(CoarseDense(4, 3), x, eps=1e-3)
    backend.seed(0)
    with pytest.raises(GradientCheckError, match=r"HalfWrongDense gradient of parameter 'W'.*\(1, 2\)"):
        check_layer_gradients(HalfWrongDense(4, 3), x, eps=1e-3)


def test_float32_layers_and_inputs_are_refused_not_misreported():
    layer = Dense(4, 3)   # float32, the default
    with pytest.raises(ValueError, match=r"Dense's parameter 'W' is float32: build the layer inside "
                                         r"`with tinygan.backend.default_dtype\(numpy.float64\):`"):
        check_layer_gradients(layer, np.zeros((2, 4)))
    with backend.default_dtype(np.float64):
        layer = Dense(4, 3)
    with pytest.raises(ValueError, match="needs float64 input, got float32"):
        check_layer_gradients(layer, np.zeros((2, 4), np.float32))
