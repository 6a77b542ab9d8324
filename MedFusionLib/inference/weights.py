"""Where a shipped network's files live: ``MedFusionLib/weights/<name>.pt`` (torch weights, for training and the
export) and ``<name>.onnx`` (the graph the fusion methods run), or ``$MEDFUSION_WEIGHTS_DIR``. No torch."""

from __future__ import annotations

import os
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"


def weight_path(name: str, suffix: str = ".pt") -> Path:
    """The shipped file of network ``name`` with ``suffix`` (``.pt``, ``.onnx`` or ``.md``)."""
    override = os.environ.get("MEDFUSION_WEIGHTS_DIR")
    return (Path(override) if override else WEIGHTS_DIR) / f"{name}{suffix}"
