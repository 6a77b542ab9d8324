"""Fusion quality metrics: the review's 14 plus VIF and SCD, exact to ``docs/metrics-spec.md``.

Public API::

    METRIC_KEYS, METRICS            # canonical order; MetricInfo(key, name, direction, range, description)
    compute_metrics(sources, fused, keys=None) -> {key: float}     # one 2-D set on 0..255, as is
    score(sources, fused, axis=0, rule="percentile", ...) -> dict  # 2-D or 3-D, any range, JSON-ready
    format_table(result) -> str                                     # readable table with directions

See docs/metrics.md for the definitions summary, the volume protocol and the N-source generalisations.
"""

from MedFusionLib.metrics.registry import METRIC_KEYS, METRICS, MetricInfo, compute_metrics
from MedFusionLib.metrics.report import format_table
from MedFusionLib.metrics.volume import score

__all__ = ["METRIC_KEYS", "METRICS", "MetricInfo", "compute_metrics", "format_table", "score"]
