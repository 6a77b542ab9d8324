"""Metrics comparing F with each source pixel by pixel or window by window: SSIM, QABF, MSE, RMSE, PSNR, SCD.

Conventions for degenerate input (documented in docs/metrics.md): PSNR is capped at ``PSNR_CAP`` dB so
that identical images give a finite, JSON-valid number; QABF is 0 when the sources have no gradient at
all; a Pearson correlation with a constant operand is 0 (so SCD of F = A = B is 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from MedFusionLib.metrics._filters import correlate_valid, gaussian_window_1d
from MedFusionLib.metrics._stack import Stack

PEAK = 255.0
PSNR_CAP = 100.0  # dB; reached only for MSE <= 255^2 * 1e-10 (about 6.5e-6 gray levels squared)

SSIM_WINDOW = gaussian_window_1d(11, 1.5)
SSIM_C1 = (0.01 * PEAK) ** 2
SSIM_C2 = (0.03 * PEAK) ** 2

# Xydeas-Petrovic constants
QABF_TG, QABF_KG, QABF_DG = 0.9994, -15.0, 0.5
QABF_TA, QABF_KA, QABF_DA = 0.9879, -22.0, 0.8


def ssim_maps(
    sources: Sequence[np.ndarray], fused: np.ndarray, window: np.ndarray, axes: tuple[int, ...]
) -> list[np.ndarray]:
    """Wang et al. SSIM map of each source against F over the "valid" positions of a separable window.

    F's mean and second moment are filtered once and shared by the sources. Maps are filtered one at a
    time: stacking them looks tidier but makes multi-megabyte temporaries that glibc hands back to the OS
    after each call (page faults cost as much as the filtering). ``axes`` are negative (the spatial axes),
    so leading batch axes pass through.
    """
    maps = [fused, fused * fused]
    for s in sources:
        maps += [s, s * s, s * fused]
    f = [correlate_valid(m, window, axes=list(axes)) for m in maps]  # one map at a time: small temporaries
    mu_f = f[0]
    mu_ff = mu_f * mu_f
    s_ff = f[1] - mu_ff
    out = []
    for i in range(len(sources)):
        mu_s, e_ss, e_sf = f[2 + 3 * i], f[3 + 3 * i], f[4 + 3 * i]
        mu_ss = mu_s * mu_s
        mu_sf = mu_s * mu_f
        num = (2 * mu_sf + SSIM_C1) * (2 * (e_sf - mu_sf) + SSIM_C2)
        den = (mu_ss + mu_ff + SSIM_C1) * ((e_ss - mu_ss) + s_ff + SSIM_C2)
        out.append(num / den)
    return out


def ssim(st: Stack) -> np.ndarray:
    """SSIM summed over sources; each term the mean of the valid SSIM map (11x11, sigma 1.5, L = 255)."""
    return sum(m.mean(axis=(-2, -1)) for m in ssim_maps(st.sources, st.fused, SSIM_WINDOW, (-2, -1)))


def sobel(img: np.ndarray, pad_mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Sobel correlation responses over the last two axes.

    ``gx`` uses [[-1,0,1],[-2,0,2],[-1,0,1]], ``gy`` [[1,2,1],[0,0,0],[-1,-2,-1]]; borders by ``np.pad``
    mode ("constant" = zeros, "edge" = replicated). Adds and doublings only: exact for integer inputs.
    """
    pad = [(0, 0)] * (img.ndim - 2) + [(1, 1), (1, 1)]
    p = np.pad(img, pad, mode=pad_mode)  # type: ignore[call-overload]  # numpy's stubs want a literal mode
    rows = p[..., :-2, :] + 2.0 * p[..., 1:-1, :] + p[..., 2:, :]  # vertical smoothing
    gx = rows[..., 2:] - rows[..., :-2]
    cols = p[..., :, :-2] + 2.0 * p[..., :, 1:-1] + p[..., :, 2:]  # horizontal smoothing
    gy = cols[..., :-2, :] - cols[..., 2:, :]
    return gx, gy


def _sobel_strength_angle(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zero-padded Sobel strength and atan (not atan2) orientation, pi/2 where gx = 0.

    The spec's "same" convolution flips both kernels, which negates gx and gy together: strength and
    gy/gx are unchanged, so the correlation computed here gives identical values.
    """
    gx, gy = sobel(img, "constant")
    g = np.sqrt(gx * gx + gy * gy)
    zero = gx == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.arctan(gy / np.where(zero, 1.0, gx))
    a[zero] = np.pi / 2
    return g, a


def relative_strength(g_s: np.ndarray, g_f: np.ndarray) -> np.ndarray:
    """G: gF/gS if gS > gF, gS/gF if gS < gF, and gF itself where they are equal (as the MATLAB original)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            g_s > g_f, g_f / np.where(g_s > 0, g_s, 1.0), np.where(g_s < g_f, g_s / np.where(g_f > 0, g_f, 1.0), g_f)
        )


def edge_q(rel: np.ndarray, orient: np.ndarray) -> np.ndarray:
    """Q = Qg(G) * Qa(A) with the Xydeas-Petrovic sigmoids."""
    q_g = QABF_TG / (1.0 + np.exp(QABF_KG * (rel - QABF_DG)))
    q_a = QABF_TA / (1.0 + np.exp(QABF_KA * (orient - QABF_DA)))
    return q_g * q_a


def edge_preservation(g_s: np.ndarray, a_s: np.ndarray, g_f: np.ndarray, a_f: np.ndarray) -> np.ndarray:
    """Q_SF map of Xydeas-Petrovic from 2-D strengths and atan orientations."""
    return edge_q(relative_strength(g_s, g_f), 1.0 - np.abs(a_s - a_f) / (np.pi / 2))


def qabf_from_maps(strength_angle, fused_strength_angle, axes: tuple[int, ...]) -> np.ndarray:
    """QABF = sum_S(Q_SF g_S) / sum_S(g_S) over ``axes``; 0 where the sources have no gradient."""
    g_f, a_f = fused_strength_angle
    num = 0.0
    den = 0.0
    for g_s, a_s in strength_angle:
        num = num + (edge_preservation(g_s, a_s, g_f, a_f) * g_s).sum(axis=axes)
        den = den + g_s.sum(axis=axes)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def qabf(st: Stack) -> np.ndarray:
    """QABF (Xydeas-Petrovic) generalised to N sources: sum of Q_SF g_S over sum of g_S."""
    maps = [_sobel_strength_angle(s) for s in st.sources]
    return qabf_from_maps(maps, _sobel_strength_angle(st.fused), (-2, -1))


def mse(st: Stack) -> np.ndarray:
    """MSE averaged over sources."""
    return st.cached(
        "MSE", lambda: sum(((s - st.fused) ** 2).mean(axis=(-2, -1)) for s in st.sources) / len(st.sources)
    )


def rmse(st: Stack) -> np.ndarray:
    """RMSE = sqrt of the source-averaged MSE."""
    return np.sqrt(mse(st))


def psnr_from_mse(m: np.ndarray) -> np.ndarray:
    """10 log10(255^2 / MSE), capped at PSNR_CAP (MSE = 0 gives the cap)."""
    with np.errstate(divide="ignore"):
        value = 10.0 * np.log10(PEAK * PEAK / np.asarray(m, dtype=np.float64))
    return np.minimum(value, PSNR_CAP)


def psnr(st: Stack) -> np.ndarray:
    """PSNR with the 0..255 scale as peak."""
    return psnr_from_mse(mse(st))


def pearson(x: np.ndarray, y: np.ndarray, axes: tuple[int, ...] = (-2, -1)) -> np.ndarray:
    """Pearson correlation over ``axes``; 0 when either operand is constant."""
    dx = x - x.mean(axis=axes, keepdims=True)
    dy = y - y.mean(axis=axes, keepdims=True)
    num = (dx * dy).sum(axis=axes)
    den = np.sqrt((dx * dx).sum(axis=axes) * (dy * dy).sum(axis=axes))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def scd(st: Stack) -> np.ndarray:
    """SCD = sum over sources of corr(S_i, F - sum of the other sources) (two sources: corr(A, F-B) + corr(B, F-A))."""
    out = np.zeros(st.batch)
    for i, s in enumerate(st.sources):
        others = sum(o for j, o in enumerate(st.sources) if j != i)
        out = out + pearson(s, st.fused - others)
    return out
