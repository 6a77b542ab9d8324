"""Inputs in unusual units (negative MR, PET in Bq/ml, 16-bit PNG) are normalised as documented and fused by the
default method without more saturation than max; an all-zero input is one clear line (issue 19)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from synthetic import UNUSUAL_UNIT_KINDS, fuse_with_cli, phantom_inputs, saturated_share, unusual_unit_files

from MedFusionLib.apps import cli

pytestmark = pytest.mark.usefixtures("quiet_progress")


@pytest.mark.parametrize("kind", UNUSUAL_UNIT_KINDS)
def test_unusual_units_fuse_without_more_saturation_than_max(tmp_path, kind):
    a, b, foreground = unusual_unit_files(tmp_path, kind)
    default, err = fuse_with_cli(a, b, None, tmp_path)
    maximum, _ = fuse_with_cli(a, b, "max", tmp_path)
    if kind == "negative mr":  # the percentile rule, not the CT window (which turned this MR black)
        assert "medfusion: input 1: modality mr (auto-detected" in err
    assert default.max() <= 255 and default.min() >= 0
    # the inputs carry structure: the fused image is not blank and follows both sources
    assert default[foreground].std() > 10
    assert saturated_share(default, foreground) <= saturated_share(maximum, foreground) + 0.03


def test_all_zero_input_is_one_line_and_exit_2(capsys, tmp_path):
    zero, good = tmp_path / "zero.nii.gz", tmp_path / "good.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((6, 20, 20), np.float32)), str(zero))
    sitk.WriteImage(sitk.GetImageFromArray(phantom_inputs((6, 20, 20))[0]), str(good))
    out = tmp_path / "fused.nii.gz"
    code = cli.main(["fuse", str(good), str(zero), "-o", str(out)])
    _, err = capsys.readouterr()
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("medfusion: error:") and "zero.nii.gz" in err and "Traceback" not in err
    assert not out.exists()
