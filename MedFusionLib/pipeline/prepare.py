"""Validate, align and normalise the inputs of one case: what every fusion method starts from.

The first image is the reference (fixed): every other input is registered to it (or only resampled by its
header geometry when registration is ``none``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from MedFusionLib.core import imageio as io
from MedFusionLib.core.errors import InputError, MedFusionError
from MedFusionLib.core.log import note, warn
from MedFusionLib.core.normalization import detect_modalities, guess_modality, intensity_range
from MedFusionLib.core.options import FUNCTIONAL_MODALITIES, REGISTRATION
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


MISALIGNED_MM = 5.0  # header box centres or foreground centroids further apart than this: warn under 'none'


CENTROID_SAMPLE = 2_000_000  # voxels: a foreground centre needs no more (a 5 mm warning threshold)


def _centroid(image: sitk.Image) -> np.ndarray:
    """Physical centre of the foreground (above 10 % of the robust range), on a regular subsample of at most
    about CENTROID_SAMPLE voxels."""
    full = sitk.GetArrayViewFromImage(image)
    step = max(1, int(np.ceil((full.size / CENTROID_SAMPLE) ** (1.0 / full.ndim))))
    array = full[(slice(None, None, step),) * full.ndim]
    low, high = np.percentile(array, (1, 99))
    index = np.argwhere(array > low + 0.1 * (high - low))
    if not len(index):
        index = np.argwhere(np.ones(array.shape, bool))
    centre = index.mean(axis=0) * step  # back to full-resolution voxel indices
    return np.array(image.TransformContinuousIndexToPhysicalPoint(centre[::-1].tolist()))


def _box_centre(image: sitk.Image) -> np.ndarray:
    return np.array(image.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2.0 for s in image.GetSize()]))


def header_offsets_mm(fixed: sitk.Image, moving: sitk.Image) -> tuple[float, float]:
    """How far apart header geometry alone puts the two images: (box centres, foreground centres), in mm; the
    inputs are misaligned when either exceeds MISALIGNED_MM (the GUIs then default to rigid registration)."""
    if moving.GetDimension() == 2 and moving.GetSize() == fixed.GetSize():
        return 0.0, 0.0  # 2-D slices of one size are pixel-aligned by definition
    boxes = float(np.linalg.norm(_box_centre(moving) - _box_centre(fixed)))
    return boxes, float(np.linalg.norm(_centroid(moving) - _centroid(fixed)))


def warn_if_misaligned(fixed: sitk.Image, moving: sitk.Image, name: str) -> None:
    """One warning line when, fused by header geometry alone, ``moving`` looks offset from ``fixed``."""
    boxes, contents = header_offsets_mm(fixed, moving)
    if max(boxes, contents) > MISALIGNED_MM:
        warn(
            f"{name}: header geometry puts it {boxes:.0f} mm (box centres) and {contents:.0f} mm (foreground "
            f"centres) from input 1, and --register none trusts the headers; consider --register rigid"
        )


def registration_preset(kinds: Sequence[str], index: int) -> str:
    """The registration preset for aligning input ``index`` to input 0, from their detected modalities."""
    from MedFusionLib.registration.presets import preset_for

    return preset_for(kinds[0], kinds[index])


def _align(
    fixed: sitk.Image, moving: sitk.Image, registration: str, progress, cancel, preset: str = "auto", force=False
):
    """The moving image on the fixed grid, and the registration that put it there (None for 'none')."""
    if registration == "none":
        if moving.GetDimension() == 2 and moving.GetSize() == fixed.GetSize():
            return moving, None  # 2-D slices of one size: pixel-aligned by definition
        if _same_grid(fixed, moving):
            return moving, None  # already on the reference grid: resampling would only copy it (0.35 s per volume)
        from MedFusionLib.registration import resample_to_fixed

        identity = sitk.Transform(fixed.GetDimension(), sitk.sitkIdentity)
        return resample_to_fixed(fixed, moving, identity), None
    from MedFusionLib.registration import register, resample_to_fixed

    result = register(fixed, moving, registration, preset=preset, progress=progress, cancel=cancel, force=force)
    return resample_to_fixed(fixed, moving, result.transform), result


def _same_grid(fixed: sitk.Image, moving: sitk.Image, tolerance: float = 1e-6) -> bool:
    """True when ``moving`` has the reference's size, origin, spacing and direction (to ``tolerance``)."""
    return (
        moving.GetDimension() == fixed.GetDimension()
        and moving.GetSize() == fixed.GetSize()
        and all(
            np.allclose(getter(moving), getter(fixed), rtol=0.0, atol=tolerance)
            for getter in (sitk.Image.GetOrigin, sitk.Image.GetSpacing, sitk.Image.GetDirection)
        )
    )


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
    kinds: list[str] = field(default_factory=list)  # detected (or given) modality per input: ct, mr, pet, spect


def prepare_inputs(
    images: Sequence[sitk.Image],
    *,
    registration: str = REGISTRATION.default,
    modalities: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
    force_registration: bool = False,
) -> PreparedInputs:
    """Validate, register every image to ``images[0]`` and normalise each by its modality rule.

    2-D colour (RGB) inputs are reduced to their luma; NaN voxels become background (one warning line each).
    The modality of every ``auto`` input is detected (one line each, see ``detect_modalities``) and picks
    the registration preset. Inputs are never modified.
    """
    originals = list(images)
    images = [io.as_scalar(image, f"input {i + 1}") for i, image in enumerate(originals)]
    for i, image in enumerate(images):
        io.check_values(image, f"input {i + 1}")
    _check_inputs(images, registration)
    modalities = list(modalities) if modalities else ["auto"] * len(images)
    if len(modalities) != len(images):
        raise MedFusionError(f"{len(modalities)} modalities given for {len(images)} images")
    images = [io.fill_nan(image, f"input {i + 1}") for i, image in enumerate(images)]
    shown = [original if io.is_colour(original) else image for original, image in zip(originals, images)]
    detected = detect_modalities(shown, modalities)
    kinds = [kind for kind, _ in detected]
    for i, ((kind, reason), given) in enumerate(zip(detected, modalities)):
        if given == "auto":
            note(f"input {i + 1}: modality {kind} (auto-detected: {reason})")
    fixed = images[0]

    n_moving = len(images) - 1
    aligned, registrations = [fixed], []
    for index, moving in enumerate(images[1:]):
        check_cancel(cancel)
        part = sub_progress(progress, index / n_moving, (index + 1) / n_moving)
        report(part, 0.0, f"aligning input {index + 2} to input 1 ({registration})")
        if registration == "none":
            warn_if_misaligned(fixed, moving, f"input {index + 2}")
        preset = registration_preset(kinds, index + 1)
        resampled, result = _align(fixed, moving, registration, part, cancel, preset, force_registration)
        aligned.append(resampled)
        registrations.append(result)
    aligned_colour = [originals[0]] + [
        _colour_on_grid(fixed, original, reg) for original, reg in zip(originals[1:], registrations)
    ]

    # one (n_inputs, *shape) block, normalised row by row: volume mode fuses a view of it (fusion/engine.py)
    stacked = np.empty((len(aligned), *sitk.GetArrayViewFromImage(aligned[0]).shape), np.float32)
    rules = []
    for row, original, on_grid, modality, kind in zip(stacked, images, aligned, modalities, kinds):
        if modality == "auto":  # the rule decided once (its Hounsfield check reads the whole image)
            modality = guess_modality(original)
            if modality == "mr" and kind in FUNCTIONAL_MODALITIES:
                modality = kind  # the same percentile rule, named for what the input is
        low, high, rule = intensity_range(original, modality)
        row[...] = sitk.GetArrayViewFromImage(on_grid)
        row -= low
        row /= high - low
        np.clip(row, 0.0, 1.0, out=row)
        rules.append(rule)
        check_cancel(cancel)
    return PreparedInputs(fixed, originals, aligned_colour, list(stacked), rules, registrations, kinds)
