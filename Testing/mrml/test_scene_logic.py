"""MedFusion's MRML logic on the real MRML of slicer-core (no stand-in slicer, qt or ctk modules).

The scene is set up as the Slicer application sets it up: application logic with its colour nodes, the
layout logic (which creates the Red, Yellow and Green slice nodes) and one slice logic per view (which
creates their composite nodes). Skipped when slicer-core is not installed; CI installs it.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed (pip install slicer-core==5.11.0.6)")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the installed 'slicer' package is not slicer-core", allow_module_level=True)

from vtkmodules.vtkCommonCore import vtkCollection  # noqa: E402

from MedFusionLib import MedFusionLogic  # noqa: E402
from MedFusionLib.core.errors import (
    InputError,
    MedFusionError,
    OperationCancelled,  # noqa: E402
)
from MedFusionLib.metrics import METRIC_KEYS  # noqa: E402
from MedFusionLib.mrml import nodes as mrml_nodes  # noqa: E402
from MedFusionLib.mrml import selftest  # noqa: E402
from MedFusionLib.mrml.tables import table_rows  # noqa: E402
from MedFusionLib.mrml.transforms import itk_from_transform_node, transform_node_from_registration  # noqa: E402
from MedFusionLib.samples.phantom import (
    demo_transform,
    make_phantom_pair,
    mean_displacement_error,
    move_by_header,  # noqa: E402
)

FLIP = np.array([-1.0, -1.0, 1.0])


class App:
    """The parts of the Slicer application that MedFusion's logic talks to, built from slicer-core."""

    def __init__(self):
        self.scene = slicer.vtkMRMLScene()
        slicer.mrmlScene = self.scene
        self.app_logic = slicer.vtkSlicerApplicationLogic()
        self.app_logic.SetMRMLScene(self.scene)
        self.app_logic.GetColorLogic().SetMRMLScene(self.scene)
        self.app_logic.GetColorLogic().AddDefaultColorNodes()
        self.app_logic.SetSliceLogics(vtkCollection())
        self.app_logic.SetViewLogics(vtkCollection())
        slicer.vtkMRMLSliceNode.AddDefaultSliceOrientationPresets(self.scene)
        self.layout_logic = slicer.vtkMRMLLayoutLogic()
        self.layout_logic.SetMRMLScene(self.scene)
        self.slice_logics = []
        for name in ("Red", "Yellow", "Green"):
            logic = slicer.vtkMRMLSliceLogic()
            logic.SetMRMLApplicationLogic(self.app_logic)
            self.app_logic.GetSliceLogics().AddItem(logic)
            logic.SetMRMLScene(self.scene)
            logic.AddSliceNode(name)
            self.slice_logics.append(logic)
        self.logic = MedFusionLogic(applicationLogic=self.app_logic)

    def node_ids(self) -> set:
        return {self.scene.GetNthNode(i).GetID() for i in range(self.scene.GetNumberOfNodes())}


@pytest.fixture()
def app():
    application = App()
    yield application
    slicer.mrmlScene = None  # (scene.Clear with live slice and layout logics is not safe under slicer-core)


@pytest.fixture(scope="module")
def phantom():
    return make_phantom_pair()


def add(app, image, name, modality=None):
    return selftest.add_volume(app.scene, image, name, modality)


# --- node <-> image geometry ----------------------------------------------------------------------------


def test_scene_has_three_slice_views(app):
    assert app.scene.GetNumberOfNodesByClass("vtkMRMLSliceNode") == 3
    assert app.scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode") == 3


def test_volume_roundtrip_keeps_geometry_and_ras_lps(app, phantom):
    node = add(app, phantom.mr, "MR")  # rotated, translated header
    ijk = mrml_nodes.ijk_to_ras(node)
    # voxel (0,0,0) in RAS is the LPS origin with x and y negated
    assert np.allclose(ijk[:3, 3], np.array(phantom.mr.GetOrigin()) * FLIP)
    image = mrml_nodes.volume_to_image(node)
    assert np.allclose(image.GetOrigin(), phantom.mr.GetOrigin())
    assert np.allclose(image.GetSpacing(), phantom.mr.GetSpacing())
    assert np.allclose(image.GetDirection(), phantom.mr.GetDirection())
    assert np.array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(phantom.mr))
    # a voxel centre lands at the same physical point in both conventions
    index = (5, 9, 13)
    ras = ijk @ np.array([*index, 1.0])
    assert np.allclose(ras[:3] * FLIP, phantom.mr.TransformIndexToPhysicalPoint(index))


def test_linear_parent_transform_is_honoured(app, phantom):
    node = add(app, phantom.ct, "CT")
    parent = app.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "shift")
    shift = np.eye(4)
    shift[:3, 3] = (10.0, -5.0, 2.0)  # RAS
    slicer.util.updateTransformMatrixFromArray(parent, shift)
    node.SetAndObserveTransformNodeID(parent.GetID())
    image = mrml_nodes.volume_to_image(node)
    assert np.allclose(np.array(image.GetOrigin()), np.array(phantom.ct.GetOrigin()) + np.array([-10.0, 5.0, 2.0]))


def test_nonlinear_parent_transform_is_hardened_on_a_clone(app, phantom):
    node = add(app, phantom.ct, "CT")
    grid = transform_node_from_registration(
        app.scene, sitk.CompositeTransform([demo_transform(), _bspline(phantom.ct)]), phantom.ct, "warp"
    )
    node.SetAndObserveTransformNodeID(grid.GetID())
    before = app.node_ids()
    image = mrml_nodes.volume_to_image(node)
    assert app.node_ids() == before  # the temporary clone is gone
    assert node.GetParentTransformNode() is grid and node.GetImageData().GetDimensions() == phantom.ct.GetSize()
    # Slicer resampled the warped volume onto a grid around where it now appears: the same values are there
    array = sitk.GetArrayViewFromImage(image)
    assert min(image.GetSize()) > 10 and array.max() > 1000 and array.min() < -900


# --- transforms in Slicer's convention ------------------------------------------------------------------


def _bspline(reference):
    bspline = sitk.BSplineTransformInitializer(reference, [4, 4, 4])
    params = np.array(bspline.GetParameters())
    rng = np.random.default_rng(1)
    bspline.SetParameters(tuple(rng.normal(0.0, 2.0, params.size)))
    return bspline


def _points(image, n=50):
    rng = np.random.default_rng(0)
    size = np.array(image.GetSize())
    return [
        image.TransformContinuousIndexToPhysicalPoint(
            tuple(float(v) for v in rng.uniform(0.25, 0.75) * size * rng.uniform(0.8, 1.2, 3))
        )
        for _ in range(n)
    ]


def test_linear_transform_node_aligns_moving_to_fixed(app, phantom):
    truth = demo_transform()
    node = transform_node_from_registration(app.scene, truth, phantom.ct, "reg")
    assert node.IsA("vtkMRMLLinearTransformNode")
    to_parent = node.GetTransformToParent()
    for p in _points(phantom.ct):
        moving_ras = np.array(truth.TransformPoint(p)) * FLIP
        assert np.allclose(to_parent.TransformPoint(moving_ras), np.array(p) * FLIP, atol=1e-6)
    back = itk_from_transform_node(node)
    assert mean_displacement_error(back, truth, phantom.brain_mask) < 1e-6


def test_linear_transform_composes_an_existing_parent(app, phantom):
    truth = demo_transform()
    prior = np.eye(4)
    prior[:3, 3] = (3.0, 4.0, -7.0)
    node = transform_node_from_registration(app.scene, truth, phantom.ct, "reg", moving_parent_to_world=prior)
    to_parent = node.GetTransformToParent()
    for p in _points(phantom.ct, 10):
        world_moving = np.array(truth.TransformPoint(p)) * FLIP  # where the moving point appeared
        local = np.linalg.inv(prior) @ np.array([*world_moving, 1.0])
        assert np.allclose(to_parent.TransformPoint(local[:3]), np.array(p) * FLIP, atol=1e-6)


def test_deformable_transform_becomes_a_grid_transform_node(app, phantom):
    composite = sitk.CompositeTransform([demo_transform(), _bspline(phantom.ct)])
    node = transform_node_from_registration(app.scene, composite, phantom.ct, "warp")
    assert node.IsA("vtkMRMLGridTransformNode")
    from_parent, to_parent = node.GetTransformFromParent(), node.GetTransformToParent()
    for p in _points(phantom.ct):
        fixed_ras = np.array(p) * FLIP
        moving_ras = np.array(composite.TransformPoint(p)) * FLIP
        assert np.allclose(from_parent.TransformPoint(fixed_ras), moving_ras, atol=0.05)
        assert np.allclose(to_parent.TransformPoint(moving_ras), fixed_ras, atol=0.1)


# --- the scripting contract -----------------------------------------------------------------------------


def test_process_registers_fuses_scores_and_shows(app, phantom):
    ct, mr = add(app, phantom.ct, "CT"), add(app, phantom.mr, "MR T2")
    layout = app.scene.GetFirstNodeByClass("vtkMRMLLayoutNode")
    layout.SetViewArrangement(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpTableView)  # a layout with a table view
    others = app.node_ids()
    before = {n.GetID(): selftest.snapshot(n) for n in (ct, mr)}
    result = app.logic.process(ct, mr, method=None, mode="slice", registration="rigid")
    measured = selftest.check_result(
        app.scene, result, ct, [mr], before, truth=phantom.true_transform, mask=phantom.brain_mask
    )
    assert measured["registration_error_mm"] <= selftest.PHANTOM_TOLERANCE_MM
    assert result.method == MedFusionLogic.defaultMethod()
    assert result.fusedVolumeNode.GetName() == f"CT + MR T2 fused ({result.method}, slice)"
    assert result.fusedVolumeNode.GetDisplayNode().GetColorNodeID() == "vtkMRMLColorTableNodeGrey"
    assert [r[0] for r in table_rows(result.metricsTableNode)] == list(METRIC_KEYS)
    assert app.app_logic.GetSelectionNode().GetActiveTableID() == result.metricsTableNode.GetID()
    assert app.scene.GetFirstNodeByClass("vtkMRMLTableViewNode").GetTableNodeID() == result.metricsTableNode.GetID()
    assert layout.GetViewArrangement() == slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpTableView  # layout untouched
    created = app.node_ids() - others
    assert created == {
        result.fusedVolumeNode.GetID(),
        result.fusedVolumeNode.GetDisplayNodeID(),
        result.transformNode.GetID(),
        result.metricsTableNode.GetID(),
    }
    # voxel values: the fused volume equals what the library computes on the same images
    assert np.allclose(
        slicer.util.arrayFromVolume(result.fusedVolumeNode), sitk.GetArrayFromImage(result.outcome.fused)
    )


def test_rerun_reuses_output_table_and_transform(app, phantom):
    ct, mr = add(app, phantom.ct, "CT"), add(app, phantom.mr, "MR")
    first = app.logic.process(ct, mr, registration="rigid", computeMetrics=True)
    count = app.scene.GetNumberOfNodes()
    second = app.logic.process(ct, mr, registration="rigid", mode="volume", outputNode=first.fusedVolumeNode)
    assert second.fusedVolumeNode is first.fusedVolumeNode
    assert second.metricsTableNode is first.metricsTableNode
    assert second.transformNode is first.transformNode  # the earlier result is redone, not stacked
    assert app.scene.GetNumberOfNodes() == count
    assert (
        mean_displacement_error(
            itk_from_transform_node(second.transformNode), phantom.true_transform, phantom.brain_mask
        )
        <= selftest.PHANTOM_TOLERANCE_MM
    )


def test_no_registration_and_fused_alone_display(app, phantom):
    ct, mr = add(app, phantom.ct, "CT"), add(app, phantom.mr, "MR")
    result = app.logic.process(ct, mr, registration="none", displayMode="fused", opacity=0.3)
    assert result.transformNode is None and mr.GetParentTransformNode() is None
    for i in range(3):
        composite = app.scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
        assert composite.GetBackgroundVolumeID() == result.fusedVolumeNode.GetID()
        assert composite.GetForegroundVolumeID() is None


def test_pet_gets_a_pet_colour_map_and_colour_fusion_gives_rgb(app, phantom):
    from MedFusionLib.samples.pet import make_phantom_pet

    ct, pet = add(app, phantom.ct, "CT"), add(app, make_phantom_pet(), "FDG PET")
    result = app.logic.process(ct, pet, registration="rigid", opacity=0.6)
    assert result.fusedVolumeNode.GetDisplayNode().GetColorNodeID() == "vtkMRMLPETProceduralColorNodePET-Heat"
    assert app.scene.GetNthNodeByClass(0, "vtkMRMLSliceCompositeNode").GetForegroundOpacity() == pytest.approx(0.6)
    rgb = app.logic.process(ct, pet, registration="none", colour="hot")
    node = rgb.fusedVolumeNode
    assert node.IsA("vtkMRMLVectorVolumeNode") and node.GetImageData().GetNumberOfScalarComponents() == 3
    array = slicer.util.arrayFromVolume(node)
    assert array.dtype == np.uint8 and array.shape == slicer.util.arrayFromVolume(ct).shape + (3,)
    assert (array[..., 0].astype(int) - array[..., 2]).max() > 50  # warm colours where PET is hot


def test_auto_colour_is_the_clinical_rule_colour_for_pet_grey_for_ct_and_mr(app, phantom):
    """The GUIs' default colour: the PET overlay in colour when an input is functional, grey for CT + MR."""
    from MedFusionLib.samples.pet import make_phantom_pet

    ct, mr = add(app, phantom.ct, "CT"), add(app, phantom.mr, "MR")
    pet = add(app, make_phantom_pet(), "FDG PET")
    coloured = app.logic.process(ct, pet, method="mean", colour="auto").fusedVolumeNode
    assert coloured.IsA("vtkMRMLVectorVolumeNode")
    array = slicer.util.arrayFromVolume(coloured).astype(int)
    assert ((array[..., 0] - array[..., 2] > 100) & (array[..., 0] - array[..., 1] > 30)).mean() > 0.01  # uptake
    assert (array[0, 0, 0] == 0).all()  # black background
    grey = app.logic.process(ct, mr, method="mean", colour="auto").fusedVolumeNode
    assert not grey.IsA("vtkMRMLVectorVolumeNode")
    assert grey.GetDisplayNode().GetColorNodeID() == "vtkMRMLColorTableNodeGrey"


def test_colour_legend_shows_the_overlay_scale_and_leaves_the_rgb_result_as_it_is(app, phantom):
    """Slicer's colour legend for a result: the colour overlay (RGB, no lookup table of its own) gets the overlay's
    scale from the threshold's colour to the peak's, in percent of the functional range, without changing a
    rendered pixel; a grey result's legend is its own colour table."""
    from vtk.util import numpy_support

    from MedFusionLib.core import colour
    from MedFusionLib.mrml import display
    from MedFusionLib.samples.pet import make_phantom_pet

    ct, pet = add(app, phantom.ct, "CT"), add(app, make_phantom_pet(), "FDG PET")
    node = app.logic.process(ct, pet, method="mean", colour="auto", opacity=1.0).fusedVolumeNode
    red = app.slice_logics[0]

    def rendered():
        # the layers' pipelines are rebuilt when the composite node's layers change (what a view does on its next
        # render): without that, the image computed before the result's display was set up would be compared
        composite = app.scene.GetNthNodeByClass(0, "vtkMRMLSliceCompositeNode")
        composite.SetForegroundVolumeID(None)
        composite.SetForegroundVolumeID(node.GetID())
        producer = red.GetImageDataConnection().GetProducer()
        producer.Update()
        return numpy_support.vtk_to_numpy(producer.GetOutputDataObject(0).GetPointData().GetScalars()).copy()

    before = rendered()
    legend = display.show_colour_legend(node, "auto", "FDG PET")
    assert legend.IsA("vtkMRMLColorLegendDisplayNode") and legend.GetVisibility()
    assert legend.GetPrimaryDisplayNode() is node.GetDisplayNode()
    assert slicer.vtkSlicerColorLogic.GetColorLegendDisplayNode(node) is legend
    assert legend.GetTitleText() == "FDG PET (pet scale, % of range)"
    table = node.GetDisplayNode().GetColorNode()
    assert table.GetNumberOfColors() == 256
    low, high = [0.0] * 4, [0.0] * 4
    table.GetColor(0, low)
    table.GetColor(255, high)
    expected = colour.overlay_colours(np.array([colour.OVERLAY_THRESHOLD, 1.0]), "pet") / 255.0
    assert np.allclose(low[:3], expected[0], atol=1 / 255) and np.allclose(high[:3], expected[1], atol=1 / 255)
    assert low[0] > low[1] and low[0] > low[2], "the threshold's colour should be red"
    assert tuple(node.GetDisplayNode().GetScalarRange()) == (50.0, 100.0)
    assert node.GetDisplayNode().GetScalarRangeFlag() != slicer.vtkMRMLDisplayNode.UseDirectMapping
    assert before.std() > 10 and np.array_equal(rendered(), before), "the legend changed the shown RGB result"
    assert display.show_colour_legend(node, "auto", "FDG PET") is legend
    assert app.scene.GetNumberOfNodesByClass("vtkMRMLColorLegendDisplayNode") == 1

    mr = add(app, phantom.mr, "MR")
    grey = app.logic.process(ct, mr, method="mean", colour="auto").fusedVolumeNode
    grey_legend = display.show_colour_legend(grey, "none")
    assert grey_legend.GetTitleText() == "fused intensity (Grey)"
    assert grey_legend.GetPrimaryDisplayNode().GetColorNodeID() == display.GREY


def test_fixed_under_a_parent_transform_keeps_the_output_with_it(app, phantom):
    ct, mr = add(app, phantom.ct, "CT"), add(app, phantom.mr, "MR")
    parent = app.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "fixed pose")
    shift = np.eye(4)
    shift[:3, 3] = (0.0, 12.0, 0.0)
    slicer.util.updateTransformMatrixFromArray(parent, shift)
    ct.SetAndObserveTransformNodeID(parent.GetID())
    result = app.logic.process(ct, mr, registration="none")
    assert result.fusedVolumeNode.GetTransformNodeID() == parent.GetID()
    assert np.allclose(mrml_nodes.ijk_to_ras(result.fusedVolumeNode), mrml_nodes.ijk_to_ras(ct))


def test_three_inputs_through_extra_nodes(app, phantom):
    from MedFusionLib.samples.pet import make_phantom_pet

    ct, mr, pet = add(app, phantom.ct, "CT"), add(app, phantom.mr, "MR"), add(app, make_phantom_pet(), "PET")
    before = {n.GetID(): selftest.snapshot(n) for n in (ct, mr, pet)}
    result = app.logic.process(ct, mr, method="mean", registration="none", extraNodes=[pet])
    selftest.check_result(app.scene, result, ct, [mr, pet], before)
    assert result.transformNodes == [None, None]
    assert result.fusedVolumeNode.GetName() == "CT + MR + PET fused (mean, slice)"
    assert result.fusedVolumeNode.GetDisplayNode().GetColorNodeID().endswith("PET-Heat")


def test_cancel_leaves_the_scene_as_it_was(app, phantom):
    ct, mr = add(app, phantom.ct, "CT"), add(app, phantom.mr, "MR")
    before = app.node_ids()
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(OperationCancelled):
        app.logic.process(ct, mr, registration="rigid", cancel=cancel)
    assert app.node_ids() == before and mr.GetParentTransformNode() is None


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"registration": "elastic"}, MedFusionError),
        ({"mode": "3d"}, MedFusionError),
        ({"method": "no-such-method"}, MedFusionError),
        ({"colour": "purple"}, MedFusionError),
    ],
)
def test_bad_options_fail_before_any_work(app, phantom, kwargs, error):
    ct, mr = add(app, phantom.ct, "CT"), add(app, phantom.mr, "MR")
    before = app.node_ids()
    with pytest.raises(error):
        app.logic.process(ct, mr, **kwargs)
    assert app.node_ids() == before


def test_bad_inputs_are_refused(app, phantom):
    ct = add(app, phantom.ct, "CT")
    with pytest.raises(InputError):
        app.logic.process(ct, ct)
    with pytest.raises(InputError):
        app.logic.process(ct, None)
    mr = add(app, phantom.mr, "MR")
    with pytest.raises(InputError):
        app.logic.process(ct, mr, outputNode=mr)


def test_self_test_scenarios(app):
    """What MedFusionTest runs inside Slicer: classical and deep methods, slice and volume modes."""
    messages = []
    runs = selftest.run_all(app.logic, app.scene, log=messages.append)
    families = {name for name, _, _ in runs}
    assert selftest.pick_methods()["classical"] in families
    if selftest.pick_methods()["deep"] is None:
        pytest.skip("no deep method with weights yet; classical scenarios passed: " + "; ".join(messages))


# --- real data ------------------------------------------------------------------------------------------


def test_real_spm_t1_fixed_t2_rigidly_moved(app, shared_data):
    spm = shared_data / "volumes" / "spm"
    t1 = sitk.ReadImage(str(spm / "T1.nii.gz"), sitk.sitkFloat32)
    t2 = sitk.ReadImage(str(spm / "T2.nii.gz"), sitk.sitkFloat32)
    mask = sitk.ReadImage(str(spm / "mask_ICV.nii.gz"))
    mask = sitk.Resample(sitk.Cast(mask > 0.5, sitk.sitkUInt8), t1, sitk.Transform(), sitk.sitkNearestNeighbor)
    truth = sitk.Euler3DTransform()
    centre = t1.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in t1.GetSize()])
    truth.SetCenter(centre)
    truth.SetRotation(*np.deg2rad([5.0, -4.0, 7.0]))
    truth.SetTranslation((7.0, -5.0, 4.0))
    fixed = add(app, t1, "SPM T1")
    moving = add(app, move_by_header(t2, truth), "SPM T2 moved")
    before = {n.GetID(): selftest.snapshot(n) for n in (fixed, moving)}
    result = app.logic.process(fixed, moving, registration="rigid", mode="slice")
    measured = selftest.check_result(
        app.scene, result, fixed, [moving], before, truth=truth, mask=mask, tolerance_mm=1.5
    )
    assert measured["registration_error_mm"] <= 1.5
    assert len(table_rows(result.metricsTableNode)) == 16
    assert all(math.isfinite(v) for v in measured["metrics"].values())


# --- the worker process the GUI runs ---------------------------------------------------------------------


def test_worker_process_runs_the_job_the_module_starts(app, phantom, tmp_path):
    """The module's path: writeJob -> MedFusionLib.apps.worker in another process (polled) -> applyJob."""
    from MedFusionLib.apps.worker import WorkerProcess

    ct, mr = add(app, phantom.ct, "CT"), add(app, phantom.mr, "MR")
    nodes = [ct, mr]
    before = {n.GetID(): selftest.snapshot(n) for n in nodes}
    scene_before = app.node_ids()
    modalities = app.logic.writeJob(
        tmp_path, nodes, method=None, mode="slice", axis=2, registration="rigid", colour="auto", computeMetrics=True
    )
    assert modalities == ["ct", "mr"] and app.node_ids() == scene_before  # nothing in the scene yet
    process = WorkerProcess(tmp_path)
    fractions = []
    while not process.finished:
        fractions += [m["progress"] for m in process.poll()]
        time.sleep(0.02)
    assert process.final == {"done": True}, process.log
    assert fractions and fractions == sorted(fractions) and fractions[-1] == 1.0
    result = app.logic.applyJob(tmp_path, nodes, modalities=modalities)
    selftest.check_result(app.scene, result, ct, [mr], before, truth=phantom.true_transform, mask=phantom.brain_mask)


def test_worker_process_cancel_and_kill(app, phantom, tmp_path):
    from MedFusionLib.apps.worker import WorkerProcess

    app.logic.writeJob(tmp_path, [add(app, phantom.ct, "CT"), add(app, phantom.mr, "MR")], registration="rigid")
    process = WorkerProcess(tmp_path)
    process.cancel()  # the cancel file: the worker stops at its next check
    assert process.wait(timeout=120) == {"cancelled": True}
    (tmp_path / "cancel").unlink()
    process = WorkerProcess(tmp_path)
    process.kill()  # what the module does when the worker does not stop
    assert process.wait(timeout=60) == {"cancelled": True}
    assert not (tmp_path / "outcome.json").exists()


def test_worker_cancel_file_stops_the_job(tmp_path, phantom):
    import io as _io

    from MedFusionLib.pipeline import job as worker

    worker.write_job(tmp_path, [phantom.ct, phantom.mr], registration="rigid")
    (tmp_path / worker.CANCEL).touch()
    stream = _io.StringIO()
    assert worker.run_job(tmp_path, stream) == 2
    assert worker.parse_line(stream.getvalue().splitlines()[-1]) == {"cancelled": True}
    assert not (tmp_path / "fused.nrrd").exists()


# --- views, deformable, saved scenes ---------------------------------------------------------------------


def _half(image):
    """The image at half resolution (same physical extent): keeps the slow tests fast."""
    size = [s // 2 for s in image.GetSize()]
    spacing = [s * 2 for s in image.GetSpacing()]
    return sitk.Resample(
        image,
        size,
        sitk.Transform(),
        sitk.sitkLinear,
        image.GetOrigin(),
        spacing,
        image.GetDirection(),
        0,
        image.GetPixelID(),
    )


def test_slice_views_are_fitted_and_render_the_overlay(app, phantom):
    from vtk.util import numpy_support

    ct, mr = add(app, phantom.ct, "CT"), add(app, phantom.mr, "MR")
    red = app.slice_logics[0]
    result = app.logic.process(ct, mr, registration="rigid", opacity=0.5)
    assert red.GetBackgroundLayer().GetVolumeNode() is ct
    assert red.GetForegroundLayer().GetVolumeNode() is result.fusedVolumeNode
    extent = max(np.array(phantom.ct.GetSize()[:2]) * np.array(phantom.ct.GetSpacing()[:2]))
    assert red.GetSliceNode().GetFieldOfView()[0] == pytest.approx(extent, rel=0.15)  # fitted by FitSliceToAll
    producer = red.GetImageDataConnection().GetProducer()
    producer.Update()
    rgba = numpy_support.vtk_to_numpy(producer.GetOutputDataObject(0).GetPointData().GetScalars())
    assert rgba.shape[1] == 4 and rgba[:, :3].max() > 100 and rgba[:, :3].std() > 10


def test_deformable_process_gives_a_grid_transform_node_equal_to_the_registration(app, phantom):
    ct, mr = add(app, _half(phantom.ct), "CT"), add(app, _half(phantom.mr), "MR")
    result = app.logic.process(ct, mr, registration="deformable", mode="volume", computeMetrics=False)
    node = result.transformNode
    assert node.IsA("vtkMRMLGridTransformNode") and mr.GetParentTransformNode() is node
    assert result.metricsTableNode is None
    itk = result.outcome.transforms[0]
    from_parent = node.GetTransformFromParent()
    mask = _half(phantom.brain_mask)
    index = np.argwhere(sitk.GetArrayViewFromImage(mask) > 0)[::25, ::-1]
    for i in index:
        p = mask.TransformIndexToPhysicalPoint([int(v) for v in i])
        assert np.allclose(
            from_parent.TransformPoint(np.array(p) * FLIP), np.array(itk.TransformPoint(p)) * FLIP, atol=0.05
        )


def test_result_nodes_survive_a_saved_scene(app, phantom, tmp_path):
    ct, mr = add(app, phantom.ct, "CT"), add(app, phantom.mr, "MR")
    result = app.logic.process(ct, mr, registration="rigid")
    for node, ext in (
        (result.fusedVolumeNode, ".nrrd"),
        (result.transformNode, ".h5"),
        (result.metricsTableNode, ".tsv"),
        (ct, ".nrrd"),
        (mr, ".nrrd"),
    ):
        node.AddDefaultStorageNode()
        node.GetStorageNode().SetFileName(str(tmp_path / f"{node.GetID()}{ext}"))
        assert node.GetStorageNode().WriteData(node)
    app.scene.SetRootDirectory(str(tmp_path))
    app.scene.SetURL(str(tmp_path / "scene.mrml"))
    assert app.scene.Commit()
    scene = slicer.vtkMRMLScene()
    slicer.vtkMRMLSliceNode.AddDefaultSliceOrientationPresets(scene)
    scene.SetURL(str(tmp_path / "scene.mrml"))
    assert scene.Import()
    fused = scene.GetNodeByID(result.fusedVolumeNode.GetID())
    assert fused.GetAttribute("MedFusion.Method") == result.method
    assert np.allclose(slicer.util.arrayFromVolume(fused), slicer.util.arrayFromVolume(result.fusedVolumeNode))
    assert fused.GetNodeReference("medfusionMetrics").GetNumberOfRows() == 16
    moving = scene.GetNodeByID(mr.GetID())
    assert np.allclose(
        slicer.util.arrayFromTransformMatrix(moving.GetParentTransformNode()),
        slicer.util.arrayFromTransformMatrix(result.transformNode),
        atol=1e-6,
    )


# --- cross-checks against Slicer's own readers and writers ---------------------------------------------


def test_slicer_writers_agree_with_the_conversions(app, phantom, tmp_path):
    """Slicer's storage nodes write volumes and transforms in ITK's LPS convention: reading them back with
    SimpleITK must give exactly the library's images and registration transforms."""
    ct, mr = add(app, phantom.ct, "CT"), add(app, phantom.mr, "MR")
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    app.scene.AddNode(storage)
    storage.SetFileName(str(tmp_path / "mr.nrrd"))
    assert storage.WriteData(mr)
    written = sitk.ReadImage(str(tmp_path / "mr.nrrd"))
    image = mrml_nodes.volume_to_image(mr)
    assert np.allclose(written.GetOrigin(), image.GetOrigin(), atol=1e-4)
    assert np.allclose(written.GetDirection(), image.GetDirection(), atol=1e-6)
    assert np.allclose(written.GetSpacing(), image.GetSpacing(), atol=1e-6)

    for registration, name, composite in (("rigid", "reg.tfm", False), (None, "warp.h5", True)):
        if composite:
            truth = sitk.CompositeTransform([demo_transform(), _bspline(phantom.ct)])
            node = transform_node_from_registration(app.scene, truth, phantom.ct, "warp")
        else:
            truth = app.logic.process(ct, mr, registration=registration, computeMetrics=False).outcome.transforms[0]
            node = mr.GetParentTransformNode()
        node.AddDefaultStorageNode()
        node.GetStorageNode().SetFileName(str(tmp_path / name))
        assert node.GetStorageNode().WriteData(node)
        read = sitk.ReadTransform(str(tmp_path / name))
        for p in _points(phantom.ct, 20):
            assert np.allclose(read.TransformPoint(p), truth.TransformPoint(p), atol=0.05), name


def test_real_spect_with_a_flipped_axis_keeps_its_geometry(app, shared_data):
    path = shared_data / "volumes" / "spm" / "SPECT.nii.gz"
    spect = sitk.ReadImage(str(path), sitk.sitkFloat32)
    assert spect.GetDirection()[0] < 0  # stored with x flipped
    node = add(app, spect, "SPM SPECT")
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    app.scene.AddNode(storage)
    storage.SetFileName(str(path))
    loaded = app.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "SPECT read by Slicer")
    assert storage.ReadData(loaded)
    assert np.allclose(mrml_nodes.ijk_to_ras(loaded), mrml_nodes.ijk_to_ras(node), atol=1e-4)
    back = mrml_nodes.volume_to_image(loaded)
    assert np.allclose(back.GetDirection(), spect.GetDirection(), atol=1e-6)
    assert np.allclose(back.GetOrigin(), spect.GetOrigin(), atol=1e-3)
    assert np.allclose(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(spect))


# --- what the GUIs start with, and how a job starts ---------------------------------------------------------


def test_registration_default_follows_the_header_check(app, phantom):
    """The sample's MR is moved by its header (11 mm): rigid, said in one line; aligned inputs: none."""
    from MedFusionLib.samples.pet import make_phantom_pet

    ct, mr = add(app, phantom.ct, "CT"), add(app, phantom.mr, "MR")
    pet = add(app, make_phantom_pet(), "PET")  # the sample PET lies on the (moved) MR
    registration, note = app.logic.suggestRegistration([ct, mr])
    assert registration == "rigid" and "11 mm apart" in note and "\n" not in note
    assert app.logic.suggestRegistration([mr, pet])[0] == "none"
    assert app.logic.suggestRegistration([mr, pet, ct])[0] == "rigid"  # a third input counts too


def test_a_failed_job_start_leaves_no_temp_folder(app, phantom, tmp_path, monkeypatch):
    """A bad option, or a worker that does not start: the job folder (copies of the inputs) is removed."""
    import tempfile

    from MedFusionLib.mrml.jobs import start_job

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ct, mr = add(app, phantom.ct, "CT"), add(app, phantom.mr, "MR")

    def no_worker(folder):
        assert any((tmp_path / folder).iterdir()), "the inputs should have been written before the launch"
        raise OSError("PythonSlicer not found")

    with pytest.raises(MedFusionError, match="unknown mode"):
        start_job(app.logic, [ct, mr], no_worker, mode="4d")
    with pytest.raises(OSError, match="PythonSlicer"):
        start_job(app.logic, [ct, mr], no_worker, method="mean")
    assert list(tmp_path.iterdir()) == []
    folder, job, modalities = start_job(app.logic, [ct, mr], lambda folder: "started", method="mean")
    assert job == "started" and modalities == ["ct", "mr"] and any(Path(folder).iterdir())


def test_view_layouts_and_linked_views(app):
    from MedFusionLib.core.options import VIEW_LAYOUT
    from MedFusionLib.mrml import display

    layout_node = app.layout_logic.GetLayoutNode()
    for value in VIEW_LAYOUT.values:
        layout_node.SetViewArrangement(display.slicer_layout(value))
        assert layout_node.GetViewArrangement() == display.slicer_layout(value)
    assert display.slicer_layout("grid") == slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpView
    display.link_views(app.scene)
    slices = [app.scene.GetNthNodeByClass(i, "vtkMRMLSliceNode") for i in range(3)]
    assert all(node.GetSliceVisible() for node in slices)
    crosshair = app.scene.GetFirstNodeByClass("vtkMRMLCrosshairNode")
    assert crosshair.GetCrosshairMode() == crosshair.ShowBasic
    assert crosshair.GetCrosshairBehavior() == crosshair.OffsetJumpSlice
    display.window_level_by_drag(app.scene)  # the web app's left-drag: Slicer's window/level mouse mode
    interaction = app.scene.GetFirstNodeByClass("vtkMRMLInteractionNode")
    assert interaction.GetCurrentInteractionMode() == interaction.AdjustWindowLevel


def test_self_test_runs_the_default_method_when_a_runtime_is_present_and_fails_loudly(app, monkeypatch):
    from MedFusionLib.fusion import default_method_name

    assert selftest.runtime_available()  # torch is installed in the test environment
    assert selftest.contract_method() == default_method_name()
    assert selftest.pick_methods()["deep"] == default_method_name()

    default = default_method_name()

    def scenario(logic, scene, fixed, moving, *, method, mode, **_):
        if method == default:
            raise MedFusionError(f"{method}: weights not found at /nowhere/{method}.pt")
        return {"metrics": {}, "views": 3}

    monkeypatch.setattr(selftest, "run_scenario", scenario)
    with pytest.raises(MedFusionError, match="weights not found"):  # not skipped: the self-test fails
        selftest.run_all(app.logic, app.scene, log=lambda message: None)
