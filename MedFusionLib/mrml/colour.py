"""Colour (RGB) fusion for functional + anatomical inputs, in plain numpy (no Slicer needed).

The common PET/SPECT-MRI colour-fusion scheme: the functional image is rendered through a heat colour map,
converted to YCbCr (ITU-R BT.601), its luma replaced by the fused grey image and converted back to RGB.
Hue and saturation show the function, brightness the fused anatomy; where the functional image is dark the
result is the grey fused image.
"""

from __future__ import annotations

import numpy as np

# BT.601 full-range RGB <-> YCbCr
_TO_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_FROM_YCC = np.linalg.inv(_TO_YCC)


def heat(values01: np.ndarray) -> np.ndarray:
    """Black -> red -> yellow -> white heat colour map (like Slicer's PET-Heat), RGB in 0..1."""
    x = np.clip(np.asarray(values01, dtype=np.float32), 0.0, 1.0)[..., None]
    return np.clip(3.0 * x - np.array([0.0, 1.0, 2.0], dtype=np.float32), 0.0, 1.0)


def colour_fuse(fused255: np.ndarray, functional255: np.ndarray) -> np.ndarray:
    """RGB uint8 array (..., 3): chroma of ``heat(functional)``, luma of ``fused`` (both on 0..255)."""
    rgb = heat(np.asarray(functional255, dtype=np.float32) / 255.0)
    ycc = rgb @ _TO_YCC.T
    ycc[..., 0] = np.clip(np.asarray(fused255, dtype=np.float32) / 255.0, 0.0, 1.0)
    out = np.clip(ycc @ _FROM_YCC.T, 0.0, 1.0)
    return np.floor(out * 255.0 + 0.5).astype(np.uint8)
