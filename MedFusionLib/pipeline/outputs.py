"""Checks and writers for a case's output files (atomic, validated before any slow work)."""

from __future__ import annotations

import json
from pathlib import Path

from MedFusionLib.core import imageio as io
from MedFusionLib.core.errors import InputError


def write_json(data: dict, path) -> None:
    """Write JSON atomically (valid JSON only: no NaN or Infinity)."""
    text = json.dumps(data, indent=2, allow_nan=False)
    io.write_atomically(Path(path), lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))


def check_output_path(path, dimension: int) -> None:
    """Fail before any work when the output cannot be written (missing folder, wrong type for 2-D/3-D)."""
    path = Path(path)
    io.output_folder(path)
    if dimension == 3 and io.is_dicom_output(path):
        return  # a DICOM series folder
    ext = io.extension(path)
    allowed = io.SUPPORTED if dimension == 2 else io.VOLUME_EXTENSIONS
    if ext not in allowed:
        raise InputError(f"{path}: unsupported output type for {dimension}-D images (use one of {', '.join(allowed)})")
