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
is slow on reductions, cumsums and gathers along a short last axis); gathers use flat ``take`` and small
reductions ``einsum`` (not BLAS, whose threads fight over the two cores).

Windows equal in S and F score 1; windows with correlation 0 (a constant window, or a point-mass pdf)
have ``w = 0``, hence ``J = outer(pf, ps)`` and ``I = 0``: they score 0. Constant windows are recognised
before any statistics. ``Testing/test_metrics_fmi.py`` checks this module against a literal dense
transcription of the spec.
"""

from __future__ import annotations

import numpy as np

from MedFusionLib.metrics._stack import Stack

L = 9  # 3 x 3 window
_IDX = np.arange(1, L + 1, dtype=np.float64)
_IDX2 = _IDX * _IDX
_ROW_WEIGHT = L - np.arange(L, dtype=np.float64)  # 9 - i: table entries at or after row/column i
_LOW_WEIGHT = 1.0 + np.arange(L, dtype=np.float64)  # 1 + k: the same for reversed columns
CHUNK = 1 << 17  # windows per slice batch (bounds memory for volumes)
BLOCK = 4096  # windows per block: big enough to amortise numpy call overhead, small enough for the cache
# and for glibc to recycle the temporaries (at 8192 they are returned to the OS each time: page faults)


def windows(x: np.ndarray) -> np.ndarray:
    """All 3x3 windows of a (B, H, W) stack as a (9, n) array, values in column-major window order.

    Row ``3 c + r`` holds, for every window position, the pixel at window row r, column c; positions are
    in (B, H-2, W-2) row-major order.
    """
    b, h, w = x.shape
    out = np.empty((L, b, h - 2, w - 2))
    for c in range(3):
        for r in range(3):
            out[3 * c + r] = x[:, r : r + h - 2, c : c + w - 2]
    return out.reshape(L, -1)


def window_stats(w: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics of non-constant windows (9, n): pdf, cdf, log-pdf, entropy, deviation, moments for c.

    ``p = (x - min) / sum(x - min)`` equals the spec's min-max normalisation followed by division by the
    sum (the range cancels). Tables carry a zero row where the merge needs one: ``cdf0`` in front (the
    value below the first breakpoint), ``p_end``/``lp_end`` at the end (index 9 = past the last one).
    Constant windows never get here: they score 0 (or 1 when S = F) without statistics.
    """
    n = w.shape[1]
    y = w - w.min(axis=0)
    p_end = np.zeros((L + 1, n))
    p = p_end[:L]
    np.divide(y, y.sum(axis=0), out=p)
    lp_end = np.zeros((L + 1, n))
    lp = lp_end[:L]
    np.log2(p + (p == 0), out=lp)  # log2 p, and 0 where p = 0 (only ever multiplied by p)
    cdf0 = np.empty((L + 1, n))
    cdf0[0] = 0.0
    cdf0[1] = p[0]
    for i in range(1, L):
        np.add(cdf0[i], p[i], out=cdf0[i + 1])
    m1 = np.einsum("i,in->n", _IDX, p)
    m2 = np.einsum("i,in->n", _IDX2, p)
    total = cdf0[L]
    return {
        "p_end": p_end,
        "lp_end": lp_end,
        "cdf0": cdf0,
        "H": -np.einsum("in,in->n", p, lp),
        "sd": np.sqrt(np.maximum(m2 - m1 * m1, 0.0)),
        "sum": total,
        "sq": np.einsum("in,in->n", p, p),
    }


def fmi_window_scores(s: np.ndarray, f: np.ndarray) -> np.ndarray:
    """FMI score of every window pair: ``s`` and ``f`` are (9, n) arrays from :func:`windows`.

    Windows equal in S and F score 1; a constant window (in S or F) has zero covariance with the other,
    so c = 0 and the score is 0: neither needs statistics. The rest are processed in blocks of ``BLOCK``
    windows (small enough to stay in cache).
    """
    eq = (s == f).all(axis=0)
    out = eq.astype(np.float64)
    todo = np.flatnonzero(~eq & (s.max(axis=0) > s.min(axis=0)) & (f.max(axis=0) > f.min(axis=0)))
    for lo in range(0, todo.size, BLOCK):
        idx = todo[lo : lo + BLOCK]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[idx] = _block_scores(np.take(s, idx, axis=1), np.take(f, idx, axis=1))
    return out


def _block_scores(s: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Steps 2-8 of the spec for non-constant windows that differ between S and F."""
    ss = window_stats(s)
    fs = window_stats(f)
    n = s.shape[1]
    cols = np.arange(n)
    ps_end, lps_end, cs0 = ss["p_end"], ss["lp_end"], ss["cdf0"]
    pf_end, lpf_end, cf0 = fs["p_end"], fs["lp_end"], fs["cdf0"]
    pf, lpf, cf = pf_end[:L], lpf_end[:L], cf0[1:]

    # Pearson correlation of the pdfs (means sum/9)
    cov = np.einsum("in,in->n", ps_end[:L], pf) - ss["sum"] * fs["sum"] / L
    var_s = ss["sq"] - ss["sum"] * ss["sum"] / L
    var_f = fs["sq"] - fs["sum"] * fs["sum"] / L
    sdp = ss["sd"] * fs["sd"]
    active = (cov != 0) & (var_s > 0) & (var_f > 0) & (sdp > 0)
    c = np.where(active, cov / np.sqrt(var_s * var_f), 0.0)
    pos = c >= 0

    # S side of the coupling: the pdf as is for the upper bound (c >= 0); for the lower bound u pairs with
    # 1 - u, i.e. the comonotonic coupling with S's pdf reversed, cell column k standing for j = 8 - k.
    neg = np.flatnonzero(~pos)
    if neg.size == 0:
        pq_end, lpq_end, q0 = ps_end, lps_end, cs0
    else:  # only the (few) windows with c < 0 are rewritten
        pq_end, lpq_end, q0 = ps_end.copy(), lps_end.copy(), cs0.copy()
        rev = ps_end[L - 1 :: -1][:, neg]
        pq_end[:L, neg] = rev
        lpq_end[:L, neg] = lps_end[L - 1 :: -1][:, neg]
        q0[1:, neg] = np.cumsum(rev, axis=0)
    pq, lpq, q = pq_end[:L], lpq_end[:L], q0[1:]

    # Merge the sorted breakpoint lists by ranks (no sort): k_of_f[i] = #{q < cf_i}, i_of_q[k] = #{cf <= q_k}.
    below = (q[None, :, :] < cf[:, None, :]).view(np.uint8)  # [i, k, window]
    k_of_f = below.sum(axis=1, dtype=np.uint8).astype(np.intp)
    i_of_q = L - below.sum(axis=0, dtype=np.uint8).astype(np.intp)
    # The segment ending at cf_i is cell (i, k_of_f[i]); the one ending at q_k is cell (i_of_q[k], k).
    at_k = k_of_f * n + cols
    at_i = i_of_q * n + cols
    mass_f = cf - np.maximum(cf0[:L], np.take(q0, at_k))
    mass_q = q - np.maximum(q0[:L], np.take(cf0, at_i))
    mass_f *= k_of_f < L  # past the last breakpoint: rounding noise, dropped
    mass_q *= i_of_q < L

    # sum of the 9x9 bound table = sum of path masses times the number of table entries they reach:
    # (9 - i) rows times (9 - j) columns, j = k (upper bound) or 8 - k (lower bound: 9 - j = 1 + k).
    wf = mass_f * (L - k_of_f)  # f-side cells: row i, column k_of_f[i]
    up_f = np.einsum("i,in->n", _ROW_WEIGHT, wf)
    rows_f = np.einsum("i,in->n", _ROW_WEIGHT, mass_f)
    wq = mass_q * (L - i_of_q)  # q-side cells: row i_of_q[k], column k
    up_q = np.einsum("i,in->n", _ROW_WEIGHT, wq)
    lo_q = np.einsum("i,in->n", _LOW_WEIGHT, wq)
    # f side, lower bound: sum (9 - i)(1 + k) m = 10 sum (9 - i) m - sum (9 - i)(9 - k) m
    bound_sum = np.where(pos, up_f + up_q, (L + 1) * rows_f - up_f + lo_q)
    cov_bound = bound_sum - cf0[1:].sum(axis=0) * cs0[1:].sum(axis=0)
    w = np.where(active & (cov_bound != 0), c / (cov_bound / sdp), 0.0)
    a = 1.0 - w
    la = np.log2(np.abs(a + (a == 0)))

    # Entropy of J = w D + a outer(pf, ps): closed form for the outer part, corrected on the path cells.
    hf, hs = fs["H"], ss["H"]
    sum_f, sum_q = fs["sum"], ss["sum"]
    outer_part = a * la * sum_f * sum_q - a * (sum_q * hf + sum_f * hs)
    correction = _path_correction(mass_f, pf, lpf, np.take(pq_end, at_k), np.take(lpq_end, at_k), w, a, la)
    correction += _path_correction(mass_q, np.take(pf_end, at_i), np.take(lpf_end, at_i), pq, lpq, w, a, la)
    mi = hs + hf + outer_part + correction  # I = Hs + Hf - JE, JE = -(outer part + correction)
    hsum = hs + hf
    ok = active & (mi != 0) & (hsum > 0)
    return ok * (2.0 * mi / (hsum + ~ok))


def _path_correction(mass, pf, lpf, pq, lpq, w, a, la) -> np.ndarray:
    """sum over path cells of J log2|J| - t log2|t|, with t = a pf pq and J = w mass + t."""
    t = a * pf * pq
    j = w * mass + t
    j_log_j = j * np.log2(np.abs(j) + (j == 0))
    j_log_j -= t * (la + lpf + lpq)
    return j_log_j.sum(axis=0)


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
