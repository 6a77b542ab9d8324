"""Liu et al.'s consistency verification (Information Fusion 36, 2017), in numpy and scipy: shared by the torch
post-processing (``inference/liu_cnn.py``) and the ONNX one (``inference/liu_onnx.py``), so it needs no torch."""

from __future__ import annotations

import numpy as np

MIN_FRACTION = 0.01  # regions under this fraction of the image area are reversed


def remove_small_regions(binary: np.ndarray, min_fraction: float = MIN_FRACTION) -> np.ndarray:
    """Consistency verification of one binary map (2-D or 3-D): connected regions of ones, then of zeros, smaller
    than ``min_fraction`` of its size are reversed (face-connected neighbours)."""
    from scipy import ndimage

    out = binary.astype(bool).copy()
    limit = min_fraction * out.size
    for value in (True, False):
        labels, count = ndimage.label(out == value)
        if count:
            sizes = np.bincount(labels.ravel())
            small = np.flatnonzero(sizes < limit)
            small = small[small > 0]
            if small.size:
                out[np.isin(labels, small)] = not value
    return out


def decision_map(weights: np.ndarray, min_fraction: float = MIN_FRACTION, per_slice: bool = True) -> np.ndarray:
    """Binary decision map (float32 0/1) of soft ``weights``: thresholded at 0.5, then verified
    (:func:`remove_small_regions`) slice by slice (``per_slice``, (batch, H, W)) or as one volume."""
    binary = weights > 0.5
    if per_slice:
        return np.stack([remove_small_regions(s, min_fraction) for s in binary]).astype(np.float32)
    return remove_small_regions(binary, min_fraction).astype(np.float32)
