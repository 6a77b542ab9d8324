"""The views a radiologist can read: the layouts the page can switch between (three slices, 2 x 2 with a 3-D
view, one slice), orientation letters, the view's name and slice position on each slice view, and the linked
crosshair. The letters come from the slice's own orientation matrix, so they stay true whatever Slicer does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# screen edge -> the RAS letters of the world direction pointing towards it (negative, positive)
_AXIS_LETTERS = (("L", "R"), ("P", "A"), ("I", "S"))


def direction_letter(direction: Sequence[float]) -> str:
    """The patient direction (R, L, A, P, S or I) a world RAS vector points to most."""
    axis = max(range(3), key=lambda i: abs(direction[i]))
    return _AXIS_LETTERS[axis][1 if direction[axis] > 0 else 0]


def orientation_letters(slice_to_ras: Sequence[Sequence[float]]) -> dict[str, str]:
    """Letters for the four edges of a slice view from its SliceToRAS matrix (column 0: screen right,
    column 1: screen up), e.g. axial in radiological convention: R on the left, L on the right, A on top."""
    right = [slice_to_ras[row][0] for row in range(3)]
    up = [slice_to_ras[row][1] for row in range(3)]
    return {
        "left": direction_letter([-v for v in right]),
        "right": direction_letter(right),
        "top": direction_letter(up),
        "bottom": direction_letter([-v for v in up]),
    }


_VIEW_NAMES = {"Red": "Axial", "Green": "Coronal", "Yellow": "Sagittal"}  # Slicer's slice view names
_OFFSET_LETTERS = {"Axial": ("I", "S"), "Coronal": ("P", "A"), "Sagittal": ("L", "R")}


def slice_caption(view_name: str, orientation: str, offset_mm: float) -> str:
    """The view's name and the slice position, as Slicer writes it ("Axial S 12.0 mm"); a view that Slicer
    turned to the volume's own axes (an oblique volume) says so ("Axial, reformatted: 6.7 mm")."""
    name = _VIEW_NAMES.get(view_name, view_name)
    if orientation != name or name not in _OFFSET_LETTERS:
        return f"{name}, reformatted: {offset_mm:.1f} mm"
    return f"{name} {_OFFSET_LETTERS[name][1 if offset_mm >= 0 else 0]} {abs(offset_mm):.1f} mm"


def window_level_text(view: Any) -> str:
    """The background volume's window and level, as Slicer's corner annotation gives them ("W 400 L 40"): what a
    left-drag in the view changes."""
    volume_id = view.get_background_volume_id()
    scene = view.get_view_node().GetScene()
    volume = scene.GetNodeByID(volume_id) if volume_id and scene is not None else None
    display = volume.GetDisplayNode() if volume is not None else None
    if display is None or not hasattr(display, "GetWindow"):
        return ""
    return f"W {display.GetWindow():.4g} L {display.GetLevel():.4g}"


def view_annotation(view: Any) -> dict[str, str]:
    """Letters, caption and window/level of a trame-slicer slice view, for the page."""
    node = view.get_view_node()
    matrix = node.GetSliceToRAS()
    letters = orientation_letters([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    caption = slice_caption(node.GetLayoutName(), view.get_orientation(), view.get_slice_value())
    return dict(letters, caption=caption, window_level=window_level_text(view))


_EDGE_STYLE = {
    "left": "left: 6px; top: 50%;",
    "right": "right: 6px; top: 50%;",
    "top": "top: 4px; left: 50%;",
    "bottom": "bottom: 28px; left: 50%;",
}
_LABEL_STYLE = "position: absolute; color: #ffd24d; font: bold 14px sans-serif; pointer-events: none;"


def annotated_slice_view_ui(server: Any, view_id: str, view: Any) -> None:
    """trame-slicer's slice view controls, plus the orientation letters and the name and position caption,
    kept up to date as the slice moves (``slice_view_ui_f`` of ``register_rca_factories``)."""
    from trame.widgets import html
    from trame_slicer.app.ui import create_vertical_slice_view_gutter_ui

    create_vertical_slice_view_gutter_ui(server, view_id, view)
    key = f"{view_id}_annotation"

    def update(*_: Any) -> None:
        server.state[key] = view_annotation(view)

    update()
    view.modified.connect(update)
    for edge, style in _EDGE_STYLE.items():
        html.Div(f"{{{{ {key}.{edge} }}}}", classes=f"orientation-{edge}", style=_LABEL_STYLE + style)
    html.Div(
        f"{{{{ {key}.caption }}}}",
        classes="view-caption",
        style=_LABEL_STYLE + "top: 4px; right: 8px; font-weight: normal; color: #eee;",
    )
    html.Div(
        f"{{{{ {key}.window_level }}}}",
        classes="view-window-level",
        style=_LABEL_STYLE + "bottom: 28px; right: 8px; font-weight: normal; color: #eee;",
    )


def register_layouts(layout_manager: Any) -> None:
    """One trame-slicer layout per ``options.VIEW_LAYOUT`` value."""
    from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition

    axial, coronal = ViewLayoutDefinition.axial_view(), ViewLayoutDefinition.coronal_view()
    sagittal, threed = ViewLayoutDefinition.sagittal_view(), ViewLayoutDefinition.threed_view()
    row, column = LayoutDirection.Horizontal, LayoutDirection.Vertical
    layouts = {
        "grid": Layout(column, [Layout(row, [axial, threed]), Layout(row, [coronal, sagittal])]),
        "three": Layout(row, [axial, coronal, sagittal]),
        "axial": Layout(row, [axial]),
        "3d": Layout(row, [threed]),
    }
    for name, layout in layouts.items():
        layout_manager.register_layout(name, layout)


def tilt_3d_views(views: Sequence[Any], azimuth: float = 35.0, elevation: float = 25.0, zoom: float = 1.4) -> None:
    """Turn each 3-D view from Slicer's straight anterior camera to an oblique one, so that all three slice
    planes are seen (from the front the axial and sagittal planes are edge-on), a little closer."""
    for view in views:
        camera_node = view.get_camera_node() if hasattr(view, "get_camera_node") else None
        if camera_node is None:
            continue
        camera = camera_node.GetCamera()
        camera.Azimuth(azimuth)
        camera.Elevation(elevation)
        camera.OrthogonalizeViewUp()
        camera.Zoom(zoom)  # the fitted view leaves room for any rotation: the planes fill more of it
        view.renderer().ResetCameraClippingRange()
