"""Winograd's convolution: the matrices' identity, the tile transforms against their reference and their
adjoints, the layers that use it (directly, and over the phases for stride 2) against direct loops and central
differences, and its float32 error."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygan import ConvTranspose2D, Conv2D, backend, kernels, models, polyphase, winograd
from tinygan.kernels import numba_cpu, reference
from tinygan.winograd import WinogradConvolution
from tinygan.layers.direct import conv2d_loops, conv_transpose2d_loops
from gradcheck import check_layer_gradients


@pytest.mark.parametrize("taps", winograd.TAPS)
@pytest.mark.parametrize("m", [2, winograd.OUTPUT_TILE])
def test_the_matrices_compute_a_correlation_exactly(taps, m):
    """A^T[(G g) * (B^T d)] = y with y[i] = sum_k d[i + k] g[k] for every d and g: the bilinear form's
    coefficient of d[l] g[k] in y[i], sum_j A^T[i, j] G[j, k] B^T[j, l], is 1 where l = i + k, else 0."""
    AT, G, BT = winograd.matrices(taps, m)
    n = AT.shape[1]
    coefficients = np.einsum("ij,jk,jl->ikl", AT, G, BT)
    expected = np.zeros((m, taps, n))
    for i in range(m):
        for k in range(taps):
            expected[i, k, i + k] = 1
    np.testing.assert_allclose(coefficients, expected, atol=1e-14)   # G's fractions round in float64
    # exact in float: binary fractions (multiples of 1/8, and small: the points' powers and products)
    for matrix in (AT, BT):
        assert np.array_equal(matrix * 8, np.round(matrix * 8)) and np.abs(matrix).max() <= 8


@st.composite
def tiling(draw):
    """A stride-1 geometry along two axes: (image, taps, padding, output, tiles, planes, seed, phases), on
    planes or on their 2 x 2 phases (image: a phase plane's size)."""
    taps = (draw(st.sampled_from(winograd.TAPS)), draw(st.sampled_from(winograd.TAPS)))
    padding = tuple(draw(st.integers(0, k - 1)) for k in taps)
    image = tuple(draw(st.integers(max(1, k - 2 * p), 11)) for k, p in zip(taps, padding))
    out, tiles = zip(*(winograd.tile_count(size, k, p) for size, k, p in zip(image, taps, padding)))
    phases = draw(st.sampled_from([1, polyphase.STRIDE]))
    # several of the Numba kernels' slices of values, and a short last one
    L = draw(st.sampled_from([1, 3, numba_cpu.WINOGRAD_SLICE + 5])) * phases**2
    return image, taps, padding, out, tiles, L, draw(st.integers(0, 2**32 - 1)), phases


def transform_matrices(taps, dtype):
    (ATh, _, BTh), (ATw, _, BTw) = (winograd.matrices(k) for k in taps)
    return [matrix.astype(dtype) for matrix in (ATh, ATw, BTh, BTw)]


def whole_planes(L, size, phases):
    """The shape of the arrays whose L planes of ``size`` are the phases: (L / s^2, s H, s W)."""
    return (L // phases**2, *(phases * n for n in size))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(geometry=tiling())
def test_numba_transforms_match_the_reference(dtype, geometry):
    image, taps, padding, out, tiles, L, seed, phases = geometry
    rng = np.random.default_rng(seed)
    ATh, ATw, BTh, BTw = transform_matrices(taps, dtype)
    step, points = winograd.OUTPUT_TILE, (len(BTh), len(BTw))
    rtol = 1e-5 if dtype == np.float32 else 1e-13   # the sums run in another order

    def close(fast, slow):
        assert fast.dtype == dtype and fast.shape == slow.shape
        np.testing.assert_allclose(fast, slow, rtol=rtol, atol=rtol * np.abs(slow).max(initial=1))

    (_, Gh, _), (_, Gw, _) = (winograd.matrices(k) for k in taps)
    Gh, Gw = Gh.astype(dtype), Gw.astype(dtype)
    C, O = 1 + L % 5, 3
    # the filters as the layers pass them: ConvTranspose2D's flipped, transposed view of its weights
    weights = rng.standard_normal((C, O, *taps)).astype(dtype)
    filters = weights[:, :, ::-1, ::-1].transpose(2, 3, 0, 1)
    close(numba_cpu.winograd_filter(filters, Gh, Gw), reference.winograd_filter(filters, Gh, Gw))
    dU = rng.standard_normal((len(Gh) * len(Gw), C, O)).astype(dtype)
    fast, slow = weights.copy(), weights.copy()
    numba_cpu.winograd_filter_adjoint_add(dU, Gh, Gw, fast[:, :, ::-1, ::-1].transpose(2, 3, 0, 1))
    reference.winograd_filter_adjoint_add(dU, Gh, Gw, slow[:, :, ::-1, ::-1].transpose(2, 3, 0, 1))
    close(fast, slow)
    x = rng.standard_normal(whole_planes(L, image, phases)).astype(dtype)
    close(numba_cpu.winograd_input(x, BTh, BTw, step, padding, tiles, phases),
          reference.winograd_input(x, BTh, BTw, step, padding, tiles, phases))
    M = rng.standard_normal((*points, *tiles, L)).astype(dtype)
    close(numba_cpu.winograd_output(M, ATh, ATw, out, phases), reference.winograd_output(M, ATh, ATw, out, phases))
    dy = rng.standard_normal(whole_planes(L, out, phases)).astype(dtype)
    close(numba_cpu.winograd_output_adjoint(dy, ATh, ATw, tiles, phases),
          reference.winograd_output_adjoint(dy, ATh, ATw, tiles, phases))
    close(numba_cpu.winograd_input_adjoint(M, BTh, BTw, step, padding, image, phases),
          reference.winograd_input_adjoint(M, BTh, BTw, step, padding, image, phases))


@given(planes=st.integers(1, 4), size=st.tuples(st.integers(1, 4), st.integers(1, 4)), seed=st.integers(0, 99))
def test_phase_planes_are_the_strided_slices(planes, size, seed):
    """Plane l s^2 + a s + b of the phases is x[l, a::s, b::s], and from_phase_planes undoes it."""
    s = polyphase.STRIDE
    x = np.random.default_rng(seed).standard_normal((planes, s * size[0], s * size[1]))
    phases = reference.phase_planes(x, s)
    for l in range(planes):
        for a in range(s):
            for b in range(s):
                np.testing.assert_array_equal(phases[l * s * s + a * s + b], x[l, a::s, b::s])
    np.testing.assert_array_equal(reference.from_phase_planes(phases, s), x)


def assert_adjoint(transformed, probe, original, adjoint_of_probe):
    """<T(a), b> == <a, T*(b)>, to the rounding of sums of many terms: within 1e-12 of <|T(a)|, |b|>, the sum's
    scale (an inner product of 500 planes' tiles can cancel to about 1 from terms that add up to 1e5)."""
    left, right = np.vdot(transformed, probe), np.vdot(original, adjoint_of_probe)
    assert abs(left - right) <= 1e-12 * np.vdot(np.abs(transformed), np.abs(probe))


@given(geometry=tiling())
def test_the_backward_transforms_are_the_adjoints(geometry):
    """<T(a), b> == <a, T*(b)> for the input, output and filter transforms: backward is right only if so."""
    image, taps, padding, out, tiles, L, seed, phases = geometry
    rng = np.random.default_rng(seed)
    ATh, ATw, BTh, BTw = transform_matrices(taps, np.float64)
    step, points = winograd.OUTPUT_TILE, (len(BTh), len(BTw))
    x, V = rng.standard_normal(whole_planes(L, image, phases)), rng.standard_normal((*points, *tiles, L))
    assert_adjoint(reference.winograd_input(x, BTh, BTw, step, padding, tiles, phases), V,
                   x, reference.winograd_input_adjoint(V, BTh, BTw, step, padding, image, phases))
    M, dy = rng.standard_normal((*points, *tiles, L)), rng.standard_normal(whole_planes(L, out, phases))
    assert_adjoint(reference.winograd_output(M, ATh, ATw, out, phases), dy,
                   M, reference.winograd_output_adjoint(dy, ATh, ATw, tiles, phases))
    (_, Gh, _), (_, Gw, _) = (winograd.matrices(k) for k in taps)
    filters, dU = rng.standard_normal((*taps, 2, 3)), rng.standard_normal((len(Gh) * len(Gw), 2, 3))
    dfilters = np.zeros_like(filters)
    reference.winograd_filter_adjoint_add(dU, Gh, Gw, dfilters)
    assert_adjoint(reference.winograd_filter(filters, Gh, Gw), dU, filters, dfilters)


@pytest.fixture
def winograd_everywhere(monkeypatch):
    """Every layer that Winograd's convolution can compute takes it, whatever its taps and channels: directly
    (stride 1) or over its phases (stride 2, tinygan/polyphase.py)."""
    monkeypatch.setattr(winograd, "fits", lambda kernel_size, stride, padding, *channels, **options:
                        winograd.computes(kernel_size, stride, padding))
    monkeypatch.setattr(polyphase, "fits", lambda kernel_size, stride, padding, image_size, *channels:
                        polyphase.computes(kernel_size, stride, padding, image_size))
    previous = kernels.cpu_kernels()
    kernels.use_cpu_kernels("numba")
    yield
    kernels.use_cpu_kernels(previous)


# Stride 2, (kernel, padding, output_padding): the geometries with 3 phase taps and an output of exactly half
# (or, transposed, twice) the input, the dcgan's first; and one that only a Conv2D has (its output is 2
# pixels smaller than half: no output_padding makes a transposed one double)
STRIDED = [(5, 2, 1), (4, 1, 0), (6, 2, 0)]
STRIDED_CONV2D_ONLY = [(5, 0, 0)]


@st.composite
def layer_geometry(draw):
    transposed, stride = draw(st.booleans()), draw(st.sampled_from([1, polyphase.STRIDE]))
    if stride == 1:
        taps = (draw(st.sampled_from(winograd.TAPS)), draw(st.sampled_from(winograd.TAPS)))
        padding = tuple(draw(st.integers(0, k - 1)) for k in taps)
        output_padding = (0, 0)
        # at least one output pixel: H + 2p - k + 1 >= 1, and H + k - 1 - 2p >= 1 when transposed
        image = tuple(draw(st.integers(max(1, 2 * p - k + 2 if transposed else k - 2 * p), 7))
                      for k, p in zip(taps, padding))
    else:
        choices = STRIDED if transposed else STRIDED + STRIDED_CONV2D_ONLY
        taps, padding, output_padding = zip(draw(st.sampled_from(choices)), draw(st.sampled_from(choices)))
        # the smaller image's size (with no padding, a 5x5 kernel needs 6 input pixels)
        half = tuple(draw(st.integers(3 if p == 0 else 1, 4)) for p in padding)
        image = half if transposed else tuple(stride * n for n in half)
    return dict(transposed=transposed, stride=stride, batch=draw(st.integers(1, 3)),
                channels=(draw(st.integers(1, 3)), draw(st.integers(1, 3))), image=image, kernel=taps,
                padding=padding, output_padding=output_padding, bias=draw(st.booleans()),
                seed=draw(st.integers(0, 2**32 - 1)))


def winograd_layer(g, x):
    """The geometry's Conv2D or ConvTranspose2D, run forward on x once; it must have taken Winograd's path."""
    backend.seed(g["seed"])
    if g["transposed"]:
        layer = ConvTranspose2D(*g["channels"], g["kernel"], g["stride"], g["padding"], g["output_padding"],
                                bias=g["bias"])
    else:
        layer = Conv2D(*g["channels"], g["kernel"], g["stride"], g["padding"], bias=g["bias"])
    if "b" in layer.params:   # a zero bias would hide a bias bug
        layer.params["b"][...] = np.random.default_rng(0).standard_normal(layer.out_channels)
    layer.forward(x)
    assert isinstance(layer.winograd, WinogradConvolution if g["stride"] == 1 else polyphase.PhaseWinograd)
    return layer


@given(g=layer_geometry())
def test_winograd_layers_match_direct_loops(winograd_everywhere, float64, g):
    x = np.random.default_rng(g["seed"]).standard_normal((g["batch"], g["channels"][0], *g["image"]))
    layer = winograd_layer(g, x)
    W, b = layer.params["W"], layer.params.get("b", np.zeros(layer.out_channels))
    stride = (g["stride"], g["stride"])
    if g["transposed"]:
        expected = conv_transpose2d_loops(x, W, b, stride, g["padding"], g["output_padding"])
    else:
        expected = conv2d_loops(x, W, b, stride, g["padding"])
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)


@given(g=layer_geometry())
def test_winograd_layer_gradients(winograd_everywhere, float64, g):
    x = np.random.default_rng(g["seed"]).standard_normal((g["batch"], g["channels"][0], *g["image"]))
    # linear in x and W, so the difference is exact at any step; a larger one keeps the rounding of
    # Winograd's transforms (1e-14 of the output) below the tolerance (tinygan/gradcheck.py)
    check_layer_gradients(winograd_layer(g, x), x, eps=1e-3)


@pytest.mark.parametrize("layer, image, out", [
    (lambda: Conv2D(2, 3, 5, padding=2), 6, 6),
    (lambda: Conv2D(2, 3, 5, 2, 2), 4, 2),                     # over the phases
    (lambda: ConvTranspose2D(2, 3, 5, 2, 2, 1), 4, 8),
])
def test_winograd_backward_skips_what_is_not_asked_for(winograd_everywhere, layer, image, out):
    layer = layer()
    x = np.random.default_rng(0).standard_normal((2, 2, image, image)).astype(np.float32)
    dy = np.ones((2, 3, out, out), dtype=np.float32)
    layer.requires_grad = False
    layer.forward(x)
    assert layer.winograd is not None
    assert layer.backward(dy).shape == x.shape and not layer.grads["W"].any()
    layer.requires_grad, layer.needs_input_grad = True, False
    layer.forward(x)
    assert layer.backward(dy) is None and layer.grads["W"].any()


@pytest.mark.parametrize("kernel", [5, 3])
def test_float32_error_is_as_documented(kernel):
    """G.4's shape in float32 against the float64 direct convolution, as F(4x4, 5x5) and F(4x4, 3x3): within
    3e-5 of the output's size (the module docstring says about 1e-5; im2col's float32 is about 30 times
    closer)."""
    rng = np.random.default_rng(0)
    layer = ConvTranspose2D(256, 128, kernel, stride=1, padding=kernel // 2, bias=False)
    x = rng.standard_normal((2, 256, 7, 7)).astype(np.float32)
    y = layer.forward(x)
    assert layer.winograd is not None
    expected = conv_transpose2d_loops(x.astype(np.float64), layer.params["W"].astype(np.float64), np.zeros(128),
                                      (1, 1), (kernel // 2, kernel // 2))
    assert np.abs(y - expected).max() < 3e-5 * np.abs(expected).max()


def test_it_is_chosen_where_it_was_measured_faster():
    assert winograd.fits((5, 5), (1, 1), (2, 2), 256, 128, transposed=True)   # G.4
    assert winograd.fits((3, 3), (1, 1), (1, 1), 256, 128, transposed=True)   # G.4 with 3x3 kernels
    assert winograd.fits((5, 5), (1, 1), (2, 2), 64, 1)           # UpSample's last convolution
    assert winograd.fits((5, 5), (1, 1), (2, 2), 16, 64)          # 5x5: more outputs than inputs too
    assert winograd.fits((3, 3), (1, 1), (1, 1), 128, 64)
    assert not winograd.fits((3, 3), (1, 1), (1, 1), 16, 64)      # 3x3: not more outputs than inputs
    assert not winograd.fits((5, 5), (1, 1), (2, 2), 64, 8, transposed=True)  # im2col's columns: 8 channels
    assert not winograd.fits((5, 5), (1, 1), (2, 2), 1, 64)       # too few channels
    assert not winograd.fits((3, 3), (1, 1), (1, 1), 8, 8)
    assert not winograd.fits((4, 4), (1, 1), (1, 1), 256, 128)    # 4 taps: not measured faster
    assert not winograd.fits((5, 3), (1, 1), (2, 1), 256, 128)    # nor mixed kernels
    assert not winograd.fits((5, 5), (2, 2), (2, 2), 256, 128)    # strided: tinygan/polyphase.py
    assert not winograd.fits((5, 5), (1, 1), (5, 5), 256, 128)    # more padding than taps - 1
    assert not winograd.computes((7, 7), (1, 1), (3, 3))          # beyond the points' reach


def test_the_dcgan_takes_winograd_where_it_pays():
    """On the CPU's fast path: its stride-1 layer (G.4, 256 -> 128 at 7x7) directly, the stride-2 ones with 64
    channels or more (G.7, D.3) over their phases, and neither the first nor the last layer (one channel);
    not the readable path, which stays the textbook im2col."""
    backend.seed(0)
    generator, discriminator = models.build("dcgan")
    z = np.random.default_rng(0).standard_normal((4, 100)).astype(np.float32)
    previous = kernels.cpu_kernels()

    def kinds(model):
        return {index: type(layer.winograd).__name__ for index, layer in enumerate(model.layers)
                if getattr(layer, "winograd", None) is not None}
    try:
        kernels.use_cpu_kernels("numba")
        discriminator.forward(generator.forward(z))
        assert kinds(generator) == {4: "WinogradConvolution", 7: "PhaseWinograd"}
        assert kinds(discriminator) == {3: "PhaseWinograd"}
        kernels.use_cpu_kernels("numpy")
        discriminator.forward(generator.forward(z))
        assert kinds(generator) == kinds(discriminator) == {}
    finally:
        kernels.use_cpu_kernels(previous)
