"""Gaussian smoothing and Laplacian pyramids in numpy: the fixed post-processing of the weight-map methods
(decision-map-cnn, deep-feature-weighting, liu-cnn) once their networks run as ONNX graphs, so fusing with them
needs no torch. Each function computes what its torch counterpart in ``networks/layers.py`` and
``inference/liu_cnn.py`` computes (same padding, same levels, same interpolation); the parity tests compare them.

Arrays carry their spatial axes last: ``dims`` (2 or 3) of them; the axes before are batch-like.
"""

from __future__ import annotations

import math

import numpy as np


def gauss1d(sigma: float) -> np.ndarray:
    """The normalised Gaussian kernel of ``networks.layers._gauss1d``: radius ceil(3 sigma), at least 1."""
    radius = max(1, int(math.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    g = np.exp(-(x * x) / np.float32(2 * sigma * sigma)).astype(np.float32)
    return g / g.sum()


def _along(x: np.ndarray, axis: int, start: int, stop: int) -> np.ndarray:
    """``x[start:stop]`` along ``axis`` (a view)."""
    return x[(slice(None),) * axis + (slice(start, stop),)]


def gaussian_smooth(x: np.ndarray, sigma: float, dims: int) -> np.ndarray:
    """Separable Gaussian blur over the last ``dims`` axes, replicate padding."""
    if sigma <= 0:
        return x
    g = gauss1d(sigma)
    r = g.size // 2
    for axis in range(x.ndim - dims, x.ndim):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (r, r)
        padded = np.pad(x, pad, mode="edge")
        n = x.shape[axis]
        out = np.zeros(x.shape, np.float32)
        for k in range(g.size):
            out += g[k] * _along(padded, axis, k, k + n)
        x = out
    return x


def smooth_weights(weights: np.ndarray, sigma: float, dims: int) -> np.ndarray:
    """Weight maps (n, ..., *spatial) smoothed and renormalised to sum to 1 over n (``layers.smooth_weights``)."""
    if sigma <= 0:
        return weights.astype(np.float32, copy=False)
    w = gaussian_smooth(weights.astype(np.float32, copy=False), sigma, dims)
    return w / np.maximum(w.sum(axis=0, keepdims=True), np.float32(1e-6))


def down(x: np.ndarray, dims: int) -> np.ndarray:
    """One pyramid step down: the 2 x 2 (x 2) mean over the last ``dims`` axes (even sizes)."""
    shape = x.shape[: x.ndim - dims]
    blocks = []
    for s in x.shape[x.ndim - dims :]:
        blocks += [s // 2, 2]
    summed = x.reshape(*shape, *blocks).sum(axis=tuple(x.ndim - dims + 2 * i + 1 for i in range(dims)))
    return (summed / np.float32(2**dims)).astype(np.float32, copy=False)


def up(x: np.ndarray, dims: int) -> np.ndarray:
    """One pyramid step up: bi-/trilinear interpolation to twice the size (``align_corners=False``)."""
    for axis in range(x.ndim - dims, x.ndim):
        n = x.shape[axis]
        prev = np.concatenate([_along(x, axis, 0, 1), _along(x, axis, 0, n - 1)], axis=axis)
        nxt = np.concatenate([_along(x, axis, 1, n), _along(x, axis, n - 1, n)], axis=axis)
        even = np.float32(0.75) * x + np.float32(0.25) * prev
        odd = np.float32(0.75) * x + np.float32(0.25) * nxt
        x = np.stack([even, odd], axis=axis + 1).reshape(*x.shape[:axis], 2 * n, *x.shape[axis + 1 :])
    return x


def pad_to_multiple(x: np.ndarray, multiple: int, dims: int) -> np.ndarray:
    """Replicate-pad the last ``dims`` axes at their end to a multiple of ``multiple``."""
    pad = [(0, 0)] * (x.ndim - dims) + [(0, (-s) % multiple) for s in x.shape[x.ndim - dims :]]
    return np.pad(x, pad, mode="edge") if any(p for _, p in pad) else x


def laplacian_blend(
    sources: np.ndarray, weights: np.ndarray, levels: int, dims: int, envelope: bool = True
) -> np.ndarray:
    """Blend ``sources`` (n, ..., *spatial) by ``weights`` (same shape, summing to 1 over n) in a Laplacian
    pyramid (``layers.laplacian_blend``): levels reduced so the coarsest keeps 4 pixels a side; with
    ``envelope`` clipped pixel by pixel to the sources' range. Returns (..., *spatial)."""
    spatial = sources.shape[sources.ndim - dims :]
    levels = max(0, min(levels, int(math.floor(math.log2(max(1, min(spatial) / 4))))))
    x = sources.astype(np.float32, copy=False)
    w = weights.astype(np.float32, copy=False)
    if levels == 0:
        fused = (w * x).sum(axis=0)
    else:
        gauss_x = [pad_to_multiple(x, 2**levels, dims)]
        gauss_w = [pad_to_multiple(w, 2**levels, dims)]
        for _ in range(levels):
            gauss_x.append(down(gauss_x[-1], dims))
            gauss_w.append(down(gauss_w[-1], dims))
        fused = (gauss_w[-1] * gauss_x[-1]).sum(axis=0)
        for level in range(levels - 1, -1, -1):
            lap = gauss_x[level] - up(gauss_x[level + 1], dims)
            fused = up(fused, dims) + (gauss_w[level] * lap).sum(axis=0)
        fused = fused[(Ellipsis, *(slice(0, s) for s in spatial))]
    if envelope and levels:
        fused = np.minimum(np.maximum(fused, x.min(axis=0)), x.max(axis=0))
    return fused.astype(np.float32, copy=False)


def window_sum(x: np.ndarray, dims: int) -> np.ndarray:
    """Sum over the 3 x 3 (x 3) window around each value of the last ``dims`` axes (zeros outside)."""
    for axis in range(x.ndim - dims, x.ndim):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (1, 1)
        padded = np.pad(x, pad)
        n = x.shape[axis]
        x = sum(_along(padded, axis, k, k + n) for k in range(3))
    return x
