"""im2col / col2im: a naive definition, the adjoint identity, and exact agreement of all implementations."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygan import backend
from tinygan.kernels import numba_cpu, output_size, reference
from conftest import skip_without_gpu


@st.composite
def conv_geometry(draw):
    """Batch, channels, image, kernel, stride and padding with at least one output pixel."""
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    image = tuple(draw(st.integers(max(1, k - 2 * p), k - 2 * p + 7)) for k, p in zip(kernel, padding))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) + image
    return shape, kernel, stride, padding, draw(st.integers(0, 2**32 - 1))


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
