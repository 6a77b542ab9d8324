"""VIF: Sheikh & Bovik's pixel-domain visual information fidelity (``vifp_mscale.m``), summed over sources.

Four scales; at scale s a Gaussian window of size 2^(5-s)+1 and sigma size/5; from scale 2 on both images
are filtered ("valid") and subsampled by 2 before the local statistics. The clamps are those of the
MATLAB original, applied in the same order. The fused image's pyramid is shared by all sources.
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from ._filters import correlate_valid, gaussian_window_1d
from ._stack import Stack

SIGMA_NSQ = 2.0
EPS = 1e-10
SCALES = 4
WINDOWS = [gaussian_window_1d(2 ** (5 - s) + 1, (2 ** (5 - s) + 1) / 5.0) for s in range(1, SCALES + 1)]


def _pyramid(img: np.ndarray) -> List[np.ndarray]:
    """The image as seen at each scale (filtered + subsampled from scale 2 on)."""
    levels = []
    cur = img
    for s, win in enumerate(WINDOWS):
        if s > 0:
            cur = correlate_valid(cur, win, axes=(-2, -1))[..., ::2, ::2]
        levels.append(cur)
    return levels


def vif_terms(ref_levels: List[np.ndarray], dist_levels: List[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """Numerator and denominator sums (per slice) of VIF(ref -> dist)."""
    num = 0.0
    den = 0.0
    for win, ref, dist in zip(WINDOWS, ref_levels, dist_levels):
        f = correlate_valid(np.stack([ref, dist, ref * ref, dist * dist, ref * dist]), win, axes=(-2, -1))
        mu1, mu2, e11, e22, e12 = f
        s1 = e11 - mu1 * mu1
        s2 = e22 - mu2 * mu2
        s12 = e12 - mu1 * mu2
        s1 = np.where(s1 < 0, 0.0, s1)
        s2 = np.where(s2 < 0, 0.0, s2)
        g = s12 / (s1 + EPS)
        sv = s2 - g * s12
        low1 = s1 < EPS
        g = np.where(low1, 0.0, g)
        sv = np.where(low1, s2, sv)
        s1 = np.where(low1, 0.0, s1)
        low2 = s2 < EPS
        g = np.where(low2, 0.0, g)
        sv = np.where(low2, 0.0, sv)
        neg = g < 0
        sv = np.where(neg, s2, sv)
        g = np.where(neg, 0.0, g)
        sv = np.where(sv <= EPS, EPS, sv)
        num = num + np.log10(1.0 + g * g * s1 / (sv + SIGMA_NSQ)).sum(axis=(-2, -1))
        den = den + np.log10(1.0 + s1 / SIGMA_NSQ).sum(axis=(-2, -1))
    return num, den


def vif(st: Stack) -> np.ndarray:
    """VIF summed over sources; a source with no local variance at any scale (den = 0) contributes 0."""
    fused_levels = _pyramid(st.fused)
    total = np.zeros(st.batch)
    for s in st.sources:
        num, den = vif_terms(_pyramid(s), fused_levels)
        num = np.broadcast_to(num, (st.batch,))
        den = np.broadcast_to(den, (st.batch,))
        with np.errstate(divide="ignore", invalid="ignore"):
            total = total + np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return total
