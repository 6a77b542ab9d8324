"""``format_table``: a readable metrics table (value, better direction, range, description) plus the protocol."""

from __future__ import annotations

import math
from typing import Any

from MedFusionLib.metrics.registry import METRICS


def _fmt(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        v = float(value)
        if math.isfinite(v) and v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.4e}"
        return f"{v:.6f}" if math.isfinite(v) else str(v)
    return str(value)


def _info(key: str):
    base = key[:-2] if key.endswith("3D") and key[:-2] in METRICS else key
    return METRICS.get(base), base != key


def format_table(result: dict[str, Any]) -> str:
    """Render ``score``/``compute_metrics`` output: one row per metric, then the protocol lines."""
    rows: list[list[str]] = [["metric", "value", "better", "range", "description"]]
    for key, value in result.items():
        if key == "protocol":
            continue
        info, is_3d = _info(key)
        if info is None:
            rows.append([key, _fmt(value), "", "", ""])
            continue
        desc = info.description + (" (true 3-D variant)" if is_3d else "")
        rows.append([key, _fmt(value), info.direction, info.range, desc])
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for j, r in enumerate(rows):
        lines.append(
            "  ".join(
                [r[0].ljust(widths[0]), r[1].rjust(widths[1]), r[2].ljust(widths[2]), r[3].ljust(widths[3]), r[4]]
            ).rstrip()
        )
        if j == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 11)
    protocol = result.get("protocol")
    if isinstance(protocol, dict):
        lines.append("")
        lines.append("protocol:")
        for k, v in protocol.items():
            lines.append(f"  {k}: {v}")
    return "\n".join(lines)
