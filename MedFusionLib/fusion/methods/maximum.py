"""Pixel-wise maximum: a strong baseline by QABF/VIF/MI, keeps the brightest structure of each input."""

from __future__ import annotations

import numpy as np

from MedFusionLib.fusion.registry import declare_method


def fuse_max(stack: np.ndarray, mode: str = "slice") -> np.ndarray:
    """Maximum over the inputs (axis 0), the same in either mode."""
    return stack.max(axis=0).astype(np.float32, copy=False)


declare_method(
    fuse_max,
    name="max",
    family="classical",
    description="Pixel-wise maximum of the inputs.",
    inputs="n",
    volume_note="Voxel-wise, identical to slice mode.",
)
