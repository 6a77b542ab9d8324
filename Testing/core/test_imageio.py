"""Image I/O: round trips keep geometry and pixel type; bad files give one clear error."""

from __future__ import annotations

import os

import numpy as np
import pytest
import SimpleITK as sitk

from MedFusionLib.core import imageio as io
from MedFusionLib.core.errors import InputError


def _volume(dtype=np.int16, shape=(6, 7, 8)) -> sitk.Image:
    rng = np.random.default_rng(0)
    image = sitk.GetImageFromArray((rng.random(shape) * 1000).astype(dtype))
    image.SetSpacing((0.7, 1.1, 2.5))
    image.SetOrigin((-10.0, 20.5, 3.25))
    direction = sitk.VersorTransform((0.3, -0.2, 0.9), 0.4).GetMatrix()
    image.SetDirection(direction)
    return image


def _same_geometry(a: sitk.Image, b: sitk.Image) -> None:
    assert a.GetSize() == b.GetSize()
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=1e-5)


@pytest.mark.parametrize("ext", [".nii.gz", ".nii", ".nrrd", ".mha"])
@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.uint8])
def test_volume_round_trip_keeps_geometry_and_type(tmp_path, ext, dtype):
    image = _volume(dtype)
    path = tmp_path / f"vol{ext}"
    io.write_image(image, path)
    back = io.read_image(path)
    _same_geometry(image, back)
    assert back.GetPixelID() == image.GetPixelID()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_slice_round_trip_grey_and_rgb(tmp_path, ext):
    grey = sitk.GetImageFromArray(np.arange(64 * 48, dtype=np.uint8).reshape(48, 64))
    rgb = sitk.GetImageFromArray(np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8), isVector=True)
    for image in (grey, rgb):
        path = tmp_path / f"slice{ext}"
        io.write_image(image, path)
        back = io.read_image(path)
        assert back.GetSize() == (64, 48)
        assert back.GetNumberOfComponentsPerPixel() == image.GetNumberOfComponentsPerPixel()
        np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))


def test_dicom_series_folder_round_trip(tmp_path):
    image = _volume(np.int16, (5, 16, 12))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(image.GetDepth()):
        piece = image[:, :, k]
        piece.SetMetaData("0020|0032", "\\".join(map(str, image.TransformIndexToPhysicalPoint((0, 0, k)))))
        piece.SetMetaData("0020|0037", "\\".join(map(str, image.GetDirection()[0::3] + image.GetDirection()[1::3])))
        piece.SetMetaData("0020|0013", str(k))
        piece.SetMetaData("0008|0060", "CT")
        piece.SetMetaData("0020|000e", "1.2.826.0.1.3680043.2.1125.1.42")
        writer.SetFileName(str(tmp_path / f"slice{k:03d}.dcm"))
        writer.Execute(piece)
    back = io.read_image(tmp_path)
    assert back.GetSize() == image.GetSize()
    np.testing.assert_allclose(back.GetOrigin(), image.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(back.GetDirection(), image.GetDirection(), atol=1e-4)
    np.testing.assert_allclose(back.GetSpacing()[2], image.GetSpacing()[2], atol=1e-3)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))


def test_rgb_slice_becomes_rounded_luma():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], dtype=np.uint8)
    grey = sitk.GetArrayFromImage(io.as_scalar(sitk.GetImageFromArray(rgb, isVector=True)))
    np.testing.assert_array_equal(grey, [[76, 150, 29, 18]])  # round(0.299 R + 0.587 G + 0.114 B)


def test_spm_spect_flipped_axis_round_trip(shared_data, tmp_path):
    spect = io.read_image(shared_data / "volumes/spm/SPECT.nii.gz")
    assert spect.GetDirection()[0] == -1.0
    io.write_image(spect, tmp_path / "spect.nrrd")
    back = io.read_image(tmp_path / "spect.nrrd")
    _same_geometry(spect, back)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(spect))
    t1 = io.read_image(shared_data / "volumes/spm/T1.nii.gz")
    # same physical space despite the flip: the centre voxel maps to the same point
    centre = [(n - 1) / 2 for n in t1.GetSize()]
    np.testing.assert_allclose(
        t1.TransformContinuousIndexToPhysicalPoint(centre),
        spect.TransformContinuousIndexToPhysicalPoint(centre),
        atol=2.0,
    )


# ------------------------------------------------------------------------------------------- bad input
def test_missing_file():
    with pytest.raises(InputError, match="no such file"):
        io.read_image("/definitely/not/here.nii.gz")


def test_folder_without_dicom(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="no DICOM series"):
        io.read_image(tmp_path)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path):
    path = tmp_path / "locked.nii.gz"
    io.write_image(_volume(), path)
    path.chmod(0)
    with pytest.raises(InputError, match="permission denied"):
        io.read_image(path)


@pytest.mark.parametrize("ext", [".nii.gz", ".png", ".nrrd", ".mha"])
def test_non_image_with_image_extension(tmp_path, ext):
    path = tmp_path / f"fake{ext}"
    path.write_text("this is not an image\n")
    with pytest.raises(InputError, match="fake"):
        io.read_image(path)


@pytest.mark.parametrize("ext", [".nii.gz", ".nii", ".mha", ".nrrd"])
def test_truncated_file(tmp_path, ext):
    path = tmp_path / f"vol{ext}"
    io.write_image(_volume(np.float32, (10, 20, 30)), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(InputError, match="truncated|not a readable image"):
        io.read_image(path)


def test_unsupported_extension(tmp_path):
    path = tmp_path / "image.jpg2"
    path.write_bytes(b"\0" * 10)
    with pytest.raises(InputError, match="unsupported file type"):
        io.read_image(path)


def test_four_d_and_vector_volumes_are_refused():
    vol = sitk.Cast(_volume(), sitk.sitkFloat32)
    with pytest.raises(InputError, match="4-D"):
        io.as_scalar(sitk.JoinSeries([vol, vol]), "series.nii.gz")
    with pytest.raises(InputError, match="vector image with 3 components"):
        io.as_scalar(sitk.Compose(vol, vol, vol), "vector.nrrd")


def test_constant_nan_inf_and_empty_values():
    with pytest.raises(InputError, match="same value"):
        io.check_values(sitk.Image(8, 8, 8, sitk.sitkInt16), "flat.nii.gz")
    for bad in (np.nan, np.inf, -np.inf):
        array = np.random.default_rng(0).random((4, 5, 6)).astype(np.float32)
        array[1, 2, 3] = bad
        with pytest.raises(InputError, match="NaN or infinite"):
            io.check_values(sitk.GetImageFromArray(array), "nan.nii.gz")


def test_write_to_missing_folder_and_unsupported_type(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        io.write_image(_volume(), tmp_path / "nowhere" / "out.nii.gz")
    with pytest.raises(InputError, match="unsupported output type"):
        io.write_image(_volume(), tmp_path / "out.xyz")


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.nii.gz"

    def failing_writer(tmp):
        with open(tmp, "wb") as handle:
            handle.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        io.write_atomically(target, failing_writer)
    assert list(tmp_path.iterdir()) == []


def test_dicom_series_writer_round_trip(tmp_path):
    image = sitk.Cast(_volume(np.int16, (5, 16, 12)), sitk.sitkFloat32) / 7.0  # fractional values
    io.write_image(image, tmp_path / "series")
    back = io.read_image(tmp_path / "series")
    _same_geometry(image, back)
    np.testing.assert_allclose(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image), atol=0.051)
    ct = _volume(np.int16, (4, 10, 10))
    io.write_image(ct, tmp_path / "ct_series")
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(io.read_image(tmp_path / "ct_series")), sitk.GetArrayFromImage(ct)
    )
    with pytest.raises(InputError, match="not empty"):
        io.write_image(image, tmp_path / "series")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct_series", "series"]  # no temporary folder left
