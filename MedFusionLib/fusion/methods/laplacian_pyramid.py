"""Laplacian-pyramid fusion (Burt & Adelson 1983; Burt & Kolczynski 1993).

Each input is split into band-pass levels; at every level the coefficients are weighted by their local energy
raised to a power (``fusion/selection.py``: nearly "the larger wins", so the sharpest structure of either
modality survives, but continuous where the inputs compete, so slice mode shows no bands between slices), and
the coarsest level is averaged (so overall brightness stays balanced). The same code runs on 2-D slices and on 3-D volumes: only the number of spatial
axes changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy  # scipy.ndimage loads on first use: fusing with another method never imports it

from MedFusionLib.fusion.registry import declare_method
from MedFusionLib.fusion.selection import soft_selection_weights

MAX_LEVELS = 4


def _sigmas(ndim: int, spatial_axes: Sequence[int], sigma: float) -> list[float]:
    return [sigma if axis in spatial_axes else 0.0 for axis in range(ndim)]


def _blur(x: np.ndarray, spatial_axes: Sequence[int]) -> np.ndarray:
    return scipy.ndimage.gaussian_filter(x, _sigmas(x.ndim, spatial_axes, 1.0), mode="reflect", truncate=2.0)


def _downsample(x: np.ndarray, spatial_axes: Sequence[int]) -> np.ndarray:
    index = tuple(slice(None, None, 2) if axis in spatial_axes else slice(None) for axis in range(x.ndim))
    return _blur(x, spatial_axes)[index]


def _upsample(x: np.ndarray, shape: Sequence[int], spatial_axes: Sequence[int]) -> np.ndarray:
    for axis in spatial_axes:
        x = np.repeat(x, 2, axis=axis)
    x = x[tuple(slice(0, n) for n in shape)]
    return _blur(x, spatial_axes)


def _levels(shape: Sequence[int], spatial_axes: Sequence[int]) -> int:
    smallest = min(shape[axis] for axis in spatial_axes)
    return int(max(0, min(MAX_LEVELS, np.floor(np.log2(max(smallest, 1))) - 2)))


def _local_energy(x: np.ndarray, spatial_axes: Sequence[int]) -> np.ndarray:
    size = [3 if axis in spatial_axes else 1 for axis in range(x.ndim)]
    return scipy.ndimage.uniform_filter(np.abs(x), size=size, mode="reflect")


def fuse_laplacian(stack: np.ndarray, mode: str) -> np.ndarray:
    """Fuse ``stack`` (inputs on axis 0) over its last two axes (slice mode) or three (volume mode)."""
    n_spatial = 2 if mode == "slice" else 3
    stack = stack.astype(np.float32, copy=False)
    spatial_axes = tuple(range(stack.ndim - n_spatial, stack.ndim))
    n_levels = _levels(stack.shape, spatial_axes)

    gaussian = stack
    details = []
    for _ in range(n_levels):
        smaller = _downsample(gaussian, spatial_axes)
        details.append(gaussian - _upsample(smaller, gaussian.shape, spatial_axes))
        gaussian = smaller

    fused = gaussian.mean(axis=0)
    fused_axes = tuple(axis - 1 for axis in spatial_axes)
    for band in reversed(details):
        weights = soft_selection_weights(_local_energy(band, spatial_axes))  # no hard switch: no slice bands
        band_fused = (weights * band).sum(axis=0)
        fused = band_fused + _upsample(fused, band_fused.shape, fused_axes)
    return np.clip(fused, 0.0, 1.0).astype(np.float32)


declare_method(
    fuse_laplacian,
    name="laplacian",
    family="classical",
    description="Laplacian pyramid: per band, weights from local energy (soft selection, no hard switching), averaged base.",
    inputs="n",
    volume_note="A 3-D pyramid (blur and subsampling along all three axes).",
    references=("Burt & Adelson, IEEE Trans. Commun. 1983",),
)
