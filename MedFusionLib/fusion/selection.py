"""Soft selection: per-voxel weights that favour the most salient input without hard switching.

Classical rules that pick, per pixel, the input with the larger saliency (local energy, detail strength) flip
abruptly wherever two inputs are about equally salient. In one slice the flip is hidden by in-plane filtering,
but in slice mode neighbouring slices flip at different places and the volume shows bands in the orthogonal
views. Raising the saliencies to a power and normalising keeps the choice nearly hard where one input clearly
dominates (a 2:1 saliency ratio gives 16:1 weights with the default sharpness) and makes it continuous where
they compete, so small changes between slices give small changes in the result.
"""

from __future__ import annotations

import numpy as np

SHARPNESS = 8.0  # the exponent: 1 = proportional weights, large = the hard arg-max rule


def soft_selection_weights(saliency: np.ndarray, sharpness: float = SHARPNESS, floor: float = 1e-8) -> np.ndarray:
    """Weights (same shape as ``saliency``, inputs on axis 0, summing to 1 over it) proportional to
    ``saliency ** sharpness``; equal weights where every input's saliency is below ``floor``."""
    if sharpness <= 0:
        raise ValueError(f"sharpness must be positive, got {sharpness}")
    logs = sharpness * np.log(np.maximum(saliency.astype(np.float32, copy=False), floor))
    logs -= logs.max(axis=0, keepdims=True)  # softmax in the log domain: no overflow for large exponents
    weights = np.exp(logs)
    weights /= weights.sum(axis=0, keepdims=True)
    return weights.astype(np.float32, copy=False)
