"""Hypothesis strategies shared by the kernel tests."""
from hypothesis import strategies as st


@st.composite
def conv_geometry(draw):
    """Batch, channels, image, kernel, stride and padding with at least one output pixel."""
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    image = tuple(draw(st.integers(max(1, k - 2 * p), k - 2 * p + 7)) for k, p in zip(kernel, padding))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) + image
    return shape, kernel, stride, padding, draw(st.integers(0, 2**32 - 1))
