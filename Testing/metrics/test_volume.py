"""score() on volumes: normalisation rule, per-slice protocol along an axis, 3-D variants, progress/cancel."""

from __future__ import annotations

import json

import numpy as np
import pytest

from MedFusionLib.core.errors import InputError, OperationCancelled
from MedFusionLib.metrics import METRIC_KEYS, compute_metrics, format_table, score
from MedFusionLib.metrics.volume import FOREGROUND_LEVEL, percentile_normalise
from MedFusionLib.metrics.volume3d import KEYS_3D


def phantom(seed: int, shape=(14, 40, 36)) -> np.ndarray:
    """A blob with texture on a zero background; the first two and last slice empty."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape)
    inside = ((y - 20) ** 2 + (x - 18) ** 2 < 150) & (z >= 2) & (z < shape[0] - 1)
    return np.where(inside, 60 + rng.integers(0, 150, shape), 0).astype(np.float64)


@pytest.fixture(scope="module")
def volumes():
    a, b = phantom(1), phantom(2)
    return a, b, np.floor((a + b) / 2 + 0.5)


def test_per_slice_mean_over_foreground_slices(volumes) -> None:
    a, b, f = volumes
    r = score([a, b], f, rule="as-is", include_3d=False)
    used = [k for k in range(a.shape[0]) if (a[k] > FOREGROUND_LEVEL).any() or (b[k] > FOREGROUND_LEVEL).any()]
    assert used == list(range(2, a.shape[0] - 1))
    per = [compute_metrics([a[k], b[k]], f[k]) for k in used]
    for key in METRIC_KEYS:
        assert r[key] == pytest.approx(np.mean([p[key] for p in per]), rel=1e-12, abs=1e-12), key
    p = r["protocol"]
    assert p["axis"] == 0 and p["slices_used"] == len(used) and p["slices_total"] == a.shape[0]
    assert p["rule"] == "as-is (0..255)" and "foreground" in p
    assert not any(k in r for k in KEYS_3D)


def test_axis_is_a_numpy_axis(volumes) -> None:
    a, b, f = volumes
    r0 = score([a, b], f, rule="as-is", include_3d=False, keys=["EN", "SSIM", "FMI"])

    def t(v):
        return np.transpose(v, (1, 2, 0))  # old axis 0 is now axis 2

    r2 = score([t(a), t(b)], t(f), axis=2, rule="as-is", include_3d=False, keys=["EN", "SSIM", "FMI"])
    for key in ("EN", "SSIM", "FMI"):
        assert r2[key] == pytest.approx(r0[key], rel=1e-12)
    assert r2["protocol"]["axis"] == 2
    with pytest.raises(InputError, match="axis"):
        score([a, b], f, axis=3)


def test_percentile_rule_is_affine_invariant(volumes) -> None:
    a, b, f = volumes
    base = score([a, b], f, include_3d=False)
    moved = score([4 * a - 1000, b * 0.01], 2 * f + 7, include_3d=False)
    for key in METRIC_KEYS:
        # QABF branches on exact equalities (gx == 0, gS == gF): rounding in the mapping moves a few pixels
        tol = 1e-3 if key == "QABF" else 1e-9
        assert moved[key] == pytest.approx(base[key], rel=tol, abs=tol), key
    assert base["protocol"]["rule"].startswith("percentile")


def test_percentile_normalise() -> None:
    v = np.concatenate([np.full(100, -1000.0), np.linspace(0, 1000, 1001)])
    out = percentile_normalise(v)
    assert out.min() == 0 and out.max() == 255 and (out[:100] == 0).all()
    assert (percentile_normalise(np.full(10, 3.0)) == 0).all()
    mask = np.array([0.0, 1.0, 1.0, 0.0])
    assert percentile_normalise(mask).tolist() == [0, 255, 255, 0]


def test_3d_variants(volumes) -> None:
    a, b, f = volumes
    r = score([a, b], f, rule="as-is")
    assert all(k in r for k in KEYS_3D)
    assert r["protocol"]["variants_3d"] == list(KEYS_3D)
    levels, counts = np.unique(np.floor(f), return_counts=True)
    p = counts / counts.sum()
    assert r["EN3D"] == pytest.approx(-(p * np.log2(p)).sum(), rel=1e-12)
    assert r["SD3D"] == pytest.approx(f.std(), rel=1e-12)
    same = score([a, a], a, rule="as-is", keys=["SSIM", "MI", "NMI", "QABF"])
    assert same["SSIM3D"] == pytest.approx(2.0, abs=1e-12)
    assert same["NMI3D"] == pytest.approx(2.0, rel=1e-12)
    assert 0 < same["QABF3D"] < 1 and 0 < r["QABF3D"] < same["QABF3D"]
    assert set(k for k in same if k.endswith("3D")) == {"SSIM3D", "MI3D", "NMI3D", "QABF3D"}
    json.dumps(r, allow_nan=False)
    text = format_table(r)
    assert "QABF3D" in text and "axis: 0" in text and "rule:" in text


def test_ssim3d_skipped_for_thin_volumes() -> None:
    a = phantom(3, (8, 30, 30))
    r = score([a, a], a, rule="as-is", keys=["SSIM"])
    assert "SSIM3D" not in r and "SSIM3D" in r["protocol"]["variants_3d_skipped"]


def test_progress_and_cancel(volumes) -> None:
    a, b, f = volumes
    seen = []
    score([a, b], f, progress=lambda frac, msg: seen.append(frac))
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    with pytest.raises(OperationCancelled):
        score([a, b], f, cancel=lambda: True)


def test_volume_errors(volumes) -> None:
    a, b, f = volumes
    with pytest.raises(InputError, match="no slice"):
        score([np.zeros_like(a), np.zeros_like(a)], f, rule="as-is")
    with pytest.raises(InputError, match="shape mismatch"):
        score([a, b[:-1]], f)
    thin = a[:, :, :8]
    with pytest.raises(InputError, match="too small"):
        score([thin, thin], thin, keys=["EN"])  # slices of 40 x 8 pixels along axis 0


def test_threads_do_not_change_results(volumes, monkeypatch) -> None:
    from MedFusionLib.metrics import _parallel, registry, volume

    a, b, f = volumes
    threaded_2d = compute_metrics([a[5], b[5]], f[5])
    threaded_3d = score([a, b], f, rule="as-is", include_3d=False)
    monkeypatch.setattr(registry, "get_pool", lambda: None)
    monkeypatch.setattr(volume, "get_pool", lambda: None)
    assert compute_metrics([a[5], b[5]], f[5]) == threaded_2d
    assert score([a, b], f, rule="as-is", include_3d=False) == threaded_3d
    assert _parallel.WORKERS >= 1


def test_ssim3d_and_qabf3d_match_direct_formulas() -> None:
    """Independent computation with scipy's n-D filters on a small volume (3 slabs of SLAB slices)."""
    from scipy import ndimage

    from MedFusionLib.metrics import volume3d

    rng = np.random.default_rng(7)
    shape = (2 * volume3d.SLAB + 15, 16, 14)
    a = rng.integers(0, 256, shape).astype(float)
    b = rng.integers(0, 256, shape).astype(float)
    f = np.floor((a + b) / 2 + 0.5)
    values, _ = volume3d.compute_3d([a, b], f, ["SSIM3D", "QABF3D"])

    x = np.arange(11) - 5.0
    k = np.exp(-x * x / (2 * 1.5**2))
    k /= k.sum()
    w3 = k[:, None, None] * k[None, :, None] * k[None, None, :]
    valid = tuple(slice(5, n - 5) for n in shape)
    filt = lambda v: ndimage.correlate(v, w3, mode="constant")[valid]  # noqa: E731
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    expected_ssim = 0.0
    for s in (a, b):
        m1, m2 = filt(s), filt(f)
        v1, v2, v12 = filt(s * s) - m1 * m1, filt(f * f) - m2 * m2, filt(s * f) - m1 * m2
        expected_ssim += (((2 * m1 * m2 + c1) * (2 * v12 + c2)) / ((m1 * m1 + m2 * m2 + c1) * (v1 + v2 + c2))).mean()
    assert values["SSIM3D"] == pytest.approx(expected_ssim, rel=1e-12)

    grads = lambda v: np.stack([ndimage.sobel(v, axis=d, mode="constant") for d in range(3)])  # noqa: E731
    gf = grads(f)
    nf = np.linalg.norm(gf, axis=0)
    num = den = 0.0
    for s in (a, b):
        gs = grads(s)
        ns = np.linalg.norm(gs, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            cos = np.where(ns * nf > 0, np.abs((gs * gf).sum(axis=0)) / (ns * nf), 0.0)
        orient = 1 - np.arccos(np.clip(cos, 0, 1)) / (np.pi / 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(ns > nf, nf / ns, np.where(ns < nf, ns / nf, nf))
        q = 0.9994 / (1 + np.exp(-15 * (rel - 0.5))) * 0.9879 / (1 + np.exp(-22 * (orient - 0.8)))
        num += (q * ns).sum()
        den += ns.sum()
    assert values["QABF3D"] == pytest.approx(num / den, rel=1e-12)
