"""Walks through the latent space: straight and spherical paths between noise vectors, and their images.

G is a smooth function of z, so a path from z_a to z_b moves the image
smoothly from one digit to another. Two paths between the same end points:

    straight (lerp):   z(t) = (1 - t) z_a + t z_b
    spherical (slerp): z(t) = [sin((1 - t) w) z_a + sin(t w) z_b] / sin w,
                       w the angle between z_a and z_b

In 100 dimensions N(0, I) puts almost all its mass near |z| = 10; a straight
path through the middle passes near |z| = 7 (two independent end points are
nearly orthogonal, and |z_a + z_b| / 2 ~ 10 / sqrt(2)), noise the generator
rarely saw. The spherical path keeps |z| near 10 all the way (White, 2016).
"""
from __future__ import annotations

import numpy as np

from . import backend, data


def lerp(a, b, t):
    """(n, z) end points and (steps,) positions -> (n, steps, z) points on the straight paths."""
    t = np.asarray(t, dtype=a.dtype)[None, :, None]
    return (1 - t) * a[:, None] + t * b[:, None]


def slerp(a, b, t):
    """(n, z) end points and (steps,) positions -> (n, steps, z) points on the great-circle paths.

    Where the end points are (anti)parallel the angle is 0 (or pi) and the
    formula divides by sin w = 0: there the straight path is used.
    """
    t = np.asarray(t, dtype=np.float64)[None, :, None]
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    cosine = np.sum(a64 * b64, axis=1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))
    omega = np.arccos(np.clip(cosine, -1, 1))[:, None, None]
    sin_omega = np.sin(omega)
    safe = np.where(sin_omega > 1e-6, sin_omega, 1.0)
    spherical = (np.sin((1 - t) * omega) * a64[:, None] + np.sin(t * omega) * b64[:, None]) / safe
    return np.where(sin_omega > 1e-6, spherical, lerp(a64, b64, t[0, :, 0])).astype(a.dtype)


def walks(gan, pairs, steps, seed=0):
    """(z, images) for ``pairs`` random end-point pairs: z (pairs, 2, steps, z_dim), the second axis the
    straight then the spherical path; images (pairs, 2, steps, C, H, W), the run's sampler's output.
    A conditional run draws one random digit along both paths of a pair."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
    a, b = gan.sample_noise(pairs, rng), gan.sample_noise(pairs, rng)
    t = np.linspace(0, 1, steps)
    z = np.stack([lerp(a, b, t), slerp(a, b, t)], axis=1)
    labels = None
    if gan.conditional:   # one random digit per pair, the same along both of its paths
        labels = backend.to_device(np.repeat(rng.integers(0, 10, pairs), 2 * steps))
    flat = backend.as_numpy(gan.generate(backend.to_device(z.reshape(-1, z.shape[-1])), labels=labels))
    return z, flat.reshape(pairs, 2, steps, *flat.shape[1:])


def to_pictures(images, pixel_range):
    """G's output (..., C, H, W) -> uint8 (..., H, W), 0 black."""
    flat = data.to_uint8(images.reshape(-1, *images.shape[-3:]), pixel_range)
    return flat.reshape(*images.shape[:-3], *flat.shape[1:])
