"""Pixel-wise maximum: a strong baseline by QABF/VIF/MI, keeps the brightest structure of each input."""

from __future__ import annotations

import numpy as np

from MedFusionLib.fusion.registry import FusionMethod, register_method


def fuse_max(stack: np.ndarray) -> np.ndarray:
    """Maximum over the inputs (axis 0)."""
    return stack.max(axis=0).astype(np.float32, copy=False)


register_method(
    FusionMethod(
        name="max",
        family="classical",
        description="Pixel-wise maximum of the inputs.",
        fuse_slices=fuse_max,
        fuse_volume=fuse_max,
        inputs="n",
        volume_note="Voxel-wise, identical to slice mode.",
    )
)
