"""How close generated images are to real ones: the math, on feature vectors and class probabilities.

Everything here takes NumPy arrays and computes in float64; evaluation.py
feeds it the classifier's features (classifier.py) of real and generated images.

* FID (Heusel et al., 2017): fit a Gaussian to each feature set and take the
  Frechet distance between them,
      FID = |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)).
  0 for identical sets; biased upwards at small n, so compare only at equal n.
* KID (Binkowski et al., 2018): the squared maximum mean discrepancy with the
  kernel k(x, y) = (x.y / d + 1)^3, estimated without bias on random subsets;
  near 0 (and sometimes below) for two samples of one distribution.
* Precision and recall (Kynkaanniemi et al., 2019): the share of generated
  images that fall inside the real images' manifold, and of real images inside
  the generated manifold; each manifold is the union of balls around its
  points reaching to their k-th nearest neighbour (k = 3).
* The predicted classes: their histogram, its entropy, the rarest class's
  share, and how confident the classifier is (mode collapse and blurry,
  ambiguous digits both show here).
* Nearest-neighbour distances in pixel space, for memorisation.
"""
from __future__ import annotations

import numpy as np

K_NEAREST = 3
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000
CONFIDENT = 0.9
CHUNK_ELEMENTS = 2**24   # entries of a distance matrix computed at once (128 MB in float64)


def _as_float64(features, name="features"):
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"{name} must be a (n, d) array with n >= 2, got shape {features.shape}")
    return features


def feature_statistics(features):
    """(mean (d,), covariance (d, d)) in float64, the covariance with the unbiased 1 / (n - 1)."""
    features = _as_float64(features)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _symmetric_sqrt(matrix):
    """The PSD square root of a symmetric matrix; rounding's tiny negative eigenvalues are clipped to 0."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """|mu1 - mu2|^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr((sigma1 sigma2)^(1/2)).

    sigma1 sigma2 is not symmetric, and a general matrix square root of it
    (scipy's sqrtm) returns complex parts when the covariances are nearly
    singular. Its eigenvalues are those of the symmetric PSD matrix
    M = sigma1^(1/2) sigma2 sigma1^(1/2) (similar matrices), so
        Tr((sigma1 sigma2)^(1/2)) = sum_i sqrt(lambda_i(M)),
    computed with eigvalsh: real and finite for any PSD input.
    """
    mu1, mu2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    sigma1, sigma2 = np.asarray(sigma1, dtype=np.float64), np.asarray(sigma2, dtype=np.float64)
    root1 = _symmetric_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    distance = float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)
    return max(distance, 0.0)   # rounding can leave -1e-12 for identical sets


def fid(features_a, features_b) -> float:
    return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))


def _polynomial_kernel(a, b):
    """k(a_i, b_j) = (a_i . b_j / d + 1)^3 for every pair of rows."""
    k = a @ b.T
    k /= a.shape[1]
    k += 1
    return k * k * k   # not k ** 3: NumPy's pow is three times slower than two products


def _polynomial_mmd2(x, y):
    """Unbiased MMD^2 of two equal-size samples with k(a, b) = (a.b / d + 1)^3.

    mean of k over the distinct pairs within x, plus the same within y, minus
    twice the mean over all pairs across: the diagonals k(x_i, x_i) are left
    out, which is what makes the estimate unbiased. (kid computes the same,
    subset by subset, sharing what the subsets share.)
    """
    m = len(x)
    k_xx, k_yy, k_xy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.mean())


def kid_draws(n_a, n_b, subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE, seed=0):
    """[(rows of a, rows of b)] for each of KID's random subsets, drawn in turn from one seeded generator:
    the same draws for any two sets of these sizes, so the real set's part can be computed once."""
    size = min(subset_size, n_a, n_b)
    rng = np.random.default_rng(seed)
    return [(rng.choice(n_a, size, replace=False), rng.choice(n_b, size, replace=False)) for _ in range(subsets)]


def _block_sums(a, b, row_pairs):
    """For each pair of row sets, the sum of k over the block a[rows_a] x b[rows_b]. When the whole
    kernel matrix fits in CHUNK_ELEMENTS, it is computed once (the subsets overlap) and each block summed
    as pick_a @ K @ pick_b with 0/1 row pickers; else block by block."""
    if len(a) * len(b) > CHUNK_ELEMENTS:
        return np.array([_polynomial_kernel(a[rows_a], b[rows_b]).sum() for rows_a, rows_b in row_pairs])
    pick_a, pick_b = np.zeros((len(row_pairs), len(a))), np.zeros((len(row_pairs), len(b)))
    for index, (rows_a, rows_b) in enumerate(row_pairs):
        pick_a[index, rows_a] = 1
        pick_b[index, rows_b] = 1
    return ((pick_a @ _polynomial_kernel(a, b)) * pick_b).sum(axis=1)


def kid_within(x, subsets_rows):
    """For each subset of x's rows, the mean of k over its distinct pairs (the first term of the MMD^2)."""
    m, d = len(subsets_rows[0]), x.shape[1]
    on_diagonal = (_squared_norms(x) / d + 1) ** 3    # k(x_i, x_i), left out
    sums = _block_sums(x, x, [(rows, rows) for rows in subsets_rows])
    return (sums - np.array([on_diagonal[rows].sum() for rows in subsets_rows])) / (m * (m - 1))


def kid(features_a, features_b, subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE, seed=0, within_a=None):
    """(mean, standard deviation) of the unbiased MMD^2 over ``subsets`` random subsets of each set.

    ``within_a``: kid_within(a, ...) for these draws, when a (the real images' features) is measured
    against many generated sets: it is a third of the work."""
    a, b = _as_float64(features_a), _as_float64(features_b)
    draws = kid_draws(len(a), len(b), subsets, subset_size, seed)
    if within_a is None:
        within_a = kid_within(a, [rows_a for rows_a, _ in draws])
    within_b = kid_within(b, [rows_b for _, rows_b in draws])
    across = _block_sums(a, b, draws) / len(draws[0][0]) ** 2
    values = within_a + within_b - 2 * across
    return float(np.mean(values)), float(np.std(values))


def _squared_norms(a):
    return np.einsum("ij,ij->i", a, a)


def _chunk_rows(references):
    """Queries per chunk, so that a chunk's distance matrix has about CHUNK_ELEMENTS entries."""
    return max(64, CHUNK_ELEMENTS // max(len(references), 1))


def _distance_chunks(queries, references):
    """(start, squared distances of queries[start:start + CHUNK] to every reference), clipped at 0.

    |q - r|^2 = |q|^2 + |r|^2 - 2 q.r: one matrix product per chunk; the clip
    removes the tiny negatives that the cancellation leaves for near-equal pairs.
    """
    reference_norms = _squared_norms(references)
    rows = _chunk_rows(references)
    for start in range(0, len(queries), rows):
        block = queries[start:start + rows]
        squared = _squared_norms(block)[:, None] + reference_norms[None, :] - 2 * (block @ references.T)
        yield start, np.maximum(squared, 0, out=squared)


def _shifted_products(queries, references, column_terms):
    """(start, column_terms_j - 2 q.r_j for queries[start:start + CHUNK] and every reference j), per chunk.

    |q - r_j|^2 = |q|^2 + |r_j|^2 - 2 q.r_j, and |q|^2 is the same for every j:
    with column_terms = |r_j|^2 (plus any per-reference offset) the minimum or
    argmin along a row is that of the distances, found with one matrix product
    and two in-place passes instead of the five a distance matrix takes.
    """
    rows = _chunk_rows(references)
    for start in range(0, len(queries), rows):
        products = queries[start:start + rows] @ references.T
        products *= -2
        products += column_terms
        yield start, products


def _min_over_references(queries, references, offsets=None, exclude=None):
    """For each query q: min_j |q - r_j|^2 + offsets_j, without forming the distances one by one.

    This is what the nearest-neighbour distances (offsets 0) and the manifold
    test (offsets -radius_j^2: inside a ball when the minimum is <= 0) both need.
    ``exclude[i]``: a reference index query i may not match (itself), or -1.
    """
    column_terms = _squared_norms(references)
    if offsets is not None:
        column_terms = column_terms + offsets
    minima = np.empty(len(queries), dtype=np.float64)
    for start, products in _shifted_products(queries, references, column_terms):
        stop = start + len(products)
        if exclude is not None:
            own = np.asarray(exclude[start:stop])
            products[np.flatnonzero(own >= 0), own[own >= 0]] = np.inf
        minima[start:stop] = products.min(axis=1) + _squared_norms(queries[start:stop])
    return minima


def kth_neighbour_radii(features, k=K_NEAREST):
    """Distance from each point to its k-th nearest other point of the same set."""
    features = _as_float64(features)
    if len(features) <= k:
        raise ValueError(f"need more than k = {k} points for the k-nearest-neighbour radii, got {len(features)}")
    radii = np.empty(len(features))
    for start, squared in _distance_chunks(features, features):
        rows = np.arange(len(squared))
        squared[rows, start + rows] = np.inf          # a point is not its own neighbour
        radii[start:start + len(squared)] = np.sqrt(np.partition(squared, k - 1, axis=1)[:, k - 1])
    return radii


def manifold_coverage(queries, references, reference_radii):
    """Share of queries inside at least one reference ball |q - r_j| <= radius_j."""
    queries, references = _as_float64(queries), _as_float64(references)
    squared_radii = np.asarray(reference_radii, dtype=np.float64) ** 2
    # inside ball j  <=>  |q - r_j|^2 - radius_j^2 <= 0; the relative slack absorbs the cancellation's
    # rounding, so that a point exactly on a ball's surface (a set against itself) counts as inside
    slack = 1e-9 * (_squared_norms(queries) + squared_radii.max())
    return float((_min_over_references(queries, references, offsets=-squared_radii) <= slack).mean())


def precision_recall(real, generated, k=K_NEAREST, real_radii=None):
    """(precision, recall): generated inside the real manifold, real inside the generated one."""
    real_radii = kth_neighbour_radii(real, k) if real_radii is None else real_radii
    precision = manifold_coverage(generated, real, real_radii)
    recall = manifold_coverage(real, generated, kth_neighbour_radii(generated, k))
    return precision, recall


def class_statistics(probabilities, classes=None):
    """The predicted classes' histogram (shares), its entropy in bits, the rarest share, the confident share.

    Entropy is log2(classes) for even classes (3.32 bits for ten) and 0 when
    every image is called the same class; the confident share counts the
    images whose top probability is above CONFIDENT (0.9).
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    classes = classes or probabilities.shape[1]
    counts = np.bincount(probabilities.argmax(axis=1), minlength=classes)
    shares = counts / counts.sum()
    nonzero = shares[shares > 0]
    return {"class_histogram": [float(share) for share in shares],
            "class_entropy_bits": float(-(nonzero * np.log2(nonzero)).sum()) + 0.0,   # + 0.0: no -0.0
            "rarest_class_share": float(shares.min()),
            "confidence": float((probabilities.max(axis=1) > CONFIDENT).mean())}


def nearest_distances(queries, references, exclude=None):
    """Euclidean distance from each query to its nearest reference, in float32 (pixel vectors).

    ``exclude[i]``: the index of a reference that query i may not match (itself,
    when the queries are drawn from the references), or -1 for none.
    """
    queries = np.asarray(queries, dtype=np.float32).reshape(len(queries), -1)
    references = np.asarray(references, dtype=np.float32).reshape(len(references), -1)
    return np.sqrt(np.maximum(_min_over_references(queries, references, exclude=exclude), 0))


def nearest_neighbour_labels(queries, references, reference_labels):
    """The label of each query's nearest reference in pixel space (a 1-nearest-neighbour classifier).

    The argmin over r of |r|^2 - 2 q.r is the nearest reference (_shifted_products).
    """
    queries = np.asarray(queries, dtype=np.float32).reshape(len(queries), -1)
    references = np.asarray(references, dtype=np.float32).reshape(len(references), -1)
    nearest = np.empty(len(queries), dtype=np.int64)
    for start, products in _shifted_products(queries, references, _squared_norms(references)):
        nearest[start:start + len(products)] = products.argmin(axis=1)
    return np.asarray(reference_labels)[nearest]
