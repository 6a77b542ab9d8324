"""Validate, align and normalise the inputs of one case: what every fusion method starts from.

The first image is the reference (fixed): every other input is registered to it (or only resampled by its
header geometry when registration is ``none``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from MedFusionLib.core import imageio as io
from MedFusionLib.core.errors import InputError, MedFusionError
from MedFusionLib.core.normalization import intensity_range
from MedFusionLib.core.options import REGISTRATION
from MedFusionLib.core.progress import CancelCallback, ProgressCallback, check_cancel, report, sub_progress


def _check_inputs(images: Sequence[sitk.Image], registration: str) -> None:
    if len(images) < 2:
        raise InputError("fusion needs at least two input images")
    REGISTRATION.check(registration)
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
        from MedFusionLib.registration import resample_to_fixed

        identity = sitk.Transform(fixed.GetDimension(), sitk.sitkIdentity)
        return resample_to_fixed(fixed, moving, identity), None
    from MedFusionLib.registration import register, resample_to_fixed

    result = register(fixed, moving, registration, progress=progress, cancel=cancel)
    return resample_to_fixed(fixed, moving, result.transform), result


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
    originals: list[sitk.Image]  # as given (colour slices kept in colour)
    aligned_colour: list[sitk.Image]  # originals carried onto the reference grid (colour ones only)
    sources01: list[np.ndarray]  # normalised 0..1, array order z, y, x
    normalisation: list[str]
    registrations: list


def prepare_inputs(
    images: Sequence[sitk.Image],
    *,
    registration: str = REGISTRATION.default,
    modalities: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
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
    aligned_colour = [originals[0]] + [
        _colour_on_grid(fixed, original, reg) for original, reg in zip(originals[1:], registrations)
    ]

    sources, rules = [], []
    for original, on_grid, modality in zip(images, aligned, modalities):
        low, high, rule = intensity_range(original, modality)
        values = sitk.GetArrayFromImage(on_grid).astype(np.float32)
        sources.append(np.clip((values - low) / (high - low), 0.0, 1.0))
        rules.append(rule)
    return PreparedInputs(fixed, originals, aligned_colour, sources, rules, registrations)
