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

Windows equal in S and F score 1; windows with correlation 0 (or a point-mass pdf) have ``w = 0``, hence
``J = outer(pf, ps)`` and ``I = 0``: they score 0 without further work. Test
``test_metrics_fmi.py`` checks this module against a literal dense transcription of the spec.
"""

from __future__ import annotations

from typing import Dict

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._stack import Stack

L = 9  # 3 x 3 window
_IDX = np.arange(1, L + 1, dtype=np.float64)
_IDX2 = _IDX * _IDX
_COLS = np.arange(L)


def windows(x: np.ndarray) -> np.ndarray:
    """All 3x3 windows of a (B, H, W) stack as rows of 9 values in column-major order."""
    v = sliding_window_view(x, (3, 3), axis=(-2, -1))
    return np.ascontiguousarray(np.swapaxes(v, -1, -2)).reshape(-1, L)


def window_stats(w: np.ndarray) -> Dict[str, np.ndarray]:
    """Per-window pdf (min-max normalised, divided by its sum), cdf, entropy, log-pdf, deviation."""
    mn = w.min(axis=1, keepdims=True)
    rng = w.max(axis=1, keepdims=True) - mn
    y = np.where(rng > 0, (w - mn) / np.where(rng > 0, rng, 1.0), 1.0)
    p = y / y.sum(axis=1, keepdims=True)
    pos = p > 0
    lp = np.log2(np.where(pos, p, 1.0))  # 0 where p = 0 (only ever multiplied by p)
    radicand = p @ _IDX2 - (p @ _IDX) ** 2
    centred = p - p.mean(axis=1, keepdims=True)
    return {
        "p": p,
        "cdf": np.cumsum(p, axis=1),
        "lp": lp,
        "H": -(p * lp).sum(axis=1),
        "sd": np.sqrt(np.maximum(radicand, 0.0)),
        "centred": centred,
        "var": (centred * centred).sum(axis=1),
    }


def fmi_window_scores(s: np.ndarray, f: np.ndarray, fstats: Dict[str, np.ndarray] | None = None) -> np.ndarray:
    """FMI score of every window pair (rows of ``s`` and ``f``, 9 values each, column-major)."""
    if fstats is None:
        fstats = window_stats(f)
    n = s.shape[0]
    score = np.zeros(n)
    eq = (s == f).all(axis=1)
    score[eq] = 1.0
    rest = np.flatnonzero(~eq)
    if rest.size == 0:
        return score
    ss = window_stats(s[rest])
    fs = {k: v[rest] for k, v in fstats.items()}

    cov = (ss["centred"] * fs["centred"]).sum(axis=1)
    den = np.sqrt(ss["var"] * fs["var"])
    sdp = ss["sd"] * fs["sd"]
    active = (cov != 0) & (den > 0) & (sdp > 0)
    c = np.where(active, cov / np.where(active, den, 1.0), 0.0)
    keep = np.flatnonzero(active)
    if keep.size == 0:
        return score
    c, sdp = c[keep], sdp[keep]
    ss = {k: v[keep] for k, v in ss.items()}
    fs = {k: v[keep] for k, v in fs.items()}
    score[rest[keep]] = _scores_active(ss, fs, c, sdp)
    return score


def _scores_active(ss: Dict[str, np.ndarray], fs: Dict[str, np.ndarray], c: np.ndarray, sdp: np.ndarray) -> np.ndarray:
    """Steps 4-8 of the spec for windows with c != 0 and non-degenerate pdfs."""
    m = c.shape[0]
    rows = np.arange(m)[:, None]
    pos = (c >= 0)[:, None]
    cf, pf, lpf = fs["cdf"], fs["p"], fs["lp"]
    cs = ss["cdf"]
    # Breakpoints on the S side: cs for the upper bound (c >= 0); for the lower bound the coupling pairs u with
    # 1 - u, so S's intervals appear reversed: breakpoint k is 1 - cs[7 - k] (k < 8), then 1; cell column 8 - k.
    reversed_bp = np.concatenate([1.0 - cs[:, L - 2 :: -1], np.ones((m, 1))], axis=1)
    q = np.where(pos, cs, reversed_bp)
    pq = np.where(pos, ss["p"], ss["p"][:, ::-1])
    lpq = np.where(pos, ss["lp"], ss["lp"][:, ::-1])

    # Merge the two sorted breakpoint lists by ranks: less[r, i, k] = q_k < cf_i.
    less = q[:, None, :] < cf[:, :, None]
    n_q_before_f = less.sum(axis=2)  # number of q breakpoints strictly below cf_i
    n_f_upto_q = L - less.sum(axis=1)  # number of cf breakpoints <= q_k
    # Segment ending at cf_i lies in cell (i, n_q_before_f[i]); segment ending at q_k in cell (n_f_upto_q[k], k).
    zero = np.zeros((m, 1))
    cf_prev = np.concatenate([zero, cf[:, :-1]], axis=1)
    q_prev = np.concatenate([zero, q[:, :-1]], axis=1)
    q_pad = np.concatenate([zero, q], axis=1)  # q_pad[j] = q[j - 1], q_pad[0] = 0
    cf_pad = np.concatenate([zero, cf], axis=1)
    mass_f = cf - np.maximum(cf_prev, q_pad[rows, n_q_before_f])
    mass_q = q - np.maximum(q_prev, cf_pad[rows, n_f_upto_q])
    cell_i = np.concatenate([np.broadcast_to(_COLS, (m, L)), n_f_upto_q], axis=1)
    cell_k = np.concatenate([n_q_before_f, np.broadcast_to(_COLS, (m, L))], axis=1)
    mass = np.concatenate([mass_f, mass_q], axis=1)
    inside = (cell_i < L) & (cell_k < L)  # the tail past the last breakpoint is rounding noise
    mass = np.where(inside, mass, 0.0)
    cell_i = np.minimum(cell_i, L - 1)
    cell_k = np.minimum(cell_k, L - 1)

    # sum over the 9x9 table of the bound = sum of path masses times the number of entries they reach.
    col_weight = np.where(pos, L - cell_k, 1 + cell_k)  # column j = k (upper) or 8 - k (lower)
    bound_sum = (mass * (L - cell_i) * col_weight).sum(axis=1)
    cov_bound = bound_sum - cf.sum(axis=1) * cs.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(cov_bound != 0, c / (cov_bound / np.where(cov_bound != 0, sdp, 1.0)), 0.0)
    a = 1.0 - w
    la = np.log2(np.abs(np.where(a != 0, a, 1.0)))

    # Entropy of J = w D + a outer(pf, ps): closed form for the outer part, corrected on the path cells.
    sf_, sq_ = pf.sum(axis=1), pq.sum(axis=1)
    hf, hs = fs["H"], ss["H"]
    outer_part = a * la * sf_ * sq_ - a * (sq_ * hf + sf_ * hs)
    pfi = pf[rows, cell_i]
    pqk = pq[rows, cell_k]
    t = a[:, None] * pfi * pqk
    t_log_t = t * (la[:, None] + lpf[rows, cell_i] + lpq[rows, cell_k])
    j = w[:, None] * mass + t
    nz = j != 0
    j_log_j = np.where(nz, j * np.log2(np.abs(np.where(nz, j, 1.0))), 0.0)
    joint_entropy = -(outer_part + (j_log_j - t_log_t).sum(axis=1))
    mi = hs + hf - joint_entropy
    hsum = hs + hf
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((mi != 0) & (hsum > 0), 2.0 * mi / np.where(hsum > 0, hsum, 1.0), 0.0)


def fmi(st: Stack) -> np.ndarray:
    """FMI per slice: mean window score, then mean over sources."""
    b = st.batch
    fw = st.cached("fmi_fw", lambda: windows(st.fused))
    fstats = st.cached("fmi_fstats", lambda: window_stats(fw))
    total = np.zeros(b)
    for s in st.sources:
        total += fmi_window_scores(windows(s), fw, fstats).reshape(b, -1).mean(axis=1)
    return total / len(st.sources)
