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
* ``auto``: 8-bit pixel type → ``8bit``; Hounsfield units (:func:`holds_hounsfield_units`: values below
  -500, air at or below -850 and soft tissue near water) → ``ct``; anything else → ``mr`` (the percentile
  rule, also right for PET and SPECT, and for an MR whose arbitrary units go negative).

What an input *is* (ct, mr, pet, spect), as opposed to the rule that scales it, is decided by
:func:`detect_modalities` from the header (DICOM Modality, NIfTI description) and intensity statistics:
CT values (Hounsfield units: air and soft tissue where CT puts them, or an 8-bit slice whose bone saturates), pseudo-colour slices, and the relative
smoothness of functional images beside anatomical ones. It picks the registration preset and the colour
input, and each decision is logged as one line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from MedFusionLib.core.imageio import metadata_text
from MedFusionLib.core.options import MODALITY

CT_WINDOW = (-500.0, 1100.0)
PERCENTILES = (0.5, 99.5)
BACKGROUND_FRACTION = 0.05


AIR_HU = -850.0  # CT air (about -1000 HU) and padding (-1024, -2048, -3024) lie at or below this
SOFT_TISSUE_HU = (-200.0, 200.0)  # fat, water, muscle, brain, blood
AIR_SHARE, SOFT_TISSUE_SHARE = 0.01, 0.05


def holds_hounsfield_units(array: np.ndarray) -> bool:
    """Whether a scalar image looks like CT in HU: values below -500, at least 1 % of the voxels at air
    (<= -850) and at least 5 % of the voxels above -500 near water (-200..200).

    A minimum below -500 alone also catches MR in arbitrary units that go negative (an offset, a processed
    map), which the fixed CT window would then clip to black. Every 2nd voxel per axis is enough for shares."""
    sample = np.asarray(array)[tuple(slice(None, None, 2) for _ in range(np.ndim(array)))]
    if not sample.size or float(np.nanmin(sample)) >= -500:
        return False
    body = sample[sample > -500]
    soft = float(((body >= SOFT_TISSUE_HU[0]) & (body <= SOFT_TISSUE_HU[1])).mean()) if body.size else 0.0
    return float((sample <= AIR_HU).mean()) >= AIR_SHARE and soft >= SOFT_TISSUE_SHARE


def guess_modality(image: sitk.Image) -> str:
    """The normalisation an image gets under ``auto``."""
    if image.GetPixelID() in (sitk.sitkUInt8, sitk.sitkVectorUInt8):
        return "8bit"
    return "ct" if holds_hounsfield_units(sitk.GetArrayViewFromImage(image)) else "mr"


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


# Header words that name a modality (DICOM Modality codes and words found in NIfTI descriptions).
_HEADER_WORDS = {
    "ct": ("ct",),
    "pet": ("pt", "pet", "fdg", "amyloid", "pib"),
    "spect": ("nm", "spect", "hmpao", "tc-99m", "ecd", "datscan"),
    "mr": ("mr", "mri", "t1", "t2", "flair", "pd", "epi", "dwi", "bold"),
}
SMOOTHER_RATIO = 0.7  # functional images carry less fine detail than the anatomy they are fused with
SATURATED_FRACTION = 0.15  # 8-bit CT slices: bone saturates a large part of the foreground
SURELY_SATURATED = 0.25  # ... and above this share it is CT whatever the rest looks like
SOFT_TISSUE_SPREAD = 45.0  # below SURELY_SATURATED, CT also needs its unsaturated foreground within a narrow band


def _header_kind(image: sitk.Image) -> str | None:
    """The modality a header names (DICOM 0008|0060, NIfTI ``descrip``), if any."""
    for key in ("0008|0060", "descrip", "ITK_FileNotes"):
        text = metadata_text(image, key)
        if text is None:
            continue
        words = set(re.findall(r"[a-z0-9-]+", text.lower()))
        for kind, names in _HEADER_WORDS.items():
            if words & set(names):
                return kind
    return None


DETAIL_SLABS, DETAIL_SLAB_SLICES = 3, 16  # a large volume's smoothness is measured on three slabs of 16 slices


def _sample_slabs(array: np.ndarray) -> np.ndarray:
    """Three slabs of slices (at 1/4, 1/2 and 3/4 of the depth) of a large volume, stacked; the array itself when
    it is small. The smoothness measure only compares inputs, so a sample of their anatomy is enough, and it
    keeps auto-detection from costing a second of Gaussian filtering per 256x256x200 volume."""
    depth = array.shape[0]
    if array.ndim != 3 or depth <= DETAIL_SLABS * DETAIL_SLAB_SLICES * 2:
        return array
    half = DETAIL_SLAB_SLICES // 2
    centres = [depth * (k + 1) // (DETAIL_SLABS + 1) for k in range(DETAIL_SLABS)]
    return np.stack([array[c - half : c + half] for c in centres])  # (slabs, slices, y, x)


def _detail(array: np.ndarray) -> float:
    """Fine-detail energy of the foreground relative to the range (lower = smoother)."""
    sample = _sample_slabs(array)
    values = np.nan_to_num(sample.astype(np.float32))
    low, high = np.percentile(values, (1, 99.5))
    if high <= low:
        return 0.0
    foreground = values > low + 0.1 * (high - low)
    if not foreground.any():
        return 0.0
    slabs = values if values.ndim > array.ndim else values[None]  # never smoothed across slabs
    residual = np.abs(values - np.stack([_gaussian(slab) for slab in slabs]).reshape(values.shape))
    return float(residual[foreground].mean() / (high - low))


def _gaussian(array: np.ndarray) -> np.ndarray:
    """Gaussian blur of sigma 1 pixel (SimpleITK, already loaded: scipy.ndimage would cost a second of imports).

    ITK's recursive Gaussian needs 4 pixels along every axis: a thinner axis is padded by repeating its edge (a
    blur along a constant axis changes nothing) and cropped back."""
    pad = [(0, max(0, 4 - n)) for n in array.shape]
    padded = np.pad(array, pad, mode="edge") if any(after for _, after in pad) else array
    blurred = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(sitk.GetImageFromArray(padded), 1.0))
    return blurred[tuple(slice(0, n) for n in array.shape)]


def _saturated(array: np.ndarray) -> float:
    """Fraction of the foreground at the top of the 8-bit range."""
    foreground = array[array > 20]
    return float((foreground >= 250).mean()) if foreground.size else 0.0


def _looks_like_8bit_ct(array: np.ndarray) -> bool:
    """An 8-bit slice whose bone saturates: a large saturated share, and (when that share is only moderate) the
    rest of the foreground within a narrow band, as soft tissue is in a CT window. Bright fat or CSF saturates
    some MR slices as much, but their unsaturated foreground spreads wider (grey levels' std >= 53 against <= 42
    for CT on the shared Harvard slices whose saturated share is 15-25 %)."""
    share = _saturated(array)
    if share < SATURATED_FRACTION:
        return False
    if share >= SURELY_SATURATED:
        return True
    rest = array[(array > 20) & (array < 250)]
    return bool(rest.size) and float(np.std(rest)) < SOFT_TISSUE_SPREAD


def detect_modalities(images: Sequence[sitk.Image], given: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """(ct | mr | pet | spect, reason) per input; ``given`` modalities other than ``auto``/``8bit`` are kept.

    Order of evidence: the header; a pseudo-colour slice (functional); CT values; the relative smoothness of
    an input beside the anatomical ones (below SMOOTHER_RATIO of their fine detail: pet)."""
    given = list(given) if given else ["auto"] * len(images)
    decided: list[tuple[str, str] | None] = []
    for image, choice in zip(images, given):
        if choice not in ("auto", "8bit"):
            decided.append((choice, "given"))
            continue
        from_header = _header_kind(image)
        if from_header:
            decided.append((from_header, "header"))
        elif image.GetNumberOfComponentsPerPixel() in (3, 4):
            decided.append(("pet", "pseudo-colour slice"))
        elif image.GetPixelID() != sitk.sitkUInt8 and holds_hounsfield_units(sitk.GetArrayViewFromImage(image)):
            decided.append(("ct", "Hounsfield units (air <= -850, soft tissue near 0)"))
        elif image.GetPixelID() == sitk.sitkUInt8 and _looks_like_8bit_ct(sitk.GetArrayViewFromImage(image)):
            decided.append(("ct", "8-bit with saturated bone"))
        else:
            decided.append(None)
    scalar = [
        sitk.GetArrayViewFromImage(image) if image.GetNumberOfComponentsPerPixel() == 1 else None for image in images
    ]
    detail: list[float] = [
        _detail(a) if a is not None and (d is None or d[0] in ("ct", "mr")) else -1.0 for a, d in zip(scalar, decided)
    ]
    out: list[tuple[str, str]] = []
    for i, d in enumerate(decided):
        if d is not None:
            out.append(d)
            continue
        reference = max((detail[j] for j in range(len(images)) if j != i), default=-1.0)
        mine = detail[i] or 0.0
        if reference > 0 and mine < SMOOTHER_RATIO * reference:
            out.append(("pet", f"smooth: {mine / reference:.2f}x the fine detail of the sharpest other input"))
        else:
            out.append(("mr", "no CT values, not smoother than the other inputs"))
    return out
