"""Metric suite: every reference value of shared/metrics/vectors, plus hand-checkable analytic cases.

Reference tolerances (issue 3): relative error <= 1e-6, FMI / VIF / SCD <= 1e-4. The reference tests skip
cleanly when ../shared is absent; the analytic tests always run.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from MedFusionLib.core.errors import InputError
from MedFusionLib.metrics import METRIC_KEYS, METRICS, compute_metrics, format_table, score
from MedFusionLib.metrics.structural import PSNR_CAP

CASES = [
    "CT-MRI/20008/mean",
    "CT-MRI/20008/max",
    "PET-MRI/25032/mean",
    "PET-MRI/25032/max",
    "SPECT-MRI/10030/mean",
    "SPECT-MRI/10030/max",
]
LOOSE = {"FMI", "VIF", "SCD"}


def load_gray(path: Path) -> np.ndarray:
    """8-bit gray as float64; RGB converted by luma (0.299 R + 0.587 G + 0.114 B, rounded)."""
    from PIL import Image

    with Image.open(path) as im:
        a = np.asarray(im)
    if a.ndim == 3:
        rgb = a[..., :3].astype(np.float64)
        a = np.floor(rgb @ np.array([0.299, 0.587, 0.114]) + 0.5)
    return a.astype(np.float64)


@functools.cache
def _reference(vectors: Path) -> dict:
    return json.loads((vectors / "reference_values.json").read_text(encoding="utf-8"))


@functools.cache
def _case(vectors: Path, case: str):
    entry = _reference(vectors)[case]
    a, b, f = (load_gray(vectors / entry[k]) for k in ("A", "B", "F"))
    return a, b, f, entry["values"], compute_metrics([a, b], f)


@pytest.fixture(scope="module")
def vectors(shared_dir: Path) -> Path:
    path = shared_dir / "metrics" / "vectors"
    if not (path / "reference_values.json").is_file():
        pytest.skip("../shared/metrics/vectors is absent: reference test skipped")
    return path


def test_reference_cases_are_the_expected_ones(vectors: Path) -> None:
    assert sorted(_reference(vectors)) == sorted(CASES)


@pytest.mark.parametrize("key", METRIC_KEYS)
@pytest.mark.parametrize("case", CASES)
def test_reference_value(vectors: Path, case: str, key: str) -> None:
    *_, expected, got = _case(vectors, case)
    want = expected["MI_bits" if key == "MI" else key]
    tol = 1e-4 if key in LOOSE else 1e-6
    assert got[key] == pytest.approx(want, rel=tol), f"{case} {key}: {got[key]!r} vs reference {want!r}"


@pytest.mark.parametrize("case", CASES)
def test_score_2d_matches_compute_metrics_on_reference(vectors: Path, case: str) -> None:
    a, b, f, _, got = _case(vectors, case)
    result = score([a, b], f)
    assert result["protocol"]["rule"] == "as-is (0..255)"
    for key in METRIC_KEYS:
        assert result[key] == got[key]
    json.dumps(result, allow_nan=False)


@pytest.mark.parametrize("case", CASES)
def test_symmetric_in_sources_on_reference(vectors: Path, case: str) -> None:
    a, b, f, _, got = _case(vectors, case)
    swapped = compute_metrics([b, a], f)
    for key in METRIC_KEYS:
        assert swapped[key] == pytest.approx(got[key], rel=1e-12, abs=1e-12), key


# ----------------------------------------------------------------------------------------------- analytic


def textured(seed: int = 0, shape=(64, 64), low: int = 1, high: int = 200) -> np.ndarray:
    return np.random.default_rng(seed).integers(low, high, shape).astype(np.float64)


def test_keys_and_metadata() -> None:
    assert METRIC_KEYS == (
        "EN",
        "SD",
        "SF",
        "AG",
        "EI",
        "MI",
        "NMI",
        "FMI",
        "QNCIE",
        "SSIM",
        "QABF",
        "MSE",
        "RMSE",
        "PSNR",
        "VIF",
        "SCD",
    )
    assert list(METRICS) == list(METRIC_KEYS)
    for key, info in METRICS.items():
        assert info.key == key and info.name and info.description and info.range
        assert info.direction == ("lower" if key in ("MSE", "RMSE") else "higher")


def test_identical_images() -> None:
    a = textured(1)
    r = compute_metrics([a, a], a)
    assert r["MSE"] == 0 and r["RMSE"] == 0
    assert r["PSNR"] == PSNR_CAP  # documented cap instead of inf
    assert r["SSIM"] == pytest.approx(2.0, abs=1e-12)  # 1 per source
    assert r["FMI"] == 1.0  # every window equal
    assert r["VIF"] == pytest.approx(2.0, rel=1e-9)
    assert r["SCD"] == 0.0  # F - B is constant: correlation 0 by convention
    q = np.floor((a - a.min()) / (a.max() - a.min()) * 255 + 0.5)
    _, counts = np.unique(q, return_counts=True)
    p = counts / counts.sum()
    h = float(-(p * np.log2(p)).sum())
    assert r["MI"] == pytest.approx(2 * h, rel=1e-12)
    assert r["NMI"] == pytest.approx(2.0, rel=1e-12)
    json.dumps(score([a, a], a), allow_nan=False)


def test_identical_uniform_histogram_gives_qncie_one() -> None:
    a = (np.arange(256 * 256) % 256).reshape(256, 256).astype(np.float64)  # H = 8 bits, so NCC = 1
    r = compute_metrics([a, a], a, keys=["QNCIE", "EN"])
    assert r["EN"] == pytest.approx(8.0, rel=1e-12)
    assert r["QNCIE"] == pytest.approx(1.0, abs=1e-12)  # eigenvalues 3, 0, 0


def test_constant_images() -> None:
    c = np.full((48, 48), 77.0)
    r = compute_metrics([c, c], c)
    for key in ("EN", "SD", "SF", "AG", "EI", "MI", "NMI", "MSE", "RMSE", "VIF", "SCD"):
        assert r[key] == 0.0, key
    assert r["FMI"] == 1.0
    assert r["SSIM"] == pytest.approx(2.0, abs=1e-12)
    assert r["PSNR"] == PSNR_CAP
    assert r["QNCIE"] == pytest.approx(1.0 - math.log(3) / math.log(256), abs=1e-12)  # R = identity
    assert all(math.isfinite(v) for v in r.values())


def test_constant_sources_nonconstant_fused_are_finite() -> None:
    c = np.zeros((48, 48))
    f = textured(2, (48, 48))
    r = compute_metrics([c, c], f)
    assert all(math.isfinite(v) for v in r.values())
    assert r["VIF"] == 0.0 and r["NMI"] == 0.0 and r["MI"] == 0.0
    json.dumps(score([c, c], f), allow_nan=False)


def test_entropy_of_level_images() -> None:
    two = np.zeros((32, 32))
    two[:, 16:] = 255
    assert compute_metrics([two, two], two, ["EN"])["EN"] == pytest.approx(1.0, abs=1e-15)
    four = np.tile(np.repeat([0.0, 50.0, 100.0, 150.0], 8), (32, 1))
    assert compute_metrics([four, four], four, ["EN"])["EN"] == pytest.approx(2.0, abs=1e-15)


def test_sd_sf_of_checkerboard() -> None:
    m, n = 20, 30
    f = 255.0 * ((np.arange(m)[:, None] + np.arange(n)[None, :]) % 2)
    r = compute_metrics([f, f], f, ["SD", "SF"])
    assert r["SD"] == pytest.approx(127.5, rel=1e-14)
    assert r["SF"] == pytest.approx(255.0 * math.sqrt((n - 1) / n + (m - 1) / m), rel=1e-14)


def test_ag_of_linear_ramp() -> None:
    m, n = 20, 30
    f = 3.0 * np.arange(n)[None, :] + 4.0 * np.arange(m)[:, None]
    r = compute_metrics([f, f], f, ["AG"])
    assert r["AG"] == pytest.approx(m * n * math.sqrt(12.5) / ((m - 1) * (n - 1)), rel=1e-14)


def test_ei_of_horizontal_ramp() -> None:
    m, n = 16, 30
    f = np.tile(3.0 * np.arange(n), (m, 1))
    # interior columns: |Sobel| = 4 * 6 = 24; the replicated border columns see half the step: 12
    assert compute_metrics([f, f], f, ["EI"])["EI"] == pytest.approx(24.0 * (n - 1) / n, rel=1e-14)


def test_mi_of_independent_patterns_is_zero() -> None:
    i, j = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    a = 255.0 * (i % 2)
    f = 255.0 * (j % 2)
    r = compute_metrics([a, a], f, ["MI", "NMI"])
    assert r["MI"] == pytest.approx(0.0, abs=1e-12)
    assert r["NMI"] == pytest.approx(0.0, abs=1e-12)


def test_shifted_fused_psnr_rmse() -> None:
    a = textured(3)
    d = 5.0
    r = compute_metrics([a, a], a + d)
    assert r["MSE"] == pytest.approx(d * d, rel=1e-14)
    assert r["RMSE"] == pytest.approx(d, rel=1e-14)
    assert r["PSNR"] == pytest.approx(10 * math.log10(255.0**2 / d**2), rel=1e-14)
    assert r["FMI"] == pytest.approx(1.0, abs=1e-12)  # a shift leaves every normalised window pdf unchanged
    assert r["SD"] == pytest.approx(a.std(), rel=1e-12)


def test_scaled_fused_fmi_and_sd() -> None:
    a = textured(4, high=100)
    r = compute_metrics([a, a], 2.0 * a, ["FMI", "SD", "MI"])
    assert r["FMI"] == pytest.approx(1.0, abs=1e-12)  # identical pdfs: phi = 1, J = D(U), I = H
    assert r["SD"] == pytest.approx(2.0 * a.std(), rel=1e-12)
    h = compute_metrics([a, a], a, ["MI"])["MI"]
    assert r["MI"] == pytest.approx(h, rel=1e-12)  # min-max normalisation removes the scale


def test_ssim_of_constant_offset() -> None:
    c, d = 100.0, 20.0
    a = np.full((32, 32), c)
    c1 = (0.01 * 255) ** 2
    expected = (2 * c * (c + d) + c1) / (c * c + (c + d) ** 2 + c1)  # variances 0: only luminance
    assert compute_metrics([a, a], a + d, ["SSIM"])["SSIM"] == pytest.approx(2 * expected, rel=1e-12)


def test_qabf_of_identical_images_matches_closed_form() -> None:
    from scipy import ndimage

    a = np.zeros((40, 40))
    a[10:30, 12:25] = 100.0
    gx = ndimage.sobel(a, axis=1, mode="constant")
    gy = ndimage.sobel(a, axis=0, mode="constant")
    g = np.hypot(gx, gy)
    # F = A: orientation term at A = 1; strength term uses G = gF (the original's "equal" branch)
    q = 0.9994 / (1 + np.exp(-15 * (g - 0.5))) * 0.9879 / (1 + np.exp(-22 * (1 - 0.8)))
    expected = (q * g).sum() / g.sum()
    assert compute_metrics([a, a], a, ["QABF"])["QABF"] == pytest.approx(expected, rel=1e-12)


def test_qabf_without_source_edges_is_zero() -> None:
    z = np.zeros((32, 32))
    assert compute_metrics([z, z], textured(5, (32, 32)), ["QABF"])["QABF"] == 0.0


def test_scd_matches_pearson_definition() -> None:
    a, b = textured(6), textured(7)
    f = np.round((a + b) / 2)
    expected = np.corrcoef(a.ravel(), (f - b).ravel())[0, 1] + np.corrcoef(b.ravel(), (f - a).ravel())[0, 1]
    assert compute_metrics([a, b], f, ["SCD"])["SCD"] == pytest.approx(expected, rel=1e-12)


def test_symmetric_metrics_on_synthetic() -> None:
    a, b = textured(8), textured(9, low=0, high=255)
    f = np.maximum(a, b)
    r1, r2 = compute_metrics([a, b], f), compute_metrics([b, a], f)
    for key in METRIC_KEYS:
        assert r1[key] == pytest.approx(r2[key], rel=1e-12, abs=1e-12), key


def test_three_sources_generalise_by_sum_or_mean() -> None:
    a, b, c = textured(10), textured(11), textured(12)
    f = np.round((a + b + c) / 3)
    three = compute_metrics([a, b, c], f)
    ab = compute_metrics([a, b], f)
    cc = compute_metrics([c, c], f)
    for key in ("MI", "NMI", "SSIM", "VIF"):  # summed over sources
        assert three[key] == pytest.approx(ab[key] + cc[key] / 2, rel=1e-12), key
    for key in ("FMI", "MSE"):  # averaged over sources
        assert three[key] == pytest.approx((2 * ab[key] + cc[key]) / 3, rel=1e-12), key
    assert three["RMSE"] == pytest.approx(math.sqrt(three["MSE"]), rel=1e-14)
    expected_scd = sum(
        np.corrcoef(s.ravel(), (f - o1 - o2).ravel())[0, 1] for s, o1, o2 in [(a, b, c), (b, a, c), (c, a, b)]
    )
    assert three["SCD"] == pytest.approx(expected_scd, rel=1e-12)
    for key in ("EN", "SD", "SF", "AG", "EI"):  # F only
        assert three[key] == ab[key]
    assert 0.0 < three["QNCIE"] <= 1.0 and 0.0 <= three["QABF"] <= 1.0


def test_uint8_input_and_inputs_not_modified() -> None:
    a8 = textured(13, high=255).astype(np.uint8)
    b8 = textured(14, high=255).astype(np.uint8)
    f8 = np.maximum(a8, b8)
    copies = [x.copy() for x in (a8, b8, f8)]
    r8 = compute_metrics([a8, b8], f8)
    rf = compute_metrics([a8.astype(float), b8.astype(float)], f8.astype(float))
    assert r8 == rf
    score([a8, b8], f8)
    for x, y in zip((a8, b8, f8), copies):
        assert np.array_equal(x, y)


def test_key_selection_keeps_canonical_order() -> None:
    a = textured(15)
    r = compute_metrics([a, a], a, keys=["PSNR", "EN"])
    assert list(r) == ["EN", "PSNR"]
    with pytest.raises(InputError, match="unknown metric"):
        compute_metrics([a, a], a, keys=["NOPE"])


@pytest.mark.parametrize(
    "sources, fused, message",
    [
        ([np.zeros((20, 20)), np.zeros((20, 21))], np.zeros((20, 20)), "shape mismatch"),
        ([np.zeros((20, 20)), np.zeros((20, 20))], np.zeros((0, 20)), "empty"),
        ([np.full((20, 20), np.nan), np.zeros((20, 20))], np.zeros((20, 20)), "NaN"),
        ([np.zeros((20, 20)), np.zeros((20, 20))], np.full((20, 20), np.inf), "Inf"),
        ([np.zeros((20, 20))], np.zeros((20, 20)), "at least 2"),
        ([np.zeros((5, 20)), np.zeros((5, 20))], np.zeros((5, 20)), "too small"),
        ([np.zeros((20, 20, 20)), np.zeros((20, 20, 20))], np.zeros((20, 20, 20)), "2-D"),
        ([np.zeros((20, 20)), None], np.zeros((20, 20)), "missing"),
        ([np.zeros((20, 20)), np.array([["a"] * 20] * 20)], np.zeros((20, 20)), "numeric"),
    ],
)
def test_bad_input_is_named(sources, fused, message) -> None:
    with pytest.raises(InputError, match=message):
        compute_metrics(sources, fused)


def test_score_bad_rule_and_range() -> None:
    a = textured(16) * 10  # outside 0..255
    with pytest.raises(InputError, match="rule"):
        score([a, a], a, rule="window")
    with pytest.raises(InputError, match="0..255"):
        score([a, a], a, rule="as-is")
    r = score([a, a], a)  # 2-D outside 0..255: the percentile rule is applied and stated
    assert r["protocol"]["rule"].startswith("percentile")


def test_format_table_lists_every_metric_with_direction() -> None:
    a, b = textured(17), textured(18)
    result = score([a, b], np.maximum(a, b))
    text = format_table(result)
    lines = text.splitlines()
    for key in METRIC_KEYS:
        row = next(line for line in lines if line.split()[0] == key)
        assert METRICS[key].direction in row.split()
    assert "rule: as-is (0..255)" in text
    assert format_table(compute_metrics([a, b], a)).count("\n") >= len(METRIC_KEYS)


def test_quantisation_rounds_half_away_from_zero() -> None:
    from MedFusionLib.metrics.information import quantise, round_half_away

    v = np.array([0.5, 1.5, 2.5, 126.5, 127.49999999999999, -2.5, -0.4])
    assert round_half_away(v).tolist() == [1, 2, 3, 127, 127, -3, 0]
    x = np.arange(227.0).reshape(1, 1, 227)  # range 226: 113 -> 113/226*255 = 127.5 exactly
    q = quantise(x)[0, 0]
    assert q[113] == 128 and q[0] == 0 and q[-1] == 255
    assert (quantise(np.full((1, 4, 4), 9.0)) == 0).all()  # a constant image becomes all zeros


@pytest.mark.parametrize("size, sigma", [(11, 1.5), (17, 3.4), (9, 1.8), (5, 1.0), (3, 0.6)])
def test_separable_windows_equal_fspecial(size: int, sigma: float) -> None:
    """SSIM and VIF windows: outer(k, k) is MATLAB fspecial('gaussian') (no entry below eps * max)."""
    from MedFusionLib.metrics._filters import gaussian_window_1d

    half = (size - 1) / 2
    y, x = np.mgrid[-half : half + 1, -half : half + 1]
    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    h[h < np.finfo(float).eps * h.max()] = 0
    h /= h.sum()
    k = gaussian_window_1d(size, sigma)
    np.testing.assert_allclose(np.outer(k, k), h, rtol=1e-13, atol=0)
