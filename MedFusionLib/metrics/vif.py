"""VIF: Sheikh & Bovik's pixel-domain visual information fidelity (``vifp_mscale.m``), summed over sources.

Four scales; at scale s a Gaussian window of size 2^(5-s)+1 and sigma size/5; from scale 2 on both images
are filtered ("valid") and subsampled by 2 before the local statistics. The clamps are those of the
MATLAB original, applied in the same order. The fused image's pyramid is shared by all sources.
"""

from __future__ import annotations

import numpy as np

from MedFusionLib.metrics._filters import correlate_valid, gaussian_window_1d
from MedFusionLib.metrics._stack import Stack

SIGMA_NSQ = 2.0
EPS = 1e-10
SCALES = 4
WINDOWS = [gaussian_window_1d(2 ** (5 - s) + 1, (2 ** (5 - s) + 1) / 5.0) for s in range(1, SCALES + 1)]


def _pyramid(images: np.ndarray) -> list[np.ndarray]:
    """A stack of images (leading axis) as seen at each scale (filtered + subsampled from scale 2 on)."""
    levels = []
    cur = images
    for s, win in enumerate(WINDOWS):
        if s > 0:  # filter ("valid") then keep every second row and column; columns dropped between passes
            cur = correlate_valid(cur, win, axes=(-1,))[..., ::2]
            cur = correlate_valid(cur, win, axes=(-2,))[..., ::2, :]
        levels.append(cur)
    return levels


def vif_terms(level: np.ndarray, win: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Numerator and denominator sums (per slice) of VIF(source -> F) at one scale, for every source.

    ``level`` stacks F first, then the sources. F's local mean and variance are shared by the sources.
    Maps are filtered one at a time (small temporaries, see ``structural.ssim_maps``).
    """
    dist = level[0]
    maps = [dist, dist * dist]
    for ref in level[1:]:
        maps += [ref, ref * ref, ref * dist]
    f = [correlate_valid(m, win, axes=(-2, -1)) for m in maps]  # one map at a time: small temporaries
    mu2 = f[0]
    s2_shared = f[1] - mu2 * mu2
    nums, dens = [], []
    s2 = np.maximum(s2_shared, 0.0)
    low2 = s2 < EPS
    for i in range(len(level) - 1):
        mu1, e11, e12 = f[2 + 3 * i], f[3 + 3 * i], f[4 + 3 * i]
        s1 = np.maximum(e11 - mu1 * mu1, 0.0)
        s12 = e12 - mu1 * mu2
        g = s12 / (s1 + EPS)
        sv = np.maximum(s2 - g * s12, EPS)
        # The original's clamps in order: s1 < eps -> g = 0, sv = s2, s1 = 0; s2 < eps -> g = 0, sv = 0;
        # g < 0 -> sv = s2, g = 0; sv = max(sv, eps). Wherever g ends at 0 the numerator term is
        # log10(1) = 0 whatever sv is, so only g and s1 need masking; sv = s2 - g s12 holds elsewhere.
        low1 = s1 < EPS
        g *= ~(low1 | low2 | (g < 0))
        s1 *= ~low1
        nums.append(np.log10(1.0 + g * g * s1 / (sv + SIGMA_NSQ)).sum(axis=(-2, -1)))
        dens.append(np.log10(1.0 + s1 / SIGMA_NSQ).sum(axis=(-2, -1)))
    return nums, dens


def vif(st: Stack) -> np.ndarray:
    """VIF summed over sources; a source with no local variance at any scale (den = 0) contributes 0."""
    n = len(st.sources)
    num = np.zeros((n, st.batch))
    den = np.zeros((n, st.batch))
    for win, level in zip(WINDOWS, _pyramid(np.stack([st.fused] + st.sources))):
        nums, dens = vif_terms(level, win)
        num += np.array(nums).reshape(n, -1)  # an empty level (tiny image) adds zeros
        den += np.array(dens).reshape(n, -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0).sum(axis=0)
