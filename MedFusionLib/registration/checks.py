"""Failure detection: say "this registration is wrong" instead of writing a garbage result.

Checks are cheap and run on a coarse pyramid level:
* before: the two fields of view must overlap in physical space (headers placing the images apart are
  a user problem, not something to search for);
* after: enough of the fixed image's foreground must land inside the moving image, and the final metric
  must be better than at the start (MI is negative-better in SimpleITK).
"""

from __future__ import annotations

import itertools

import numpy as np
import SimpleITK as sitk

from MedFusionLib.core.errors import RegistrationError

MIN_OVERLAP = 0.25  # fraction of the smaller foreground that must overlap after registration


def physical_box(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned physical bounds of the image's voxel box (voxel edges, any direction)."""
    size = image.GetSize()
    corners = [
        image.TransformContinuousIndexToPhysicalPoint([c - 0.5 for c in corner])
        for corner in itertools.product(*[(0, s) for s in size])
    ]
    pts = np.array(corners)
    return pts.min(axis=0), pts.max(axis=0)


def check_fields_of_view(fixed: sitk.Image, moving: sitk.Image) -> None:
    (flo, fhi), (mlo, mhi) = physical_box(fixed), physical_box(moving)
    gap = np.maximum(mlo - fhi, flo - mhi)
    if np.any(gap >= 0):
        axis = "xyz"[int(np.argmax(gap))]
        raise RegistrationError(
            f"fields of view do not overlap ({gap.max():.0f} mm apart along {axis}): "
            "check the image headers or place the moving image over the fixed one first"
        )


def foreground_points(image: sitk.Image, max_points: int = 4000) -> np.ndarray:
    """Physical points of voxels above 15 % of the way from the 1st to the 99th intensity percentile."""
    arr = sitk.GetArrayViewFromImage(image)
    lo, hi = np.percentile(arr, (1, 99))
    idx = np.argwhere(arr > lo + 0.15 * (hi - lo))
    if len(idx) == 0:
        idx = np.argwhere(np.ones_like(arr, bool))
    step = max(1, len(idx) // max_points)
    idx = idx[::step][:, ::-1].astype(float)
    direction = np.array(image.GetDirection()).reshape(image.GetDimension(), -1)
    return np.array(image.GetOrigin()) + (idx * np.array(image.GetSpacing())) @ direction.T


def inside_fraction(points: np.ndarray, transform: sitk.Transform, image: sitk.Image) -> float:
    """Fraction of fixed-space points whose transformed position falls inside ``image``'s voxel box."""
    if len(points) == 0:
        return 0.0
    mapped = np.array([transform.TransformPoint(p.tolist()) for p in points])
    direction = np.array(image.GetDirection()).reshape(image.GetDimension(), -1)
    idx = ((mapped - np.array(image.GetOrigin())) @ direction) / np.array(image.GetSpacing())
    size = np.array(image.GetSize())
    return float(np.mean(np.all((idx >= -0.5) & (idx <= size - 0.5), axis=1)))


def overlap_fraction(fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform) -> float:
    """Overlap of the fixed foreground with the moving image's box, relative to the smaller foreground."""
    fpts = foreground_points(fixed)
    inside = inside_fraction(fpts, transform, moving)
    vox_f = np.prod(fixed.GetSpacing())
    vox_m = np.prod(moving.GetSpacing())
    n_f = len(foreground_points(fixed, max_points=10**9)) * vox_f
    n_m = len(foreground_points(moving, max_points=10**9)) * vox_m
    if n_f <= 0 or n_m <= 0:
        return 0.0
    return float(min(1.0, inside * n_f / min(n_f, n_m)))


def check_result(
    fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform, initial_metric: float, final_metric: float
) -> None:
    """Raise RegistrationError naming the first problem found."""
    params = np.array(transform.GetParameters(), dtype=float)
    if not np.all(np.isfinite(params)) or not np.isfinite(final_metric):
        raise RegistrationError("registration diverged (non-finite transform or metric)")
    overlap = overlap_fraction(fixed, moving, transform)
    if overlap < MIN_OVERLAP:
        raise RegistrationError(f"registration failed: only {100 * overlap:.0f}% of the images overlap afterwards")
    if final_metric > -1e-3:
        raise RegistrationError(f"registration failed: no shared information left (metric {final_metric:.4f})")
    if np.isfinite(initial_metric) and final_metric > initial_metric + 0.05 * abs(initial_metric):
        raise RegistrationError(
            f"registration failed: metric got worse ({initial_metric:.4f} at the start, {final_metric:.4f} at the end)"
        )
