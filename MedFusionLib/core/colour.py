"""Colour fusion: functional colour (PET/SPECT) over fused anatomy, as clinicians expect to see PET.

Fusion runs on grey values (the functional image's luma). Colour is restored afterwards in YCbCr space:
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


def colour_fused_image(
    fused: sitk.Image,
    functional_rgb: np.ndarray | None = None,
    functional01: np.ndarray | None = None,
    colour_map: str = "hot",
) -> sitk.Image:
    """An RGB vector image on ``fused``'s grid: functional colour over the fused grey image.

    Give either ``functional_rgb`` (the functional image's own colours, on the fused grid) or
    ``functional01`` (its normalised scalar values, painted with ``colour_map``).
    """
    if functional_rgb is None:
        if functional01 is None:
            raise MedFusionError("colour fusion needs the functional image's colours or values")
        functional_rgb = apply_colour_map(functional01, colour_map)
    luma = sitk.GetArrayFromImage(fused).astype(np.float64)
    if functional_rgb.shape[:-1] != luma.shape:
        raise MedFusionError(f"functional colour image shape {functional_rgb.shape[:-1]} differs from {luma.shape}")
    out = sitk.GetImageFromArray(recolour(luma, functional_rgb), isVector=True)
    out.CopyInformation(fused)
    return out
