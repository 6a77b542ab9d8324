"""Fusion metrics -> a ``vtkMRMLTableNode`` (metric, value, better, description), one row per metric."""

from __future__ import annotations

import math
from collections.abc import Sequence

import vtk

COLUMNS = ("metric", "value", "better", "description")


def _rows(metrics: dict, keys: Sequence[str] | None = None):
    from MedFusionLib.metrics import METRIC_KEYS, METRICS

    keys = list(METRIC_KEYS) if keys is None else list(keys)
    for key in keys:
        if key not in metrics:
            continue
        value = metrics[key]
        try:
            value = float(value)
        except (TypeError, ValueError):
            value = math.nan
        info = METRICS.get(key) if hasattr(METRICS, "get") else None
        direction = str(getattr(info, "direction", "")) if info is not None else ""
        name = str(getattr(info, "name", "")) if info is not None else ""
        text = str(getattr(info, "description", "")) if info is not None else ""
        description = f"{name}: {text}" if name and name != key and text else (text or name)
        yield key, value, direction, description


def update_metrics_table(table_node, metrics: dict, keys: Sequence[str] | None = None) -> None:
    """Replace the table's content with the metrics (the 16 standard ones by default), in METRIC_KEYS order."""
    table = vtk.vtkTable()
    arrays = {name: (vtk.vtkDoubleArray() if name == "value" else vtk.vtkStringArray()) for name in COLUMNS}
    for name, array in arrays.items():
        array.SetName(name)
        table.AddColumn(array)
    for key, value, direction, description in _rows(metrics, keys):
        arrays["metric"].InsertNextValue(key)
        arrays["value"].InsertNextValue(value)
        arrays["better"].InsertNextValue(direction)
        arrays["description"].InsertNextValue(description)
    was_modifying = table_node.StartModify()
    table_node.SetAndObserveTable(table)
    table_node.SetUseColumnTitleAsColumnHeader(True)
    table_node.SetLocked(True)
    table_node.SetColumnDescription("metric", "metric key (see docs/metrics.md)")
    table_node.SetColumnDescription("value", "metric value on the fused volume")
    table_node.SetColumnDescription("better", "whether higher or lower values are better")
    table_node.EndModify(was_modifying)


def table_rows(table_node) -> list:
    """The table as a list of (metric, value, better, description) tuples (for tests and the GUI readout)."""
    table = table_node.GetTable()
    columns = [table.GetColumnByName(name) for name in COLUMNS]
    return [tuple(c.GetValue(r) for c in columns) for r in range(table.GetNumberOfRows())]
