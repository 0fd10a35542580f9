"""im2col / col2im: a naive definition, the adjoint identity, and exact agreement of all implementations."""
import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tinygan import backend, kernels
from tinygan.kernels import numba_cpu, output_size, reference
from conftest import skip_without_gpu
from strategies import conv_geometry


def naive_im2col(x, kernel, stride, padding):
    """The definition, one entry at a time."""
    N, C, H, W = x.shape
    out_h, out_w = output_size(H, kernel[0], stride[0], padding[0]), output_size(W, kernel[1], stride[1], padding[1])
    col = np.zeros((C, kernel[0], kernel[1], N, out_h, out_w), dtype=x.dtype)
    for c, i, j, n, y, x_ in np.ndindex(col.shape):
        row, column = y * stride[0] + i - padding[0], x_ * stride[1] + j - padding[1]
        if 0 <= row < H and 0 <= column < W:
            col[c, i, j, n, y, x_] = x[n, c, row, column]
    return col


@given(conv_geometry())
def test_reference_im2col_matches_the_definition(geometry):
    shape, kernel, stride, padding, seed = geometry
    x = np.random.default_rng(seed).standard_normal(shape)
    np.testing.assert_array_equal(reference.im2col(x, kernel, stride, padding),
                                  naive_im2col(x, kernel, stride, padding))


@given(conv_geometry())
def test_col2im_is_the_adjoint_of_im2col(geometry):
    shape, kernel, stride, padding, seed = geometry
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    col = rng.standard_normal(reference.im2col(x, kernel, stride, padding).shape)
    left = np.vdot(reference.im2col(x, kernel, stride, padding), col)
    right = np.vdot(x, reference.col2im(col, shape[2:], stride, padding))
    assert left == pytest.approx(right, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(geometry=conv_geometry())
def test_numba_kernels_equal_the_reference_bit_for_bit(dtype, geometry):
    shape, kernel, stride, padding, seed = geometry
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    col = numba_cpu.im2col(x, kernel, stride, padding)
    assert col.dtype == dtype
    np.testing.assert_array_equal(col, reference.im2col(x, kernel, stride, padding))
    col = rng.standard_normal(col.shape).astype(dtype)
    image = numba_cpu.col2im(col, shape[2:], stride, padding)
    assert image.dtype == dtype
    np.testing.assert_array_equal(image, reference.col2im(col, shape[2:], stride, padding))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(geometry=conv_geometry())
def test_cupy_kernels_equal_the_reference_bit_for_bit(dtype, geometry):
    skip_without_gpu()
    from tinygan.kernels import cupy_gpu
    shape, kernel, stride, padding, seed = geometry
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    col = cupy_gpu.im2col(backend.to_device(x, "gpu"), kernel, stride, padding)
    np.testing.assert_array_equal(backend.as_numpy(col), reference.im2col(x, kernel, stride, padding))
    col = rng.standard_normal(col.shape).astype(dtype)
    image = cupy_gpu.col2im(backend.to_device(col, "gpu"), shape[2:], stride, padding)
    np.testing.assert_array_equal(backend.as_numpy(image), reference.col2im(col, shape[2:], stride, padding))


def test_numba_kernels_handle_the_dcgan_shapes():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 64, 14, 14)).astype(np.float32)
    col = numba_cpu.im2col(x, (5, 5), (2, 2), (2, 2))
    assert col.shape == (64, 5, 5, 64, 7, 7)
    np.testing.assert_array_equal(col, reference.im2col(x, (5, 5), (2, 2), (2, 2)))
    np.testing.assert_array_equal(numba_cpu.col2im(col, (14, 14), (2, 2), (2, 2)),
                                  reference.col2im(col, (14, 14), (2, 2), (2, 2)))


def elementwise_cases(seed, shape):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    x[rng.random(shape) < 0.1] = 0.0   # the kink itself: x = 0 takes the negative branch everywhere
    return x, rng.standard_normal(shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=4), seed=st.integers(0, 2**32 - 1),
       p=st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.9]), slope=st.sampled_from([0.0, 0.01, 0.2]))
def test_numba_elementwise_kernels_equal_the_reference_bit_for_bit(dtype, shape, seed, p, slope):
    x, dout = (a.astype(dtype) for a in elementwise_cases(seed, shape))
    for name, arguments in (("leaky_relu", (x, slope)), ("leaky_relu_backward", (dout, x, slope)),
                            ("dropout", (x, p, seed))):
        fast, slow = getattr(numba_cpu, name)(*arguments), getattr(reference, name)(*arguments)
        assert fast.dtype == slow.dtype == dtype and fast.shape == slow.shape
        np.testing.assert_array_equal(fast, slow, err_msg=name)


def test_dropout_bits_are_uniform_and_independent_of_the_key():
    bits = reference.random_bits(2024, 200_000, np)
    assert bits.min() >= 0 and bits.max() < 2 ** reference.DROPOUT_BITS
    counts = np.bincount((bits >> (reference.DROPOUT_BITS - 4)).astype(np.int64), minlength=16)
    expected = len(bits) / 16
    chi_square = ((counts - expected) ** 2 / expected).sum()
    assert chi_square < 40   # 15 degrees of freedom: p < 0.001 above 37.7
    other = reference.random_bits(2025, 200_000, np)
    assert np.mean(bits == other) < 1e-3 and abs(np.corrcoef(bits, other)[0, 1]) < 0.01


@pytest.mark.parametrize("rate", [0.5, 3.0, 40.0, 500.0])
def test_poisson_counts_by_inversion_have_the_poisson_distribution(rate):
    """Each count's share of 200,000 against Poisson(rate)'s probability (a chi-square test at p = 0.001,
    counts pooled where fewer than 20 are expected); a uniform within rounding of 1 still ends its search."""
    counts = reference.poisson_from_uniform(np.random.default_rng(7).random(200_000), rate, np.float64)
    assert counts.dtype == np.float64 and np.all(counts == np.round(counts))
    support = np.arange(int(rate + 12 * np.sqrt(rate)) + 12)
    log_pmf = support * math.log(rate) - rate - np.array([math.lgamma(k + 1) for k in support])
    expected = len(counts) * np.exp(log_pmf)
    observed = np.bincount(counts.astype(np.int64), minlength=len(support))[:len(support)]
    keep = expected >= 20
    observed = np.append(observed[keep], len(counts) - observed[keep].sum())
    expected = np.append(expected[keep], len(counts) - expected[keep].sum())
    chi_square = ((observed - expected) ** 2 / expected).sum()
    df = len(observed) - 1   # the 0.999 quantile of chi-square(df), by Wilson and Hilferty's cube
    assert chi_square < df * (1 - 2 / (9 * df) + 3.09 * math.sqrt(2 / (9 * df))) ** 3, (chi_square, df)
    edge = reference.poisson_from_uniform(np.array([0.0, np.nextafter(1.0, 0.0)]), rate, np.float32)
    assert edge[0] == 0 and rate < edge[1] < 60 * rate + 60
    for bad in (0.0, -1.0, reference.POISSON_INVERSION_MAX_RATE * 1.01):
        with pytest.raises(ValueError, match="need a rate in"):
            reference.poisson_from_uniform(np.zeros(2), bad, np.float32)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rate", [0.5, 1.0, 3.0, 40.0, 500.0])
def test_cupy_poisson_counts_equal_the_reference(dtype, rate):
    """The kernel sums the probabilities as the reference does: the same counts (the GPU's exp may round
    exp(-rate) a unit in the last place differently, which moves a count only for a uniform within 1e-16
    of a boundary)."""
    skip_without_gpu()
    from tinygan.kernels import cupy_gpu
    u = np.append(np.random.default_rng(3).random(100_000), [0.0, np.nextafter(1.0, 0.0)])
    counts = cupy_gpu.poisson_from_uniform(backend.to_device(u, "gpu"), rate, dtype)
    assert counts.dtype == dtype
    np.testing.assert_array_equal(backend.as_numpy(counts), reference.poisson_from_uniform(u, rate, dtype))
    with pytest.raises(ValueError, match="need a rate in"):
        cupy_gpu.poisson_from_uniform(backend.to_device(u, "gpu"), rate + reference.POISSON_INVERSION_MAX_RATE, dtype)


@pytest.mark.parametrize("fast_path", ["numba", pytest.param("cupy", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(shape=st.one_of(st.tuples(st.integers(2, 5), st.integers(1, 6), st.integers(1, 12)),
                       # (N, C) input, channels in blocks of 512: several blocks, the last one partial
                       st.tuples(st.integers(2, 5), st.integers(500, 1600), st.just(1))),
       seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([1.0, 1e-3, 1e3]))
# Two images: dx is then a small difference of terms near 1 (channel 219 here), so a product of two float32s
# rounded before the float64 sum was off by 2e-5. And x - mean is a small difference where a channel's two
# values are close: the GPU's mean rounded to float32 before the next pass read it put x_hat off by 7.5e-5
# (seed 93), and its dbeta rounded so put dx out of tolerance 1.6 times over (seed 56)
@example(shape=(2, 500, 1), seed=3950, scale=1.0)
@example(shape=(2, 500, 1), seed=93, scale=1.0)
@example(shape=(2, 500, 1), seed=56, scale=1.0)
@example(shape=(2, 1511, 1), seed=140, scale=1e3)
def test_fast_batchnorm_matches_the_reference(fast_path, dtype, shape, seed, scale):
    """The Numba and CUDA kernels sum in float64, so they are compared with the reference run in float64 on the
    same inputs (the float32 reference itself loses digits to cancellation when a channel's values are close).
    Inputs scaled by 1e-3 and 1e3 too: for the larger, the absolute tolerance grows with the largest value
    expected, and dx's with the terms it is the difference of, gamma / std * dout (two close values in a
    channel of two images at 1e3: terms of 1.3e4 made a dx of -0.05, off by 1.2e-12, seed 140)."""
    if fast_path == "cupy":
        skip_without_gpu()
        from tinygan.kernels import cupy_gpu as fast
        device = "gpu"
    else:
        fast, device = numba_cpu, "cpu"
    rng = np.random.default_rng(seed)
    x, dout = (((rng.standard_normal(shape) * 3 + 1) * scale).astype(dtype) for _ in range(2))
    gamma, beta = rng.uniform(0.5, 2, shape[1]).astype(dtype), rng.standard_normal(shape[1]).astype(dtype)
    tolerance = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)

    def assert_close(a, b, terms=0.0):
        atol = tolerance["atol"] * (max(1.0, abs(b).max(), terms) if scale > 1 else 1.0)
        np.testing.assert_allclose(a, b, rtol=tolerance["rtol"], atol=atol)
    exact = [a.astype(np.float64) for a in (x, dout, gamma, beta)]
    x, dout, gamma, beta = (backend.to_device(a, device) for a in (x, dout, gamma, beta))
    forward = [backend.as_numpy(a) for a in fast.batchnorm_forward(x, gamma, beta, 1e-5)]
    for a, b in zip(forward, reference.batchnorm_forward(exact[0], exact[2], exact[3], 1e-5)):
        assert a.dtype == dtype
        assert_close(a, b)
    x_hat, inverse_std = forward[1], forward[4]
    backward = fast.batchnorm_backward(dout, backend.to_device(x_hat, device), gamma,
                                       backend.to_device(inverse_std, device))
    dx_terms = abs(exact[2][:, None] * inverse_std.astype(np.float64)[:, None] * exact[1]).max()
    for a, b, terms in zip(backward, reference.batchnorm_backward(exact[1], x_hat.astype(np.float64), exact[2],
                                                                  inverse_std.astype(np.float64)), (dx_terms, 0, 0)):
        a = backend.as_numpy(a)
        assert a.dtype == dtype
        assert_close(a, b, terms)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(size=st.integers(1, 300), seed=st.integers(0, 2**32 - 1), momentum=st.sampled_from([0.0, 0.1, 1.0]))
def test_cupy_batchnorm_running_update_matches_the_reference(dtype, size, seed, momentum):
    skip_without_gpu()
    from tinygan.kernels import cupy_gpu
    rng = np.random.default_rng(seed)
    mean, running_mean = (rng.standard_normal(size).astype(dtype) for _ in range(2))
    var, running_var = (rng.uniform(0, 2, size).astype(dtype) for _ in range(2))
    on_gpu = [backend.to_device(a, "gpu") for a in (running_mean, running_var, mean, var)]
    cupy_gpu.batchnorm_update_running(*on_gpu, momentum, 64 / 63)   # in place
    reference.batchnorm_update_running(running_mean, running_var, mean, var, momentum, 64 / 63)
    tolerance = dict(rtol=1e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(backend.as_numpy(on_gpu[0]), running_mean, **tolerance)
    np.testing.assert_allclose(backend.as_numpy(on_gpu[1]), running_var, **tolerance)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(size=st.integers(1, 400), seed=st.integers(0, 2**32 - 1), target=st.sampled_from(["random", 0.0, 1.0, 0.9]))
def test_cupy_loss_matches_the_reference_at_any_logit(dtype, size, seed, target):
    """The loss in one reduction over every axis and its gradient, against the reference in float64 on the
    same inputs: finite logits, then logits reaching +-inf and 100 (where a sigmoid followed by a log fails)."""
    skip_without_gpu()
    from tinygan.kernels import cupy_gpu
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 1, size).astype(dtype) if target == "random" else np.full(size, target, dtype)
    tolerance = dict(rtol=1e-6, atol=1e-9) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-15)
    finite = (rng.standard_normal(size) * 5).astype(dtype)
    extreme = finite.copy()
    extreme[::7], extreme[3::11], extreme[5::13] = np.inf, -np.inf, 100
    for x in (finite, extreme):
        exact_x, exact_t = x.astype(np.float64), t.astype(np.float64)
        gx, gt = backend.to_device(x, "gpu"), backend.to_device(t, "gpu")
        np.testing.assert_allclose(float(cupy_gpu.bce_with_logits(gx, gt)), reference.bce_with_logits(exact_x, exact_t),
                                   **tolerance)
        np.testing.assert_allclose(backend.as_numpy(cupy_gpu.bce_with_logits_gradient(gx, gt)),
                                   reference.bce_with_logits_gradient(exact_x, exact_t), **tolerance)


def test_numba_batchnorm_propagates_nan_and_inf():
    """fastmath may reorder the sums but must not assume finite values: the trainer stops on a NaN loss."""
    x = np.ones((4, 3, 5), dtype=np.float32)
    x[1, 1, 2], x[2, 2, 0] = np.nan, np.inf
    y = numba_cpu.batchnorm_forward(x, np.ones(3, np.float32), np.zeros(3, np.float32), 1e-5)[0]
    assert np.isnan(y[:, 1]).all() and np.isnan(y[:, 2]).all() and np.isfinite(y[:, 0]).all()


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=4), seed=st.integers(0, 2**32 - 1),
       p=st.sampled_from([0.0, 0.3, 0.9]), slope=st.sampled_from([0.0, 0.2]), key=st.integers(0, 2**63 - 1))
def test_cupy_elementwise_kernels_equal_the_reference_bit_for_bit(dtype, shape, seed, p, slope, key):
    """Dropout's keys are drawn from the whole 63-bit range, as the layer draws them."""
    skip_without_gpu()
    from tinygan.kernels import cupy_gpu
    x, dout = (a.astype(dtype) for a in elementwise_cases(seed, shape))
    gx, gdout = backend.to_device(x, "gpu"), backend.to_device(dout, "gpu")
    for name, cpu_arguments, gpu_arguments in (("leaky_relu", (x, slope), (gx, slope)),
                                               ("leaky_relu_backward", (dout, x, slope), (gdout, gx, slope)),
                                               ("dropout", (x, p, key), (gx, p, key))):
        np.testing.assert_array_equal(backend.as_numpy(getattr(cupy_gpu, name)(*gpu_arguments)),
                                      getattr(reference, name)(*cpu_arguments), err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(size=st.integers(1, 500), seed=st.integers(0, 2**32 - 1), step=st.integers(1, 50))
def test_numba_adam_matches_the_reference(dtype, size, seed, step):
    rng = np.random.default_rng(seed)
    param, grad, m = (rng.standard_normal(size).astype(dtype) for _ in range(3))
    v = rng.uniform(0, 2, size).astype(dtype)
    fast, slow = [a.copy() for a in (param, m, v)], [a.copy() for a in (param, m, v)]
    numba_cpu.adam_update(fast[0], grad, fast[1], fast[2], 1e-3, 0.5, 0.999, 1e-8, step)
    reference.adam_update(slow[0], grad, slow[1], slow[2], 1e-3, 0.5, 0.999, 1e-8, step)
    tolerance = dict(rtol=1e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-15)
    for a, b in zip(fast, slow):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, **tolerance)
    # the step happened, in place: the first moment moves (m = 0.5 m + 0.5 g stays put only where g equals m).
    # Not the parameter: its change can be below float32's resolution (size 1, seed 3583951: m came out near 0).
    assert not np.array_equal(fast[1], m)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(sizes=st.lists(st.integers(0, 3000), min_size=1, max_size=8), seed=st.integers(0, 2**32 - 1),
       step=st.integers(1, 50), decay=st.sampled_from([0.0, 0.5, 0.999]))
def test_cupy_multi_tensor_kernels_match_the_cpu_loops(dtype, sizes, seed, step, decay):
    """The GPU's one-launch updates of a list of arrays against the CPU's loop over the same arrays."""
    skip_without_gpu()
    from tinygan.kernels import cupy_gpu
    rng = np.random.default_rng(seed)
    params, grads, ms, averages = ([rng.standard_normal(size).astype(dtype) for size in sizes] for _ in range(4))
    vs = [rng.uniform(0, 2, size).astype(dtype) for size in sizes]
    rows = [params, grads, ms, vs, averages]
    on_gpu = [[backend.to_device(array, "gpu") for array in row] for row in rows]
    assert cupy_gpu.can_launch_on_all(on_gpu[:4])
    for arrays in (rows, on_gpu):
        kernels.adam_update_all(*arrays[:4], 1e-3, 0.5, 0.999, 1e-8, step)
        kernels.average_all(arrays[4], arrays[0], decay)
    tolerance = dict(rtol=2e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-15)
    for cpu_row, gpu_row in zip(rows, on_gpu):
        for cpu, gpu in zip(cpu_row, gpu_row):
            np.testing.assert_allclose(backend.as_numpy(gpu), cpu, **tolerance)
    kernels.fill_all(on_gpu[1], 0)   # zero_grad
    assert not any(backend.as_numpy(grad).any() for grad in on_gpu[1])
    kernels.fill_all(on_gpu[1], 0)
    assert not any(backend.as_numpy(grad).any() for grad in on_gpu[1])
