"""Histogram-based information metrics: MI (bits), NMI (Hossny) and QNCIE.

All three work on images min-max normalised to 0..255 and rounded half away from zero (a constant image
becomes all zeros), with 256-bin marginal and 256 x 256 joint histograms. The quantised images and the
entropies are cached on the stack, so the three metrics share one set of histograms.
"""

from __future__ import annotations

import numpy as np

from MedFusionLib.metrics._stack import Stack
from MedFusionLib.metrics.noreference import batched_histogram, entropy_from_counts

LEVELS = 256


def round_half_away(v: np.ndarray) -> np.ndarray:
    """Round to the nearest integer, halves away from zero (MATLAB ``round``); exact for |v| < 2**52."""
    a = np.abs(v)
    fl = np.floor(a)
    return np.copysign(fl + ((a - fl) >= 0.5), v)  # a - floor(a) is exact, so ties are seen exactly


def quantise(x: np.ndarray) -> np.ndarray:
    """Per-slice min-max normalisation to 0..1, times 255, rounded half away from zero -> int64 0..255."""
    mn = x.min(axis=(-2, -1), keepdims=True)
    rng = x.max(axis=(-2, -1), keepdims=True) - mn
    safe = np.where(rng > 0, rng, 1.0)
    v = np.where(rng > 0, (x - mn) / safe, 0.0) * 255.0
    return round_half_away(v).astype(np.int64)


def _images(st: Stack) -> list[np.ndarray]:
    return st.sources + [st.fused]


def _quantised(st: Stack, i: int) -> np.ndarray:
    return st.cached(f"q{i}", lambda: quantise(_images(st)[i]))


def _entropy(st: Stack, i: int) -> np.ndarray:
    return st.cached(f"H{i}", lambda: entropy_from_counts(batched_histogram(_quantised(st, i), LEVELS)))


def _joint_entropy(st: Stack, i: int, j: int) -> np.ndarray:
    i, j = min(i, j), max(i, j)

    def build() -> np.ndarray:
        codes = _quantised(st, i) * LEVELS + _quantised(st, j)
        return entropy_from_counts(batched_histogram(codes, LEVELS * LEVELS))

    return st.cached(f"H{i},{j}", build)


def pair_mi(st: Stack, i: int, j: int) -> np.ndarray:
    """MI in bits between images ``i`` and ``j`` (indices into sources + [fused])."""
    return _entropy(st, i) + _entropy(st, j) - _joint_entropy(st, i, j)


def mutual_information(st: Stack) -> np.ndarray:
    """MI = sum over sources of MI(S, F), in bits."""
    f = len(st.sources)
    return np.sum([pair_mi(st, s, f) for s in range(f)], axis=0)


def normalized_mutual_information(st: Stack) -> np.ndarray:
    """NMI = 2 * sum over sources of MI(S, F) / (H(S) + H(F)); a term with H(S) + H(F) = 0 counts 0."""
    f = len(st.sources)
    total = np.zeros(st.batch)
    for s in range(f):
        den = _entropy(st, s) + _entropy(st, f)
        with np.errstate(divide="ignore", invalid="ignore"):
            total += np.where(den > 0, pair_mi(st, s, f) / np.where(den > 0, den, 1.0), 0.0)
    return 2.0 * total


def qncie(st: Stack) -> np.ndarray:
    """QNCIE = 1 + sum over eigenvalues > 0 of (l/K) log_256(l/K), R the K x K NCC matrix of sources + F."""
    k = len(st.sources) + 1
    r = np.empty((st.batch, k, k))
    for i in range(k):
        r[:, i, i] = 1.0
        for j in range(i + 1, k):
            ncc = pair_mi(st, i, j) / np.log2(LEVELS)
            r[:, i, j] = ncc
            r[:, j, i] = ncc
    lam = np.linalg.eigvalsh(r) / k
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(lam > 0, lam * np.log(np.where(lam > 0, lam, 1.0)) / np.log(LEVELS), 0.0)
    return 1.0 + terms.sum(axis=-1)
