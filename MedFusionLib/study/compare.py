"""``medfusion compare``: every applicable method on one case, side by side, with its metric row.

The inputs are registered and normalised once; each method that accepts the number of inputs and the mode
then fuses them. Writes ``montage.png`` (sources, then one labelled row or tile per method), ``metrics.csv``
(one row per method) and each fused image.
"""

from __future__ import annotations

import csv
import io as text_io
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from MedFusionLib.core import imageio as io
from MedFusionLib.core.errors import MedFusionError
from MedFusionLib.core.options import OUTPUT_TYPE
from MedFusionLib.fusion import available_methods
from MedFusionLib.pipeline import FusionResult, fuse_prepared, prepare_inputs
from MedFusionLib.pipeline.files import as_output_type, score_as_written
from MedFusionLib.render.preview import PLANE_TITLES, compose, grid, plane_rows, plane_tile

LABEL_METRICS = ("QABF", "VIF", "SSIM", "MI", "SD")


def applicable_methods(n_inputs: int, mode: str, names: Sequence[str] | None = None) -> list[str]:
    """Registered methods that take ``n_inputs`` and support ``mode`` (restricted to ``names`` if given)."""
    methods = [m for m in available_methods() if m.accepts(n_inputs) and mode in m.modes]
    if names:
        known = {m.name for m in available_methods()}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise MedFusionError(f"unknown fusion method(s): {', '.join(unknown)}")
        methods = [m for m in methods if m.name in names]
    if not methods:
        raise MedFusionError(f"no method fuses {n_inputs} inputs in {mode} mode")
    return [m.name for m in methods]


def _label(name: str, metrics: dict, seconds: float) -> str:
    """Three caption lines: name and time, then the key metrics."""
    values = [f"{k} {metrics[k]:.3g}" for k in LABEL_METRICS if k in metrics]
    return f"{name} ({seconds:.2f} s)\n" + " ".join(values[:3]) + "\n" + " ".join(values[3:])


def _montage(
    sources: Sequence[np.ndarray],
    source_names: Sequence[str],
    results: Sequence[FusionResult],
    labels: Sequence[str],
    spacing,
) -> Image.Image:
    """2-D: a grid of tiles with labels; 3-D: one row of orthogonal planes per image."""
    images = list(sources) + [r.fused_array for r in results]
    names = list(source_names) + list(labels)
    if images[0].ndim == 2:
        return grid([plane_tile(im) for im in images], names, columns=4)
    rows = plane_rows(images, spacing, reference=sources)
    return compose(rows, [name.replace("\n", "  ") for name in names], PLANE_TITLES)


def compare(
    paths: Sequence[str],
    out_dir: Path,
    *,
    mode: str = "slice",
    axis: int = 2,
    registration: str = "none",
    force_registration: bool = False,
    methods: Sequence[str] | None = None,
    progress=None,
) -> list[dict]:
    """Run the applicable methods on one case and write montage.png, metrics.csv and the fused images."""
    images = [io.read_image(p) for p in paths]
    names = applicable_methods(len(images), mode, methods)
    if not out_dir.parent.is_dir():
        raise MedFusionError(f"{out_dir}: parent folder {out_dir.parent} does not exist")
    ext = io.extension(paths[0]) if Path(paths[0]).suffix else ".nii.gz"
    outputs = [out_dir / f"{name}{ext}" for name in names] + [out_dir / "metrics.csv", out_dir / "montage.png"]
    guard = io.InputGuard(paths)
    for output in outputs:  # before any work: the outputs never replace an input (e.g. an input named max.png)
        guard.check(output)
    with io.protected_inputs(paths):
        prepared = prepare_inputs(images, registration=registration, force_registration=force_registration)
        return _compare(paths, prepared, names, out_dir, ext, mode, axis, progress)


def _compare(paths, prepared, names, out_dir: Path, ext: str, mode: str, axis: int, progress):
    from MedFusionLib.metrics import METRIC_KEYS

    out_dir.mkdir(exist_ok=True)
    rows, results, labels = [], [], []
    for index, name in enumerate(names):
        if progress:
            progress(index / len(names), f"{name}")
        started = time.perf_counter()
        try:
            result = fuse_prepared(prepared, method=name, mode=mode, axis=axis)
        except MedFusionError as err:  # e.g. missing weights: report, and compare the others
            print(f"medfusion: skipped {name}: {err}", file=sys.stderr)
            continue
        seconds = time.perf_counter() - started
        written = as_output_type(result.fused, OUTPUT_TYPE.default)  # as fuse writes it, scored as written
        metrics = score_as_written(result, written, include_3d=False)
        io.write_image(written, out_dir / f"{name}{ext}")
        family = next(m.family for m in available_methods() if m.name == name)
        rows.append(
            {"method": name, "family": family, "mode": mode, "seconds": seconds, **{k: metrics[k] for k in METRIC_KEYS}}
        )
        results.append(result)
        labels.append(_label(name, metrics, seconds))

    if not rows:
        raise MedFusionError("no method could fuse these inputs")
    buffer = text_io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    for row in rows:
        writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
    io.write_atomically(out_dir / "metrics.csv", lambda tmp: Path(tmp).write_text(buffer.getvalue(), encoding="utf-8"))
    montage = _montage(
        [s * 255.0 for s in prepared.sources01],
        [Path(p).name for p in paths],
        results,
        labels,
        prepared.fixed.GetSpacing(),
    )
    io.write_atomically(out_dir / "montage.png", lambda tmp: montage.save(tmp, format="PNG"))
    return rows
