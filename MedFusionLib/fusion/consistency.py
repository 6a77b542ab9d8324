"""Through-plane consistency: does a fused volume jump between adjacent slices more than its sources do?

Slice-wise fusion treats every slice on its own, so a method whose decisions flip from one slice to the next
leaves seams that are invisible in the slicing plane but show as stripes in the two orthogonal views (coronal
and sagittal for axial slicing). This measure compares the fused volume's slice-to-slice differences with the
sources':

``ratio(axis) = mean |F[k+1] - F[k]| / mean max_i |S_i[k+1] - S_i[k]|``, both means over the voxels (pairs of
adjacent slices along ``axis``) where any source or the fused volume is foreground (> ``level``).

* ``ratio`` <= 1: the fused volume changes between slices no more than its most-changing source (the ideal for
  a fusion that picks, per voxel, from the sources); > 1: the fusion adds inter-slice jumps of its own.
* ``per_axis``: the ratio along each of the three array axes.
* ``anisotropy``: ``ratio(axis) / mean(ratio(other axes))``. A slice-wise method cut along ``axis`` shows
  anisotropy > 1 when it adds seams between slices; a truly 3-D (or voxel-wise) method stays near 1.

Inputs are arrays of one shape on any common scale (the ratio is scale-free).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _ratio(fused: np.ndarray, sources: Sequence[np.ndarray], axis: int, level: float) -> float:
    n = fused.shape[axis]
    if n < 2:
        return float("nan")
    lo = tuple(slice(0, n - 1) if a == axis else slice(None) for a in range(3))
    hi = tuple(slice(1, n) if a == axis else slice(None) for a in range(3))
    mask = fused[lo] > level
    mask |= fused[hi] > level
    src_jump = np.zeros(mask.shape, np.float32)
    for s in sources:
        mask |= (s[lo] > level) | (s[hi] > level)
        np.maximum(src_jump, np.abs(s[hi] - s[lo]), out=src_jump)
    if not mask.any():
        return float("nan")
    fused_jump = np.abs(fused[hi] - fused[lo])[mask].astype(np.float64).mean()
    reference = src_jump[mask].astype(np.float64).mean()
    return float(fused_jump / reference) if reference > 0 else float("inf") if fused_jump > 0 else 1.0


def through_plane_consistency(
    fused: np.ndarray, sources: Sequence[np.ndarray], axis: int = 0, level: float = 0.02
) -> dict[str, object]:
    """Through-plane jump ratio of ``fused`` against ``sources`` (3-D arrays, same shape); see the module doc.

    ``level`` is the foreground threshold on the arrays' scale (0.02 suits 0..1 data; use ~5 for 0..255).
    Returns ``{"ratio": float, "per_axis": [r0, r1, r2], "anisotropy": float, "axis": axis}``.
    """
    fused = np.asarray(fused, dtype=np.float32)
    sources = [np.asarray(s, dtype=np.float32) for s in sources]
    if fused.ndim != 3 or any(s.shape != fused.shape for s in sources):
        raise ValueError("through_plane_consistency needs 3-D fused and source arrays of one shape")
    per_axis = [_ratio(fused, sources, a, level) for a in range(3)]
    others = [per_axis[a] for a in range(3) if a != axis and np.isfinite(per_axis[a])]
    aniso = per_axis[axis] / float(np.mean(others)) if others and np.mean(others) > 0 else float("nan")
    return {"ratio": per_axis[axis], "per_axis": per_axis, "anisotropy": float(aniso), "axis": axis}
