"""The published tables' SSIM variant (data range 2, 7x7 uniform window), checked window by window."""

from __future__ import annotations

import numpy as np
import pytest

from MedFusionLib.metrics.published_protocol import ssim_published, ssim_published_pair


def _ssim_by_windows(x: np.ndarray, y: np.ndarray) -> float:
    """Direct transcription: every 7x7 window whose centre is >= 3 pixels from the border, sample statistics."""
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    values = []
    for i in range(3, x.shape[0] - 3):
        for j in range(3, x.shape[1] - 3):
            wx = x[i - 3 : i + 4, j - 3 : j + 4].ravel()
            wy = y[i - 3 : i + 4, j - 3 : j + 4].ravel()
            mx, my = wx.mean(), wy.mean()
            vx, vy = wx.var(ddof=1), wy.var(ddof=1)
            cxy = np.cov(wx, wy, ddof=1)[0, 1]
            values.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_matches_window_by_window_transcription() -> None:
    rng = np.random.default_rng(7)
    x = np.floor(rng.uniform(0, 255, (20, 17)))
    y = np.clip(x + np.floor(rng.normal(0, 20, x.shape)), 0, 255)
    y[:6, :6] = 0  # a black corner, as in the atlas backgrounds
    assert ssim_published_pair(x, y) == pytest.approx(_ssim_by_windows(x, y), rel=1e-9)


def test_identical_images_score_one_per_source() -> None:
    x = np.floor(np.random.default_rng(1).uniform(0, 255, (16, 16)))
    assert ssim_published([x, x], x) == pytest.approx(2.0)


def test_noise_on_black_background_is_punished_far_more_than_by_range_255() -> None:
    black = np.zeros((32, 32))
    speck = black.copy()
    speck[::4, ::4] = 1.0  # one grey level
    assert ssim_published_pair(speck, black) < 0.1


def test_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="one shape"):
        ssim_published_pair(np.zeros((10, 10)), np.zeros((10, 11)))
