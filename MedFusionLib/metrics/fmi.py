"""FMI: Haghighat's fast feature mutual information on raw pixels, 3x3 windows, mean over sources.

The spec describes each window with dense 9 x 9 tables (Frechet bounds U and Lo, their pmf D, the joint
pmf J). Evaluating those for every window costs ~20 passes over n x 81 numbers, far over the time budget,
so this module computes the same quantities from their structure:

* cumulative sums are non-decreasing, so D(U) (the comonotonic coupling) and D(Lo) (the countermonotonic
  one) are non-zero only on a monotone path of at most 17 cells, found by merging the two sorted lists of
  breakpoints (ranks from one 9 x 9 comparison, no sort);
* ``sum(U)`` and ``sum(Lo)`` follow from the path masses: a cell (i, j) contributes to every table entry
  at or after it, i.e. ``(9 - i)(9 - j)`` times (0-based);
* ``J = w D + (1 - w) outer(pf, ps)``; the entropy of the dense outer-product part has a closed form and
  only the path cells need a correction.

Arrays are laid out window-last, ``(9, n)``: every operation then runs over long contiguous rows (numpy
is slow on reductions, cumsums and gathers along a short last axis), gathers use flat ``take``, small reductions ``einsum`` (not BLAS).

Windows equal in S and F score 1; windows with correlation 0 (or a point-mass pdf) have ``w = 0``, hence
``J = outer(pf, ps)`` and ``I = 0``: they score 0 without further work. Test
``test_metrics_fmi.py`` checks this module against a literal dense transcription of the spec.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._stack import Stack

L = 9  # 3 x 3 window
_IDX = np.arange(1, L + 1, dtype=np.float64)
_IDX2 = _IDX * _IDX
_ROWS = np.arange(L, dtype=np.int64)[:, None]
CHUNK = 1 << 17  # windows per slice batch (bounds memory for volumes)
BLOCK = 2048  # windows per vectorised block: (9, BLOCK) float64 arrays stay in L2 cache


def windows(x: np.ndarray) -> np.ndarray:
    """All 3x3 windows of a (B, H, W) stack as a (9, n) array, values in column-major window order."""
    v = sliding_window_view(x, (3, 3), axis=(-2, -1))  # (B, H-2, W-2, row, col)
    v = np.moveaxis(v, (-1, -2), (0, 1))  # (col, row, B, H-2, W-2)
    return np.ascontiguousarray(v).reshape(L, -1)


def _cumsum_rows(p: np.ndarray) -> np.ndarray:
    """Sequential cumulative sum over axis 0 (np.cumsum along axis 0 is ~50x slower on (9, n) arrays)."""
    out = np.empty_like(p)
    out[0] = p[0]
    for i in range(1, p.shape[0]):
        np.add(out[i - 1], p[i], out=out[i])
    return out


def window_stats(w: np.ndarray) -> Dict[str, np.ndarray]:
    """Per-window pdf (min-max normalised, divided by its sum), cdf, log-pdf, entropy, deviation (window-last)."""
    mn = w.min(axis=0)
    rng = w.max(axis=0) - mn
    flat = rng == 0
    y = (w - mn) / (rng + flat)  # (x - min) / (max - min); 0 / 1 = 0 in a constant window ...
    y += flat  # ... which becomes all ones
    p = y / y.sum(axis=0)
    lp = np.log2(p + (p == 0))  # log2 p, and 0 where p = 0 (only ever multiplied by p)
    m1 = np.einsum("i,in->n", _IDX, p)
    m2 = np.einsum("i,in->n", _IDX2, p)
    centred = p - p.sum(axis=0) / L
    centred *= ~flat  # exactly 0: a constant window has zero covariance with anything (c = 0)
    return {
        "p": p,
        "cdf": _cumsum_rows(p),
        "lp": lp,
        "H": -np.einsum("in,in->n", p, lp),
        "sd": np.sqrt(np.maximum(m2 - m1 * m1, 0.0)),
        "centred": centred,
        "var": np.einsum("in,in->n", centred, centred),
    }


def fmi_window_scores(s: np.ndarray, f: np.ndarray) -> np.ndarray:
    """FMI score of every window pair: ``s`` and ``f`` are (9, n) arrays from :func:`windows`.

    Windows equal in S and F score 1 and need no statistics; the others are processed in blocks of
    ``BLOCK`` windows (small enough to stay in cache), and only those with c != 0 reach steps 4-8.
    """
    eq = (s == f).all(axis=0)
    out = eq.astype(np.float64)
    todo = np.flatnonzero(~eq)
    for lo in range(0, todo.size, BLOCK):
        idx = todo[lo : lo + BLOCK]
        out[idx] = _block_scores(np.take(s, idx, axis=1), np.take(f, idx, axis=1))
    return out


def _block_scores(s: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Scores of windows that differ between S and F: 0 unless c != 0 and both pdfs are non-degenerate."""
    ss = window_stats(s)
    fs = window_stats(f)
    cov = np.einsum("in,in->n", ss["centred"], fs["centred"])
    den = np.sqrt(ss["var"] * fs["var"])
    sdp = ss["sd"] * fs["sd"]
    active = np.flatnonzero((cov != 0) & (den > 0) & (sdp > 0))
    out = np.zeros(s.shape[1])
    if active.size:
        if active.size < s.shape[1]:
            ss = {k: np.take(v, active, axis=-1) for k, v in ss.items()}
            fs = {k: np.take(v, active, axis=-1) for k, v in fs.items()}
            cov, den, sdp = cov[active], den[active], sdp[active]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[active] = _scores(ss, fs, cov / den, sdp)
    return out


def _scores(ss: Dict[str, np.ndarray], fs: Dict[str, np.ndarray], c: np.ndarray, sdp: np.ndarray) -> np.ndarray:
    """Steps 4-8 of the spec (meaningful where c != 0 and both pdfs are non-degenerate)."""
    n = c.shape[0]
    cols = np.arange(n)
    pos = c >= 0
    cf, pf, lpf = fs["cdf"], fs["p"], fs["lp"]
    cs = ss["cdf"]
    # S side of the coupling: the pdf as is for the upper bound (c >= 0); for the lower bound u pairs with
    # 1 - u, i.e. the comonotonic coupling with S's pdf reversed, cell column k standing for j = 8 - k.
    pq = np.where(pos, ss["p"], ss["p"][::-1])
    lpq = np.where(pos, ss["lp"], ss["lp"][::-1])
    q = _cumsum_rows(pq)

    # Merge the sorted breakpoint lists by ranks (no sort): k_of_f[i] = #{q < cf_i}, i_of_q[k] = #{cf <= q_k}.
    below = (q[None, :, :] < cf[:, None, :]).view(np.uint8)  # [i, k, window]
    k_of_f = below.sum(axis=1, dtype=np.uint8).astype(np.int64)
    i_of_q = L - below.sum(axis=0, dtype=np.uint8).astype(np.int64)
    # The segment ending at cf_i is cell (i, k_of_f[i]); the one ending at q_k is cell (i_of_q[k], k).
    # Tables get a zero row in front (value below the first breakpoint) or at the end (index 9 = past the
    # last breakpoint: rounding noise, dropped).
    zero = np.zeros((1, n))
    at_k = k_of_f * n + cols
    at_i = i_of_q * n + cols
    mass_f = cf - np.maximum(np.concatenate([zero, cf[:-1]]), np.take(np.concatenate([zero, q]), at_k))
    mass_q = q - np.maximum(np.concatenate([zero, q[:-1]]), np.take(np.concatenate([zero, cf]), at_i))
    mass_f *= k_of_f < L
    mass_q *= i_of_q < L

    # sum of the 9x9 bound table = sum of path masses times the number of table entries they reach:
    # (9 - i) rows times (9 - j) columns, j = k (upper bound) or 8 - k (lower bound).
    flip = (~pos).astype(np.int64)
    colw_f = (L - k_of_f) + flip * (2 * k_of_f + 1 - L)
    colw_q = (L - _ROWS) + flip * (2 * _ROWS + 1 - L)
    bound_sum = np.einsum("in,in->n", (L - _ROWS) * colw_f, mass_f) + np.einsum("in,in->n", (L - i_of_q) * colw_q, mass_q)
    cov_bound = bound_sum - cf.sum(axis=0) * cs.sum(axis=0)
    w = np.where(cov_bound != 0, c / (cov_bound / sdp), 0.0)
    a = 1.0 - w
    la = np.log2(np.abs(a + (a == 0)))

    # Entropy of J = w D + a outer(pf, ps): closed form for the outer part, corrected on the path cells.
    sum_f, sum_q = pf.sum(axis=0), pq.sum(axis=0)
    hf, hs = fs["H"], ss["H"]
    outer_part = a * la * sum_f * sum_q - a * (sum_q * hf + sum_f * hs)
    pq_end = np.concatenate([pq, zero]).ravel()
    lpq_end = np.concatenate([lpq, zero]).ravel()
    pf_end = np.concatenate([pf, zero]).ravel()
    lpf_end = np.concatenate([lpf, zero]).ravel()
    correction = _path_correction(mass_f, pf, lpf, np.take(pq_end, at_k), np.take(lpq_end, at_k), w, a, la)
    correction += _path_correction(mass_q, np.take(pf_end, at_i), np.take(lpf_end, at_i), pq, lpq, w, a, la)
    joint_entropy = -(outer_part + correction)
    mi = hs + hf - joint_entropy
    hsum = hs + hf
    ok = (mi != 0) & (hsum > 0)
    return ok * (2.0 * mi / (hsum + ~ok))


def _path_correction(mass, pf, lpf, pq, lpq, w, a, la) -> np.ndarray:
    """sum over path cells of J log2|J| - t log2|t|, with t = a pf pq and J = w mass + t."""
    t = a * pf * pq
    j = w * mass + t
    j_log_j = j * np.log2(np.abs(j) + (j == 0))
    return (j_log_j - t * (la + lpf + lpq)).sum(axis=0)


def fmi(st: Stack) -> np.ndarray:
    """FMI per slice: mean window score, then mean over sources (slices processed in chunks of ~CHUNK windows)."""
    b, h, w = st.fused.shape
    per_slice = max(1, (h - 2) * (w - 2))
    step = max(1, CHUNK // per_slice)
    out = np.zeros(b)
    for lo in range(0, b, step):
        hi = min(b, lo + step)
        fw = windows(st.fused[lo:hi])
        for s in st.sources:
            scores = fmi_window_scores(windows(s[lo:hi]), fw)
            out[lo:hi] += scores.reshape(hi - lo, -1).mean(axis=1)
    return out / len(st.sources)
