"""The browser page: the module panel's choices on the left, Slicer's axial, coronal and sagittal views on the
right. Every choice list comes from the app's state, which takes it from ``MedFusionLib.core.options``."""

from __future__ import annotations

from typing import Any


def build_layout(app: Any):
    """Build the page for ``app`` (a :class:`~MedFusionLib.apps.web.app.FusionWebApp`); returns the layout."""
    from trame.ui.vuetify3 import SinglePageWithDrawerLayout
    from trame.widgets import html
    from trame.widgets import vuetify3 as v3
    from trame_slicer.core import LayoutManager
    from trame_slicer.rca_view import register_rca_factories
    from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition

    server = app.server
    register_rca_factories(app.slicer_app.view_manager, server)
    layouts = LayoutManager(app.slicer_app.scene, app.slicer_app.view_manager, server)
    layouts.register_layout(
        "medfusion",
        Layout(
            LayoutDirection.Horizontal,
            [
                ViewLayoutDefinition.axial_view(),
                ViewLayoutDefinition.coronal_view(),
                ViewLayoutDefinition.sagittal_view(),
            ],
        ),
    )
    layouts.set_layout("medfusion")
    app.layout_manager = layouts

    def select(label: str, items: str, model: str, element_id: str, while_running: bool = False) -> None:
        with html.Div(id=element_id, classes="mb-2"):
            v3.VSelect(
                label=label,
                items=(items,),
                v_model=(model,),
                density="compact",
                hide_details=True,
                disabled=("false" if while_running else "running",),
                item_title="title",
                item_value="value",
            )

    with SinglePageWithDrawerLayout(server, theme="dark") as layout:
        layout.title.set_text("MedFusion")
        layout.drawer.width = 340
        with layout.toolbar:
            v3.VSpacer()
            html.Div("{{ status }}", id="status", classes="text-body-2 mr-4")
        with layout.drawer:
            with html.Div(classes="pa-3"):
                html.Div("Inputs", classes="text-subtitle-2 mb-1")
                select("Reference (fixed)", "volumes", "reference", "reference")
                select("Moving", "volumes", "moving", "moving")
                with html.Div(classes="d-flex mb-2"):
                    v3.VTextField(
                        label="Open a file on the server",
                        v_model=("open_path",),
                        density="compact",
                        hide_details=True,
                        id="open-path",
                        disabled=("running",),
                    )
                    v3.VBtn("Open", click=app.on_open_path, id="open", classes="ml-1", disabled=("running",))
                v3.VFileInput(
                    label="Upload volumes",
                    v_model=("upload",),
                    multiple=True,
                    density="compact",
                    hide_details=True,
                    classes="mb-2",
                    id="upload",
                    disabled=("running",),
                )
                html.Div("Fusion", classes="text-subtitle-2 mb-1 mt-2")
                select("Method", "methods", "method", "method")
                select("Mode", "modes", "mode", "mode")
                select("Axis (slice mode)", "axes", "axis", "axis")
                select("Registration", "registrations", "registration", "registration")
                select("Colour fusion", "colours", "colour", "colour")
                select("Overlay colours (grey result)", "overlay_maps", "overlay_map", "overlay-map")
                v3.VBtn(
                    "{{ running ? 'Cancel' : 'Apply' }}",
                    click=app.on_apply,
                    id="apply",
                    block=True,
                    color=("running ? 'warning' : 'primary'",),
                    disabled=("!running && (!reference || !moving)",),
                    classes="mt-2",
                )
                v3.VProgressLinear(
                    model_value=("progress",), v_show=("running",), height=6, classes="mt-2", id="progress"
                )
                html.Div("{{ error }}", v_show=("error",), id="error", classes="text-error text-body-2 mt-2")
                html.Div("Display", classes="text-subtitle-2 mb-1 mt-4")
                select("Show", "display_modes", "display_mode", "display-mode", while_running=True)
                with html.Div(id="opacity"):
                    v3.VSlider(
                        label="Overlay opacity",
                        v_model=("opacity",),
                        min=0,
                        max=1,
                        step=0.05,
                        hide_details=True,
                        thumb_label=True,
                    )
                html.Div("Save", classes="text-subtitle-2 mb-1 mt-4")
                v3.VTextField(
                    label="Folder on the server",
                    v_model=("save_path",),
                    density="compact",
                    hide_details=True,
                    id="save-path",
                )
                v3.VBtn(
                    "Save fused volume and transform",
                    click=app.on_save,
                    id="save",
                    block=True,
                    classes="mt-1",
                    disabled=("!has_result || running",),
                )
                html.Div("{{ saved }}", id="saved", classes="text-body-2 mt-1")
        with layout.content:
            with html.Div(style="display: flex; flex-direction: column; height: 100%;"):
                with html.Div(style="height: 62vh; min-height: 300px; width: 100%;", id="views"):
                    layouts.initialize_layout_grid(layout)
                with html.Div(v_show=("metrics.length",), classes="pa-2", id="metrics-panel"):
                    v3.VDataTable(
                        items=("metrics",),
                        density="compact",
                        id="metrics",
                        items_per_page=-1,
                        headers=(
                            "[{title: 'metric', key: 'metric'}, {title: 'value', key: 'value'},"
                            " {title: 'better', key: 'better'}, {title: 'description', key: 'description'}]",
                        ),
                        hide_default_footer=True,
                    )
    return layout
