"""benchmarks/evaluate_volumes.py on a small generated select pair: rows per mode, saturation, bars, montage."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import evaluate_volumes as EV  # noqa: E402


def _write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(array.astype(np.float32)), str(path))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """spm/T1 (a head-like ellipsoid with a bright rim and texture) and spm/PET (its smooth, hot-centred partner)."""
    root = tmp_path_factory.mktemp("vols")
    z, y, x = np.mgrid[:24, :40, :36].astype(np.float32)
    r = ((z - 12) / 10) ** 2 + ((y - 20) / 16) ** 2 + ((x - 18) / 14) ** 2
    rng = np.random.default_rng(0)
    t1 = np.where(r < 1, 400 + 300 * (r > 0.7) + 40 * rng.standard_normal(r.shape), 0)
    pet = ndimage.gaussian_filter(np.where(r < 0.6, 5000 * (1 - r), 0), 2)
    _write(root / "volumes" / "spm" / "T1.nii.gz", t1)
    _write(root / "volumes" / "spm" / "PET.nii.gz", pet)
    return root


def test_crop_to_foreground_keeps_the_joint_foreground_and_a_margin():
    volume = np.zeros((2, 30, 30, 30), np.float32)
    volume[0, 10:12, 5:8, 20:21] = 1.0
    volume[1, 14, 9, 22] = 1.0
    assert EV.crop_to_foreground(volume, margin=2).shape == (2, 9, 9, 7)


def test_select_run_scores_both_modes_against_max_and_writes_montages(data_dir, tmp_path):
    result = EV.evaluate(data_dir, ["mean"], "select", slices=6, out_dir=tmp_path, montage_methods=["mean"])
    assert [(r["pair"], r["mode"]) for r in result["rows"]] == [("spm/T1+PET", "slice"), ("spm/T1+PET", "volume")]
    row = result["rows"][0]
    assert set(EV.COLUMNS) | {"SAT", "seconds"} <= set(row["max"])
    # max's saturation is exactly that of numpy.maximum of the 8-bit sources; the mean never saturates more
    volume = EV.load_case(data_dir, EV.D.VOLUME_SELECT[0], None)
    sources8 = EV.to_8bit(volume)
    expected = EV.D.saturation_share(np.maximum(sources8[0], sources8[1]) / 255.0, sources8 / 255.0)
    assert row["max"]["SAT"] == pytest.approx(expected)
    assert row["mean"]["SAT"] <= row["max"]["SAT"]
    # neither max nor the mean can be darker than both sources
    assert row["max"]["DARK"] == 0.0 and row["mean"]["DARK"] == 0.0
    bars = result["summary"]["mean"]
    assert bars["saturation_ok"] and set(bars["verdicts"]) == set(EV.COLUMNS)
    assert (tmp_path / "montage-spm-T1-PET.png").stat().st_size > 1000
    report = EV.format_report(result, "mean")
    assert "spm/T1+PET" in report and "W/T/L" in report


def test_darker_than_sources_share_counts_only_foreground_below_every_source():
    sources = np.zeros((2, 4, 5), np.float32)
    sources[0, :2] = 0.6  # foreground: the top two rows (10 voxels)
    sources[1, :2] = 0.3
    fused = sources.max(axis=0).copy()
    fused[0, :3] = 0.15  # 3 voxels 0.15 below the darker source: counted
    fused[1, 0] = 0.25  # 0.05 below the darker source: not counted
    fused[3, :] = 0.0  # background: never counted
    assert EV.D.darker_than_sources_share(fused, sources) == pytest.approx(0.3)
    assert EV.D.darker_than_sources_share(np.zeros((4, 5)), np.zeros((2, 4, 5))) == 0.0
