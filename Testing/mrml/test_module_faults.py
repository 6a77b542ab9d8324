"""The Slicer module's faults of issue 11, each pinned by a test: behavioural on slicer-core where the code is
scene logic or library, static where only Slicer's Qt could run it (no stand-in qt or slicer modules).

The worker's process tree, orphan and temp-folder handling and volume-mode Cancel are behavioural tests in
``Testing/apps/test_worker_process.py``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from MedFusionLib.core import options

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "MedFusion" / "MedFusion.py"
UI = ROOT / "MedFusion" / "Resources" / "UI" / "MedFusion.ui"


def _tree() -> ast.Module:
    return ast.parse(MODULE.read_text(encoding="utf-8"), filename=str(MODULE))


def _class(name: str) -> ast.ClassDef:
    return next(n for n in _tree().body if isinstance(n, ast.ClassDef) and n.name == name)


def _method(class_name: str, name: str) -> ast.FunctionDef:
    return next(n for n in _class(class_name).body if isinstance(n, ast.FunctionDef) and n.name == name)


def _fields() -> dict:
    return {n.target.id: n for n in _class("MedFusionParameterNode").body if isinstance(n, ast.AnnAssign)}


# --- static: what only Slicer's Qt could run ----------------------------------------------------------------


def test_output_volume_field_accepts_scalar_and_rgb_volumes():
    """connectGui takes the selector's nodeTypes from the annotation: a scalar-only annotation hid RGB results."""
    annotation = ast.unparse(_fields()["outputVolume"].annotation)
    assert "vtkMRMLScalarVolumeNode" in annotation and "vtkMRMLVectorVolumeNode" in annotation, annotation
    assert annotation.startswith(("Union[", "Optional[Union[")) or "|" in annotation, annotation


def test_gui_process_never_imports_torch_nor_pip_installs_unasked():
    imported = set()
    calls = set()
    for node in ast.walk(_tree()):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call):
            calls.add(ast.unparse(node.func))
    assert "torch" not in imported, "the GUI process imports torch (use importlib.util.find_spec)"
    assert "__import__" not in calls
    assert not any(c.endswith("pip_install") for c in calls), "pip_install runs without asking, on the GUI thread"
    ensure_torch = ast.unparse(_method("MedFusionLogic", "ensureTorch"))
    assert "find_spec('torch')" in ensure_torch


def test_cleanup_and_scene_close_end_the_job_and_delete_its_folder():
    """Both discard the job through MedFusionJob.close (process tree killed, job folder deleted; the close
    itself is tested behaviourally on WorkerProcess.close), and a discarded job delivers nothing."""
    for method in ("cleanup", "onSceneStartClose"):
        assert "self._discardJob()" in ast.unparse(_method("MedFusionWidget", method)), method
    assert "job.close()" in ast.unparse(_method("MedFusionWidget", "_discardJob"))
    assert "self.worker.close()" in ast.unparse(_method("MedFusionJob", "close"))
    finished = ast.unparse(_method("MedFusionWidget", "onJobFinished"))
    assert "if context is None" in finished and "self._parameterNode is None" in finished


def test_a_failed_start_cleans_the_temp_folder_and_results_are_not_overwritten_silently():
    """The module starts its job through mrml.jobs.start_job (which removes the folder on every failure path,
    tested on slicer-core), never through a bare mkdtemp; an Apply does not make its result the next Apply's
    output; a stuck cancel is killed after 0.5 s."""
    source = MODULE.read_text(encoding="utf-8")
    assert "mkdtemp" not in source
    apply = ast.unparse(_method("MedFusionWidget", "onApplyButton"))
    assert "start_job(" in apply
    finished = ast.unparse(_method("MedFusionWidget", "onJobFinished"))
    assert "p.outputVolume =" not in finished and "outputNode=p.outputVolume" in finished
    job = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == "MedFusionJob")
    kill = next(n for n in job.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "KILL_AFTER_MS")
    assert ast.literal_eval(kill.value) <= 500


def test_the_ui_and_the_web_page_offer_the_choices_of_core_options():
    """The .ui holds no choice lists of its own (the parameter node fills the combos from core/options, the
    axis combo is filled from AXIS in code), and the parameter node's choices and defaults are the schema's."""
    root = ET.parse(UI).getroot()
    bound = {}
    for widget in root.iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[prop.findtext("string")] = widget
    fields = _fields()
    for field, choice in (
        ("mode", options.MODE),
        ("registration", options.REGISTRATION),
        ("colour", options.COLOUR),
        ("overlayMap", options.OVERLAY_MAP),
        ("displayMode", options.DISPLAY_MODE),
        ("viewLayout", options.VIEW_LAYOUT),
        ("axis", options.AXIS),
        ("device", options.DEVICE),
    ):
        name = choice_name(choice)
        annotation = ast.unparse(fields[field].annotation)
        assert f"Choice(list({name}.values))" in annotation, (field, annotation)
        assert ast.unparse(fields[field].value) == f"{name}.shown_default", field
        if field in bound:
            assert bound[field].get("class") == "QComboBox"
            assert not bound[field].findall("item"), f"the .ui lists its own {field} items"
    web = ast.parse((ROOT / "MedFusionLib" / "apps" / "web" / "app.py").read_text(encoding="utf-8"))
    table = next(n.value for n in web.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "PAGE_CHOICES")
    used = {ast.unparse(row.elts[2]) for row in table.elts}  # (items key, value key, the choice) per select
    for choice in (
        options.MODE,
        options.AXIS,
        options.REGISTRATION,
        options.COLOUR,
        options.OVERLAY_MAP,
        options.DISPLAY_MODE,
        options.VIEW_LAYOUT,
        options.DEVICE,
    ):
        assert f"options.{choice_name(choice)}" in used, choice.name


def choice_name(choice: options.Choice) -> str:
    return next(k for k, v in vars(options).items() if v is choice)


# --- behavioural, on slicer-core ----------------------------------------------------------------------------

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed (pip install slicer-core==5.11.0.6)")


def test_a_result_is_not_written_into_a_closed_scene(tmp_path):
    """Closing the scene while the worker runs removes the job's nodes: applying the finished job must refuse
    with one line and add nothing, instead of writing into the next scene."""
    from MedFusionLib.core.errors import InputError
    from MedFusionLib.mrml import selftest
    from MedFusionLib.mrml.logic import MedFusionLogic
    from MedFusionLib.pipeline.job import run_job
    from MedFusionLib.samples.phantom import make_phantom_pair

    scene = slicer.vtkMRMLScene()
    slicer.mrmlScene = scene
    try:
        pair = make_phantom_pair(7)
        ct = selftest.add_volume(scene, pair.ct, "CT", "ct")
        mr = selftest.add_volume(scene, pair.mr, "MR", "mr")
        logic = MedFusionLogic(scene=scene)
        logic.writeJob(tmp_path, [ct, mr], method="mean", mode="slice", registration="rigid", computeMetrics=False)
        with open(tmp_path / "log", "w") as log:
            assert run_job(tmp_path, log) == 0
        for node in (ct, mr):  # what closing the scene does to the job's input nodes
            scene.RemoveNode(node)
        before = scene.GetNumberOfNodes()
        with pytest.raises(InputError, match="no longer in the scene"):
            logic.applyJob(tmp_path, [ct, mr])
        assert scene.GetNumberOfNodes() == before
    finally:
        slicer.mrmlScene = None


SELF_TEST_WITHOUT_TORCH = textwrap.dedent("""
    import sys
    sys.modules["torch"] = None  # import torch fails, find_spec finds nothing: an extension build machine
    import slicer
    from vtkmodules.vtkCommonCore import vtkCollection
    from MedFusionLib.mrml import selftest
    from MedFusionLib.mrml.logic import MedFusionLogic

    scene = slicer.vtkMRMLScene()
    slicer.mrmlScene = scene
    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(scene)
    app_logic.GetColorLogic().SetMRMLScene(scene)
    app_logic.GetColorLogic().AddDefaultColorNodes()
    app_logic.SetSliceLogics(vtkCollection())
    slicer.vtkMRMLSliceNode.AddDefaultSliceOrientationPresets(scene)
    layout = slicer.vtkMRMLLayoutLogic()
    layout.SetMRMLScene(scene)
    for name in ("Red", "Yellow", "Green"):
        logic = slicer.vtkMRMLSliceLogic()
        logic.SetMRMLApplicationLogic(app_logic)
        app_logic.GetSliceLogics().AddItem(logic)
        logic.SetMRMLScene(scene)
        logic.AddSliceNode(name)
    logic = MedFusionLogic(scene=scene, applicationLogic=app_logic)
    runs = selftest.run_all(logic, scene, log=print)        # MedFusionTest.test_MedFusion_scenarios
    selftest.scripting_contract(logic, scene)                # MedFusionTest.test_MedFusion_scripting_contract
    assert "torch" not in [m for m in sys.modules if sys.modules[m] is not None], "torch was imported"
    print("SELF-TEST PASSED", [(name, mode) for name, mode, _ in runs], selftest.contract_method())
""")


def test_self_test_passes_without_torch():
    done = subprocess.run(
        [sys.executable, "-c", SELF_TEST_WITHOUT_TORCH], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert done.returncode == 0 and "SELF-TEST PASSED" in done.stdout, (done.stdout + done.stderr)[-3000:]


def test_extension_metadata_names_no_placeholder_and_its_resources_exist():
    """No invented repository URL (none is published): every URL derives from MEDFUSION_REPOSITORY_URL, and
    the files they name (top-level Resources/: extension icon, screenshots of the web app) exist."""
    import re

    from PIL import Image

    cmake = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    for text in (cmake, MODULE.read_text(encoding="utf-8")):
        assert "github.com/medfusion" not in text and "raw.githubusercontent.com" not in text
    urls = {
        name: value for name, value in re.findall(r'set\((EXTENSION_\w*URLS?|EXTENSION_HOMEPAGE)\s+"([^"]+)"\)', cmake)
    }
    assert set(urls) == {"EXTENSION_HOMEPAGE", "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS"}
    for value in urls.values():
        for url in value.split():
            assert url.startswith("${MEDFUSION_REPOSITORY_URL}/"), url
            path = ROOT / url.split("/main/", 1)[1]
            assert path.is_file(), path
    with Image.open(ROOT / "Resources" / "Icons" / "MedFusion.png") as icon:
        assert icon.size == (128, 128)
    assert len(list((ROOT / "Resources" / "Screenshots").glob("*.png"))) >= 2


def test_a_refused_registration_says_why_and_force_registration_keeps_it(tmp_path):
    """The worker's job: a registration the plausibility check refuses ends with the reason as its own field (the
    GUIs offer "Fuse anyway" on it), and the same job with ``force_registration`` fuses; the device option travels
    with the job. The module sends the device and the checkbox from its parameter node."""
    import io
    import json

    import numpy as np
    import SimpleITK as sitk

    from MedFusionLib.pipeline import job
    from MedFusionLib.samples.phantom import make_phantom_pair

    ct = make_phantom_pair(7).ct
    noise = sitk.GetImageFromArray(
        np.random.default_rng(0).random(sitk.GetArrayFromImage(ct).shape).astype(np.float32) * 1000
    )
    noise.CopyInformation(ct)
    unrelated = sitk.SmoothingRecursiveGaussian(noise, 4.0)
    options = dict(method="mean", registration="rigid", computeMetrics=False, device="cpu")
    refused, kept = tmp_path / "refused", tmp_path / "kept"
    job.write_job(refused, [ct, unrelated], **options)
    stream = io.StringIO()
    assert job.run_job(refused, stream) == 1
    message = json.loads(stream.getvalue().splitlines()[-1])
    assert message["implausible"].startswith("weak final similarity") and "registration implausible" in message["error"]
    assert not (refused / "fused.nrrd").exists()
    job.write_job(kept, [ct, unrelated], force_registration=True, **options)
    assert job.run_job(kept, io.StringIO()) == 0 and job.load_outcome(kept).transforms[0] is not None
    with pytest.raises(Exception, match="force_registration must be true or false"):
        job.write_job(tmp_path / "bad", [ct, unrelated], force_registration="yes")
    assert not (tmp_path / "bad").exists()

    sent = ast.unparse(_method("MedFusionWidget", "onApplyButton"))
    assert "device=p.device" in sent and "force_registration=p.forceRegistration" in sent
    assert "implausible" in ast.unparse(_method("MedFusionWidget", "onJobFinished"))
