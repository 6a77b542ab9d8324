"""Pixel-wise mean: the simplest baseline (high MI, low contrast)."""

from __future__ import annotations

import numpy as np

from MedFusionLib.fusion.registry import FusionMethod, register_method


def fuse_mean(stack: np.ndarray) -> np.ndarray:
    """Average over the inputs (axis 0); works for slice batches and volumes alike."""
    return stack.mean(axis=0, dtype=np.float32)


register_method(
    FusionMethod(
        name="mean",
        family="classical",
        description="Pixel-wise average of the inputs.",
        fuse_slices=fuse_mean,
        fuse_volume=fuse_mean,
        inputs="n",
        volume_note="Voxel-wise, identical to slice mode.",
    )
)
