"""The web app's pure helpers: orientation letters and captions of the slice views, the colour legend."""

from __future__ import annotations

import numpy as np
import pytest

from MedFusionLib.apps.web.legend import legend_for
from MedFusionLib.apps.web.views import orientation_letters, slice_caption
from MedFusionLib.core import colour
from MedFusionLib.core.options import VIEW_LAYOUT

# Slicer's SliceToRAS of its three default views (radiological convention: patient right on screen left)
AXIAL = [[-1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
CORONAL = [[-1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]]
SAGITTAL = [[0, 0, 1, 0], [-1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]]


@pytest.mark.parametrize(
    "matrix, expected",
    [
        (AXIAL, {"left": "R", "right": "L", "top": "A", "bottom": "P"}),
        (CORONAL, {"left": "R", "right": "L", "top": "S", "bottom": "I"}),
        (SAGITTAL, {"left": "A", "right": "P", "top": "S", "bottom": "I"}),
    ],
    ids=["axial", "coronal", "sagittal"],
)
def test_orientation_letters_follow_the_slice_matrix(matrix, expected):
    assert orientation_letters(matrix) == expected


def test_an_oblique_slice_takes_the_letters_of_its_nearest_axes():
    angle = np.deg2rad(20)
    rotated = np.eye(4)
    rotated[:3, :3] = np.array(AXIAL)[:3, :3] @ np.array(
        [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    )
    assert orientation_letters(rotated.tolist()) == {"left": "R", "right": "L", "top": "A", "bottom": "P"}


def test_captions_name_the_view_and_the_slice_position():
    assert slice_caption("Red", "Axial", 12.04) == "Axial S 12.0 mm"
    assert slice_caption("Green", "Coronal", -3.0) == "Coronal P 3.0 mm"
    assert slice_caption("Yellow", "Sagittal", 1.25) == "Sagittal R 1.2 mm"
    assert slice_caption("Red", "Reformat", 6.7) == "Axial, reformatted: 6.7 mm"


def test_the_legend_of_a_colour_result_is_drawn_from_the_map_that_painted_it():
    shown = legend_for("auto", None, "FDG PET")
    assert shown["title"] == "FDG PET (pet scale)" and "50 %" in shown["low"]
    expected = colour.apply_colour_map(np.array([colour.OVERLAY_MAP_START, colour.OVERLAY_MAP_END]), "pet")
    first, last = (f"rgb({r:.0f},{g:.0f},{b:.0f})" for r, g, b in expected)
    assert shown["gradient"].startswith(f"linear-gradient(to top, {first} 0%") and f"{last} 100%" in shown["gradient"]
    assert legend_for("hot", None)["title"].endswith("(hot scale)")
    grey = legend_for("none", None)
    assert grey["title"] == "fused intensity (Grey)" and (grey["low"], grey["high"]) == ("0", "255")


def test_every_view_layout_choice_has_a_layout():
    pytest.importorskip("trame_slicer", reason="the 'web' extra is not installed")
    from MedFusionLib.apps.web.views import register_layouts

    class Recorder:
        def __init__(self):
            self.names = []

        def register_layout(self, name, layout):
            self.names.append(name)

    recorder = Recorder()
    register_layouts(recorder)
    assert recorder.names == list(VIEW_LAYOUT.values)


def test_the_legend_of_a_grey_result_samples_the_colour_table_it_is_shown_with():
    slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")
    scene = slicer.vtkMRMLScene()
    colours = slicer.vtkSlicerColorLogic()
    colours.SetMRMLScene(scene)
    colours.AddDefaultColorNodes()
    grey = legend_for("none", scene.GetNodeByID("vtkMRMLColorTableNodeGrey"))
    assert (
        grey["gradient"].startswith("linear-gradient(to top, rgb(0,0,0) 0%")
        and "rgb(255,255,255) 100%" in grey["gradient"]
    )
    heat = legend_for("none", scene.GetNodeByID("vtkMRMLPETProceduralColorNodePET-Heat"))
    assert heat["title"] == "fused intensity (PET-Heat)" and heat["gradient"] != grey["gradient"]


def test_one_tab_holds_the_session_and_the_longest_waiting_tab_takes_over():
    from MedFusionLib.apps.web.sessions import SessionGuard

    guard = SessionGuard()
    assert guard.may_act(None), "without a browser (the app driven by tests) nobody holds the session"
    assert guard.connected("a") and guard.connected("a"), "a reconnecting holder keeps the session"
    assert not guard.connected("b") and not guard.connected("c")
    assert guard.may_act("a") and not guard.may_act("b") and not guard.may_act(None)
    assert guard.exited("c") is None and guard.holder == "a"  # a read-only tab leaving changes nothing
    assert guard.exited("a") == "b" and guard.may_act("b") and not guard.may_act("a")
    assert guard.exited("b") is None and guard.holder is None
    assert guard.connected("d"), "after the last tab closed, the next one (a reload) holds the session"


def test_slice_views_carry_slicers_window_level_drag_and_linked_crosshair():
    """On trame-slicer's real views (no browser): a left-drag in the axial view changes the shown volume's
    window/level (Slicer's window/level mouse mode), and Shift + move there moves the other views' slices."""
    pytest.importorskip("trame_slicer", reason="the 'web' extra is not installed")
    from MedFusionLib.apps.web.app import FusionWebApp

    app = FusionWebApp(sample=True)
    try:
        slice_views = [v for v in app.slicer_app.view_manager.get_views() if hasattr(v, "get_slice_value")]
        for view in slice_views:
            view.render_window().SetSize(400, 300)
            view.render()
        axial = next(v for v in slice_views if v.get_view_node().GetLayoutName() == "Red")
        display = app.slicer_app.scene.GetNodeByID(axial.get_background_volume_id()).GetDisplayNode()
        start = (display.GetWindow(), display.GetLevel())
        interactor = axial.interactor()
        interactor.SetEventInformation(200, 150, 0, 0)
        interactor.InvokeEvent("MouseMoveEvent")
        interactor.InvokeEvent("LeftButtonPressEvent")
        for step in range(1, 10):
            interactor.SetEventInformation(200 + 10 * step, 150 + 5 * step, 0, 0)
            interactor.InvokeEvent("MouseMoveEvent")
        interactor.InvokeEvent("LeftButtonReleaseEvent")
        assert display.GetWindow() > start[0] and display.GetLevel() != start[1], (start, display.GetWindow())

        others = [v for v in slice_views if v is not axial]
        offsets = [v.get_slice_value() for v in others]
        axial_offset = axial.get_slice_value()
        interactor.SetEventInformation(120, 90, 0, 1)  # shift held
        interactor.InvokeEvent("MouseMoveEvent")
        assert axial.get_slice_value() == axial_offset
        assert all(v.get_slice_value() != o for v, o in zip(others, offsets)), offsets
    finally:
        app.shutdown()
