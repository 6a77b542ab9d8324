"""Image I/O: round trips keep geometry and pixel type; bad files give one clear error."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from MedFusionLib.core import imageio as io
from MedFusionLib.core.errors import InputError, MedFusionError, OutputError


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


def test_constant_inf_all_nan_and_empty_values():
    with pytest.raises(InputError, match="same value"):
        io.check_values(sitk.Image(8, 8, 8, sitk.sitkInt16), "flat.nii.gz")
    for bad in (np.inf, -np.inf):
        array = np.random.default_rng(0).random((4, 5, 6)).astype(np.float32)
        array[1, 2, 3] = bad
        with pytest.raises(InputError, match="infinite"):
            io.check_values(sitk.GetImageFromArray(array), "inf.nii.gz")
    with pytest.raises(InputError, match="every voxel is NaN"):
        io.check_values(sitk.GetImageFromArray(np.full((3, 4, 5), np.nan, np.float32)), "nan.nii.gz")


@pytest.mark.parametrize("ext", [".nii", ".nii.gz", ".nrrd", ".mha"])
def test_nan_is_read_faithfully_and_filled_as_background_with_one_warning(tmp_path, ext, caplog):
    array = np.random.default_rng(1).random((4, 5, 6)).astype(np.float32) + 2.0
    array[0, 1, 2] = array[3, 4, 5] = array[2, 2, 2] = np.nan
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.5, 2.0, 2.5))
    sitk.WriteImage(image, str(tmp_path / f"nan{ext}"))
    back = io.read_image(tmp_path / f"nan{ext}")
    np.testing.assert_array_equal(np.isnan(sitk.GetArrayFromImage(back)), np.isnan(array))  # ITK alone: 0 for NIfTI
    io.check_values(back, "nan")  # NaN is not refused
    with caplog.at_level("WARNING", logger="MedFusionLib"):
        filled = io.fill_nan(back, "nan")
    values = sitk.GetArrayFromImage(filled)
    assert not np.isnan(values).any() and values[0, 1, 2] == np.nanmin(array)
    assert [r.getMessage() for r in caplog.records] == [
        f"nan: 3 NaN voxel(s) of 120 treated as background (set to {np.nanmin(array):g})"
    ]


def test_output_resolving_to_an_input_is_refused(tmp_path):
    source = tmp_path / "a.nii.gz"
    io.write_image(_volume(), source)
    before = source.read_bytes()
    (tmp_path / "sub").mkdir()
    os.link(source, tmp_path / "hard.nii.gz")
    os.symlink(source, tmp_path / "soft.nii.gz")
    for output in (source, tmp_path / "sub" / ".." / "a.nii.gz", tmp_path / "hard.nii.gz", tmp_path / "soft.nii.gz"):
        with pytest.raises(OutputError, match="would overwrite the input"):
            io.check_not_input(output, [source])
        with io.protected_inputs([source]), pytest.raises(OutputError, match="would overwrite the input"):
            io.write_image(_volume(np.float32), output)
    dicom = tmp_path / "dicom_in"
    io.write_image(_volume(np.int16), dicom)
    for output in (dicom, dicom / "inside.nii.gz"):
        with pytest.raises(OutputError, match="would overwrite the input"):
            io.check_not_input(output, [dicom])
    with pytest.raises(OutputError, match="named twice"):
        io.check_distinct_outputs([tmp_path / "f.nii.gz", None, tmp_path / "sub" / ".." / "f.nii.gz"])
    assert source.read_bytes() == before
    io.check_not_input(tmp_path / "other.nii.gz", [source, dicom])  # a different file is fine


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_and_dicom_folders_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        io.write_image(_volume(), tmp_path / "f.nii.gz")
        io.write_image(_volume(), tmp_path / "series")
        io.write_atomically(tmp_path / "t.json", lambda tmp: open(tmp, "w").write("{}"))
    finally:
        os.umask(old)
    assert (tmp_path / "f.nii.gz").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "t.json").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "series").stat().st_mode & 0o777 == 0o777 & ~umask
    assert {f.stat().st_mode & 0o777 for f in (tmp_path / "series").iterdir()} == {0o666 & ~umask}


def _write_series(folder, image, uid: str, extra: dict | None = None) -> None:
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(image.GetDepth()):
        piece = image[:, :, k]
        piece.SetMetaData("0020|0032", "\\".join(map(str, image.TransformIndexToPhysicalPoint((0, 0, k)))))
        piece.SetMetaData("0020|0037", "1\\0\\0\\0\\1\\0")
        piece.SetMetaData("0020|0013", str(k))
        piece.SetMetaData("0020|000e", uid)
        for tag, value in (extra or {}).items():
            piece.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{uid[-3:]}_{k:03d}.dcm"))
        writer.Execute(piece)


def test_multi_series_folder_needs_series_uid(tmp_path):
    a = sitk.GetImageFromArray(np.arange(4 * 6 * 6, dtype=np.int16).reshape(4, 6, 6))
    b = sitk.GetImageFromArray(np.full((3, 6, 6), 7, np.int16) + np.arange(6, dtype=np.int16))
    _write_series(tmp_path, a, "1.2.3.4.100")
    _write_series(tmp_path, b, "1.2.3.4.200")
    with pytest.raises(InputError, match=r"2 DICOM series \(choose one with --series UID\)") as err:
        io.read_image(tmp_path)
    assert "1.2.3.4.100 (4 files)" in str(err.value) and "1.2.3.4.200 (3 files)" in str(err.value)
    assert "\n" not in str(err.value)
    assert io.read_image(tmp_path, series=["1.2.3.4.200"]).GetSize() == (6, 6, 3)
    assert io.read_image(tmp_path, series=["9.9", "1.2.3.4.100"]).GetSize() == (6, 6, 4)
    with pytest.raises(InputError, match="none of --series 9.9 is there"):
        io.read_image(tmp_path, series=["9.9"])


def test_dicom_output_joins_the_reference_study(tmp_path):
    reference = {
        "0010|0010": "Doe^Jane",
        "0010|0020": "PID-42",
        "0020|000d": "1.2.840.99.1",
        "0020|0052": "1.2.840.99.2",
        "0008|0060": "MR",
    }
    source = tmp_path / "ref"
    source.mkdir()
    _write_series(
        source, sitk.GetImageFromArray(np.arange(3 * 5 * 5, dtype=np.int16).reshape(3, 5, 5)), "1.2.840.99.3", reference
    )
    image = io.read_image(source)
    assert io.reference_tags(image)["0020|000d"] == "1.2.840.99.1"
    io.write_image(
        sitk.Cast(image, sitk.sitkFloat32), tmp_path / "out", io.reference_tags(image), "MedFusion mean (slice) fusion"
    )
    reader = sitk.ImageFileReader()
    series_uids = set()
    for path in sorted((tmp_path / "out").iterdir()):
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        assert reader.GetMetaData("0010|0010").strip() == "Doe^Jane"
        assert reader.GetMetaData("0010|0020").strip() == "PID-42"
        assert reader.GetMetaData("0020|000d").strip() == "1.2.840.99.1"
        assert reader.GetMetaData("0020|0052").strip() == "1.2.840.99.2"
        assert reader.GetMetaData("0008|103e").strip() == "MedFusion mean (slice) fusion"
        assert reader.GetMetaData("0008|0008").strip().startswith("DERIVED")
        series_uids.add(reader.GetMetaData("0020|000e").strip())
    assert len(series_uids) == 1 and series_uids != {"1.2.840.99.3"}
    # without a DICOM reference: new, distinct study and frame-of-reference UIDs of the 2.25 form
    io.write_image(sitk.Cast(image, sitk.sitkFloat32), tmp_path / "out2")
    reader.SetFileName(str(next((tmp_path / "out2").iterdir())))
    reader.ReadImageInformation()
    study, frame = reader.GetMetaData("0020|000d").strip(), reader.GetMetaData("0020|0052").strip()
    assert study.startswith("2.25.") and frame.startswith("2.25.") and study != frame and len(study) <= 64


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
    with pytest.raises(MedFusionError, match="not empty"):
        io.write_image(image, tmp_path / "series")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct_series", "series"]  # no temporary folder left


def test_device_fifo_outputs_are_refused_not_replaced(tmp_path):
    fifo = tmp_path / "pipe.nii.gz"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="not a regular file"):
        io.write_image(_volume(), fifo)
    assert fifo.is_fifo()
    with pytest.raises(OutputError, match="not a regular file"):
        io.write_atomically("/dev/null", lambda tmp: open(tmp, "w").write("x"))
    assert Path("/dev/null").is_char_device()


def test_a_header_key_that_is_not_text_does_not_break_reading(tmp_path):
    """A corrupt MetaImage header can carry a key that is not UTF-8 (found by the fuzz test): the image is read,
    its NaN filled, and the unreadable entry dropped, instead of a TypeError from SimpleITK's string bridge."""
    import numpy as np

    from MedFusionLib.core.imageio import load_for_fusion

    values = np.array([[np.nan, 0.25, 0.75]], dtype=np.float32)
    header = (
        b"ObjectType = Image\nNDims = 2\nDimSize = 3 1\nElementType = MET_FLOAT\n\xb0dd = 1\nElementDataFile = LOCAL\n"
    )
    path = tmp_path / "odd.mha"
    path.write_bytes(header + values.tobytes())
    image = load_for_fusion(path)
    assert image.GetSize() == (3, 1)
    assert np.isfinite(sitk.GetArrayViewFromImage(image)).all()
