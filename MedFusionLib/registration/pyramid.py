"""Input preparation and the multi-resolution pyramid.

The pyramid is built once per registration (both images resampled to each level's spacing, blurred first
against aliasing) and reused by every start and stage: several starts cost only optimiser iterations.
Anisotropic images (MR at 0.5 x 0.5 x 2.5 mm) are brought to about isotropic level voxels, and large
images are coarsened so the finest level holds about a million voxels: sub-voxel accuracy comes from
the interpolating metric, not from voxel count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from MedFusionLib.core.errors import InputError
from MedFusionLib.registration.presets import Preset


def as_scalar_float(image: sitk.Image, what: str) -> sitk.Image:
    """float32 scalar copy; colour (RGB) images are turned into luma, as fusion papers do."""
    if not isinstance(image, sitk.Image):
        raise InputError(f"{what} image must be a SimpleITK image, got {type(image).__name__}")
    if image.GetDimension() not in (2, 3):
        raise InputError(f"{what} image must be 2-D or 3-D, got {image.GetDimension()}-D")
    ncomp = image.GetNumberOfComponentsPerPixel()
    if ncomp > 1:
        chans = [sitk.Cast(sitk.VectorIndexSelectionCast(image, i), sitk.sitkFloat32) for i in range(ncomp)]
        image = (0.299 * chans[0] + 0.587 * chans[1] + 0.114 * chans[2]) if ncomp in (3, 4) else sum(chans) / ncomp
    image = sitk.Cast(image, sitk.sitkFloat32)
    arr = sitk.GetArrayViewFromImage(image)
    if min(image.GetSize()) < 4:
        raise InputError(f"{what} image is too small to register: size {image.GetSize()}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{what} image contains NaN or infinite values")
    if float(arr.max()) <= float(arr.min()):
        raise InputError(f"{what} image is constant: nothing to register")
    return image


def clip_intensities(image: sitk.Image, percentiles: tuple[float, float]) -> sitk.Image:
    """Clip outliers so the MI histogram bins are spent on tissue, not on a few hot voxels."""
    if percentiles[0] <= 0 and percentiles[1] >= 100:
        return image
    arr = sitk.GetArrayViewFromImage(image).ravel()
    sample = arr[:: max(1, arr.size // 200_000)]
    lo, hi = np.percentile(sample, percentiles)
    if hi <= lo:
        lo, hi = float(arr.min()), float(arr.max())
    return sitk.Clamp(image, sitk.sitkFloat32, float(lo), float(hi))


def _blur(image: sitk.Image, sigmas_mm) -> sitk.Image:
    for axis, sigma in enumerate(sigmas_mm):
        if sigma > 1e-3 and image.GetSize()[axis] >= 4:
            image = sitk.RecursiveGaussian(
                image, float(sigma), False, sitk.RecursiveGaussianImageFilter.ZeroOrder, axis
            )
    return image


def at_spacing(image: sitk.Image, spacing_mm: float, extra_sigma_mm: float = 0.0) -> sitk.Image:
    """Blur then resample onto the same box with voxels of about ``spacing_mm`` (never finer than native).

    Integer factors are first taken by block averaging (BinShrink: one cheap pass that also anti-aliases),
    so a 512 x 512 x 94 MR costs little; the remaining factor is handled by a Gaussian blur.
    """
    native = np.array(image.GetSpacing())
    factors = np.maximum(1, np.floor(spacing_mm / native + 1e-6)).astype(int)
    if np.any(factors > 1):
        image = sitk.BinShrink(image, [int(f) for f in factors])
        native = np.array(image.GetSpacing())
    new = np.maximum(native, spacing_mm)
    sig = 0.5 * np.sqrt(np.maximum(new**2 - native**2, 0.0))
    sig = np.sqrt(sig**2 + extra_sigma_mm**2)
    out = _blur(image, sig)
    if np.allclose(new, native, rtol=0.05):
        return out
    size = np.array(image.GetSize())
    new_size = np.maximum(1, np.round(size * native / new)).astype(int)
    new = size * native / new_size  # keep the box exactly
    direction = np.array(image.GetDirection()).reshape(image.GetDimension(), -1)
    corner = np.array(image.GetOrigin()) - direction @ (native / 2)
    origin = corner + direction @ (new / 2)
    return sitk.Resample(
        out,
        [int(s) for s in new_size],
        sitk.Transform(),
        sitk.sitkLinear,
        origin.tolist(),
        new.tolist(),
        image.GetDirection(),
        0.0,
        sitk.sitkFloat32,
    )


@dataclass
class Level:
    spacing: float
    fixed: sitk.Image
    moving: sitk.Image
    sampling: float  # 1.0 = every voxel
    mask: sitk.Image | None = None  # loose sampling mask on the fixed level image, built on first use


def finest_spacing(fixed: sitk.Image, preset: Preset) -> float:
    sp = np.array(fixed.GetSpacing())
    extent = sp * np.array(fixed.GetSize())
    by_count = (np.prod(extent) / preset.max_level_voxels) ** (1.0 / fixed.GetDimension())
    return float(max(sp.min(), by_count))


def build_pyramid(fixed: sitk.Image, moving: sitk.Image, preset: Preset) -> list[Level]:
    """Coarse to fine levels; the finest spacing follows the fixed image (or the voxel budget)."""
    finest = finest_spacing(fixed, preset)
    levels = []
    last = len(preset.levels) - 1
    # Small images: keep at least ~16 voxels across the coarsest level, or the structure inside vanishes.
    extent = np.array(fixed.GetSpacing()) * np.array(fixed.GetSize())
    max_factor = max(1.0, float(extent.min() / finest / 16.0))
    for i, (factor, extra, fraction) in enumerate(zip(preset.levels, preset.extra_sigma, preset.samplings)):
        spacing = finest * min(factor, max_factor)
        extra_mm = extra * spacing
        f = at_spacing(fixed, spacing, extra_mm)
        m = at_spacing(moving, spacing, extra_mm)
        n = int(np.prod(f.GetSize()))
        least = preset.final_min_samples if i == last else preset.min_samples
        sampling = min(1.0, max(fraction, least / n))
        levels.append(Level(spacing, f, m, sampling))
    return levels
