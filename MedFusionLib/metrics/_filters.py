"""Small filtering helpers shared by the metrics: MATLAB-style Gaussian windows and "valid" separable filters.

All filters here are separable, so a K x K window costs 2K multiply-adds per pixel and whole stacks of
slices are filtered in one call (the leading axes are batch axes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage


def gaussian_window_1d(size: int, sigma: float) -> np.ndarray:
    """1-D factor of MATLAB ``fspecial('gaussian', size, sigma)``: ``outer(k, k)`` equals the 2-D window.

    fspecial zeroes entries below ``eps * max``; for the windows used here (11/1.5 and 17/3.4 ... 3/0.6) no
    entry is that small, so the 2-D window is exactly separable (a test checks this).
    """
    half = (size - 1) / 2.0
    x = np.arange(size, dtype=np.float64) - half
    k = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return k / k.sum()


def correlate_valid(x: np.ndarray, kernel: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    """Correlate ``x`` with the 1-D ``kernel`` along each of ``axes`` keeping only "valid" positions.

    Equivalent to MATLAB ``filter2(outer(k, k), x, 'valid')`` for two axes. An axis shorter than the kernel
    gives an empty result, as in MATLAB.
    """
    k = len(kernel)
    lo = k // 2
    out = x
    # innermost (contiguous) axis first: its pass is the fastest, and it shrinks the strided passes
    for ax in sorted(axes, key=lambda a: a % x.ndim, reverse=True):
        n = out.shape[ax]
        if n < k:
            shape = list(out.shape)
            shape[ax] = 0
            return np.zeros(shape, dtype=np.float64)
        full = ndimage.correlate1d(out, kernel, axis=ax, mode="constant", cval=0.0)
        index = [slice(None)] * out.ndim
        # correlate1d centres the kernel (origin 0): output i uses x[i - lo .. i + lo]; valid = lo .. n-1-(k-1-lo)
        index[ax] = slice(lo, n - (k - 1 - lo))
        out = full[tuple(index)]
    return out


def correlate_same(x: np.ndarray, kernels: Sequence[np.ndarray], axes: Sequence[int], mode: str) -> np.ndarray:
    """Separable "same"-size correlation: ``kernels[i]`` along ``axes[i]``, borders by scipy ``mode``.

    ``mode="constant"`` is zero padding (MATLAB ``conv2(..., 'same')``), ``"nearest"`` replicates borders.
    """
    out = x
    for kern, ax in zip(kernels, axes):
        out = ndimage.correlate1d(out, np.asarray(kern, dtype=np.float64), axis=ax, mode=mode, cval=0.0)
    return out
