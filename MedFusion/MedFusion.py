"""MedFusion: multimodal medical image registration, fusion and fusion-quality metrics for 3D Slicer.

The module (this file) holds the Slicer GUI, the parameter node and the self-test. All scene logic lives
in ``MedFusionLib`` (``MedFusionLib.mrml``), which imports neither Qt nor this file, so that it runs and is
tested on slicer-core and can be scripted from Slicer's Python console::

    from MedFusionLib import MedFusionLogic
    result = MedFusionLogic().process(fixedNode, movingNode, method=None, mode="slice", registration="rigid")
"""

import importlib.util
import logging
import os
import shutil
from typing import Annotated

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLVectorVolumeNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

# MedFusionLib sits beside this file once the extension is built (see CMakeLists.txt). Importing its
# logic imports numpy and SimpleITK only (both bundled with Slicer); torch and scipy are installed on
# first use, never here.
from MedFusionLib.core.options import (
    AXIS,
    COLOUR,
    DEVICE,
    DISPLAY_MODE,
    LAYER_OPACITY,
    MODE,
    OVERLAY_MAP,
    REGISTRATION,
    VIEW_LAYOUT,
    shown_opacity,
)
from MedFusionLib.mrml.logic import MedFusionLogic as MedFusionCoreLogic

REQUIREMENTS = "requirements.txt"


#
# MedFusion
#


class MedFusion(ScriptedLoadableModule):
    """Module metadata shown in Slicer's module list and help panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("MedFusion")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Registration")]
        self.parent.dependencies = []
        self.parent.contributors = ["MedFusion developers"]
        self.parent.helpText = _("""
Registers and fuses multimodal volumes (CT, MRI, PET, SPECT) and scores the result with 16 fusion-quality
metrics. Pick a fixed and a moving volume, a fusion method (classical or deep learning), the mode (slice by
slice or whole volume) and the registration (none, rigid, affine or deformable), then press Apply.
The moving volume is aligned by a transform set as its parent (not hardened unless asked); the fused
volume is created on the fixed volume's grid and shown over it in every slice view; the metrics appear
below and in the table view. The inputs are never modified. The work runs in a separate process: Slicer
stays responsive and Apply turns into Cancel.
From the Python console: <code>from MedFusionLib import MedFusionLogic;
MedFusionLogic().process(fixedNode, movingNode, method=None, mode="slice", registration="rigid")</code>.
See docs/slicer.md in the MedFusion repository for a walk-through with screenshots.
""")
        self.parent.acknowledgementText = _("""
MedFusion follows the taxonomy and the evaluation protocol of the review of deep learning for multimodal
medical image fusion (classical, CNN, encoder-decoder, GAN, decision-map, feature-extraction and
multi-encoder methods, and its 14 metrics plus VIF and SCD). Methods: guided filtering fusion (Li, Kang and
Hu, IEEE TIP 2013); Laplacian pyramid fusion (Burt and Adelson 1983); IFCNN (Zhang et al., Information
Fusion 2020); DenseFuse (Li and Wu, IEEE TIP 2019); registration with ITK/SimpleITK (Mattes mutual
information). Test data: SPM12 templates, Harvard Whole Brain Atlas (Johnson and Becker).
""")


#
# Parameter node
#


@parameterNodeWrapper
class MedFusionParameterNode:
    """The module's settings, stored in the scene so that a saved scene restores them."""

    fixedVolume: vtkMRMLScalarVolumeNode
    movingVolume: vtkMRMLScalarVolumeNode
    extraVolume: vtkMRMLScalarVolumeNode
    method: str = ""  # empty: the default method
    # choices and defaults from MedFusionLib.core.options; the node stores values, never display labels
    # (the GUIs' defaults, ``shown_default``: PET/SPECT shown the clinical way, the views a radiologist reads)
    mode: Annotated[str, Choice(list(MODE.values))] = MODE.shown_default
    axis: Annotated[int, Choice(list(AXIS.values))] = AXIS.shown_default  # combo filled in code (AXIS.labels)
    registration: Annotated[str, Choice(list(REGISTRATION.values))] = REGISTRATION.shown_default
    opacity: Annotated[float, WithinRange(0.0, 1.0)] = LAYER_OPACITY
    colour: Annotated[str, Choice(list(COLOUR.values))] = COLOUR.shown_default
    overlayMap: Annotated[str, Choice(list(OVERLAY_MAP.values))] = OVERLAY_MAP.shown_default
    displayMode: Annotated[str, Choice(list(DISPLAY_MODE.values))] = DISPLAY_MODE.shown_default
    viewLayout: Annotated[str, Choice(list(VIEW_LAYOUT.values))] = VIEW_LAYOUT.shown_default
    device: Annotated[str, Choice(list(DEVICE.values))] = DEVICE.shown_default
    computeMetrics: bool = True
    hardenTransform: bool = False
    forceRegistration: bool = False  # keep a registration the plausibility check refuses ("Fuse anyway")
    # connectGui sets the output selector's nodeTypes from this annotation: both kinds, or colour fusion's
    # RGB (vector) results could not be chosen
    outputVolume: vtkMRMLScalarVolumeNode | vtkMRMLVectorVolumeNode


#
# Background job: the heavy work in a PythonSlicer subprocess
#


class MedFusionJob:
    """Runs ``PythonSlicer -m MedFusionLib.apps.worker FOLDER`` and feeds its progress back on the GUI thread.

    The process handling is ``MedFusionLib.apps.worker.WorkerProcess`` (tested on slicer-core); this class only
    polls it from a QTimer, so Slicer's event loop keeps running.
    """

    POLL_MS = 100
    # the B-spline optimiser honours a stop only after its current iteration and line search (2 to 5 s): past
    # this delay the job's process tree is killed, so Cancel takes at most ~2 s in every stage
    KILL_AFTER_MS = 500

    def __init__(self, folder, onProgress, onFinished):
        from MedFusionLib.apps.worker import WorkerProcess

        self._onProgress = onProgress
        self._onFinished = onFinished
        moduleDir = os.path.dirname(os.path.abspath(__file__))  # MedFusionLib is installed beside this file
        self.worker = WorkerProcess(
            folder,
            python=shutil.which("PythonSlicer") or "PythonSlicer",
            pythonPath=moduleDir,
            launch=lambda args, env: slicer.util.launchConsoleProcess(
                args, useStartupEnvironment=False, updateEnvironment=env
            ),
        )
        self._timer = qt.QTimer()
        self._timer.setInterval(self.POLL_MS)
        self._timer.timeout.connect(self._poll)
        self._timer.start()

    def _poll(self):
        for message in self.worker.poll():
            self._onProgress(message["progress"], message.get("message", ""))
        for line in self.worker.log:
            logging.info(f"MedFusion worker: {line}")
        self.worker.log.clear()
        if self.worker.finished:
            self._timer.stop()
            if "traceback" in self.worker.final:
                logging.error(self.worker.final["traceback"])
            self._onFinished(self.worker.final)

    def cancel(self):
        """Ask the worker to stop at its next check; kill its process tree if it has not stopped within a few
        seconds (the worker runs under the PythonSlicer launcher: killing the launcher alone would not do)."""
        self.worker.cancel()
        qt.QTimer.singleShot(self.KILL_AFTER_MS, self.worker.kill)

    def close(self):
        """Stop polling, kill the process tree and delete the job folder (copies of the inputs: patient data).
        For module cleanup and scene close; no result is delivered afterwards."""
        self._timer.stop()
        self.worker.close()


#
# MedFusionWidget
#


class MedFusionWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The module panel: inputs, method, mode, registration, output, Apply/Cancel, progress, metrics."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._job = None
        self._jobContext = None
        self._methods = []
        self._result = None  # the last Apply's result (each Apply makes its own unless an output is chosen)
        self._inputs = None  # the inputs the registration default was suggested for

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/MedFusion.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = MedFusionLogic()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.populateMethods()
        self.ui.methodComboBox.currentIndexChanged.connect(self.onMethodChanged)
        for value in AXIS.values:
            self.ui.axisComboBox.addItem(AXIS.label(value), value)
        self.ui.axisComboBox.currentIndexChanged.connect(self.onAxisChanged)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.opacitySliderWidget.valueChanged.connect(self.onOpacityChanged)
        self.ui.viewLayoutComboBox.currentIndexChanged.connect(self.onViewLayoutChanged)
        self.ui.progressBar.setRange(0, 100)
        self.ui.progressBar.visible = False

        self.initializeParameterNode()

    def cleanup(self) -> None:
        self._discardJob()
        self.removeObservers()

    def _discardJob(self) -> None:
        """End a running job at once and forget it: no orphan process, no temp copy of the inputs."""
        job, self._job, self._jobContext = self._job, None, None
        if job is not None:
            job.close()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)

    def onSceneStartClose(self, caller, event) -> None:
        # the job's nodes are about to go: its result must not land in the next scene
        running = self._job is not None
        self._discardJob()
        if running:
            self.setRunning(False)
            self.ui.statusLabel.text = _("Cancelled: the scene was closed.")
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    # -- parameter node ----------------------------------------------------------------------------------
    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.fixedVolume:
            first = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if first:
                self._parameterNode.fixedVolume = first

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            # binds every widget that has the SlicerParameterName property in the .ui
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
            self._selectMethod(self._parameterNode.method)
            self.ui.axisComboBox.currentIndex = list(AXIS.values).index(self._parameterNode.axis)
            self._checkCanApply()

    def _checkCanApply(self, caller=None, event=None) -> None:
        if self._job is not None:
            return
        p = self._parameterNode
        ready = bool(p and p.fixedVolume and p.movingVolume and p.fixedVolume != p.movingVolume)
        if ready:
            self._suggestRegistration()
        self.ui.applyButton.enabled = ready
        self.ui.applyButton.toolTip = (
            _("Register, fuse and score.") if ready else _("Select a fixed and a moving volume.")
        )

    def _suggestRegistration(self) -> None:
        """New inputs: the registration their headers call for, said under the choice (the user may change it)."""
        p = self._parameterNode
        nodes = [p.fixedVolume, p.movingVolume] + ([p.extraVolume] if p.extraVolume else [])
        inputs = tuple(node.GetID() for node in nodes)
        if inputs == self._inputs:
            return
        self._inputs = inputs
        try:
            p.registration, note = self.logic.suggestRegistration(nodes)
        except Exception as err:  # a volume without image data yet: Apply reports it
            note = str(err)
        self.ui.registrationNoteLabel.text = note

    # -- methods -----------------------------------------------------------------------------------------
    def populateMethods(self) -> None:
        combo = self.ui.methodComboBox
        combo.blockSignals(True)
        combo.clear()
        try:
            self._methods = self.logic.methods()
        except ImportError as err:  # a dependency (torch, scipy) is not installed yet: Apply installs it
            self._methods = []
            combo.addItem(_("default (dependencies are installed on Apply)"), "")
            combo.setItemData(0, str(err), qt.Qt.ToolTipRole)
        for method in self._methods:
            label = method["name"] + (_(" (default)") if method["default"] else "")
            combo.addItem(label, method["name"])
            tooltip = f"{method['name']} [{method['family']}; modes: {', '.join(method['modes'])}; inputs: {method['inputs']}]\n{method['description']}"
            combo.setItemData(combo.count - 1, tooltip, qt.Qt.ToolTipRole)
        combo.blockSignals(False)
        self.onMethodChanged(combo.currentIndex)

    def _selectMethod(self, name) -> None:
        combo = self.ui.methodComboBox
        for index in range(combo.count):
            if combo.itemData(index) == name or (not name and self._methods and self._methods[index]["default"]):
                combo.currentIndex = index
                return

    def onMethodChanged(self, index) -> None:
        combo = self.ui.methodComboBox
        name = combo.itemData(index) if index >= 0 else ""
        description = ""
        for method in self._methods:
            if method["name"] == name:
                description = f"{method['family']}: {method['description']}"
        self.ui.methodDescriptionLabel.text = description
        if self._parameterNode and name is not None and self._parameterNode.method != name:
            self._parameterNode.method = name

    def onAxisChanged(self, index) -> None:
        if self._parameterNode and index >= 0:
            self._parameterNode.axis = int(self.ui.axisComboBox.itemData(index))

    # -- display -----------------------------------------------------------------------------------------
    def onOpacityChanged(self, value) -> None:
        p = self._parameterNode
        if p and self._result is not None and p.displayMode == "overlay":
            self.logic.setOverlayOpacity(value)

    def onViewLayoutChanged(self, index) -> None:
        from MedFusionLib.mrml.display import link_views, slicer_layout

        if self._parameterNode and index >= 0:
            slicer.app.layoutManager().setLayout(slicer_layout(self._parameterNode.viewLayout))
            link_views(slicer.mrmlScene)

    # -- apply / cancel ----------------------------------------------------------------------------------
    def setRunning(self, running: bool) -> None:
        self.ui.applyButton.text = _("Cancel") if running else _("Apply")
        self.ui.applyButton.enabled = True
        self.ui.progressBar.visible = running
        for widget in (
            self.ui.inputsCollapsibleButton,
            self.ui.fusionCollapsibleButton,
            self.ui.outputCollapsibleButton,
        ):
            widget.enabled = not running
        if not running:
            self._checkCanApply()

    def onApplyButton(self) -> None:
        if self._job is not None:
            self.ui.statusLabel.text = _("Cancelling...")
            self._job.cancel()
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to start the fusion."), waitCursor=True):
            p = self._parameterNode
            nodes = [p.fixedVolume, p.movingVolume] + ([p.extraVolume] if p.extraVolume else [])
            method = p.method or None
            from MedFusionLib.mrml.jobs import start_job

            self.logic.ensureDependencies(method)
            if not self._methods:
                self.populateMethods()
            options = dict(
                method=method,
                mode=p.mode,
                registration=p.registration,
                axis=p.axis,
                colour=p.colour,
                computeMetrics=p.computeMetrics,
                device=p.device,
                force_registration=p.forceRegistration,
            )
            output = p.outputVolume
            if output is not None and output.IsA("vtkMRMLVectorVolumeNode") != (p.colour != "none"):
                output = p.outputVolume = None  # scalar <-> RGB: a new output volume of the right kind
            self.logic.validate(
                nodes,
                method=method,
                mode=p.mode,
                registration=p.registration,
                axis=options["axis"],
                outputNode=output,
                colour=p.colour,
                overlayMap=p.overlayMap,
                displayMode=p.displayMode,
            )
            # the temp folder is removed on every failure path (start_job), so no copy of the inputs stays
            folder, self._job, modalities = start_job(
                self.logic,
                nodes,
                lambda folder: MedFusionJob(folder, self.onJobProgress, self.onJobFinished),
                prefix="MedFusion-",
                **options,
            )
            self._jobContext = dict(nodes=nodes, folder=folder, modalities=modalities)
            self.ui.progressBar.value = 0
            self.ui.statusLabel.text = _("Starting...")
            self.setRunning(True)

    def onJobProgress(self, fraction, message) -> None:
        self.ui.progressBar.value = int(round(100 * fraction))
        self.ui.statusLabel.text = message

    @staticmethod
    def _showLegend(result, context, colourUsed) -> None:
        """Slicer's colour legend in the views: the overlay's scale for a colour result (naming the functional
        input), the colour table of a grey one."""
        from MedFusionLib.mrml.display import show_colour_legend
        from MedFusionLib.pipeline.job import functional_index

        index = functional_index(context["modalities"])
        functional = context["nodes"][index].GetName() if index is not None else ""
        show_colour_legend(result.fusedVolumeNode, colourUsed, functional)

    def onJobFinished(self, message) -> None:
        job, context, self._job, self._jobContext = self._job, self._jobContext, None, None
        if context is None:  # discarded (scene closed, module cleaned up): nothing to deliver
            return
        try:
            if message.get("done") and self._parameterNode is None:
                self.ui.statusLabel.text = _("Discarded: the scene changed while the job ran.")
            elif message.get("done"):
                with slicer.util.tryWithErrorDisplay(_("Failed to load the fusion result."), waitCursor=True):
                    p = self._parameterNode
                    result = self.logic.applyJob(
                        context["folder"],
                        context["nodes"],
                        outputNode=p.outputVolume,
                        opacity=p.opacity,
                        colour=p.colour,
                        overlayMap=p.overlayMap,
                        displayMode=p.displayMode,
                        modalities=context["modalities"],
                        hardenTransform=p.hardenTransform,
                    )
                    # the output selector keeps what the user chose: empty gives each Apply its own result
                    self._result = result
                    colourUsed = p.colour if result.outcome and result.outcome.rgb is not None else "none"
                    p.opacity = shown_opacity(colourUsed)
                    self.logic.setOverlayOpacity(p.opacity)
                    self._showLegend(result, context, colourUsed)
                    if result.metricsTableNode is not None:
                        self.ui.metricsTableView.setMRMLTableNode(result.metricsTableNode)
                    self.ui.statusLabel.text = _("Done: {name}").format(name=result.fusedVolumeNode.GetName())
            elif message.get("cancelled"):
                self.ui.statusLabel.text = _("Cancelled; the scene was not changed.")
            elif message.get("implausible"):
                self.ui.statusLabel.text = _("Stopped: the registration looks wrong.")
                slicer.util.errorDisplay(
                    _(
                        "The registration looks wrong: {why}. Check that the inputs show the same anatomy, or tick "
                        "'Fuse anyway' and press Apply again to keep it."
                    ).format(why=message["implausible"])
                )
            else:
                self.ui.statusLabel.text = _("Failed.")
                slicer.util.errorDisplay(_("MedFusion failed: {error}").format(error=message.get("error", "?")))
        finally:
            if job is not None:
                job.close()  # no process of the job and no copy of the inputs stays behind
            shutil.rmtree(context["folder"], ignore_errors=True)
            self.setRunning(False)


#
# MedFusionLogic
#


class MedFusionLogic(ScriptedLoadableModuleLogic, MedFusionCoreLogic):
    """Slicer's module logic: the scene logic of MedFusionLib plus the parameter node and dependencies.

    No GUI code. Scripting: ``MedFusionLogic().process(fixedNode, movingNode, ...)`` (see MedFusionLib).
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        MedFusionCoreLogic.__init__(self)

    def getParameterNode(self):
        return MedFusionParameterNode(super().getParameterNode())

    def ensureDependencies(self, method=None) -> None:
        """Check what the chosen method needs before any work, without importing it and never installing
        silently: Slicer 5.11+ asks through ``slicer.packaging.pip_ensure`` (skipped under --testing); older
        releases get a one-line message saying what to install (no pip run on the GUI thread)."""
        missing = [
            requirement
            for module, requirement in (
                ("scipy", "scipy"),
                ("PIL", "pillow"),
                ("psutil", "psutil"),
                ("onnxruntime", "onnxruntime"),  # runs the deep methods' networks
            )
            if importlib.util.find_spec(module) is None
        ]
        if missing:
            packaging = getattr(slicer, "packaging", None)
            if packaging is not None and hasattr(packaging, "pip_ensure"):
                requirements = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Resources", REQUIREMENTS)
                packaging.pip_ensure(packaging.load_requirements(requirements), requester="MedFusion")
            else:
                packages = " ".join(missing)
                raise RuntimeError(
                    _(
                        "MedFusion needs {packages}: install them from the Python console with "
                        "slicer.util.pip_install('{packages}'), then press Apply again."
                    ).format(packages=packages)
                )
        if self.methodNeedsTorch(method):
            self.ensureTorch()

    @staticmethod
    def methodNeedsTorch(method) -> bool:
        """Only the methods not exported to ONNX run torch (in the worker process); the others need onnxruntime."""
        from MedFusionLib.fusion import describe_methods

        for description in describe_methods():
            if description["name"] == method or (not method and description["default"]):
                return description["needs_torch"]
        return True

    @staticmethod
    def ensureTorch():
        """PyTorch through the PyTorch extension (it picks a CPU or CUDA build). Torch is looked up, not
        imported: the fusion runs in the worker process, and the GUI process should not load torch to ask."""
        if importlib.util.find_spec("torch") is not None:
            return
        try:
            import PyTorchUtils
        except ImportError:
            raise RuntimeError(
                _(
                    "This fusion method needs PyTorch: install the PyTorch extension from the "
                    "Extensions Manager, or choose a classical method."
                )
            )
        torchLogic = PyTorchUtils.PyTorchUtilsLogic()
        if torchLogic.installTorch(askConfirmation=True) is None:
            raise RuntimeError(_("PyTorch was not installed; choose a classical method or install it."))


#
# MedFusionTest
#


class MedFusionTest(ScriptedLoadableModuleTest):
    """Self-test: synthetic CT-, MR- and PET-like volumes with a known misalignment, a classical and a deep
    method in slice and volume modes; the same scenarios run in CI on slicer-core (Testing/)."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_MedFusion_scenarios()
        self.setUp()
        self.test_MedFusion_scripting_contract()

    def test_MedFusion_scenarios(self):
        from MedFusionLib.mrml import selftest

        self.delayDisplay("Running MedFusion scenarios on synthetic CT, MR and PET volumes")
        runs = selftest.run_all(MedFusionLogic(), slicer.mrmlScene, log=self.delayDisplay)
        for name, mode, measured in runs:
            self.delayDisplay(
                f"{name}, {mode}: registration error {measured.get('registration_error_mm', 0):.2f} mm, "
                f"{len(measured['metrics'])} metrics, {measured['views']} slice views"
            )
        self.assertTrue(runs)
        self.delayDisplay("Scenarios passed")

    def test_MedFusion_scripting_contract(self):
        from MedFusionLib import MedFusionLogic as ScriptingLogic
        from MedFusionLib.mrml import selftest

        # the default method when it can run here, else a classical one (build machines have no torch)
        self.delayDisplay(f"Scripting contract with {selftest.contract_method()}")
        result = selftest.scripting_contract(ScriptingLogic(), slicer.mrmlScene)
        layoutManager = slicer.app.layoutManager()
        for name in layoutManager.sliceViewNames():
            composite = layoutManager.sliceWidget(name).mrmlSliceCompositeNode()
            self.assertEqual(composite.GetForegroundVolumeID(), result.fusedVolumeNode.GetID())
        self.delayDisplay("Scripting contract passed")
