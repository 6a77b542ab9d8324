"""Inputs in unusual units (negative MR, PET in Bq/ml, 16-bit PNG) are normalised as documented and fused by the
default method without more saturation than max; an all-zero input is one clear line (issue 19)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.ndimage import gaussian_filter
from synthetic import phantom_inputs

from MedFusionLib.apps import cli

pytestmark = pytest.mark.usefixtures("quiet_progress")


def _write(array: np.ndarray, path: Path) -> Path:
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    return path


def _saturated_share(fused: np.ndarray, foreground: np.ndarray) -> float:
    return float((fused[foreground] >= 250).mean())


def _fuse(tmp_path: Path, a: Path, b: Path, method: str | None, capsys) -> tuple[np.ndarray, str]:
    """The fused image (0..255) and what the command wrote to stderr."""
    out = tmp_path / f"fused-{method or 'default'}{''.join(a.suffixes)}"
    args = ["fuse", str(a), str(b), "-o", str(out)] + (["--method", method] if method else [])
    code = cli.main(args)
    _, err = capsys.readouterr()
    assert code == 0, err
    return sitk.GetArrayFromImage(sitk.ReadImage(str(out))).astype(np.float64), err


def _unusual_inputs(tmp_path: Path, kind: str) -> tuple[Path, Path, np.ndarray]:
    """Two inputs of one kind and the foreground (where either source is above 5 % of its range)."""
    if kind == "16-bit png":
        anatomy, uptake, _ = phantom_inputs((96, 96))
        a = _write((anatomy * 60000).astype(np.uint16), tmp_path / "mr16.png")
        b = _write((uptake * 255).astype(np.uint8), tmp_path / "pet8.png")
        return a, b, (anatomy > 0.05) | (uptake > 0.05)
    anatomy, uptake, _ = phantom_inputs((12, 64, 56))
    uptake = gaussian_filter(uptake, 1.5)  # PET is smooth (a few mm of resolution), not a set of sharp discs
    if kind == "negative mr":  # MR in arbitrary units offset below zero: background at -800
        mr = _write((anatomy * 1000 - 800).astype(np.float32), tmp_path / "mr.nii.gz")
    else:
        mr = _write((anatomy * 1000).astype(np.float32), tmp_path / "mr.nii.gz")
    pet = _write((uptake * 25000).astype(np.float32), tmp_path / "pet-bqml.nii.gz")  # PET in Bq/ml
    return mr, pet, (anatomy > 0.05) | (uptake > 0.05)


@pytest.mark.parametrize("kind", ["negative mr", "pet in bq/ml", "16-bit png"])
def test_unusual_units_fuse_without_more_saturation_than_max(capsys, tmp_path, kind):
    a, b, foreground = _unusual_inputs(tmp_path, kind)
    default, err = _fuse(tmp_path, a, b, None, capsys)
    maximum, _ = _fuse(tmp_path, a, b, "max", capsys)
    if kind == "negative mr":  # the percentile rule, not the CT window (which turned this MR black)
        assert "medfusion: input 1: modality mr (auto-detected" in err
    assert default.max() <= 255 and default.min() >= 0
    # the inputs carry structure: the fused image is not blank and follows both sources
    assert default[foreground].std() > 10
    assert _saturated_share(default, foreground) <= _saturated_share(maximum, foreground) + 0.03


def test_all_zero_input_is_one_line_and_exit_2(capsys, tmp_path):
    zero = _write(np.zeros((6, 20, 20), np.float32), tmp_path / "zero.nii.gz")
    good = _write(phantom_inputs((6, 20, 20))[0], tmp_path / "good.nii.gz")
    out = tmp_path / "fused.nii.gz"
    code = cli.main(["fuse", str(good), str(zero), "-o", str(out)])
    _, err = capsys.readouterr()
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("medfusion: error:") and "zero.nii.gz" in err and "Traceback" not in err
    assert not out.exists()
