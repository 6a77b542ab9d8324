"""The colour bar beside the views: what the colours of the shown result mean, drawn from the same control
points that painted it (``core.colour``), so the legend cannot drift from the image."""

from __future__ import annotations

import numpy as np

from MedFusionLib.core import colour as colour_maps


def _css_gradient(start: float, end: float, name: str, stops: int = 6) -> str:
    """A CSS linear-gradient (bottom to top) of the colour map ``name`` between two of its points."""
    values = np.linspace(start, end, stops)
    rgb = colour_maps.apply_colour_map(values, name)
    parts = [f"rgb({r:.0f},{g:.0f},{b:.0f}) {100 * i / (stops - 1):.0f}%" for i, (r, g, b) in enumerate(rgb)]
    return f"linear-gradient(to top, {', '.join(parts)})"


def _table_gradient(colour_node, stops: int = 8) -> str:
    """A CSS gradient sampled from a Slicer colour node's lookup table (what the slice views paint with)."""
    table = colour_node.GetLookupTable()
    low, high = table.GetRange()
    colours = []
    for i in range(stops):
        rgb = [0.0, 0.0, 0.0]
        table.GetColor(low + (high - low) * i / (stops - 1), rgb)
        colours.append(rgb)
    parts = [
        f"rgb({255 * r:.0f},{255 * g:.0f},{255 * b:.0f}) {100 * i / (stops - 1):.0f}%"
        for i, (r, g, b) in enumerate(colours)
    ]
    return f"linear-gradient(to top, {', '.join(parts)})"


def legend_for(colour: str, colour_node=None, functional_name: str = "") -> dict[str, str]:
    """Title, gradient and end labels of the legend of a result: ``colour`` is the colour the result was made
    with ("none" for a grey result), ``colour_node`` the Slicer colour node a grey result is shown with."""
    if colour != "none":
        name = "pet" if colour == "auto" else colour
        threshold = f"{100 * colour_maps.OVERLAY_THRESHOLD:.0f} %"
        return {
            "title": f"{functional_name or 'functional input'} ({name} scale)",
            "gradient": _css_gradient(colour_maps.OVERLAY_MAP_START, colour_maps.OVERLAY_MAP_END, name),
            "high": "highest uptake",
            "low": f"{threshold} of its range; grey anatomy below",
        }
    name = colour_node.GetName() if colour_node is not None else "Grey"
    return {
        "title": f"fused intensity ({name})",
        "gradient": _table_gradient(colour_node) if colour_node is not None else _GREY,
        "high": "255",
        "low": "0",
    }


_GREY = "linear-gradient(to top, rgb(0,0,0), rgb(255,255,255))"
