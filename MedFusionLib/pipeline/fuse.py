"""Fuse one case: prepared inputs -> one method -> the fused image (and its colour rendering).

The fused image lies on the reference (first input's) grid with its geometry, on the 0..255 fusion scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from MedFusionLib.core import imageio as io
from MedFusionLib.core.colour import colour_fused_image
from MedFusionLib.core.errors import InputError, MedFusionError
from MedFusionLib.core.options import (
    AXIS,
    COLOUR,
    COLOUR_STYLE,
    DEVICE,
    FUNCTIONAL_MODALITIES,
    MODE,
    REGISTRATION,
    colour_for_inputs,
)
from MedFusionLib.core.progress import CancelCallback, ProgressCallback, check_cancel, report, sub_progress
from MedFusionLib.core.stages import stage
from MedFusionLib.fusion import fuse_arrays, get_method
from MedFusionLib.inference.devices import check_device, device_scope
from MedFusionLib.pipeline.prepare import PreparedInputs, prepare_inputs
from MedFusionLib.pipeline.result import FUSION_SCALE, FusionResult


def _colour_result(
    fused: sitk.Image,
    originals,
    aligned_colour,
    sources01,
    colour: str,
    functional: int | None,
    style: str = COLOUR_STYLE.default,
    kinds: Sequence[str] = (),
) -> sitk.Image | None:
    """RGB result for the colour option: the functional input's own colours, or a colour map on its values.

    The functional input is ``functional`` (0-based), else the colour input, else the one detected as PET or
    SPECT (``kinds``), else the last; ``auto`` without any of these is the grey image (None)."""
    coloured = [i for i, image in enumerate(originals) if io.is_colour(image)]
    detected = [i for i, kind in enumerate(kinds) if kind in FUNCTIONAL_MODALITIES]
    if colour_for_inputs(colour, functional is not None or bool(coloured or detected)) == "none":
        return None
    index = functional if functional is not None else (coloured or detected or [len(originals) - 1])[0]
    if not 0 <= index < len(originals):
        raise MedFusionError(f"functional input {index + 1} does not exist (there are {len(originals)} inputs)")
    if colour == "auto" and index in coloured:
        rgb = sitk.GetArrayFromImage(aligned_colour[index]).astype(np.float64)[..., :3]
        return colour_fused_image(fused, functional_rgb=rgb, style=style)
    colour_map = "pet" if colour == "auto" else colour
    return colour_fused_image(fused, functional01=sources01[index], colour_map=colour_map, style=style)


def fuse_prepared(
    prepared: PreparedInputs,
    *,
    method: str | None = None,
    mode: str = MODE.default,
    axis: int = AXIS.default,
    colour: str = COLOUR.default,
    functional: int | None = None,
    colour_style: str = COLOUR_STYLE.default,
    device: str = DEVICE.default,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> FusionResult:
    """Fuse prepared inputs with one method; see :func:`fuse_images` for the options."""
    COLOUR.check(colour)
    COLOUR_STYLE.check(colour_style)
    check_device(device)
    fusion = get_method(method)
    n_inputs = len(prepared.sources01)
    fusion.check(n_inputs, mode)
    fixed = prepared.fixed
    if fixed.GetDimension() == 2:
        axis = 2  # a 2-D image is its own single slice
    elif not 0 <= axis < 3:
        raise MedFusionError(f"axis must be 0, 1 or 2, got {axis}")

    check_cancel(cancel)
    with device_scope(device), stage("fuse"):
        fused01 = fuse_arrays(
            prepared.sources01,
            fusion.name,
            mode,
            2 - axis,
            modalities=prepared.kinds or None,  # given or detected per input by prepare_inputs
            progress=progress,
            cancel=cancel,
        )
    with stage("output image"):
        fused, fused_array = _fused_image(fused01, fixed)
    check_cancel(cancel)
    with stage("colour"):
        colour_fused = _colour_result(
            fused,
            prepared.originals,
            prepared.aligned_colour,
            prepared.sources01,
            colour,
            functional,
            colour_style,
            prepared.kinds,
        )
    report(progress, 1.0, "fusion done")
    return FusionResult(
        fused=fused,
        sources01=list(prepared.sources01),
        fused_array=fused_array,
        method=fusion.name,
        mode=mode,
        axis=axis,
        normalisation=prepared.normalisation,
        registrations=prepared.registrations,
        colour_fused=colour_fused,
        kinds=list(prepared.kinds),
    )


def _fused_image(fused01: np.ndarray, fixed: sitk.Image) -> tuple[sitk.Image, np.ndarray]:
    """The fused image on the 0..255 scale with the reference's geometry (8-bit for an 8-bit 2-D reference),
    and its float32 array."""
    fused_array = fused01 * FUSION_SCALE
    if fixed.GetDimension() == 2 and fixed.GetPixelID() == sitk.sitkUInt8:
        fused_array = np.clip(np.floor(fused_array + 0.5), 0, 255)
        fused = sitk.GetImageFromArray(fused_array.astype(np.uint8))
    else:
        fused = sitk.GetImageFromArray(fused_array.astype(np.float32, copy=False))
    fused.CopyInformation(fixed)
    return fused, fused_array.astype(np.float32, copy=False)


def fuse_images(
    images: Sequence[sitk.Image],
    *,
    method: str | None = None,
    mode: str = MODE.default,
    axis: int = AXIS.default,
    registration: str = REGISTRATION.default,
    modalities: Sequence[str] | None = None,
    colour: str = COLOUR.default,
    functional: int | None = None,
    colour_style: str = COLOUR_STYLE.default,
    device: str = DEVICE.default,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
    force_registration: bool = False,
) -> FusionResult:
    """Register every image to ``images[0]``, normalise each by its modality rule, and fuse.

    ``axis`` is the image axis slice mode cuts along (2 = k, axial for axial acquisitions). 2-D colour
    (RGB) inputs are fused on their luma. ``colour`` adds an RGB result (``colour_fused``): ``auto``
    restores the functional input's own colours (or paints it with the PET map when it is grey), a map
    name paints it with that map; ``colour_style`` is ``overlay`` (thresholded colour over grey anatomy,
    the default) or ``ycbcr``; ``functional`` is the functional input's 0-based index in Python (the CLI's
    ``--functional`` is 1-based; default: the colour input, else the one detected as PET/SPECT, else the
    last). NaN voxels are background (one warning). ``device`` (auto, cpu, cuda) is where the networks run.
    Inputs are never modified.
    """
    COLOUR.check(colour)  # checked before any slow work
    COLOUR_STYLE.check(colour_style)
    check_device(device)
    if len(images) < 2:
        raise InputError("fusion needs at least two input images")
    fusion = get_method(method)
    fusion.check(len(images), mode)
    register_share = 0.0 if registration == "none" else 0.6
    with stage("prepare"):
        prepared = prepare_inputs(
            images,
            registration=registration,
            modalities=modalities,
            progress=sub_progress(progress, 0.0, register_share),
            cancel=cancel,
            force_registration=force_registration,
        )
    return fuse_prepared(
        prepared,
        method=fusion.name,
        mode=mode,
        axis=axis,
        colour=colour,
        functional=functional,
        colour_style=colour_style,
        device=device,
        progress=sub_progress(progress, register_share, 1.0),
        cancel=cancel,
    )
