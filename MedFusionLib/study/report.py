"""``OUTDIR/report.html`` of a study: one self-contained page (every image base64-embedded, no script, no
external resource) with the at-a-glance verdict table, the summary tables with 95 % intervals, a box plot per
metric, a montage of a few cases across methods, and the protocol (data, options, metrics, statistics,
versions)."""

from __future__ import annotations

import base64
import html
import io as byte_io
import platform
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from MedFusionLib.core.options import FusionOptions
from MedFusionLib.study.outcome import StudyOutcome
from MedFusionLib.study.statistics import CI_METHOD, CONFIDENCE, MARGIN

MONTAGE_CASES = 4
TILE = 160
COLOURS = {"win": "#b7e1b0", "loss": "#f2b8b5", "tie": "#ffffff", "baseline": "#e4e4e4"}
STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1400px; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.85em; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.45em; text-align: right; }
th { background: #f0f0f0; } small { white-space: nowrap; } td.name, th.name { text-align: left; }
.plots img { width: 340px; margin: 2px; border: 1px solid #ddd; }
.legend span { padding: 0.1em 0.5em; border: 1px solid #bbb; margin-right: 0.4em; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def _png_data(image: Image.Image) -> str:
    buffer = byte_io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(data: str, alt: str, cls: str = "") -> str:
    return f'<img src="{data}" alt="{html.escape(alt)}"{f" class={cls!r}" if cls else ""}>'


def box_plots(outcome: StudyOutcome) -> dict[str, str]:
    """Metric key -> PNG data URI of its box plot over the cases, one box per method (baseline shaded)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from MedFusionLib.metrics import METRIC_KEYS, METRICS

    plots = {}
    for key in METRIC_KEYS:
        data = [[float(r.metrics[key]) for m, r in outcome.records if m == name and r.ok] for name in outcome.methods]
        fig, ax = plt.subplots(figsize=(max(4.0, 0.55 * len(outcome.methods) + 1.5), 3.4), dpi=90)
        boxes = ax.boxplot(data, patch_artist=True, widths=0.6, showmeans=True)
        for index, patch in enumerate(boxes["boxes"]):
            patch.set_facecolor("#d9d9d9" if index == 0 else "#9ecae1")
        ax.set_xticks(range(1, len(outcome.methods) + 1), outcome.methods, rotation=45, ha="right", fontsize=8)
        arrow = "higher" if METRICS[key].direction == "higher" else "lower"
        ax.set_title(f"{key} ({METRICS[key].name}; {arrow} is better)", fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        buffer = byte_io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
        plots[key] = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return plots


def _display_plane(path: str, fused: bool) -> np.ndarray | None:
    """A 2-D plane of an image file on 0..255 for the montage (the middle axial slice of a volume)."""
    import SimpleITK as sitk

    from MedFusionLib.core.errors import MedFusionError
    from MedFusionLib.core.imageio import as_scalar, read_image

    try:
        array = sitk.GetArrayFromImage(as_scalar(read_image(path), path)).astype(np.float32)
    except MedFusionError:
        return None
    if array.ndim == 3:
        array = array[array.shape[0] // 2]
    if fused:  # fused images are on the 0..255 fusion scale
        return np.clip(array, 0, 255)
    low, high = np.percentile(array, (0.5, 99.5))
    return np.clip((array - low) / max(float(high - low), 1e-6) * 255.0, 0, 255)


def _tile(plane: np.ndarray | None, caption: str) -> Image.Image:
    tile = Image.new("L", (TILE, TILE + 14), 255)
    if plane is not None:
        image = Image.fromarray(plane.astype(np.uint8))
        scale = TILE / max(image.width, image.height)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.BILINEAR)
        tile.paste(image, ((TILE - image.width) // 2, 14 + (TILE - image.height) // 2))
    ImageDraw.Draw(tile).text((3, 1), caption[:26], fill=0)
    return tile


def montage(outcome: StudyOutcome, n_cases: int = MONTAGE_CASES) -> Image.Image | None:
    """Rows: a few cases (spread over the manifest, one per group first); columns: the sources, then each method."""
    outputs = {(m, r.name): r.output for m, r in outcome.records if r.ok}
    usable = [c for c in outcome.cases if all((m, c.name) in outputs for m in outcome.methods)]
    if not usable:
        return None
    picks: list = []
    for group in dict.fromkeys(c.group for c in usable):
        picks.append(next(c for c in usable if c.group == group))
    rest = [c for c in usable if c not in picks]
    wanted = max(0, min(n_cases - len(picks), len(rest)))
    picks += (
        [rest[int(i)] for i in dict.fromkeys(np.linspace(0, len(rest) - 1, wanted).round().astype(int))]
        if wanted
        else []
    )
    picks = sorted(picks[:n_cases], key=lambda c: c.row)
    rows = []
    for case in picks:
        label = case.name + (f" ({case.group})" if case.group else "")
        tiles = [
            _tile(_display_plane(p, False), f"{label}: {'AB'[i] if i < 2 else i + 1}")
            for i, p in enumerate(case.inputs)
        ]
        tiles += [_tile(_display_plane(outputs[(m, case.name)], True), m) for m in outcome.methods]
        rows.append(tiles)
    width = max(len(r) for r in rows) * (TILE + 4)
    sheet = Image.new("L", (width, len(rows) * (TILE + 18)), 255)
    for y, row in enumerate(rows):
        for x, tile in enumerate(row):
            sheet.paste(tile, (x * (TILE + 4), y * (TILE + 18)))
    return sheet


def _fmt(value) -> str:
    if isinstance(value, float):
        return "–" if value != value else f"{value:.4g}"
    return html.escape(str(value))


def verdict_table(rows: Sequence[dict], keys: Sequence[str]) -> str:
    """Methods x metrics: the mean, coloured by the paired verdict against the baseline (the best mean of each
    column in bold), and W/T/L counts."""
    from MedFusionLib.metrics import METRICS

    head = "".join(f"<th>{k}</th>" for k in keys)
    best = {}
    for k in keys:
        sign = 1.0 if METRICS[k].direction == "higher" else -1.0
        means = [sign * row[f"{k}_mean"] for row in rows if row[f"{k}_mean"] == row[f"{k}_mean"]]
        best[k] = sign * max(means) if means else None
    body = []
    for row in rows:
        cells = "".join(
            f'<td style="background:{COLOURS[row[f"{k}_vs_baseline"]]}" title="{row[f"{k}_vs_baseline"]}: '
            f'mean paired difference {_fmt(row[f"{k}_diff"])}">'
            + (f"<b>{_fmt(row[f'{k}_mean'])}</b>" if row[f"{k}_mean"] == best[k] else _fmt(row[f"{k}_mean"]))
            + "</td>"
            for k in keys
        )
        wtl = (
            "baseline"
            if row[f"{keys[0]}_vs_baseline"] == "baseline"
            else f"{row['wins']} / {row['ties']} / {row['losses']}"
        )
        body.append(
            f'<tr><td class="name">{html.escape(row["method"])}</td><td>{row["n"]}</td><td>{wtl}</td>{cells}</tr>'
        )
    return (
        f'<table><tr><th class="name">method</th><th>n</th><th>wins / ties / losses</th>{head}</tr>'
        + "".join(body)
        + "</table>"
    )


def interval_table(rows: Sequence[dict], keys: Sequence[str]) -> str:
    """Methods x metrics: mean [95 % CI], and seconds per case."""
    head = "".join(f"<th>{k}</th>" for k in keys)
    body = []
    for row in rows:
        cells = "".join(
            f"<td>{_fmt(row[f'{k}_mean'])}<br><small>[{_fmt(row[f'{k}_ci_low'])}, {_fmt(row[f'{k}_ci_high'])}]</small></td>"
            for k in keys
        )
        body.append(
            f'<tr><td class="name">{html.escape(row["method"])}</td><td>{_fmt(row["seconds_per_case"])}</td>{cells}</tr>'
        )
    return f'<table><tr><th class="name">method</th><th>s / case</th>{head}</tr>' + "".join(body) + "</table>"


def _versions() -> str:
    import SimpleITK as sitk

    from MedFusionLib import __version__

    parts = [f"medfusion {__version__}", f"Python {sys.version.split()[0]}", f"numpy {np.__version__}"]
    parts.append(f"SimpleITK {sitk.Version_VersionString()}")
    try:
        import torch

        parts.append(f"torch {torch.__version__}")
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    parts.append(platform.platform())
    return ", ".join(parts)


def report_html(outcome: StudyOutcome, options: FusionOptions, manifest: Path) -> str:
    """The whole page as a string."""
    from MedFusionLib.fusion import get_method
    from MedFusionLib.metrics import METRIC_KEYS, METRICS

    e = html.escape
    groups = outcome.groups
    n_ok = sum(1 for _, r in outcome.records if r.ok)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>MedFusion study: {e(outcome.out_dir.name)}</title><style>{STYLE}</style></head><body>",
        f"<h1>MedFusion study: {len(outcome.methods)} methods on {len(outcome.cases)} cases</h1>",
        f"<p>Baseline <b>{e(outcome.baseline)}</b>; {n_ok} of {len(outcome.records)} (method, case) runs succeeded; "
        f"written {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.</p>",
        "<h2>At a glance: which method wins what</h2>",
        f"<p class='legend'><span style='background:{COLOURS['win']}'>win</span><span>tie</span>"
        f"<span style='background:{COLOURS['loss']}'>loss</span> against the baseline on the same cases: a win needs "
        f"a mean paired difference of at least {MARGIN:.0%} of the baseline's mean in the metric's better direction "
        f"and a {CONFIDENCE:.0%} confidence interval of that difference entirely on the better side of zero; a loss "
        "is the mirror image. Cells show the mean (the best of each column in bold); hover for the mean paired "
        "difference.</p>",
    ]
    for group in ["all", *groups]:
        rows = [r for r in outcome.summary if r["group"] == group]
        if rows:
            title = "all cases" if group == "all" else f"group {e(group)}"
            parts += [f"<h3>{title}</h3>", verdict_table(rows, METRIC_KEYS)]
    parts.append(f"<h2>Means with {CONFIDENCE:.0%} confidence intervals ({CI_METHOD})</h2>")
    for group in ["all", *groups]:
        rows = [r for r in outcome.summary if r["group"] == group]
        if rows:
            title = "all cases" if group == "all" else f"group {e(group)}"
            parts += [f"<h3>{title}</h3>", interval_table(rows, METRIC_KEYS)]
    parts.append("<h2>Distributions over the cases</h2><div class='plots'>")
    parts += [_img(uri, f"box plot of {key}") for key, uri in box_plots(outcome).items()]
    parts.append("</div>")
    sheet = montage(outcome)
    if sheet is not None:
        parts += [
            "<h2>Montage</h2><p>A few cases (rows): the sources as read, before registration (display-scaled to their 0.5-99.5th percentiles), "
            "then each method's fused output (middle axial slice for volumes).</p>",
            _img(_png_data(sheet), "montage of cases across methods"),
        ]
    if outcome.failed:
        parts.append("<h2>Failed runs</h2><ul>")
        parts += [f"<li>{e(m)} / {e(r.name)}: {e(r.error)}</li>" for m, r in outcome.failed]
        parts.append("</ul>")
    parts += [
        "<h2>Protocol</h2>",
        f"<p><b>Data</b>: manifest <code>{e(str(manifest))}</code>, {len(outcome.cases)} cases"
        + (f" in groups {e(', '.join(groups))}" if groups else "")
        + ". The first input of a row is the reference; intensities are normalised per modality before fusion "
        "(CT window, MR/PET/SPECT percentiles, 8-bit images as they are) and the metrics compare the fused image "
        "with the normalised sources on the 0..255 scale, exactly as <code>medfusion fuse --metrics</code>.</p>",
        f"<p><b>Options</b>: mode {e(options.mode)}, axis {options.axis}, registration {e(options.registration)}.</p>",
        "<p><b>Methods</b>:</p><ul>",
    ]
    for name in outcome.methods:
        method = get_method(name)
        refs = "; ".join(method.references)
        parts.append(
            f"<li><b>{e(name)}</b> ({e(method.family)}): {e(method.description)}{f' <i>{e(refs)}</i>' if refs else ''}</li>"
        )
    parts += [
        "</ul><p><b>Metrics</b> (definitions: docs/metrics.md of MedFusion; MI in bits, SSIM summed over the sources "
        "with data range 255):</p><table><tr><th class='name'>key</th><th class='name'>name</th><th>better</th>"
        "<th class='name'>definition</th></tr>",
        *[
            f"<tr><td class='name'>{k}</td><td class='name'>{e(METRICS[k].name)}</td><td>{METRICS[k].direction}</td>"
            f"<td class='name'>{e(METRICS[k].description)}</td></tr>"
            for k in METRIC_KEYS
        ],
        "</table>",
        f"<p><b>Statistics</b>: per method (and group) the mean over the cases with its {CI_METHOD} interval; "
        f"paired comparisons use the per-case differences to the baseline ({CI_METHOD} of the mean difference). "
        "Seconds per case include reading, registration, fusion, metrics and writing.</p>",
        f"<p><b>Versions</b>: {e(_versions())}.</p>",
        "</body></html>",
    ]
    return "\n".join(parts)


def write_report(outcome: StudyOutcome, options: FusionOptions, manifest: Path) -> Path:
    """Write ``report.html`` into the study's folder, atomically."""
    from MedFusionLib.core.imageio import write_atomically

    path = outcome.out_dir / "report.html"
    text = report_html(outcome, options, manifest)
    write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return path
