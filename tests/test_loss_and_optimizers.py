"""BCEWithLogits at extreme logits and its gradient; Adam and SGD against their closed forms."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygan import SGD, Adam, BCEWithLogits, Dense, SoftmaxCrossEntropy, backend
from gradcheck import EPS, RELATIVE_TOLERANCE, ROUNDING, relative_error


def naive_bce(logits, targets):
    """The textbook formula: fine for a value check at moderate logits."""
    s = 1 / (1 + np.exp(-logits))
    return np.mean(-targets * np.log(s) - (1 - targets) * np.log(1 - s))


def logaddexp_bce(logits, targets):
    """-t log s(x) - (1 - t) log s(-x) with log s(x) = -log(1 + e^-x) from numpy's logaddexp:
    an independent formulation accurate enough for finite differences (log(1 - s) is not)."""
    return np.mean(targets * np.logaddexp(0, -logits) + (1 - targets) * np.logaddexp(0, logits))


@given(n=st.integers(1, 20), smooth=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_bce_value_and_gradient(path, n, smooth, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, 1)) * 3
    targets = rng.uniform(0, 1, (n, 1)) if smooth else rng.integers(0, 2, (n, 1)).astype(float)
    loss = BCEWithLogits()
    value = loss.forward(backend.to_device(logits), backend.to_device(targets))
    assert isinstance(value, float)
    assert value == pytest.approx(naive_bce(logits, targets), rel=1e-9)
    assert value == pytest.approx(logaddexp_bce(logits, targets), rel=1e-13)
    gradient = backend.as_numpy(loss.backward())
    direction = rng.standard_normal(logits.shape)
    numeric = (logaddexp_bce(logits + EPS * direction, targets)
               - logaddexp_bce(logits - EPS * direction, targets)) / (2 * EPS)
    # The difference quotient resolves no finer than the rounding of the loss over 2 eps (gradcheck.py),
    # and the loss's terms are as large as the logits: a derivative that is tiny by chance (5.8e-5 for
    # seed 88, n = 20, smoothed targets) is compared down to that floor, not below it.
    floor = ROUNDING * (np.abs(logits).max() + 1) / (2 * EPS) / RELATIVE_TOLERANCE
    assert relative_error(numeric, float((gradient * direction).sum()), floor) < RELATIVE_TOLERANCE


def test_bce_is_finite_and_exact_at_extreme_logits(path):
    loss = BCEWithLogits()
    logits = backend.to_device(np.array([-1000.0, 1000.0, 1000.0, -1000.0, 0.0]))
    targets = backend.to_device(np.array([1.0, 0.0, 1.0, 0.0, 1.0]))
    value = loss.forward(logits, targets)
    assert value == pytest.approx((1000 + 1000 + 0 + 0 + np.log(2)) / 5, rel=1e-15)
    gradient = backend.as_numpy(loss.backward())
    np.testing.assert_allclose(gradient, np.array([-1, 1, 0, 0, -0.5]) / 5, rtol=1e-15)
    # float32, as in training: still finite, still the right gradient
    value32 = loss.forward(logits.astype(np.float32), 1.0)
    assert np.isfinite(value32)
    assert backend.as_numpy(loss.backward()).dtype == np.float32


def test_bce_rejects_mismatched_targets():
    with pytest.raises(ValueError, match=r"targets of shape \(3,\) do not match logits of shape \(4, 1\)"):
        BCEWithLogits().forward(np.zeros((4, 1)), np.zeros(3))


def layer_with_gradient(seed):
    backend.seed(seed)
    layer = Dense(3, 2)
    rng = np.random.default_rng(seed)
    return layer, rng


def test_one_adam_step_is_the_closed_form(path, float64):
    """At t = 1, m_hat = g and v_hat = g^2, so the step is lr * g / (|g| + eps)."""
    layer, rng = layer_with_gradient(0)
    W0, b0 = backend.as_numpy(layer.params["W"]).copy(), backend.as_numpy(layer.params["b"]).copy()
    g_W, g_b = rng.standard_normal(W0.shape), rng.standard_normal(b0.shape)
    layer.grads["W"][...] = backend.to_device(g_W)
    layer.grads["b"][...] = backend.to_device(g_b)
    optimizer = Adam([(layer, "W"), (layer, "b")], lr=1e-2, betas=(0.5, 0.999), eps=1e-8)
    optimizer.step()
    np.testing.assert_allclose(backend.as_numpy(layer.params["W"]), W0 - 1e-2 * g_W / (np.abs(g_W) + 1e-8),
                               rtol=1e-13)
    np.testing.assert_allclose(backend.as_numpy(layer.params["b"]), b0 - 1e-2 * g_b / (np.abs(g_b) + 1e-8),
                               rtol=1e-13)


def test_adam_follows_pytorch_over_several_steps(path, float64):
    layer, rng = layer_with_gradient(1)
    W = backend.as_numpy(layer.params["W"]).copy()
    m, v = np.zeros_like(W), np.zeros_like(W)
    lr, (beta1, beta2), eps = 2e-4, (0.5, 0.999), 1e-8
    optimizer = Adam([(layer, "W")])
    for t in range(1, 6):
        g = rng.standard_normal(W.shape)
        optimizer.zero_grad()
        assert not backend.as_numpy(layer.grads["W"]).any()
        layer.grads["W"] += backend.to_device(g)
        optimizer.step()
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        W = W - lr * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps)
    np.testing.assert_allclose(backend.as_numpy(layer.params["W"]), W, rtol=1e-12)


def test_sgd_with_and_without_momentum(path, float64):
    for momentum in (0.0, 0.9):
        layer, rng = layer_with_gradient(2)
        W = backend.as_numpy(layer.params["W"]).copy()
        velocity = None
        optimizer = SGD([(layer, "W")], lr=0.1, momentum=momentum)
        for _ in range(3):
            g = rng.standard_normal(W.shape)
            optimizer.zero_grad()
            layer.grads["W"] += backend.to_device(g)
            optimizer.step()
            velocity = g if velocity is None else momentum * velocity + g
            W = W - 0.1 * (velocity if momentum else g)
        np.testing.assert_allclose(backend.as_numpy(layer.params["W"]), W, rtol=1e-12)


def test_optimizer_state_round_trips(float64):
    layer, rng = layer_with_gradient(3)
    optimizer = Adam([(layer, "W")])
    layer.grads["W"][...] = rng.standard_normal(layer.params["W"].shape)
    optimizer.step()
    state = optimizer.state_dict()
    twin_layer, _ = layer_with_gradient(3)
    twin = Adam([(twin_layer, "W")])
    twin_layer.params["W"][...] = layer.params["W"]
    twin.load_state_dict(state)
    g = rng.standard_normal(layer.params["W"].shape)
    for opt, lay in ((optimizer, layer), (twin, twin_layer)):
        lay.grads["W"][...] = g
        opt.step()
    np.testing.assert_array_equal(layer.params["W"], twin_layer.params["W"])
    assert twin.steps == 2


def test_optimizer_without_parameters_is_an_error():
    with pytest.raises(ValueError, match="Adam got no parameters"):
        Adam([])


def naive_cross_entropy(logits, labels):
    """The textbook formula, softmax then log: fine at moderate logits."""
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return -np.mean(np.log(p[np.arange(len(labels)), labels]))


@given(n=st.integers(1, 20), classes=st.integers(2, 12), seed=st.integers(0, 2**32 - 1))
def test_softmax_cross_entropy_value_and_gradient(path, n, classes, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, classes)) * 3
    labels = rng.integers(0, classes, n)
    loss = SoftmaxCrossEntropy()
    value = loss.forward(backend.to_device(logits), backend.to_device(labels))
    assert isinstance(value, float)
    assert value == pytest.approx(naive_cross_entropy(logits, labels), rel=1e-12)
    gradient = backend.as_numpy(loss.backward())
    for _ in range(2):
        direction = rng.standard_normal(logits.shape)
        plus, minus = (naive_cross_entropy(logits + step * direction, labels) for step in (EPS, -EPS))
        numeric = (plus - minus) / (2 * EPS)
        # The difference quotient resolves no finer than the rounding of the loss over 2 eps (gradcheck.py),
        # and the loss is a difference of terms as large as the logits (log-sum-exp minus the true logit).
        floor = ROUNDING * (np.abs(logits).max() + 1) / (2 * EPS) / RELATIVE_TOLERANCE
        assert relative_error(numeric, float((gradient * direction).sum()), floor) < RELATIVE_TOLERANCE
    np.testing.assert_allclose(gradient.sum(axis=1), 0, atol=1e-15)   # softmax rows sum to one


def test_softmax_cross_entropy_is_finite_and_exact_at_extreme_logits(path):
    loss = SoftmaxCrossEntropy()
    logits = backend.to_device(np.array([[1000.0, -1000.0, 0.0], [1000.0, -1000.0, 0.0], [5e4, 5e4, -5e4]]))
    value = loss.forward(logits, backend.to_device(np.array([0, 1, 0])))
    assert value == pytest.approx((0 + 2000 + np.log(2)) / 3, rel=1e-15)    # the naive form gives inf or nan
    np.testing.assert_allclose(backend.as_numpy(loss.backward()),
                               np.array([[0, 0, 0], [1, -1, 0], [-0.5, 0.5, 0]]) / 3, atol=1e-15)
    assert np.isfinite(loss.forward(logits.astype(np.float32), backend.to_device(np.array([2, 2, 2]))))


@pytest.mark.parametrize("logits, labels, message", [
    (np.zeros(4), np.zeros(4, dtype=int), r"logits of shape \(N, classes\)"),
    (np.zeros((4, 3)), np.zeros(3, dtype=int), r"integer labels of shape \(4,\)"),
    (np.zeros((4, 3)), np.zeros(4), r"integer labels"),
    (np.zeros((4, 3)), np.array([0, 1, 2, 3]), r"labels must lie in \[0, 2\]"),
])
def test_softmax_cross_entropy_rejects_bad_labels(logits, labels, message):
    with pytest.raises(ValueError, match=message):
        SoftmaxCrossEntropy().forward(logits, labels)
