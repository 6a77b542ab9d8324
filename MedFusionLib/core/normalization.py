"""Intensity normalisation per modality, mapping every input to 0..1 before fusion.

Fusion networks and rules compare intensities across modalities, so each input is first put on a common,
documented scale:

* ``ct``: a fixed Hounsfield window, level 300 HU, width 1600 HU (-500..1100 HU): air black, soft tissue
  mid-grey, bone bright. Fixed windows keep CT comparable across scans.
* ``mr``, ``pet``, ``spect``: the image's own percentiles, because their units are arbitrary: the low end is
  the 0.5th percentile of all voxels (the background level), the high end the 99.5th percentile of the
  non-background voxels (those above 5 % of the range), clipped. Robust to a few hot voxels.
* ``8bit``: 8-bit images (PNG/TIFF slices) are used as they are, divided by 255, as the published 2-D
  protocols do.
* ``auto``: 8-bit pixel type → ``8bit``; minimum below -500 → ``ct``; anything else → ``mr`` (the
  percentile rule, also right for PET and SPECT).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from MedFusionLib.core.options import MODALITY

CT_WINDOW = (-500.0, 1100.0)
PERCENTILES = (0.5, 99.5)
BACKGROUND_FRACTION = 0.05


def guess_modality(image: sitk.Image) -> str:
    """The normalisation an image gets under ``auto``."""
    if image.GetPixelID() in (sitk.sitkUInt8, sitk.sitkVectorUInt8):
        return "8bit"
    minimum = float(sitk.GetArrayViewFromImage(image).min())
    return "ct" if minimum < -500 else "mr"


def _percentile_range(array: np.ndarray) -> tuple[float, float]:
    low = float(np.percentile(array, PERCENTILES[0]))
    top = float(array.max())
    foreground = array[array > low + BACKGROUND_FRACTION * (top - low)]
    high = float(np.percentile(foreground, PERCENTILES[1])) if foreground.size else top
    return low, max(high, low + 1e-6)


def intensity_range(image: sitk.Image, modality: str = MODALITY.default) -> tuple[float, float, str]:
    """The (low, high) intensities mapped to 0 and 1, and a one-line description of the rule."""
    MODALITY.check(modality)
    chosen = guess_modality(image) if modality == "auto" else modality
    if chosen == "8bit":
        return 0.0, 255.0, "8bit: value/255"
    if chosen == "ct":
        low, high = CT_WINDOW
        return low, high, f"ct: window {low:g}..{high:g} HU"
    low, high = _percentile_range(sitk.GetArrayViewFromImage(image).astype(np.float32))
    return low, high, f"{chosen}: percentiles {PERCENTILES[0]}..{PERCENTILES[1]} -> {low:.4g}..{high:.4g}"


def normalize(image: sitk.Image, modality: str = MODALITY.default) -> tuple[np.ndarray, str]:
    """The image's voxels as float32 in 0..1 (array order z, y, x) and the rule used."""
    low, high, rule = intensity_range(image, modality)
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    return np.clip((array - low) / (high - low), 0.0, 1.0), rule
