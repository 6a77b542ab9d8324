"""The metric table: key -> kernel, direction, range and one-line description; and ``compute_metrics``.

``METRIC_KEYS`` fixes the order used everywhere (tables, JSON). The kernels live in the group modules
(``noreference``, ``information``, ``fmi``, ``structural``, ``vif``) and all take a
:class:`~._stack.Stack` of B slices, returning B values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from MedFusionLib.core.errors import InputError
from MedFusionLib.metrics import fmi as _fmi
from MedFusionLib.metrics import information as _inf
from MedFusionLib.metrics import noreference as _nr
from MedFusionLib.metrics import structural as _st
from MedFusionLib.metrics import vif as _vif
from MedFusionLib.metrics._parallel import get_pool
from MedFusionLib.metrics._stack import Stack
from MedFusionLib.metrics._validation import as_float_arrays, check_slice_size

Kernel = Callable[[Stack], np.ndarray]


@dataclass(frozen=True)
class MetricInfo:
    """What a readout needs to know about a metric."""

    key: str
    name: str
    direction: str  # "higher" or "lower" is better
    range: str
    description: str
    kernel: Kernel


_TABLE: list[MetricInfo] = [
    MetricInfo(
        "EN", "entropy", "higher", "0..8", "Shannon entropy (bits) of the fused image's 256-bin histogram", _nr.entropy
    ),
    MetricInfo(
        "SD",
        "standard deviation",
        "higher",
        "0..127.5",
        "population standard deviation of the fused image (contrast)",
        _nr.standard_deviation,
    ),
    MetricInfo(
        "SF",
        "spatial frequency",
        "higher",
        "0..360.6",
        "RMS of horizontal and vertical first differences (overall activity)",
        _nr.spatial_frequency,
    ),
    MetricInfo(
        "AG",
        "average gradient",
        "higher",
        "0..~255",
        "mean gradient magnitude of the fused image (sharpness)",
        _nr.average_gradient,
    ),
    MetricInfo(
        "EI",
        "edge intensity",
        "higher",
        "0..~1443",
        "mean Sobel gradient magnitude of the fused image",
        _nr.edge_intensity,
    ),
    MetricInfo(
        "MI",
        "mutual information",
        "higher",
        "0..8 per source",
        "sum over sources of MI(S, F) in bits",
        _inf.mutual_information,
    ),
    MetricInfo(
        "NMI",
        "normalised mutual information",
        "higher",
        "0..2 per source",
        "Hossny's 2 MI(S,F) / (H(S) + H(F)), summed over sources",
        _inf.normalized_mutual_information,
    ),
    MetricInfo(
        "FMI",
        "feature mutual information",
        "higher",
        "0..1",
        "Haghighat's fast-FMI on raw pixels, 3x3 windows, mean over sources",
        _fmi.fmi,
    ),
    MetricInfo(
        "QNCIE",
        "nonlinear correlation information entropy",
        "higher",
        "0..1",
        "NCIE of the sources and F from the eigenvalues of their NCC matrix",
        _inf.qncie,
    ),
    MetricInfo(
        "SSIM",
        "structural similarity",
        "higher",
        "-1..1 per source",
        "Wang et al. SSIM (11x11 Gaussian, L = 255) summed over sources",
        _st.ssim,
    ),
    MetricInfo(
        "QABF",
        "edge preservation",
        "higher",
        "0..1",
        "Xydeas-Petrovic share of source edge strength and orientation kept in F",
        _st.qabf,
    ),
    MetricInfo(
        "MSE",
        "mean squared error",
        "lower",
        "0..65025",
        "mean over sources of the mean squared difference to F",
        _st.mse,
    ),
    MetricInfo("RMSE", "root mean squared error", "lower", "0..255", "square root of MSE", _st.rmse),
    MetricInfo(
        "PSNR",
        "peak signal-to-noise ratio",
        "higher",
        "0..100 dB (capped)",
        "10 log10(255^2 / MSE); capped at 100 dB (identical images)",
        _st.psnr,
    ),
    MetricInfo(
        "VIF",
        "visual information fidelity",
        "higher",
        "0..~1 per source",
        "Sheikh-Bovik pixel-domain VIF (4 scales) summed over sources",
        _vif.vif,
    ),
    MetricInfo(
        "SCD",
        "sum of the correlations of differences",
        "higher",
        "-2..2",
        "corr(A, F - B) + corr(B, F - A) (other sources summed for N > 2)",
        _st.scd,
    ),
]

METRICS: dict[str, MetricInfo] = {m.key: m for m in _TABLE}
METRIC_KEYS: tuple = tuple(m.key for m in _TABLE)


def resolve_keys(keys: Sequence[str] | None) -> list[str]:
    """Validate a key selection; returns it in the canonical order (None = all 16)."""
    if keys is None:
        return list(METRIC_KEYS)
    if isinstance(keys, str):
        keys = [keys]
    unknown = [k for k in keys if k not in METRICS]
    if unknown:
        raise InputError(f"unknown metric key(s) {', '.join(map(str, unknown))}; known: {' '.join(METRIC_KEYS)}")
    wanted = set(keys)
    return [k for k in METRIC_KEYS if k in wanted]


def compute_stack(stack: Stack, keys: Sequence[str], parallel: bool = True) -> dict[str, np.ndarray]:
    """Per-slice values (arrays of length B) for already-validated stacks.

    With ``parallel`` (and a thread pool), FMI - about half of the work - runs on the pool, one task per
    source (FMI is the mean of independent per-source terms, summed here in source order, so the value is
    bit-identical), while the other metrics run on this thread. FMI touches no shared cache entry.
    """
    run = lambda k: np.asarray(METRICS[k].kernel(stack), dtype=np.float64).reshape(stack.batch)  # noqa: E731
    pool = get_pool() if parallel else None
    if pool is None or "FMI" not in keys:
        return {k: run(k) for k in keys}
    parts = [pool.submit(_fmi.fmi, Stack([s], stack.fused)) for s in stack.sources]
    values = {k: run(k) for k in keys if k != "FMI"}
    total = np.zeros(stack.batch)
    for part in parts:
        total += part.result()
    values["FMI"] = total / len(parts)
    return {k: values[k] for k in keys}


def compute_metrics(
    sources: Sequence[np.ndarray], fused: np.ndarray, keys: Sequence[str] | None = None
) -> dict[str, float]:
    """The metrics of one 2-D set: ``sources`` (>= 2) and ``fused`` on the 0..255 scale, used as they are.

    Returns ``{key: float}`` in canonical order; every value is finite (see the degenerate-input conventions
    in docs/metrics.md). Raises InputError for shape mismatch, empty arrays, NaN/Inf, < 2 sources.
    """
    selected = resolve_keys(keys)
    srcs, fus = as_float_arrays(sources, fused, ndims=(2,))
    check_slice_size(fus.shape)
    stack = Stack([s[None] for s in srcs], fus[None])
    values = compute_stack(stack, selected)
    return {k: float(v[0]) for k, v in values.items()}
