"""FMI: the fast structured implementation against a literal, dense transcription of the spec's steps.

The dense version below builds the full 9x9 tables (U, Lo, P, D, J) of "FMI step by step" for every
window; it is slow but obviously faithful, and it reproduces the shared reference values exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from MedFusionLib.metrics import compute_metrics
from MedFusionLib.metrics.fmi import BLOCK, fmi_window_scores, windows


def dense_windows(x: np.ndarray) -> np.ndarray:
    """(n, 9) windows, values in column-major order, positions in row-major order."""
    m, n = x.shape
    out = [x[r : r + 3, c : c + 3].T.ravel() for r in range(m - 2) for c in range(n - 2)]
    return np.array(out)


def dense_fmi_scores(s: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Literal transcription of the spec, vectorised over windows with dense 9x9 tables."""
    l = s.shape[1]
    eq = (s == f).all(axis=1)

    def pdf(x):
        mn = x.min(axis=1, keepdims=True)
        r = x.max(axis=1, keepdims=True) - mn
        y = np.where(r > 0, (x - mn) / np.where(r > 0, r, 1), 1.0)
        return y / y.sum(axis=1, keepdims=True)

    ps, pf = pdf(s), pdf(f)
    cs, cf = np.cumsum(ps, axis=1), np.cumsum(pf, axis=1)
    ds, df = ps - ps.mean(axis=1, keepdims=True), pf - pf.mean(axis=1, keepdims=True)
    cov = (ds * df).sum(axis=1)
    den = np.sqrt((ds * ds).sum(axis=1) * (df * df).sum(axis=1))
    i = np.arange(1, l + 1, dtype=float)
    with np.errstate(all="ignore"):
        c = np.where((cov != 0) & (den > 0), cov / den, 0.0)

        def sd(p):
            return np.sqrt(np.maximum((p * i * i).sum(axis=1) - (p * i).sum(axis=1) ** 2, 0))

        sdp = sd(pf) * sd(ps)
        upper = np.minimum(cf[:, :, None], cs[:, None, :])
        lower = np.maximum(cf[:, :, None] + cs[:, None, :] - 1, 0)
        prod = cf[:, :, None] * cs[:, None, :]
        ok = (c != 0) & (sdp != 0)
        phi = np.where(ok, c / ((upper - prod).sum(axis=(1, 2)) / sdp), 0.0)
        theta = np.where(ok, c / ((lower - prod).sum(axis=(1, 2)) / sdp), 0.0)
        pos = c >= 0
        w = np.where(pos, phi, theta)
        bound = np.where(pos[:, None, None], upper, lower)
        d = np.diff(np.diff(np.pad(bound, ((0, 0), (1, 0), (1, 0))), axis=1), axis=2)
        j = w[:, None, None] * d + (1 - w)[:, None, None] * pf[:, :, None] * ps[:, None, :]
        je = -np.where(j != 0, j * np.log2(np.abs(np.where(j != 0, j, 1))), 0).sum(axis=(1, 2))

        def ent(p):
            return -np.where(p > 0, p * np.log2(np.where(p > 0, p, 1)), 0).sum(axis=1)

        hs, hf = ent(ps), ent(pf)
        mi = hs + hf - je
        score = np.where(mi != 0, 2 * mi / (hs + hf), 0.0)
    return np.where(eq, 1.0, score)


def images(kind: str, seed: int):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (40, 45)).astype(float)
    b = np.round(rng.random((40, 45)) * 3) * 80
    if kind == "mean":
        return a, b, np.floor((a + b) / 2 + 0.5)
    if kind == "max":
        return a, b, np.maximum(a, b)
    if kind == "inverted":  # negative correlations: the lower Frechet bound
        return a, b, 255 - a
    if kind == "flat":  # many constant and one-hot windows, ties between cumulative sums
        return np.round(a / 128) * 128, b, np.round(rng.random((40, 45)) * 2)
    if kind == "real-valued":
        return rng.random((40, 45)), rng.random((40, 45)) * 1e-3, rng.random((40, 45))
    raise ValueError(kind)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kind", ["mean", "max", "inverted", "flat", "real-valued"])
def test_fast_fmi_matches_dense_transcription(kind: str, seed: int) -> None:
    a, b, f = images(kind, seed)
    fw = windows(f[None])
    for s in (a, b):
        fast = fmi_window_scores(windows(s[None]), fw)
        dense = dense_fmi_scores(dense_windows(s), dense_windows(f))
        assert fast.shape == dense.shape
        np.testing.assert_allclose(fast, dense, rtol=0, atol=1e-10)


def test_window_order_is_column_major() -> None:
    x = np.arange(16.0).reshape(4, 4)
    w = windows(x[None])
    np.testing.assert_array_equal(w[:, 0], [0, 4, 8, 1, 5, 9, 2, 6, 10])
    np.testing.assert_array_equal(w.T, dense_windows(x))


def test_fmi_metric_is_mean_over_windows_and_sources() -> None:
    a, b, f = images("mean", 3)
    expected = (
        dense_fmi_scores(dense_windows(a), dense_windows(f)).mean()
        + dense_fmi_scores(dense_windows(b), dense_windows(f)).mean()
    ) / 2
    assert compute_metrics([a, b], f, ["FMI"])["FMI"] == pytest.approx(expected, abs=1e-12)


def test_blocks_cover_more_than_one_block() -> None:
    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, (80, 80)).astype(float)
    f = rng.integers(0, 256, (80, 80)).astype(float)
    assert (78 * 78) > BLOCK
    fast = fmi_window_scores(windows(a[None]), windows(f[None]))
    np.testing.assert_allclose(fast, dense_fmi_scores(dense_windows(a), dense_windows(f)), rtol=0, atol=1e-10)
