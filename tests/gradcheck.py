"""Finite-difference gradient checks along random directions (as Chainer's check_backward).

For L = <layer(x), dy> with a random upstream gradient dy (never all ones: with
dy = 1 a BatchNorm input gradient is nearly zero and any bug passes), the
directional derivative along a random direction d is estimated by central
differences, (L(x + eps d) - L(x - eps d)) / (2 eps), and compared with
<dL/dx, d> from backward. Two forward passes per direction instead of two per
element make whole convolutions cheap to check on many drawn shapes.

The relative error is measured above the resolution of the finite difference:
rounding in the sum L = sum_i y_i dy_i is up to a few ulps of sum_i |y_i dy_i|,
and the difference quotient divides that by 2 eps. A directional derivative
that is tiny by chance (a one-element bias whose dy sums to nearly zero) is
only compared down to that floor; every derivative above it must agree to
RELATIVE_TOLERANCE.
"""
import numpy as np

from tinygan import backend

EPS = 1e-6
RELATIVE_TOLERANCE = 1e-6


ROUNDING = 8 * np.finfo(np.float64).eps


def relative_error(a, b, floor=0.0):
    scale = max(abs(a), abs(b), floor)
    return abs(a - b) / scale if scale > 0 else 0.0  # both exactly zero: they agree


def check_layer_gradients(layer, x, training=True, seed=None, directions=2):
    """Check the input gradient and every parameter gradient of ``layer`` at ``x`` (float64).

    ``seed``: reseed the engine before every forward pass, so random layers
    (Dropout) draw the same mask each time. Also asserts that forward and
    backward leave their inputs untouched.
    """
    assert x.dtype == np.float64
    rng = np.random.default_rng(12345)

    def forward(inputs):
        if seed is not None:
            backend.seed(seed)
        return layer.forward(inputs, training=training)

    x_before = x.copy()
    y = forward(x)
    assert backend.as_numpy(x).tobytes() == backend.as_numpy(x_before).tobytes(), "forward modified its input"
    dy = backend.to_device(rng.standard_normal(y.shape))
    dy_before = dy.copy()
    layer.zero_grad()
    dx = layer.backward(dy)
    assert backend.as_numpy(dy).tobytes() == backend.as_numpy(dy_before).tobytes(), "backward modified dout"
    assert dx.shape == x.shape and dx.dtype == np.float64
    grads = {name: grad.copy() for name, grad in layer.grads.items()}
    assert set(grads) == set(layer.params)

    def objective(inputs):
        terms = forward(inputs) * dy
        return float(terms.sum()), float(abs(terms).sum())

    def check(name, analytic_grad, perturb):
        for _ in range(directions):
            direction = backend.to_device(rng.standard_normal(analytic_grad.shape))
            (plus, plus_scale), (minus, minus_scale) = perturb(EPS * direction), perturb(-EPS * direction)
            numeric = (plus - minus) / (2 * EPS)
            analytic = float((analytic_grad * direction).sum())
            resolution = ROUNDING * max(plus_scale, minus_scale) / (2 * EPS)
            error = relative_error(numeric, analytic, floor=resolution / RELATIVE_TOLERANCE)
            assert error < RELATIVE_TOLERANCE, (
                f"{type(layer).__name__} gradient of {name}: numeric {numeric!r} vs backward {analytic!r} "
                f"(relative error {error:.2e})")

    check("input", dx, lambda step: objective(x + step))
    for name, param in layer.params.items():
        assert grads[name].shape == param.shape
        original = param.copy()

        def perturbed(step, param=param, original=original):
            param[...] = original + step
            try:
                return objective(x)
            finally:
                param[...] = original

        check(name, grads[name], perturbed)
