"""Check a hand-written backward against central differences: the tool the tests use, and yours.

    import numpy as np
    import tinygan as tg
    from tinygan.gradcheck import check_layer_gradients

    with tg.backend.default_dtype(np.float64):        # float64: see below
        layer = tg.Dense(5, 3)
    x = np.random.default_rng(0).standard_normal((4, 5))
    check_layer_gradients(layer, x)                   # silent when right; GradientCheckError when not

For L = <layer(x), dy> with a random upstream gradient dy (never all ones:
with dy = 1 a BatchNorm input gradient is nearly zero and any bug passes),
the directional derivative along a random direction d is estimated by
central differences, (L(x + eps d) - L(x - eps d)) / (2 eps), and compared
with <dL/dx, d> from backward; the same for every parameter. Two forward
passes per direction instead of two per element (Chainer's check_backward)
make whole convolutions cheap to check. Only when a check fails are the
elements differenced one by one, to name the worst element.

Why float64: the difference quotient loses about half the digits of the
arithmetic. In float32 (7 digits) that leaves an error near 1e-3, as large as
many real bugs; in float64 it is near 1e-8, far below RELATIVE_TOLERANCE.
A layer whose parameters are float32 is therefore refused, not checked.

The relative error is measured above the resolution of the finite
difference: rounding in the sum L = sum_i y_i dy_i is up to a few ulps of
sum_i |y_i dy_i|, and the quotient divides that by 2 eps. A derivative that is
tiny by chance is only compared down to that floor.

A layer whose own forward rounds more than a few ulps needs a larger step.
Winograd's convolution rounds to about 1e-14 of its output in float64 (its
transforms scale values up to 5.25 times); divided by 2 eps = 2e-6 that is
5e-9 of the output, larger than a small directional derivative's tolerance.
A convolution is linear in its input and in its weights, so the central
difference is exact at any step there: such a layer is checked with
``eps=1e-3``, which divides its rounding by 1000 more.
"""
from __future__ import annotations

import numpy as np

from . import backend

EPS = 1e-6
RELATIVE_TOLERANCE = 1e-6
ROUNDING = 8 * np.finfo(np.float64).eps
WORST_ELEMENT_SAMPLE = 2048   # elements differenced one by one to name the worst, on failure


class GradientCheckError(AssertionError):
    """A backward that disagrees with the finite differences; the message names where and by how much."""


def relative_error(a, b, floor=0.0):
    """|a - b| / max(|a|, |b|, floor); 0 when both are exactly 0."""
    scale = max(abs(a), abs(b), floor)
    return abs(a - b) / scale if scale > 0 else 0.0


def _refuse_low_precision(layer, x):
    name = type(layer).__name__
    if str(x.dtype) != "float64":
        raise ValueError(f"check_layer_gradients needs float64 input, got {x.dtype}: finite differences in "
                         f"lower precision report errors as large as real bugs")
    for key, value in layer.params.items():
        if str(value.dtype) != "float64":
            raise ValueError(f"{name}'s parameter {key!r} is {value.dtype}: build the layer inside "
                             f"`with tinygan.backend.default_dtype(numpy.float64):` to check its gradients")


def check_layer_gradients(layer, x, training=True, seed=None, directions=2, eps=EPS):
    """Check dL/dx and every parameter gradient of ``layer`` at ``x``; raise GradientCheckError if wrong.

    ``seed``: reseed the engine before every forward pass, so that random
    layers (Dropout) draw the same mask each time. ``eps``: the finite
    difference's step (a larger one for a linear layer whose forward rounds
    more than a few ulps: the module docstring). Also checks that forward and
    backward leave their inputs untouched.
    """
    _refuse_low_precision(layer, x)
    name = type(layer).__name__
    rng = np.random.default_rng(12345)

    def forward(inputs):
        if seed is not None:
            backend.seed(seed)
        return layer.forward(inputs, training=training)

    x_before = x.copy()
    y = forward(x)
    if backend.as_numpy(x).tobytes() != backend.as_numpy(x_before).tobytes():
        raise GradientCheckError(f"{name}.forward modified its input")
    dy = backend.to_device(rng.standard_normal(y.shape))
    dy_before = dy.copy()
    layer.zero_grad()
    dx = layer.backward(dy)
    if backend.as_numpy(dy).tobytes() != backend.as_numpy(dy_before).tobytes():
        raise GradientCheckError(f"{name}.backward modified dout")
    if dx is None or dx.shape != x.shape or dx.dtype != np.float64:
        raise GradientCheckError(f"{name}.backward returned {None if dx is None else (dx.shape, dx.dtype)}, "
                                 f"expected float64 of shape {x.shape}")
    grads = {key: grad.copy() for key, grad in layer.grads.items()}
    if set(grads) != set(layer.params):
        raise GradientCheckError(f"{name}.grads has keys {sorted(grads)}, its params {sorted(layer.params)}")

    def objective(inputs):
        terms = forward(inputs) * dy
        return float(terms.sum()), float(abs(terms).sum())

    def check(what, analytic_grad, perturb):
        for _ in range(directions):
            direction = backend.to_device(rng.standard_normal(analytic_grad.shape))
            (plus, plus_scale), (minus, minus_scale) = perturb(eps * direction), perturb(-eps * direction)
            numeric = (plus - minus) / (2 * eps)
            analytic = float((analytic_grad * direction).sum())
            resolution = ROUNDING * max(plus_scale, minus_scale) / (2 * eps)
            error = relative_error(numeric, analytic, floor=resolution / RELATIVE_TOLERANCE)
            if error >= RELATIVE_TOLERANCE:
                raise GradientCheckError(
                    f"{name} gradient of {what}: along a random direction, numeric {numeric!r} vs backward "
                    f"{analytic!r} (relative error {error:.2e}); {_worst_element(analytic_grad, perturb, eps)}")

    check("the input", dx, lambda step: objective(x + step))
    for key, param in layer.params.items():
        if grads[key].shape != param.shape:
            raise GradientCheckError(f"{name}.grads[{key!r}] has shape {grads[key].shape}, the parameter "
                                     f"{param.shape}")
        original = param.copy()

        def perturbed(step, param=param, original=original):
            param[...] = original + step
            try:
                return objective(x)
            finally:
                param[...] = original

        check(f"parameter {key!r}", grads[key], perturbed)


def _worst_element(analytic_grad, perturb, eps=EPS):
    """Difference the elements one by one (a sample of them for large tensors) and name the worst."""
    analytic = backend.as_numpy(analytic_grad)
    count = analytic.size
    rng = np.random.default_rng(0)
    flat_indices = (np.arange(count) if count <= WORST_ELEMENT_SAMPLE
                    else rng.choice(count, WORST_ELEMENT_SAMPLE, replace=False))
    worst = None
    for flat in flat_indices:
        unit = np.zeros(count)
        unit[flat] = eps
        step = backend.to_device(unit.reshape(analytic.shape))
        numeric = (perturb(step)[0] - perturb(-step)[0]) / (2 * eps)
        gap = abs(numeric - analytic.flat[flat])
        if worst is None or gap > worst[0]:
            worst = (gap, flat, numeric)
    gap, flat, numeric = worst
    index = np.unravel_index(flat, analytic.shape)
    sampled = "" if count <= WORST_ELEMENT_SAMPLE else f" (of {WORST_ELEMENT_SAMPLE} sampled elements)"
    return (f"worst element{sampled} {tuple(int(i) for i in index)}: numeric {numeric!r}, "
            f"backward {float(analytic.flat[flat])!r}")


def check_loss_gradient(loss, logits, targets, directions=2):
    """Check ``loss.backward()`` against central differences of ``loss.forward(logits, targets)``.

    The loss is a scalar of the logits, so the directional derivative along a
    random d is (L(x + eps d) - L(x - eps d)) / (2 eps), compared with
    <backward(), d>; raises GradientCheckError naming the worst element.
    """
    name = type(loss).__name__
    if str(logits.dtype) != "float64":
        raise ValueError(f"check_loss_gradient needs float64 logits, got {logits.dtype}: finite differences in "
                         f"lower precision report errors as large as real bugs")
    rng = np.random.default_rng(12345)
    loss.forward(logits, targets)
    gradient = loss.backward()
    if gradient is None or tuple(gradient.shape) != tuple(logits.shape):
        raise GradientCheckError(f"{name}.backward returned {None if gradient is None else gradient.shape}, "
                                 f"expected the logits' shape {tuple(logits.shape)}")

    def perturb(step):
        value = loss.forward(logits + step, targets)
        # The loss is a mean of terms as large as the logits: its rounding is a few ulps of that.
        return value, float(abs(logits).mean()) + abs(value) + 1.0

    for _ in range(directions):
        direction = backend.to_device(rng.standard_normal(logits.shape))
        (plus, scale), (minus, _) = perturb(EPS * direction), perturb(-EPS * direction)
        numeric = (plus - minus) / (2 * EPS)
        analytic = float((gradient * direction).sum())
        resolution = ROUNDING * scale / (2 * EPS)
        error = relative_error(numeric, analytic, floor=resolution / RELATIVE_TOLERANCE)
        if error >= RELATIVE_TOLERANCE:
            raise GradientCheckError(
                f"{name} gradient of the logits: along a random direction, numeric {numeric!r} vs backward "
                f"{analytic!r} (relative error {error:.2e}); {_worst_element(gradient, perturb)}")
