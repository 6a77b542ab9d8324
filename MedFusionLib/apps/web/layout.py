"""The browser page: inputs and fusion choices on the left; Slicer's views (in a switchable layout, with
orientation letters and the colour legend beside them) in the middle; below them the metric table (scrolling
inside its panel) and the result, display and save controls, so that Save stays visible at 1366 x 768. Every
choice list comes from the app's state, which takes it from ``MedFusionLib.core.options``."""

from __future__ import annotations

from typing import Any

DRAWER_WIDTH = 320
CHROME_PX = 64 + 20  # the toolbar above and the footer below the content: the page itself never scrolls
BOTTOM_PANEL = "height: 215px; flex: none; display: flex; border-top: 1px solid #333;"
METRICS_HEADERS = (
    "[{title: 'metric', key: 'metric'}, {title: 'value', key: 'value'},"
    " {title: 'better', key: 'better'}, {title: 'description', key: 'description'}]"
)


def _select(label: str, items: str, model: str, element_id: str, while_running: bool = False, **extra) -> None:
    from trame.widgets import html
    from trame.widgets import vuetify3 as v3

    with html.Div(id=element_id, classes="mb-2", style=extra.pop("style", "")):
        v3.VSelect(
            label=label,
            items=(items,),
            v_model=(model,),
            density="compact",
            hide_details=True,
            disabled=("false" if while_running else "running",),
            item_title="title",
            item_value="value",
            **extra,
        )


def _path_field(label: str, model: str, element_id: str, **extra) -> None:
    from trame.widgets import vuetify3 as v3

    v3.VTextField(label=label, v_model=(model,), density="compact", hide_details=True, id=element_id, **extra)


def _inputs_and_fusion(app: Any) -> None:
    """The drawer: what to fuse and how, Apply/Cancel, progress and the one error line."""
    from trame.widgets import html
    from trame.widgets import vuetify3 as v3

    html.Div("Inputs", classes="text-subtitle-2 mb-1")
    _select("Reference (fixed)", "volumes", "reference", "reference")
    _select("Moving", "volumes", "moving", "moving")
    _select("Third input (optional)", "extra_volumes", "extra", "extra")
    with html.Div(classes="d-flex mb-2"):
        _path_field("Open a file on the server", "open_path", "open-path", disabled=("running",))
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
    html.Div("Fusion", classes="text-subtitle-2 mb-1 mt-1")
    _select("Method", "methods", "method", "method")
    with html.Div(classes="d-flex"):
        _select("Mode", "modes", "mode", "mode", style="flex: 1;")
        _select("Axis (slice mode)", "axes", "axis", "axis", style="flex: 1; margin-left: 4px;")
    _select("Registration", "registrations", "registration", "registration")
    html.Div("{{ registration_note }}", id="registration-note", classes="text-caption mb-2")
    with html.Div(classes="d-flex"):
        _select("Colour", "colours", "colour", "colour", style="flex: 1;")
        _select("Table (grey result)", "overlay_maps", "overlay_map", "overlay-map", style="flex: 1; margin-left: 4px;")
    _select("Device (networks)", "devices", "device", "device")
    with html.Div(classes="d-flex"):
        for label, model, element_id in (
            ("Metrics", "compute_metrics", "compute-metrics"),
            ("Harden transform", "harden", "harden"),
        ):
            v3.VCheckbox(
                label=label,
                v_model=(model,),
                density="compact",
                hide_details=True,
                id=element_id,
                disabled=("running",),
            )
    v3.VBtn(
        "{{ running ? 'Cancel' : 'Apply' }}",
        click=app.on_apply,
        id="apply",
        block=True,
        color=("running ? 'warning' : 'primary'",),
        disabled=("!running && (!reference || !moving)",),
    )
    v3.VProgressLinear(model_value=("progress",), v_show=("running",), height=6, classes="mt-2", id="progress")
    html.Div("{{ error }}", v_show=("error",), id="error", classes="text-error text-body-2 mt-2")
    v3.VBtn(
        "Fuse anyway",
        click=app.on_fuse_anyway,
        id="fuse-anyway",
        block=True,
        color="warning",
        variant="outlined",
        classes="mt-2",
        v_show=("implausible && !running",),
    )


def _legend() -> None:
    """The colour bar of the shown result: its meaning, the scale, and the two ends."""
    from trame.widgets import html

    with html.Div(  # always there (empty before a result), so the views keep their size when it fills
        id="legend",
        style="width: 118px; flex: none; padding: 8px; display: flex; flex-direction: column; font-size: 12px;",
    ):
        html.Div("{{ legend ? legend.title : 'Legend: after Apply' }}", id="legend-title", style="margin-bottom: 4px;")
        html.Div("{{ legend && legend.high }}")
        with html.Div(v_show=("legend",), style="flex: 1; display: flex; min-height: 60px;"):
            html.Div(
                style=("{width: '22px', border: '1px solid #666', background: legend && legend.gradient}",),
                id="legend-bar",
            )
        html.Div("{{ legend && legend.low }}")


def _results_display_and_save(app: Any) -> None:
    """Right of the metric table: which result, how it is shown, where it is saved."""
    from trame.widgets import html
    from trame.widgets import vuetify3 as v3

    with html.Div(style="width: 330px; flex: none; padding: 8px; overflow-y: auto;"):
        _select("Result", "results", "result_id", "result", while_running=True, no_data_text="no result yet")
        with html.Div(classes="d-flex"):
            _select("Show", "display_modes", "display_mode", "display-mode", while_running=True, style="flex: 1;")
            _select(
                "Views",
                "view_layouts",
                "view_layout",
                "view-layout",
                while_running=True,
                style="flex: 1; margin-left: 4px;",
            )
        with html.Div(id="opacity"):
            v3.VSlider(
                label="Opacity",
                v_model=("opacity",),
                min=0,
                max=1,
                step=0.05,
                hide_details=True,
                thumb_label=True,
                density="compact",
            )
        with html.Div(classes="d-flex align-center"):
            _path_field("Save in (folder under the served one)", "save_path", "save-path")
            v3.VBtn("Save", click=app.on_save, id="save", classes="ml-1", disabled=("!has_result || running",))
        html.Div("{{ saved }}", id="saved", classes="text-caption mt-1")


def _read_only_banner() -> None:
    """Over the whole page of a tab opened while another holds the session: why it is read-only (the views
    below still follow the session)."""
    from trame.widgets import html

    from MedFusionLib.apps.web.sessions import BANNER_KEY, IN_USE

    with html.Div(
        v_if=(BANNER_KEY,),
        id="session-banner",
        style="position: fixed; inset: 0; z-index: 5000; background: rgba(0, 0, 0, 0.45); display: flex;"
        " justify-content: center; align-items: flex-start; padding-top: 72px;",
    ):
        html.Div(
            IN_USE,
            style="max-width: 640px; padding: 16px; background: #402a00; color: #fff; border: 1px solid #ffb300;"
            " border-radius: 4px; font-size: 15px;",
        )


def build_layout(app: Any):
    """Build the page for ``app`` (a :class:`~MedFusionLib.apps.web.app.FusionWebApp`); returns the layout."""
    from trame.ui.vuetify3 import SinglePageWithDrawerLayout
    from trame.widgets import html
    from trame.widgets import vuetify3 as v3
    from trame_slicer.core import LayoutManager
    from trame_slicer.rca_view import register_rca_factories

    from MedFusionLib.apps.web.views import annotated_slice_view_ui, register_layouts
    from MedFusionLib.core.options import VIEW_LAYOUT

    server = app.server
    register_rca_factories(app.slicer_app.view_manager, server, slice_view_ui_f=annotated_slice_view_ui)
    layouts = LayoutManager(app.slicer_app.scene, app.slicer_app.view_manager, server)
    register_layouts(layouts)
    layouts.set_layout(VIEW_LAYOUT.shown_default)
    app.layout_manager = layouts

    with SinglePageWithDrawerLayout(server, theme="dark") as layout:
        layout.title.set_text("MedFusion")
        layout.drawer.width = DRAWER_WIDTH
        with layout.toolbar:
            v3.VSpacer()
            html.Div("{{ status }}", id="status", classes="text-body-2 mr-4")
        with layout.drawer:
            with html.Div(classes="pa-3"):
                _inputs_and_fusion(app)
        with layout.content:
            _read_only_banner()
            with html.Div(style=f"display: flex; flex-direction: column; height: calc(100vh - {CHROME_PX}px);"):
                with html.Div(style="flex: 1; min-height: 0; display: flex; overflow: hidden;"):
                    with html.Div(style="flex: 1; min-width: 0; position: relative; overflow: hidden;", id="views"):
                        layouts.initialize_layout_grid(layout)
                    _legend()
                with html.Div(style=BOTTOM_PANEL, id="bottom-panel"):
                    with html.Div(style="flex: 1; overflow-y: auto; min-width: 0;", id="metrics-panel"):
                        v3.VDataTable(
                            items=("metrics",),
                            density="compact",
                            id="metrics",
                            items_per_page=-1,
                            headers=(METRICS_HEADERS,),
                            hide_default_footer=True,
                            no_data_text="The 16 metrics appear here after Apply.",
                        )
                    _results_display_and_save(app)
    return layout
