"""Fuse one case: prepared inputs -> one method -> the fused image (and its colour rendering).

The fused image lies on the reference (first input's) grid with its geometry, on the 0..255 fusion scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk

from MedFusionLib.core import imageio as io
from MedFusionLib.core.colour import colour_fused_image
from MedFusionLib.core.errors import InputError, MedFusionError
from MedFusionLib.core.options import FUNCTIONAL_MODALITIES, FusionOptions, colour_for_inputs, fusion_options
from MedFusionLib.core.progress import CancelCallback, ProgressCallback, check_cancel, report, sub_progress
from MedFusionLib.core.stages import stage
from MedFusionLib.fusion import fuse_arrays, get_method
from MedFusionLib.inference.devices import check_device, device_scope
from MedFusionLib.inference.onnx_runtime import release_sessions
from MedFusionLib.pipeline.prepare import PreparedInputs, prepare_inputs
from MedFusionLib.pipeline.result import FUSION_SCALE, FusionResult


def _colour_result(fused: sitk.Image, prepared: PreparedInputs, options: FusionOptions) -> sitk.Image | None:
    """RGB result for the colour option: the functional input's own colours, or a colour map on its values.

    The functional input is ``options.functional`` (0-based), else the colour input, else the one detected as
    PET or SPECT, else the last; ``auto`` without any of these is the grey image (None)."""
    originals, colour, functional = prepared.originals, options.colour, options.functional
    coloured = [i for i, image in enumerate(originals) if io.is_colour(image)]
    detected = [i for i, kind in enumerate(prepared.kinds) if kind in FUNCTIONAL_MODALITIES]
    if colour_for_inputs(colour, functional is not None or bool(coloured or detected)) == "none":
        return None
    index = functional if functional is not None else (coloured or detected or [len(originals) - 1])[0]
    if not 0 <= index < len(originals):
        raise MedFusionError(f"functional input {index + 1} does not exist (there are {len(originals)} inputs)")
    if colour == "auto" and index in coloured:
        rgb = sitk.GetArrayFromImage(prepared.aligned_colour[index]).astype(np.float64)[..., :3]
        return colour_fused_image(fused, functional_rgb=rgb, style=options.colour_style)
    colour_map = "pet" if colour == "auto" else colour
    return colour_fused_image(
        fused, functional01=prepared.sources01[index], colour_map=colour_map, style=options.colour_style
    )


def fuse_prepared(
    prepared: PreparedInputs,
    options: FusionOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
    **choices: Any,
) -> FusionResult:
    """Fuse prepared inputs with one method; ``options`` and ``choices`` as in :func:`fuse_images` (the
    registration choices are spent: ``prepared`` is already aligned)."""
    options = fusion_options(options, **choices)
    check_device(options.device)
    fusion = get_method(options.method)
    fusion.check(len(prepared.sources01), options.mode)
    fixed = prepared.fixed
    axis = 2 if fixed.GetDimension() == 2 else options.axis  # a 2-D image is its own single slice

    check_cancel(cancel)
    with device_scope(options.device), stage("fuse"):
        fused01 = fuse_arrays(
            prepared.sources01,
            fusion.name,
            options.mode,
            2 - axis,
            modalities=prepared.kinds or None,  # given or detected per input by prepare_inputs
            progress=progress,
            cancel=cancel,
        )
    release_sessions()  # slice mode's ONNX arenas go back before the output is made (onnx_runtime.run_options)
    with stage("output image"):
        fused = _fused_image(fused01, fixed, prepared.sources01)
        del fused01  # scaled into ``fused``; FusionResult.fused_array reads it back only when asked
    check_cancel(cancel)
    with stage("colour"):
        colour_fused = _colour_result(fused, prepared, options)
    report(progress, 1.0, "fusion done")
    return FusionResult(
        fused=fused,
        sources01=list(prepared.sources01),
        method=fusion.name,
        mode=options.mode,
        axis=axis,
        normalisation=prepared.normalisation,
        registrations=prepared.registrations,
        colour_fused=colour_fused,
        kinds=list(prepared.kinds),
    )


def _fused_image(fused01: np.ndarray, fixed: sitk.Image, sources01: Sequence[np.ndarray]) -> sitk.Image:
    """The fused image on the 0..255 scale with the reference's geometry (8-bit for an 8-bit 2-D reference).

    ``fused01`` is scaled in place when it is the method's own array (no source shares its memory): one
    volume-sized copy fewer, which is what keeps a 512 x 512 x 400 run in bounds (docs/runtime.md)."""
    own = fused01.dtype == np.float32 and not any(np.shares_memory(fused01, s) for s in sources01)
    scaled = fused01 if own else fused01.astype(np.float32)
    np.multiply(scaled, np.float32(FUSION_SCALE), out=scaled)
    if fixed.GetDimension() == 2 and fixed.GetPixelID() == sitk.sitkUInt8:
        fused = sitk.GetImageFromArray(np.clip(np.floor(scaled + 0.5), 0, 255).astype(np.uint8))
    else:
        fused = sitk.GetImageFromArray(scaled)
    fused.CopyInformation(fixed)
    return fused


def fuse_images(
    images: Sequence[sitk.Image],
    options: FusionOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
    **choices: Any,
) -> FusionResult:
    """Register every image to ``images[0]``, normalise each by its modality rule, and fuse.

    The choices are those of :class:`~MedFusionLib.core.options.FusionOptions`, given as ``options``, as
    keywords (``method="max", registration="rigid"``), or both (keywords win). ``axis`` is the image axis slice
    mode cuts along (2 = k, axial for axial acquisitions). 2-D colour (RGB) inputs are fused on their luma.
    ``colour`` adds an RGB result (``colour_fused``): ``auto`` restores the functional input's own colours (or
    paints it with the PET map when it is grey), a map name paints it with that map; ``colour_style`` is
    ``overlay`` (thresholded colour over grey anatomy, the default) or ``ycbcr``; ``functional`` is the
    functional input's 0-based index in Python (the CLI's ``--functional`` is 1-based; default: the colour
    input, else the one detected as PET/SPECT, else the last). NaN voxels are background (one warning).
    ``device`` (auto, cpu, cuda) is where the networks run. Inputs are never modified.
    """
    options = fusion_options(options, **choices)  # checked before any slow work
    check_device(options.device)
    if len(images) < 2:
        raise InputError("fusion needs at least two input images")
    get_method(options.method).check(len(images), options.mode)
    register_share = 0.0 if options.registration == "none" else 0.6
    with stage("prepare"):
        prepared = prepare_inputs(
            images,
            registration=options.registration,
            modalities=options.modalities,
            progress=sub_progress(progress, 0.0, register_share),
            cancel=cancel,
            force_registration=options.force_registration,
        )
    return fuse_prepared(prepared, options, progress=sub_progress(progress, register_share, 1.0), cancel=cancel)
