"""Pixel-wise mean: the simplest baseline (high MI, low contrast)."""

from __future__ import annotations

import numpy as np

from MedFusionLib.fusion.registry import declare_method


def fuse_mean(stack: np.ndarray, mode: str = "slice") -> np.ndarray:
    """Average over the inputs (axis 0); works for slice batches and volumes alike."""
    return stack.mean(axis=0, dtype=np.float32)


declare_method(
    fuse_mean,
    name="mean",
    family="classical",
    description="Pixel-wise average of the inputs.",
    inputs="n",
    volume_note="Voxel-wise, identical to slice mode.",
)
