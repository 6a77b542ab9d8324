"""``score``: metrics for 2-D images or 3-D volumes of any intensity range, with the protocol stated.

The 2-D definitions assume 0..255, so other inputs are first mapped by a fixed rule (spec, "Volumes and
other intensity ranges"):

* ``rule="percentile"`` (default): each array is mapped on its own by its 0.5th..99.5th percentiles of the
  non-background voxels (voxels above the array's minimum) to 0..255, clipped. A 2-D set already inside
  0..255 is used as it is (rule reported as ``"as-is (0..255)"``).
* ``rule="as-is"``: the arrays are already on 0..255 (the fusion pipeline normalised them itself); values
  are only clipped to 0..255 (anything more than 1e-6 outside is an error).

Volumes (numpy order (z, y, x) from SimpleITK, so ``axis=0`` is the image's k, usually axial axis): every
metric is computed on each 2-D slice along ``axis`` where at least one source has foreground - a voxel
above ``FOREGROUND_LEVEL`` (5.1 = 2 % of 0..255, the fusion engine's level) after normalisation - and
the per-slice values are averaged. True 3-D variants (``EN3D SD3D MI3D NMI3D SSIM3D QABF3D``) are
computed on the whole normalised volumes (see ``volume3d``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from MedFusionLib.core.errors import InputError
from MedFusionLib.core.progress import CancelCallback, ProgressCallback, check_cancel, report, sub_progress
from MedFusionLib.metrics._parallel import WORKERS, get_pool
from MedFusionLib.metrics._stack import Stack
from MedFusionLib.metrics._validation import as_float_arrays, check_slice_size
from MedFusionLib.metrics.registry import compute_stack, resolve_keys
from MedFusionLib.metrics.volume3d import KEYS_3D, compute_3d

RULES = ("percentile", "as-is")
PERCENTILES = (0.5, 99.5)
FOREGROUND_LEVEL = 0.02 * 255.0
FOREGROUND_TEXT = f"a voxel above {FOREGROUND_LEVEL:g} on the normalised 0..255 scale (2 % of the range) in any source"
SLICES_PER_BATCH = 1  # one slice per task: the kernels are memory-bound, larger stacks are not faster
_TOLERANCE = 1e-6 * 255.0


def percentile_normalise(v: np.ndarray) -> np.ndarray:
    """Map an array to 0..255 by its 0.5th..99.5th percentiles of voxels above its minimum, clipped.

    A constant array maps to zeros; if the two percentiles coincide (e.g. a binary mask), voxels at or
    above that level map to 255 and the rest to 0.
    """
    low_level = v.min()
    fg = v[v > low_level]
    if fg.size == 0:
        return np.zeros_like(v, dtype=np.float64)
    lo, hi = np.percentile(fg, PERCENTILES)
    if hi <= lo:
        return np.where(v >= hi, 255.0, 0.0)
    return np.clip((v - lo) / (hi - lo), 0.0, 1.0) * 255.0


def _as_is(arrays: list[np.ndarray]) -> list[np.ndarray]:
    for i, a in enumerate(arrays):
        if a.min() < -_TOLERANCE or a.max() > 255.0 + _TOLERANCE:
            raise InputError(
                f"rule 'as-is' needs arrays on 0..255, array {i + 1} spans {a.min():.6g}..{a.max():.6g}; use rule='percentile'"
            )
    return [np.clip(a, 0.0, 255.0) for a in arrays]


def _normalise(arrays: list[np.ndarray], rule: str, ndim: int) -> tuple[list[np.ndarray], str]:
    if rule not in RULES:
        raise InputError(f"unknown normalisation rule {rule!r}; choose one of {', '.join(RULES)}")
    in_range = all(a.min() >= 0.0 and a.max() <= 255.0 for a in arrays)
    if rule == "as-is" or (ndim == 2 and in_range):
        return _as_is(arrays), "as-is (0..255)"
    text = (
        f"percentile: each array mapped by its own {PERCENTILES[0]}th..{PERCENTILES[1]}th percentiles of the "
        "voxels above its minimum to 0..255, clipped"
    )
    return [percentile_normalise(a) for a in arrays], text


def score(
    sources: Sequence[np.ndarray],
    fused: np.ndarray,
    *,
    axis: int = 0,
    rule: str = "percentile",
    include_3d: bool = True,
    keys: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> dict[str, Any]:
    """Metrics of 2-D or 3-D arrays of any range, as a JSON-ready dict with the protocol that produced them.

    Returns the selected metric keys (floats, canonical order), for volumes the ``<KEY>3D`` variants when
    ``include_3d``, and a ``"protocol"`` dict (rule, numpy axis, slices used, foreground definition). Every
    value is finite, so ``json.dumps(result, allow_nan=False)`` works. Inputs are never modified.
    """
    selected = resolve_keys(keys)
    srcs, fus = as_float_arrays(sources, fused, ndims=(2, 3))
    ndim = fus.ndim
    normalised, rule_text = _normalise(srcs + [fus], rule, ndim)
    srcs, fus = normalised[:-1], normalised[-1]
    if ndim == 2:
        check_slice_size(fus.shape)
        check_cancel(cancel)
        values = compute_stack(Stack([s[None] for s in srcs], fus[None]), selected)
        report(progress, 1.0, "metrics done")
        result: dict[str, Any] = {k: float(v[0]) for k, v in values.items()}
        result["protocol"] = {"dimensions": 2, "rule": rule_text, "axis": None, "sources": len(srcs)}
        return result
    return _score_volume(srcs, fus, selected, axis, rule_text, include_3d, progress, cancel)


def _score_volume(
    srcs: list[np.ndarray],
    fus: np.ndarray,
    selected: list[str],
    axis: int,
    rule_text: str,
    include_3d: bool,
    progress: ProgressCallback | None,
    cancel: CancelCallback | None,
) -> dict[str, Any]:
    if not isinstance(axis, (int, np.integer)) or not -3 <= int(axis) < 3:
        raise InputError(f"axis must be 0, 1 or 2 for a volume, got {axis!r}")
    axis = int(axis) % 3
    moved = [np.moveaxis(a, axis, 0) for a in srcs + [fus]]
    check_slice_size(moved[0].shape[1:])
    fg = np.zeros(moved[0].shape[0], dtype=bool)
    for s in moved[:-1]:
        fg |= (s > FOREGROUND_LEVEL).any(axis=(1, 2))
    used = np.flatnonzero(fg)
    if used.size == 0:
        raise InputError(f"no slice along axis {axis} has foreground ({FOREGROUND_TEXT})")
    part = 0.85 if include_3d else 1.0
    batches = [used[lo : lo + SLICES_PER_BATCH] for lo in range(0, used.size, SLICES_PER_BATCH)]

    def run(idx: np.ndarray) -> dict[str, np.ndarray]:
        stack = Stack([np.ascontiguousarray(s[idx]) for s in moved[:-1]], np.ascontiguousarray(moved[-1][idx]))
        return compute_stack(stack, selected, parallel=False)

    per_slice: list[dict[str, np.ndarray]] = []
    pool = get_pool()
    pending = []
    done = 0
    try:
        for i, idx in enumerate(batches):
            check_cancel(cancel)
            if pool is None:
                per_slice.append(run(idx))
            else:  # keep the pool a little ahead of the results, collected in order
                pending.append(pool.submit(run, idx))
                if len(pending) <= WORKERS and i < len(batches) - 1:
                    continue
                per_slice.append(pending.pop(0).result())
            done += len(batches[len(per_slice) - 1])
            report(progress, part * done / used.size, f"metrics: slice {done}/{used.size}")
        while pending:
            check_cancel(cancel)
            per_slice.append(pending.pop(0).result())
            done += len(batches[len(per_slice) - 1])
            report(progress, part * done / used.size, f"metrics: slice {done}/{used.size}")
    finally:
        for fut in pending:
            fut.cancel()
    result: dict[str, Any] = {k: float(np.mean(np.concatenate([b[k] for b in per_slice]))) for k in selected}
    computed_3d: list[str] = []
    skipped_3d: dict[str, str] = {}
    if include_3d:
        wanted = [k for k in KEYS_3D if k[:-2] in selected]
        values_3d, skipped_3d = compute_3d(srcs, fus, wanted, progress=sub_progress(progress, part, 1.0), cancel=cancel)
        for k in wanted:
            if k in values_3d:
                result[k] = float(values_3d[k])
                computed_3d.append(k)
    report(progress, 1.0, "metrics done")
    protocol: dict[str, Any] = {
        "dimensions": 3,
        "rule": rule_text,
        "axis": axis,
        "axis_note": "numpy axis of the (z, y, x) array from SimpleITK; 0 = the image's k (usually axial) axis",
        "aggregation": "mean of the 2-D metric over the slices used",
        "slices_used": int(used.size),
        "slices_total": int(fg.size),
        "foreground": FOREGROUND_TEXT,
        "sources": len(srcs),
        "variants_3d": computed_3d,
    }
    if skipped_3d:
        protocol["variants_3d_skipped"] = skipped_3d
    result["protocol"] = protocol
    return result
