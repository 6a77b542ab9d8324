"""Metric variants of the published comparison tables, for comparison with those rows only.

Our metrics follow ``shared/docs/metrics-spec.md``. The published table of ``shared/docs/targets.md``
(CDDFuse, Zhao et al. 2023, Table 5, and the IFCNN row re-run with the same protocol) differs in three places:
MI in nats (ours times ln 2), SF over M(N-1) (< 0.2 % apart) and SSIM. Their SSIM is scikit-image's
``structural_similarity`` with its defaults of that time applied to float images: a 7x7 uniform window,
sample (N-1) covariances, the mean over the map less a 3-pixel border, and the legacy float data range of 2
(so ``C1 = (0.01*2)^2``, ``C2 = (0.03*2)^2``: on 0..255 images almost no stabilisation). It rewards an
exactly black background and punishes any noise there far more than ours (data range 255).

``ssim_published`` computes that variant from the description above so that our SSIM column can be set
next to theirs. It is not one of the product's metrics and is not shown in readouts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

PUBLISHED_SSIM_WINDOW = 7
PUBLISHED_SSIM_DATA_RANGE = 2.0


def ssim_published_pair(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM of two 2-D images as the published tables computed it (see the module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"ssim_published_pair needs two 2-D images of one shape, got {x.shape} and {y.shape}")
    win = PUBLISHED_SSIM_WINDOW
    if min(x.shape) < win:
        raise ValueError(f"images of {x.shape} are smaller than the {win}x{win} window")
    n = win * win
    unbiased = n / (n - 1)

    def mean(z: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(z, size=win, mode="reflect")

    mx, my = mean(x), mean(y)
    vx = unbiased * (mean(x * x) - mx * mx)
    vy = unbiased * (mean(y * y) - my * my)
    cxy = unbiased * (mean(x * y) - mx * my)
    c1 = (0.01 * PUBLISHED_SSIM_DATA_RANGE) ** 2
    c2 = (0.03 * PUBLISHED_SSIM_DATA_RANGE) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    pad = (win - 1) // 2
    return float(s[pad:-pad, pad:-pad].mean())


def ssim_published(sources: Sequence[np.ndarray], fused: np.ndarray) -> float:
    """Sum over sources of :func:`ssim_published_pair` (the published SSIM column: SSIM(F,A) + SSIM(F,B))."""
    return sum(ssim_published_pair(fused, s) for s in sources)
