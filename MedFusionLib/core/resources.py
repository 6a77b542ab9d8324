"""A resource guard: estimate the memory a run needs from the inputs' headers, before reading any voxel.

A volume whose header promises more voxels than the machine holds is refused up front with the estimate and
the available memory, instead of being read until numpy fails at a peak of many gigabytes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from MedFusionLib.core.errors import InputError, ResourceError
from MedFusionLib.core.native import dicom_series, native_stderr

# Fusing (``medfusion fuse`` without metrics, the default method), fitted to the four measured peaks of
# benchmarks/memory_benchmark.py (two sizes, both modes; docs/runtime.md, 2026-12-07): the interpreter, libraries
# and ONNX Runtime's working memory for a chunk; the inputs as read; per input its normalised float32 row on the
# reference grid (volume mode fuses a view of the rows: no stacked copy) and a transient resample; the fused
# float32 image (its array is read back only for scoring). Slice and volume mode get one estimate (the guard is
# not told the mode); the constants were fitted to those peaks, so their agreement is partly by construction.
FUSE_FIXED_BYTES = 600_000_000
FUSE_BYTES_PER_GRID_VOXEL_PER_INPUT = 5
FUSE_BYTES_PER_GRID_VOXEL_FUSED = 4
# Scoring and registering (not re-measured): the resampled float copy, the 0..1 source, the 0..255 source and
# the metric suite's float64 working copies per input; plus the fused image's own.
BYTES_PER_GRID_VOXEL_PER_INPUT = 40
BYTES_PER_GRID_VOXEL_FUSED = 48
READ_OVERHEAD = 3  # an image's own buffer, its float copy for registration and validation, a spare
WORK = ("fuse", "score", "register")


@dataclass(frozen=True)
class ImageInfo:
    """What a header says about an image: size (x, y[, z]) and bytes per voxel (all components)."""

    path: str
    size: tuple[int, ...]
    voxel_bytes: int

    @property
    def voxels(self) -> int:
        return int(np.prod(self.size, dtype=np.float64))

    @property
    def nbytes(self) -> int:
        return self.voxels * self.voxel_bytes


def _header(path: str) -> sitk.ImageFileReader:
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    reader.ReadImageInformation()
    return reader


def image_info(path: str | os.PathLike, series: Sequence[str] | None = None) -> ImageInfo | None:
    """The header's size and voxel bytes (None when the header cannot be read: the reader will say why)."""
    path = Path(path)
    try:
        if path.is_dir():
            files = dicom_series(path)
            chosen = next((f for sid, f in files.items() if series and sid in series), None)
            chosen = chosen or (max(files.values(), key=len) if files else None)
            if not chosen:
                return None
            reader = _header(chosen[0])
            size = tuple(reader.GetSize()[:2]) + (len(chosen),)
        else:
            reader = _header(str(path))
            size = tuple(int(s) for s in reader.GetSize())
        component = sitk.GetArrayViewFromImage(sitk.Image([1] * reader.GetDimension(), reader.GetPixelID())).itemsize
    except (RuntimeError, OSError, ValueError):
        return None
    return ImageInfo(str(path), size, component * max(1, reader.GetNumberOfComponents()))


def available_memory() -> int:
    """Bytes of memory available to a new allocation now (psutil's estimate; ``MEDFUSION_MEMORY_AVAILABLE``
    overrides it, for tests and for capping a shared server)."""
    override = os.environ.get("MEDFUSION_MEMORY_AVAILABLE")
    if override:
        try:
            return int(float(override))
        except ValueError:
            raise InputError(f"MEDFUSION_MEMORY_AVAILABLE={override!r} is not a number of bytes") from None
    try:
        import psutil
    except ImportError:  # e.g. a Slicer Python without it: the kernel's own figure
        try:
            for line in open("/proc/meminfo").read().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 2**62  # unknown: no guard
    return int(psutil.virtual_memory().available)


def estimate_run_bytes(infos: Sequence[ImageInfo], work: str = "fuse") -> int:
    """Peak memory of ``work`` on these inputs on the first one's grid: ``fuse`` (fitted to measured peaks within
    25 %), ``score`` or ``register`` (a generous bound for the metric suite's and registration's copies)."""
    if work not in WORK:
        raise ValueError(f"work must be one of {', '.join(WORK)}, got {work!r}")
    grid = infos[0].voxels
    read = sum(info.nbytes for info in infos)
    if work == "fuse":
        per_voxel = FUSE_BYTES_PER_GRID_VOXEL_PER_INPUT * len(infos) + FUSE_BYTES_PER_GRID_VOXEL_FUSED
        return FUSE_FIXED_BYTES + read + grid * per_voxel
    return read * READ_OVERHEAD + grid * (BYTES_PER_GRID_VOXEL_PER_INPUT * len(infos) + BYTES_PER_GRID_VOXEL_FUSED)


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def check_memory(
    paths: Sequence[str | os.PathLike],
    series: Sequence[str] | None = None,
    what: str = "this run",
    single: bool = False,
    work: str = "fuse",
) -> None:
    """Refuse, before reading, a run whose estimated peak memory (:func:`estimate_run_bytes` of ``work``) exceeds
    the available memory (``single``: just reading one image, its buffer and one working copy, the guard every
    reader applies)."""
    with native_stderr():  # a damaged header makes ITK print; the reader reports the problem in one line
        infos = [image_info(path, series) for path in paths]
    known = [info for info in infos if info is not None]
    if not known or infos[0] is None:
        return
    if single:
        needed = 2 * infos[0].nbytes
    else:
        needed = estimate_run_bytes([infos[0]] + [i for i in infos[1:] if i is not None], work)
    available = available_memory()
    if needed > available:
        largest = max(known, key=lambda info: info.nbytes)
        size = "x".join(str(s) for s in largest.size)
        raise ResourceError(
            f"{largest.path}: {what} needs about {_gb(needed)} of memory ({size} voxels, "
            f"{_gb(largest.nbytes)} as stored) but {_gb(available)} is available; nothing was read"
        )
