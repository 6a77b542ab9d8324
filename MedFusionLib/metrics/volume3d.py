"""True 3-D variants of the metrics that have a natural volumetric form: EN3D SD3D MI3D NMI3D SSIM3D QABF3D.

They are computed on the whole normalised volumes (background included), so unlike the per-slice means
they weigh every voxel once and see structure across slices:

* ``EN3D``, ``SD3D``: the 2-D formulas over all voxels of F.
* ``MI3D``, ``NMI3D``: each volume min-max quantised to 0..255 as a whole, 256-bin marginal and
  256 x 256 joint histograms over all voxels.
* ``SSIM3D``: 11 x 11 x 11 Gaussian window (sigma 1.5) at every position where it fits, summed over sources.
* ``QABF3D``: 3-D Sobel gradients (derivative [-1 0 1] along one axis, smoothing [1 2 1] along the two
  others, zero padding); strength |grad|; the orientation term uses the angle theta in 0..pi/2 between
  the gradient lines of S and F, A = 1 - theta / (pi/2) (0 where either gradient vanishes), because
  atan(gy/gx) has no 3-D counterpart. Other constants and the weighting are those of QABF.

Filtering runs over slabs along axis 0 (with the halo each filter needs) to bound memory, on the shared
thread pool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from MedFusionLib.core.progress import CancelCallback, ProgressCallback, check_cancel, report
from MedFusionLib.metrics._filters import correlate_same
from MedFusionLib.metrics._parallel import get_pool
from MedFusionLib.metrics.information import LEVELS, quantise
from MedFusionLib.metrics.noreference import entropy_from_counts
from MedFusionLib.metrics.structural import SSIM_WINDOW, edge_q, relative_strength, ssim_maps

KEYS_3D = ("EN3D", "SD3D", "MI3D", "NMI3D", "SSIM3D", "QABF3D")
SLAB = 24  # output slices per slab for the filtered 3-D variants
_DIFF = np.array([-1.0, 0.0, 1.0])
_SMOOTH = np.array([1.0, 2.0, 1.0])


def _quantise_volume(v: np.ndarray) -> np.ndarray:
    return quantise(v.reshape(1, -1, v.shape[-1]))[0].reshape(-1)  # min-max over the whole volume


def _entropies(codes: np.ndarray, bins: int) -> float:
    return float(entropy_from_counts(np.bincount(codes, minlength=bins)))


def _mi_nmi(srcs: Sequence[np.ndarray], fus: np.ndarray) -> tuple[float, float]:
    qf = _quantise_volume(fus)
    hf = _entropies(qf, LEVELS)
    mi_sum, nmi_sum = 0.0, 0.0
    for s in srcs:
        qs = _quantise_volume(s)
        hs = _entropies(qs, LEVELS)
        mi = hs + hf - _entropies(qs * LEVELS + qf, LEVELS * LEVELS)
        mi_sum += mi
        nmi_sum += mi / (hs + hf) if hs + hf > 0 else 0.0
    return mi_sum, 2.0 * nmi_sum


def _map_slabs(fn: Callable[[int, int], np.ndarray], count: int, cancel: CancelCallback | None) -> np.ndarray:
    """Sum of ``fn(z0, z1)`` over slabs of SLAB output slices, on the shared pool when there is one."""
    slabs = [(z0, min(count, z0 + SLAB)) for z0 in range(0, count, SLAB)]
    pool = get_pool()
    total = None
    futures = [] if pool is None else [pool.submit(fn, z0, z1) for z0, z1 in slabs]
    try:
        for i, (z0, z1) in enumerate(slabs):
            check_cancel(cancel)
            part = fn(z0, z1) if pool is None else futures[i].result()
            total = part if total is None else total + part
    finally:
        for f in futures:
            f.cancel()
    if total is None:
        raise ValueError("no slabs to score (an empty volume)")
    return total


def _ssim3d(srcs: Sequence[np.ndarray], fus: np.ndarray, cancel: CancelCallback | None) -> float:
    k = len(SSIM_WINDOW)
    n_out = fus.shape[0] - k + 1

    def slab(z0: int, z1: int) -> np.ndarray:
        maps = ssim_maps([s[z0 : z1 + k - 1] for s in srcs], fus[z0 : z1 + k - 1], SSIM_WINDOW, (-3, -2, -1))
        return np.array([float(m.sum()) for m in maps] + [maps[0].size])

    sums = _map_slabs(slab, n_out, cancel)
    return float((sums[:-1] / sums[-1]).sum())


def _gradients(v: np.ndarray, z0: int, z1: int) -> np.ndarray:
    """3-D Sobel gradients (3, z1 - z0, H, W) of slices z0..z1 of ``v``, zero padding outside the volume."""
    lo, hi = max(0, z0 - 1), min(v.shape[0], z1 + 1)
    slab = v[lo:hi]
    pad = ((z0 - lo == 0) * 1, (hi - z1 == 0) * 1)
    if pad != (0, 0):
        slab = np.pad(slab, (pad, (0, 0), (0, 0)))
    out = []
    for d in range(3):
        kernels = [_DIFF if a == d else _SMOOTH for a in range(3)]
        out.append(correlate_same(slab, kernels, [0, 1, 2], mode="constant")[1:-1])
    return np.stack(out)


def _qabf3d(srcs: Sequence[np.ndarray], fus: np.ndarray, cancel: CancelCallback | None) -> float:
    def slab(z0: int, z1: int) -> np.ndarray:
        num, den = 0.0, 0.0
        gf = _gradients(fus, z0, z1)
        nf = np.sqrt((gf * gf).sum(axis=0))
        for s in srcs:
            gs = _gradients(s, z0, z1)
            ns = np.sqrt((gs * gs).sum(axis=0))
            prod = ns * nf
            with np.errstate(divide="ignore", invalid="ignore"):
                cos = np.where(prod > 0, np.abs((gs * gf).sum(axis=0)) / np.where(prod > 0, prod, 1.0), 0.0)
            theta = np.arccos(np.clip(cos, 0.0, 1.0))
            q = edge_q(relative_strength(ns, nf), 1.0 - theta / (np.pi / 2))
            num += float((q * ns).sum())
            den += float(ns.sum())
        return np.array([num, den])

    num, den = _map_slabs(slab, fus.shape[0], cancel)
    return float(num / den) if den > 0 else 0.0


def compute_3d(
    srcs: list[np.ndarray],
    fus: np.ndarray,
    wanted: Sequence[str],
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> tuple[dict[str, float], dict[str, str]]:
    """The requested 3-D variants of normalised (0..255) volumes; returns (values, {skipped key: reason})."""
    values: dict[str, float] = {}
    skipped: dict[str, str] = {}
    steps = max(1, len(wanted))
    for i, key in enumerate(wanted):
        check_cancel(cancel)
        if key == "EN3D":
            values[key] = _entropies(np.clip(np.floor(fus), 0, 255).astype(np.int64).ravel(), LEVELS)
        elif key == "SD3D":
            values[key] = float(fus.std())
        elif key in ("MI3D", "NMI3D"):
            if "MI3D" not in values:
                values["MI3D"], values["NMI3D"] = _mi_nmi(srcs, fus)
        elif key == "SSIM3D":
            if min(fus.shape) < len(SSIM_WINDOW):
                skipped[key] = f"volume {fus.shape} is smaller than the 11x11x11 window"
            else:
                values[key] = _ssim3d(srcs, fus, cancel)
        elif key == "QABF3D":
            values[key] = _qabf3d(srcs, fus, cancel)
        report(progress, (i + 1) / steps, f"3-D metrics: {key}")
    return {k: values[k] for k in wanted if k in values}, skipped
