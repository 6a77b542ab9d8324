"""No-reference metrics (the fused image only): EN, SD, SF, AG, EI.

Each kernel takes a :class:`~._stack.Stack` and returns one value per slice. Definitions follow
``shared/docs/metrics-spec.md`` to the letter (e.g. SF divides both sums by M*N, AG uses MATLAB's
``gradient``).
"""

from __future__ import annotations

import numpy as np

from MedFusionLib.metrics._stack import Stack


def entropy_from_counts(counts: np.ndarray) -> np.ndarray:
    """Shannon entropy in bits of histograms along the last axis (``-sum p log2 p`` over non-zero p)."""
    counts = counts.astype(np.float64, copy=False)
    total = counts.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = counts / total
        terms = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return -terms.sum(axis=-1)


def batched_histogram(values: np.ndarray, bins: int) -> np.ndarray:
    """Per-slice histograms of non-negative integer-valued ``values`` of shape (B, ...) -> (B, bins)."""
    b = values.shape[0]
    idx = values.reshape(b, -1).astype(np.int64) + (np.arange(b, dtype=np.int64) * bins)[:, None]
    return np.bincount(idx.ravel(), minlength=b * bins).reshape(b, bins)


def entropy(st: Stack) -> np.ndarray:
    """EN: 256-bin histogram of floor(F) (values outside 0..255 fall in the end bins)."""
    levels = np.clip(np.floor(st.fused), 0, 255)
    return entropy_from_counts(batched_histogram(levels, 256))


def standard_deviation(st: Stack) -> np.ndarray:
    """SD: population standard deviation (divides by M*N)."""
    return st.fused.std(axis=(-2, -1))


def spatial_frequency(st: Stack) -> np.ndarray:
    """SF = sqrt(RF + CF), both sums of squared first differences divided by M*N."""
    f = st.fused
    mn = f.shape[-2] * f.shape[-1]
    rf = (np.diff(f, axis=-1) ** 2).sum(axis=(-2, -1)) / mn
    cf = (np.diff(f, axis=-2) ** 2).sum(axis=(-2, -1)) / mn
    return np.sqrt(rf + cf)


def average_gradient(st: Stack) -> np.ndarray:
    """AG with MATLAB ``gradient`` (central inside, one-sided at borders), sum over all pixels / ((M-1)(N-1))."""
    f = st.fused
    gx = np.gradient(f, axis=-1)
    gy = np.gradient(f, axis=-2)
    m, n = f.shape[-2], f.shape[-1]
    return np.sqrt((gx * gx + gy * gy) / 2.0).sum(axis=(-2, -1)) / ((m - 1) * (n - 1))


def edge_intensity(st: Stack) -> np.ndarray:
    """EI: mean Sobel magnitude, correlation with replicated borders."""
    from MedFusionLib.metrics.structural import sobel  # structural imports this module's histogram helpers

    sx, sy = sobel(st.fused, "edge")
    return np.sqrt(sx * sx + sy * sy).mean(axis=(-2, -1))
