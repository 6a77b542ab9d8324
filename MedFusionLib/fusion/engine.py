"""Run a registered fusion method over normalised arrays, slice-wise or volumetrically.

The engine owns the work every method would otherwise repeat: cropping to the joint foreground, skipping
slices where no input has foreground, batching slices, progress and cancellation. Methods only see dense
float32 stacks in 0..1 (and, when registered with ``uses_modalities``, the inputs' modalities).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.core.log import note
from MedFusionLib.core.progress import CancelCallback, ProgressCallback, cancel_scope, check_cancel, report
from MedFusionLib.fusion.registry import IMAGING_MODALITIES, FusionMethod, get_method

FOREGROUND_LEVEL = 0.02  # normalised intensity above which a pixel counts as foreground
CROP_MARGIN = 8  # pixels kept around the joint foreground, so filters see some background
DEFAULT_BATCH = 16


def foreground_box(stack: np.ndarray, margin: int = CROP_MARGIN) -> tuple[slice, ...]:
    """Bounding box (over the spatial axes of ``stack``, inputs on axis 0) of voxels where any input is bright."""
    return mask_box(foreground_mask(stack), margin)


def foreground_mask(sources: Sequence[np.ndarray]) -> np.ndarray:
    """Where any input is bright: one boolean array, built input by input (no stacked copy of the inputs)."""
    mask = np.greater(sources[0], FOREGROUND_LEVEL)
    for source in sources[1:]:
        mask |= np.greater(source, FOREGROUND_LEVEL)
    return mask


def mask_box(mask: np.ndarray, margin: int = CROP_MARGIN) -> tuple[slice, ...]:
    """Bounding box of ``mask`` widened by ``margin`` (the whole array when the mask is empty)."""
    if not mask.any():
        return tuple(slice(0, n) for n in mask.shape)
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        box.append(slice(max(0, hits[0] - margin), min(mask.shape[axis], hits[-1] + margin + 1)))
    return tuple(box)


def _check_output(result: np.ndarray, expected: tuple[int, ...], method: FusionMethod) -> np.ndarray:
    if result.shape != expected:
        raise RuntimeError(f"method {method.name!r} returned shape {result.shape}, expected {expected}")
    return np.nan_to_num(result.astype(np.float32, copy=False), copy=False, nan=0.0, posinf=1.0, neginf=0.0)


def check_modalities(modalities: Sequence[str], n_inputs: int) -> tuple[str, ...]:
    """``modalities`` (one of ct, mr, pet, spect per input, any case) as a lower-case tuple, or a one-line error."""
    names = tuple(str(m).strip().lower() for m in modalities)
    if len(names) != n_inputs:
        raise MedFusionError(f"{len(names)} modalities given for {n_inputs} inputs")
    for i, name in enumerate(names):
        if name not in IMAGING_MODALITIES:
            raise MedFusionError(
                f"unknown modality {name!r} for input {i + 1} (known: {', '.join(IMAGING_MODALITIES)})"
            )
    return names


def detect_array_modalities(sources: Sequence[np.ndarray]) -> tuple[str, ...]:
    """Modalities of normalised arrays whose modalities nobody gave: ``normalization.detect_modalities`` on the
    arrays (without a header or HU values this can only tell ``pet``, smoother than the sharpest other input,
    from ``mr``); one note line per input, so the choice is never silent."""
    import SimpleITK as sitk

    from MedFusionLib.core.normalization import detect_modalities

    detected = detect_modalities([sitk.GetImageFromArray(np.asarray(s, np.float32)) for s in sources])
    for i, (kind, reason) in enumerate(detected):
        note(f"input {i + 1}: modality {kind} (not given; detected from the normalised array: {reason})")
    return tuple(kind for kind, _ in detected)


def fuse_arrays(
    sources: Sequence[np.ndarray],
    method: str | None = None,
    mode: str = "slice",
    axis: int = 0,
    *,
    modalities: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> np.ndarray:
    """Fuse co-registered arrays of equal shape, intensities normalised to 0..1.

    ``sources`` are 2-D ``(H, W)`` or 3-D arrays; ``axis`` is the array axis along which ``slice`` mode cuts
    3-D inputs. ``modalities``: one of ct, mr, pet, spect per input (checked whenever given); methods registered
    with ``uses_modalities`` receive them, and when they are not given they are detected from the arrays
    (:func:`detect_array_modalities`, one note line per input), never assumed from the inputs' order.
    Returns a float32 array of the same shape in 0..1.
    """
    fusion = get_method(method)
    fusion.check(len(sources), mode)
    shapes = {s.shape for s in sources}
    if len(shapes) != 1:
        raise MedFusionError(f"inputs must share one shape after registration, got {sorted(shapes)}")
    if modalities is not None:
        modalities = check_modalities(modalities, len(sources))
    elif fusion.uses_modalities:
        modalities = detect_array_modalities(sources)
    extra = {"modalities": modalities} if fusion.uses_modalities else {}
    sources = [np.asarray(s, dtype=np.float32) for s in sources]  # no copy of float32 inputs
    if sources[0].ndim == 2:  # 2-D images: one slice
        out = fuse_arrays(
            [s[None] for s in sources], fusion.name, "slice", 0, modalities=modalities, progress=progress, cancel=cancel
        )
        return out[0]
    if sources[0].ndim != 3:
        raise MedFusionError(f"inputs must be 2-D or 3-D arrays, got {sources[0].ndim}-D")

    mask = foreground_mask(sources)
    box = mask_box(mask)
    if mode == "volume":
        del mask
        return _fuse_volume(fusion, sources, box, extra, progress, cancel)
    out = _brightest(sources)
    if not 0 <= axis < 3:
        raise MedFusionError(f"slice axis must be 0, 1 or 2, got {axis}")
    fuse_slices = fusion.fuse_slices
    if fuse_slices is None:
        raise MedFusionError(f"{fusion.name} has no slice mode")
    # the inputs are never stacked whole: each batch gathers its slices of the foreground box from every input
    slices_first = [np.moveaxis(s[box], axis, 0) for s in sources]  # views (slices, H, W)
    fused_first = np.moveaxis(out[box], axis, 0)  # a view: writing into it fills ``out``
    has_foreground = np.moveaxis(mask[box], axis, 0).any(axis=(1, 2))
    del mask
    todo = np.flatnonzero(has_foreground)
    for start in range(0, len(todo), batch_size):
        check_cancel(cancel)
        index = todo[start : start + batch_size]
        batch = np.stack([s[index] for s in slices_first])
        fused_first[index] = _check_output(fuse_slices(batch, **extra), batch.shape[1:], fusion)
        report(progress, (start + len(index)) / len(todo), f"{fusion.name}: slice {start + len(index)}/{len(todo)}")
    return np.clip(out, 0.0, 1.0, out=out)


def _brightest(sources: Sequence[np.ndarray]) -> np.ndarray:
    """The pixel-wise max of the inputs: what background (and skipped slices) keep. All inputs are below
    FOREGROUND_LEVEL there, and a pixel-wise rule (max) stays exact to the grey level everywhere (the inputs' mean
    left it 1-3 levels off near the edge)."""
    out = sources[0].copy()
    for source in sources[1:]:
        np.maximum(out, source, out=out)
    return out


def _stacked(sources: Sequence[np.ndarray]) -> np.ndarray | None:
    """The (n_inputs, *shape) array whose rows the inputs are (``pipeline.prepare`` normalises into one), or None:
    volume mode then hands the method a view of it instead of stacking a copy of every input."""
    base = sources[0].base
    if not isinstance(base, np.ndarray) or base.shape != (len(sources), *sources[0].shape):
        return None
    rows_of_base = all(
        s.base is base and s.strides == base.strides[1:] and s.ctypes.data == base[i].ctypes.data
        for i, s in enumerate(sources)
    )
    return base if rows_of_base else None


def _fuse_volume(
    fusion: FusionMethod,
    sources: Sequence[np.ndarray],
    box: tuple[slice, ...],
    extra: dict,
    progress: ProgressCallback | None,
    cancel: CancelCallback | None,
) -> np.ndarray:
    """Volume mode: the method on the foreground box of the stacked inputs (a view when they come stacked, else
    the one copy it needs); where the box is the whole volume the method's result is the output itself."""
    check_cancel(cancel)
    report(progress, 0.0, f"{fusion.name}: fusing volume")
    fuse_volume = fusion.fuse_volume
    if fuse_volume is None:
        raise MedFusionError(f"{fusion.name} has no volume mode")
    stacked = _stacked(sources)
    cropped = stacked[(slice(None), *box)] if stacked is not None else np.stack([s[box] for s in sources])
    with cancel_scope(cancel):  # the method's inference loops check it (volume mode is one call)
        fused = _check_output(fuse_volume(cropped, **extra), cropped.shape[1:], fusion)
    del cropped
    check_cancel(cancel)
    whole = fused.shape == sources[0].shape and fused.flags.c_contiguous
    if whole and not any(np.shares_memory(fused, s) for s in sources):
        out = fused
    else:
        out = _brightest(sources)
        out[box] = fused
    report(progress, 1.0, f"{fusion.name}: done")
    return np.clip(out, 0.0, 1.0, out=out)
