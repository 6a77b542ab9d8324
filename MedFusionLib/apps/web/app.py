"""The browser app's state and work: the same ``MedFusionLogic`` as the Slicer module, on trame-slicer's scene.

The heavy part runs in a ``MedFusionLib.apps.worker`` process (the module's job format), polled by an asyncio
task, so the page stays responsive and Cancel ends the whole process tree. Only files the user opened (FILE
arguments, a typed server path, an upload) are read, and nothing is served but the page and the rendered views.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from MedFusionLib.core import options
from MedFusionLib.core.errors import MedFusionError

POLL_S = 0.1
# The B-spline stage's optimiser (L-BFGS-B) honours a stop request only after finishing its current iteration
# and line search, 2 to 5 s on a 2-core machine: past this delay a cancelled job's process tree is killed (its
# results only ever reach its own job folder, which is deleted), so Cancel takes at most ~2 s in every stage.
KILL_AFTER_S = 0.5
SAVE_FOLDER = "medfusion-out"  # the Save field's default, a folder under the one the app serves


# the page's selects: (state key of the items, state key of the value, the choice in core/options)
PAGE_CHOICES = (
    ("modes", "mode", options.MODE),
    ("axes", "axis", options.AXIS),
    ("registrations", "registration", options.REGISTRATION),
    ("devices", "device", options.DEVICE),
    ("colours", "colour", options.COLOUR),
    ("overlay_maps", "overlay_map", options.OVERLAY_MAP),
    ("display_modes", "display_mode", options.DISPLAY_MODE),
    ("view_layouts", "view_layout", options.VIEW_LAYOUT),
)


def choice_items(choice: options.Choice) -> list[dict]:
    """A Choice as the page's select items (label shown, value stored)."""
    return [{"title": choice.label(value), "value": value} for value in choice.values]


def method_items() -> list[dict]:
    """The registry's methods as select items (the method is the one choice the registry defines), the default
    marked."""
    from MedFusionLib.fusion import available_methods, default_method_name

    default = default_method_name()
    return [
        {"title": method.name + (" (default)" if method.name == default else ""), "value": method.name}
        for method in available_methods()
    ]


@dataclass
class ShownResult:
    """One Apply's result as the page shows it: the scene logic's result, the reference it lies over, and
    the colour it was made with ("none": a grey result; the legend and the default opacity follow it)."""

    result: Any
    reference: Any
    colour: str


def _node_label(node) -> str:
    return node.GetName() if node is not None else "?"


class FusionWebApp:
    """One browser session's MedFusion: a trame-slicer scene, the volumes opened, one job at a time."""

    def __init__(self, server=None, files: Sequence[str] = (), sample: bool = False):
        import slicer
        from trame.app import get_server
        from trame_slicer.core import SlicerApp
        from vtkmodules.vtkCommonCore import vtkCommand

        from MedFusionLib.mrml.logic import MedFusionLogic

        self.server = server or get_server("medfusion", client_type="vue3")
        self.state = self.server.state
        self.slicer_app = SlicerApp()
        slicer.mrmlScene = self.slicer_app.scene  # slicer.util helpers need the global scene
        self.logic = MedFusionLogic(scene=self.slicer_app.scene)
        self.fused_node = None
        self._shown_reference = None
        self.result = None
        self.results: dict[str, ShownResult] = {}  # fused node ID -> one Apply's result, all kept selectable
        self._job = None
        self._job_context: dict[str, Any] = {}
        from MedFusionLib.apps.web.sessions import SessionGuard, SessionLink

        self.sessions = SessionLink(self.server, SessionGuard())  # one server, one session: other tabs read-only
        self._initial_state()
        from MedFusionLib.apps.web.layout import build_layout

        self.ui = build_layout(self)
        for path in files:
            self.open_path(path)
        if sample:
            self.open_sample()
        self.state.change("opacity")(self.on_opacity)
        self.state.change("display_mode")(self.on_display_mode)
        self.state.change("upload")(self.on_upload)
        self.state.change("reference", "moving", "extra")(self.on_inputs)
        self.state.change("result_id")(self.on_result)
        self.state.change("view_layout")(self.on_view_layout)
        self.server.controller.on_server_exited.add(self.shutdown)
        self._fit_pending = False

        from MedFusionLib.mrml.display import link_views, window_level_by_drag

        link_views(self.slicer_app.scene)
        window_level_by_drag(self.slicer_app.scene)
        for view in self.slicer_app.view_manager.get_views():
            view.interactor().AddObserver(vtkCommand.WindowResizeEvent, self._fit_after_resize)

    def _fit_after_resize(self, *_) -> None:
        """The views learn their size from the page (after it loads, or when the window changes): fit the
        volumes to the new size once the resizes have settled."""
        if self._fit_pending:
            return
        self._fit_pending = True

        def fit() -> None:
            self._fit_pending = False
            self._reset_views()

        asyncio.get_event_loop().call_later(0.3, fit)

    # -- state ---------------------------------------------------------------------------------------------
    def _initial_state(self) -> None:
        from MedFusionLib.fusion import default_method_name

        s = self.state
        s.trame__title = "MedFusion"
        s.methods, s.method = method_items(), default_method_name()
        for items, value, choice in PAGE_CHOICES:  # each select's items and its default
            s[items], s[value] = choice_items(choice), choice.shown_default
        s.compute_metrics, s.opacity, s.progress = True, options.LAYER_OPACITY, 0
        s.status = "Open a reference and a moving volume, then Apply."
        s.save_path = SAVE_FOLDER  # relative to the served folder (--root): the page shows no server path
        # empty until the user acts; implausible: why the last registration was refused (the page offers "Fuse
        # anyway"); session_viewer: set true per client, on a read-only tab (apps/web/sessions.py)
        s.volumes, s.extra_volumes, s.metrics, s.results = [], [], [], []
        s.reference = s.moving = s.extra = s.result_id = s.legend = s.upload = None
        s.registration_note = s.implausible = s.error = s.open_path = s.saved = ""
        s.harden = s.running = s.has_result = s.session_viewer = False

    def _may_act(self) -> bool:
        """Only the tab holding the session may change it (apps/web/sessions.py)."""
        return self.sessions.may_act()

    def _refresh_volumes(self) -> None:
        scene = self.slicer_app.scene
        items = []
        for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")):
            node = scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode")
            if node.GetAttribute("MedFusion.Role") is None and not node.IsA("vtkMRMLLabelMapVolumeNode"):
                items.append({"title": node.GetName(), "value": node.GetID()})
        self.state.volumes = items
        ids = [item["value"] for item in items]
        if self.state.reference not in ids:
            self.state.reference = ids[0] if ids else None
        if self.state.moving not in ids or self.state.moving == self.state.reference:
            others = [i for i in ids if i != self.state.reference]
            self.state.moving = others[0] if others else None
        self.state.extra_volumes = [{"title": "(none)", "value": None}] + items
        if self.state.extra not in ids or self.state.extra in (self.state.reference, self.state.moving):
            self.state.extra = None
        self.on_inputs()

    def _selected_nodes(self) -> list:
        """Reference, moving and (when chosen) the third input, as scene nodes (None where unset)."""
        scene, s = self.slicer_app.scene, self.state
        nodes = [scene.GetNodeByID(s.reference) if s.reference else None]
        nodes.append(scene.GetNodeByID(s.moving) if s.moving else None)
        return nodes + ([scene.GetNodeByID(s.extra)] if s.extra else [])

    def on_inputs(self, **_) -> None:
        """New inputs: the registration their headers call for (said on the page) and a status that says
        what is ready."""
        nodes = self._selected_nodes()
        if any(node is None for node in nodes) or self._job is not None:
            return
        self.state.registration, self.state.registration_note = self.logic.suggestRegistration(nodes)
        names = " + ".join(_node_label(node) for node in nodes)
        if not self.results:
            self.state.status = f"Ready: {names}. Press Apply."

    def _show(self, background, foreground=None) -> None:
        """Reference (or the fused volume alone, in "fused" display mode) and overlay in every view."""
        from MedFusionLib.mrml import display

        if foreground is not None and self.state.display_mode == "fused":
            background, foreground = foreground, None
        display.ensure_display(background)
        display.show_in_slice_views(self.slicer_app.scene, background, foreground, float(self.state.opacity), fit=False)
        self._reset_views()

    # -- opening volumes -----------------------------------------------------------------------------------
    def add_image(self, image, name: str, modality: str | None = None):
        """Put a SimpleITK image into the scene as a volume node and show it."""
        from MedFusionLib.mrml.nodes import update_volume_from_image

        scene = self.slicer_app.scene
        node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", scene.GenerateUniqueName(name))
        update_volume_from_image(node, image)
        node.CreateDefaultDisplayNodes()
        if modality:
            node.SetAttribute("MedFusion.Modality", modality)
        self._refresh_volumes()
        if self.fused_node is None:
            reference = scene.GetNodeByID(self.state.reference)
            self._show(reference)
        return node

    def open_path(self, path: str, name: str | None = None):
        """Read a volume file or DICOM folder on the server (the user named it) into the scene."""
        from MedFusionLib.core.imageio import as_scalar, read_image

        path = str(path).strip()
        if not path:
            raise MedFusionError("type the path of a volume on the server")
        image = as_scalar(read_image(path), Path(path).name)
        if image.GetDimension() != 3:
            raise MedFusionError(f"{path}: a 3-D volume is needed, this image is {image.GetDimension()}-D")
        stem = Path(path).name
        for suffix in (".gz", ".nii", ".nrrd", ".mha", ".mhd"):
            stem = stem[: -len(suffix)] if stem.endswith(suffix) else stem
        return self.add_image(image, name or stem)

    def open_sample(self) -> None:
        """The embedded CT/MR phantom (moved MR, known answer) and its PET, as in ``medfusion demo``."""
        from MedFusionLib.samples.pet import make_phantom_pet
        from MedFusionLib.samples.phantom import make_phantom_pair

        pair = make_phantom_pair(7)
        self.add_image(pair.ct, "Phantom CT", "ct")
        self.add_image(pair.mr, "Phantom MR T2", "mr")
        self.add_image(make_phantom_pet(7), "Phantom PET", "pet")

    def _report(self, err: Exception) -> None:
        self.state.error = str(err).splitlines()[0] if str(err) else type(err).__name__

    def on_open_path(self) -> None:
        from MedFusionLib.apps.web import security

        if not self._may_act():
            return
        self.state.error = ""
        try:
            security.refuse_while_running(self._job is not None)
            path = security.path_in_root(security.policy_of(self).root, self.state.open_path)
            node = self.open_path(str(path))
            self.state.status = f"Opened {node.GetName()}"
        except (MedFusionError, OSError, RuntimeError) as err:
            self._report(err)

    def on_upload(self, upload=None, **_) -> None:
        """Uploaded files are written to a private folder, read, and deleted at once (patient data)."""
        if not upload or not self._may_act():
            return
        from MedFusionLib.apps.web import security

        self.state.error = ""
        policy = security.policy_of(self)
        with tempfile.TemporaryDirectory(prefix="medfusion-upload-") as folder:
            for entry in upload if isinstance(upload, list) else [upload]:
                target = None
                try:
                    security.refuse_while_running(self._job is not None)
                    name, content = security.upload_entry(entry, policy)
                    target = Path(folder) / name
                    target.write_bytes(content)
                    node = self.open_path(str(target))
                    self.state.status = f"Opened {node.GetName()} (uploaded)"
                except (MedFusionError, OSError, RuntimeError) as err:
                    self._report(err)
                finally:
                    if target is not None:
                        target.unlink(missing_ok=True)
        self.state.upload = None

    # -- apply / cancel ------------------------------------------------------------------------------------
    def on_apply(self) -> None:
        """Apply starts a job; while one runs the same button cancels it."""
        if not self._may_act():
            return
        if self._job is not None:
            self.cancel()
            return
        self.state.error = ""
        try:
            self.start()
        except MedFusionError as err:
            self._report(err)

    def on_fuse_anyway(self) -> None:
        """The plausibility check refused the registration and the user chose to keep it: the same Apply again,
        with ``forceRegistration``."""
        if not self._may_act() or self._job is not None:
            return
        self.state.error = ""
        try:
            self.start(force_registration=True)
        except MedFusionError as err:
            self._report(err)

    def start(self, force_registration: bool = False) -> None:
        """Validate, write the job, start the worker process and the task that polls it."""
        from MedFusionLib.apps.worker import WorkerProcess
        from MedFusionLib.core.errors import InputError
        from MedFusionLib.mrml.jobs import start_job

        s = self.state
        nodes = self._selected_nodes()
        if any(n is None for n in nodes):
            raise InputError("select a reference and a moving volume")
        colour = options.COLOUR.check(s.colour)
        job = dict(
            method=s.method or None,
            mode=options.MODE.check(s.mode),
            axis=int(options.AXIS.check(s.axis)),
            registration=options.REGISTRATION.check(s.registration),
            colour=colour,
            computeMetrics=bool(s.compute_metrics),
            device=options.DEVICE.check(s.device),
            force_registration=force_registration,
        )
        folder, self._job, modalities = start_job(self.logic, nodes, WorkerProcess, **job)
        self._job_context = dict(
            nodes=nodes, folder=folder, modalities=modalities, colour=colour, harden=bool(s.harden), cancel_at=None
        )
        s.running, s.progress, s.status, s.implausible = True, 0, "Starting the worker...", ""
        asyncio.get_event_loop().create_task(self._watch())

    def cancel(self) -> None:
        """Ask the worker to stop; the watcher kills its process tree if it has not stopped in a few seconds."""
        if self._job is None:
            return
        self._job.cancel()
        self._job_context["cancel_at"] = time.monotonic()
        self.state.status = "Cancelling..."

    async def _watch(self) -> None:
        job = self._job
        while not job.finished:
            await asyncio.sleep(POLL_S)
            messages = job.poll()
            cancel_at = self._job_context.get("cancel_at")
            with self.state:
                if messages and cancel_at is None:
                    self.state.progress = int(round(100 * messages[-1]["progress"]))
                    self.state.status = messages[-1].get("message", "")
                if cancel_at is not None and time.monotonic() - cancel_at > KILL_AFTER_S:
                    job.kill()
        with self.state:
            self._finish(job)

    def _finish(self, job) -> None:
        context, self._job, message = self._job_context, None, job.final
        s = self.state
        try:
            if message.get("done"):
                self._apply_result(context)
            elif message.get("cancelled"):
                s.status = "Cancelled; nothing was changed."
            elif message.get("implausible"):
                s.status, s.implausible = "Stopped: the registration looks wrong.", message["implausible"]
                s.error = (
                    f"The registration looks wrong: {message['implausible']}. Check that the inputs show the same "
                    "anatomy, or press Fuse anyway to keep it."
                )
            else:
                s.status = "Failed."
                s.error = str(message.get("error", "the worker failed")).splitlines()[0]
        except Exception as err:  # a result that cannot be shown must not leave the page saying "computing"
            s.status = "Failed."
            self._report(err)
        finally:
            job.close()  # no process of the job and no copy of the inputs stays behind
            s.running = False

    def _apply_result(self, context: dict) -> None:
        """Each Apply gives a new result node, named from its inputs, method and mode; earlier ones stay."""
        result = self.logic.applyJob(
            context["folder"],
            context["nodes"],
            outputNode=None,
            opacity=float(self.state.opacity),
            colour=context["colour"],
            overlayMap=options.OVERLAY_MAP.check(self.state.overlay_map),
            modalities=context["modalities"],
            hardenTransform=context["harden"],
            showResult=False,
        )
        node = result.fusedVolumeNode
        colour = context["colour"] if result.outcome is not None and result.outcome.rgb is not None else "none"
        self.results[node.GetID()] = ShownResult(result, context["nodes"][0], colour)
        self.state.results = [
            {"title": self.results[key].result.fusedVolumeNode.GetName(), "value": key} for key in self.results
        ]
        self.state.opacity = options.shown_opacity(colour)
        self._select_result(node.GetID())
        self.state.result_id = node.GetID()
        self.state.progress = 100
        registered = ", registered " + result.registration if result.registration != "none" else ""
        self.state.status = f"Done: {node.GetName()}{registered}"

    def on_result(self, result_id=None, **_) -> None:
        """The result chosen in the page's list goes back into the views with its legend and metrics."""
        if result_id in self.results and self.results[result_id].result is not self.result:
            self._select_result(result_id)
            self.state.status = f"Showing {self.results[result_id].result.fusedVolumeNode.GetName()}"

    def _select_result(self, result_id: str) -> None:
        from MedFusionLib.apps.web.legend import legend_for
        from MedFusionLib.mrml.tables import table_rows

        shown = self.results[result_id]
        self.result, self.fused_node, self._shown_reference = (
            shown.result,
            shown.result.fusedVolumeNode,
            shown.reference,
        )
        self._show(self._shown_reference, self.fused_node)
        table = self.result.metricsTableNode
        rows = table_rows(table) if table is not None else []
        self.state.metrics = [{"metric": m, "value": f"{v:.4g}", "better": b, "description": d} for m, v, b, d in rows]
        display_node = self.fused_node.GetDisplayNode()
        colour_node = display_node.GetColorNode() if display_node is not None and shown.colour == "none" else None
        self.state.legend = legend_for(shown.colour, colour_node, self._functional_name(shown))
        self.state.has_result = True

    @staticmethod
    def _functional_name(shown: ShownResult) -> str:
        from MedFusionLib.mrml.display import guess_node_modality
        from MedFusionLib.pipeline.job import functional_index

        scene = shown.reference.GetScene()
        inputs = [
            scene.GetNodeByID(i)
            for i in (shown.result.fusedVolumeNode.GetAttribute("MedFusion.Inputs") or "").split(";")
        ]
        inputs = [node for node in inputs if node is not None]
        index = functional_index([guess_node_modality(node) for node in inputs])
        return inputs[index].GetName() if index is not None else ""

    def on_view_layout(self, view_layout=None, **_) -> None:
        self.layout_manager.set_layout(options.VIEW_LAYOUT.check(view_layout))
        self._fit_after_resize()

    # -- display and saving --------------------------------------------------------------------------------
    def on_display_mode(self, display_mode=None, **_) -> None:
        if self.fused_node is not None and self.result is not None:
            options.DISPLAY_MODE.check(display_mode)
            self._show(self._shown_reference, self.fused_node)

    def on_opacity(self, opacity=0.5, **_) -> None:
        if self.fused_node is not None:
            self.logic.setOverlayOpacity(float(opacity))
            self._render()

    def _reset_views(self) -> None:
        """Fit every view to the volumes, the 3-D views turned to an oblique camera, and render."""
        from MedFusionLib.apps.web.views import tilt_3d_views

        self.slicer_app.display_manager.reset_views()
        tilt_3d_views(self.slicer_app.view_manager.get_views())
        self._render()

    def _render(self) -> None:
        """Scene changes that the views do not observe (layer opacity) need an explicit render."""
        for view in self.slicer_app.view_manager.get_views():
            view.schedule_render()

    def on_save(self) -> None:
        """Write the fused volume (and each registration transform) into the chosen server folder."""
        from MedFusionLib.core.imageio import write_image
        from MedFusionLib.registration.transform_io import save_transform

        if not self._may_act():
            return
        self.state.error = ""
        if self.result is None:
            self.state.error = "nothing to save yet: press Apply first"
            return
        from MedFusionLib.apps.web import security

        try:
            security.refuse_while_running(self._job is not None)
            folder = security.save_folder_in_root(security.policy_of(self).root, self.state.save_path)
            folder.mkdir(parents=True, exist_ok=True)
            outcome = self.result.outcome
            fused = folder / "fused.nii.gz"
            write_image(outcome.rgb if outcome.rgb is not None else outcome.fused, fused)
            written = [fused.name]
            for index, transform in enumerate(outcome.transforms, start=1):
                if transform is not None:
                    save_transform(transform, folder / f"transform_{index}.tfm")
                    written.append(f"transform_{index}.tfm")
            root = security.policy_of(self).root
            where = folder.relative_to(root) if folder.is_relative_to(root) else folder
            self.state.saved = f"Saved {', '.join(written)} in {where}/"
        except (MedFusionError, OSError, RuntimeError) as err:
            self._report(err)

    def shutdown(self, **_) -> None:
        """Stop a running job and remove every temporary file of this session."""
        if self._job is not None:
            self._job.close()
            self._job = None


def serve(
    files: Sequence[str] = (),
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    sample: bool = False,
    root: str | None = None,
    token: str | None = None,
    max_upload_mb: float | None = None,
) -> int:
    """Build the app (reading FILEs first, so a bad path fails before the server starts) and serve it under
    its policy: the page opens and saves only under ``root``; a non-loopback ``host`` needs the token."""
    import sys

    from MedFusionLib.apps.web import security

    policy = security.make_policy(root, host, token, max_upload_mb)
    _check_port(host, port)
    app = FusionWebApp(files=files, sample=sample or not files)
    app.policy = policy
    if policy.token:
        middleware = security.token_middleware(policy.token)
        app.server.controller.on_server_bind.add(lambda wslink_server: wslink_server.app.middlewares.append(middleware))
    print(
        f"medfusion: serving {security.page_url(host, port, policy.token)} (files under {policy.root})",
        file=sys.stderr,
        flush=True,
    )
    try:
        app.server.start(host=host, port=port, open_browser=False, show_connection_info=False)
    finally:
        app.shutdown()
    return 0


def _check_port(host: str, port: int) -> None:
    """A one-line error for a port that is taken (instead of the server's traceback)."""
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, port))
    except OSError as err:
        raise MedFusionError(
            f"cannot listen on {host}:{port} ({err.strerror}); choose another --port or --host"
        ) from None
