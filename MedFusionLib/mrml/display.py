"""Show the fused volume in every slice view with a fitting colour map, and the metrics table.

Background = fixed volume (grey, its own display untouched), foreground = fused volume at the chosen
opacity ("overlay"), or the fused volume alone ("fused"). The fused volume is shown in grey when all inputs
are anatomical, in Slicer's PET heat map when a functional input (PET, SPECT) is among them, or as RGB for
colour fusion. Works on every ``vtkMRMLSliceCompositeNode`` of the scene, i.e. every slice view the layout
logic and the slice logics created (what ``slicer.util.setSliceViewerLayers`` does, on any scene).
"""

from __future__ import annotations

import re

import numpy as np

from MedFusionLib.core.options import FUNCTIONAL_MODALITIES

GREY = "vtkMRMLColorTableNodeGrey"
PET_HEAT = "vtkMRMLPETProceduralColorNodePET-Heat"

_NAME_PATTERNS = (
    ("pet", r"(^|[^a-z])pet([^a-z]|$)"),
    ("spect", r"(^|[^a-z])spect([^a-z]|$)"),
    ("ct", r"(^|[^a-z])ct([^a-z]|$)"),
    ("mr", r"(^|[^a-z])(mri?|t1w?|t2w?|pd|flair|epi)([^a-z]|$)"),
)


def guess_node_modality(node) -> str:
    """'pet', 'spect', 'ct', 'mr' or 'auto', from a ``MedFusion.Modality`` or ``DICOM.Modality`` attribute,
    else from the node's name."""
    for attribute in ("MedFusion.Modality", "DICOM.Modality"):
        value = (node.GetAttribute(attribute) or "").strip().lower()
        if value in ("pt", "pet"):
            return "pet"
        if value in ("nm", "spect"):
            return "spect"
        if value in ("ct", "mr"):
            return value
    name = (node.GetName() or "").lower()
    for modality, pattern in _NAME_PATTERNS:
        if re.search(pattern, name):
            return modality
    return "auto"


def colour_node_id(overlay_map: str, modalities) -> str:
    """Colour map ID for the scalar fused volume (``OVERLAY_MAP``: auto, grey or pet)."""
    if overlay_map == "grey":
        return GREY
    if overlay_map == "pet":
        return PET_HEAT
    return PET_HEAT if any(m in FUNCTIONAL_MODALITIES for m in modalities) else GREY


def configure_fused_display(node, colour_id: str | None) -> None:
    """Display node for the fused volume: the colour map and a fixed 0..255 window (fused values' scale)."""
    if node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    if node.IsA("vtkMRMLVectorVolumeNode"):
        return  # RGB: the vector display node shows the colours as they are
    scene = node.GetScene()
    if colour_id and scene is not None and scene.GetNodeByID(colour_id) is None:
        colour_id = GREY if scene.GetNodeByID(GREY) is not None else None
    was = display.StartModify()
    if colour_id:
        display.SetAndObserveColorNodeID(colour_id)
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(0.0, 255.0)
    display.EndModify(was)


def ensure_display(node) -> None:
    """A volume without a display node cannot be shown; give it the default one (nothing else changes)."""
    if node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()


def show_in_slice_views(scene, background, foreground, opacity: float, app_logic=None, fit: bool = True) -> int:
    """Set the layers of every slice view; returns the number of views set."""
    composites = [
        scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
        for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode"))
    ]
    for composite in composites:
        was = composite.StartModify()
        composite.SetBackgroundVolumeID(background.GetID() if background is not None else None)
        composite.SetForegroundVolumeID(foreground.GetID() if foreground is not None else None)
        composite.SetForegroundOpacity(float(opacity))
        composite.EndModify(was)
    if fit and app_logic is not None and hasattr(app_logic, "FitSliceToAll"):
        app_logic.FitSliceToAll()
    return len(composites)


def show_table(table_node, app_logic=None) -> None:
    """Make the table the active one and show it in the table view (when the app has one)."""
    if app_logic is None:
        return
    selection = app_logic.GetSelectionNode()
    if selection is not None:
        selection.SetActiveTableID(table_node.GetID())
        app_logic.PropagateTableSelection()


_SLICER_LAYOUTS = {  # options.VIEW_LAYOUT -> Slicer's view arrangement (vtkMRMLLayoutNode constant name)
    "grid": "SlicerLayoutFourUpView",  # axial and 3-D above, coronal and sagittal below
    "three": "SlicerLayoutConventionalView",  # the three slice views in a row (the 3-D view above them)
    "axial": "SlicerLayoutOneUpRedSliceView",
    "3d": "SlicerLayoutOneUp3DView",
}


def slicer_layout(view_layout: str) -> int:
    """Slicer's view arrangement for a ``VIEW_LAYOUT`` choice (what ``layoutManager().setLayout`` takes)."""
    import slicer

    from MedFusionLib.core.options import VIEW_LAYOUT

    return int(getattr(slicer.vtkMRMLLayoutNode, _SLICER_LAYOUTS[VIEW_LAYOUT.check(view_layout)]))


def link_views(scene) -> None:
    """A radiologist's defaults: the slice planes (with the fused overlay on them) shown in the 3-D view, as
    Slicer's eye button does, and a crosshair linking the slice views (Shift + move puts the other views'
    slices through the point under the mouse)."""
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceNode")):
        scene.GetNthNodeByClass(i, "vtkMRMLSliceNode").SetSliceVisible(True)
    crosshair = scene.GetFirstNodeByClass("vtkMRMLCrosshairNode")
    if crosshair is None:
        crosshair = scene.AddNewNodeByClass("vtkMRMLCrosshairNode")
    crosshair.SetCrosshairMode(crosshair.ShowBasic)
    crosshair.SetCrosshairBehavior(crosshair.OffsetJumpSlice)


def window_level_by_drag(scene) -> None:
    """Slicer's window/level mouse mode (its toolbar's "Window/level" button): a left-drag in a slice view
    changes the window (left-right) and level (up-down) of the volume under the mouse, Ctrl + drag sets them
    from a region, a double-click resets them. For front-ends without Slicer's toolbar (the web app)."""
    interaction = scene.GetFirstNodeByClass("vtkMRMLInteractionNode")
    if interaction is None:
        interaction = scene.AddNewNodeByClass("vtkMRMLInteractionNode")
    interaction.SetCurrentInteractionMode(interaction.AdjustWindowLevel)


def overlay_scale_table(scene, colour_map: str):
    """A colour table node with the colour overlay's scale, from the threshold's colour to the peak's (the same
    control points that painted the RGB result, ``core.colour.overlay_colours``); one per map, reused."""
    from MedFusionLib.core import colour

    name = f"MedFusion {colour_map} overlay scale"
    table = scene.GetFirstNodeByName(name)
    if table is not None and table.IsA("vtkMRMLColorTableNode"):
        return table
    rgb = colour.overlay_colours(np.linspace(colour.OVERLAY_THRESHOLD, 1.0, 256), colour_map) / 255.0
    table = scene.AddNewNodeByClass("vtkMRMLColorTableNode", name)
    table.SetTypeToUser()
    table.SetNumberOfColors(len(rgb))
    for index, (red, green, blue) in enumerate(rgb):
        table.SetColor(index, red, green, blue, 1.0)
    return table


def show_colour_legend(node, colour_used: str, functional_name: str = ""):
    """Slicer's colour legend (a ``vtkMRMLColorLegendDisplayNode``, drawn by its colour legend displayable
    manager in the views) for a fused volume. A colour overlay result is RGB and has no lookup table, so its
    display node is given the overlay's scale table, its range in percent of the functional image's range
    (the threshold to 100 %; RGB voxels are shown as they are whatever the table); a grey result's legend is its
    own colour table over the 0..255 window. ``colour_used``: the colour the result was made with ("none": grey)."""
    from slicer import vtkMRMLColorLegendDisplayNode, vtkMRMLDisplayNode, vtkSlicerColorLogic

    from MedFusionLib.core import colour

    display, scene = node.GetDisplayNode(), node.GetScene()
    if node.IsA("vtkMRMLVectorVolumeNode"):
        colour_map = "pet" if colour_used == "auto" else colour_used
        was = display.StartModify()
        display.SetAndObserveColorNodeID(overlay_scale_table(scene, colour_map).GetID())
        display.SetScalarRangeFlag(vtkMRMLDisplayNode.UseManualScalarRange)
        display.SetScalarRange(100.0 * colour.OVERLAY_THRESHOLD, 100.0)
        display.EndModify(was)
        title, label_format = f"{functional_name or 'functional input'} ({colour_map} scale, % of range)", "%.0f %%"
    else:
        table = display.GetColorNode()
        title, label_format = f"fused intensity ({table.GetName() if table is not None else 'grey'})", "%.0f"
    if scene.CreateNodeByClass("vtkMRMLColorLegendDisplayNode") is None:  # registered by Slicer's Colors module
        scene.RegisterNodeClass(vtkMRMLColorLegendDisplayNode())  # (its logic's SetMRMLScene); a bare scene lacks it
    legend = vtkSlicerColorLogic.AddDefaultColorLegendDisplayNode(node)
    legend.SetTitleText(title)
    legend.SetLabelFormat(label_format)
    legend.SetVisibility(True)
    return legend
