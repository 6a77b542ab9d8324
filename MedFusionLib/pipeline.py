"""Register, normalise, fuse: the whole job on SimpleITK images, shared by the CLI, batch and Slicer logic.

The first image is the reference (fixed): every other input is registered to it (or only resampled by its
header geometry when registration is ``none``), and the fused image lies on its grid with its geometry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import SimpleITK as sitk

from . import io
from .errors import InputError, MedFusionError
from .fusion import fuse_arrays, get_method
from .colour import COLOUR_MAPS, colour_fused_image
from .normalization import intensity_range
from .progress import CancelCallback, ProgressCallback, check_cancel, report, sub_progress

REGISTRATION_CHOICES = ("none", "rigid", "affine", "deformable")
COLOUR_CHOICES = ("none", "auto") + tuple(COLOUR_MAPS)
FUSION_SCALE = 255.0  # fused volumes are written as float32 on 0..255, the scale the metrics are defined on


@dataclass
class FusionResult:
    """A fused image on the reference grid plus everything needed to score and explain it."""

    fused: sitk.Image
    sources: List[np.ndarray]  # inputs on the fused grid, normalised to 0..255 (array order z, y, x)
    fused_array: np.ndarray  # fused values on 0..255
    method: str
    mode: str
    axis: int  # image axis (0 = i/x, 1 = j/y, 2 = k/z) along which slice mode cut the volume
    normalisation: List[str]
    registrations: list = field(default_factory=list)  # RegistrationResult or None per moving input
    colour_fused: Optional[sitk.Image] = None  # RGB: functional colour over the fused image (colour option)

    @property
    def array_axis(self) -> int:
        """The numpy axis (arrays are z, y, x) matching the image axis slice mode cut along."""
        return 2 - self.axis if self.fused_array.ndim == 3 else 0

    def metrics(self, include_3d: bool = True, progress: Optional[ProgressCallback] = None,
                cancel: Optional[CancelCallback] = None) -> dict:
        """The metric suite on the normalised sources and the fused image (see docs/metrics.md)."""
        from .metrics import score

        result = score(self.sources, self.fused_array, axis=self.array_axis, rule="as-is",
                       include_3d=include_3d, progress=progress, cancel=cancel)
        if "protocol" in result:
            result["protocol"]["normalisation"] = self.normalisation
            result["protocol"]["image_axis"] = self.axis
        return result


def _check_inputs(images: Sequence[sitk.Image], registration: str) -> None:
    if len(images) < 2:
        raise InputError("fusion needs at least two input images")
    if registration not in REGISTRATION_CHOICES:
        raise MedFusionError(f"unknown registration {registration!r} (choose from {', '.join(REGISTRATION_CHOICES)})")
    dims = {image.GetDimension() for image in images}
    if len(dims) != 1:
        raise InputError("inputs mix 2-D and 3-D images; fuse slices with slices and volumes with volumes")
    if dims == {2} and registration == "none":
        sizes = {image.GetSize() for image in images}
        if len(sizes) != 1:
            raise InputError(f"2-D inputs have different sizes {sorted(sizes)}; use --register rigid or affine")


def _align(fixed: sitk.Image, moving: sitk.Image, registration: str, progress, cancel):
    """The moving image on the fixed grid, and the registration that put it there (None for 'none')."""
    if registration == "none":
        if moving.GetDimension() == 2 and moving.GetSize() == fixed.GetSize():
            return moving, None  # 2-D slices of one size: pixel-aligned by definition
        from .registration import resample_to_fixed

        identity = sitk.Transform(fixed.GetDimension(), sitk.sitkIdentity)
        return resample_to_fixed(fixed, moving, identity), None
    from .registration import register, resample_to_fixed

    result = register(fixed, moving, registration, progress=progress, cancel=cancel)
    return resample_to_fixed(fixed, moving, result.transform), result


def _colour_result(fused: sitk.Image, originals, aligned_colour, sources01, colour: str,
                   functional: Optional[int]) -> Optional[sitk.Image]:
    """RGB result for the colour option: the functional input's own colours, or a colour map on its values."""
    if colour == "none":
        return None
    coloured = [i for i, image in enumerate(originals) if io.is_colour(image)]
    index = functional if functional is not None else (coloured[0] if coloured else len(originals) - 1)
    if not 0 <= index < len(originals):
        raise MedFusionError(f"functional input {index + 1} does not exist (there are {len(originals)} inputs)")
    if colour == "auto" and index in coloured:
        rgb = sitk.GetArrayFromImage(aligned_colour[index]).astype(np.float64)[..., :3]
        return colour_fused_image(fused, functional_rgb=rgb)
    colour_map = "pet" if colour == "auto" else colour
    return colour_fused_image(fused, functional01=sources01[index], colour_map=colour_map)


def _colour_on_grid(fixed: sitk.Image, original: sitk.Image, registration) -> sitk.Image:
    """A colour input carried onto the fixed grid like its luma was (grey inputs are left as they are)."""
    if not io.is_colour(original) or (registration is None and original.GetSize() == fixed.GetSize()):
        return original
    transform = registration.transform if registration else sitk.Transform(fixed.GetDimension(), sitk.sitkIdentity)
    return sitk.Resample(original, fixed, transform, sitk.sitkLinear, 0.0)


@dataclass
class PreparedInputs:
    """Inputs aligned on the reference grid and normalised: what every fusion method starts from."""

    fixed: sitk.Image  # the reference (scalar) image
    originals: List[sitk.Image]  # as given (colour slices kept in colour)
    aligned_colour: List[sitk.Image]  # originals carried onto the reference grid (colour ones only)
    sources01: List[np.ndarray]  # normalised 0..1, array order z, y, x
    normalisation: List[str]
    registrations: list


def prepare_inputs(
    images: Sequence[sitk.Image],
    *,
    registration: str = "none",
    modalities: Optional[Sequence[str]] = None,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelCallback] = None,
) -> PreparedInputs:
    """Validate, register every image to ``images[0]`` and normalise each by its modality rule.

    2-D colour (RGB) inputs are reduced to their luma. Inputs are never modified.
    """
    originals = list(images)
    images = [io.as_scalar(image, f"input {i + 1}") for i, image in enumerate(originals)]
    for i, image in enumerate(images):
        io.check_values(image, f"input {i + 1}")
    _check_inputs(images, registration)
    modalities = list(modalities) if modalities else ["auto"] * len(images)
    if len(modalities) != len(images):
        raise MedFusionError(f"{len(modalities)} modalities given for {len(images)} images")
    fixed = images[0]

    n_moving = len(images) - 1
    aligned, registrations = [fixed], []
    for index, moving in enumerate(images[1:]):
        check_cancel(cancel)
        part = sub_progress(progress, index / n_moving, (index + 1) / n_moving)
        report(part, 0.0, f"aligning input {index + 2} to input 1 ({registration})")
        resampled, result = _align(fixed, moving, registration, part, cancel)
        aligned.append(resampled)
        registrations.append(result)
    aligned_colour = [originals[0]] + [_colour_on_grid(fixed, original, reg)
                                       for original, reg in zip(originals[1:], registrations)]

    sources, rules = [], []
    for original, on_grid, modality in zip(images, aligned, modalities):
        low, high, rule = intensity_range(original, modality)
        values = sitk.GetArrayFromImage(on_grid).astype(np.float32)
        sources.append(np.clip((values - low) / (high - low), 0.0, 1.0))
        rules.append(rule)
    return PreparedInputs(fixed, originals, aligned_colour, sources, rules, registrations)


def fuse_prepared(
    prepared: PreparedInputs,
    *,
    method: Optional[str] = None,
    mode: str = "slice",
    axis: int = 2,
    colour: str = "none",
    functional: Optional[int] = None,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelCallback] = None,
) -> FusionResult:
    """Fuse prepared inputs with one method; see :func:`fuse_images` for the options."""
    if colour not in COLOUR_CHOICES:
        raise MedFusionError(f"unknown colour option {colour!r} (choose from {', '.join(COLOUR_CHOICES)})")
    fusion = get_method(method)
    n_inputs = len(prepared.sources01)
    fusion.check(n_inputs, mode)
    fixed = prepared.fixed
    if fixed.GetDimension() == 2:
        axis = 2  # a 2-D image is its own single slice
    elif not 0 <= axis < 3:
        raise MedFusionError(f"axis must be 0, 1 or 2, got {axis}")

    check_cancel(cancel)
    fused01 = fuse_arrays(prepared.sources01, fusion.name, mode, 2 - axis, progress=progress, cancel=cancel)
    fused_array = fused01 * FUSION_SCALE
    if fixed.GetDimension() == 2 and fixed.GetPixelID() == sitk.sitkUInt8:
        fused_array = np.clip(np.floor(fused_array + 0.5), 0, 255)
        fused = sitk.GetImageFromArray(fused_array.astype(np.uint8))
    else:
        fused = sitk.GetImageFromArray(fused_array.astype(np.float32))
    fused.CopyInformation(fixed)
    colour_fused = _colour_result(fused, prepared.originals, prepared.aligned_colour, prepared.sources01, colour,
                                  functional)
    report(progress, 1.0, "fusion done")
    return FusionResult(
        fused=fused,
        sources=[s * FUSION_SCALE for s in prepared.sources01],
        fused_array=fused_array.astype(np.float32),
        method=fusion.name,
        mode=mode,
        axis=axis,
        normalisation=prepared.normalisation,
        registrations=prepared.registrations,
        colour_fused=colour_fused,
    )


def fuse_images(
    images: Sequence[sitk.Image],
    *,
    method: Optional[str] = None,
    mode: str = "slice",
    axis: int = 2,
    registration: str = "none",
    modalities: Optional[Sequence[str]] = None,
    colour: str = "none",
    functional: Optional[int] = None,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelCallback] = None,
) -> FusionResult:
    """Register every image to ``images[0]``, normalise each by its modality rule, and fuse.

    ``axis`` is the image axis slice mode cuts along (2 = k, axial for axial acquisitions). 2-D colour
    (RGB) inputs are fused on their luma. ``colour`` adds an RGB result (``colour_fused``): ``auto``
    restores the functional input's own colours (or paints it with the PET map when it is grey), a map
    name paints it with that map; ``functional`` is its 0-based index (default: the colour input, else
    the last one). Inputs are never modified.
    """
    if colour not in COLOUR_CHOICES:  # checked before any slow work
        raise MedFusionError(f"unknown colour option {colour!r} (choose from {', '.join(COLOUR_CHOICES)})")
    if len(images) < 2:
        raise InputError("fusion needs at least two input images")
    fusion = get_method(method)
    fusion.check(len(images), mode)
    register_share = 0.0 if registration == "none" else 0.6
    prepared = prepare_inputs(images, registration=registration, modalities=modalities,
                              progress=sub_progress(progress, 0.0, register_share), cancel=cancel)
    return fuse_prepared(prepared, method=fusion.name, mode=mode, axis=axis, colour=colour, functional=functional,
                         progress=sub_progress(progress, register_share, 1.0), cancel=cancel)


def write_json(data: dict, path) -> None:
    """Write JSON atomically (valid JSON only: no NaN or Infinity)."""
    text = json.dumps(data, indent=2, allow_nan=False)
    io.write_atomically(Path(path), lambda tmp: Path(tmp).write_text(text + "\n"))


def check_output_path(path, dimension: int) -> None:
    """Fail before any work when the output cannot be written (missing folder, wrong type for 2-D/3-D)."""
    path = Path(path)
    if not (path.parent if str(path.parent) else Path(".")).is_dir():
        raise InputError(f"{path}: output folder {path.parent} does not exist")
    if dimension == 3 and io.is_dicom_output(path):
        return  # a DICOM series folder
    ext = io.extension(path)
    allowed = io.SUPPORTED if dimension == 2 else io.VOLUME_EXTENSIONS
    if ext not in allowed:
        raise InputError(f"{path}: unsupported output type for {dimension}-D images (use one of {', '.join(allowed)})")
