"""Self-test scenarios shared by the Slicer module's ``MedFusionTest`` and the pytest suite on slicer-core.

Each scenario builds small synthetic CT-, MR- and PET-like volumes of one phantom with a known rigid
misalignment (written into the moving volume's header, so the truth is exact), runs
``MedFusionLogic.process`` and checks: the fused volume lies on the fixed grid and is not empty, the
registration transform node aligns the moving volume within tolerance of the truth, the metrics table holds
the 16 metrics, the slice views show fixed + fused, and the inputs are untouched.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.core.options import MODE

PHANTOM_TOLERANCE_MM = 3.0  # about one phantom voxel (2.5 x 2.5 x 3 mm)


def add_volume(scene, image: sitk.Image, name: str, modality: str | None = None):
    from MedFusionLib.mrml.nodes import update_volume_from_image

    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    update_volume_from_image(node, image)
    node.CreateDefaultDisplayNodes()
    if modality:
        node.SetAttribute("MedFusion.Modality", modality)
    return node


def phantom_nodes(scene, seed: int = 7) -> dict:
    """CT (fixed), MR T2 and PET (both moved by the known transform) as volume nodes, plus the truth."""
    from MedFusionLib.samples.pet import make_phantom_pet
    from MedFusionLib.samples.phantom import make_phantom_pair

    pair = make_phantom_pair(seed)
    return {
        "ct": add_volume(scene, pair.ct, "Phantom CT", "ct"),
        "mr": add_volume(scene, pair.mr, "Phantom MR T2", "mr"),
        "pet": add_volume(scene, make_phantom_pet(seed), "Phantom PET", "pet"),
        "truth": pair.true_transform,
        "mask": pair.brain_mask,
    }


def torch_available() -> bool:
    """Whether torch can be imported, found without importing it (a GUI process must not load torch just to
    ask; Slicer's extension build machines have none)."""
    return _findable("torch")


def runtime_available() -> bool:
    """Whether a deep method can run here: torch or ONNX Runtime is installed (found, not imported)."""
    return torch_available() or _findable("onnxruntime")


def _findable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def deep_method_ready(name: str) -> bool:
    """True when the method's runtime is installed (onnxruntime for its ONNX graph, else torch) and its shipped
    graph or weights are present."""
    import importlib.util

    from MedFusionLib.inference.weights import weight_path

    if weight_path(name, ".onnx").exists():
        return importlib.util.find_spec("onnxruntime") is not None
    return torch_available() and weight_path(name).exists()


def _default_method() -> dict:
    from MedFusionLib.fusion import describe_methods

    return next(m for m in describe_methods() if m["default"])


def contract_method() -> str:
    """The default method whenever it can run here (classical, or deep with torch or ONNX Runtime installed:
    a missing weight file or a failing run then fails the self-test loudly), else the classical one (Slicer's
    extension build machines have neither)."""
    default = _default_method()
    if default["family"] == "classical" or runtime_available():
        return default["name"]
    return pick_methods()["classical"]


def scripting_contract(logic, scene) -> object:
    """``process(fixed, moving, method, mode="slice", registration="rigid")`` on the phantom gives a fused
    volume, a registration transform within tolerance of the truth and the 16-metric table; returns the result."""
    data = phantom_nodes(scene)
    result = logic.process(data["ct"], data["mr"], method=contract_method(), mode="slice", registration="rigid")
    check(result.fusedVolumeNode is not None, "no fused volume")
    check(result.transformNode is not None, "no registration transform")
    check(
        result.metricsTableNode is not None and result.metricsTableNode.GetNumberOfRows() == 16,
        "the metrics table does not hold the 16 metrics",
    )
    error = registration_error_mm(result.transformNode, data["truth"], data["mask"])
    check(error <= PHANTOM_TOLERANCE_MM, f"registration error {error:.2f} mm > {PHANTOM_TOLERANCE_MM} mm")
    return result


def pick_methods() -> dict:
    """A classical method (the default when classical) and a deep one: the default when it is deep and torch
    or ONNX Runtime is installed, else one whose weights are present (None when there is none)."""
    from MedFusionLib.fusion import describe_methods

    methods = describe_methods()
    classical = [m for m in methods if m["family"] == "classical"]
    deep = [m for m in methods if m["family"] != "classical" and deep_method_ready(m["name"])]
    default = [m for m in classical if m["default"]]
    default_deep = [m for m in methods if m["default"] and m["family"] != "classical" and runtime_available()]
    return {
        "classical": (default or classical)[0]["name"],
        "deep": (default_deep or deep)[0]["name"] if default_deep or deep else None,
        "modes": {m["name"]: m["modes"] for m in methods},
    }


def snapshot(node) -> dict:
    from MedFusionLib.mrml.nodes import snapshot as node_snapshot

    return node_snapshot(node)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def check_untouched(node, before: dict) -> None:
    after = snapshot(node)
    check(np.array_equal(after["voxels"], before["voxels"]), f"{node.GetName()}: voxels changed")
    check(np.allclose(after["ijk_to_ras"], before["ijk_to_ras"]), f"{node.GetName()}: geometry changed")


def registration_error_mm(transform_node, truth: sitk.Transform, mask: sitk.Image) -> float:
    """Mean distance over the mask between where the node and the truth send fixed points (ITK frame)."""
    from MedFusionLib.mrml.transforms import itk_from_transform_node
    from MedFusionLib.samples.phantom import mean_displacement_error

    return mean_displacement_error(itk_from_transform_node(transform_node), truth, mask)


def check_result(
    scene,
    result,
    fixed,
    moving_nodes,
    before: dict,
    *,
    truth=None,
    mask=None,
    tolerance_mm: float = PHANTOM_TOLERANCE_MM,
    display_mode: str = "overlay",
) -> dict:
    """All the checks of one run; returns what was measured."""
    from MedFusionLib.metrics import METRIC_KEYS
    from MedFusionLib.mrml.nodes import ijk_to_ras
    from MedFusionLib.mrml.tables import table_rows

    measured = {}
    fused = result.fusedVolumeNode
    check(fused is not None and fused.GetScene() is scene, "no fused volume node in the scene")
    check(
        fused.GetImageData().GetDimensions() == fixed.GetImageData().GetDimensions(),
        "fused volume not on the fixed grid (dimensions)",
    )
    check(np.allclose(ijk_to_ras(fused), ijk_to_ras(fixed)), "fused volume not on the fixed grid (IJK-to-RAS)")
    check(fused.GetTransformNodeID() == fixed.GetTransformNodeID(), "fused volume not under the fixed parent")
    import slicer

    voxels = slicer.util.arrayFromVolume(fused)
    check(
        np.isfinite(voxels).all() and float(voxels.std()) > 1.0 and float(voxels.max()) > 10.0,
        "fused volume is empty or constant",
    )
    rows = table_rows(result.metricsTableNode)
    check([r[0] for r in rows] == list(METRIC_KEYS), f"metrics table rows {[r[0] for r in rows]}")
    check(len(rows) == 16, f"{len(rows)} metric rows, 16 expected")
    check(all(r[2] in ("higher", "lower") for r in rows), "metric directions missing")
    check(sum(np.isfinite(r[1]) for r in rows) >= 14, "metric values missing")
    measured["metrics"] = {r[0]: r[1] for r in rows}
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")):
        composite = scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
        if display_mode == "overlay":
            check(composite.GetBackgroundVolumeID() == fixed.GetID(), "slice view background is not the fixed volume")
            check(composite.GetForegroundVolumeID() == fused.GetID(), "slice view foreground is not the fused volume")
        else:
            check(composite.GetBackgroundVolumeID() == fused.GetID(), "slice view background is not the fused volume")
    measured["views"] = scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")
    for node in [fixed] + list(moving_nodes):
        check_untouched(node, before[node.GetID()])
    if result.registration != "none":
        for node, tnode in zip(moving_nodes, result.transformNodes):
            check(
                tnode is not None and node.GetParentTransformNode() is tnode,
                f"{node.GetName()}: registration transform not set as its parent",
            )
        if truth is not None and result.transformNode.IsLinear():
            error = registration_error_mm(result.transformNode, truth, mask)
            measured["registration_error_mm"] = error
            check(error <= tolerance_mm, f"registration error {error:.2f} mm > {tolerance_mm} mm")
    else:
        check(result.transformNode is None, "a transform node was made without registration")
    return measured


def run_scenario(
    logic,
    scene,
    fixed,
    moving,
    *,
    method,
    mode,
    registration="rigid",
    truth=None,
    mask=None,
    tolerance_mm: float = PHANTOM_TOLERANCE_MM,
    **kwargs,
) -> dict:
    """Run the logic on two nodes and check everything; restores the moving node's parent afterwards."""
    before = {n.GetID(): snapshot(n) for n in (fixed, moving)}
    parent = moving.GetTransformNodeID()
    fractions = []
    result = logic.process(
        fixed,
        moving,
        method=method,
        mode=mode,
        registration=registration,
        progress=lambda f, m: fractions.append(f),
        **kwargs,
    )
    measured = check_result(
        scene,
        result,
        fixed,
        [moving],
        before,
        truth=truth,
        mask=mask,
        tolerance_mm=tolerance_mm,
        display_mode=kwargs.get("displayMode", "overlay"),
    )
    check(
        bool(fractions) and fractions[-1] == 1.0 and fractions == sorted(fractions), "progress not reported from 0 to 1"
    )
    measured["result"] = result
    moving.SetAndObserveTransformNodeID(parent)
    return measured


def run_all(logic, scene, log=print) -> list:
    """The self-test: classical and deep methods, slice and volume modes, CT-MR and CT-PET."""
    methods = pick_methods()
    data = phantom_nodes(scene)
    runs = []
    plan = [("classical", "ct", "mr"), ("deep", "ct", "pet")]
    for family, fixed_key, moving_key in plan:
        name = methods[family]
        if name is None:
            log(f"no {family} fusion method is ready (registered, with torch and weights): {family} scenario skipped")
            continue
        for mode in MODE.values:
            if mode not in methods["modes"][name]:
                log(f"{name} has no {mode} mode: skipped")
                continue
            log(f"{name} ({family}), {mode} mode: {data[fixed_key].GetName()} + {data[moving_key].GetName()}")
            try:
                measured = run_scenario(
                    logic,
                    scene,
                    data[fixed_key],
                    data[moving_key],
                    method=name,
                    mode=mode,
                    registration="rigid",
                    truth=data["truth"],
                    mask=data["mask"],
                )
            except MedFusionError as err:
                default = name == _default_method()["name"]  # the default must run wherever it can: never skipped
                if family == "deep" and not default and "weights" in str(err) and "not found" in str(err):
                    log(f"{name}, {mode} mode skipped: {err}")
                    continue
                raise
            runs.append((name, mode, measured))
    if not runs:
        raise MedFusionError("no scenario ran")
    return runs
