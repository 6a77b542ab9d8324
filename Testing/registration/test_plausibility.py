"""An implausible registration stops with one line and its figures (``--force`` keeps it), while the real pairs
of ../shared/data/volumes still register. The misregistered pairs are two exams of different body parts
(brain templates against a thigh study), their headers centred on each other so that the search has a go."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from MedFusionLib.apps import cli
from MedFusionLib.registration import register
from MedFusionLib.registration.plausibility import ImplausibleRegistration, implausibility, search_bound

pytestmark = pytest.mark.real_data


def _read(shared_data, name: str) -> sitk.Image:
    return sitk.ReadImage(str(shared_data / "volumes" / name), sitk.sitkFloat32)


def _centred_on(moving: sitk.Image, fixed: sitk.Image) -> sitk.Image:
    """``moving`` with its header moved so that its box centre lies on ``fixed``'s (a wrong, overlapping start)."""

    def centre(image: sitk.Image) -> np.ndarray:
        return np.array(image.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in image.GetSize()]))

    out = sitk.Image(moving)
    out.SetOrigin(tuple(np.array(moving.GetOrigin()) + centre(fixed) - centre(moving)))
    return out


def test_brain_against_thigh_is_refused_for_weak_similarity(shared_data):
    fixed = _read(shared_data, "spm/T1.nii.gz")
    moving = _centred_on(_read(shared_data, "sts002/mr_t1.nii.gz"), fixed)
    with pytest.raises(ImplausibleRegistration, match=r"weak final similarity \(Mattes MI -0\.0"):
        register(fixed, moving, "rigid")
    kept = register(fixed, moving, "rigid", force=True)
    assert kept.warning and "weak final similarity" in kept.warning


def test_brain_pet_landing_off_the_thigh_is_refused(shared_data):
    fixed = _read(shared_data, "sts002/ct.nii.gz")
    moving = _centred_on(_read(shared_data, "spm/PET.nii.gz"), fixed)
    with pytest.raises(ImplausibleRegistration, match=r"only \d+% of the moving image's foreground lands"):
        register(fixed, moving, "rigid")


def test_fuse_stops_with_one_line_exit_2_and_force_keeps_it(shared_data, tmp_path, capsys):
    fixed = shared_data / "volumes" / "spm" / "T1.nii.gz"
    moved = tmp_path / "thigh_mr.nii.gz"
    sitk.WriteImage(
        _centred_on(_read(shared_data, "sts002/mr_t1.nii.gz"), _read(shared_data, "spm/T1.nii.gz")), str(moved)
    )
    out = tmp_path / "f.nii.gz"
    code = cli.main(["fuse", str(fixed), str(moved), "-o", str(out), "--register", "rigid", "--method", "mean"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("medfusion: error:")]
    assert code == 2 and len(errors) == 1 and "registration implausible" in errors[0] and "--force" in errors[0]
    assert not out.exists()
    code = cli.main(
        ["fuse", str(fixed), str(moved), "-o", str(out), "--register", "rigid", "--method", "mean", "--force"]
    )
    assert code == 0 and out.exists()


@pytest.mark.parametrize(
    ("fixed", "moving"),
    [
        ("spm/T1.nii.gz", "spm/PET.nii.gz"),
        ("sts002/ct.nii.gz", "sts002/mr_t1.nii.gz"),
        ("sts002/ct.nii.gz", "sts002/pet_suv.nii.gz"),
        ("sirf/mr_t1_64.nii.gz", "sirf/mr_t2_64.nii.gz"),
    ],
)
def test_real_pairs_still_register(shared_data, fixed, moving):
    result = register(_read(shared_data, fixed), _read(shared_data, moving), "rigid")
    assert result.warning is None and result.metric_value < -0.1


@pytest.mark.slow
def test_porcine_pair_still_registers(shared_data):
    result = register(_read(shared_data, "porcine/ct.nii.gz"), _read(shared_data, "porcine/mr_t2.nii.gz"), "rigid")
    assert result.warning is None


def test_search_bounds_and_a_plausible_identity():
    assert "rotation 90 degrees" in search_bound(sitk.Euler3DTransform((0, 0, 0), 0, 0, np.pi / 2))
    scaled = sitk.AffineTransform(3)
    scaled.SetMatrix((2, 0, 0, 0, 1, 0, 0, 0, 1))
    assert "scale" in search_bound(scaled)
    assert search_bound(sitk.Euler3DTransform()) is None
    image = sitk.GaussianSource(sitk.sitkFloat32, (32, 32, 32), (6, 6, 6), (16, 16, 16), 200)
    assert implausibility(image, image, sitk.Euler3DTransform(), -0.8) is None
