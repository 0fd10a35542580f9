"""The GAN metrics against known answers: closed forms, identical and disjoint sets, unbiasedness."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygan import metrics


def gaussian(rng, n, mean, covariance):
    return rng.multivariate_normal(mean, covariance, size=n)


def random_covariance(rng, d, rank=None):
    factor = rng.standard_normal((d, rank or d))
    return factor @ factor.T / d


def test_fid_of_a_set_against_itself_is_zero():
    features = np.random.default_rng(0).standard_normal((2000, 16))
    assert metrics.fid(features, features) == pytest.approx(0, abs=1e-9)


@given(d=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_frechet_distance_equals_the_closed_form(d, seed):
    """For commuting covariances (a shared eigenbasis) Tr((S1 S2)^1/2) = sum sqrt(l1_i l2_i)."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((d, d)))
    l1, l2 = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    sigma1, sigma2 = (basis * l1) @ basis.T, (basis * l2) @ basis.T
    closed = ((mu1 - mu2) ** 2).sum() + (l1 + l2 - 2 * np.sqrt(l1 * l2)).sum()
    assert metrics.frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(closed, rel=1e-9, abs=1e-9)


def test_frechet_distance_of_one_dimensional_gaussians():
    # (m1 - m2)^2 + (s1 - s2)^2 for N(m1, s1^2) and N(m2, s2^2)
    value = metrics.frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[9.0]]))
    assert value == pytest.approx(9 + 1, rel=1e-12)


def test_fid_between_sampled_gaussians_approaches_the_closed_form():
    rng = np.random.default_rng(1)
    d = 8
    sigma1, sigma2 = random_covariance(rng, d), random_covariance(rng, d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    root1 = metrics._symmetric_sqrt(sigma1)
    exact = metrics.frechet_distance(mu1, sigma1, mu2, sigma2)
    # an independent route to the trace: eigenvalues of the non-symmetric product itself
    trace_sqrt = np.sqrt(np.linalg.eigvals(sigma1 @ sigma2).real.clip(0)).sum()
    assert exact == pytest.approx(((mu1 - mu2) ** 2).sum() + np.trace(sigma1 + sigma2) - 2 * trace_sqrt, rel=1e-8)
    assert np.allclose(root1 @ root1, sigma1)
    sampled = metrics.fid(gaussian(rng, 200_000, mu1, sigma1), gaussian(rng, 200_000, mu2, sigma2))
    assert sampled == pytest.approx(exact, rel=0.02)


def test_frechet_distance_stays_real_and_finite_for_singular_covariances():
    rng = np.random.default_rng(2)
    d = 64
    sigma1, sigma2 = random_covariance(rng, d, rank=5), random_covariance(rng, d, rank=3)   # rank-deficient
    value = metrics.frechet_distance(np.zeros(d), sigma1, np.zeros(d), sigma2)
    assert isinstance(value, float) and np.isfinite(value) and value >= 0
    # fewer samples than dimensions: a singular sample covariance, still a real, finite FID
    features = rng.standard_normal((40, d))
    assert np.isfinite(metrics.fid(features, features + 1e-3))


def test_kid_is_unbiased_on_two_samples_of_one_distribution():
    """The mean over many independent pairs of samples is 0 within its standard error (a biased MMD is > 0)."""
    rng = np.random.default_rng(3)
    estimates = [metrics._polynomial_mmd2(rng.standard_normal((50, 4)), rng.standard_normal((50, 4)))
                 for _ in range(2000)]
    standard_error = np.std(estimates) / np.sqrt(len(estimates))
    assert abs(np.mean(estimates)) < 3 * standard_error
    # the biased estimate (diagonals kept) sits clearly above 0 on the same kind of pairs
    x, y = rng.standard_normal((50, 4)), rng.standard_normal((50, 4))
    biased = ((x @ x.T / 4 + 1) ** 3).mean() + ((y @ y.T / 4 + 1) ** 3).mean() - 2 * ((x @ y.T / 4 + 1) ** 3).mean()
    assert biased > metrics._polynomial_mmd2(x, y) + 10 * standard_error


@pytest.mark.parametrize("whole_matrix", [True, False])
def test_kid_is_the_mean_of_each_subsets_mmd(whole_matrix, monkeypatch):
    """The shared-kernel computation gives what the plain definition gives: one MMD^2 per drawn subset."""
    if not whole_matrix:
        monkeypatch.setattr(metrics, "CHUNK_ELEMENTS", 10)   # every block computed subset by subset
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((300, 5)), rng.standard_normal((120, 5)) + 0.2
    draws = metrics.kid_draws(len(a), len(b), subsets=7, subset_size=50, seed=2)
    plain = [metrics._polynomial_mmd2(a[rows_a], b[rows_b]) for rows_a, rows_b in draws]
    expected = (np.mean(plain), np.std(plain))
    np.testing.assert_allclose(metrics.kid(a, b, subsets=7, subset_size=50, seed=2), expected, rtol=1e-12)
    within_a = metrics.kid_within(a, [rows_a for rows_a, _ in draws])
    np.testing.assert_allclose(metrics.kid(a, b, subsets=7, subset_size=50, seed=2, within_a=within_a), expected,
                               rtol=1e-12)


def test_kid_separates_different_distributions():
    rng = np.random.default_rng(4)
    same, same_std = metrics.kid(rng.standard_normal((3000, 8)), rng.standard_normal((3000, 8)))
    shifted, _ = metrics.kid(rng.standard_normal((3000, 8)), rng.standard_normal((3000, 8)) + 0.5)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 0.05 > abs(same)


def test_precision_and_recall_of_identical_and_disjoint_sets():
    rng = np.random.default_rng(5)
    real = rng.standard_normal((1500, 8))
    assert metrics.precision_recall(real, real.copy()) == (1.0, 1.0)
    precision, recall = metrics.precision_recall(real, rng.standard_normal((1500, 8)))
    assert precision > 0.9 and recall > 0.9            # another sample of the same distribution
    assert metrics.precision_recall(real, real + 100.0) == (0.0, 0.0)


def test_precision_and_recall_see_mode_collapse():
    """Generated points from one corner of the real cloud: realistic (high precision), no variety (low recall)."""
    rng = np.random.default_rng(6)
    real = rng.standard_normal((2000, 4))
    collapsed = real[real[:, 0] > 1.0][:300] + 0.01 * rng.standard_normal((300, 4))
    precision, recall = metrics.precision_recall(real, collapsed)
    assert precision > 0.9 and recall < 0.3


def test_kth_neighbour_radii_against_a_brute_force_loop():
    rng = np.random.default_rng(7)
    points = rng.standard_normal((60, 3))
    for k in (1, 3):
        expected = [np.sort([np.linalg.norm(p - q) for j, q in enumerate(points) if j != i])[k - 1]
                    for i, p in enumerate(points)]
        np.testing.assert_allclose(metrics.kth_neighbour_radii(points, k), expected, rtol=1e-9)


def test_class_statistics():
    one_class = np.tile(np.eye(10)[7] * 0.95 + 0.005, (100, 1))
    stats = metrics.class_statistics(one_class)
    assert stats["class_entropy_bits"] == 0.0 and stats["rarest_class_share"] == 0.0
    assert stats["class_histogram"][7] == 1.0 and stats["confidence"] == 1.0
    even = np.tile(np.eye(10) * 0.5 + 0.05, (30, 1))
    stats = metrics.class_statistics(even)
    assert stats["class_entropy_bits"] == pytest.approx(np.log2(10))
    assert stats["rarest_class_share"] == pytest.approx(0.1) and stats["confidence"] == 0.0


def test_nearest_distances_with_and_without_self_exclusion():
    rng = np.random.default_rng(8)
    references = rng.standard_normal((300, 20))
    queries = references[:50]
    assert np.allclose(metrics.nearest_distances(queries, references), 0, atol=1e-2)   # float32 rounding
    excluded = metrics.nearest_distances(queries, references, exclude=np.arange(50))
    expected = [min(np.linalg.norm(q - r) for j, r in enumerate(references) if j != i) for i, q in enumerate(queries)]
    np.testing.assert_allclose(excluded, expected, rtol=1e-4)


def test_the_nearest_neighbour_classifier_takes_the_closest_references_label():
    from tinygan.metrics import nearest_neighbour_labels
    rng = np.random.default_rng(0)
    references = rng.standard_normal((300, 20))
    labels = rng.integers(0, 10, 300)
    queries = references[[5, 17, 299]] + 0.01 * rng.standard_normal((3, 20))
    np.testing.assert_array_equal(nearest_neighbour_labels(queries, references, labels), labels[[5, 17, 299]])
    far = rng.standard_normal((50, 20)) * 3
    np.testing.assert_array_equal(nearest_neighbour_labels(far, references, labels),
                                  labels[np.argmin(((far[:, None] - references[None]) ** 2).sum(-1), axis=1)])
