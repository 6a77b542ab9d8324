"""Registration: recovery of known transforms (SPM templates, synthetic 2-D/3-D), failure reports, I/O."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from MedFusionLib.core.errors import InputError, OperationCancelled, RegistrationError
from MedFusionLib.registration import (
    MODES,
    PRESETS,
    RegistrationResult,
    load_transform,
    register,
    resample_to_fixed,
    save_transform,
)
from MedFusionLib.registration.checks import check_result
from MedFusionLib.registration.presets import guess_preset

# ------------------------------------------------------------------------------------------- helpers


def rotation(axis, degrees: float) -> np.ndarray:
    th = math.radians(degrees)
    if axis is None:  # 2-D
        return np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(th) * K + (1 - math.cos(th)) * K @ K


def move_header(image: sitk.Image, R: np.ndarray, shift, centre) -> tuple[sitk.Image, sitk.Transform]:
    """Rigidly move an image through its header (exact, no resampling); return it and the true fixed->moving map."""
    dim = image.GetDimension()
    out = sitk.Image(image)
    D = np.array(image.GetDirection()).reshape(dim, dim)
    out.SetDirection((R @ D).ravel().tolist())
    out.SetOrigin((R @ (np.array(image.GetOrigin()) - centre) + centre + np.asarray(shift)).tolist())
    true = sitk.AffineTransform(dim)
    true.SetCenter(list(map(float, centre)))
    true.SetMatrix(R.ravel().tolist())
    true.SetTranslation(list(map(float, shift)))
    return out, true


def mean_error(est: sitk.Transform, true: sitk.Transform, points: np.ndarray) -> float:
    d = [np.subtract(est.TransformPoint(p.tolist()), true.TransformPoint(p.tolist())) for p in points]
    return float(np.mean(np.linalg.norm(d, axis=1)))


def phantom(shape, spacing: float, contrast=(1.0, 0.3, 0.7, 0.5), seed: int = 0) -> sitk.Image:
    """Head-like phantom: an outer ellipsoid with inner blobs; ``contrast`` sets region values (modality)."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    r2 = lambda c, s: sum(((g - ci) / si) ** 2 for g, ci, si in zip(grids, c, s))  # noqa: E731
    arr = np.zeros(shape, np.float32)
    dim = len(shape)
    arr[r2([0] * dim, [0.8, 0.65, 0.7][:dim]) < 1] = contrast[0]
    arr[r2([0.25, -0.1, 0.1][:dim], [0.25, 0.3, 0.25][:dim]) < 1] = contrast[1]
    arr[r2([-0.3, 0.2, -0.15][:dim], [0.2, 0.15, 0.3][:dim]) < 1] = contrast[2]
    arr[r2([0.05, 0.35, 0.3][:dim], [0.12, 0.2, 0.15][:dim]) < 1] = contrast[3]
    # Shared anatomy-like texture (same seed for every "modality", mapped by the modality's contrast),
    # then modality-specific noise.
    texture = sitk.GetArrayFromImage(
        sitk.SmoothingRecursiveGaussian(
            sitk.GetImageFromArray(np.random.default_rng(100).standard_normal(shape).astype(np.float32)), 2.0
        )
    )
    arr += (contrast[3] - contrast[1]) * 2.0 * texture * (arr > 0)
    arr += 0.02 * rng.standard_normal(shape).astype(np.float32)
    image = sitk.GetImageFromArray(arr.transpose(*range(dim)[::-1]))  # array index order is reversed
    image.SetSpacing([spacing] * dim)
    image = sitk.SmoothingRecursiveGaussian(image, spacing)
    return image


def points_of(image: sitk.Image, step: int = 3) -> np.ndarray:
    arr = sitk.GetArrayViewFromImage(image)
    idx = np.argwhere(arr > 0.2 * arr.max())[::step][:, ::-1]
    return np.array([image.TransformIndexToPhysicalPoint([int(i) for i in ix]) for ix in idx])


def centre(image: sitk.Image) -> np.ndarray:
    return np.array(image.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in image.GetSize()]))


# ------------------------------------------------------------------------------------ real data (SPM)


@pytest.fixture(scope="module")
def spm(shared_data):
    folder = shared_data / "volumes" / "spm"
    if not folder.is_dir():
        pytest.skip("SPM volumes absent")
    read = lambda n: sitk.ReadImage(str(folder / f"{n}.nii.gz"))  # noqa: E731
    mask = read("mask_ICV")
    return {"T1": read("T1"), "T2": read("T2"), "SPECT": read("SPECT"), "points": points_of(mask, step=40)}


def test_spm_t1_t2_recovers_oblique_rotation_and_shift(spm):
    fixed = spm["T1"]
    moving, true = move_header(spm["T2"], rotation((1, -2, 1), 20), (-12, 8, -10), centre(fixed))
    before = mean_error(sitk.Euler3DTransform(), true, spm["points"])
    result = register(fixed, moving, "rigid")
    err = mean_error(result.transform, true, spm["points"])
    assert before > 15  # the perturbation is large
    assert err < 1.5, result.summary()
    assert result.metric_value < result.initial_metric_value
    assert result.iterations > 10 and result.starts_tried >= 1 and result.stop_reason


def test_spm_spect_with_flipped_direction_recovers(spm):
    fixed = spm["T1"]
    assert spm["SPECT"].GetDirection()[0] == -1  # stored with a flipped x axis
    moving, true = move_header(spm["SPECT"], rotation((1, 1, 1), 15), (10, -10, 5), centre(fixed))
    result = register(fixed, moving, "rigid", preset="pet-mr")
    assert mean_error(result.transform, true, spm["points"]) < 3.0, result.summary()


# ----------------------------------------------------------------------------------------- synthetic


def test_synthetic_3d_multimodal_rigid_recovery():
    fixed = phantom((48, 48, 40), 2.0)
    other = phantom((48, 48, 40), 2.0, contrast=(0.4, 1.0, 0.1, 0.8), seed=1)  # different "modality"
    moving, true = move_header(other, rotation((1, 2, -1), 12), (6, -5, 4), centre(fixed))
    pts = points_of(fixed, 25)
    assert mean_error(sitk.Euler3DTransform(), true, pts) > 8  # a real misalignment to recover
    result = register(fixed, moving, "rigid")
    assert isinstance(result, RegistrationResult)
    # Within one 2 mm voxel: this blocky toy phantom has a flatter optimum than real images (SPM: ~0.5 mm).
    assert mean_error(result.transform, true, pts) < 2.0, result.summary()


@pytest.mark.parametrize("mode", ["rigid", "affine"])
def test_synthetic_2d_recovery(mode):
    fixed = phantom((128, 128), 1.0)
    other = phantom((128, 128), 1.0, contrast=(0.5, 0.9, 0.2, 1.0), seed=2)
    moving, true = move_header(other, rotation(None, 12), (7, -5), centre(fixed))
    result = register(fixed, moving, mode)
    assert result.transform.GetDimension() == 2
    assert mean_error(result.transform, true, points_of(fixed, 20)) < 1.0, result.summary()


def test_deformable_improves_on_affine_for_a_nonrigid_warp():
    fixed = phantom((96, 96), 1.0)
    # Known smooth nonrigid warp (up to 3 px), applied by resampling.
    y, x = np.meshgrid(*[np.arange(n) for n in fixed.GetSize()[::-1]], indexing="ij")
    field = np.stack([3.0 * np.sin(y / 9.0), 2.5 * np.cos(x / 11.0)], axis=-1)
    disp = sitk.GetImageFromArray(field, isVector=True)
    disp.CopyInformation(fixed)
    warp = sitk.DisplacementFieldTransform(sitk.Cast(disp, sitk.sitkVectorFloat64))
    moving = sitk.Resample(fixed, fixed, warp, sitk.sitkLinear, 0.0)
    affine = register(fixed, moving, "affine")
    deform = register(fixed, moving, "deformable")
    assert isinstance(deform.transform, sitk.CompositeTransform)

    def misfit(t):
        out = sitk.GetArrayFromImage(resample_to_fixed(fixed, moving, t))
        return float(np.mean(np.abs(out - sitk.GetArrayViewFromImage(fixed))))

    assert deform.metric_value <= affine.metric_value + 1e-3
    assert misfit(deform.transform) < 0.9 * misfit(affine.transform)


# ---------------------------------------------------------------------------- I/O, resampling, API


def test_transform_round_trip_and_atomic_save(tmp_path):
    t = sitk.Euler3DTransform((1.0, 2.0, 3.0), 0.1, -0.2, 0.05, (4.0, -5.0, 6.0))
    bsp = sitk.BSplineTransformInitializer(phantom((16, 16, 16), 2.0), [4, 4, 4], 3)
    bsp.SetParameters(np.linspace(-1, 1, len(bsp.GetParameters())).tolist())
    affine = sitk.AffineTransform(3)
    affine.SetCenter(t.GetCenter())
    affine.SetMatrix(t.GetMatrix())
    affine.SetTranslation(t.GetTranslation())
    for name, tx in (("rigid.tfm", t), ("composite.h5", sitk.CompositeTransform([affine, bsp]))):
        path = tmp_path / name
        save_transform(tx, path)
        back = load_transform(path)
        for p in ([0.0, 0.0, 0.0], [10.0, -7.0, 12.5]):
            assert np.allclose(back.TransformPoint(p), tx.TransformPoint(p), atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["composite.h5", "rigid.tfm"]  # no temp files left
    with pytest.raises(InputError, match="does not exist"):
        save_transform(t, tmp_path / "missing" / "x.tfm")
    with pytest.raises(InputError, match="not found"):
        load_transform(tmp_path / "nope.tfm")


def test_resample_to_fixed_matches_fixed_geometry():
    fixed = phantom((30, 34, 20), 1.5)
    moving = sitk.Cast(phantom((24, 24, 24), 2.0) * 100 - 7, sitk.sitkInt16)
    moving.SetOrigin((5.0, -3.0, 2.0))
    out = resample_to_fixed(fixed, moving, sitk.Euler3DTransform())
    assert out.GetSize() == fixed.GetSize()
    assert np.allclose(out.GetSpacing(), fixed.GetSpacing()) and np.allclose(out.GetOrigin(), fixed.GetOrigin())
    assert np.allclose(out.GetDirection(), fixed.GetDirection())
    assert out.GetPixelID() == moving.GetPixelID()
    corner = out[fixed.GetSize()[0] - 1, fixed.GetSize()[1] - 1, fixed.GetSize()[2] - 1]  # outside the moving box
    assert corner == int(sitk.GetArrayViewFromImage(moving).min())


def test_progress_reported_and_cancel_raises():
    fixed = phantom((64, 64), 1.0)
    moving, _ = move_header(phantom((64, 64), 1.0, seed=3), rotation(None, 5), (3, 2), centre(fixed))
    calls = []
    register(fixed, moving, progress=lambda f, m: calls.append((f, m)))
    assert len(calls) > 5 and all(0.0 <= f <= 1.0 for f, _ in calls) and calls[-1][0] == 1.0
    assert all(isinstance(m, str) and m for _, m in calls)
    polls = []

    def cancel() -> bool:
        polls.append(1)
        return len(polls) > 3

    with pytest.raises(OperationCancelled):
        register(fixed, moving, cancel=cancel)


def test_fields_of_view_that_do_not_overlap_fail_clearly():
    fixed = phantom((32, 32, 24), 2.0)
    moving = phantom((32, 32, 24), 2.0, seed=4)
    moving.SetOrigin((500.0, 0.0, 0.0))
    with pytest.raises(RegistrationError, match="do not overlap"):
        register(fixed, moving)


def test_failure_checks_name_the_problem():
    fixed = phantom((32, 32, 24), 2.0)
    with pytest.raises(RegistrationError, match="worse"):
        check_result(fixed, fixed, sitk.Euler3DTransform(), initial_metric=-0.8, final_metric=-0.3)
    far = sitk.Euler3DTransform()
    far.SetTranslation((58.0, 0.0, 0.0))  # slides the image almost off itself
    with pytest.raises(RegistrationError, match="overlap"):
        check_result(fixed, fixed, far, initial_metric=-0.8, final_metric=-0.9)


def test_bad_arguments_give_clear_errors():
    img = phantom((32, 32), 1.0)
    assert MODES == ("rigid", "affine", "deformable")
    assert PRESETS == ("auto", "ct-mr", "pet-mr", "mr-mr")
    with pytest.raises(InputError, match="rigid, affine, deformable"):
        register(img, img, "elastic")
    with pytest.raises(InputError, match="preset"):
        register(img, img, preset="ct-pet")
    with pytest.raises(InputError, match="constant"):
        register(img, sitk.Image(32, 32, sitk.sitkFloat32))
    with pytest.raises(InputError, match="2-D"):
        register(img, phantom((16, 16, 16), 1.0))


def test_auto_preset_recognises_ct():
    mr = phantom((16, 16, 16), 1.0)
    ct = mr * 2000 - 1000
    assert guess_preset(ct, mr) == "ct-mr"
    assert guess_preset(mr, mr) == "mr-mr"
