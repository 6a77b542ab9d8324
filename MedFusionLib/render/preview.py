"""Preview PNGs: a glance at sources and fused result without opening a viewer.

2-D: the sources and the fused image side by side. 3-D: one row per image (sources, then fused) with the
axial, coronal and sagittal planes through the centre of the joint foreground, drawn with physical aspect.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from MedFusionLib.core import imageio as io

TILE = 192  # pixels of the longest side of one tile


def _to_uint8(array: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(array), 0, 255).astype(np.uint8)


def plane_tile(plane: np.ndarray, aspect: float = 1.0) -> Image.Image:
    """One plane (rows, cols) on 0..255 as a PIL image, rows stretched by ``aspect`` (row/col spacing)."""
    rows, cols = plane.shape[:2]
    height, width = rows * aspect, cols
    scale = TILE / max(height, width)
    image = Image.fromarray(_to_uint8(plane) if plane.ndim == 2 else plane.astype(np.uint8))
    return image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.BILINEAR)


def _planes(volume: np.ndarray, centre: Sequence[int], spacing_xyz: Sequence[float]):
    """Axial, coronal, sagittal planes (superior/anterior up) with their row/column spacing ratios."""
    z, y, x = centre
    sx, sy, sz = spacing_xyz
    return [
        (volume[z], sy / sx),
        (volume[:, y][::-1], sz / sx),
        (volume[:, :, x][::-1], sz / sy),
    ]


def compose(rows: list[list[Image.Image]], labels: list[str] | None = None) -> Image.Image:
    """Grid of tiles (one list per row) with an optional label above each row."""
    label_h = 14 if labels else 0
    width = max(sum(t.width for t in row) + 4 * (len(row) - 1) for row in rows)
    height = sum(max(t.height for t in row) + label_h for row in rows) + 4 * (len(rows) - 1)
    canvas = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(canvas)
    top = 0
    for index, row in enumerate(rows):
        if labels:
            draw.text((2, top), labels[index], fill=(255, 255, 0))
            top += label_h
        left = 0
        for tile in row:
            canvas.paste(tile.convert("RGB"), (left, top))
            left += tile.width + 4
        top += max(t.height for t in row) + 4
    return canvas


def grid(tiles: list[Image.Image], captions: list[str], columns: int = 4) -> Image.Image:
    """Tiles in rows of ``columns``, each with a caption of one or more lines (``\n``) above it."""
    line_h = 12
    cap_h = line_h * max(c.count("\n") + 1 for c in captions) + 2
    cell_w, cell_h = max(t.width for t in tiles) + 4, max(t.height for t in tiles) + cap_h + 4
    rows = (len(tiles) + columns - 1) // columns
    canvas = Image.new("RGB", (cell_w * min(columns, len(tiles)), cell_h * rows))
    draw = ImageDraw.Draw(canvas)
    for index, (tile, caption) in enumerate(zip(tiles, captions)):
        left, top = (index % columns) * cell_w, (index // columns) * cell_h
        draw.multiline_text((left + 2, top), caption, fill=(255, 255, 0), spacing=2)
        canvas.paste(tile.convert("RGB"), (left, top + cap_h))
    return canvas


def plane_rows(images: Sequence[np.ndarray], spacing_xyz, reference: Sequence[np.ndarray] | None = None):
    """One row of axial/coronal/sagittal tiles per volume, all cut through the centre of the foreground
    (> 5 on 0..255) of ``reference`` (default: the grey volumes among ``images``)."""
    reference = [im for im in images if im.ndim == 3] if reference is None else reference
    mask = np.any([im > 5 for im in reference], axis=0)
    centre = [
        int(np.mean(np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != k))))) if mask.any() else n // 2
        for k, n in enumerate(mask.shape)
    ]
    return [[plane_tile(p, aspect) for p, aspect in _planes(im, centre, spacing_xyz)] for im in images]


def write_preview(images: Sequence[np.ndarray], labels: Sequence[str], path, spacing_xyz=(1.0, 1.0, 1.0)) -> None:
    """Write a PNG of 2-D images side by side, or of orthogonal planes of 3-D volumes (0..255, grey or RGB)."""
    if images[0].ndim == 2:
        canvas = compose([[plane_tile(im) for im in images]], [" | ".join(labels)])
    else:  # volumes (z, y, x), RGB volumes (z, y, x, 3)
        canvas = compose(plane_rows(images, spacing_xyz), list(labels))
    io.write_atomically(Path(path), lambda tmp: canvas.save(tmp, format="PNG"))
