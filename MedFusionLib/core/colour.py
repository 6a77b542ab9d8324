"""Colour fusion: functional colour (PET/SPECT) over fused anatomy, as clinicians expect to see PET.

Two styles (``core.options.COLOUR_STYLE``):

* ``overlay`` (default), the way PET/CT and PET/MR are read: the fused image in grey, the functional colour
  map blended over it only where the functional values exceed a threshold (``OVERLAY_THRESHOLD`` of their
  normalised range, with a short ramp), transparent below it, so the anatomy stays readable and the black
  background stays black.
* ``ycbcr``: fusion runs on grey values (the functional image's luma). Colour is restored afterwards in YCbCr space:
the fused image gives the luma Y, the functional image gives the chroma (Cb, Cr). Grey anatomy stays
grey where the functional image carries no colour, and uptake keeps its hue. The chroma comes either from
the functional image's own pseudo-colour (2-D colour slices, e.g. the Harvard atlas) or from a colour map
applied to a scalar functional volume.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from MedFusionLib.core.errors import MedFusionError

# Colour maps as (position, R, G, B) control points on 0..1, linearly interpolated.
COLOUR_MAPS = {
    "hot": [(0.0, 0, 0, 0), (0.375, 1, 0, 0), (0.75, 1, 1, 0), (1.0, 1, 1, 1)],
    "pet": [(0.0, 0, 0, 0), (0.25, 0.5, 0, 0.5), (0.5, 1, 0, 0), (0.75, 1, 0.65, 0), (1.0, 1, 1, 1)],
    "rainbow": [(0.0, 0, 0, 0.5), (0.15, 0, 0, 1), (0.4, 0, 1, 1), (0.6, 1, 1, 0), (0.85, 1, 0, 0), (1.0, 0.5, 0, 0)],
}

OVERLAY_THRESHOLD = 0.5  # functional values (0..1 after normalisation) below this stay transparent
OVERLAY_RAMP = 0.10  # opacity rises from 0 to OVERLAY_OPACITY over this much above the threshold
OVERLAY_OPACITY = 0.6
OVERLAY_MAP_START = 0.4  # the threshold is painted with this point of the map (not its black end)...
OVERLAY_MAP_END = 0.9  # ...and the peak with this one (not the map's white end, which washes out the grey)

_TO_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_FROM_YCBCR = np.linalg.inv(_TO_YCBCR)


def apply_colour_map(values01: np.ndarray, name: str = "hot") -> np.ndarray:
    """RGB (0..255, float) of values in 0..1 through a named colour map; last axis is the channel."""
    if name not in COLOUR_MAPS:
        raise MedFusionError(f"unknown colour map {name!r} (known: {', '.join(COLOUR_MAPS)})")
    points = np.array(COLOUR_MAPS[name], dtype=np.float64)
    values = np.clip(values01, 0.0, 1.0)
    return np.stack([np.interp(values, points[:, 0], points[:, c]) * 255.0 for c in (1, 2, 3)], axis=-1)


def chroma_of(rgb: np.ndarray) -> np.ndarray:
    """Cb and Cr (centred on 0) of an RGB array on 0..255, channel last."""
    return rgb.astype(np.float64) @ _TO_YCBCR[1:].T


def recolour(fused_luma: np.ndarray, functional_rgb: np.ndarray) -> np.ndarray:
    """RGB uint8: luma from the fused image (0..255), chroma from the functional image's RGB."""
    ycbcr = np.concatenate([fused_luma[..., None].astype(np.float64), chroma_of(functional_rgb)], axis=-1)
    return np.clip(np.rint(ycbcr @ _FROM_YCBCR.T), 0, 255).astype(np.uint8)


def overlay(
    fused_grey: np.ndarray,
    values01: np.ndarray,
    colour_rgb: np.ndarray,
    threshold: float = OVERLAY_THRESHOLD,
) -> np.ndarray:
    """RGB uint8: the fused image (0..255) in grey, ``colour_rgb`` blended over it where ``values01`` exceeds
    ``threshold`` (opacity ramping up to OVERLAY_OPACITY), the grey image untouched below it."""
    grey = np.clip(fused_grey.astype(np.float64), 0, 255)[..., None]
    alpha = OVERLAY_OPACITY * np.clip((np.nan_to_num(values01) - threshold) / OVERLAY_RAMP, 0.0, 1.0)[..., None]
    return np.clip(np.rint(grey * (1 - alpha) + colour_rgb.astype(np.float64) * alpha), 0, 255).astype(np.uint8)


def overlay_colours(values01: np.ndarray, colour_map: str, threshold: float = OVERLAY_THRESHOLD) -> np.ndarray:
    """The map's colours for an overlay: values from the threshold up use the map from OVERLAY_MAP_START to
    OVERLAY_MAP_END, so the lowest shown uptake is already a visible colour and the peak is not white."""
    span = np.clip((values01 - threshold) / max(1e-6, 1.0 - threshold), 0.0, 1.0)
    return apply_colour_map(OVERLAY_MAP_START + (OVERLAY_MAP_END - OVERLAY_MAP_START) * span, colour_map)


def colour_fused_image(
    fused: sitk.Image,
    functional_rgb: np.ndarray | None = None,
    functional01: np.ndarray | None = None,
    colour_map: str = "hot",
    style: str = "ycbcr",
) -> sitk.Image:
    """An RGB vector image on ``fused``'s grid: functional colour over the fused grey image.

    Give either ``functional_rgb`` (the functional image's own colours, on the fused grid) or
    ``functional01`` (its normalised scalar values, painted with ``colour_map``). ``style`` is ``overlay``
    (thresholded colour over grey) or ``ycbcr`` (fused luma, functional chroma).
    """
    if functional_rgb is None and functional01 is None:
        raise MedFusionError("colour fusion needs the functional image's colours or values")
    luma = sitk.GetArrayFromImage(fused).astype(np.float64)
    if style == "overlay":
        if functional_rgb is not None:  # a pseudo-colour slice: its brightest channel is its uptake
            values = functional_rgb[..., :3].max(axis=-1) / 255.0
            colours = functional_rgb[..., :3]
        else:
            values = functional01
            colours = overlay_colours(functional01, colour_map)
        if values.shape != luma.shape:
            raise MedFusionError(f"functional image shape {values.shape} differs from {luma.shape}")
        rgb = overlay(luma, values, colours)
    else:
        if functional_rgb is None:
            functional_rgb = apply_colour_map(functional01, colour_map)
        if functional_rgb.shape[:-1] != luma.shape:
            raise MedFusionError(f"functional colour image shape {functional_rgb.shape[:-1]} differs from {luma.shape}")
        rgb = recolour(luma, functional_rgb)
    out = sitk.GetImageFromArray(rgb, isVector=True)
    out.CopyInformation(fused)
    return out
