"""Reading and writing medical images with their geometry, and rejecting files we cannot fuse.

Every reader returns a SimpleITK image (origin, spacing, direction and pixel type kept). Every writer is
atomic: it writes a temporary file beside the target and renames it, so a failure or an interrupt never
leaves a half-written output.
"""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from MedFusionLib.core.errors import InputError

PathLike = str | os.PathLike

VOLUME_EXTENSIONS = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
SLICE_EXTENSIONS = (".png", ".tif", ".tiff")
SUPPORTED = VOLUME_EXTENSIONS + SLICE_EXTENSIONS
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, the protocol used for PET/SPECT colour slices


def extension(path: PathLike) -> str:
    """Lower-case extension, treating ``.nii.gz`` as one."""
    name = str(path).lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def _read_dicom_series(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    series = reader.GetGDCMSeriesIDs(str(folder))
    if not series:
        raise InputError(f"{folder}: folder holds no DICOM series")
    # Several series in one folder: take the one with the most slices (the main acquisition).
    files = max((reader.GetGDCMSeriesFileNames(str(folder), sid) for sid in series), key=len)
    reader.SetFileNames(files)
    return reader.Execute()


def _nifti_expected_bytes(header: bytes) -> int:
    """Header size plus voxel bytes promised by a NIfTI-1/2 header (0 when the header is not NIfTI)."""
    for endian in "<>":
        if len(header) >= 348 and struct.unpack(endian + "i", header[:4])[0] == 348:
            dims = struct.unpack(endian + "8h", header[40:56])
            bitpix = struct.unpack(endian + "h", header[72:74])[0]
            offset = int(struct.unpack(endian + "f", header[108:112])[0])
            break
        if len(header) >= 540 and struct.unpack(endian + "i", header[:4])[0] == 540:
            bitpix = struct.unpack(endian + "h", header[14:16])[0]
            dims = struct.unpack(endian + "8q", header[16:80])
            offset = struct.unpack(endian + "q", header[168:176])[0]
            break
    else:
        return 0
    count = int(np.prod([max(1, d) for d in dims[1 : 1 + max(0, min(dims[0], 7))]]))
    return max(offset, 348) + count * max(bitpix, 8) // 8


def _check_nifti_complete(path: Path) -> None:
    """SimpleITK silently zero-fills a truncated .nii.gz: check the data length against the header."""
    opener = gzip.open if extension(path) == ".nii.gz" else open
    try:
        with opener(path, "rb") as handle:
            expected = _nifti_expected_bytes(handle.read(540))
            if not expected:
                return
            size = 540
            while chunk := handle.read(1 << 22):
                size += len(chunk)
    except (EOFError, gzip.BadGzipFile, OSError, struct.error):
        raise InputError(f"{path}: truncated or corrupt compressed file") from None
    if size < expected:
        raise InputError(f"{path}: truncated file ({size} of {expected} bytes)")


def read_image(path: PathLike) -> sitk.Image:
    """Read a NIfTI/NRRD/MHA file, a 2-D PNG/TIFF or a DICOM series folder; clear errors otherwise."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    try:
        if path.is_dir():
            image = _read_dicom_series(path)
        else:
            if extension(path) not in SUPPORTED:
                raise InputError(
                    f"{path}: unsupported file type (expected one of {', '.join(SUPPORTED)} or a DICOM folder)"
                )
            with open(path, "rb"):
                pass  # surfaces permission problems as a clear error
            if extension(path) in (".nii", ".nii.gz"):
                _check_nifti_complete(path)
            image = sitk.ReadImage(str(path))
    except InputError:
        raise
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except RuntimeError as err:  # SimpleITK's reader errors: not an image, truncated, corrupt
        detail = " ".join(str(err).split()).split("ERROR:")[-1].strip()[-160:]
        raise InputError(f"{path}: not a readable image (corrupt, truncated or wrong format): {detail}") from None
    return image


def is_colour(image: sitk.Image) -> bool:
    """True for RGB/RGBA images (PET/SPECT pseudo-colour slices)."""
    return image.GetNumberOfComponentsPerPixel() in (3, 4)


def luma(image: sitk.Image) -> sitk.Image:
    """Grey image ``round(0.299 R + 0.587 G + 0.114 B)`` of an RGB(A) image, with its geometry (8-bit stays 8-bit)."""
    rgb = sitk.GetArrayFromImage(image)[..., :3]
    grey = np.floor(rgb.astype(np.float64) @ LUMA + 0.5)
    out = sitk.GetImageFromArray(grey.astype(np.uint8 if rgb.dtype == np.uint8 else np.float32))
    out.CopyInformation(image)
    return out


def as_scalar(image: sitk.Image, name: str = "image") -> sitk.Image:
    """The scalar image fusion works on: colour 2-D slices give their luma; vector volumes are refused."""
    components = image.GetNumberOfComponentsPerPixel()
    if image.GetDimension() not in (2, 3):
        raise InputError(f"{name}: a {image.GetDimension()}-D image; a 2-D slice or a 3-D volume is needed")
    if components > 1:
        if is_colour(image) and image.GetDimension() == 2:
            return luma(image)
        raise InputError(f"{name}: a vector image with {components} components; a scalar volume is needed")
    return image


def check_values(image: sitk.Image, name: str = "image") -> None:
    """Refuse NaN/Inf, empty and all-constant images (reads a view: no copy of the voxels)."""
    array = sitk.GetArrayViewFromImage(image)
    if array.size == 0:
        raise InputError(f"{name}: image is empty")
    if not np.isfinite(array).all():
        raise InputError(f"{name}: contains NaN or infinite voxel values")
    if array.min() == array.max():
        raise InputError(f"{name}: all voxels have the same value ({array.flat[0]}); nothing to fuse")


def load_for_fusion(path: PathLike) -> sitk.Image:
    """Read, reduce to a scalar image and validate values: the one call the CLI makes per input."""
    image = as_scalar(read_image(path), str(path))
    check_values(image, str(path))
    return image


def _atomic_target(path: Path) -> Path:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{path}: output folder {folder} does not exist")
    return folder


def write_atomically(path: PathLike, write) -> None:
    """Call ``write(temporary_path)`` then rename onto ``path``; on any failure remove the temporary file."""
    path = Path(path)
    folder = _atomic_target(path)
    suffix = extension(path)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{suffix}", dir=folder)
    os.close(handle)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


DICOM_SCALE = 10.0  # float values are stored as int16 with RescaleSlope 0.1 (0.1 resolution) when they fit


def is_dicom_output(path: PathLike) -> bool:
    """A path without an image extension (or an existing folder) names a DICOM series folder."""
    path = Path(path)
    return path.is_dir() or str(path).endswith(os.sep) or extension(path) == ""


def _write_dicom_series(image: sitk.Image, folder: Path) -> None:
    """One file per slice, with the geometry tags readers need to rebuild the volume exactly."""
    volume = image if image.GetDimension() == 3 else sitk.JoinSeries(image)
    if volume.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{folder}: DICOM output supports scalar images only (write colour results as NRRD/NIfTI)")
    peak = float(np.abs(sitk.GetArrayViewFromImage(volume)).max())
    integer = volume.GetPixelID() in (sitk.sitkInt8, sitk.sitkUInt8, sitk.sitkInt16, sitk.sitkUInt16)
    slope = next((s for s in ((1.0,) if integer else (1 / DICOM_SCALE, 1.0, 10.0)) if peak / s < 32767), None)
    if slope is None:
        raise InputError(f"{folder}: values up to {peak:g} do not fit a 16-bit DICOM series")
    stored = sitk.Cast(volume, sitk.sitkFloat64)  # GDCM stores int16 values through the rescale tags
    series_uid = "1.2.826.0.1.3680043.9.7433." + str(int(np.random.default_rng().integers(1e12)))
    direction = volume.GetDirection()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(volume.GetDepth()):
        piece = stored[:, :, k]
        tags = {
            "0008|0060": "OT",
            "0008|0016": "1.2.840.10008.5.1.4.1.1.7",
            "0008|103e": "MedFusion fused",
            "0020|000e": series_uid,
            "0020|000d": series_uid + ".0",
            "0008|0018": f"{series_uid}.{k + 1}",
            "0020|0013": str(k + 1),
            "0028|1052": "0",
            "0028|1053": f"{slope:g}",
            "0020|0032": "\\".join(f"{v:.6f}" for v in volume.TransformIndexToPhysicalPoint((0, 0, k))),
            "0020|0037": "\\".join(f"{v:.6f}" for v in direction[0::3] + direction[1::3]),
            "0018|0050": f"{volume.GetSpacing()[2]:.6f}",
            "0028|0100": "16",
            "0028|0101": "16",
            "0028|0102": "15",
            "0028|0103": "1",  # stored as int16
        }
        for tag, value in tags.items():
            piece.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{k + 1:04d}.dcm"))
        writer.Execute(piece)


def write_dicom_series(image: sitk.Image, folder: PathLike) -> None:
    """Write a DICOM series into a new folder, atomically (a temporary folder renamed at the end)."""
    folder = Path(str(folder).rstrip(os.sep))
    parent = _atomic_target(folder)
    if folder.exists() and any(folder.iterdir()):
        raise InputError(f"{folder}: DICOM output folder exists and is not empty")
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part", dir=parent))
    try:
        _write_dicom_series(image, tmp)
        if folder.exists():
            folder.rmdir()
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_image(image: sitk.Image, path: PathLike) -> None:
    """Write ``image`` atomically; PNG outputs are cast to 8 bits; an extension-less path is a DICOM folder."""
    path = Path(path)
    ext = extension(path)
    if is_dicom_output(path):
        write_dicom_series(image, path)
        return
    if ext not in SUPPORTED:
        raise InputError(f"{path}: unsupported output type (expected one of {', '.join(SUPPORTED)})")
    if ext == ".png" and image.GetPixelID() not in (sitk.sitkUInt8, sitk.sitkVectorUInt8):
        array = np.clip(np.rint(sitk.GetArrayFromImage(image)), 0, 255).astype(np.uint8)
        converted = sitk.GetImageFromArray(array, isVector=image.GetNumberOfComponentsPerPixel() > 1)
        converted.CopyInformation(image)
        image = converted
    write_atomically(path, lambda tmp: sitk.WriteImage(image, tmp, useCompression=ext != ".png"))
