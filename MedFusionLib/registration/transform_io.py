"""Resampling onto the fixed grid and transform files (SimpleITK's reader and writer)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from MedFusionLib.core.errors import InputError

PathLike = str | os.PathLike


def resample_to_fixed(
    fixed: sitk.Image,
    moving: sitk.Image,
    transform: sitk.Transform,
    *,
    interpolator=sitk.sitkLinear,
    default_value: float | None = None,
) -> sitk.Image:
    """``moving`` on ``fixed``'s grid (same size, spacing, origin, direction), keeping its pixel type.

    Outside the moving image the value is ``default_value``, by default the moving image's minimum so that
    the padding looks like background (air in CT is -1000, not 0).
    """
    if default_value is None:
        arr = sitk.GetArrayViewFromImage(moving)
        default_value = float(np.min(arr)) if arr.size else 0.0
    return sitk.Resample(moving, fixed, transform, interpolator, float(default_value), moving.GetPixelID())


def save_transform(transform: sitk.Transform, path: PathLike) -> None:
    """Write atomically (temporary file in the same folder, then rename): never a half-written file."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"cannot save transform: folder {str(folder)!r} does not exist")
    suffix = "".join(path.suffixes) or ".tfm"  # the writer picks the format from the extension
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        sitk.WriteTransform(transform, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_transform(path: PathLike) -> sitk.Transform:
    """Read a transform written by save_transform (or any ITK transform file), as its concrete type."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"transform file not found: {str(path)!r}")
    try:
        t = sitk.ReadTransform(str(path))
    except RuntimeError as exc:
        raise InputError(f"cannot read transform {str(path)!r}: {str(exc).strip().splitlines()[-1]}") from None
    try:
        return t.Downcast()
    except (AttributeError, RuntimeError):
        return t
