"""``MedFusionLogic``: register, fuse and score volume nodes of the MRML scene (no Qt).

Scripting contract (Slicer's Python console, or slicer-core with ``slicer.mrmlScene`` set)::

    from MedFusionLib import MedFusionLogic
    result = MedFusionLogic().process(fixedNode, movingNode, method=None, mode="slice", registration="rigid")
    result.fusedVolumeNode, result.transformNode, result.metricsTableNode

``method=None`` is the default method; ``mode`` is "slice" or "volume"; ``registration`` is "none",
"rigid", "affine" or "deformable"; more inputs with ``extraNodes=[...]``. The input volumes are never
modified (voxels, geometry, display); the registration is applied by setting each moving node's parent
transform (Slicer's convention), hardened only with ``hardenTransform=True``.

The work is split so that the GUI can run the heavy part in a subprocess: :meth:`prepareInputs` (scene ->
images), :func:`compute` (images -> :class:`FusionOutcome`, no scene; what ``MedFusionLib.apps.worker`` runs)
and :meth:`applyOutcome` (outcome -> nodes and views).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import SimpleITK as sitk

from MedFusionLib.core.errors import InputError, MedFusionError
from MedFusionLib.core.options import COLOUR, DISPLAY_MODE, OVERLAY_MAP, REGISTRATION, FusionOptions, fusion_options
from MedFusionLib.core.progress import check_cancel, report, sub_progress
from MedFusionLib.mrml import display
from MedFusionLib.pipeline.job import FusionOutcome, compute

ROLE = "MedFusion.Role"
OUTPUT_METRICS_REFERENCE = "medfusionMetrics"
# the keywords of process() that go to applyOutcome (how the result is shown), not to the fusion
DISPLAY_CHOICES = ("outputNode", "opacity", "overlayMap", "displayMode", "showResult", "hardenTransform")


@dataclass
class MedFusionResult:
    fusedVolumeNode: object
    transformNode: object  # first moving input's registration (None when registration is "none")
    metricsTableNode: object
    transformNodes: list = field(default_factory=list)
    metrics: dict | None = None
    method: str = ""
    mode: str = ""
    registration: str = ""
    outcome: FusionOutcome | None = None


class MedFusionLogic:
    """Scene-level MedFusion: volume nodes in, fused volume, transform and metrics table nodes out."""

    def __init__(self, scene=None, applicationLogic=None):
        self._scene = scene
        self._applicationLogic = applicationLogic

    # -- scene and application -------------------------------------------------------------------------
    @property
    def scene(self):
        if self._scene is not None:
            return self._scene
        import slicer

        scene = getattr(slicer, "mrmlScene", None)
        if scene is None:
            raise MedFusionError("no MRML scene: set slicer.mrmlScene or pass scene= to MedFusionLogic")
        return scene

    @property
    def applicationLogic(self):
        """Slicer's application logic (slice logics, selection node), or None under bare slicer-core."""
        if self._applicationLogic is not None:
            return self._applicationLogic
        import slicer

        app = getattr(slicer, "app", None)
        return app.applicationLogic() if app is not None and hasattr(app, "applicationLogic") else None

    @applicationLogic.setter
    def applicationLogic(self, value):
        self._applicationLogic = value

    # -- methods, for the GUI ----------------------------------------------------------------------------
    @staticmethod
    def methods() -> list[dict]:
        from MedFusionLib.fusion import describe_methods

        return describe_methods()

    @staticmethod
    def defaultMethod() -> str:
        from MedFusionLib.fusion import default_method_name

        return default_method_name()

    # -- the scripting contract -------------------------------------------------------------------------
    def process(
        self,
        fixedNode,
        movingNode,
        *,
        extraNodes=None,
        options: FusionOptions | None = None,
        computeMetrics=True,
        include3DMetrics=False,
        progress=None,
        cancel=None,
        **choices,
    ) -> MedFusionResult:
        """Register ``movingNode`` (and ``extraNodes``) to ``fixedNode``, fuse, score and show the result.

        ``choices`` are fusion choices (the fields of :class:`~MedFusionLib.core.options.FusionOptions`:
        ``method``, ``mode``, ``registration``, ``axis``, ``modalities``, ``colour``, ``device``...; ``options``
        gives them at once) and the display keywords of :meth:`applyOutcome` (``outputNode``, ``opacity``,
        ``overlayMap``, ``displayMode``, ``showResult``, ``hardenTransform``). ``modalities``: one of
        auto/ct/mr/pet/spect per input (guessed from node attributes and names when None); ``colour``: "none" (a
        grey fused volume, shown with ``overlayMap``: "auto" = PET heat when a functional input is present, else
        grey) or a colour-fusion style ("auto", "hot", "pet", "rainbow": an RGB vector volume); ``displayMode``:
        "overlay" (fixed background, fused foreground at ``opacity``) or "fused" (fused alone);
        ``progress(fraction, message)`` and ``cancel() -> bool`` follow MedFusionLib.core.progress (cancelling
        leaves the scene as it was). Choices and defaults: ``MedFusionLib.core.options``.
        """
        nodes = [fixedNode, movingNode, *(extraNodes or [])]
        shown = {key: choices.pop(key) for key in DISPLAY_CHOICES if key in choices}
        fusion = fusion_options(options, **choices)
        checks = {key: shown[key] for key in ("outputNode", "overlayMap", "displayMode") if key in shown}
        fusion = replace(fusion, modalities=tuple(self.validate(nodes, fusion, **checks)))
        report(progress, 0.0, "reading the volumes")
        images = self.prepareInputs(nodes, ignoreOwnRegistration=fusion.registration != "none")
        check_cancel(cancel)
        outcome = compute(
            images,
            fusion,
            computeMetrics=computeMetrics,
            include3DMetrics=include3DMetrics,
            progress=sub_progress(progress, 0.02, 0.97),
            cancel=cancel,
        )
        check_cancel(cancel)
        report(progress, 0.97, "updating the scene")
        result = self.applyOutcome(
            nodes, outcome, colour=fusion.colour, modalities=fusion.modalities, reference=images[0], **shown
        )
        report(progress, 1.0, "done")
        return result

    # -- steps -------------------------------------------------------------------------------------------
    def validate(
        self,
        nodes,
        options: FusionOptions | None = None,
        *,
        outputNode=None,
        overlayMap=OVERLAY_MAP.default,
        displayMode=DISPLAY_MODE.default,
        **choices,
    ) -> list[str]:
        """Check everything before any work; returns the modality of each input. The fusion choices come as
        ``options`` and/or keywords, as in :meth:`process`."""
        from MedFusionLib.fusion import get_method

        options = fusion_options(options, **choices)
        self._checkInputNodes(nodes, outputNode)
        OVERLAY_MAP.check(overlayMap)
        DISPLAY_MODE.check(displayMode)
        get_method(options.method).check(len(nodes), options.mode)
        colour = options.colour
        if outputNode is not None:
            wanted = "vtkMRMLVectorVolumeNode" if colour != "none" else "vtkMRMLScalarVolumeNode"
            vector = outputNode.IsA("vtkMRMLVectorVolumeNode")
            if not outputNode.IsA(wanted) or (
                colour == "none" and (vector or outputNode.IsA("vtkMRMLLabelMapVolumeNode"))
            ):
                raise InputError(f"output {outputNode.GetName()!r} must be a {wanted} for colour option {colour!r}")
        if options.registration != "none":
            for node in nodes[1:]:
                if self._base_parent_to_world(node) is None:
                    raise InputError(
                        f"{node.GetName()!r} is under a non-linear transform; harden it before registering it"
                    )
        if options.modalities is None:
            return [display.guess_node_modality(n) for n in nodes]
        if len(options.modalities) != len(nodes):
            raise MedFusionError(f"{len(options.modalities)} modalities given for {len(nodes)} inputs")
        return list(options.modalities)

    def _checkInputNodes(self, nodes, outputNode) -> None:
        """Inputs that are distinct scalar volumes with voxels in this scene, and an output that is none of them."""
        if any(n is None for n in nodes):
            raise InputError("select a fixed and a moving volume")
        for node in nodes:
            if not node.IsA("vtkMRMLScalarVolumeNode") or node.IsA("vtkMRMLLabelMapVolumeNode"):
                raise InputError(f"{node.GetName()!r} is not a scalar volume")
            if node.GetImageData() is None:
                raise InputError(f"{node.GetName()!r} holds no image data")
            if node.GetScene() is not self.scene:
                raise InputError(f"{node.GetName()!r} is not in this logic's scene")
        if len({n.GetID() for n in nodes}) != len(nodes):
            raise InputError("the same volume is selected twice")
        if outputNode is not None and any(outputNode.GetID() == n.GetID() for n in nodes):
            raise InputError("the output volume cannot be one of the inputs")

    @staticmethod
    def _own_registration_parent(node):
        parent = node.GetParentTransformNode()
        return parent if parent is not None and parent.GetAttribute(ROLE) == "registration" else None

    def _base_parent_to_world(self, node, ignoreOwn=True) -> np.ndarray | None:
        """Parent-to-world matrix of a node, ignoring a MedFusion registration transform on it when
        ``ignoreOwn`` (so that running again re-registers from the original position); None when
        non-linear."""
        from MedFusionLib.mrml.nodes import parent_linear_to_world

        own = self._own_registration_parent(node) if ignoreOwn else None
        return parent_linear_to_world(own if own is not None else node)

    def prepareInputs(self, nodes, ignoreOwnRegistration=True) -> list[sitk.Image]:
        """The volumes as SimpleITK images (voxels copied) where they appear in the world; a registration
        transform made by an earlier run of MedFusion on a moving node is left out when
        ``ignoreOwnRegistration`` (the registration is being redone)."""
        from MedFusionLib.mrml.nodes import hardened_image, ijk_to_ras, image_from_voxels, volume_voxels

        images = []
        for index, node in enumerate(nodes):
            to_world = self._base_parent_to_world(node, ignoreOwnRegistration) if index > 0 else None
            if index == 0 or to_world is None:
                from MedFusionLib.mrml.nodes import volume_to_image

                images.append(volume_to_image(node) if index == 0 else hardened_image(node))
            else:
                images.append(image_from_voxels(volume_voxels(node), to_world @ ijk_to_ras(node)))
        return images

    def applyOutcome(
        self,
        nodes,
        outcome: FusionOutcome,
        *,
        outputNode=None,
        opacity=0.5,
        colour=COLOUR.default,
        overlayMap=OVERLAY_MAP.default,
        displayMode=DISPLAY_MODE.default,
        showResult=True,
        modalities=None,
        hardenTransform=False,
        reference: sitk.Image | None = None,
    ) -> MedFusionResult:
        """Create or update the output, transform and table nodes from an outcome, and show them."""
        self.checkStillInScene(nodes, outputNode)
        fixed = nodes[0]
        modalities = list(modalities) if modalities else [display.guess_node_modality(n) for n in nodes]
        transform_nodes = self._applyTransforms(nodes, outcome, outcome.fused if reference is None else reference)
        if hardenTransform:
            for node, tnode in zip(nodes[1:], transform_nodes):
                if tnode is not None:
                    node.HardenTransform()
        rgb = colour != "none" and outcome.rgb is not None
        outputNode = self._writeFusedNode(nodes, outcome, rgb, outputNode)
        display.configure_fused_display(outputNode, None if rgb else display.colour_node_id(overlayMap, modalities))
        table = self._updateMetricsTable(outputNode, outcome.metrics)
        if showResult:
            self.showResult(fixed, outputNode, opacity=opacity, displayMode=displayMode, table=table)
        return MedFusionResult(
            fusedVolumeNode=outputNode,
            transformNode=transform_nodes[0] if transform_nodes else None,
            metricsTableNode=table,
            transformNodes=transform_nodes,
            metrics=outcome.metrics,
            method=outcome.method,
            mode=outcome.mode,
            registration=outcome.registration,
            outcome=outcome,
        )

    def _applyTransforms(self, nodes, outcome: FusionOutcome, reference: sitk.Image) -> list:
        """One transform node per moving node (None where it was not registered), observed by that node; a
        node's own earlier registration node is reused (a linear result replacing a grid one keeps the old node)."""
        from MedFusionLib.mrml.transforms import transform_node_from_registration

        scene, fixed = self.scene, nodes[0]
        transform_nodes: list = []
        for node, transform in zip(nodes[1:], outcome.transforms):
            if transform is None:
                transform_nodes.append(None)
                continue
            own = self._own_registration_parent(node)
            reuse = own if own is not None and own.GetParentTransformNode() is None else None
            name = (
                reuse.GetName()
                if reuse is not None
                else scene.GenerateUniqueName(f"{node.GetName()} to {fixed.GetName()} ({outcome.registration})")
            )
            base = self._base_parent_to_world(node)
            tnode = transform_node_from_registration(scene, transform, reference, name, base, node=reuse)
            tnode.SetAttribute(ROLE, "registration")
            tnode.SetAttribute("MedFusion.Registration", outcome.registration)
            node.SetAndObserveTransformNodeID(tnode.GetID())
            transform_nodes.append(tnode)
        return transform_nodes

    def _writeFusedNode(self, nodes, outcome: FusionOutcome, rgb: bool, outputNode):
        """The fused image in ``outputNode`` (a new node named from inputs, method and mode when None), on the fixed
        node's grid and under its parent transform, tagged with what made it."""
        from MedFusionLib.mrml import nodes as mrml_nodes

        fixed, moving = nodes[0], nodes[1:]
        image = outcome.rgb if rgb else outcome.fused
        if outputNode is None:
            name = self.scene.GenerateUniqueName(
                f"{fixed.GetName()} + {' + '.join(n.GetName() for n in moving)} fused ({outcome.method}, {outcome.mode})"
            )
            kind = "vtkMRMLVectorVolumeNode" if rgb else "vtkMRMLScalarVolumeNode"
            outputNode = self.scene.AddNewNodeByClass(kind, name)
        if mrml_nodes.parent_linear_to_world(fixed) is not None:
            mrml_nodes.update_volume_from_image(outputNode, image, mrml_nodes.ijk_to_ras(fixed))
            outputNode.SetAndObserveTransformNodeID(fixed.GetTransformNodeID())
        else:
            mrml_nodes.update_volume_from_image(outputNode, image)
            outputNode.SetAndObserveTransformNodeID(None)
        outputNode.SetAttribute(ROLE, "fused")
        outputNode.SetAttribute("MedFusion.Method", outcome.method)
        outputNode.SetAttribute("MedFusion.Mode", outcome.mode)
        outputNode.SetAttribute("MedFusion.Registration", outcome.registration)
        outputNode.SetAttribute("MedFusion.Inputs", ";".join(n.GetID() for n in nodes))
        return outputNode

    def _updateMetricsTable(self, outputNode, metrics):
        """The output's metrics table node, created or updated (None when no metrics were computed)."""
        from MedFusionLib.mrml.tables import update_metrics_table

        if metrics is None:
            return None
        table = outputNode.GetNodeReference(OUTPUT_METRICS_REFERENCE)
        if table is None or table.GetScene() is not self.scene:
            name = self.scene.GenerateUniqueName(f"{outputNode.GetName()} metrics")
            table = self.scene.AddNewNodeByClass("vtkMRMLTableNode", name)
        update_metrics_table(table, metrics)
        table.SetAttribute(ROLE, "metrics")
        outputNode.SetNodeReferenceID(OUTPUT_METRICS_REFERENCE, table.GetID())
        return table

    # -- the same, with the heavy part in another process (what the Slicer module does) ------------------
    def writeJob(self, folder, nodes, **options) -> list:
        """Validate, then write the inputs (as they appear in the world) and the options of a
        ``MedFusionLib.apps.worker`` job into ``folder``; returns the modality of each input. ``options``: the
        ``compute`` options (method, mode, axis, registration, modalities, colour, computeMetrics,
        include3DMetrics)."""
        from MedFusionLib.pipeline import job

        checks = {k: v for k, v in options.items() if k not in job.SCORING_OPTIONS}
        modalities = self.validate(nodes, **checks)
        options["modalities"] = modalities
        registration = options.get("registration", REGISTRATION.default)
        images = self.prepareInputs(nodes, ignoreOwnRegistration=registration != "none")
        job.write_job(folder, images, **options)
        return modalities

    def checkStillInScene(self, nodes, outputNode=None) -> None:
        """A job outlives the scene it was started from when the user closes the scene meanwhile: refuse to
        write its result into the new scene (one-line InputError) rather than use removed nodes."""
        scene = self.scene
        for node in [n for n in nodes if n is not None] + ([outputNode] if outputNode is not None else []):
            if node.GetScene() is not scene or scene.GetNodeByID(node.GetID()) is not node:
                raise InputError(
                    f"{node.GetName()!r} is no longer in the scene (was the scene closed?); the result was not added"
                )

    def applyJob(self, folder, nodes, **kwargs) -> MedFusionResult:
        """Bring a finished worker job into the scene (output, transform and table nodes, slice views)."""
        from MedFusionLib.pipeline import job

        outcome = job.load_outcome(folder)
        return self.applyOutcome(nodes, outcome, reference=outcome.fused, **kwargs)

    def showResult(self, fixedNode, fusedNode, *, opacity=0.5, displayMode="overlay", table=None, fit=True):
        """Fixed as background and fused as foreground (or fused alone) in every slice view."""
        display.ensure_display(fixedNode)
        if displayMode == "fused":
            display.show_in_slice_views(self.scene, fusedNode, None, opacity, self.applicationLogic, fit)
        else:
            display.show_in_slice_views(self.scene, fixedNode, fusedNode, opacity, self.applicationLogic, fit)
        if table is not None:
            display.show_table(table, self.applicationLogic)

    def suggestRegistration(self, nodes) -> tuple[str, str]:
        """The registration the inputs' headers call for, and one line saying why: rigid when header geometry
        puts an input's box or foreground centre more than MISALIGNED_MM from the reference's, else none."""
        from MedFusionLib.pipeline.prepare import MISALIGNED_MM, header_offsets_mm

        images = self.prepareInputs(nodes, ignoreOwnRegistration=True)
        offset = max(max(header_offsets_mm(images[0], image)) for image in images[1:])
        if offset > MISALIGNED_MM:
            return "rigid", f"Headers place the inputs up to {offset:.0f} mm apart: rigid registration (default here)."
        return REGISTRATION.shown_default, f"Headers agree within {MISALIGNED_MM:.0f} mm: no registration needed."

    def setOverlayOpacity(self, opacity: float) -> None:
        """Foreground opacity of every slice view (the GUI's opacity slider)."""
        scene = self.scene
        for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")):
            scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode").SetForegroundOpacity(float(opacity))
