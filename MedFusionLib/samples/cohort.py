"""A generated cohort: small 2-D PNG pairs (and optionally 3-D NIfTI pairs) with a manifest, so the cohort engine
can be tried and tested without real data. Every row differs (a seed per row), so outputs are distinguishable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk


def _pair(seed: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    radius = sum(g**2 for g in grids)
    head = radius < 0.8
    waves = np.sin((5 + seed % 7) * grids[-1]) * np.cos((4 + seed % 5) * grids[0])
    anatomy = np.where(head, 90 + 60 * waves + rng.normal(0, 4, shape), 0)
    centre = rng.uniform(-0.3, 0.3, len(shape))
    blob = np.exp(-sum((g - c) ** 2 for g, c in zip(grids, centre)) / 0.06) * head
    return anatomy.clip(0, 255).astype(np.uint8), (220 * blob + 20 * head).clip(0, 255).astype(np.uint8)


def write_cohort(folder: Path, rows: int, size: int = 96, volumes: int = 0, volume_size: int = 24) -> Path:
    """Write ``rows`` 2-D pairs (``size`` squared) then ``volumes`` 3-D pairs into ``folder`` and a manifest
    ``cohort.csv`` (columns a,b,name, relative paths); returns the manifest's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["a,b,name"]
    for index in range(rows + volumes):
        is_volume = index >= rows
        shape = (volume_size,) * 3 if is_volume else (size, size)
        ext = ".nii.gz" if is_volume else ".png"
        a, b = _pair(index, shape)
        name = f"{'vol' if is_volume else 'slice'}{index:03d}"
        for suffix, array in (("a", a), ("b", b)):
            image = sitk.GetImageFromArray(array.astype(np.float32) if is_volume else array)
            sitk.WriteImage(image, str(folder / f"{name}_{suffix}{ext}"))
        lines.append(f"{name}_a{ext},{name}_b{ext},{name}")
    manifest = folder / "cohort.csv"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return manifest
