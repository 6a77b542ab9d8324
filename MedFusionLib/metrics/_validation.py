"""Input checks: every public entry point rejects unusable arrays with a one-line InputError.

Checks run once at the boundary; the metric kernels below assume clean float64 stacks and never modify
their inputs (every array is copied or converted before use).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from MedFusionLib.core.errors import InputError

MIN_SIDE = 11  # the SSIM window is 11 x 11; smaller images have no valid SSIM position


def as_float_arrays(
    sources: Sequence[np.ndarray], fused: np.ndarray, ndims: tuple[int, ...] = (2,)
) -> tuple[list[np.ndarray], np.ndarray]:
    """Validate ``sources`` and ``fused`` and return float64 copies (never views of the caller's data)."""
    if isinstance(sources, np.ndarray) and sources.ndim in (3, 4):
        raise InputError("sources must be a sequence of arrays (a list), not a single stacked array")
    try:
        n = len(sources)
    except TypeError:
        raise InputError("sources must be a sequence of arrays") from None
    if n < 2:
        raise InputError(f"metrics need at least 2 source images, got {n}")
    arrays = []
    for label, arr in [(f"source {i + 1}", s) for i, s in enumerate(sources)] + [("fused image", fused)]:
        arrays.append(_check_one(label, arr, ndims))
    shape = arrays[-1].shape
    for i, arr in enumerate(arrays[:-1]):
        if arr.shape != shape:
            raise InputError(f"shape mismatch: source {i + 1} is {arr.shape}, fused image is {shape}")
    return arrays[:-1], arrays[-1]


def _check_one(label: str, arr: np.ndarray, ndims: tuple[int, ...]) -> np.ndarray:
    if arr is None:
        raise InputError(f"{label} is missing (None)")
    a = np.asarray(arr)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise InputError(f"{label} is not a numeric array (dtype {a.dtype})")
    if np.iscomplexobj(a):
        raise InputError(f"{label} is complex; metrics need real intensities")
    if a.size == 0:
        raise InputError(f"{label} is empty (shape {a.shape})")
    if a.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise InputError(f"{label} must be {want}, got {a.ndim}-D shape {a.shape}")
    out = np.array(a, dtype=np.float64, copy=True)
    finite = np.isfinite(out)
    if not finite.all():
        kind = "NaN" if np.isnan(out).any() else "Inf"
        raise InputError(f"{label} contains {kind} values ({int((~finite).sum())} non-finite)")
    return out


def check_slice_size(shape: tuple[int, int]) -> None:
    """Reject slices smaller than the SSIM window (no valid position would exist)."""
    if min(shape) < MIN_SIDE:
        raise InputError(
            f"images are too small: slices of {tuple(shape)} pixels, metrics need at least {MIN_SIDE}x{MIN_SIDE}"
        )
