"""Reading and writing medical images with their geometry, and rejecting files we cannot fuse.

Every reader returns a SimpleITK image (origin, spacing, direction and pixel type kept). Every writer is
atomic: it writes a temporary file beside the target and renames it, so a failure or an interrupt never
leaves a half-written output.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import struct
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from MedFusionLib.core.errors import InputError, OutputError, describe_os_error
from MedFusionLib.core.log import warn
from MedFusionLib.core.native import dicom_series, native_stderr
from MedFusionLib.core.resources import check_memory

PathLike = str | os.PathLike

VOLUME_EXTENSIONS = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
SLICE_EXTENSIONS = (".png", ".tif", ".tiff")
SUPPORTED = VOLUME_EXTENSIONS + SLICE_EXTENSIONS
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, the protocol used for PET/SPECT colour slices


def extension(path: PathLike) -> str:
    """Lower-case extension, treating ``.nii.gz`` as one."""
    name = str(path).lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


# Tags of the reference series that a derived series must carry to stay in the same patient, study and frame of
# reference (PS3.3 C.7.1.1, C.7.2.1, C.7.4.1); read from the first slice of a DICOM input.
REFERENCE_TAGS = (
    "0010|0010",  # Patient's Name
    "0010|0020",  # Patient ID
    "0010|0030",  # Patient's Birth Date
    "0010|0040",  # Patient's Sex
    "0020|000d",  # Study Instance UID
    "0008|0020",  # Study Date
    "0008|0030",  # Study Time
    "0008|0050",  # Accession Number
    "0008|0090",  # Referring Physician's Name
    "0008|1030",  # Study Description
    "0020|0010",  # Study ID
    "0020|0052",  # Frame of Reference UID
    "0020|1040",  # Position Reference Indicator
    "0008|0060",  # Modality (of the source: kept as a hint for modality detection, not written)
)


def _choose_series(folder: Path, series: dict[str, list[str]], wanted: Sequence[str] | None) -> str:
    if not series:
        raise InputError(f"{folder}: folder holds no DICOM series")
    if wanted:
        chosen = [sid for sid in series if sid in wanted]
        if chosen:
            return chosen[0]
    if len(series) == 1 and not wanted:
        return next(iter(series))
    listed = ", ".join(f"{sid} ({len(files)} files)" for sid, files in series.items())
    ask = f"none of --series {', '.join(wanted)} is there" if wanted else "choose one with --series UID"
    raise InputError(f"{folder}: folder holds {len(series)} DICOM series ({ask}): {listed}")


def _read_dicom_series(folder: Path, wanted: Sequence[str] | None = None) -> sitk.Image:
    files = dicom_series(folder)
    chosen = _choose_series(folder, files, wanted)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files[chosen])
    reader.MetaDataDictionaryArrayUpdateOn()
    image = reader.Execute()
    for tag in REFERENCE_TAGS:
        if reader.HasMetaDataKey(0, tag):
            image.SetMetaData(tag, reader.GetMetaData(0, tag).strip())
    image.SetMetaData("0020|000e", chosen)
    return image


def reference_tags(image: sitk.Image) -> dict[str, str]:
    """The patient/study/frame-of-reference tags an image read from DICOM carries (empty otherwise)."""
    return {tag: image.GetMetaData(tag) for tag in REFERENCE_TAGS if image.HasMetaDataKey(tag)}


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


def _gzip_trailer_size(path: Path) -> int | None:
    """The uncompressed size (mod 2**32) a gzip file's trailer records for its last member."""
    try:
        with open(path, "rb") as handle:
            handle.seek(-4, os.SEEK_END)
            return struct.unpack("<I", handle.read(4))[0]
    except OSError:
        return None


def _check_nifti_complete(path: Path) -> None:
    """SimpleITK silently zero-fills a truncated .nii.gz: check the data length against the header.

    A .nii.gz whose gzip trailer records exactly the size the header promises is complete (a truncated stream ends
    in compressed data, which matches that size with odds of 1 in 2**32); only otherwise is the stream
    decompressed and counted, which costs about as much as reading the image."""
    compressed = extension(path) == ".nii.gz"
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as handle:
            expected = _nifti_expected_bytes(handle.read(540))
            if not expected:
                return
            if compressed and _gzip_trailer_size(path) == expected % 2**32:
                return
            size = 540
            while chunk := handle.read(1 << 22):
                size += len(chunk)
    except (EOFError, gzip.BadGzipFile, OSError, struct.error):
        raise InputError(f"{path}: truncated or corrupt compressed file") from None
    if size < expected:
        raise InputError(f"{path}: truncated file ({size} of {expected} bytes)")


def _restore_nifti_nan(path: Path, image: sitk.Image) -> sitk.Image:
    """ITK's NIfTI reader turns NaN into 0; put back the NaN the file holds (read with nibabel)."""
    if image.GetPixelID() not in (sitk.sitkFloat32, sitk.sitkFloat64):
        return image
    import logging

    try:
        import nibabel
    except ImportError:  # e.g. a Slicer Python without it: keep ITK's reading, say what it means
        warn(f"{path}: nibabel is not installed, so NaN voxels of this NIfTI file (if any) read as 0")
        return image

    quiet = logging.getLogger("nibabel")  # its header-fix reports would print lines of their own
    level = quiet.level
    quiet.setLevel(logging.CRITICAL + 1)
    try:
        with nibabel.imageglobals.LoggingOutputSuppressor():
            data = np.asanyarray(nibabel.load(str(path)).dataobj)
    finally:
        quiet.setLevel(level)
    if not np.issubdtype(data.dtype, np.floating):
        return image
    nan = np.isnan(data).ravel(order="F")  # file order (i fastest) = ITK's buffer order
    array = sitk.GetArrayFromImage(image)
    if not nan.any() or nan.size != array.size:
        return image
    array.reshape(-1)[nan] = np.nan
    restored = sitk.GetImageFromArray(array, isVector=image.GetNumberOfComponentsPerPixel() > 1)
    restored.CopyInformation(image)
    copy_metadata(image, restored)
    return restored


def read_image(path: PathLike, series: Sequence[str] | None = None) -> sitk.Image:
    """Read a NIfTI/NRRD/MHA file, a 2-D PNG/TIFF or a DICOM series folder; clear errors otherwise.

    NaN voxels are kept as NaN in every format. A folder with several DICOM series needs ``series`` (UIDs;
    the first one present in the folder is read), else a one-line error lists them.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    check_memory([path], series, what="reading this image", single=True)
    with native_stderr():
        return _read_image(path, series)


def _read_image(path: Path, series: Sequence[str] | None) -> sitk.Image:
    try:
        if path.is_dir():
            if not os.access(path, os.R_OK | os.X_OK):
                raise InputError(f"{path}: permission denied")
            image = _read_dicom_series(path, series)
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
            if extension(path) in (".nii", ".nii.gz"):
                image = _restore_nifti_nan(path, image)
    except InputError:
        raise
    except OSError as err:
        raise InputError(describe_os_error(err, path)) from None
    except RuntimeError as err:  # SimpleITK's reader errors: not an image, truncated, corrupt
        detail = " ".join(str(err).split()).split("ERROR:")[-1].strip()[-160:]
        raise InputError(f"{path}: not a readable image (corrupt, truncated or wrong format): {detail}") from None
    except Exception as err:  # nibabel's and numpy's own errors on malformed headers
        raise InputError(f"{path}: not a readable image: {type(err).__name__}: {str(err)[:160]}") from None
    check_geometry(image, str(path))
    return image


def check_geometry(image: sitk.Image, name: str = "image") -> None:
    """Refuse headers no resampling can use: non-finite or non-positive spacing, a non-finite origin, a
    singular or non-finite direction."""
    spacing = np.array(image.GetSpacing(), dtype=np.float64)
    if not (np.isfinite(spacing).all() and (spacing > 0).all()):
        raise InputError(f"{name}: invalid voxel spacing {tuple(float(v) for v in spacing)} in the header")
    if not np.isfinite(image.GetOrigin()).all():
        raise InputError(f"{name}: invalid origin {image.GetOrigin()} in the header")
    direction = np.array(image.GetDirection(), dtype=np.float64).reshape(image.GetDimension(), -1)
    if not np.isfinite(direction).all() or abs(np.linalg.det(direction)) < 1e-6:
        raise InputError(f"{name}: invalid (singular) direction matrix in the header")


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
    """Refuse infinite, empty, all-NaN and all-constant images (NaN alone is background: see fill_nan)."""
    array = sitk.GetArrayViewFromImage(image)
    if array.size == 0:
        raise InputError(f"{name}: image is empty")
    if np.isinf(array).any():
        raise InputError(f"{name}: contains infinite voxel values")
    finite = array[~np.isnan(array)] if np.issubdtype(array.dtype, np.floating) else array
    if finite.size == 0:
        raise InputError(f"{name}: every voxel is NaN; nothing to fuse")
    if finite.min() == finite.max():
        raise InputError(f"{name}: all voxels have the same value ({finite.flat[0]}); nothing to fuse")


def metadata_text(image: sitk.Image, key: str) -> str | None:
    """A header entry as text, or None when it is absent or not readable as text (a corrupt header may hold
    bytes that are not UTF-8, in its keys or its values)."""
    try:
        return image.GetMetaData(key) if image.HasMetaDataKey(key) else None
    except (TypeError, UnicodeError, RuntimeError):
        return None


def copy_metadata(source: sitk.Image, target: sitk.Image) -> None:
    """Copy the header entries that survive a round trip through Python strings; corrupt ones are dropped."""
    for key in source.GetMetaDataKeys():
        value = metadata_text(source, key)
        if value is not None:
            try:
                target.SetMetaData(key, value)
            except (TypeError, UnicodeError, RuntimeError):
                continue


def fill_nan(image: sitk.Image, name: str = "image") -> sitk.Image:
    """NaN voxels (SPM and PET pipelines' "outside the mask") set to the background, i.e. the smallest finite
    value, with one warning line giving their count; images without NaN are returned as they are."""
    array = sitk.GetArrayViewFromImage(image)
    if not np.issubdtype(array.dtype, np.floating):
        return image
    nan = np.isnan(array)
    count = int(nan.sum())
    if not count:
        return image
    background = float(np.nanmin(array))
    filled = np.where(nan, background, array)
    out = sitk.GetImageFromArray(filled, isVector=image.GetNumberOfComponentsPerPixel() > 1)
    out.CopyInformation(image)
    copy_metadata(image, out)
    warn(f"{name}: {count} NaN voxel(s) of {array.size} treated as background (set to {background:g})")
    return out


def load_for_fusion(path: PathLike, series: Sequence[str] | None = None) -> sitk.Image:
    """Read, reduce to a scalar image, validate values and fill NaN: the one call the CLI makes per input."""
    image = as_scalar(read_image(path, series), str(path))
    check_values(image, str(path))
    return fill_nan(image, str(path))


def output_folder(path: PathLike) -> Path:
    """The folder an output goes into; a one-line error when it does not exist (checked before any work)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{path}: output folder {folder} does not exist")
    return folder


_protected = threading.local()


def check_not_input(output: PathLike, inputs: Sequence[PathLike]) -> None:
    """Refuse an output that resolves to one of ``inputs`` (by path, symlink, ``..`` or hard link) or lies
    inside an input folder: inputs are never modified."""
    InputGuard(inputs).check(output)


class InputGuard:
    """Answers "would writing this output replace an input?" for many outputs against many inputs at once
    (a cohort's every row against every row's inputs), with the same rules as :func:`check_not_input`."""

    def __init__(self, inputs: Sequence[PathLike]) -> None:
        self._paths: dict[Path, PathLike] = {}
        self._folders: dict[Path, PathLike] = {}
        self._inodes: dict[tuple[int, int], PathLike] = {}
        for source in inputs:
            resolved = Path(source).resolve()
            self._paths[resolved] = source
            if resolved.is_dir():
                self._folders[resolved] = source
            try:
                info = resolved.stat()
                self._inodes[(info.st_dev, info.st_ino)] = source
            except OSError:
                pass

    def clash(self, output: PathLike) -> PathLike | None:
        """The input ``output`` would overwrite (or write inside), or None."""
        resolved = Path(output).resolve()
        if resolved in self._paths:
            return self._paths[resolved]
        for parent in resolved.parents:
            if parent in self._folders:
                return self._folders[parent]
        try:
            info = resolved.stat()
        except OSError:
            return None
        return self._inodes.get((info.st_dev, info.st_ino))

    def check(self, output: PathLike) -> None:
        """Raise the one-line :class:`OutputError` of :func:`check_not_input` when ``output`` clashes."""
        source = self.clash(output)
        if source is not None:
            raise OutputError(f"{output}: output would overwrite the input {source}; choose another output path")


def check_distinct_outputs(outputs: Sequence[PathLike | None]) -> None:
    """Refuse two outputs of one run that name the same file."""
    seen: dict[Path, PathLike] = {}
    for output in outputs:
        if output is None:
            continue
        key = Path(output).resolve()
        if key in seen:
            raise OutputError(f"{output}: named twice as an output (also as {seen[key]})")
        seen[key] = output


@contextmanager
def protected_inputs(inputs: Sequence[PathLike]) -> Iterator[None]:
    """While active, every writer of this module (and ``save_transform``) refuses to write over ``inputs``
    in this thread: the last line of defence behind the front-ends' early checks."""
    previous = getattr(_protected, "paths", ())
    _protected.paths = tuple(previous) + tuple(Path(p) for p in inputs)
    try:
        yield
    finally:
        _protected.paths = previous


def _check_protected(output: Path) -> None:
    check_not_input(output, getattr(_protected, "paths", ()))
    if output.exists() and not (output.is_file() or output.is_dir()):
        # renaming onto /dev/null, a FIFO or a socket would replace that node with a regular file
        raise OutputError(f"{output}: not a regular file (a device, FIFO or socket); choose a file path")


def current_umask() -> int:
    """The process umask (read from /proc where possible: setting it to read it is not thread-safe)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _writer_failure(path: Path, err: BaseException) -> OutputError:
    """A one-line OutputError for a failed write (OS errors by their reason, ITK's by their last words)."""
    if isinstance(err, OSError):
        return OutputError(f"{describe_os_error(err, path)} (nothing was written)")
    detail = " ".join(str(err).split()).split("ERROR:")[-1].strip()[-160:]
    return OutputError(f"{path}: could not write ({detail}); nothing was written")


PARTIAL = re.compile(r"^\..+\.[^.]+\.part(\.[^/]*)?$")  # the temporary names below: .<name>.<random>.part[<ext>]


def remove_stale_partials(folder: PathLike) -> int:
    """Remove temporary files and folders that an atomic write left in ``folder`` when its process was killed
    (SIGKILL leaves no chance to clean up); returns how many. Call it only when no writer into ``folder`` is running."""
    removed = 0
    for item in Path(folder).glob(".*.part*"):
        if not PARTIAL.match(item.name):
            continue
        if item.is_dir():
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.unlink(missing_ok=True)
        removed += 1
    return removed


def write_atomically(path: PathLike, write, suffix: str | None = None) -> None:
    """Call ``write(temporary_path)`` then rename onto ``path``; on any failure remove the temporary file.

    The file gets the permissions a plain ``open()`` would give (0666 less the umask), not mkstemp's 0600.
    OS and writer errors (permission denied, disk full, read-only file system) become one-line OutputErrors.
    """
    path = Path(path)
    folder = output_folder(path)
    _check_protected(path)
    suffix = extension(path) if suffix is None else suffix
    tmp = None
    try:
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{suffix}", dir=folder)
        os.close(handle)
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        _remove_quietly(tmp)
        raise _writer_failure(path, err) from None
    except OutputError as err:
        _remove_quietly(tmp)
        reason = str(err).split(": ", 1)[-1]
        raise OutputError(f"{path}: could not write ({reason}: disk full or quota?); nothing was written") from None
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(tmp: str | None) -> None:
    if tmp is not None and os.path.exists(tmp):
        try:
            os.unlink(tmp)
        except OSError:
            pass


DICOM_SCALE = 10.0  # float values are stored as int16 with RescaleSlope 0.1 (0.1 resolution) when they fit


def is_dicom_output(path: PathLike) -> bool:
    """A path without an image extension (or an existing folder) names a DICOM series folder."""
    path = Path(path)
    return path.is_dir() or str(path).endswith(os.sep) or extension(path) == ""


def new_uid() -> str:
    """A globally unique DICOM UID (the ``2.25.<UUID as an integer>`` form of PS3.5 B.2)."""
    return f"2.25.{uuid.uuid4().int}"


def _series_tags(reference: dict[str, str] | None, description: str) -> dict[str, str]:
    """Patient/study/frame-of-reference tags of the reference (new study and frame UIDs when there is
    none), a new Series UID and a SeriesDescription."""
    tags = {k: v for k, v in (reference or {}).items() if k != "0008|0060" and v}
    tags.setdefault("0020|000d", new_uid())
    tags.setdefault("0020|0052", new_uid())
    tags.setdefault("0010|0020", "")
    tags.setdefault("0010|0010", "")
    tags["0020|000e"] = new_uid()
    tags["0008|103e"] = description[:64]
    tags["0008|0008"] = "DERIVED\\SECONDARY"  # Image Type: computed from other images
    tags["0020|0011"] = "9001"  # Series Number: derived series sort after the acquired ones
    return tags


def _write_dicom_series(
    image: sitk.Image, folder: Path, reference: dict[str, str] | None = None, description: str = "MedFusion fused"
) -> None:
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
    series = _series_tags(reference, description)
    series_uid = series["0020|000e"]
    direction = volume.GetDirection()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(volume.GetDepth()):
        piece = stored[:, :, k]
        tags = {
            "0008|0060": "OT",
            "0008|0016": "1.2.840.10008.5.1.4.1.1.7",
            **series,
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


def write_dicom_series(
    image: sitk.Image,
    folder: PathLike,
    reference: dict[str, str] | None = None,
    description: str = "MedFusion fused",
) -> None:
    """Write a DICOM series into a new folder, atomically (a temporary folder renamed at the end).

    ``reference`` holds the reference input's patient, study and frame-of-reference tags (see
    :func:`reference_tags`): the new series joins that study; without it, new study and frame UIDs are made.
    """
    folder = Path(str(folder).rstrip(os.sep))
    parent = output_folder(folder)
    _check_protected(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise OutputError(f"{folder}: DICOM output folder exists and is not empty")
    tmp = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part", dir=parent))
        _write_dicom_series(image, tmp, reference, description)
        mask = current_umask()
        os.chmod(tmp, 0o777 & ~mask)
        for item in tmp.iterdir():
            os.chmod(item, 0o666 & ~mask)
        if folder.exists():
            folder.rmdir()
        os.replace(tmp, folder)
    except (OSError, RuntimeError) as err:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise _writer_failure(folder, err) from None
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_image(
    image: sitk.Image,
    path: PathLike,
    reference: dict[str, str] | None = None,
    description: str = "MedFusion fused",
) -> None:
    """Write ``image`` atomically; PNG outputs are cast to 8 bits; an extension-less path is a DICOM folder
    (``reference`` and ``description`` are its study tags and SeriesDescription, see write_dicom_series)."""
    path = Path(path)
    ext = extension(path)
    if is_dicom_output(path):
        write_dicom_series(image, path, reference, description)
        return
    if ext not in SUPPORTED:
        raise InputError(f"{path}: unsupported output type (expected one of {', '.join(SUPPORTED)})")
    if ext == ".png" and image.GetPixelID() not in (sitk.sitkUInt8, sitk.sitkVectorUInt8):
        array = np.clip(np.rint(sitk.GetArrayFromImage(image)), 0, 255).astype(np.uint8)
        converted = sitk.GetImageFromArray(array, isVector=image.GetNumberOfComponentsPerPixel() > 1)
        converted.CopyInformation(image)
        image = converted
    write_atomically(path, lambda tmp: _write_verified(image, Path(tmp), ext))


def _write_verified(image: sitk.Image, tmp: Path, ext: str) -> None:
    """Write, then check the file holds every voxel: ITK's NIfTI and TIFF writers report a short write
    (disk full, quota) on stderr only and return as if all went well."""
    with native_stderr() as messages:
        sitk.WriteImage(image, str(tmp), useCompression=ext != ".png")
        try:
            if ext in (".nii", ".nii.gz"):
                _check_nifti_complete(tmp)
            else:
                back = sitk.ImageFileReader()
                back.SetFileName(str(tmp))
                if ext in (".tif", ".tiff", ".png"):
                    if back.Execute().GetSize() != image.GetSize():
                        raise InputError("size differs")
                else:
                    back.ReadImageInformation()
        except (InputError, RuntimeError):
            raise OutputError(f"{tmp.name}: short write") from None
    if messages.last and "error" in messages.text.lower():
        raise OutputError(f"short write ({messages.last})")
